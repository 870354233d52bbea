"""deploy/kubernetes: every manifest valid against Kubernetes' own schemas (strict: no
unknown field), and what the example overlay renders to is the gateway as documented —
probes on its health port and service names, the drain inside the grace period, secrets as
the `_FILE` files the settings read, sizing, hardening, the NetworkPolicy's doors.

No cluster and no kustomize binary here: `kubernetes-validate` carries the schemas, and
tests/deploy/kustomize.py renders the overlays."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from gateway.cli import build_parser
from gateway.edge.grpc.server import SERVICE_NAME
from gateway.settings import ENV_VARIABLES, SECRET_FILES
from tests.deploy.kustomize import KUSTOMIZATION, load_documents, render
from tests.dockerfile import ROOT, environment, exec_form, instructions

KUBERNETES = ROOT / "deploy" / "kubernetes"
OVERLAY = KUBERNETES / "overlays" / "example"
VERSIONS = ("1.33.0", "1.37.0")
"""The oldest Kubernetes the manifests support (grpc probes, the preStop sleep action,
the PDB's unhealthyPodEvictionPolicy are all on by default there) and the newest the
package has schemas for."""
SMARTCAR_VARIABLES = {
    "SMARTCAR_CLIENT_ID",
    "SMARTCAR_REDIRECT_URI",
    "SMARTCAR_API_ORIGIN",
    "SMARTCAR_CLIENT_SECRET_FILE",
    "SMARTCAR_MANAGEMENT_TOKEN_FILE",
}
MANIFESTS = sorted(p for p in KUBERNETES.rglob("*.yaml") if p.name != KUSTOMIZATION)


def _rendered() -> dict[tuple[str, str], dict[str, Any]]:
    objects = render(OVERLAY) + render(OVERLAY / "migrate")
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


RENDERED = _rendered()
DEPLOYMENT = RENDERED["Deployment", "vehicle-gateway"]
POD = DEPLOYMENT["spec"]["template"]["spec"]
GATEWAY = POD["containers"][0]
JOB = RENDERED["Job", "vehicle-gateway-migrate"]


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {v["name"]: v.get("value", "") for v in container.get("env", [])}


def _ports(container: dict[str, Any]) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container["ports"]}


def _quantity_mib(text: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", text).groups()  # type: ignore[union-attr]
    return float(number) * (1024 if unit == "Gi" else 1)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(KUBERNETES)))
def test_every_manifest_is_valid_in_strict_mode(path: Path, version: str) -> None:
    """Each object of each file validates against the version's schema, no unknown field."""
    documents = load_documents(path)
    assert documents
    for document in documents:
        kubernetes_validate.validate(document, version, strict=True)


@pytest.mark.parametrize("version", VERSIONS)
def test_what_the_overlays_render_is_valid_too(version: str) -> None:
    """The patched, renamed, re-imaged objects are still valid (a patch can break one)."""
    for document in RENDERED.values():
        kubernetes_validate.validate(document, version, strict=True)


def test_every_manifest_is_in_a_kustomization() -> None:
    """No file lies beside the kustomizations unused: the overlays render every one."""
    used = {p.resolve() for p in MANIFESTS if p.parent.name in ("base", "migrate", "example")}
    listed = set()
    for kustomization in KUBERNETES.rglob(KUSTOMIZATION):
        for entry in load_documents(kustomization)[0].get("resources", []):
            target = (kustomization.parent / entry).resolve()
            if target.is_file():
                listed.add(target)
    assert used == listed


def test_the_overlay_pins_the_image_by_digest_and_sets_the_namespace() -> None:
    """Gateway and migration run the same digest; the base's all-zero digest is replaced;
    every namespaced object lands in the overlay's namespace."""
    image = GATEWAY["image"]
    assert re.fullmatch(r"[\w./-]+@sha256:[0-9a-f]{64}", image)
    assert not image.endswith("0" * 64)
    assert JOB["spec"]["template"]["spec"]["containers"][0]["image"] == image
    for (kind, _), obj in RENDERED.items():
        if kind != "Namespace":
            assert obj["metadata"]["namespace"] == "vehicle-gateway"
    labels = RENDERED["Namespace", "vehicle-gateway"]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_two_replicas_that_roll_without_losing_one() -> None:
    """Two replicas at least; a rollout adds before it removes; PDB and Service select them."""
    strategy = DEPLOYMENT["spec"]["strategy"]["rollingUpdate"]
    assert DEPLOYMENT["spec"]["replicas"] >= 2
    assert strategy["maxUnavailable"] == 0
    budget = RENDERED["PodDisruptionBudget", "vehicle-gateway"]["spec"]
    assert budget["maxUnavailable"] == 1
    template_labels = DEPLOYMENT["spec"]["template"]["metadata"]["labels"]
    assert budget["selector"]["matchLabels"].items() <= template_labels.items()
    service = RENDERED["Service", "vehicle-gateway"]["spec"]
    assert service["selector"].items() <= template_labels.items()
    assert {p["name"]: p["port"] for p in service["ports"]} == {"grpc": 50051, "metrics": 9464}


def test_the_container_serves_the_images_command_on_its_ports() -> None:
    """The image's CMD and port; the health and metrics ports the variables name."""
    ports = _ports(GATEWAY)
    env = _env(GATEWAY)
    assert GATEWAY["args"] == exec_form("CMD")
    assert ports["grpc"] == int(dict(instructions())["EXPOSE"])
    assert env["VG_HEALTH_LISTEN"] == f"0.0.0.0:{ports['health']}"
    assert env["VG_HEALTH_EXPOSE"] == "on"
    assert env["VG_METRICS_LISTEN"] == f"0.0.0.0:{ports['metrics']}"
    annotations = DEPLOYMENT["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(ports["metrics"])


def test_native_grpc_probes_ask_the_health_port_about_the_right_services() -> None:
    """Readiness asks about the gateway service, liveness and start-up about the server;
    all on the health-only port, which answers without credentials (the gRPC port asks
    every caller who it is, and the kubelet presents nothing)."""
    health = _ports(GATEWAY)["health"]
    ready, live, startup = (
        GATEWAY[name]["grpc"] for name in ("readinessProbe", "livenessProbe", "startupProbe")
    )
    assert ready == {"port": health, "service": SERVICE_NAME}
    assert live == {"port": health}
    assert startup == {"port": health}
    assert (
        GATEWAY["livenessProbe"]["failureThreshold"] * GATEWAY["livenessProbe"]["periodSeconds"]
        > GATEWAY["readinessProbe"]["failureThreshold"] * GATEWAY["readinessProbe"]["periodSeconds"]
    )


def test_the_grace_period_outlasts_the_drain() -> None:
    """preStop sleep + VG_SHUTDOWN_GRACE_S (calls in flight) + some seconds to close the
    rest < terminationGracePeriodSeconds; the drain outlasts the longest read."""
    pre_stop = GATEWAY["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain = float(_env(GATEWAY)["VG_SHUTDOWN_GRACE_S"])
    assert pre_stop + drain + 10 <= POD["terminationGracePeriodSeconds"]
    read_timeout = float(ENV_VARIABLES["VG_READ_TIMEOUT_S"].split(" ", 1)[0])
    assert drain > read_timeout


def test_secrets_are_files_the_settings_read() -> None:
    """Every secret reaches the gateway as a `_FILE` variable its settings support (the
    four of the issue among them), pointing at a key of a mounted Secret; no secret is
    an environment value."""
    env = _env(GATEWAY)
    mounts = {m["name"]: m["mountPath"] for m in GATEWAY["volumeMounts"]}
    files = {
        f"{mounts[v['name']]}/{item['path']}"
        for v in POD["volumes"]
        for item in v["secret"]["items"]
    }
    file_variables = {name for name in env if name.endswith("_FILE")}
    assert file_variables == {f"{name}_FILE" for name in SECRET_FILES}
    for name in (*file_variables, "VG_ACCESS_POLICY", "VG_TLS_CERT", "VG_TLS_KEY"):
        assert env[name] in files, name
    for variable in GATEWAY["env"]:
        assert "secretKeyRef" not in variable.get("valueFrom", {})
    assert all(m["readOnly"] for m in GATEWAY["volumeMounts"])
    for volume in POD["volumes"]:
        assert volume["secret"]["defaultMode"] == 0o440  # the pod's group (fsGroup) reads


def test_every_variable_set_is_one_the_gateway_reads() -> None:
    """A misspelt variable would be ignored silently: each is a documented setting."""
    for container in (GATEWAY, JOB["spec"]["template"]["spec"]["containers"][0]):
        for name in _env(container):
            assert name in ENV_VARIABLES or name in SMARTCAR_VARIABLES, name
    assert _env(GATEWAY)["VG_SMARTCAR_MODE"] == "live"
    assert _env(GATEWAY)["SMARTCAR_API_ORIGIN"].startswith("https://")


def test_resources_come_from_the_benchmarks() -> None:
    """Requests cover the full-cache RSS measured (docs/benchmarks.md: 246 MiB with 100,000
    cars cached), limits leave room above it; one core is what one event loop uses."""
    benchmarks = (ROOT / "docs" / "benchmarks.md").read_text()
    assert "243 / **246 MiB**" in benchmarks
    resources = GATEWAY["resources"]
    assert _quantity_mib(resources["requests"]["memory"]) >= 246
    assert _quantity_mib(resources["limits"]["memory"]) >= 2 * 246
    assert resources["limits"]["cpu"] == "1"
    assert _env(GATEWAY)["VG_CACHE_VEHICLES"] == "100000"


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_pods_are_locked_down(kind: str) -> None:
    """Non-root (the image's uid), read-only root, no escalation, no capability,
    RuntimeDefault seccomp, no service account token, no writable volume."""
    obj = DEPLOYMENT if kind == "Deployment" else JOB
    pod = obj["spec"]["template"]["spec"]
    uid = int(next(a for k, a in reversed(instructions()) if k == "USER").split(":")[0])
    assert pod["securityContext"]["runAsUser"] == uid
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["runAsNonRoot"] is True
    assert all("secret" in volume for volume in pod["volumes"])
    account = RENDERED["ServiceAccount", pod["serviceAccountName"]]
    assert account["automountServiceAccountToken"] is False


def test_the_migration_job_runs_a_command_the_gateway_has() -> None:
    """`migrate-schema` parses, and the Job needs only the database URL."""
    container = JOB["spec"]["template"]["spec"]["containers"][0]
    command, *arguments = container["args"]
    assert command == "vehicle-gateway"
    assert build_parser().parse_args(arguments).command == "migrate-schema"
    assert set(_env(container)) == {"VG_DATABASE_URL_FILE"}
    assert JOB["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_the_network_policy_admits_callers_and_prometheus_and_nothing_else() -> None:
    """gRPC from the callers' namespaces (the overlay's), metrics from monitoring, the
    health port from no namespace (the kubelet's probes come from the node); egress to
    DNS, PostgreSQL, Redis and HTTPS on public addresses."""
    policy = RENDERED["NetworkPolicy", "vehicle-gateway"]["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= (
        DEPLOYMENT["spec"]["template"]["metadata"]["labels"].items()
    )
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    doors = {}
    for rule in policy["ingress"]:
        (source,) = rule["from"]
        selector = source["namespaceSelector"]
        names = (
            selector["matchExpressions"][0]["values"]
            if "matchExpressions" in selector
            else [selector["matchLabels"]["kubernetes.io/metadata.name"]]
        )
        for port in rule["ports"]:
            doors[port["port"]] = names
    ports = _ports(GATEWAY)
    assert doors == {
        ports["grpc"]: ["rental", "billing", "fleet-operations"],
        ports["metrics"]: ["monitoring"],
    }
    egress_ports = {p["port"] for rule in policy["egress"] for p in rule["ports"]}
    assert egress_ports == {53, 5432, 6379, 443}
    https = next(r for r in policy["egress"] if r["ports"][0]["port"] == 443)
    assert "169.254.0.0/16" in https["to"][0]["ipBlock"]["except"]  # cloud metadata


def test_the_dockerfile_default_health_port_stays_loopback() -> None:
    """Only the cluster opts in (VG_HEALTH_EXPOSE): the image keeps the loopback port."""
    assert environment()["VG_HEALTH_LISTEN"].startswith("127.0.0.1:")
    assert "VG_HEALTH_EXPOSE" not in environment()
