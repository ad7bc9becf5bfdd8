"""The deployment files under deploy/: container image, compose file, Kubernetes manifests.

No Docker engine or cluster runs here, so each file is checked by what can check it offline:

- Kubernetes manifests against the Kubernetes JSON schemas bundled by `kubernetes-validate`
  (strict: unknown fields fail), for an older and the newest bundled version; plus the links
  between objects (selectors, port names, the ConfigMap's TOML under the pod's environment).
- compose.yaml against the Compose Specification schema that `check-jsonschema` vendors
  (`compose-spec.json`), plus what the schema cannot see (mounted files exist, depends_on
  conditions have health checks).
- The Dockerfile's builder stage, parsed with `dockerfile-parse` and run as a script in a
  temporary folder (fresh venv, pip install of the repository); the result must answer
  `--help`, `check-config`, and serve /healthz to the image's own HEALTHCHECK command.
- The bridge TOML files shipped under deploy/ load with `bridge.config`.
- The backends' configurations under deploy/compose/ with the servers' own checkers (doveconf,
  postconf, kamailio -c, Radicale's config loader): the dev stack installs them.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import os
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import radicale.config
import yaml
from dockerfile_parse import DockerfileParser
from kubernetes_validate.utils import latest_version

from bridge import config

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_DIR = DEPLOY / "compose"
KUBERNETES_DIR = DEPLOY / "kubernetes"
MANIFESTS = sorted(KUBERNETES_DIR.glob("*.yaml"))
# An older version clusters still run and the newest the package bundles.
KUBERNETES_VERSIONS = ("1.30", latest_version())

# tests/bench/bench_session_memory.py (200 sessions): bridge RSS 70-77 MB warm without
# sessions, about 15 MB per 100 sessions with a folder open; README: 63 bytes per cached row.
BASE_MB = 80.0
SESSION_MB = 0.15
ROW_BYTES = 63

# Values Kubernetes would fill in from the downward API.
POD_IP = "10.12.3.4"
POD_NAME = "ximss-bridge-6c9f8d7b5-x2x9k"


# --------------------------------------------------------------------------- helpers


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def all_objects() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in documents(path)]


def find(kind: str, name: str) -> dict[str, Any]:
    for doc in all_objects():
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no {kind} {name} in {[p.name for p in MANIFESTS]}")


def container(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    spec = deployment["spec"]["template"]["spec"]
    (found,) = [c for c in spec["containers"] if c["name"] == name]
    return dict(found)


def pod_environment(deployment: dict[str, Any], name: str) -> dict[str, str]:
    """The container's variables as Kubernetes sets them: fieldRefs and secretKeyRefs resolved
    (from the manifests' own Secrets), $(NAME) expanded from the variables defined before."""
    fields = {"status.podIP": POD_IP, "metadata.name": POD_NAME}
    env: dict[str, str] = {}
    for item in container(deployment, name).get("env", []):
        if "value" in item:
            env[item["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), item["value"])
        elif "fieldRef" in item["valueFrom"]:
            env[item["name"]] = fields[item["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = find("Secret", ref["name"])["stringData"][ref["key"]]
    return env


def mounted_toml(deployment: dict[str, Any], name: str) -> str:
    """The bridge.toml the container sees at /etc/ximss-bridge/bridge.toml."""
    spec = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    for mount in container(deployment, name)["volumeMounts"]:
        if mount["mountPath"] == "/etc/ximss-bridge":
            config_map = volumes[mount["name"]]["configMap"]["name"]
            return str(find("ConfigMap", config_map)["data"]["bridge.toml"])
    raise AssertionError("no volume mounted at /etc/ximss-bridge")


def run(args: list[Any], **options: Any) -> subprocess.CompletedProcess[str]:
    """A command whose exit status the caller checks."""
    return subprocess.run(args, check=False, capture_output=True, text=True, **options)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mebibytes(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1.0, "Gi": 1024.0}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * factor
    raise AssertionError(f"memory quantity {quantity!r} is not in Ki, Mi or Gi")


# --------------------------------------------------------------------------- Kubernetes


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifests_match_the_kubernetes_schemas(path: Path, version: str) -> None:
    objects = documents(path)
    assert objects
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)


def test_the_schema_check_catches_mistakes() -> None:
    deployment = find("Deployment", "ximss-bridge")
    kubernetes_validate.validate(deployment, latest_version(), strict=True)
    misspelt = copy.deepcopy(deployment)
    misspelt["spec"]["replica"] = 3
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "x"
    for broken in (misspelt, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, latest_version(), strict=True)


def test_fleet_deployment() -> None:
    deployment = find("Deployment", "ximss-bridge")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["replicas"] == 3
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    for kind in ("Service", "PodDisruptionBudget"):
        obj = find(kind, "ximss-bridge")
        selector = obj["spec"]["selector"]
        assert selector.get("matchLabels", selector).items() <= labels.items(), kind
    bridge = container(deployment, "bridge")
    assert bridge["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert bridge["readinessProbe"]["httpGet"]["path"] == "/readyz"
    # /readyz waits up to 5 s for IMAP before answering 503.
    assert bridge["readinessProbe"]["timeoutSeconds"] > 5
    # Non-root, read-only root filesystem, writable state and /tmp from emptyDirs.
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert bridge["securityContext"]["readOnlyRootFilesystem"] is True
    assert bridge["securityContext"]["allowPrivilegeEscalation"] is False
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in bridge["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/var/lib/ximss-bridge"]]
    assert "emptyDir" in volumes[mounts["/tmp"]]
    # Redis for the fleet.
    redis = find("Deployment", "ximss-redis")
    redis_service = find("Service", "ximss-redis")
    assert redis_service["spec"]["selector"].items() <= (
        redis["spec"]["template"]["metadata"]["labels"].items()
    )


def test_fleet_settings_under_the_pod_environment(tmp_path: Path) -> None:
    deployment = find("Deployment", "ximss-bridge")
    env = pod_environment(deployment, "bridge")
    assert env["XIMSS_BRIDGE__CLUSTER__ADVERTISE"] == f"{POD_IP}:8100"
    file = tmp_path / "bridge.toml"
    file.write_text(mounted_toml(deployment, "bridge"), encoding="utf-8")
    settings = config.load(file, env)
    password = find("Secret", "ximss-bridge-secrets")["stringData"]["redis-password"]
    # The override syntax takes an address (not a TOML value) as the string it is.
    assert settings.cluster.advertise == f"{POD_IP}:8100"
    assert settings.cluster.replica_id == POD_NAME
    assert settings.state.backend == "redis"
    assert settings.state.url == f"redis://:{password}@ximss-redis:6379/0"
    check_listeners_and_probes(deployment, settings)
    check_shutdown_time(deployment, settings)
    # Memory: requests cover the measured per-session cost at the connection limit plus a full
    # row cache; the limit is above the request.
    resources = container(deployment, "bridge")["resources"]
    needed = (
        BASE_MB
        + settings.limits.max_connections * SESSION_MB
        + settings.cache.max_summaries * ROW_BYTES / 2**20
    )
    requested = mebibytes(resources["requests"]["memory"])
    assert requested >= 1.3 * needed, (requested, needed)
    assert mebibytes(resources["limits"]["memory"]) > requested


def test_sidecar_settings_and_pod(tmp_path: Path) -> None:
    deployment = find("Deployment", "ximss-sidecar")
    assert deployment["spec"]["replicas"] == 1
    pod = deployment["spec"]["template"]["spec"]
    names = {c["name"] for c in pod["containers"]}
    assert names == {"dovecot", "bridge"}
    assert "dovecot/dovecot" in container(deployment, "dovecot")["image"]
    file = tmp_path / "bridge.toml"
    file.write_text(mounted_toml(deployment, "bridge"), encoding="utf-8")
    settings = config.load(file, pod_environment(deployment, "bridge"))
    # The mail server on the pod's loopback, at the port its container declares.
    imap = settings.domains["example.test"].imap
    dovecot_ports = {p["containerPort"] for p in container(deployment, "dovecot")["ports"]}
    assert imap.host == "127.0.0.1"
    assert imap.port in dovecot_ports
    # The accounts come from the Secret, mounted into the mail server only.
    volumes = {v["name"]: v for v in pod["volumes"]}
    dovecot_mounts = {m["name"] for m in container(deployment, "dovecot")["volumeMounts"]}
    bridge_mounts = {m["name"] for m in container(deployment, "bridge")["volumeMounts"]}
    secret_volumes = {name for name, v in volumes.items() if "secret" in v}
    assert secret_volumes
    assert secret_volumes <= dovecot_mounts
    assert not secret_volumes & bridge_mounts
    bridge = container(deployment, "bridge")
    assert bridge["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert bridge["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert bridge["securityContext"]["runAsNonRoot"] is True
    assert bridge["securityContext"]["readOnlyRootFilesystem"] is True
    check_listeners_and_probes(deployment, settings)
    check_shutdown_time(deployment, settings)
    needed = (
        BASE_MB
        + settings.limits.max_connections * SESSION_MB
        + settings.cache.max_summaries * ROW_BYTES / 2**20
    )
    assert mebibytes(bridge["resources"]["requests"]["memory"]) >= 1.3 * needed


def check_listeners_and_probes(deployment: dict[str, Any], settings: config.Settings) -> None:
    bridge = container(deployment, "bridge")
    ports = {p["name"]: p["containerPort"] for p in bridge["ports"]}
    assert ports == {
        "ximss": settings.tcp.port,
        "xmap": settings.xmap.port,
        "http": settings.http.port,
    }
    for listener in (settings.tcp, settings.http, settings.xmap):
        assert listener.host == "0.0.0.0"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert bridge[probe]["httpGet"]["port"] == "http", probe
    service = find("Service", deployment["metadata"]["name"])
    declared = {p["name"] for c in deployment["spec"]["template"]["spec"]["containers"]
                for p in c["ports"]}  # fmt: skip
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in declared
    assert {11024, 11026, 8100} <= {p["port"] for p in service["spec"]["ports"]}


def check_shutdown_time(deployment: dict[str, Any], settings: config.Settings) -> None:
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    pre_stop = container(deployment, "bridge").get("lifecycle", {}).get("preStop", {})
    slept = re.search(r"sleep\((\d+)\)", " ".join(pre_stop.get("exec", {}).get("command", [])))
    waited = float(slept[1]) if slept else 0.0
    assert grace > waited + settings.server.shutdown_grace + 5


# --------------------------------------------------------------------------- compose


def compose_schema() -> dict[str, Any]:
    vendored = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads(vendored.joinpath("compose-spec.json").read_text())
    return schema


def compose_file() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    return data


def test_compose_matches_the_compose_specification() -> None:
    schema = compose_schema()
    assert schema["title"] == "Compose Specification"
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)
    data = compose_file()
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data)]
    assert errors == []
    # The schema bites: a misspelt key and a wrong condition are errors.
    misspelt = copy.deepcopy(data)
    misspelt["services"]["bridge"]["depend_on"] = ["redis"]
    wrong = copy.deepcopy(data)
    wrong["services"]["bridge"]["depends_on"]["redis"]["condition"] = "healthy"
    for broken in (misspelt, wrong):
        assert list(validator.iter_errors(broken))


def test_compose_services_fit_together() -> None:
    data = compose_file()
    services = data["services"]
    assert {"bridge", "dovecot", "postfix", "radicale", "kamailio", "redis"} <= set(services)
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            assert dependency in services, (name, dependency)
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], (name, dependency)
        if "build" in service:
            build = service["build"]
            context = (DEPLOY / build["context"]).resolve()
            assert (context / build["dockerfile"]).is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), (name, source)
            else:
                assert source in data["volumes"], (name, source)
    bridge = services["bridge"]
    assert bridge["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (DEPLOY / bridge["build"]["context"]).resolve() == REPO
    settings = config.loads((COMPOSE_DIR / "bridge.toml").read_text(encoding="utf-8"))
    assert settings.state.backend == "redis"
    assert settings.state.url.startswith("redis://redis:")
    imap = settings.domains["example.test"].imap
    assert imap.host in services and settings.domains["example.test"].smtp.host in services
    grace = bridge["stop_grace_period"]
    assert grace.endswith("s") and float(grace[:-1]) > settings.server.shutdown_grace
    published = {int(p.rsplit(":", 1)[1]) for p in bridge["ports"]}
    assert published == {settings.tcp.port, settings.xmap.port, settings.http.port}
    # Kamailio shares the bridge's loopback, where the bridge's SIP agents bind.
    assert services["kamailio"]["network_mode"] == "service:bridge"
    assert settings.domains["example.test"].sip.host == "127.0.0.1"


# --------------------------------------------------------------------------- bridge TOML


def shipped_bridge_tomls() -> Iterator[tuple[str, str]]:
    yield "compose/bridge.toml", (COMPOSE_DIR / "bridge.toml").read_text(encoding="utf-8")
    for path in MANIFESTS:
        for doc in documents(path):
            if doc["kind"] == "ConfigMap" and "bridge.toml" in doc.get("data", {}):
                yield f"{path.name}:{doc['metadata']['name']}", doc["data"]["bridge.toml"]


def test_every_shipped_bridge_toml_loads() -> None:
    shipped = dict(shipped_bridge_tomls())
    assert len(shipped) == 3, sorted(shipped)
    for where, text in shipped.items():
        settings = config.loads(text)
        assert settings.domain(None) is not None, where
        assert settings.tcp.host == "0.0.0.0", where


# --------------------------------------------------------------------------- Dockerfile


def stages() -> list[list[dict[str, Any]]]:
    """The Dockerfile's instructions, one list per FROM."""
    parsed = DockerfileParser(str(DEPLOY / "Dockerfile"))
    result: list[list[dict[str, Any]]] = []
    for instruction in parsed.structure:
        if instruction["instruction"] == "FROM":
            result.append([])
        if result and instruction["instruction"] != "COMMENT":
            result[-1].append(instruction)
    return result


def test_final_stage() -> None:
    builder, final = stages()
    assert builder[0]["value"].endswith(" AS builder")
    assert builder[0]["value"].split()[0] == final[0]["value"]  # the same base image
    by_kind: dict[str, list[str]] = {}
    for instruction in final:
        by_kind.setdefault(instruction["instruction"], []).append(instruction["value"])
    assert by_kind["COPY"] == ["--from=builder /opt/venv /opt/venv"]
    assert by_kind["USER"] == ["10001:10001"]
    assert by_kind["EXPOSE"] == ["11024 11026 8100"]
    assert by_kind["ENTRYPOINT"] == ['["ximss-bridge"]']
    assert by_kind["CMD"] == ['["serve"]']
    assert by_kind["WORKDIR"] == ["/var/lib/ximss-bridge"]
    env = dict(pair.split("=", 1) for pair in shlex.split(" ".join(by_kind["ENV"])))
    assert env["XIMSS_BRIDGE_CONFIG"] == "/etc/ximss-bridge/bridge.toml"
    (healthcheck,) = by_kind["HEALTHCHECK"]
    assert "/healthz" in healthcheck and "curl" not in healthcheck
    final_runs = " ".join(by_kind["RUN"])
    assert "--uid 10001" in final_runs and "/var/lib/ximss-bridge" in final_runs
    for tool in ("gcc", "build-essential", "pip install", "apt-get"):
        assert tool not in final_runs, tool


def healthcheck_command() -> list[str]:
    (_, final) = stages()
    (healthcheck,) = [i["value"] for i in final if i["instruction"] == "HEALTHCHECK"]
    command = json.loads(healthcheck.split(" CMD ", 1)[1])
    assert isinstance(command, list)
    return [str(part) for part in command]


def run_builder_stage(workdir: Path) -> Path:
    """The builder's ENV, COPY and RUN steps with /src and /opt/venv moved below `workdir`."""
    builder, _ = stages()
    paths = {"/opt/venv": str(workdir / "venv"), "/src": str(workdir / "src")}

    def moved(text: str) -> str:
        for image_path, here in paths.items():
            text = text.replace(image_path, here)
        return text

    shims = workdir / "shims"
    shims.mkdir()
    # The base image's `python`: this interpreter's base installation (not a venv).
    base = Path(getattr(sys, "_base_executable", sys.executable))
    (shims / "python").symlink_to(base)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("XIMSS_BRIDGE")},
        "PATH": f"{shims}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("VIRTUAL_ENV", None)
    kinds = [i["instruction"] for i in builder[1:]]
    assert set(kinds) <= {"ENV", "COPY", "RUN"}, kinds
    for instruction in builder[1:]:
        kind, value = instruction["instruction"], instruction["value"]
        if kind == "ENV":
            env.update(pair.split("=", 1) for pair in shlex.split(value))
        elif kind == "COPY":
            *sources, target = shlex.split(value)
            destination = Path(moved(target))
            for source in sources:
                origin = REPO / source
                if origin.is_dir():
                    shutil.copytree(
                        origin, destination, ignore=shutil.ignore_patterns("__pycache__")
                    )
                else:
                    assert target.endswith("/"), value
                    destination.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, destination / origin.name)
        else:
            subprocess.run(["sh", "-ec", moved(value)], env=env, check=True, timeout=240)
    return workdir / "venv"


def test_builder_stage_runs_as_a_script(tmp_path: Path) -> None:
    started = time.monotonic()
    venv = run_builder_stage(tmp_path)
    built_in = time.monotonic() - started
    python = venv / "bin" / "python"
    program = venv / "bin" / "ximss-bridge"
    env = {k: v for k, v in os.environ.items() if not k.startswith("XIMSS_BRIDGE")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    # Installed into the venv (not editable), without the installer the image drops.
    located = subprocess.run(
        [python, "-c", "import bridge, adapters; print(bridge.__file__, adapters.__file__)"],
        capture_output=True, text=True, check=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert all(p.startswith(str(venv)) for p in located.stdout.split()), located.stdout
    assert not (venv / "bin" / "pip").exists()
    # Every module of the two packages imports with what the image has.
    subprocess.run(
        [python, "-c",
         "import importlib, pkgutil, bridge, adapters\n"
         "for package in (bridge, adapters):\n"
         "    for module in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
         "        importlib.import_module(module.name)\n"],
        check=True, cwd=tmp_path, env=env, timeout=120,
    )  # fmt: skip
    shown = subprocess.run([program, "--help"], capture_output=True, text=True, check=True, env=env)
    assert "serve" in shown.stdout and "check-config" in shown.stdout
    check_help = run([program, "check-config", "--help"], env=env).stdout
    # check-config probes the backends unless told not to; none runs here.
    offline = ["--no-probe"] if "--no-probe" in check_help else []
    checked = run(
        [program, "--config", str(COMPOSE_DIR / "bridge.toml"), "check-config", *offline], env=env
    )
    assert checked.returncode == 0, checked.stderr
    assert "default domain: example.test" in checked.stdout
    serve_with_the_image_healthcheck(program, tmp_path, env)
    assert built_in < 150, f"the builder stage took {built_in:.0f} s"


def serve_with_the_image_healthcheck(program: Path, tmp_path: Path, env: dict[str, str]) -> None:
    """`serve` from the built venv as the image runs it (config from XIMSS_BRIDGE_CONFIG, env
    overrides), probed by the image's HEALTHCHECK command; SIGTERM ends it."""
    http_port = free_port()
    run_env = {
        **env,
        "XIMSS_BRIDGE_CONFIG": str(COMPOSE_DIR / "bridge.toml"),
        "XIMSS_BRIDGE__TCP__HOST": "127.0.0.1",
        "XIMSS_BRIDGE__TCP__PORT": str(free_port()),
        "XIMSS_BRIDGE__XMAP__HOST": "127.0.0.1",
        "XIMSS_BRIDGE__XMAP__PORT": str(free_port()),
        "XIMSS_BRIDGE__HTTP__HOST": "127.0.0.1",
        "XIMSS_BRIDGE__HTTP__PORT": str(http_port),
        "XIMSS_BRIDGE__STATE__BACKEND": "sqlite",
        "XIMSS_BRIDGE__STATE__PATH": str(tmp_path / "state.sqlite"),
        "XIMSS_BRIDGE__SERVER__SHUTDOWN_GRACE": "1",
    }
    probe = healthcheck_command()
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [program, "serve"], env=run_env, cwd=tmp_path, stdout=output, stderr=output
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                healthy = run(probe, env=run_env, timeout=10)
                if healthy.returncode == 0:
                    break
                assert process.poll() is None, log.read_text(errors="replace")
                assert time.monotonic() < deadline, healthy.stderr
                time.sleep(0.3)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0, log.read_text(errors="replace")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


# --------------------------------------------------------------------------- backends


def test_dovecot_configurations(tmp_path: Path) -> None:
    sidecar = find("ConfigMap", "ximss-sidecar-dovecot")["data"]["dovecot.conf"]
    (tmp_path / "sidecar.conf").write_text(sidecar, encoding="utf-8")
    for conf in (COMPOSE_DIR / "dovecot" / "dovecot.conf", tmp_path / "sidecar.conf"):
        out = run(["doveconf", "-n", "-c", str(conf)], timeout=30)
        assert out.returncode == 0, out.stderr
        assert "warning" not in out.stderr.lower(), out.stderr
    # passwd-file lines: user:password:uid:gid:gecos:home:shell:extra.
    for line in (COMPOSE_DIR / "dovecot" / "users").read_text().splitlines():
        fields = line.split(":")
        assert len(fields) == 8 and fields[1].startswith("{PLAIN}") and fields[4], line


def test_postfix_configuration() -> None:
    for flag in ("-n", "-M"):
        out = run(["postconf", "-c", str(COMPOSE_DIR / "postfix"), flag], timeout=30)
        assert out.returncode == 0, out.stderr
        assert "warning" not in out.stderr.lower(), out.stderr
    addresses = {
        line.split()[0] for line in (COMPOSE_DIR / "postfix" / "vmailbox").read_text().splitlines()
    }
    accounts = {
        line.split(":")[0] for line in (COMPOSE_DIR / "dovecot" / "users").read_text().splitlines()
    }
    assert addresses == accounts


def test_kamailio_configuration(tmp_path: Path) -> None:
    folder = COMPOSE_DIR / "kamailio"
    image_db = "/var/lib/kamailio/kamailio.sqlite"
    cfg = (folder / "kamailio.cfg").read_text(encoding="utf-8")
    assert image_db in cfg
    (tmp_path / "kamailio.cfg").write_text(cfg.replace(image_db, str(tmp_path / "k.sqlite")))
    env = {
        **os.environ,
        "KAMAILIO_CFG": str(tmp_path / "kamailio.cfg"),
        "KAMAILIO_DB": str(tmp_path / "k.sqlite"),
        "KAMAILIO_SUBSCRIBERS": str(folder / "subscribers"),
    }
    out = run(["sh", str(folder / "start.sh"), "--check"], env=env, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    with sqlite3.connect(tmp_path / "k.sqlite") as db:
        rows = set(db.execute("SELECT username || '@' || domain, password FROM subscriber"))
    accounts = {
        (fields[0], fields[1].removeprefix("{PLAIN}"))
        for fields in (
            line.split(":") for line in (COMPOSE_DIR / "dovecot" / "users").read_text().splitlines()
        )
    }
    assert rows == accounts


def test_radicale_configuration(tmp_path: Path) -> None:
    path = COMPOSE_DIR / "radicale" / "config"
    loaded = radicale.config.load([(str(path), False)])
    assert loaded.get("auth", "type") == "dovecot"
    assert loaded.get("rights", "file") == "/etc/radicale/rights"
    # Unknown options are refused by the loader, so the check above means something.
    bogus = tmp_path / "config"
    bogus.write_text("[auth]\nno_such_option = 1\n")
    with pytest.raises(Exception, match="no_such_option"):
        radicale.config.load([(str(bogus), False)])


def test_backends_image_radicale_meets_the_dev_extra() -> None:
    """The backends image pins Radicale; the dev stack's own is the pyproject dev extra."""
    dockerfile = (COMPOSE_DIR / "backends.Dockerfile").read_text(encoding="utf-8")
    pinned = re.search(r"RADICALE_VERSION=([\d.]+)", dockerfile)
    assert pinned is not None
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    (requirement,) = [
        r for r in project["project"]["optional-dependencies"]["dev"] if r.startswith("radicale")
    ]
    minimum = requirement.split(">=")[1]
    assert tuple(map(int, pinned[1].split("."))) >= tuple(map(int, minimum.split(".")))
