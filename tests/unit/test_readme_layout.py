"""The README's layout section stays true to the tree.

The section's first code block is read as a tree: a line that starts with `name/` names a folder,
indented under the folder it belongs to; the rest of the line, and every following line indented to
its description column, describe that folder. There, outside parentheses, a `name/` names a
sub-folder and a `name.py` a module of it. So:

- every folder and module the block names exists;
- every package (a folder with `__init__.py`) under the runtime's roots is named;
- a folder whose modules the block lists has every module listed (`__init__.py`, `__main__.py` aside).

The check compares the block with whatever the tree is, so a reorganisation only edits the block:
the failure lists each line to add or remove.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shared.settings import REPO_ROOT

RUNTIME_ROOTS = ("services", "shared", "creditwindow")
_FOLDER = re.compile(r"[\w.-]+/")
_MODULE = re.compile(r"\w+\.py")


@dataclass
class Layout:
    """What the block names: folders (paths from the repository root) and, per folder, its modules."""

    folders: set[str] = field(default_factory=set)
    modules: dict[str, set[str]] = field(default_factory=dict)


def layout_block(readme: str) -> list[str]:
    section = readme.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```", 2)[1].split("\n")[1:]  # the first fenced block, its opening line left out


def parse(lines: list[str]) -> Layout:
    described: list[tuple[str, list[str]]] = []  # each folder line, with its text and continuations
    parents: list[tuple[int, str]] = []  # (indentation, folder) of the folder lines above
    column = 0  # where the description of the last folder line starts
    for line in lines:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if described and indent >= column:
            described[-1][1].append(line.strip())
            continue
        first = line.split()[0]
        if not _FOLDER.fullmatch(first):
            raise AssertionError(f"README.md layout: a line must start with a folder (`name/`) or continue one: {line!r}")
        while parents and parents[-1][0] >= indent:
            parents.pop()
        folder = "/".join([*(p for _, p in parents[-1:]), first.rstrip("/")])
        parents.append((indent, folder))
        rest = line[indent + len(first) :]
        column = indent + len(first) + (len(rest) - len(rest.lstrip()) if rest.strip() else 1)
        described.append((folder, [rest.strip()]))

    layout = Layout()
    for folder, text in described:
        layout.folders.add(folder)
        words = " ".join(text)
        while re.search(r"\([^()]*\)", words):
            words = re.sub(r"\([^()]*\)", " ", words)
        for word in (w.strip(",;:") for w in words.split()):
            if _FOLDER.fullmatch(word):
                layout.folders.add(f"{folder}/{word.rstrip('/')}")
            elif _MODULE.fullmatch(word):
                layout.modules.setdefault(folder, set()).add(word)
    return layout


def _modules_of(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("*.py") if not (p.name.startswith("__") and p.name.endswith("__.py"))}


def differences(layout: Layout, root: Path, runtime_roots: tuple[str, ...] = RUNTIME_ROOTS) -> list[str]:
    """What to change in the block so it matches the tree under `root`, one instruction per line."""
    out = []
    for folder in sorted(layout.folders):
        if not (root / folder).is_dir():
            out.append(f"remove `{folder}/`: no such folder")
    for folder, modules in sorted(layout.modules.items()):
        if not (root / folder).is_dir():
            continue
        for module in sorted(modules - _modules_of(root / folder)):
            out.append(f"remove `{module}` from the line of `{folder}/`: no such module")
        for module in sorted(_modules_of(root / folder) - modules):
            out.append(f"add `{module}` to the line of `{folder}/` (it lists that folder's modules)")
    packages = sorted(
        init.parent.relative_to(root).as_posix()
        for top in runtime_roots
        for init in (root / top).rglob("__init__.py")
        if "__pycache__" not in init.parts
    )
    for package in packages:
        if package not in layout.folders:
            parent = package.rsplit("/", 1)[0] if "/" in package else ""
            where = f"under `{parent}/` (a line of its own, indented, or `{package.rsplit('/', 1)[-1]}/` on the line of `{parent}/`)" if parent else "as a top-level line"
            out.append(f"add `{package}/` {where}: it is a package")
    return out


def test_the_layout_section_matches_the_tree() -> None:
    problems = differences(parse(layout_block((REPO_ROOT / "README.md").read_text())), REPO_ROOT)
    assert not problems, "README.md's '## Layout' block differs from the tree:\n" + "\n".join(problems)


# --- the check itself, on a small tree -------------------------------------------------------------


def _tree(root: Path, files: list[str]) -> Path:
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("")
    return root


BLOCK = """\
services/         one folder per service (ports.py aside)
  policy/         rules.py book.py (the one ledger; see also memory_book.py) |
                  app.py
    policies/     the default
shared/           wire.py contracts/
""".split("\n")


def test_the_block_is_read_as_a_tree_of_folders_and_the_modules_their_lines_list() -> None:
    layout = parse(BLOCK)
    assert layout.folders == {"services", "services/policy", "services/policy/policies", "shared", "shared/contracts"}
    assert layout.modules == {"services/policy": {"rules.py", "book.py", "app.py"}, "shared": {"wire.py"}}


def test_a_tree_reorganised_into_sub_packages_is_told_line_by_line(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        [
            "services/__init__.py",
            "services/policy/__init__.py",
            "services/policy/app.py",
            "services/policy/policies/default.yaml",
            "services/policy/windows/__init__.py",
            "services/policy/windows/book.py",
            "shared/__init__.py",
            "shared/wire.py",
            "shared/clock.py",
            "shared/contracts/__init__.py",
        ],
    )
    assert differences(parse(BLOCK), root) == [
        "remove `book.py` from the line of `services/policy/`: no such module",
        "remove `rules.py` from the line of `services/policy/`: no such module",
        "add `clock.py` to the line of `shared/` (it lists that folder's modules)",
        "add `services/policy/windows/` under `services/policy/` (a line of its own, indented, or `windows/` on the line of `services/policy/`): it is a package",
    ]


def test_a_folder_named_but_gone_is_to_be_removed(tmp_path: Path) -> None:
    root = _tree(tmp_path, ["services/__init__.py", "services/policy/__init__.py", "services/policy/app.py",
                            "services/policy/book.py", "services/policy/rules.py", "shared/__init__.py", "shared/wire.py"])
    assert differences(parse(BLOCK), root) == [
        "remove `services/policy/policies/`: no such folder",
        "remove `shared/contracts/`: no such folder",
    ]


def test_a_line_that_names_no_folder_is_refused() -> None:
    with pytest.raises(AssertionError, match="stray words"):
        parse(["services/   the services", "stray words at the left margin"])
