"""deploy/kubernetes/ and the Dockerfile: every manifest is valid against the Kubernetes API
schemas (kubernetes-validate's bundled copies, offline, strict: an unknown field fails), and the
pieces agree with each other and with the server: probes ask the health service the server
sets, ports match the config, the termination grace covers preStop plus the drain, secrets are
mounted where the config reads them, and the config file loads."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from server.app import CUT_MARGIN_SECONDS, SERVICE_NAME
from server.config import load_config

from ._support import REPO

MANIFESTS = REPO / "deploy" / "kubernetes"
# The oldest Kubernetes with GA gRPC probes, and the newest schemas the validator bundles.
KUBERNETES_VERSIONS = ["1.27.0", kubernetes_validate.latest_version()]
SECRETS_ROOT = "/var/run/secrets/modelruntime/"


def documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document:
                label = f"{path.name}:{document['kind']}/{document['metadata']['name']}"
                found.append((label, document))
    return found


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [
        d for _, d in documents() if d["kind"] == kind and name in (None, d["metadata"]["name"])
    ]
    assert len(matches) == 1, f"expected one {kind} {name or ''}"
    return matches[0]


def container() -> dict[str, Any]:
    (server,) = one("Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(server)


def server_config() -> dict[str, Any]:
    return dict(yaml.safe_load(one("ConfigMap")["data"]["config.yaml"]))


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(("name", "document"), documents(), ids=[n for n, _ in documents()])
def test_manifests_are_valid_kubernetes_objects(
    name: str, document: dict[str, Any], version: str
) -> None:
    kubernetes_validate.validate(document, version, strict=True)


def test_the_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    listed = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["resources"]
    present = {p.name for p in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(listed) == present - {"secrets.example.yaml"}


def test_probes_use_native_grpc_health_checks_on_the_grpc_port() -> None:
    server = container()
    grpc_port = next(p["containerPort"] for p in server["ports"] if p["name"] == "grpc")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert server[probe]["grpc"]["port"] == grpc_port, probe
    # Readiness asks for the service the drain turns NOT_SERVING.
    assert server["readinessProbe"]["grpc"]["service"] == SERVICE_NAME


def test_ports_match_the_server_config_and_the_services_speak_grpc() -> None:
    config = server_config()
    ports = {p["name"]: p["containerPort"] for p in container()["ports"]}
    assert int(config["address"].rpartition(":")[2]) == ports["grpc"]
    assert int(config["metrics_address"].rpartition(":")[2]) == ports["metrics"]
    annotations = one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(ports["metrics"])
    for name in ("modelruntime", "modelruntime-headless"):
        service = one("Service", name)
        grpc_port = next(p for p in service["spec"]["ports"] if p["name"] == "grpc")
        assert grpc_port["appProtocol"] == "grpc"
        assert grpc_port["targetPort"] in ("grpc", ports["grpc"])
    assert one("Service", "modelruntime-headless")["spec"]["clusterIP"] == "None"


def test_termination_grace_covers_prestop_and_the_drain() -> None:
    config = server_config()
    pod = one("Deployment")["spec"]["template"]["spec"]
    command = container()["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop = float(command[1])
    drain = config["grace_period_seconds"] + config.get("drain_delay_seconds", 0)
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + drain + CUT_MARGIN_SECONDS


def test_selectors_hpa_and_pdb_point_at_the_deployment() -> None:
    deployment = one("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    for service in ("modelruntime", "modelruntime-headless"):
        assert one("Service", service)["spec"]["selector"].items() <= labels.items()
    assert one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == selector
    target = one("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert one("HorizontalPodAutoscaler")["spec"]["minReplicas"] >= 2


def test_the_pod_runs_unprivileged() -> None:
    pod = one("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    security = container()["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]


def test_the_config_loads_with_secrets_read_from_the_mounted_files(tmp_path: Path) -> None:
    """The ConfigMap's config.yaml is a valid server config once the files it names exist;
    each file it reads lies under a Secret volume's mount path."""
    text = one("ConfigMap")["data"]["config.yaml"]
    referenced = sorted(set(re.findall(re.escape(SECRETS_ROOT) + r"[\w./-]+", text)))
    assert referenced, "the config should read its secrets from mounted files"
    mounts = {m["name"]: m["mountPath"] for m in container()["volumeMounts"]}
    volumes = {v["name"]: v for v in one("Deployment")["spec"]["template"]["spec"]["volumes"]}
    secret_mounts = [mounts[name] for name, volume in volumes.items() if "secret" in volume]
    for path in referenced:
        assert any(path.startswith(mount + "/") for mount in secret_mounts), path
        stand_in = tmp_path / path.removeprefix(SECRETS_ROOT)
        stand_in.parent.mkdir(parents=True, exist_ok=True)
        stand_in.write_text(
            "[]\n" if path.endswith(".yaml") else "placeholder-value\n", encoding="utf-8"
        )
    config_file = tmp_path / "config.yaml"
    config_file.write_text(text.replace(SECRETS_ROOT, f"{tmp_path}/"), encoding="utf-8")

    config = load_config(config_file, environ={})

    assert config.log_format == "json"
    assert config.metrics_address and config.tracing
    assert config.outbound.policy() is not None, "the example restricts outbound addresses"


# ---- the Dockerfile ------------------------------------------------------------------------


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions (continuations joined), one list per stage."""
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(r"\\\n", " ", text)
    stages: list[list[tuple[str, str]]] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, argument = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((instruction.upper(), argument.strip()))
    return stages


def test_the_image_is_built_in_two_stages_and_runs_unprivileged() -> None:
    _build, final = dockerfile_stages()
    final_instructions = [i for i, _ in final]
    assert "USER" in final_instructions
    user = dict(final)["USER"].split(":")[0]
    assert user.isdigit() and int(user) != 0, "a numeric non-root user (runAsNonRoot checks it)"
    assert (
        int(user) == one("Deployment")["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    )
    # Nothing is compiled or installed in the final stage: it only copies the virtualenv.
    final_runs = " ".join(argument for instruction, argument in final if instruction == "RUN")
    for tool in ("pip install", "apt-get install", "gcc", "build-essential"):
        assert tool not in final_runs
    assert any(i == "COPY" and a.startswith("--from=build") for i, a in final)


def test_the_image_runs_the_modelruntime_command_on_the_manifest_ports() -> None:
    _, final = dockerfile_stages()
    instructions = dict(final)
    assert yaml.safe_load(instructions["ENTRYPOINT"]) == ["modelruntime"]
    exposed = {int(port) for port in instructions["EXPOSE"].split()}
    assert exposed == {p["containerPort"] for p in container()["ports"]}
    assert container()["args"][0] == "serve"


def test_the_build_stage_copies_what_exists() -> None:
    build, _ = dockerfile_stages()
    for instruction, argument in build:
        if instruction == "COPY" and not argument.startswith("--from"):
            *sources, _destination = shlex.split(argument)
            for source in sources:
                assert (REPO / source).exists(), source
