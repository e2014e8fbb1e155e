"""Print this machine's Debian mirrors, "<archive> <security>", read from its own apt sources.

The image scripts take their mirror from here, so no mirror is named in the repository.
Both one-line (sources.list) and deb822 (*.sources) files are read; disabled entries are skipped.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def mirrors(root: Path = Path("/")) -> tuple[str, str]:
    """The first archive mirror and the first security mirror among the enabled apt sources."""
    archive = security = ""
    entries: list[tuple[str, list[str]]] = []
    apt = root / "etc" / "apt"
    for path in [apt / "sources.list", *sorted(apt.glob("sources.list.d/*.list"))]:
        try:
            lines = path.read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            words = re.sub(r"\[[^]]*\]", "", line.split("#")[0]).split()
            if len(words) >= 3 and words[0] == "deb":
                entries.append((words[1], [words[2]]))
    for path in sorted(apt.glob("sources.list.d/*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields: dict[str, list[str]] = {}
            for line in stanza.splitlines():
                if ":" in line and not line.lstrip().startswith("#"):
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.split()
            if "deb" in fields.get("types", []) and fields.get("enabled", ["yes"])[0].lower() != "no":
                entries += [(uri, fields.get("suites", [])) for uri in fields.get("uris", [])]
    for uri, suites in entries:
        for suite in suites:
            if suite.endswith("-security"):
                security = security or uri
            elif re.fullmatch(r"[a-z]+(-updates)?", suite):
                archive = archive or uri
    return archive, security


if __name__ == "__main__":
    print(*mirrors(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/")))
