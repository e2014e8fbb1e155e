"""Kafka SASL and TLS are configured from settings, for FastStream and for plain aiokafka clients."""

from __future__ import annotations

import ssl

import pytest
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram512

from shared.messaging import aiokafka_kwargs, make_broker
from shared.messaging.connection import _security
from shared.settings import Settings


def test_plaintext_needs_no_security() -> None:
    settings = Settings()
    assert _security(settings) is None
    assert aiokafka_kwargs(settings)["security_protocol"] == "PLAINTEXT"


def test_sasl_scram_over_tls_carries_credentials_and_a_tls_context() -> None:
    settings = Settings(
        kafka_bootstrap_servers="kafka.internal:9094",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="policy",
        kafka_sasl_password="pw",
    )
    security = _security(settings)
    assert isinstance(security, SASLScram512) and security.username == "policy"
    assert isinstance(security.ssl_context, ssl.SSLContext)
    kwargs = aiokafka_kwargs(settings)
    assert (kwargs["sasl_mechanism"], kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == ("SCRAM-SHA-512", "policy", "pw")
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    make_broker(settings, service="policy")  # builds without connecting


def test_sasl_plain_without_tls() -> None:
    settings = Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="PLAIN", kafka_sasl_username="u", kafka_sasl_password="p")
    security = _security(settings)
    assert isinstance(security, SASLPlaintext) and security.ssl_context is None


def test_tls_only_gets_a_context() -> None:
    security = _security(Settings(kafka_security_protocol="SSL"))
    assert isinstance(security, BaseSecurity) and isinstance(security.ssl_context, ssl.SSLContext)


def test_sasl_without_credentials_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="CW_KAFKA_SASL_USERNAME and CW_KAFKA_SASL_PASSWORD"):
        _security(Settings(kafka_security_protocol="SASL_SSL"))
