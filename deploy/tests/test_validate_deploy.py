"""Self-test of scripts/validate-deploy: the real tree passes, and each
deliberately broken copy of it fails with a message naming the fault.

Run with `scripts/validate-deploy --self-test` (which prepares the tools
first). Every test works on its own copy in a temporary folder.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "validate-deploy"
COPIED = ["Dockerfile", ".dockerignore", "docker-compose.yml", "deploy", "k8s",
          "docs/contract.md"]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the deployment files, to break one at a time."""
    root = tmp_path / "tree"
    for name in COPIED:
        source = REPO / name
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns(
                "__pycache__", "node_modules", "tests"))
        else:
            shutil.copy2(source, target)
    return root


def validate(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), str(root)], capture_output=True,
                          text=True, timeout=300)


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, count), encoding="utf-8")


def assert_fails_with(root: Path, pattern: str) -> None:
    result = validate(root)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "validate-deploy: FAILED" in output or result.returncode != 0
    assert re.search(pattern, output), f"{pattern!r} not in:\n{output}"


def test_the_unmodified_tree_passes(tree: Path) -> None:
    result = validate(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all checks passed" in result.stdout


def test_a_port_published_on_all_interfaces_fails(tree: Path) -> None:
    edit(tree / "docker-compose.yml", '"${INGEST_PUBLISH_ADDRESS:-127.0.0.1}:8428:8428"',
         '"8428:8428"')
    assert_fails_with(tree, r"victoriametrics: port .*8428.* not bound to 127\.0\.0\.1")


def test_an_invalid_compose_file_fails(tree: Path) -> None:
    edit(tree / "docker-compose.yml", "    stop_grace_period: 35s\n",
         "    stop_grace_period: 35s\n    replicas_typo: 3\n")
    assert_fails_with(tree, r"compose: docker-compose config\s+FAIL")


def test_a_worker_killed_before_its_drain_ends_fails_in_compose(tree: Path) -> None:
    edit(tree / "docker-compose.yml", "stop_grace_period: 35s", "stop_grace_period: 20s")
    assert_fails_with(tree, r"stop_grace_period 20.0s must exceed")


def test_a_queue_argument_that_differs_from_the_contract_fails(tree: Path) -> None:
    path = tree / "deploy/rabbitmq/definitions.json"
    definitions = json.loads(path.read_text(encoding="utf-8"))
    for queue in definitions["queues"]:
        if queue["name"] == "ingest.delay.5s":
            # Same number, other JSON type: the broker would still refuse it.
            queue["arguments"]["x-message-ttl"] = "5000"
    path.write_text(json.dumps(definitions, indent=2), encoding="utf-8")
    assert_fails_with(tree, r"queue 'ingest\.delay\.5s' arguments")


def test_a_missing_binding_fails(tree: Path) -> None:
    path = tree / "deploy/rabbitmq/definitions.json"
    definitions = json.loads(path.read_text(encoding="utf-8"))
    definitions["bindings"] = [b for b in definitions["bindings"]
                               if b["routing_key"] != "dead"]
    path.write_text(json.dumps(definitions, indent=2), encoding="utf-8")
    assert_fails_with(tree, r"definitions: bindings")


def test_a_manifest_violating_the_kubernetes_schema_fails(tree: Path) -> None:
    edit(tree / "k8s/base/worker-deployment.yaml", "containerPort: 9464",
         "containerPort: metrics-port")
    assert_fails_with(tree, r"Deployment/ingest-worker: invalid for Kubernetes")


def test_an_unknown_field_fails_strict_validation(tree: Path) -> None:
    edit(tree / "k8s/base/worker-pdb.yaml", "  maxUnavailable: 1",
         "  maxUnavailable: 1\n  maxUnavailble: 1")
    assert_fails_with(tree, r"PodDisruptionBudget/ingest-worker: invalid")


def test_a_grace_period_shorter_than_the_drain_fails(tree: Path) -> None:
    edit(tree / "k8s/base/worker-deployment.yaml",
         "terminationGracePeriodSeconds: 45", "terminationGracePeriodSeconds: 28")
    assert_fails_with(tree, r"terminationGracePeriodSeconds 28 must exceed")


def test_an_overlay_that_does_not_build_fails(tree: Path) -> None:
    edit(tree / "k8s/overlays/prod/kustomization.yaml", "  - servicemonitor.yaml\n",
         "  - servicemonitor.yaml\n  - missing.yaml\n")
    assert_fails_with(tree, r"k8s/prod: kustomize\s+FAIL")


def test_a_custom_resource_violating_its_crd_schema_fails(tree: Path) -> None:
    edit(tree / "k8s/base/keda.yaml", "pollingInterval: 15", 'pollingInterval: "often"')
    assert_fails_with(tree, r"FAIL \[crd\] ScaledObject/ingest-worker")


def test_a_real_looking_secret_value_fails(tree: Path) -> None:
    edit(tree / "k8s/base/secret.yaml", "INGEST_MANAGEMENT_PASSWORD: REPLACE_ME",
         "INGEST_MANAGEMENT_PASSWORD: hunter2")
    assert_fails_with(tree, r"INGEST_MANAGEMENT_PASSWORD is not a REPLACE_ME")


def test_a_root_user_in_the_image_fails(tree: Path) -> None:
    edit(tree / "Dockerfile", "USER 10001:10001", "USER root")
    assert_fails_with(tree, r"numeric non-root UID")
