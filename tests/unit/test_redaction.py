"""The structlog processor masks anything that looks like personal data."""

from __future__ import annotations

import json
import logging

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from shared.logging import configure_logging, redact


def test_phone_id_card_email_and_card_numbers_are_masked() -> None:
    text = "call 13812345678 or +86 139 1234 5678? id 11010519491231002X mail zhang.san@example.com card 6222 0212 3456 7890 123"
    masked = redact(text)
    for secret in ("13812345678", "11010519491231002X", "zhang.san@example.com", "6222 0212 3456 7890 123"):
        assert secret not in masked
    assert "[phone]" in masked and "[id-card]" in masked and "[email]" in masked and "[card]" in masked


def test_pseudonymous_ids_and_uuids_survive() -> None:
    values = [
        "cus_8f3a51c2d9e04b77", "app_20261128_000001", "3f2a9c1b-0d4e-5f60-8a7b-9c0d1e2f3a4b", "german-woe@1+eb436e95",
        "cus_0000000000000000", "12345678-1234-4234-abcd-1234567890ab",  # ids whose first 16 characters are digits
    ]  # fmt: skip
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


# --- the numbers as people write them, read before they are matched (NFKC, separators) -----------------
# The rule (shared/logging.py): read the text as a person does (NFKC: full-width digits and separators
# are ASCII; a digit of any script is its 0-9), then a personal number is a run of digits of its
# length and shape, glued or with one kind of separator (space, -, ., _) between any two digits, no
# group between separators longer than 8 digits, touching no more of a number or a word (a phone may
# follow `tel`).

FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
GROUPINGS = [(11,), (3, 4, 4), (3, 8), (3, 3, 5), (1,) * 11]


def _read(text: str) -> str:
    """The text as redaction reads it, separators dropped: no digit of a personal number may be left in it."""
    import unicodedata

    normal = "".join(str(unicodedata.decimal(c)) if unicodedata.decimal(c, None) is not None else unicodedata.normalize("NFKC", c) for c in text)
    return "".join(c for c in normal if c not in " ._-\u3000")


@st.composite
def written_mobiles(draw: st.DrawFn) -> tuple[str, str]:
    """A mainland mobile number as a person may write it, and its digits."""
    digits = "1" + draw(st.sampled_from("3456789")) + draw(st.text("0123456789", min_size=9, max_size=9))
    separator = draw(st.sampled_from(["", " ", "-", ".", "_", "\u3000", "－", "．", "＿"]))
    groups, at = [], 0
    for size in draw(st.sampled_from(GROUPINGS)):
        groups.append(digits[at : at + size])
        at += size
    number = separator.join(groups)
    if draw(st.booleans()):
        number = number.translate(FULL_WIDTH)
    prefix = draw(st.sampled_from(["", "tel", "TEL", "Tel:", "tel ", "tel+86", "+86 ", "+86-", "0086", "86 ", "(+86) ", "电话：", "手机"]))
    return prefix + number, digits


sentences = st.sampled_from(["{}", "call {} now", "客户说 {}，请回电", "note: {}.", "({})", "phone={}&x=1", "我的号码是{}"])


@given(written_mobiles(), sentences)
def test_a_mobile_number_is_masked_however_it_is_written(mobile: tuple[str, str], sentence: str) -> None:
    written, digits = mobile
    masked = redact(sentence.format(written))
    assert "[phone]" in masked, masked
    assert digits not in _read(masked), masked


@pytest.mark.parametrize("written", ["１３８１２３４５６７８", "138.1234.5678", "138_1234_5678", "tel13812345678"])
def test_full_width_dotted_underscored_and_tel_prefixed_mobiles_are_masked(written: str) -> None:
    assert redact(f"customer said {written}, call back") in ("customer said [phone], call back", "customer said tel[phone], call back")


@given(written_mobiles(), sentences)
def test_free_text_in_events_is_masked_the_same_way(mobile: tuple[str, str], sentence: str) -> None:
    from pydantic import TypeAdapter

    from shared.contracts import FreeText

    written, digits = mobile
    stored = TypeAdapter(FreeText).validate_python(sentence.format(written))
    assert "[phone]" in stored and digits not in _read(stored)


@given(
    st.text("0123456789", min_size=17, max_size=17).map(lambda d: d + "X")
    | st.text("0123456789", min_size=18, max_size=18),
    st.sampled_from([(18,), (6, 8, 4), (6, 4, 4, 4)]),
    st.sampled_from(["", " ", "-", ".", "_"]),
    st.booleans(),
)
def test_a_resident_id_number_is_masked_however_it_is_written(number: str, grouping: tuple[int, ...], separator: str, wide: bool) -> None:
    groups, at = [], 0
    for size in grouping:
        groups.append(number[at : at + size])
        at += size
    written = separator.join(groups)
    masked = redact(f"id {written.translate(FULL_WIDTH) if wide else written} given")
    assert masked == "id [id-card] given"


@given(st.text("0123456789", min_size=16, max_size=19), st.sampled_from(["", " ", "-", ".", "_"]), st.booleans())
def test_a_card_number_is_masked_however_it_is_written(number: str, separator: str, wide: bool) -> None:
    written = separator.join(number[i : i + 4] for i in range(0, len(number), 4))
    masked = redact(f"card {written.translate(FULL_WIDTH) if wide else written} used")
    assert masked in ("card [card] used", "card [id-card] used")  # 18 digits are also an ID number's length


ordinary_numbers = st.one_of(
    st.decimals(min_value=0, max_value=10**9, places=2).map(str),  # amounts
    st.integers(0, 10**10).map(str),  # counts, limits, offsets
    st.floats(0, 1, allow_nan=False).map(repr),  # probabilities, ratios, as Python writes them
    st.floats(0, 10**6, allow_nan=False).map(str),
    st.integers(10**12, 2 * 10**12).map(str),  # epoch milliseconds
    st.integers(10**9, 2 * 10**9).map(lambda s: f"{s}.{s % 10**6:06d}"),  # epoch seconds with microseconds
    st.dates().map(lambda d: d.strftime("%Y-%m-%d")),
    st.dates().map(lambda d: d.strftime("%Y.%m.%d")),
    st.dates().map(lambda d: d.strftime("%Y_%m_%d")),
    st.dates().map(lambda d: d.strftime("%Y%m%d")),
    st.datetimes().map(lambda t: t.isoformat(sep=" ")),
    st.datetimes().map(lambda t: t.isoformat()),
    st.builds(lambda d, n: f"app_{d:%Y%m%d}_{n:06d}", st.dates(), st.integers(0, 999_999)),  # application ids
    st.builds(lambda h: f"cus_{h:016x}", st.integers(0, 2**64 - 1)),  # customer ids
    st.uuids().map(str),  # event ids
    st.builds(lambda p, o: f"partition {p} offset {o}", st.integers(0, 255), st.integers(0, 10**10)),
)


@given(st.lists(ordinary_numbers, min_size=1, max_size=4), st.sampled_from([", ", " and ", "; ", " / "]))
def test_amounts_ids_dates_and_timestamps_are_never_taken_for_personal_data(values: list[str], joiner: str) -> None:
    text = f"limit {joiner.join(values)} ok"
    assert redact(text) == text
    wide = text.translate(FULL_WIDTH)
    assert redact(wide) == wide
