"""Operators' keys: the private key only the CLI reads, the public ring the fleet holds, and the
signed retirement that brings a key's end forward."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from creditwindow.key_ops import new_key, ring_entry, signed_retirement, signing_key, write_key_file
from services.policy.control.checks import Refused, Retirement, check_retirement
from shared.contracts import KeyRetired
from shared.settings import DEV_OPERATOR_KEY, DEV_OPERATOR_PUBLIC_KEY, Settings
from shared.signing import KeyRing, OperatorKey, PublicKey, SigningRefused, encode_key
from tests.clocks import NOW, clock_at

OPS = OperatorKey("ops-a", bytes(range(32)))
OTHER = OperatorKey("ops-b", bytes(range(1, 33)))


@pytest.fixture(autouse=True)
def _cli_clock_at_now(monkeypatch: pytest.MonkeyPatch) -> None:
    # The CLI's clock (Settings.clock) stands at the tests' NOW, whatever the wall says.
    monkeypatch.setattr(Settings, "clock", lambda self: clock_at(NOW))


def _ring_json(*keys: OperatorKey, retire_at: datetime = NOW + timedelta(days=90)) -> dict[str, dict[str, str]]:
    return {key.key_id: {"public_key": encode_key(key.public), "retire_at": retire_at.isoformat()} for key in keys}


def _settings(*keys: OperatorKey, signer: OperatorKey | None = OPS, **values: object) -> Settings:
    given = {"operator_private_key": signer.text()} if signer is not None else {}
    return Settings(operator_public_keys=_ring_json(*keys), topic_namespace="ns", **given, **values)  # type: ignore[arg-type]


def test_the_development_key_pair_is_a_pair() -> None:
    assert encode_key(OperatorKey.parse(DEV_OPERATOR_KEY, source="dev").public) == DEV_OPERATOR_PUBLIC_KEY
    assert Settings().operator_key().key_id in Settings().operator_ring.keys  # local: signs and verifies out of the box


def test_a_key_reads_back_as_written_comments_ignored() -> None:
    assert OperatorKey.parse(f"# a comment\n\n{OPS.text()}\n", source="x") == OPS


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("no-colon-here", "one line"),
        (f"{OPS.text()}\n{OTHER.text()}", "one line"),
        ("bad id!:" + OPS.text().split(":")[1], "not a key id"),
        ("ops-a:c2hvcnQ=", "not the base64 of 32 bytes"),
        ("ops-a:%%%", "not the base64 of 32 bytes"),
    ],
)
def test_a_malformed_private_key_is_refused_naming_where_it_came_from(text: str, says: str) -> None:
    with pytest.raises(SigningRefused, match=says) as refused:
        OperatorKey.parse(text, source="CW_OPERATOR_PRIVATE_KEY")
    assert str(refused.value).startswith("CW_OPERATOR_PRIVATE_KEY:")
    assert OPS.text().split(":")[1] not in str(refused.value)


def test_a_private_key_never_shows_in_a_repr() -> None:
    assert OPS.text().split(":")[1] not in repr(OPS) and "seed" not in repr(OPS)


def test_a_new_key_file_is_for_its_owner_only_and_never_overwritten(tmp_path: Path) -> None:
    key, path = new_key("ops-new"), tmp_path / "ops-new.key"
    write_key_file(path, key)
    assert path.stat().st_mode & 0o777 == 0o600
    assert Settings(operator_private_key_file=path).operator_key() == key
    with pytest.raises(FileExistsError):
        write_key_file(path, new_key("ops-new"))


def test_a_key_file_others_may_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    path.write_text(OPS.text())
    path.chmod(0o644)
    with pytest.raises(SigningRefused, match="chmod 600"):
        Settings(operator_private_key_file=path).operator_key()
    with pytest.raises(SigningRefused, match="cannot be read"):
        Settings(operator_private_key_file=tmp_path / "absent.key").operator_key()


def test_outside_local_and_test_there_is_no_default_key_to_sign_with() -> None:
    with pytest.raises(SigningRefused, match="CW_OPERATOR_PRIVATE_KEY_FILE"):
        Settings(environment="production").operator_key()


def test_the_ring_entry_new_prints_is_what_the_settings_read() -> None:
    entry = json.loads("{" + ring_entry(OPS, NOW + timedelta(days=365)) + "}")
    ring = Settings(operator_public_keys=entry).operator_ring
    assert ring.keys["ops-a"] == PublicKey("ops-a", OPS.public, NOW + timedelta(days=365))


def test_the_ring_refuses_a_malformed_public_key_an_id_or_a_time_without_zone() -> None:
    for wrong in (
        {"ops-a": {"public_key": "c2hvcnQ=", "retire_at": NOW.isoformat()}},
        {"bad id": {"public_key": encode_key(OPS.public), "retire_at": NOW.isoformat()}},
        {"ops-a": {"public_key": encode_key(OPS.public), "retire_at": "2027-01-01T00:00:00"}},
        {"ops-a": {"public_key": encode_key(OPS.public)}},
    ):
        with pytest.raises(ValidationError):
            Settings(operator_public_keys=wrong)  # type: ignore[arg-type]


def test_the_cli_signs_only_with_a_key_of_the_ring_that_is_not_retired() -> None:
    assert signing_key(_settings(OPS)) == OPS
    with pytest.raises(SigningRefused, match="not in the fleet's public ring"):
        signing_key(_settings(OTHER))
    impostor = Settings(operator_public_keys={"ops-a": _ring_json(OTHER)["ops-b"]}, operator_private_key=OPS.text())  # type: ignore[arg-type]
    with pytest.raises(SigningRefused, match="not this private key's"):
        signing_key(impostor)
    retired = Settings(operator_public_keys=_ring_json(OPS, OTHER, retire_at=NOW - timedelta(days=1)), operator_private_key=OPS.text())  # type: ignore[arg-type]
    with pytest.raises(SigningRefused, match="'ops-a' retired at"):
        signing_key(retired)


def test_a_retirement_only_ever_brings_a_key_forward() -> None:
    ring = KeyRing({"ops-a": PublicKey("ops-a", OPS.public, NOW + timedelta(days=9))})
    earlier = ring.retire("ops-a", NOW)
    assert earlier.keys["ops-a"].retire_at == NOW
    assert earlier.retire("ops-a", NOW + timedelta(days=30)).keys["ops-a"].retire_at == NOW
    assert ring.retire("nobody", NOW) is ring
    assert earlier.may_sign(NOW + timedelta(seconds=1)) == []


def _retirement(settings: Settings, **changes: object) -> KeyRetired:
    signed = signed_retirement(settings, retired_key_id="ops-b", issued_by="ops_lin")
    return signed.model_copy(update=changes)


def _check(retirement: KeyRetired, ring: KeyRing, *, logged_at: datetime = NOW, namespace: str = "ns") -> Retirement | Refused:
    return check_retirement(retirement, ring=ring, namespace=namespace, logged_at=logged_at)


def test_a_signed_retirement_retires_its_key_from_when_it_reached_the_log_at_the_earliest() -> None:
    settings = _settings(OPS, OTHER)
    ring = settings.operator_ring
    assert _check(_retirement(settings), ring) == Retirement("ops-b", NOW)
    # Logged a minute after it says: nothing logged before it is judged again.
    assert _check(_retirement(settings), ring, logged_at=NOW + timedelta(minutes=1)) == Retirement("ops-b", NOW + timedelta(minutes=1))


@pytest.mark.parametrize(
    ("change", "error_type"),
    [
        ({"retired_key_id": "ops-a"}, "forged"),  # the signature covers which key it retires
        ({"retire_at": NOW + timedelta(days=1)}, "forged"),  # and when
        ({"signature": "0" * 64}, "hmac"),
        ({"key_id": "ops-z"}, "unknown_key"),
    ],
)
def test_a_tampered_or_unsigned_retirement_is_refused(change: dict[str, object], error_type: str) -> None:
    settings = _settings(OPS, OTHER)
    refused = _check(_retirement(settings, **change), settings.operator_ring)
    assert isinstance(refused, Refused) and refused.error_type == error_type


def test_a_retirement_signed_for_another_namespace_or_by_a_retired_key_or_reaching_back_is_refused() -> None:
    settings = _settings(OPS, OTHER)
    ring = settings.operator_ring
    other = _check(_retirement(settings), ring, namespace="prod")
    assert isinstance(other, Refused) and other.error_type == "other_namespace"
    by_retired = _check(_retirement(settings), ring.retire("ops-a", NOW - timedelta(hours=1)))
    assert isinstance(by_retired, Refused) and by_retired.error_type == "retired_key"
    back = signed_retirement(settings, retired_key_id="ops-b", retire_at=NOW - timedelta(days=1), issued_by="ops_lin")
    refused = _check(back, ring)
    assert isinstance(refused, Refused) and refused.error_type == "retroactive" and "taken out of the ring" in refused.error


def test_keys_new_runs_before_a_production_deployment_has_a_ring_and_nothing_else_does(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from creditwindow.cli import app

    production = {"CW_ENVIRONMENT": "production"}
    made = CliRunner().invoke(app, ["keys", "new", "ops-first", "--out", str(tmp_path / "first.key"), "--json"], env=production)
    assert made.exit_code == 0, made.output
    entry = json.loads(made.output)
    assert entry["key_id"] == "ops-first" and (tmp_path / "first.key").stat().st_mode & 0o777 == 0o600
    refused = CliRunner().invoke(app, ["keys", "list"], env=production)
    assert refused.exit_code == 1 and "CW_OPERATOR_PUBLIC_KEYS" in " ".join(refused.output.split())
