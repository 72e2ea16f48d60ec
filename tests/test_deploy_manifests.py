"""deploy/kubernetes and docker-compose.yml: rendered, schema-valid, and true to the app.

Rendered by tests/kustomize_render.py, and by `kubectl kustomize` too wherever kubectl is
installed (the two must agree); every object validated against the Kubernetes schemas
(kubernetes-validate, strict), KEDA's ScaledObject and the Prometheus Operator's
ServiceMonitor against the fields they define.
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jsonschema
import kubernetes_validate
import pytest
import yaml
from django.conf import settings

from tests.kustomize_render import Resource, pod_spec, render

ROOT = Path(__file__).resolve().parents[1]
KUBE = ROOT / "deploy" / "kubernetes"
# The oldest Kubernetes the manifests claim (README) and the newest the validator knows.
KUBERNETES_VERSIONS = ["1.29", kubernetes_validate.latest_version()]
APP_CONTAINERS = {"web", "worker", "beat", "migrate"}
# Settings the pods do not get, and why.
NOT_PROVIDED = {
    "SHADOWLAB_DEMO_PASSWORD": "only `manage.py demo` reads it; production has no demo users",
    "CELERY_BROKER_URL": "optional in the Secret: REDIS_URL is the broker unless it is set",
}
# Set on the containers whose processes use them, not in the ConfigMap.
PER_CONTAINER = {"PROMETHEUS_MULTIPROC_DIR", "SHADOWLAB_WORKER_METRICS_PORT"}


def _kubectl_kustomize(folder: Path) -> list[Resource] | None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None
    completed = subprocess.run(
        [kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=60
    )
    if completed.returncode != 0:
        # kubectl older than 1.21 has no components: the pure-Python rendering stands alone.
        if "components" in completed.stderr:
            return None
        raise AssertionError(completed.stderr)
    return [doc for doc in yaml.safe_load_all(completed.stdout) if doc]


def _key(resource: Resource) -> tuple[str, str, str]:
    metadata = resource["metadata"]
    return resource["kind"], metadata.get("namespace", ""), metadata["name"]


def _by_key(resources: list[Resource]) -> dict[tuple[str, str, str], Resource]:
    return {_key(r): r for r in resources}


def _overlay_variant(tmp: Path, edits: list[tuple[str, str]]) -> Path:
    """Copy deploy/kubernetes and make each (old, new) edit to the production overlay."""
    copy = tmp / "kubernetes"
    shutil.copytree(KUBE, copy)
    kustomization = copy / "overlays" / "production" / "kustomization.yaml"
    text = kustomization.read_text()
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    kustomization.write_text(text)
    return copy / "overlays" / "production"


def _hpa_variant(tmp: Path) -> Path:
    """The production overlay with the HPA component instead of KEDA."""
    return _overlay_variant(tmp, [("  - ../../components/keda\n", "  - ../../components/hpa\n")])


def _s3_variant(tmp: Path) -> Path:
    """The production overlay with model files in a bucket instead of the shared volume."""
    return _overlay_variant(
        tmp,
        [
            (
                "  - ../../components/servicemonitor\n",
                "  - ../../components/servicemonitor\n  - ../../components/s3-models\n",
            ),
            ("  - path: media-pvc.yaml\n", ""),
        ],
    )


VARIANTS = ["base", "production", "production-hpa", "production-s3"]


def _variant_folder(name: str, tmp: Path) -> Path:
    return {
        "base": lambda: KUBE / "base",
        "production": lambda: KUBE / "overlays" / "production",
        "production-hpa": lambda: _hpa_variant(tmp),
        "production-s3": lambda: _s3_variant(tmp),
    }[name]()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, list[Resource]]:
    folders = {name: _variant_folder(name, tmp_path_factory.mktemp(name)) for name in VARIANTS}
    return {name: render(folder) for name, folder in folders.items()}


@pytest.fixture(scope="module")
def production(rendered) -> list[Resource]:
    return rendered["production"]


def _one(resources: list[Resource], kind: str, name: str) -> Resource:
    matches = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(matches) == 1, f"{len(matches)} x {kind}/{name}"
    return matches[0]


def _workloads(resources: list[Resource]) -> list[Resource]:
    return [r for r in resources if pod_spec(r) is not None]


def _containers(resource: Resource) -> list[dict[str, Any]]:
    spec = pod_spec(resource)
    assert spec is not None
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def _secret_example() -> Resource:
    return yaml.safe_load((KUBE / "secret.example.yaml").read_text())


# Rendering


@pytest.mark.parametrize("name", VARIANTS)
def test_the_python_rendering_matches_kubectl_kustomize(rendered, name, tmp_path):
    folder = _variant_folder(name, tmp_path)
    by_kubectl = _kubectl_kustomize(folder)
    if by_kubectl is None:
        pytest.skip("no kubectl with kustomize components here; the Python rendering stands")
    assert _by_key(rendered[name]) == _by_key(by_kubectl)


def test_the_production_overlay_has_every_part_of_the_deployment(production):
    kinds = {(r["kind"], r["metadata"]["name"]) for r in production}
    assert {
        ("Deployment", "shadowlab-web"),
        ("Service", "shadowlab-web"),
        ("Deployment", "shadowlab-worker"),
        ("Deployment", "shadowlab-worker-default"),
        ("Deployment", "shadowlab-beat"),
        ("Job", "shadowlab-migrate"),
        ("PersistentVolumeClaim", "shadowlab-media"),
        ("PodDisruptionBudget", "shadowlab-web"),
        ("PodDisruptionBudget", "shadowlab-worker"),
        ("ScaledObject", "shadowlab-worker"),
        ("Ingress", "shadowlab-web"),
    } <= kinds
    assert {r["metadata"].get("namespace") for r in production} == {"shadowlab"}
    images = {c["image"] for r in _workloads(production) for c in _containers(r)}
    assert images == {"registry.example.com/shadowlab:0.1.0"}


# Schemas

SCALED_OBJECT_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["scaleTargetRef", "triggers"],
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {n: {"type": "string"} for n in ("apiVersion", "kind", "name")},
                },
                **{
                    n: {"type": "integer", "minimum": 0}
                    for n in (
                        "minReplicaCount",
                        "maxReplicaCount",
                        "pollingInterval",
                        "cooldownPeriod",
                        "idleReplicaCount",
                    )
                },
                "advanced": {"type": "object"},
                "fallback": {"type": "object"},
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "additionalProperties": False,
                        "properties": {
                            "type": {"type": "string"},
                            "name": {"type": "string"},
                            "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                            # KEDA reads every trigger setting as a string.
                            "metadata": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                            },
                            "authenticationRef": {"type": "object", "required": ["name"]},
                        },
                    },
                },
            },
        },
    },
}
SERVICE_MONITOR_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": {"type": "object", "required": ["matchLabels"]},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m)$"},
                            "authorization": {
                                "type": "object",
                                "required": ["credentials"],
                                "properties": {
                                    "type": {"type": "string"},
                                    "credentials": {
                                        "type": "object",
                                        "required": ["name", "key"],
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}
CUSTOM_SCHEMAS = {"ScaledObject": SCALED_OBJECT_SCHEMA, "ServiceMonitor": SERVICE_MONITOR_SCHEMA}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("name", VARIANTS)
def test_every_object_is_valid_against_the_kubernetes_schemas(rendered, name, version):
    objects = rendered[name] + ([_secret_example()] if name == "base" else [])
    for resource in objects:
        if resource["kind"] in CUSTOM_SCHEMAS:
            jsonschema.validate(resource, CUSTOM_SCHEMAS[resource["kind"]])
            continue
        kubernetes_validate.validate(resource, version, strict=True)


def test_the_schema_check_refuses_a_misspelt_field(production):
    web = _one(production, "Deployment", "shadowlab-web")
    broken = {**web, "spec": {**web["spec"], "replica": 3}}
    with pytest.raises(kubernetes_validate.ValidationError, match="replica"):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)
    scaled = _one(production, "ScaledObject", "shadowlab-worker")
    trigger = {**scaled["spec"]["triggers"][0], "metadata": {"listLength": 190}}
    broken = {**scaled, "spec": {**scaled["spec"], "triggers": [trigger]}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCALED_OBJECT_SCHEMA)


# Configuration


def _settings_read() -> set[str]:
    """Return every environment variable shadowlab/settings.py reads through django-environ."""
    tree = ast.parse((ROOT / "shadowlab" / "settings.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "env"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    return names


def _readme_table() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return {
        name
        for line in table.splitlines()
        if line.startswith("| `")
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1])
    }


def _provided(resources: list[Resource], container: dict[str, Any]) -> set[str]:
    names = {variable["name"] for variable in container.get("env", [])}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            names |= set(_one(resources, "ConfigMap", source["configMapRef"]["name"])["data"])
        if "secretRef" in source:
            secret = _secret_example()
            assert source["secretRef"]["name"] == secret["metadata"]["name"]
            names |= set(secret["stringData"])
    return names


def test_every_setting_reaches_every_app_container(production):
    wanted = (_settings_read() | _readme_table()) - set(NOT_PROVIDED) - PER_CONTAINER
    assert len(wanted) > 40, "the settings parser found too little"
    for workload in _workloads(production):
        for container in _containers(workload):
            missing = wanted - _provided(production, container)
            assert not missing, (
                f"{workload['metadata']['name']}/{container['name']} lacks {sorted(missing)}: "
                "add them to deploy/kubernetes/base/config.env or the Secret "
                "(secret.example.yaml and the README)"
            )
    web = _one(production, "Deployment", "shadowlab-web")
    assert "PROMETHEUS_MULTIPROC_DIR" in _provided(production, pod_spec(web)["containers"][0])
    for name in ("shadowlab-worker", "shadowlab-worker-default"):
        worker = pod_spec(_one(production, "Deployment", name))["containers"][0]
        assert _provided(production, worker) >= PER_CONTAINER


def test_the_secret_holds_the_credentials_the_metrics_token_and_the_oidc_client_secret():
    secret = _secret_example()
    assert set(secret["stringData"]) == {
        "SECRET_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "EMAIL_URL",
        "SHADOWLAB_METRICS_TOKEN",
        "OIDC_RP_CLIENT_SECRET",
    }


def _container_env(resources: list[Resource], container: dict[str, Any]) -> dict[str, str]:
    """Return the environment Kubernetes gives the container (pod IP 10.1.2.3)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env |= _one(resources, "ConfigMap", source["configMapRef"]["name"])["data"]
        if "secretRef" in source:
            env |= _secret_example()["stringData"]
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = re.sub(
                r"\$\(([A-Z_]+)\)", lambda m: env.get(m.group(1), m.group(0)), variable["value"]
            )
        elif variable["valueFrom"].get("fieldRef", {}).get("fieldPath") == "status.podIP":
            env[variable["name"]] = "10.1.2.3"
    return env


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **env}
    # The image's paths do not exist here; nothing in these commands writes to them.
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


SETTINGS_DUMP = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'SHADOWLAB': s.SHADOWLAB, 'ANALYTICS': s.ANALYTICS, "
    "'schedule': {k: v['schedule'] for k, v in s.CELERY_BEAT_SCHEDULE.items()}, "
    "'other': [s.CONN_MAX_AGE if hasattr(s, 'CONN_MAX_AGE') else None, "
    "s.DATABASES['default']['CONN_MAX_AGE'], s.CELERY_WORKER_PREFETCH_MULTIPLIER, "
    "s.DATA_UPLOAD_MAX_MEMORY_SIZE, s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_PRELOAD, "
    "s.SECURE_SSL_REDIRECT, s.TIME_ZONE, s.DEFAULT_FROM_EMAIL == s.SERVER_EMAIL]}, default=str))"
)


def test_the_web_pods_configuration_passes_django_deploy_checks(production, tmp_path):
    web = _one(production, "Deployment", "shadowlab-web")
    env = _container_env(production, pod_spec(web)["containers"][0])
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path)  # the pod's emptyDir
    env["SECRET_KEY"] = secrets.token_urlsafe(50)  # the example's is a placeholder
    assert env["ALLOWED_HOSTS"] == "shadowlab.example.com,10.1.2.3"
    completed = _manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_the_config_map_keeps_the_application_defaults_it_does_not_mean_to_change(
    production, tmp_path
):
    web = _one(production, "Deployment", "shadowlab-web")
    env = _container_env(production, pod_spec(web)["containers"][0])
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path)
    with_config = _manage(env, "shell", "-c", SETTINGS_DUMP)
    minimal = {k: env[k] for k in ("DJANGO_DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL")}
    defaults = _manage(minimal, "shell", "-c", SETTINGS_DUMP)
    assert with_config.returncode == defaults.returncode == 0, with_config.stderr + defaults.stderr
    dumped = [json.loads(run.stdout.strip().splitlines()[-1]) for run in (with_config, defaults)]
    assert dumped[0] == dumped[1]


# Workloads


def test_beat_runs_exactly_once_and_is_replaced_not_rolled(production):
    beat = _one(production, "Deployment", "shadowlab-beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert not [
        r
        for r in production
        if r["kind"] in {"HorizontalPodAutoscaler", "ScaledObject", "PodDisruptionBudget"}
        and "beat" in r["metadata"]["name"]
    ]


def test_every_container_runs_unprivileged_on_a_read_only_root_with_its_own_tmp(production):
    for workload in _workloads(production):
        spec = pod_spec(workload)
        name = workload["metadata"]["name"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        # The image's user is a name; the kubelet needs the number to check it is not root.
        assert spec["securityContext"]["runAsUser"] == 1000, name
        assert spec["automountServiceAccountToken"] is False, name
        volumes = {v["name"]: v for v in spec["volumes"]}
        for container in _containers(workload):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, (name, container["name"])
            assert context["allowPrivilegeEscalation"] is False, (name, container["name"])
            assert context["capabilities"] == {"drop": ["ALL"]}, (name, container["name"])
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], (name, container["name"])
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[kind]), (name, container["name"], kind)


def test_web_probes_liveness_on_healthz_and_readiness_on_readyz(production):
    container = pod_spec(_one(production, "Deployment", "shadowlab-web"))["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["command"][-2:] == ["--config", "python:shadowlab.gunicorn_conf"]


def test_metrics_folders_are_in_memory_and_media_is_one_shared_volume(production):
    env_media = _one(production, "ConfigMap", _config_map_name(production))["data"]
    pvc = _one(production, "PersistentVolumeClaim", "shadowlab-media")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    for name in ("shadowlab-web", "shadowlab-worker", "shadowlab-worker-default"):
        spec = pod_spec(_one(production, "Deployment", name))
        container = spec["containers"][0]
        volumes = {v["name"]: v for v in spec["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        multiproc = {v["name"]: v.get("value") for v in container["env"]}[
            "PROMETHEUS_MULTIPROC_DIR"
        ]
        assert volumes[mounts[multiproc]]["emptyDir"]["medium"] == "Memory", name
        media = volumes[mounts[env_media["SHADOWLAB_MEDIA_ROOT"]]]
        assert media["persistentVolumeClaim"]["claimName"] == "shadowlab-media", name


def test_with_the_bucket_component_no_volume_is_shared_and_each_pod_keeps_its_own_copies(
    rendered, tmp_path
):
    s3 = rendered["production-s3"]
    assert not [r for r in s3 if r["kind"] == "PersistentVolumeClaim"]
    config = _one(s3, "ConfigMap", _config_map_name(s3))["data"]
    assert config["SHADOWLAB_MODEL_BUCKET"] == "shadowlab-models"
    copies = config["SHADOWLAB_MODEL_CACHE_DIR"]
    for name in ("shadowlab-web", "shadowlab-worker", "shadowlab-worker-default"):
        spec = pod_spec(_one(s3, "Deployment", name))
        container = spec["containers"][0]
        volumes = {v["name"]: v for v in spec["volumes"]}
        mount = next(
            m for m in container["volumeMounts"] if copies.startswith(m["mountPath"] + "/")
        )
        assert not mount.get("readOnly"), f"{name} cannot write its copies"
        assert set(volumes[mount["name"]]) == {"name", "emptyDir"}, name
    # The web pod's environment builds the bucket storage and passes the deploy checks.
    web = _one(s3, "Deployment", "shadowlab-web")
    env = _container_env(s3, pod_spec(web)["containers"][0])
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path)
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    completed = _manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    storage = _manage(
        env,
        "shell",
        "-c",
        "from django.core.files.storage import storages; s = storages['default']; "
        "print(type(s).__name__, s.bucket_name, s.location)",
    )
    assert storage.stdout.split()[-3:] == ["S3Storage", "shadowlab-models", "shadowlab"]


def _config_map_name(resources: list[Resource]) -> str:
    return next(r["metadata"]["name"] for r in resources if r["kind"] == "ConfigMap")


def _selects(selector: dict[str, str], workload: Resource) -> bool:
    labels = workload["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(k) == v for k, v in selector.items())


def test_services_and_disruption_budgets_select_the_pods_they_mean(production):
    deployments = {r["metadata"]["name"]: r for r in production if r["kind"] == "Deployment"}

    def selected(selector: dict[str, str]) -> set[str]:
        return {name for name, d in deployments.items() if _selects(selector, d)}

    web_service = _one(production, "Service", "shadowlab-web")
    assert selected(web_service["spec"]["selector"]) == {"shadowlab-web"}
    metrics = _one(production, "Service", "shadowlab-worker-metrics")
    assert selected(metrics["spec"]["selector"]) == {"shadowlab-worker", "shadowlab-worker-default"}
    budgets = {
        r["metadata"]["name"]: selected(r["spec"]["selector"]["matchLabels"])
        for r in production
        if r["kind"] == "PodDisruptionBudget"
    }
    assert budgets == {"shadowlab-web": {"shadowlab-web"}, "shadowlab-worker": {"shadowlab-worker"}}


# Autoscaling


def _bench_items_per_second() -> float:
    bench = (ROOT / "bench" / "README.md").read_text()
    match = re.search(r"capacity: end-to-end scored\s+([\d,]+) items/s", bench)
    assert match, "bench/README.md no longer states the measured items/s per worker"
    return float(match.group(1).replace(",", ""))


@pytest.mark.parametrize("name", ["production", "production-hpa", "production-s3"])
def test_exactly_one_autoscaler_drives_the_inference_workers(rendered, name):
    scalers = [
        r
        for r in rendered[name]
        if r["kind"] in {"ScaledObject", "HorizontalPodAutoscaler"}
        and r["spec"]["scaleTargetRef"]["name"] == "shadowlab-worker"
    ]
    assert len(scalers) == 1
    worker = _one(rendered[name], "Deployment", "shadowlab-worker")
    assert "replicas" not in worker["spec"], "an autoscaled Deployment must not pin replicas"
    assert "-Q inference --concurrency 1" in " ".join(
        worker["spec"]["template"]["spec"]["containers"][0]["command"]
    )


def test_keda_scales_on_the_redis_list_celery_keeps_for_the_inference_queue(production):
    scaled = _one(production, "ScaledObject", "shadowlab-worker")
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis"
    # Celery routes scoring to this queue; kombu stores a queue's priority-0 messages in
    # a list named after it, and ShadowLab sends no priority.
    assert (
        trigger["metadata"]["listName"]
        == settings.CELERY_TASK_ROUTES["deployments.tasks.score_items"]["queue"]
    )
    assert getattr(settings, "CELERY_TASK_DEFAULT_PRIORITY", None) is None
    redis = urlparse(_secret_example()["stringData"]["REDIS_URL"])
    assert trigger["metadata"]["address"] == f"{redis.hostname}:{redis.port}"
    assert trigger["metadata"]["databaseIndex"] == (redis.path.strip("/") or "0")
    assert scaled["spec"]["minReplicaCount"] >= 1


def test_the_keda_target_is_five_seconds_of_one_replicas_measured_throughput(production):
    scaled = _one(production, "ScaledObject", "shadowlab-worker")
    batch = int(
        _one(production, "ConfigMap", _config_map_name(production))["data"][
            "SHADOWLAB_SCORING_BATCH_SIZE"
        ]
    )
    target = _bench_items_per_second() * 5 / batch
    list_length = int(scaled["spec"]["triggers"][0]["metadata"]["listLength"])
    assert math.floor(target) - 5 <= list_length <= math.floor(target)
    hpa = yaml.safe_load((KUBE / "components" / "hpa" / "hpa.yaml").read_text())
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (
        scaled["spec"]["minReplicaCount"],
        scaled["spec"]["maxReplicaCount"],
    )
    # The backlog alert fires past what the maximum number of replicas drains in 5 s.
    alerts = (ROOT / "deploy" / "prometheus" / "alerts.yml").read_text()
    assert f"> {list_length * scaled['spec']['maxReplicaCount']}\n" in alerts


# docker compose


def test_compose_runs_gunicorn_with_its_config_and_every_metrics_folder_on_tmpfs():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["web"]["command"] == [
        "gunicorn",
        "shadowlab.wsgi",
        "--config",
        "python:shadowlab.gunicorn_conf",
    ]
    for name in ("web", "worker"):
        folder = services[name]["environment"]["PROMETHEUS_MULTIPROC_DIR"]
        assert folder in services[name]["tmpfs"], name
        # The rest of the shared environment is still there.
        assert services[name]["environment"]["DATABASE_URL"].startswith("postgres://"), name
    assert services["worker"]["environment"]["SHADOWLAB_WORKER_METRICS_PORT"] == "9100"


def test_docker_compose_accepts_the_file():
    docker = shutil.which("docker")
    probe = (
        subprocess.run([docker or "docker", "compose", "version"], capture_output=True, text=True)
        if docker
        else None
    )
    if probe is None or probe.returncode != 0:
        pytest.skip("no `docker compose` here (the YAML checks above still ran)")
    completed = subprocess.run(
        [docker, "compose", "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
        env={**os.environ, "SECRET_KEY": "compose-config-check"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
