"""The README is the newcomer's front door (the two commands first, then the pages of the manual);
docs/ is the manual: every setting on the configuration page, every link leading somewhere, every
page opening with what it is for."""

from __future__ import annotations

import re
from pathlib import Path

from shared.settings import REPO_ROOT, Settings, variable_of

README = (REPO_ROOT / "README.md").read_text()
DOCS = REPO_ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
CONFIGURATION = DOCS / "configuration.md"

_LINK = re.compile(r"\]\(([^)\s]+)\)")  # [text](target)
_DOC_PATH = re.compile(r"`(docs/[\w./-]+\.md)`")  # a page named by its path in code style


def test_the_two_commands_come_first() -> None:
    head = README[: README.index("## How it fits together")]
    assert "make demo" in head and "make test" in head


def test_the_readme_stays_a_ten_minute_read() -> None:
    assert len(README.splitlines()) <= 200


def test_every_setting_is_documented_on_the_configuration_page_that_the_readme_links() -> None:
    page = CONFIGURATION.read_text()
    missing = [variable_of(name) for name in Settings.model_fields if f"`{variable_of(name)}`" not in page]
    assert not missing, f"docs/configuration.md lacks: {missing}"
    assert "](docs/configuration.md)" in README


def test_the_readme_links_every_page_of_the_manual() -> None:
    unlinked = [page.name for page in PAGES if f"](docs/{page.name})" not in README]
    assert not unlinked, f"README.md's 'Where to go next' does not link: {unlinked}"


def _broken_links(page: Path) -> list[str]:
    text = page.read_text()
    broken = []
    for target in _LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # an address on the web, or a heading of the same page
        if not (page.parent / target.split("#")[0]).exists():
            broken.append(target)
    broken += [path for path in _DOC_PATH.findall(text) if not (REPO_ROOT / path).exists()]
    return broken


def test_every_link_of_the_readme_and_the_manual_leads_to_a_file() -> None:
    broken = {page.name: links for page in [REPO_ROOT / "README.md", *PAGES] if (links := _broken_links(page))}
    assert not broken, f"links to nothing: {broken}"


def test_every_page_of_the_manual_opens_with_a_paragraph_saying_what_it_is_for() -> None:
    def opening(page: Path) -> str:
        blocks = page.read_text().split("\n\n")
        return blocks[1] if blocks[0].startswith("# ") and len(blocks) > 1 else ""

    not_prose = [
        page.name
        for page in PAGES
        if not (first := opening(page)) or first.lstrip()[0] in "-|<`#>*0123456789" or first.startswith("    ")
    ]
    assert not not_prose, f"these pages do not open with a title and then a paragraph: {not_prose}"
