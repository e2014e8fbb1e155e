"""What each service's container gets from the manifests, and whether the service starts with it.

- `render(kustomization)`: deploy/k8s rendered as kustomize does for the features it uses (resources,
  namespace, labels, images, JSON 6902 patches); anything else is refused, not ignored. `make
  k8s-check` renders with kustomize itself and reads its output with `read_objects`.
- `kubernetes_environments(objects, secret)`: the environment of each service's container: the
  image's `ENV`, then `envFrom` ConfigMaps, then `env` in order, `$(NAME)` expanded the way the
  kubelet does, Secrets' values from `secret(name, key)`, downward-API fields, and the variables
  Kubernetes adds for each Service with a cluster IP (`enableServiceLinks`).
- `compose_environments(compose, host)`: the same for docker-compose.yml, `${VAR:-default}`
  interpolated and variables without a value passed through from `host`.
- `table_problems(service, environment, read)`: how what a manifest gives a container differs from
  shared/deployment.py (`kubernetes_sources`, `compose_sources` say where each variable comes from).
- `start_problems(service, environ)`: builds the service's settings from exactly `environ`
  (`Settings.from_environment`) and its app (its composition root checks the environment, without
  connecting to anything), and returns why it would not start; `with_example_files` first writes
  an example of each CA certificate the container mounts and names.
- `example_value(shape)`: a generated value of a secret's shape (shared/deployment.py).

    python -m devtools.manifests RENDERED.yaml...   (deploy/k8s/validate.sh: `make k8s-check`)

checks every rendered Deployment's services against shared/deployment.py and exits 1 naming each
problem, among them a variable no setting reads.
"""

from __future__ import annotations

import copy
import importlib
import json
import re
import secrets
import shlex
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_settings import SettingsError

from shared.deployment import VARIABLES, FromHost, FromPod, FromSecret, Shape, Value, variables_of
from shared.environments import UnsafeEnvironment, check_named_environment
from shared.settings import REPO_ROOT, Settings, UnknownVariables

__all__ = [
    "Container",
    "DOCKERFILE",
    "EXAMPLE_CA",
    "check_rendered",
    "compose_environments",
    "compose_sources",
    "example_value",
    "host_secrets",
    "image_environment",
    "kubernetes_environments",
    "kubernetes_sources",
    "read_objects",
    "render",
    "start_problems",
    "table_problems",
    "table_secret",
    "with_example_files",
]

DOCKERFILE = REPO_ROOT / "deploy" / "docker" / "Dockerfile"
# A CA certificate of the shape Strimzi's cluster CA and Redis's CA Secrets hold (self-signed, its key
# thrown away): what a mounted `ca.crt` is when a service is built from a manifest here.
EXAMPLE_CA = """-----BEGIN CERTIFICATE-----
MIIBuzCCAWGgAwIBAgIUL84HSdCXlG+qOlYdxbe0ICLy8fMwCgYIKoZIzj0EAwIw
MjEwMC4GA1UEAwwnY3JlZGl0d2luZG93IGV4YW1wbGUgQ0EgKGtleSBkaXNjYXJk
ZWQpMCAXDTI2MTIwNzIzMDcyM1oYDzIxMjYxMTEzMjMwNzIzWjAyMTAwLgYDVQQD
DCdjcmVkaXR3aW5kb3cgZXhhbXBsZSBDQSAoa2V5IGRpc2NhcmRlZCkwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAATrs6eepM5SErc01nmku9UueTPucNDhWqW2/X5y
t4LsARDjzCSBPIwPWB5AWugSZKogZ5T0/0ckLEQi537ZiPJ9o1MwUTAdBgNVHQ4E
FgQUK95pMpQv8chxEdJwkE2wEo0HwrkwHwYDVR0jBBgwFoAUK95pMpQv8chxEdJw
kE2wEo0HwrkwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEAmXr6
xBcYG3S3GG/CsvkbOhzK+vLleCtRXla3iuH2e/0CIGYPEZUPaFCtSy97Y+WHHhAG
HelecPYCza3yva6wvN9T
-----END CERTIFICATE-----
"""
# Settings that name a CA certificate file: the container must mount it.
CERTIFICATE_VARIABLES = ("CW_KAFKA_SSL_CAFILE", "CW_REDIS_SSL_CA_CERTS")
_KUSTOMIZE_FIELDS = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "patches"}
_CLUSTER_SCOPED = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass"}
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_INTERPOLATION = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


# --- Kubernetes ------------------------------------------------------------------------------------


def read_objects(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """The objects of rendered manifests (multi-document YAML)."""
    return [doc for path in paths for doc in yaml.safe_load_all(path.read_text()) if isinstance(doc, dict)]


def render(directory: Path) -> list[dict[str, Any]]:
    """A kustomization's objects, for the kustomize features deploy/k8s uses (others are refused)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - _KUSTOMIZE_FIELDS
    if unknown:
        raise ValueError(f"{directory}/kustomization.yaml uses {sorted(unknown)}, which this renderer does not do: use kustomize")
    objects: list[dict[str, Any]] = []
    for resource in kustomization.get("resources", []):
        path = directory / resource
        objects += render(path) if path.is_dir() else read_objects([path])
    for patch in kustomization.get("patches", []):
        _patch(objects, directory, patch)
    for image in kustomization.get("images", []):
        _set_image(objects, image)
    for label in kustomization.get("labels", []):
        if label.get("includeSelectors") or label.get("includeTemplates"):
            raise ValueError("labels with includeSelectors or includeTemplates: use kustomize")
        for obj in objects:
            obj.setdefault("metadata", {}).setdefault("labels", {}).update(label["pairs"])
    if "namespace" in kustomization:
        for obj in objects:
            if obj["kind"] not in _CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = kustomization["namespace"]
    return objects


def _patch(objects: list[dict[str, Any]], directory: Path, patch: Mapping[str, Any]) -> None:
    if set(patch) - {"path", "target"} or set(patch.get("target", {})) - {"kind", "name"}:
        raise ValueError(f"patch {patch}: only `path` and a target's kind and name are rendered here; use kustomize")
    operations = yaml.safe_load((directory / patch["path"]).read_text())
    if not isinstance(operations, list):
        raise ValueError(f"{patch['path']}: a strategic merge patch; only JSON 6902 patches are rendered here")
    target = patch["target"]
    for obj in objects:
        if obj["kind"] == target.get("kind", obj["kind"]) and re.fullmatch(target.get("name", ".*"), obj["metadata"]["name"]):
            for operation in operations:
                _json_patch(obj, operation)


def _json_patch(obj: dict[str, Any], operation: Mapping[str, Any]) -> None:
    *parents, last = [part.replace("~1", "/").replace("~0", "~") for part in operation["path"].lstrip("/").split("/")]
    node: Any = obj
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = last if isinstance(node, dict) else (len(node) if last == "-" else int(last))
    if operation["op"] in ("add", "replace"):
        if isinstance(node, list) and operation["op"] == "add":
            node.insert(key, copy.deepcopy(operation["value"]))
        else:
            node[key] = copy.deepcopy(operation["value"])
    elif operation["op"] == "remove":
        del node[key]
    else:
        raise ValueError(f"JSON patch op {operation['op']!r} is not rendered here; use kustomize")


def _set_image(objects: list[dict[str, Any]], image: Mapping[str, str]) -> None:
    for obj in objects:
        pod = obj.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            name, _, tag = container["image"].partition(":")
            if name == image["name"]:
                container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}".rstrip(":")


def image_environment(dockerfile: Path = DOCKERFILE) -> dict[str, str]:
    """The `ENV` of the image's last stage (what every container of the image starts with)."""
    lines = dockerfile.read_text().replace("\\\n", " ").splitlines()
    stages = [i for i, line in enumerate(lines) if line.strip().upper().startswith("FROM ")]
    env: dict[str, str] = {}
    for line in lines[stages[-1] :]:
        words = line.strip().split(None, 1)
        if words and words[0].upper() == "ENV" and len(words) == 2:
            env.update(dict(pair.split("=", 1) for pair in shlex.split(words[1])))
    return env


def _expand(value: str, env: Mapping[str, str]) -> str:
    # The kubelet's rule: $(NAME) of a variable defined before is replaced, $$ is a $, the rest stays.
    return _REFERENCE.sub(lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), value)


def _service_links(objects: list[dict[str, Any]]) -> dict[str, str]:
    links: dict[str, str] = {}
    for service in (o for o in objects if o["kind"] == "Service" and o["spec"].get("clusterIP") != "None"):
        prefix = service["metadata"]["name"].upper().replace("-", "_")
        ports = service["spec"]["ports"]
        links[f"{prefix}_SERVICE_HOST"] = "10.96.0.10"
        links[f"{prefix}_SERVICE_PORT"] = str(ports[0]["port"])
        links[f"{prefix}_PORT"] = f"tcp://10.96.0.10:{ports[0]['port']}"
        for port in ports:
            protocol = port.get("protocol", "TCP")
            if "name" in port:
                links[f"{prefix}_SERVICE_PORT_{port['name'].upper().replace('-', '_')}"] = str(port["port"])
            base = f"{prefix}_PORT_{port['port']}_{protocol}"
            links |= {base: f"{protocol.lower()}://10.96.0.10:{port['port']}", f"{base}_PROTO": protocol.lower(),
                      f"{base}_PORT": str(port["port"]), f"{base}_ADDR": "10.96.0.10"}  # fmt: skip
    return links


@dataclass(frozen=True, slots=True)
class Container:
    """A service's container in rendered manifests: its environment, its spec and its pod's spec."""

    service: str
    env: dict[str, str]
    spec: dict[str, Any]
    pod: dict[str, Any]

    def mounted(self, path: str) -> str | None:
        """Where the file at `path` comes from (`secret NAME key KEY`), or None when nothing mounts it."""
        volumes = {volume["name"]: volume for volume in self.pod.get("volumes", [])}
        for mount in self.spec.get("volumeMounts", []):
            inside = Path(path).relative_to(mount["mountPath"]) if Path(path).is_relative_to(mount["mountPath"]) else None
            source = volumes.get(mount["name"], {}).get("secret")
            if inside is None or source is None:
                continue
            keys = {item["path"]: item["key"] for item in source.get("items", [])}
            key = keys.get(str(inside)) if keys else str(inside)
            if key:
                return f"secret {source['secretName']} key {key}"
        return None


def kubernetes_environments(objects: list[dict[str, Any]], secret: Callable[[str, str, str], str]) -> dict[str, Container]:
    """Service -> its container, for every Deployment running `creditwindow run SERVICE`, with the
    environment it gets. `secret(service, name, key)` gives a Secret's value."""
    config_maps = {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"}
    links = _service_links(objects)
    found: dict[str, Container] = {}
    for deployment in (o for o in objects if o["kind"] == "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        for container in pod["containers"]:
            args = container.get("args") or container.get("command") or []
            if args[:2] != ["creditwindow", "run"]:
                continue
            service = args[2]
            env = dict(image_environment()) | (links if pod.get("enableServiceLinks", True) else {})
            for source in container.get("envFrom", []):
                if set(source) != {"configMapRef"}:
                    raise ValueError(f"{service}: envFrom {source} is not read here")
                env |= {source.get("prefix", "") + k: str(v) for k, v in config_maps[source["configMapRef"]["name"]].items()}
            for item in container.get("env", []):
                env[item["name"]] = _env_value(service, item, env, config_maps, deployment, secret)
            found[service] = Container(service, env, container, pod)
    return found


def _env_value(
    service: str,
    item: Mapping[str, Any],
    env: Mapping[str, str],
    config_maps: Mapping[str, Mapping[str, str]],
    deployment: Mapping[str, Any],
    secret: Callable[[str, str, str], str],
) -> str:
    if "value" in item:
        return _expand(str(item["value"]), env)
    source = item["valueFrom"]
    if "secretKeyRef" in source:
        return secret(service, source["secretKeyRef"]["name"], source["secretKeyRef"]["key"])
    if "configMapKeyRef" in source:
        return str(config_maps[source["configMapKeyRef"]["name"]][source["configMapKeyRef"]["key"]])
    if "fieldRef" in source:
        path = source["fieldRef"]["fieldPath"]
        fields = {"metadata.name": f"{deployment['metadata']['name']}-7d9f8c6b5-x2x4q",
                  "metadata.namespace": deployment["metadata"].get("namespace", "default")}  # fmt: skip
        return fields[path]
    raise ValueError(f"{service}: {item['name']} comes from {sorted(source)}, which is not read here")


# --- compose ---------------------------------------------------------------------------------------


def _interpolate(value: str, host: Mapping[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        given = host.get(name)
        if ":-" in match.group(0):
            return given if given else (default or "")
        return given if given is not None else (default or "")

    return _INTERPOLATION.sub(one, value)


def compose_environments(compose: Mapping[str, Any], host: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Compose service -> the environment of its container, for every service of the fleet's image."""
    found = {}
    for name, service in compose["services"].items():
        if "creditwindow" not in str(service.get("image", "")):
            continue
        if "env_file" in service:
            raise ValueError(f"compose {name}: env_file is not read here")
        env = dict(image_environment())
        for key, value in compose_sources(service).items():
            if isinstance(value, FromHost):  # passed through from the host, unset if the host has none
                if key in host:
                    env[key] = host[key]
            else:
                env[key] = _interpolate(value, host)
        found[name] = env
    return found


# --- secrets and the check -------------------------------------------------------------------------


def example_value(shape: Shape) -> str:
    """A generated value of a secret's shape, as an operator would create it."""
    if shape is Shape.PASSWORD:
        return secrets.token_urlsafe(24)
    if shape is Shape.KEY:
        return secrets.token_hex(32)
    if shape is Shape.TOKENS:
        return json.dumps({"partner-a": secrets.token_urlsafe(32), "ops-console": secrets.token_urlsafe(32)})
    return json.dumps({"partner-a": {"url": "https://hooks.partner-a.example/creditwindow", "key": secrets.token_hex(32)}})


def with_example_files(container: Container, root: Path) -> tuple[dict[str, str], list[str]]:
    """The container's environment with each mounted CA certificate it names written under `root`
    (an example of its shape) and named there; and the certificates it names that nothing mounts."""
    env, problems = dict(container.env), []
    for variable in CERTIFICATE_VARIABLES:
        if variable not in env:
            continue
        if container.mounted(env[variable]) is None:
            problems.append(f"{variable}: {env[variable]} is not a file any Secret volume of the pod mounts")
            continue
        copy_path = root / env[variable].lstrip("/")
        copy_path.parent.mkdir(parents=True, exist_ok=True)
        copy_path.write_text(EXAMPLE_CA)
        env[variable] = str(copy_path)
    return env, problems


def start_problems(service: str, environ: Mapping[str, str]) -> list[str]:
    """Why `service` would not start with exactly `environ` as its environment (nothing: it starts).

    Its settings are read from `environ` (unknown `CW_` variables refused) and its app is built: the
    composition root checks CW_ENVIRONMENT and, outside local and test, the production rules.
    Nothing connects.
    """
    try:
        settings = Settings.from_environment(environ)
        check_named_environment(settings)
        importlib.import_module(f"services.{service}.app").create_app(settings)
    except UnsafeEnvironment as exc:
        return list(exc.problems)
    except (UnknownVariables, ValidationError, SettingsError) as exc:
        return [str(exc).splitlines()[0] if isinstance(exc, SettingsError) else str(exc)]
    return []


def table_problems(service: str, environment: str, read: Mapping[str, Value]) -> list[str]:
    """How what a manifest gives a service's container differs from shared/deployment.py (`read`:
    where the manifest takes each variable from: a literal, FromSecret, FromHost, FromPod)."""
    wanted = variables_of(service, environment)
    problems = [f"{name}: set by the manifest, not in shared/deployment.py" for name in sorted(set(read) - set(wanted))]
    for name, value in wanted.items():
        if name not in read:
            problems.append(f"{name}: shared/deployment.py gives it to {service} in {environment}; the manifest does not")
        elif read[name] != value:
            problems.append(f"{name}: the manifest gives {read[name]!r}; shared/deployment.py says {value!r}")
    return problems


def kubernetes_sources(container: Mapping[str, Any], config_maps: Mapping[str, Mapping[str, str]]) -> dict[str, Value]:
    """Where a container's manifest takes each variable from (ConfigMap values as literals)."""
    read: dict[str, Value] = {}
    for source in container.get("envFrom", []):
        read |= {k: str(v) for k, v in config_maps[source["configMapRef"]["name"]].items()}
    for item in container.get("env", []):
        if "value" in item:
            read[item["name"]] = str(item["value"])
        elif "secretKeyRef" in item["valueFrom"]:
            ref = item["valueFrom"]["secretKeyRef"]
            read[item["name"]] = FromSecret(ref["name"], ref["key"], _shape_of(item["name"], FromSecret))
        elif "fieldRef" in item["valueFrom"]:
            read[item["name"]] = FromPod(item["valueFrom"]["fieldRef"]["fieldPath"])
    return read


def _shape_of(variable: str, kind: type[FromSecret] | type[FromHost]) -> Shape:
    for known in VARIABLES:
        for value in (known.local, known.production):
            if known.name == variable and isinstance(value, kind):
                return value.shape
    return Shape.PASSWORD  # a secret the table does not know: reported as a difference


def table_secret(service: str, name: str, key: str) -> str:
    """A generated value of the shape the table gives the Secret key (a key it does not name: a
    password; the check reports that variable as differing from the table)."""
    for value in variables_of(service, "production").values():
        if isinstance(value, FromSecret) and (value.secret, value.key) == (name, key):
            return example_value(value.shape)
    return example_value(Shape.PASSWORD)


def compose_sources(service: Mapping[str, Any]) -> dict[str, Value]:
    """What a compose service declares for each variable: a literal, or FromHost (no value: passed through)."""
    declared = service.get("environment") or {}
    if isinstance(declared, list):
        declared = dict(item.split("=", 1) if "=" in item else (item, None) for item in declared)
    return {name: FromHost(_shape_of(name, FromHost)) if value is None else str(value) for name, value in declared.items()}


def host_secrets(service: str) -> dict[str, str]:
    """Generated values for what the table has compose pass through from the host."""
    return {name: example_value(v.shape) for name, v in variables_of(service, "local").items() if isinstance(v, FromHost)}


def check_rendered(objects: list[dict[str, Any]]) -> list[str]:
    """Every problem of the services of rendered Kubernetes manifests (production): differences
    from the table, files not mounted, and why a service would not start in its environment."""
    config_maps = {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"}
    problems = []
    with tempfile.TemporaryDirectory() as root:
        for service, container in kubernetes_environments(objects, table_secret).items():
            env, missing = with_example_files(container, Path(root))
            found = table_problems(service, "production", kubernetes_sources(container.spec, config_maps))
            problems += [f"{service}: {problem}" for problem in [*found, *missing, *start_problems(service, env)]]
    return problems


def main(argv: list[str] | None = None) -> int:
    paths = [Path(p) for p in (sys.argv[1:] if argv is None else argv)]
    status = 0
    for path in paths:
        problems = check_rendered(read_objects([path]))
        for problem in problems:
            print(f"[k8s] {path.name}: {problem}", file=sys.stderr)
        status = status or (1 if problems else 0)
        if not problems:
            print(f"[k8s] {path.name}: every service's environment is the table's and starts in it", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
