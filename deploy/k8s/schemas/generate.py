"""JSON schemas for kubeconform, made offline from what Go modules and this folder ship.

    generate.py --out DIR --kubernetes K8S_MODULE_DIR --crds CRD.yaml... RENDERED.yaml...

For every apiVersion/kind in the rendered manifests it writes DIR/<kind>-<group>-<version>.json
(kubeconform's `{{ .ResourceKind }}{{ .KindSuffix }}` naming):
  - Kubernetes' own kinds from the OpenAPI document in the k8s.io/kubernetes module
    (api/openapi-spec/swagger.json), with every $ref inlined;
  - custom kinds from CustomResourceDefinitions (KEDA's, from its Go module; Strimzi's, hand-written
    here, see strimzi-crds.yaml).
Schemas are strict the way kubectl validates: an object that lists its properties accepts no
others (except where a CRD says x-kubernetes-preserve-unknown-fields), and int-or-string fields
take either. A kind with no source is reported and the run fails.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

import yaml


def kind_file(api_version: str, kind: str) -> str:
    group, _, version = api_version.rpartition("/")
    suffix = f"-{group.split('.')[0]}-{version}" if group else f"-{version}"
    return f"{kind.lower()}{suffix.lower()}.json"


def strict(node: Any) -> Any:
    """additionalProperties: false where properties are listed; int-or-string as oneOf."""
    if isinstance(node, list):
        return [strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    if node.get("format") == "int-or-string" or node.get("x-kubernetes-int-or-string"):
        return {"oneOf": [{"type": "string"}, {"type": "integer"}]}
    out = {key: strict(value) for key, value in node.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def inline(node: Any, definitions: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """Replace each {"$ref": "#/definitions/X"} by X itself (a cycle becomes an open object)."""
    if isinstance(node, list):
        return [inline(item, definitions, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/definitions/"):
        name = ref.removeprefix("#/definitions/")
        if name in seen:
            return {"type": "object"}
        return inline(copy.deepcopy(definitions[name]), definitions, (*seen, name))
    return {key: inline(value, definitions, seen) for key, value in node.items()}


def core_schemas(swagger: Path) -> dict[tuple[str, str], Any]:
    definitions = json.loads(swagger.read_text())["definitions"]
    found = {}
    for name, definition in definitions.items():
        for gvk in definition.get("x-kubernetes-group-version-kind", []):
            api_version = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
            found[(api_version, gvk["kind"])] = name
    return {key: definitions[name] for key, name in found.items()} | {("__definitions__", ""): definitions}


def crd_schemas(paths: list[Path]) -> dict[tuple[str, str], Any]:
    found = {}
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                schema = version.get("schema", {}).get("openAPIV3Schema")
                if schema is not None:
                    found[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = schema
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--kubernetes", type=Path, required=True, help="the k8s.io/kubernetes module directory")
    parser.add_argument("--crds", type=Path, nargs="+", default=[])
    parser.add_argument("rendered", type=Path, nargs="+")
    args = parser.parse_args()

    core = core_schemas(args.kubernetes / "api" / "openapi-spec" / "swagger.json")
    definitions = core.pop(("__definitions__", ""))
    custom = crd_schemas(args.crds)
    wanted = {
        (doc["apiVersion"], doc["kind"])
        for path in args.rendered
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    }
    args.out.mkdir(parents=True, exist_ok=True)
    missing = []
    for api_version, kind in sorted(wanted):
        if (api_version, kind) in core:
            schema = inline(core[(api_version, kind)], definitions)
            source = "kubernetes"
        elif (api_version, kind) in custom:
            schema = copy.deepcopy(custom[(api_version, kind)])
            source = "crd"
        else:
            missing.append(f"{api_version} {kind}")
            continue
        (args.out / kind_file(api_version, kind)).write_text(json.dumps(strict(schema), separators=(",", ":")))
        print(f"  schema {api_version} {kind} ({source})")
    for item in missing:
        print(f"  NO SCHEMA for {item}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
