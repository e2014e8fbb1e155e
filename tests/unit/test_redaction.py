"""The structlog processor masks anything that looks like personal data."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from shared.logging import configure_logging, redact


def test_phone_id_card_email_and_card_numbers_are_masked() -> None:
    text = "call 13812345678 or +86 139 1234 5678? id 11010519491231002X mail zhang.san@example.com card 6222 0212 3456 7890 123"
    masked = redact(text)
    for secret in ("13812345678", "11010519491231002X", "zhang.san@example.com", "6222 0212 3456 7890 123"):
        assert secret not in masked
    assert "[phone]" in masked and "[id-card]" in masked and "[email]" in masked and "[card]" in masked


def test_pseudonymous_ids_and_uuids_survive() -> None:
    values = ["cus_8f3a51c2d9e04b77", "app_20261128_000001", "3f2a9c1b-0d4e-5f60-8a7b-9c0d1e2f3a4b", "german-woe@1+eb436e95"]
    assert [redact(v) for v in values] == values


def test_sensitive_keys_are_redacted_in_log_lines(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging(service="test", fmt="json")
    structlog.get_logger("t").warning("probe", name="张三", phone="13812345678", note="id 11010519491231002X", customer_id="cus_8f3a51c2d9e04b77")
    logging.getLogger("foreign.library").warning("mail me at zhang.san@example.com")
    lines = [json.loads(line) for line in capfd.readouterr().err.strip().splitlines()]
    ours = next(line for line in lines if line["event"] == "probe")
    assert ours["name"] == "[redacted]" and ours["phone"] == "[redacted]"
    assert "11010519491231002X" not in ours["note"]
    assert (ours["customer_id"], ours["service"], ours["logger"]) == ("cus_8f3a51c2d9e04b77", "test", "t")
    foreign = next(line for line in lines if line.get("logger") == "foreign.library")
    assert "zhang.san@example.com" not in foreign["event"]
