"""Project-specific checks of the rendered deployment, run by
scripts/validate-deploy.

    check_deploy.py compose RENDERED_COMPOSE DEFINITIONS CONTRACT
    check_deploy.py k8s OVERLAY_NAME RENDERED_MANIFESTS KUBE_VERSION...
    check_deploy.py static ROOT

Each prints one line per finding and exits 1 when any check failed, 0
otherwise. Nothing here talks to a network or a cluster.
"""

from __future__ import annotations

import ipaddress
import json
import re
import sys
from pathlib import Path

import yaml

# Kinds defined by operators' CRDs: kubernetes-validate has no schema for
# them. crd_validate.mjs checks those with a published schema.
CRD_KINDS = {
    "ScaledObject", "TriggerAuthentication", "RabbitmqCluster",
    "ServiceMonitor", "PrometheusRule",
}

# The preStop hook runs inside terminationGracePeriodSeconds, before SIGTERM.
DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


class Findings:
    """Collects failures so that one run reports all of them."""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        self.failures: list[str] = []
        self.passed = 0

    def check(self, ok: bool, what: str) -> None:
        if ok:
            self.passed += 1
        else:
            self.failures.append(what)
            print(f"FAIL [{self.scope}] {what}")

    def note(self, what: str) -> None:
        print(f"note [{self.scope}] {what}")

    def finish(self) -> int:
        print(f"{self.scope}: {self.passed} checks passed, "
              f"{len(self.failures)} failed")
        return 1 if self.failures else 0


def parse_duration(text: str) -> float:
    """Seconds in a humantime-like duration ("25s", "2m", "1m30s", "45")."""
    text = str(text).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)", text)
    if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * DURATION_UNITS[u] for n, u in parts)


# --- the contract's topology ------------------------------------------------

def expected_topology(contract: Path) -> dict:
    """Reads the Topology table of docs/contract.md (prefix empty).

    Returns {"exchanges": {name: type}, "queues": {name: arguments},
    "bindings": {(exchange, queue, key)}}. Delay tiers (`<t>`) are expanded
    from the list in their row; x-message-ttl is the tier in milliseconds.
    """
    text = contract.read_text(encoding="utf-8")
    section = text.split("## Topology", 1)
    if len(section) != 2:
        raise ValueError(f"{contract}: no '## Topology' section")
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in section[1].split("\n## ", 1)[0].splitlines()
        if line.startswith("|") and not set(line) <= set("|- ")
    ]
    topology: dict = {"exchanges": {}, "queues": {}, "bindings": set()}
    for cells in rows[1:]:
        if len(cells) != 3:
            raise ValueError(f"{contract}: odd topology row {cells}")
        _, name_cell, spec = cells
        names = re.findall(r"`([^`]+)`", name_cell)
        template = names[0].replace("<p>", "")
        tiers = names[1:] if "<t>" in template else [None]
        for tier in tiers:
            name = template.replace("<t>", tier) if tier else template
            expand = (lambda s: s.replace("<t>", tier)) if tier else (lambda s: s)
            add_object(topology, name, expand(spec.replace("<p>", "")), tier)
    if not topology["queues"] or not topology["exchanges"]:
        raise ValueError(f"{contract}: no queues or exchange found in Topology")
    return topology


def add_object(topology: dict, name: str, spec: str, tier: str | None) -> None:
    head = spec.split(";", 1)[0].strip()
    if head.startswith(("direct", "topic", "fanout", "headers")):
        topology["exchanges"][name] = head.split(",", 1)[0].strip()
        return
    arguments: dict = {}
    if head == "quorum":
        arguments["x-queue-type"] = "quorum"
    for item in re.findall(r"`([^`]+)`", spec):
        if item.startswith("x-"):
            key, _, value = item.partition("=")
            if key == "x-message-ttl" and not value:
                arguments[key] = int(parse_duration(tier) * 1000)
            else:
                arguments[key] = value
    topology["queues"][name] = arguments
    key = re.search(r"bound with key `([^`]+)`", spec)
    if key:
        exchange = next(iter(topology["exchanges"]), "ingest")
        topology["bindings"].add((exchange, name, key.group(1)))


def check_definitions(found: Findings, definitions: Path, contract: Path) -> None:
    """The broker definitions carry exactly the contract's topology."""
    expected = expected_topology(contract)
    defs = json.loads(definitions.read_text(encoding="utf-8"))
    vhosts = {v["name"] for v in defs.get("vhosts", [])}

    exchanges = {e["name"]: e for e in defs.get("exchanges", [])}
    for name, kind in expected["exchanges"].items():
        e = exchanges.get(name)
        found.check(e is not None, f"definitions: exchange {name!r} missing")
        if e:
            found.check(e.get("type") == kind and e.get("durable") is True,
                        f"definitions: exchange {name!r} must be {kind}, durable")
    found.check(set(exchanges) == set(expected["exchanges"]),
                f"definitions: exchanges {sorted(exchanges)} differ from the "
                f"contract's {sorted(expected['exchanges'])}")

    queues = {q["name"]: q for q in defs.get("queues", [])}
    found.check(set(queues) == set(expected["queues"]),
                f"definitions: queues {sorted(queues)} differ from the "
                f"contract's {sorted(expected['queues'])}")
    for name, arguments in expected["queues"].items():
        q = queues.get(name)
        if q is None:
            continue
        # Byte for byte: a worker's declaration with other arguments (or an
        # x-message-ttl of another JSON type) fails with PRECONDITION_FAILED.
        actual = q.get("arguments", {})
        found.check(
            json.dumps(actual, sort_keys=True) == json.dumps(arguments, sort_keys=True),
            f"definitions: queue {name!r} arguments {actual} != contract {arguments}")
        found.check(q.get("durable") is True and q.get("auto_delete") is False,
                    f"definitions: queue {name!r} must be durable, not auto-delete")
        found.check(q.get("vhost") in vhosts,
                    f"definitions: queue {name!r} in undeclared vhost {q.get('vhost')!r}")

    bindings = {
        (b["source"], b["destination"], b["routing_key"])
        for b in defs.get("bindings", []) if b.get("destination_type") == "queue"
    }
    found.check(bindings == expected["bindings"],
                f"definitions: bindings {sorted(bindings)} differ from the "
                f"contract's {sorted(expected['bindings'])}")

    users = {u["name"] for u in defs.get("users", [])}
    permitted = {(p["user"], p["vhost"]) for p in defs.get("permissions", [])}
    found.check(bool(users), "definitions: no user (RabbitMQ creates none "
                             "when definitions are loaded at boot)")
    for user in users:
        found.check(any((user, v) in permitted for v in vhosts),
                    f"definitions: user {user!r} has no permissions on a vhost")
    for user in defs.get("users", []):
        found.check(user.get("password", "").startswith("@")
                    and "password_hash" not in user,
                    f"definitions: user {user['name']!r} must take its password "
                    "from the environment placeholder, not from git")


# --- compose ----------------------------------------------------------------

def published_ports(service: dict) -> list[tuple[str, str]]:
    """(host_ip, description) for every published port, short or long form."""
    result = []
    for port in service.get("ports", []) or []:
        if isinstance(port, dict):
            if port.get("published") in (None, ""):
                continue
            result.append((str(port.get("host_ip", "")), json.dumps(port)))
            continue
        text = str(port)
        parts = text.rsplit("/", 1)[0].split(":")
        if len(parts) == 3:
            result.append((parts[0].strip("[]"), text))
        elif len(parts) == 2:
            result.append(("", text))
        # A bare container port publishes on an ephemeral host port of every
        # interface.
        else:
            result.append(("", text))
    return result


def check_compose(rendered: Path, definitions: Path, contract: Path) -> int:
    found = Findings("compose")
    config = yaml.safe_load(rendered.read_text(encoding="utf-8"))
    services = config.get("services", {})
    for required in ("rabbitmq", "victoriametrics", "factory-sim", "worker",
                     "ingestctl", "grafana"):
        found.check(required in services, f"service {required!r} missing")

    for name, service in services.items():
        for host_ip, text in published_ports(service):
            try:
                loopback = ipaddress.ip_address(host_ip).is_loopback
            except ValueError:
                loopback = False
            found.check(loopback, f"{name}: port {text} is not bound to 127.0.0.1")
        health = service.get("healthcheck")
        found.check(bool(health) and (health.get("test") or health.get("disable")),
                    f"{name}: no healthcheck")
        if health and health.get("disable"):
            found.check("tools" in (service.get("profiles") or []),
                        f"{name}: healthcheck disabled on a long-running service")

    worker = services.get("worker", {})
    found.check("container_name" not in worker,
                "worker: container_name prevents --scale")
    found.check(not worker.get("ports"),
                "worker: a published port prevents --scale")
    replicas = (worker.get("deploy") or {}).get("replicas")
    found.check(replicas == 2, f"worker: deploy.replicas is {replicas}, want 2")
    env = worker.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    grace = parse_duration(env.get("INGEST_GRACE_PERIOD", "25s"))
    stop = parse_duration(worker.get("stop_grace_period", "10s"))
    found.check(stop > grace, f"worker: stop_grace_period {stop}s must exceed "
                              f"INGEST_GRACE_PERIOD {grace}s")
    found.check(env.get("INGEST_HTTP_ADDR", "").startswith("0.0.0.0:"),
                "worker: INGEST_HTTP_ADDR must listen on 0.0.0.0 in a container")

    ingestctl = services.get("ingestctl", {})
    found.check("tools" in (ingestctl.get("profiles") or []),
                "ingestctl: must be in the 'tools' profile")

    vm_flags = " ".join(map(str, services.get("victoriametrics", {}).get("command", [])))
    for flag in ("-dedup.minScrapeInterval=1ms", "-retentionPeriod=100y",
                 "-search.latencyOffset=0s", "-promscrape.config="):
        found.check(flag in vm_flags, f"victoriametrics: flag {flag} missing")

    check_definitions(found, definitions, contract)
    return found.finish()


# --- Kubernetes -------------------------------------------------------------

def check_k8s(overlay: str, rendered: Path, versions: list[str]) -> int:
    import kubernetes_validate

    found = Findings(f"k8s/{overlay}")
    docs = [d for d in yaml.safe_load_all(rendered.read_text(encoding="utf-8")) if d]
    found.check(bool(docs), "rendered nothing")

    for doc in docs:
        kind = doc.get("kind")
        ident = f"{kind}/{doc.get('metadata', {}).get('name')}"
        if kind in CRD_KINDS:
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
                found.check(True, "")
            except kubernetes_validate.ValidationError as error:
                path = "/".join(map(str, error.path))
                found.check(False, f"{ident}: invalid for Kubernetes {version} "
                                   f"at {path or '/'}: {error.message}")
            except kubernetes_validate.SchemaNotFoundError:
                found.check(False, f"{ident}: no schema for this kind in "
                                   f"Kubernetes {version}")
    skipped = sorted({d["kind"] for d in docs if d.get("kind") in CRD_KINDS})
    found.note("built-in kinds checked against the Kubernetes "
               f"{', '.join(versions)} schemas (strict); CRD kinds left to "
               f"crd_validate.mjs: {', '.join(skipped) or 'none'}")

    by_kind: dict[str, list[dict]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    check_worker(found, by_kind)
    check_supporting(found, by_kind, overlay)
    return found.finish()


def named(by_kind: dict, kind: str, name: str) -> dict | None:
    return next((d for d in by_kind.get(kind, [])
                 if d["metadata"]["name"] == name), None)


def check_worker(found: Findings, by_kind: dict) -> None:
    deployment = named(by_kind, "Deployment", "ingest-worker")
    found.check(deployment is not None, "Deployment/ingest-worker missing")
    if deployment is None:
        return
    pod = deployment["spec"]["template"]["spec"]
    container = next((c for c in pod["containers"] if c["name"] == "worker"), None)
    found.check(container is not None, "worker container missing")
    if container is None:
        return

    # Grace period of the drain, from the ConfigMap the container reads.
    config_names = {ref["configMapRef"]["name"] for ref in container.get("envFrom", [])
                    if "configMapRef" in ref}
    config = next((c for c in by_kind.get("ConfigMap", [])
                   if c["metadata"]["name"] in config_names), {"data": {}})
    env = dict(config.get("data", {}))
    env.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
    grace = parse_duration(env.get("INGEST_GRACE_PERIOD", "25s"))
    pre_stop = container.get("lifecycle", {}).get("preStop", {})
    sleep = 0.0
    if "sleep" in pre_stop:
        sleep = float(pre_stop["sleep"]["seconds"])
    elif "exec" in pre_stop:
        command = pre_stop["exec"]["command"]
        found.check(command[0] == "sleep", "preStop exec must be a sleep")
        sleep = parse_duration(command[-1])
    found.check(sleep > 0, "worker: preStop sleep missing")
    tgps = pod.get("terminationGracePeriodSeconds", 30)
    found.check(tgps > grace + sleep,
                f"worker: terminationGracePeriodSeconds {tgps} must exceed "
                f"INGEST_GRACE_PERIOD {grace:g}s + preStop {sleep:g}s")

    probes = {p: container.get(p, {}).get("httpGet", {}).get("path")
              for p in ("livenessProbe", "readinessProbe")}
    found.check(probes == {"livenessProbe": "/healthz", "readinessProbe": "/readyz"},
                f"worker: probes {probes}, want liveness /healthz, readiness /readyz")
    resources = container.get("resources", {})
    found.check({"cpu", "memory"} <= set(resources.get("requests", {}))
                and {"cpu", "memory"} <= set(resources.get("limits", {})),
                "worker: cpu and memory requests and limits required")

    pod_sc = pod.get("securityContext", {})
    sc = container.get("securityContext", {})
    found.check(pod_sc.get("runAsNonRoot") is True or sc.get("runAsNonRoot") is True,
                "worker: runAsNonRoot")
    found.check(sc.get("readOnlyRootFilesystem") is True, "worker: readOnlyRootFilesystem")
    found.check(sc.get("allowPrivilegeEscalation") is False,
                "worker: allowPrivilegeEscalation false")
    found.check(sc.get("capabilities", {}).get("drop") == ["ALL"],
                "worker: capabilities must drop ALL")
    seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
    found.check(seccomp == "RuntimeDefault", "worker: seccompProfile RuntimeDefault")
    found.check(bool(pod.get("topologySpreadConstraints")),
                "worker: topologySpreadConstraints missing")
    found.check(pod.get("automountServiceAccountToken") is False,
                "worker: pod must not mount a service account token")
    rollout = deployment["spec"].get("strategy", {}).get("rollingUpdate", {})
    found.check(rollout.get("maxUnavailable") in (0, "0", "0%"),
                "worker: rollout must keep maxUnavailable 0")


def check_supporting(found: Findings, by_kind: dict, overlay: str) -> None:
    for sa in by_kind.get("ServiceAccount", []):
        found.check(sa.get("automountServiceAccountToken") is False,
                    f"ServiceAccount/{sa['metadata']['name']}: token automount on")
    for kind in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"):
        found.check(kind not in by_kind, f"{kind} present: the worker needs no RBAC")

    for secret in by_kind.get("Secret", []):
        values = {**secret.get("stringData", {}), **secret.get("data", {})}
        for key, value in values.items():
            found.check("REPLACE_ME" in str(value),
                        f"Secret/{secret['metadata']['name']}: {key} is not a "
                        "REPLACE_ME placeholder; real secrets stay out of git")

    pdb = named(by_kind, "PodDisruptionBudget", "ingest-worker")
    found.check(pdb is not None, "PodDisruptionBudget/ingest-worker missing")
    policy = named(by_kind, "NetworkPolicy", "ingest-worker")
    found.check(policy is not None, "NetworkPolicy/ingest-worker missing")
    if policy:
        ports = {(p.get("port"), p.get("protocol", "TCP"))
                 for rule in policy["spec"].get("egress", [])
                 for p in rule.get("ports", [])}
        found.check({(5672, "TCP"), (8428, "TCP"), (53, "UDP"), (53, "TCP")} <= ports,
                    f"NetworkPolicy: egress ports {sorted(ports)} lack broker/TSDB/DNS")
        ingress = {p.get("port") for rule in policy["spec"].get("ingress", [])
                   for p in rule.get("ports", [])}
        found.check(ingress == {9464}, f"NetworkPolicy: ingress ports {ingress}, want 9464")

    job = named(by_kind, "Job", "ingest-topology")
    found.check(job is not None and job["spec"]["template"]["spec"]["containers"][0]
                ["command"][-2:] == ["topology", "apply"],
                "Job/ingest-topology must run `ingestctl topology apply`")

    scaled = named(by_kind, "ScaledObject", "ingest-worker")
    found.check(scaled is not None, "ScaledObject/ingest-worker missing")
    if scaled:
        spec = scaled["spec"]
        trigger = spec["triggers"][0]
        meta = trigger.get("metadata", {})
        found.check(trigger["type"] == "rabbitmq" and meta.get("mode") == "QueueLength"
                    and meta.get("protocol") == "http"
                    and meta.get("excludeUnacknowledged") in (None, "false"),
                    "ScaledObject: rabbitmq QueueLength over http (ready + unacked)")
        found.check(meta.get("queueName") == "ingest.jobs",
                    "ScaledObject: must watch ingest.jobs")
        auth = trigger.get("authenticationRef", {}).get("name")
        found.check(named(by_kind, "TriggerAuthentication", auth) is not None,
                    f"ScaledObject: TriggerAuthentication {auth!r} not rendered")
        found.check(1 <= spec.get("minReplicaCount", 0) <= spec.get("maxReplicaCount", 0),
                    "ScaledObject: need 1 <= minReplicaCount <= maxReplicaCount")
        found.check(spec.get("cooldownPeriod", 0) >= 60, "ScaledObject: cooldown < 60s")

    if overlay == "prod":
        cluster = named(by_kind, "RabbitmqCluster", "ingest-rabbitmq")
        found.check(cluster is not None and cluster["spec"].get("replicas") == 3,
                    "prod: RabbitmqCluster with 3 replicas missing")
        found.check("ServiceMonitor" in by_kind, "prod: ServiceMonitor missing")
        found.check("PrometheusRule" in by_kind, "prod: PrometheusRule missing")


# --- files no renderer reads -------------------------------------------------

def check_static(root: Path) -> int:
    """The Dockerfile, Grafana provisioning and the scrape config."""
    found = Findings("static")
    dockerfile = (root / "Dockerfile").read_text(encoding="utf-8")
    stages = re.split(r"(?m)^FROM\s+", dockerfile)[1:]
    found.check(len(stages) >= 2, "Dockerfile: want a multi-stage build")
    final = stages[-1] if stages else ""
    found.check(bool(re.match(r"(debian:\S*slim|gcr.io/distroless/cc)", final)),
                "Dockerfile: final stage must be bookworm-slim or distroless/cc")
    found.check("cargo build --release --locked" in dockerfile,
                "Dockerfile: cargo build --release --locked missing")
    found.check(not re.search(r"(?m)^RUN .*(build-essential|cargo|rustc|gcc)", final),
                "Dockerfile: build tools in the final stage")
    users = re.findall(r"(?m)^USER\s+(\S+)", final)
    found.check(bool(users) and users[-1].split(":")[0].isdigit()
                and users[-1].split(":")[0] != "0",
                "Dockerfile: final USER must be a numeric non-root UID")
    for binary in ("ingest-worker", "ingestctl", "factory-sim"):
        found.check(binary in final, f"Dockerfile: {binary} not in the final stage")
    found.check(re.search(r"(?m)^EXPOSE\s+9464", final) is not None,
                "Dockerfile: EXPOSE 9464 missing")
    found.check(re.search(r"(?m)^CMD\s+\[\"ingest-worker\"\]", final) is not None,
                "Dockerfile: default CMD must be ingest-worker")
    found.check("HEALTHCHECK" in final, "Dockerfile: HEALTHCHECK missing")
    ignore = (root / ".dockerignore").read_text(encoding="utf-8").split()
    for entry in ("**/target", ".git", ".venv", ".state"):
        found.check(entry in ignore, f".dockerignore: {entry} missing")

    grafana = root / "deploy" / "grafana"
    sources = yaml.safe_load((grafana / "provisioning/datasources/victoriametrics.yml")
                             .read_text(encoding="utf-8"))
    uids = {s["uid"] for s in sources["datasources"]}
    dashboards = sorted((grafana / "dashboards").glob("*.json"))
    found.check(len(dashboards) >= 2, "grafana: fleet and readings dashboards expected")
    for path in dashboards:
        try:
            board = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            found.check(False, f"{path.name}: not JSON: {error}")
            continue
        for panel in board.get("panels", []):
            uid = panel.get("datasource", {}).get("uid")
            found.check(uid in uids, f"{path.name}: panel {panel.get('title')!r} "
                                     f"uses unknown data source {uid!r}")
            found.check(all(t.get("expr") for t in panel.get("targets", [])),
                        f"{path.name}: panel {panel.get('title')!r} has an empty query")

    scrape = yaml.safe_load((root / "deploy/victoriametrics/scrape.yml")
                            .read_text(encoding="utf-8"))
    jobs = {j["job_name"]: j for j in scrape.get("scrape_configs", [])}
    worker = jobs.get("ingest-worker", {})
    names = [n for sd in worker.get("dns_sd_configs", []) for n in sd.get("names", [])]
    found.check(names == ["worker"],
                "scrape.yml: workers must be found by the compose service name")
    found.check("rabbitmq" in jobs, "scrape.yml: rabbitmq_prometheus job missing")
    return found.finish()


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "static":
        return check_static(Path(argv[1]))
    if len(argv) >= 4 and argv[0] == "compose":
        return check_compose(Path(argv[1]), Path(argv[2]), Path(argv[3]))
    if len(argv) >= 4 and argv[0] == "k8s":
        return check_k8s(argv[1], Path(argv[2]), argv[3:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
