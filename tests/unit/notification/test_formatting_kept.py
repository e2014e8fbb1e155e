"""The formatters keep what they formatted: the kept text is exactly what Babel writes for the same figure."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from babel.dates import format_date, format_time
from babel.numbers import format_currency, format_percent
from babel.units import format_unit

from services.notification.disclosure import (
    TIME_ZONE,
    _babel,
    _zone_name,
    daily_percent,
    duration,
    moment,
    money,
    percent,
    share_of_income,
)

LOCALES = ("zh-CN", "en")


def _babel_moment(when: datetime, locale: str) -> str:
    local = when.astimezone(TIME_ZONE)
    day = format_date(local.date(), "long", locale=_babel(locale))
    clock = format_time(local, "short", tzinfo=TIME_ZONE, locale=_babel(locale))
    return f"{day} {clock}({_zone_name(locale)})" if locale == "zh-CN" else f"{day}, {clock} ({_zone_name(locale)})"


def test_every_moment_of_a_minute_reads_as_babel_writes_it() -> None:
    rng = random.Random(7)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for _ in range(400):
        when = start + timedelta(seconds=rng.uniform(0, 400 * 86_400))
        for locale in LOCALES:
            assert moment(when, locale) == _babel_moment(when, locale)
            # twice: the second one is the kept text
            assert moment(when + timedelta(microseconds=1), locale) == _babel_moment(when + timedelta(microseconds=1), locale)


def test_kept_money_percentages_and_durations_read_as_babel_writes_them() -> None:
    rng = random.Random(11)
    for _ in range(300):
        amount = rng.choice([rng.randrange(0, 500_000, 100), rng.uniform(0, 100), 10_000, 10_000.0])
        rate = round(rng.uniform(0, 0.36), 4)
        daily = round(rate / 365, 6)
        hours = rng.randrange(0, 24 * 400)
        for locale in LOCALES:
            for _ in range(2):
                assert money(amount, locale) == format_currency(amount, "CNY", format="¤#,##0", currency_digits=False, locale=_babel(locale))
                assert money(amount, locale, cents=True) == format_currency(amount, "CNY", locale=_babel(locale))
                assert percent(rate, locale) == format_percent(rate, format="#,##0.00%", locale=_babel(locale))
                assert daily_percent(daily, locale) == format_percent(daily, format="0.00##%", locale=_babel(locale))
                unit = ("duration-hour", hours) if hours < 48 else ("duration-day", round(hours / 24))
                assert duration(timedelta(hours=hours), locale) == format_unit(unit[1], unit[0], locale=_babel(locale))


def test_an_integer_and_a_float_amount_are_kept_apart() -> None:
    for locale in LOCALES:
        assert money(10_000, locale, cents=True) == format_currency(10_000, "CNY", locale=_babel(locale))
        assert money(10_000.0, locale, cents=True) == format_currency(10_000.0, "CNY", locale=_babel(locale))
        assert share_of_income(1 / 3, locale) == share_of_income(1 / 3, locale)
