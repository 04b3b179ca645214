"""Cross-language contract: the Django app and the Rust ``ingestctl`` make the same jobs.

Needs ``target/debug/ingestctl`` (or ``INGESTCTL``); it fails, never skips,
when the binary is missing, since scripts/test builds it first.
"""

import json
import subprocess

import pytest

from ingestion.conf import load_settings
from ingestion.schema import validate_body

from .conftest import manage_py, manage_py_env, rust_binary, unique_prefix

pytestmark = pytest.mark.rust

# Sub-second and offset times exercise the canonical form on both sides.
CASES = [
    ["--device", "press-07", "--device", "oven.2",
     "--from", "2026-12-01T00:00:00Z", "--to", "2026-12-01T02:30:00Z", "--window", "1h"],
    ["--device", "line-3.cell_9", "--from", "2026-12-01T01:00:00.250+01:00",
     "--to", "2026-12-02T00:00:00.000001Z", "--window", "7h"],
    ["--device", "press-07", "--from", "2026-12-01T00:00:00Z",
     "--to", "2026-12-01T00:00:45Z", "--window", "15s"],
]  # fmt: skip

# requested_by names the producer ("django:…" here), so it differs by design;
# every other field must be identical.
COMPARED = ("version", "job_id", "device", "start", "end")


def bodies(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


@pytest.mark.parametrize("args", CASES)
def test_django_and_ingestctl_dry_runs_agree(args: list[str]) -> None:
    ingestctl = rust_binary("ingestctl", "INGESTCTL")
    rust = subprocess.run(
        [str(ingestctl), "enqueue", *args, "--dry-run"], capture_output=True, text=True, timeout=60
    )
    django = subprocess.run(
        manage_py("enqueue_ingestion", *args, "--dry-run"),
        env=manage_py_env(unique_prefix()),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert rust.returncode == 0, f"ingestctl failed: {rust.stderr}"
    assert django.returncode == 0, f"manage.py failed: {django.stderr}"
    rust_bodies, django_bodies = bodies(rust.stdout), bodies(django.stdout)
    assert rust_bodies, "ingestctl --dry-run printed no job"
    for body in rust_bodies:
        validate_body(body, load_settings().schema_path)
    assert [{key: body.get(key) for key in COMPARED} for body in rust_bodies] == [
        {key: body.get(key) for key in COMPARED} for body in django_bodies
    ]
