"""Settings: defaults, validation errors that name the setting, and password redaction."""

from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from pytest_django.fixtures import Settings as SettingsWrapper

from ingestion.conf import load_settings, redact_url

DEFAULT_NAMES = [
    "INGESTION_BROKER_URL",
    "INGESTION_PREFIX",
    "INGESTION_WINDOW",
    "INGESTION_CONFIRM_TIMEOUT",
    "INGESTION_MANAGEMENT_URL",
    "INGESTION_REQUESTED_BY",
]


def test_defaults_apply_when_nothing_is_set(settings: SettingsWrapper) -> None:
    for name in DEFAULT_NAMES:
        delattr(settings, name)
    config = load_settings()
    assert config.broker_url == "amqp://guest:guest@127.0.0.1:5672/%2F"
    assert config.prefix == ""
    assert config.exchange == "ingest"
    assert config.window == timedelta(hours=1)
    assert config.confirm_timeout == 10.0
    assert config.management_url == "http://127.0.0.1:15672"
    assert (config.management_user, config.management_password) == ("guest", "guest")
    assert config.requested_by == "django"
    assert config.max_span == timedelta(days=7)
    assert config.vhost == "/"


def test_management_credentials_default_to_the_broker_urls(settings: SettingsWrapper) -> None:
    settings.INGESTION_BROKER_URL = "amqp://ops:p%40ss@broker.internal:5672/fleet"
    config = load_settings()
    assert (config.management_user, config.management_password) == ("ops", "p@ss")
    assert config.vhost == "fleet"


def test_window_accepts_duration_text(settings: SettingsWrapper) -> None:
    settings.INGESTION_WINDOW = "30m"
    assert load_settings().window == timedelta(minutes=30)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("INGESTION_BROKER_URL", "http://127.0.0.1:5672/"),
        ("INGESTION_BROKER_URL", 5672),
        ("INGESTION_BROKER_URL", "amqp://guest:guest@127.0.0.1:notaport/"),
        ("INGESTION_PREFIX", "has space"),
        ("INGESTION_PREFIX", None),
        ("INGESTION_WINDOW", timedelta(0)),
        ("INGESTION_WINDOW", "soon"),
        ("INGESTION_WINDOW", 3600),
        ("INGESTION_CONFIRM_TIMEOUT", 0),
        ("INGESTION_CONFIRM_TIMEOUT", "10"),
        ("INGESTION_CONFIRM_TIMEOUT", True),
        ("INGESTION_MANAGEMENT_URL", "amqp://127.0.0.1:15672"),
        ("INGESTION_MANAGEMENT_PASSWORD", 1234),
        ("INGESTION_REQUESTED_BY", "x" * 257),
        ("INGESTION_MAX_SPAN", timedelta(seconds=-1)),
        ("INGESTION_SCHEMA_PATH", "/nonexistent/schema.json"),
    ],
)
def test_a_bad_value_raises_improperly_configured_naming_the_setting(
    settings: SettingsWrapper, name: str, value: Any
) -> None:
    setattr(settings, name, value)
    with pytest.raises(ImproperlyConfigured, match=name):
        load_settings()


def test_a_bad_broker_url_is_reported_without_its_password(settings: SettingsWrapper) -> None:
    settings.INGESTION_BROKER_URL = "http://admin:hunter2@127.0.0.1:5672/"
    with pytest.raises(ImproperlyConfigured) as caught:
        load_settings()
    assert "hunter2" not in str(caught.value)
    assert "admin:***@127.0.0.1" in str(caught.value)


def test_settings_repr_hides_both_passwords(settings: SettingsWrapper) -> None:
    settings.INGESTION_BROKER_URL = "amqp://admin:hunter2@127.0.0.1:5672/%2F"
    settings.INGESTION_MANAGEMENT_PASSWORD = "swordfish"  # noqa: S105 - a fake to hide
    text = repr(load_settings())
    assert "hunter2" not in text
    assert "swordfish" not in text


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("amqp://u:secret@h:5672/%2F", "amqp://u:***@h:5672/%2F"),
        ("amqp://u@h/", "amqp://u@h/"),
        ("amqp://h/", "amqp://h/"),
        ("amqps://u:p%40ss@h/v?heartbeat=5", "amqps://u:***@h/v?heartbeat=5"),
    ],
)
def test_redact_url_replaces_only_the_password(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted
