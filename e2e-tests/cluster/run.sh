#!/usr/bin/env bash
# The policy on a real cluster: kind, Kubewarden from its admission-controller chart, this
# commit's annotated module served by a local registry, deploy/rbac.yaml and
# deploy/policy.yaml applied as the README says (the module pointed at the local build).
# Then admission is checked with `kubectl create --dry-run=server -o json`: the API server
# runs every webhook and returns the pod as it would store it, and nothing is scheduled.
#
# Needs docker, kind, helm, kubectl (1.31 or later for `wait --for=create`), jq, kwctl,
# and Rust with make (it runs `make annotated-policy.wasm`). From the repository root:
#
#   e2e-tests/cluster/run.sh
#
# Environment: CLUSTER (kind cluster name, default irsa-policy-e2e), REGISTRY_PORT (the
# registry's port on 127.0.0.1, default 5001), KUBEWARDEN_CHART_VERSION (default: the
# newest), KEEP_CLUSTER=1 to leave the cluster and the registry running afterwards.
set -euo pipefail

cd "$(dirname "$0")/../.."

CLUSTER="${CLUSTER:-irsa-policy-e2e}"
REGISTRY="${CLUSTER}-registry"
REGISTRY_PORT="${REGISTRY_PORT:-5001}"
KUBEWARDEN_NAMESPACE=kubewarden
NAMESPACE=irsa-e2e
ROLE_ARN=arn:aws:iam::111122223333:role/s3-reader
AUDIENCE=sts.amazonaws.com
TAG="e2e-$(git rev-parse --short HEAD 2>/dev/null || echo local)"
WORK="$(mktemp -d)"
FAILURES=0

log() { printf '\n== %s\n' "$*"; }
pass() { printf 'ok: %s\n' "$*"; }
fail() {
  printf 'FAILED: %s\n' "$*" >&2
  FAILURES=$((FAILURES + 1))
}

cleanup() {
  rm -rf "${WORK}"
  if [ "${KEEP_CLUSTER:-0}" = 1 ]; then
    echo "Left running: kind cluster ${CLUSTER}, registry container ${REGISTRY}"
    return
  fi
  kind delete cluster --name "${CLUSTER}" >/dev/null 2>&1 || true
  docker rm -f "${REGISTRY}" >/dev/null 2>&1 || true
}
trap cleanup EXIT

for tool in docker kind helm kubectl jq kwctl make cargo; do
  command -v "${tool}" >/dev/null || { echo "${tool} is needed: see the README, Cluster test" >&2; exit 2; }
done

log "kind cluster ${CLUSTER}"
kind get clusters 2>/dev/null | grep -qx "${CLUSTER}" || kind create cluster --name "${CLUSTER}" --wait 5m
kubectl config use-context "kind-${CLUSTER}"

log "local registry ${REGISTRY}, on 127.0.0.1:${REGISTRY_PORT} and on kind's network"
if [ "$(docker inspect -f '{{.State.Running}}' "${REGISTRY}" 2>/dev/null)" != true ]; then
  docker rm -f "${REGISTRY}" >/dev/null 2>&1 || true
  docker run -d --name "${REGISTRY}" -p "127.0.0.1:${REGISTRY_PORT}:5000" registry:2 >/dev/null
fi
docker network connect kind "${REGISTRY}" 2>/dev/null || true
# The policy-server pulls the module itself (not the kubelet), from inside a pod: it
# reaches the registry at its address on the kind network, over plain HTTP.
REGISTRY_IN_CLUSTER="$(docker inspect -f '{{.NetworkSettings.Networks.kind.IPAddress}}' "${REGISTRY}"):5000"
echo "the cluster pulls from ${REGISTRY_IN_CLUSTER}"

log "Kubewarden (admission-controller chart), trusting the registry"
helm repo add kubewarden https://charts.kubewarden.io --force-update >/dev/null
chart_version=()
if [ -n "${KUBEWARDEN_CHART_VERSION:-}" ]; then
  chart_version=(--version "${KUBEWARDEN_CHART_VERSION}")
fi
helm upgrade --install --wait --timeout 10m -n "${KUBEWARDEN_NAMESPACE}" --create-namespace \
  "${chart_version[@]}" --set "policyServer.insecureSources={${REGISTRY_IN_CLUSTER}}" \
  admission-controller kubewarden/admission-controller
# The controller creates the default PolicyServer's Deployment after helm returns.
kubectl -n "${KUBEWARDEN_NAMESPACE}" wait --for=create deployment/policy-server-default --timeout=5m
kubectl -n "${KUBEWARDEN_NAMESPACE}" rollout status deployment/policy-server-default --timeout=5m

log "this commit's annotated module, pushed as ${TAG}"
make annotated-policy.wasm
printf 'insecure_sources:\n  - "127.0.0.1:%s"\n' "${REGISTRY_PORT}" > "${WORK}/sources.yml"
kwctl push --sources-path "${WORK}/sources.yml" annotated-policy.wasm \
  "registry://127.0.0.1:${REGISTRY_PORT}/irsa-policy:${TAG}"

log "RBAC and policy from deploy/, the module pointed at the local build"
kubectl apply -f deploy/rbac.yaml
sed "s|^  module: .*|  module: registry://${REGISTRY_IN_CLUSTER}/irsa-policy:${TAG}|" deploy/policy.yaml \
  > "${WORK}/policy.yaml"
grep -q "module: registry://${REGISTRY_IN_CLUSTER}/" "${WORK}/policy.yaml"
kubectl apply -f "${WORK}/policy.yaml"
if ! kubectl wait --for=condition=PolicyActive clusteradmissionpolicy/irsa-policy --timeout=5m ||
  ! kubectl wait --for=condition=PolicyUniquelyReachable clusteradmissionpolicy/irsa-policy --timeout=5m; then
  kubectl get clusteradmissionpolicy irsa-policy -o yaml
  kubectl -n "${KUBEWARDEN_NAMESPACE}" logs -l kubewarden/policy-server=default --prefix --tail=50 || true
  exit 1
fi

log "ServiceAccounts with a role"
kubectl create namespace "${NAMESPACE}" --dry-run=client -o yaml | kubectl apply -f -
for target in "${NAMESPACE}/app" "${NAMESPACE}/no-rbac" kube-system/irsa-e2e; do
  kubectl -n "${target%/*}" create serviceaccount "${target#*/}" --dry-run=client -o yaml | kubectl apply -f -
  kubectl -n "${target%/*}" annotate --overwrite serviceaccount "${target#*/}" \
    "eks.amazonaws.com/role-arn=${ROLE_ARN}"
done

# pod NAMESPACE SERVICE_ACCOUNT [LABELS_JSON [VOLUMES_JSON]]: a Pod manifest.
pod() {
  local labels="${3:-}" volumes="${4:-}"
  jq -n --arg ns "$1" --arg sa "$2" --argjson labels "${labels:-"{}"}" --argjson volumes "${volumes:-"[]"}" '{
    apiVersion: "v1", kind: "Pod",
    metadata: {generateName: "irsa-e2e-", namespace: $ns, labels: $labels},
    spec: {serviceAccountName: $sa, volumes: $volumes,
           containers: [{name: "app", image: "registry.k8s.io/pause:3.10"}]}}'
}

# admit MANIFEST: the pod as the API server would store it, after every webhook; the
# refusal on stderr otherwise.
admit() {
  kubectl create --dry-run=server -o json -f - <<<"$1"
}

injected() {
  jq -e --arg arn "${ROLE_ARN}" --arg aud "${AUDIENCE}" '
    (.spec.volumes[] | select(.name == "aws-iam-token")
      | .projected.sources[0].serviceAccountToken.audience == $aud)
    and (.spec.containers[0].volumeMounts[]
      | select(.name == "aws-iam-token")
      | .mountPath == "/var/run/secrets/eks.amazonaws.com/serviceaccount" and .readOnly)
    and ([.spec.containers[0].env[] | {(.name): .value}] | add
      | .AWS_ROLE_ARN == $arn
        and .AWS_WEB_IDENTITY_TOKEN_FILE == "/var/run/secrets/eks.amazonaws.com/serviceaccount/token")
  ' >/dev/null
}

untouched() {
  jq -e '([.spec.volumes[]?.name] | index("aws-iam-token") == null)
    and ([.spec.containers[0].env[]?.name] | index("AWS_ROLE_ARN") == null)' >/dev/null
}

log "a pod of the annotated ServiceAccount gets the volume, the mount and the env"
# The webhook can reach the API server a few seconds after the policy reports active.
for attempt in $(seq 1 12); do
  if admit "$(pod "${NAMESPACE}" app)" > "${WORK}/injected.json" && injected < "${WORK}/injected.json"; then
    break
  fi
  [ "${attempt}" = 12 ] || sleep 5
done
if injected < "${WORK}/injected.json"; then
  pass "injected"
else
  fail "the annotated ServiceAccount's pod was not injected"
  cat "${WORK}/injected.json"
fi

log "a pod labelled eks.amazonaws.com/skip-pod-identity-webhook is untouched"
if admit "$(pod "${NAMESPACE}" app '{"eks.amazonaws.com/skip-pod-identity-webhook": "true"}')" |
  untouched; then
  pass "opt-out label"
else
  fail "the opted-out pod was changed or refused"
fi

log "a pod in an excluded namespace (kube-system) is untouched"
if admit "$(pod kube-system irsa-e2e)" | untouched; then
  pass "excluded namespace"
else
  fail "the kube-system pod was changed or refused"
fi

log "a pod with a foreign aws-iam-token volume is refused with the policy's message"
if admit "$(pod "${NAMESPACE}" app '{}' '[{"name": "aws-iam-token", "emptyDir": {}}]')" \
  > /dev/null 2> "${WORK}/foreign.err"; then
  fail "the pod with a foreign aws-iam-token volume was admitted"
elif grep -q 'volume "aws-iam-token" already exists and is an emptyDir volume' "${WORK}/foreign.err"; then
  pass "foreign token volume refused"
else
  fail "unexpected refusal: $(cat "${WORK}/foreign.err")"
fi

log "a token from the TokenRequest API for the policy's audience carries it in aud"
# A JWT's payload is base64url without padding: map it to base64 and pad it first.
token="$(kubectl -n "${NAMESPACE}" create token app --audience "${AUDIENCE}")"
payload="$(cut -d. -f2 <<<"${token}" | tr '_-' '/+')"
while [ $((${#payload} % 4)) != 0 ]; do payload="${payload}="; done
if base64 -d <<<"${payload}" | jq -e --arg aud "${AUDIENCE}" \
  '(.aud | if type == "array" then . else [.] end | index($aud)) != null
   and .sub == "system:serviceaccount:irsa-e2e:app"' >/dev/null; then
  pass "token aud"
else
  fail "the token's aud or sub is not the expected one: $(base64 -d <<<"${payload}")"
fi

log "with the RBAC removed, the refusal names the missing grant"
kubectl delete -f deploy/rbac.yaml
# A ServiceAccount not read before, so no cached answer stands in; RBAC changes take a
# moment to reach the API server's authorizer.
refused=""
for attempt in $(seq 1 12); do
  if ! admit "$(pod "${NAMESPACE}" no-rbac)" > /dev/null 2> "${WORK}/rbac.err" &&
    grep -Eiq 'grant[^.]* get[ ,][^.]*serviceaccounts' "${WORK}/rbac.err"; then
    refused=yes
    break
  fi
  [ "${attempt}" = 12 ] || sleep 5
done
if [ -n "${refused}" ]; then
  pass "missing RBAC named: $(head -c 400 "${WORK}/rbac.err")"
else
  fail "no refusal naming the grant: $(cat "${WORK}/rbac.err")"
fi
kubectl apply -f deploy/rbac.yaml

log "policy-server log lines of the policy"
kubectl -n "${KUBEWARDEN_NAMESPACE}" logs -l kubewarden/policy-server=default --prefix --tail=200 |
  grep irsa-policy | tail -n 5 || true

if [ "${FAILURES}" -ne 0 ]; then
  echo "${FAILURES} check(s) failed" >&2
  exit 1
fi
echo "all cluster checks passed"
