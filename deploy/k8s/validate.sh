#!/usr/bin/env bash
# `make k8s-check`: render deploy/k8s (the base and every overlay) with kustomize and check every
# object against a JSON schema with kubeconform, strictly (unknown fields are errors, a kind
# without a schema is an error); then check each service's container against shared/deployment.py
# and build the service from exactly its environment (devtools/manifests.py): a variable no setting
# reads, a Secret the table does not name, or a production check that fails is an error. No cluster
# is involved.
#
# Tools and schemas come through the Go module proxy, once, then from the module cache:
#   kustomize, kubeconform          go install (into .cache/tools)
#   Kubernetes' own kinds           k8s.io/kubernetes's OpenAPI document
#   KEDA's kinds                    the CRDs in the github.com/kedacore/keda/v2 module
#   Strimzi's kinds                 deploy/k8s/schemas/strimzi-crds.yaml (hand-written, see there)
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE=${CW_HOME:-$PWD/.cache}
TOOLS=$CACHE/tools
OUT=$CACHE/k8s-check
KUSTOMIZE_VERSION=v5.8.2
KUBECONFORM_VERSION=v0.8.0
KUBERNETES_VERSION=v1.34.2
KEDA_VERSION=v2.18.1
PY=${PYTHON:-$PWD/.venv/bin/python}
[ -x "$PY" ] || PY=python3
say() { printf '[k8s] %s\n' "$*" >&2; }

command -v go >/dev/null || { say "Go is needed (it builds kustomize and kubeconform, and fetches the schemas' sources)"; exit 1; }
mkdir -p "$TOOLS" "$OUT"
tool() {  # name, module path, version
  local bin=$TOOLS/$1-$3
  if [ ! -x "$bin" ]; then
    say "building $1 $3"
    GOBIN=$TOOLS/gobin-$1 go install "$2@$3"
    mv "$TOOLS/gobin-$1/$1" "$bin" && rm -rf "$TOOLS/gobin-$1"
  fi
  echo "$bin"
}
module_dir() { (cd "$OUT" && GOFLAGS=-mod=mod go mod download -json "$1@$2" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p'); }

KUSTOMIZE=$(tool kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION")
KUBECONFORM=$(tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION")
KUBERNETES_DIR=$(module_dir k8s.io/kubernetes "$KUBERNETES_VERSION")
KEDA_DIR=$(module_dir github.com/kedacore/keda/v2 "$KEDA_VERSION")

rendered=()
for kustomization in deploy/k8s/base deploy/k8s/overlays/*; do
  name=$(echo "${kustomization#deploy/k8s/}" | tr / -)
  "$KUSTOMIZE" build "$kustomization" >"$OUT/$name.yaml"
  rendered+=("$OUT/$name.yaml")
done

rm -rf "$OUT/schemas"
"$PY" deploy/k8s/schemas/generate.py --out "$OUT/schemas" --kubernetes "$KUBERNETES_DIR" \
  --crds "$KEDA_DIR"/config/crd/bases/keda.sh_*.yaml deploy/k8s/schemas/strimzi-crds.yaml \
  -- "${rendered[@]}" >&2

status=0
"$PY" -m devtools.manifests "${rendered[@]}" || status=1
for file in "${rendered[@]}"; do
  say "$(basename "$file" .yaml): $(grep -c '^kind:' "$file") objects"
  "$KUBECONFORM" -strict -summary -output text \
    -schema-location "$OUT/schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json" "$file" || status=1
done
exit $status
