#!/usr/bin/env bash
# The policy on a real cluster, in two phases.
#
# `run.sh` (or `run.sh all`): build this commit's annotated module (first, so a build
# failure shows before minutes of cluster set-up), then a kind cluster, Kubewarden from
# its admission-controller chart, the module served by a local registry that the
# policy-server trusts, deploy/rbac.yaml and deploy/policy.yaml applied as the README says
# (the module pointed at the local build), a check of the cluster's token issuer, and then
# the check phase.
#
# `run.sh check`: the checks alone, against whatever cluster kubectl points at (with the
# policy and its RBAC applied). Every pod, ServiceAccount and expectation comes from the
# e2e cases in e2e-tests/cases/, the ones the local suite proves on every commit; no
# message text is written here. `make cluster-check` runs this phase against a stand-in
# kubectl (irsa-test-host kubectl) so the filters and greps below fail locally, not first
# on GitHub.
#
# Admission is checked with `kubectl create --dry-run=server -o json`: the API server
# runs every webhook and returns the pod as it would store it; nothing is scheduled. The
# audit is checked with real Deployments and one run of Kubewarden's audit scanner.
#
# Needs docker, kind, helm, kubectl (1.31 or later for `wait --for=create`), jq, kwctl,
# wasm-opt (binaryen) and Rust with make. From the repository root:
#
#   e2e-tests/cluster/run.sh
#
# Environment: CLUSTER (kind cluster name, default irsa-policy-e2e), REGISTRY_PORT (the
# registry's port on 127.0.0.1, default 5001), KUBEWARDEN_CHART_VERSION (default: the
# newest), KEEP_CLUSTER=1 to leave the cluster and the registry running afterwards.
set -euo pipefail

cd "$(dirname "$0")/../.."

PHASE="${1:-all}"
CLUSTER="${CLUSTER:-irsa-policy-e2e}"
REGISTRY="${CLUSTER}-registry"
REGISTRY_PORT="${REGISTRY_PORT:-5001}"
KUBEWARDEN_NAMESPACE=kubewarden
# One release name here and in the README's helm commands.
RELEASE=kubewarden
TAG="e2e-$(git rev-parse --short HEAD 2>/dev/null || echo local)"
# The policy-server keeps a ServiceAccount it read for 5 seconds.
LOOKUP_CACHE_SECONDS="${LOOKUP_CACHE_SECONDS:-6}"
# Seconds between attempts while the API server catches up (webhook configuration,
# RBAC changes, the lookup cache).
RETRY_SECONDS="${RETRY_SECONDS:-5}"

# The e2e cases the cluster checks, by what each shows.
CASES=e2e-tests/cases
INJECTED=mutates-deployment-pod                # a pod of an annotated ServiceAccount is injected
OPTED_OUT=skip-pod-identity-webhook-label      # the opt-out label: untouched
FOREIGN_VOLUME=reject-foreign-token-volume     # a foreign aws-iam-token volume: refused
NO_RBAC=reject-host-forbidden                  # without deploy/rbac.yaml: refused, naming the grant
AUDIT_BEFORE_ROLE=audit-pod-created-before-role # the audit: a pod created before the role fails
AUDIT_IN_STEP=audit-pod-in-step                # the audit: a pod created after it passes
# deploy/policy.yaml's namespaceSelector leaves this namespace out: INJECTED's pod there
# never reaches the policy, so it comes back untouched.
EXCLUDED_NAMESPACE=kube-system
POLICY_NAME="$(sed -n 's/^  name: //p' deploy/policy.yaml | head -n 1)"

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
  [ "${PHASE}" = all ] || return 0
  if [ "${KEEP_CLUSTER:-0}" = 1 ]; then
    echo "Left running: kind cluster ${CLUSTER}, registry container ${REGISTRY}"
    return
  fi
  kind delete cluster --name "${CLUSTER}" >/dev/null 2>&1 || true
  docker rm -f "${REGISTRY}" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# -- The cases, read as a client and a cluster see them ------------------------------

case_request() {
  jq 'if .kind == "AdmissionReview" then .request else . end' "${CASES}/$1/request.json"
}

# The case's pod as a client sends it (no fields the API server sets), in its request's
# namespace or in $2.
case_pod() {
  case_request "$1" | jq --arg ns "${2:-}" '.namespace as $request_ns | .object
    | del(.metadata.uid, .metadata.resourceVersion, .metadata.creationTimestamp,
          .metadata.managedFields, .metadata.generation, .status)
    | .metadata.namespace = (if $ns != "" then $ns else ($request_ns // .metadata.namespace) end)'
}

# The ServiceAccounts the case's session answers the policy with, as manifests (in $2 if
# given), one per line.
case_accounts() {
  sed -n "s/^    payload: '\(.*\)'\$/\1/p" "${CASES}/$1/session.yml" | sed "s/''/'/g" |
    jq -c --arg ns "${2:-}" 'select(.kind == "ServiceAccount")
      | {apiVersion: "v1", kind: "ServiceAccount",
         metadata: {name: .metadata.name,
                    namespace: (if $ns != "" then $ns else .metadata.namespace end),
                    annotations: (.metadata.annotations // {})}}'
}

ensure_namespace() {
  jq -n --arg name "$1" '{apiVersion: "v1", kind: "Namespace", metadata: {name: $name}}' |
    kubectl apply -f - >/dev/null
}

# Creates what the case's pod needs in the cluster: its namespace, and its ServiceAccounts
# as the session answers them. The API server refuses a pod whose ServiceAccount does not
# exist, so one the session never returns is created plain.
prepare_case() {
  local case="$1" namespace="${2:-}" pod accounts
  pod="$(case_pod "${case}" "${namespace}")"
  namespace="$(jq -r .metadata.namespace <<<"${pod}")"
  ensure_namespace "${namespace}"
  accounts="$(case_accounts "${case}" "${namespace}")"
  if [ -z "${accounts}" ]; then
    accounts="$(jq -c '{apiVersion: "v1", kind: "ServiceAccount",
      metadata: {name: (.spec.serviceAccountName // "default"), namespace: .metadata.namespace}}' <<<"${pod}")"
  fi
  apply_each <<<"${accounts}"
}

# admit MANIFEST: the pod as the API server would store it, after every webhook, on
# stdout; kubectl's refusal or warnings on stderr.
admit() {
  kubectl create --dry-run=server -o json -f - <<<"$1"
}

# judge CASE [NAMESPACE]: the case's pod through the cluster, judged by its expect.json;
# VERDICT says why. In another namespace than the case's, the pod must come back untouched
# (the namespace is excluded from the policy).
judge() {
  local case="$1" namespace="${2:-}" expect sent message problems
  expect="$(cat "${CASES}/${case}/expect.json")"
  [ -z "${namespace}" ] || expect='{"allowed": true, "mutated": false}'
  sent="$(case_pod "${case}" "${namespace}")"
  if admit "${sent}" >"${WORK}/admitted.json" 2>"${WORK}/stderr"; then
    if [ "$(jq .allowed <<<"${expect}")" = false ]; then
      VERDICT="admitted, expected a refusal"
      return 1
    fi
    # Inside `if judge`, set -e is off: a jq that fails must fail the case itself.
    if ! problems="$(jq -r --argjson e "${expect}" --argjson sent "${sent}" \
      -f e2e-tests/cluster/expect.jq "${WORK}/admitted.json")" || ! [ -s "${WORK}/admitted.json" ]; then
      VERDICT="expect.jq could not judge the returned pod: $(head -c 300 "${WORK}/admitted.json")"
      return 1
    fi
    while read -r warning; do
      [ -z "${warning}" ] || grep -qxF "Warning: ${warning}" "${WORK}/stderr" ||
        problems="${problems}${problems:+$'\n'}no warning ${warning}"
    done < <(jq -r '.warnings[]?' <<<"${expect}")
    VERDICT="${problems}"
    [ -z "${problems}" ]
  else
    message="$(jq -r '.message // empty' <<<"${expect}")"
    VERDICT="refused with: $(cat "${WORK}/stderr")"
    # A refusal case without a message would match any webhook's denial.
    [ -n "${message}" ] || VERDICT="the case expects a refusal but names no message to find in it"
    [ -n "${message}" ] && [ "$(jq .allowed <<<"${expect}")" = false ] &&
      grep -qF 'denied the request: ' "${WORK}/stderr" && grep -qF -- "${message}" "${WORK}/stderr"
  fi
}

check_case() {
  local case="$1" namespace="${2:-}" what
  what="$(jq -r .description "${CASES}/${case}/expect.json")"
  [ -z "${namespace}" ] || what="its pod in ${namespace} comes back untouched"
  if judge "$@"; then
    pass "${case}: ${what}"
  else
    fail "${case}${namespace:+ in ${namespace}}: ${VERDICT}"
  fi
}

# wait_until_holds CASE: judge the case until it holds or a minute has passed, while the
# API server catches up (the webhook configuration, RBAC changes, the lookup cache).
wait_until_holds() {
  local attempt
  for attempt in $(seq 1 12); do
    if judge "$@" 2>/dev/null; then
      return 0
    fi
    [ "${attempt}" = 12 ] || sleep "${RETRY_SECONDS}"
  done
}

# A Deployment of one replica whose pod is the case's, its images replaced by pause (so
# the pods run on kind) and a label naming the Deployment (so its pods can be listed).
deployment_of() {
  local case="$1" name="$2"
  case_pod "${case}" | jq --arg name "${name}" '
    def own: map(select(.name | startswith("kube-api-access-") | not));
    (.metadata.labels // {} | del(."pod-template-hash") | . + {"irsa-e2e/deployment": $name}) as $labels
    | {apiVersion: "apps/v1", kind: "Deployment",
       metadata: {name: $name, namespace: .metadata.namespace},
       spec: {replicas: 1, selector: {matchLabels: $labels},
              template: {metadata: {labels: $labels},
                         spec: (.spec | del(.nodeName, .serviceAccount)
                                | .volumes = (.volumes // [] | own)
                                | .containers |= map(.image = "registry.k8s.io/pause:3.10"
                                    | .volumeMounts = (.volumeMounts // [] | own)))}}}'
}

# The one running pod of a Deployment (none terminating), or {} when there is not one.
deployment_pod() {
  kubectl -n "$1" get pods -l "irsa-e2e/deployment=$2" -o json |
    jq -c '[.items[] | select(.metadata.deletionTimestamp == null)] | if length == 1 then .[0] else {} end'
}

# apply_each: kubectl apply for each manifest on stdin, one per line.
apply_each() {
  local manifest
  while read -r manifest; do
    [ -z "${manifest}" ] || kubectl apply -f - <<<"${manifest}" >/dev/null
  done
}

# The policy's result in the audit report of a pod (reports are named after the pod's
# uid): OpenReports since Kubewarden 1.33, PolicyReports before.
audit_result() {
  local namespace="$1" uid="$2" reports
  reports="$(kubectl -n "${namespace}" get reports.openreports.io -o json 2>/dev/null ||
    kubectl -n "${namespace}" get policyreports -o json)"
  jq -c --arg uid "${uid}" --arg policy "clusterwide-${POLICY_NAME}" \
    '[.items[] | select(.metadata.name == $uid) | .results[]? | select(.policy == $policy)] | .[0] // {}' \
    <<<"${reports}"
}

# -- The check phase -------------------------------------------------------------------

check_admission() {
  log "admission, through the API server: cases ${INJECTED}, ${OPTED_OUT}, ${FOREIGN_VOLUME}"
  prepare_case "${INJECTED}"
  # The API server calls the webhook a few seconds after the policy reports active.
  wait_until_holds "${INJECTED}"
  check_case "${INJECTED}"
  prepare_case "${OPTED_OUT}"
  check_case "${OPTED_OUT}"
  prepare_case "${FOREIGN_VOLUME}"
  check_case "${FOREIGN_VOLUME}"

  log "a pod in ${EXCLUDED_NAMESPACE}, which deploy/policy.yaml excludes, is untouched"
  prepare_case "${INJECTED}" "${EXCLUDED_NAMESPACE}"
  check_case "${INJECTED}" "${EXCLUDED_NAMESPACE}"
}

check_audit() {
  log "the audit: cases ${AUDIT_BEFORE_ROLE} and ${AUDIT_IN_STEP}, with real Deployments and the scanner"
  local pod namespace deployment accounts before after job result expected old_uid new_pod injected problems
  pod="$(case_pod "${AUDIT_BEFORE_ROLE}")"
  namespace="$(jq -r .metadata.namespace <<<"${pod}")"
  # The Deployment the case's pod belongs to: its ReplicaSet's name less the hash.
  deployment="$(jq -r '.metadata.ownerReferences[0].name | sub("-[^-]+$"; "")' <<<"${pod}")"
  ensure_namespace "${namespace}"
  accounts="$(case_accounts "${AUDIT_BEFORE_ROLE}")"
  # A kept cluster still has the Deployments of a run before, their pods injected.
  kubectl -n "${namespace}" delete deployment "${deployment}" "${deployment}-after" \
    --ignore-not-found --wait >/dev/null
  # First the ServiceAccount without its annotations (and long enough for the
  # policy-server to forget the copy it read with them), and a Deployment of it.
  jq -c '.metadata.annotations = {}' <<<"${accounts}" | apply_each
  sleep "${LOOKUP_CACHE_SECONDS}"
  deployment_of "${AUDIT_BEFORE_ROLE}" "${deployment}" | kubectl apply -f - >/dev/null
  kubectl -n "${namespace}" rollout status "deployment/${deployment}" --timeout=3m >/dev/null
  # Then the ServiceAccount as the case has it, and a second Deployment, injected.
  apply_each <<<"${accounts}"
  sleep "${LOOKUP_CACHE_SECONDS}"
  deployment_of "${AUDIT_BEFORE_ROLE}" "${deployment}-after" | kubectl apply -f - >/dev/null
  kubectl -n "${namespace}" rollout status "deployment/${deployment}-after" --timeout=3m >/dev/null
  before="$(deployment_pod "${namespace}" "${deployment}")"
  after="$(deployment_pod "${namespace}" "${deployment}-after")"
  if [ "${before}" = '{}' ] || [ "${after}" = '{}' ]; then
    fail "the Deployments ${deployment} and ${deployment}-after should have one pod each"
    return
  fi

  job="audit-${TAG}-$$"
  kubectl -n "${KUBEWARDEN_NAMESPACE}" create job --from=cronjob/audit-scanner "${job}" >/dev/null
  kubectl -n "${KUBEWARDEN_NAMESPACE}" wait --for=condition=complete "job/${job}" --timeout=5m >/dev/null

  # The case's message, with the pod's name as the cluster made it.
  expected="$(jq -r --arg case_pod "$(case_request "${AUDIT_BEFORE_ROLE}" | jq -r .object.metadata.name)" \
    --arg pod "$(jq -r .metadata.name <<<"${before}")" '.message | split($case_pod) | join($pod)' \
    "${CASES}/${AUDIT_BEFORE_ROLE}/expect.json")"
  result="$(audit_result "${namespace}" "$(jq -r .metadata.uid <<<"${before}")")"
  if jq -e --arg expected "${expected}" '.result == "fail" and (.message // "" | contains($expected))' \
    <<<"${result}" >/dev/null; then
    pass "${AUDIT_BEFORE_ROLE}: the pod created before the role fails, naming its restart"
  else
    fail "${AUDIT_BEFORE_ROLE}: report result ${result}, expected fail with: ${expected}"
  fi
  result="$(audit_result "${namespace}" "$(jq -r .metadata.uid <<<"${after}")")"
  if jq -e --argjson e "$(cat "${CASES}/${AUDIT_IN_STEP}/expect.json")" \
    '.result == (if $e.allowed then "pass" else "fail" end)' <<<"${result}" >/dev/null; then
    pass "${AUDIT_IN_STEP}: the pod created after the role passes"
  else
    fail "${AUDIT_IN_STEP}: report result ${result}"
  fi

  log "the restart the finding names gives the pod what ${AUDIT_IN_STEP}'s pod carries"
  old_uid="$(jq -r .metadata.uid <<<"${before}")"
  kubectl -n "${namespace}" rollout restart "deployment/${deployment}" >/dev/null
  kubectl -n "${namespace}" rollout status "deployment/${deployment}" --timeout=3m >/dev/null
  new_pod="$(deployment_pod "${namespace}" "${deployment}")"
  # What an injected pod carries: the in-step case's stored pod, less the API server's own.
  injected="$(case_request "${AUDIT_IN_STEP}" | jq '.object
    | def own: map(select(.name | startswith("kube-api-access-") | not));
      {pod: ({"/spec/volumes": (.spec.volumes | own)}
             + ([.spec.containers | to_entries[]
                 | {("/spec/containers/\(.key)/env"): .value.env,
                    ("/spec/containers/\(.key)/volumeMounts"): (.value.volumeMounts | own)}] | add))}')"
  if [ "$(jq -r .metadata.uid <<<"${new_pod}")" = "${old_uid}" ]; then
    fail "the Deployment's pod was not re-created"
  elif problems="$(jq -r --argjson e "${injected}" --argjson sent '{}' -f e2e-tests/cluster/expect.jq <<<"${new_pod}")" &&
    [ -z "${problems}" ]; then
    pass "the re-created pod is injected"
  else
    fail "the re-created pod is not injected: ${problems}"
  fi
}

check_rbac() {
  log "without deploy/rbac.yaml: case ${NO_RBAC}"
  kubectl delete -f deploy/rbac.yaml >/dev/null
  prepare_case "${NO_RBAC}"
  # RBAC changes take a moment to reach the API server's authorizer, and the policy-server
  # may answer from its cache until then.
  wait_until_holds "${NO_RBAC}"
  check_case "${NO_RBAC}"
  kubectl apply -f deploy/rbac.yaml >/dev/null
}

check_phase() {
  for tool in kubectl jq; do
    command -v "${tool}" >/dev/null || { echo "${tool} is needed" >&2; exit 2; }
  done
  check_admission
  check_audit
  check_rbac
}

# -- The cluster phase -----------------------------------------------------------------

cluster_phase() {
  for tool in docker kind helm kubectl jq kwctl make cargo wasm-opt; do
    command -v "${tool}" >/dev/null || {
      echo "${tool} is needed: see docs/install-options.md, Cluster test" >&2
      exit 2
    }
  done

  log "this commit's annotated module (before any cluster work, so a build failure shows at once)"
  make annotated-policy.wasm

  log "kind cluster ${CLUSTER}"
  kind get clusters 2>/dev/null | grep -qx "${CLUSTER}" || kind create cluster --name "${CLUSTER}" --wait 3m
  kubectl config use-context "kind-${CLUSTER}"

  log "local registry ${REGISTRY}, on 127.0.0.1:${REGISTRY_PORT} and on kind's network"
  if [ "$(docker inspect -f '{{.State.Running}}' "${REGISTRY}" 2>/dev/null)" != true ]; then
    docker rm -f "${REGISTRY}" >/dev/null 2>&1 || true
    docker run -d --name "${REGISTRY}" -p "127.0.0.1:${REGISTRY_PORT}:5000" registry:2 >/dev/null
  fi
  docker network connect kind "${REGISTRY}" 2>/dev/null || true
  # The policy-server pulls the module itself (not the kubelet), from inside a pod: it
  # reaches the registry at its address on the kind network, over plain HTTP.
  local in_cluster
  in_cluster="$(docker inspect -f '{{.NetworkSettings.Networks.kind.IPAddress}}' "${REGISTRY}"):5000"
  echo "the cluster pulls from ${in_cluster}"

  log "Kubewarden (admission-controller chart, release ${RELEASE}), trusting the registry"
  helm repo add kubewarden https://charts.kubewarden.io --force-update >/dev/null
  local chart_version=()
  if [ -n "${KUBEWARDEN_CHART_VERSION:-}" ]; then
    chart_version=(--version "${KUBEWARDEN_CHART_VERSION}")
  fi
  # ${a[@]+"${a[@]}"}: an empty array under set -u stops bash 3.2 (macOS) otherwise.
  helm upgrade --install --wait --timeout 8m -n "${KUBEWARDEN_NAMESPACE}" --create-namespace \
    ${chart_version[@]+"${chart_version[@]}"} --set "policyServer.insecureSources={${in_cluster}}" \
    "${RELEASE}" kubewarden/admission-controller
  # The controller creates the default PolicyServer's Deployment after helm returns.
  kubectl -n "${KUBEWARDEN_NAMESPACE}" wait --for=create deployment/policy-server-default --timeout=3m
  kubectl -n "${KUBEWARDEN_NAMESPACE}" rollout status deployment/policy-server-default --timeout=5m

  log "the annotated module, pushed as ${TAG}"
  printf 'insecure_sources:\n  - "127.0.0.1:%s"\n' "${REGISTRY_PORT}" >"${WORK}/sources.yml"
  kwctl push --sources-path "${WORK}/sources.yml" annotated-policy.wasm \
    "registry://127.0.0.1:${REGISTRY_PORT}/irsa-policy:${TAG}"

  log "RBAC and policy from deploy/, the module pointed at the local build"
  kubectl apply -f deploy/rbac.yaml
  sed "s|^  module: .*|  module: registry://${in_cluster}/irsa-policy:${TAG}|" deploy/policy.yaml \
    >"${WORK}/policy.yaml"
  grep -q "module: registry://${in_cluster}/" "${WORK}/policy.yaml" || {
    echo "deploy/policy.yaml has no '  module:' line to point at the local build" >&2
    exit 1
  }
  # Policy conditions carry no observedGeneration: on a kept cluster, a wait on the
  # re-applied policy could pass on the old build. A deleted and re-created one cannot.
  kubectl delete --ignore-not-found -f "${WORK}/policy.yaml" --wait --timeout=2m
  kubectl apply -f "${WORK}/policy.yaml"
  kubectl wait --for=condition=PolicyActive "clusteradmissionpolicy/${POLICY_NAME}" --timeout=5m
  kubectl wait --for=condition=PolicyUniquelyReachable "clusteradmissionpolicy/${POLICY_NAME}" --timeout=5m

  log "the cluster's token issuer: a TokenRequest for the policy's audience carries it in aud"
  # A check of the cluster, not of the policy: the kubelet asks the same TokenRequest API
  # for the projected token, so a cluster that refused this audience or wrote another sub
  # would give pods a token that STS refuses. The namespace and ServiceAccount are the
  # injected case's.
  prepare_case "${INJECTED}"
  local account audience token payload
  account="$(case_pod "${INJECTED}" | jq -r '"\(.metadata.namespace) \(.spec.serviceAccountName)"')"
  audience="$(sed -n 's/^    tokenAudience: //p' deploy/policy.yaml)"
  # A JWT's payload is base64url without padding: map it to base64 and pad it first.
  token="$(kubectl -n "${account% *}" create token "${account#* }" --audience "${audience}")"
  payload="$(cut -d. -f2 <<<"${token}" | tr '_-' '/+')"
  while [ $((${#payload} % 4)) != 0 ]; do payload="${payload}="; done
  if base64 -d <<<"${payload}" | jq -e --arg aud "${audience}" \
    --arg sub "system:serviceaccount:${account% *}:${account#* }" \
    '(.aud | if type == "array" then . else [.] end | index($aud)) != null and .sub == $sub' >/dev/null; then
    pass "token aud and sub"
  else
    fail "the token's aud or sub is not the expected one: $(base64 -d <<<"${payload}")"
  fi

  check_phase

  log "policy-server log lines of the policy"
  kubectl -n "${KUBEWARDEN_NAMESPACE}" logs -l kubewarden/policy-server=default --prefix --tail=200 |
    grep irsa-policy | tail -n 5 || true
}

case "${PHASE}" in
  all) cluster_phase ;;
  check) check_phase ;;
  *)
    echo "usage: $0 [all|check]" >&2
    exit 2
    ;;
esac

if [ "${FAILURES}" -ne 0 ]; then
  echo "${FAILURES} check(s) failed" >&2
  exit 1
fi
echo "all cluster checks passed"
