"""The rules of the house hold: import-linter's contracts (pyproject.toml, `[tool.importlinter]`) are kept."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from shared.settings import REPO_ROOT


def test_the_import_contracts_are_kept() -> None:
    lint = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    result = subprocess.run([lint, "--no-cache"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout
