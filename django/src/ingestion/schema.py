"""Validation of job bodies against the contract's JSON Schema, before they leave the process."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from ingestion.errors import InvalidJobError
from ingestion.job import MAX_BODY_BYTES, parse_time


@lru_cache(maxsize=4)
def schema_validator(path: Path) -> Draft202012Validator:
    """Return a validator, with format checking, for the schema file at ``path``.

    Cached per path: the schema is read once per process.
    """
    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def validate_body(body: dict[str, Any], schema_path: Path) -> None:
    """Check a body against the schema and the rules the schema cannot state.

    Those rules are ``start < end`` and the 64 KiB size limit; the maximum span
    is checked when the windows are planned.

    Raises:
        InvalidJobError: listing every violation, with the job id.

    """
    errors = sorted(
        schema_validator(schema_path).iter_errors(body), key=lambda error: list(error.path)
    )
    problems = [
        f"{'/'.join(map(str, error.path)) or '<body>'}: {error.message}" for error in errors
    ]
    if not errors and not parse_time(body["start"]) < parse_time(body["end"]):
        problems.append("start must be before end")
    size = len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())
    if size > MAX_BODY_BYTES:
        problems.append(f"body is {size} bytes, over the {MAX_BODY_BYTES}-byte limit")
    if problems:
        raise InvalidJobError(
            f"job {body.get('job_id')!r} breaks the contract: " + "; ".join(problems)
        )
