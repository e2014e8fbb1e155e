from __future__ import annotations

import json
from typing import Any

import pytest

from devtools.germancredit import GermanRow, load_rows
from services.scoring.scorecard import DEFAULT_ARTIFACT, Scorecard


@pytest.fixture(scope="session")
def rows() -> tuple[GermanRow, ...]:
    return load_rows()


@pytest.fixture(scope="session")
def artifact() -> dict[str, Any]:
    return json.loads(DEFAULT_ARTIFACT.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def scorecard() -> Scorecard:
    return Scorecard.load(DEFAULT_ARTIFACT)
