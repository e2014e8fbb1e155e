"""`make images` takes its Debian mirror from the machine's apt sources (deploy/images/debian_mirrors.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from shared.settings import REPO_ROOT

_spec = importlib.util.spec_from_file_location("debian_mirrors", REPO_ROOT / "deploy" / "images" / "debian_mirrors.py")
assert _spec and _spec.loader
debian_mirrors = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(debian_mirrors)


def _apt(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "etc" / "apt" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_deb822_sources_give_the_archive_and_the_security_mirror(tmp_path: Path) -> None:
    root = _apt(tmp_path, {
        "sources.list.d/debian.sources": (
            "Types: deb\n# a comment: with a colon\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\n"
            "Components: main\n\nTypes: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\n"
            "Components: main\n"
        ),
        "sources.list.d/other.sources": "Types: deb\nURIs: https://vendor.invalid/apt\nSuites: stable\nEnabled: no\n",
    })  # fmt: skip
    assert debian_mirrors.mirrors(root) == ("http://mirror.invalid/debian", "http://mirror.invalid/debian-security")


def test_one_line_sources_with_options_and_no_security_mirror(tmp_path: Path) -> None:
    root = _apt(
        tmp_path,
        {
            "sources.list": "# deb http://old.invalid/debian buster main\ndeb [arch=amd64] http://mirror.invalid/debian bookworm main\n"
        },
    )
    assert debian_mirrors.mirrors(root) == ("http://mirror.invalid/debian", "")


def test_no_sources_no_mirror(tmp_path: Path) -> None:
    assert debian_mirrors.mirrors(tmp_path) == ("", "")
