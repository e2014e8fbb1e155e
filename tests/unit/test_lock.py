"""The lock files (requirements/*.txt, `make lock`) pin what pyproject.toml asks for, with hashes."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from shared.settings import REPO_ROOT

PROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def _pins(path: Path) -> dict[str, str]:
    text = path.read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", text, re.MULTILINE))
    return {canonicalize_name(name): version for name, version in pins.items()}


def _unpinned(requirements: list[str], pins: dict[str, str]) -> list[str]:
    wrong = []
    for line in requirements:
        wanted = Requirement(line)
        version = pins.get(canonicalize_name(wanted.name))
        if version is None or not wanted.specifier.contains(version, prereleases=True):
            wrong.append(f"{line} (locked: {version})")
    return wrong


def test_the_runtime_lock_pins_every_runtime_dependency_and_no_extra() -> None:
    pins = _pins(REPO_ROOT / "requirements" / "runtime.txt")
    assert not _unpinned(PROJECT["dependencies"], pins)
    tooling = {
        "scorecardpy",
        "pandas",
        "matplotlib",
        "optbinning",
        "scikit-learn",
        "psutil",
        "pytest",
        "testcontainers",
    }
    assert not tooling & set(pins)


def test_the_development_lock_pins_every_dependency_of_every_extra() -> None:
    pins = _pins(REPO_ROOT / "requirements" / "dev.txt")
    wanted = PROJECT["dependencies"] + [line for extra in PROJECT["optional-dependencies"].values() for line in extra]
    assert not _unpinned(wanted, pins)


def test_every_pin_carries_hashes() -> None:
    for name in ("runtime.txt", "dev.txt", "build.txt"):
        text = (REPO_ROOT / "requirements" / name).read_text()
        pins = re.findall(r"^[A-Za-z0-9_.\-]+==", text, re.MULTILINE)
        hashed = re.findall(r"^[A-Za-z0-9_.\-]+==[^\n]*\\\n\s+--hash=sha256:", text, re.MULTILINE)
        assert pins and len(pins) == len(hashed), name


def test_the_license_is_an_spdx_string() -> None:
    assert PROJECT["license"] == "Apache-2.0"
