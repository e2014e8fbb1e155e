"""Where `creditwindow policy optimise` finds its recorded scores, by name.

`scores` (the `credit.scores` topic, as `creditwindow simulate` reads it) is the operators' own and
built into the command. Tooling outside the runtime adds others when its plugin registers (the dev
tooling adds `germancredit`: the German Credit rows scored here as one budget period), so the
runtime never imports it.
"""

from __future__ import annotations

from collections.abc import Callable

from services.policy.control.document import PolicyDocument
from shared.contracts import ScoreComputed
from shared.settings import Settings

__all__ = ["ScoreSource", "register_source", "registered_sources"]

# Given the policy (whose budget period the scores may be laid out in) and the settings: a line saying
# where the scores came from, and the scores.
ScoreSource = Callable[[PolicyDocument, Settings], tuple[str, list[ScoreComputed]]]

_SOURCES: dict[str, ScoreSource] = {}


def register_source(name: str, source: ScoreSource) -> None:
    """Offer `source` to `policy optimise --source NAME` (a plugin calls this when it registers)."""
    _SOURCES[name] = source


def registered_sources() -> dict[str, ScoreSource]:
    return dict(_SOURCES)
