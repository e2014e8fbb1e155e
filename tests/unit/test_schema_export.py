"""`creditwindow schema export DIR`: a JSON Schema per event that upstream apps can validate against."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from creditwindow.cli import app
from devtools.germancredit import applications
from shared.contracts import EVENT_TYPES
from shared.wire import encode


def test_schema_export_writes_one_schema_per_event_that_real_events_satisfy(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["schema", "export", str(tmp_path)])
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in tmp_path.glob("*.schema.json"))
    assert files == sorted(f"{name}.v{model.SCHEMA_VERSION}.schema.json" for name, model in EVENT_TYPES.items())
    assert "WindowOpened.v2.schema.json" in files  # the basis lost its income-derived amounts

    schema = json.loads((tmp_path / "ApplicationReceived.v1.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    application = json.loads(encode(next(applications("schema"))).value)
    jsonschema.validate(application, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**application, "customer_id": 7}, schema)
    assert schema["x-kafka"] == {"event_type_header": "ApplicationReceived", "schema_version": 1}
