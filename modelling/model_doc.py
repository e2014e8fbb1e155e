"""docs/model.md: generated sections between markers, hand-written text around them.

A generated section is ``<!-- BEGIN name -->`` ... ``<!-- END name -->``. Tools that measure
something (evaluate, experiments, the benchmark) replace their own section and leave the rest of
the document alone, so the numbers in it are always the output of a run, never typed in.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["DOCS_DIR", "MODEL_DOC", "replace_section", "update_section"]

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs"
MODEL_DOC = DOCS_DIR / "model.md"


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"


def replace_section(text: str, name: str, body: str) -> str:
    """`text` with section `name` holding `body`; the section is appended if it is not there."""
    begin, end = _markers(name)
    block = f"{begin}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text, count=1)
    return text.rstrip() + ("\n\n" if text.strip() else "") + block + "\n"


def update_section(name: str, body: str, path: Path = MODEL_DOC) -> None:
    """Rewrite one generated section of the model document in place."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# The credit scorecard\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(replace_section(text, name, body), encoding="utf-8")
