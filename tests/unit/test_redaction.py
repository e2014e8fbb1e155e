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


@pytest.mark.parametrize(
    "phone",
    ["13912345678", "+86 139 1234 5678", "+86-139-1234-5678", "139-1234-5678", "139 1234 5678", "(+86) 139 1234 5678",
     "0086 13912345678", "+8613912345678", "86 139-1234-5678"],
)  # fmt: skip
def test_phone_numbers_are_masked_however_they_are_written(phone: str) -> None:
    masked = redact(f"customer said {phone}, call back")
    assert masked == "customer said [phone], call back"


@pytest.mark.parametrize(
    "resident_id",
    ["11010519491231002X", "110105194912310021", "110105 19491231 002X", "110105 1949 1231 002x", "110105-19491231-0021"],
)
def test_resident_id_numbers_are_masked_spaced_or_not(resident_id: str) -> None:
    assert redact(f"id {resident_id} given") == "id [id-card] given"


def test_numbers_that_are_not_personal_data_survive() -> None:
    values = ["took 1732000000000 ms", "offset 12345678901", "limit 30000 apr 0.1095", "points 612.5 pd 0.031"]
    assert [redact(v) for v in values] == values


def test_a_password_in_any_url_is_masked() -> None:
    assert redact("Redis at redis://:s3cret-pw@10.0.0.5:6379/0 refused") == "Redis at redis://:***@10.0.0.5:6379/0 refused"
    assert redact("rediss://app:s3cret-pw@cache:6380/1") == "rediss://app:***@cache:6380/1"
    assert redact("redis://cache:6379/0?password=s3cret-pw") == "redis://cache:6379/0?password=***"


def test_the_settings_secrets_never_reach_a_log_line(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging(service="test", fmt="json", secrets=["planted-sasl-password-0001"])
    try:
        structlog.get_logger("t").error("connect_failed", error="SASL auth with planted-sasl-password-0001 failed")
        logging.getLogger("aiokafka").error("password=planted-sasl-password-0001 rejected")
        err = capfd.readouterr().err
        assert "planted-sasl-password-0001" not in err and "***" in err
    finally:
        configure_logging(service="test", fmt="json")


def test_token_and_key_fields_are_redacted_by_name() -> None:
    assert redact({"api_token": "abc", "signing_key": "k", "limit": 5}) == {"api_token": "[redacted]", "signing_key": "[redacted]", "limit": 5}
