"""Validation against shared/schema/ingest-job.v1.json, and the packaged copy of that file."""

from pathlib import Path
from typing import Any

import pytest
from pytest_django.fixtures import Settings as SettingsWrapper

from ingestion import InvalidJobError, plan_ingestion
from ingestion.conf import load_settings
from ingestion.schema import validate_body

from .conftest import REPO_ROOT

REPO_SCHEMA = REPO_ROOT / "shared" / "schema" / "ingest-job.v1.json"
PACKAGED_SCHEMA = REPO_ROOT / "django" / "src" / "ingestion" / "data" / "ingest-job.v1.json"

VALID: dict[str, Any] = {
    "version": 1,
    "job_id": "a17b77da-000a-56ba-88fe-2a048dd09a37",
    "device": "press-07",
    "start": "2026-12-01T00:00:00Z",
    "end": "2026-12-01T01:00:00Z",
    "requested_by": "django:test",
}


def test_packaged_schema_is_a_byte_copy_of_the_repository_schema() -> None:
    """The wheel ships a copy; when the contract changes, copy it again (cp shared/schema/...)."""
    assert PACKAGED_SCHEMA.read_bytes() == REPO_SCHEMA.read_bytes()


def test_default_schema_is_the_repository_copy_in_a_checkout() -> None:
    assert load_settings().schema_path == REPO_SCHEMA.resolve()


def test_a_contract_body_is_valid() -> None:
    validate_body(dict(VALID), REPO_SCHEMA)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 2}, "version"),
        ({"job_id": "not-a-uuid"}, "job_id"),
        ({"device": "-press"}, "device"),
        # Matches the schema's pattern; only the date-time format check catches it,
        # which proves the FormatChecker is in use.
        ({"start": "2026-13-01T00:00:00Z"}, "start"),
        ({"end": "2026-12-01T01:00:00"}, "end"),
        ({"requested_by": "x" * 257}, "requested_by"),
        ({"end": "2026-12-01T00:00:00Z"}, "start must be before end"),
    ],
)
def test_bodies_that_break_the_contract_are_rejected(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidJobError, match=message):
        validate_body({**VALID, **change}, REPO_SCHEMA)


def test_a_body_missing_a_required_field_is_rejected() -> None:
    body = dict(VALID)
    del body["device"]
    with pytest.raises(InvalidJobError, match="'device' is a required property"):
        validate_body(body, REPO_SCHEMA)


def test_plan_uses_the_configured_schema(settings: SettingsWrapper, tmp_path: Path) -> None:
    """A schema that forbids everything proves the configured file is the one used."""
    strict = tmp_path / "schema.json"
    strict.write_text('{"$schema": "https://json-schema.org/draft/2020-12/schema", "not": {}}')
    settings.INGESTION_SCHEMA_PATH = str(strict)
    with pytest.raises(InvalidJobError, match="breaks the contract"):
        plan_ingestion("press-07", "2026-12-01T00:00:00Z", "2026-12-01T01:00:00Z")
