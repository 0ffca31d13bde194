# Runs one case of e2e-tests/cases through `kwctl run` and checks what only
# kwctl can show: its exit status, its one AdmissionResponse line, and that line
# against the case's expect.json with `jq -e` (allowed, patch present, message,
# code, warnings), plus a few checks on the patch kwctl computed. The full
# oracle (every pointer in `pod` and `absent` after the patch, lossless,
# idempotent, the replay session used exactly) is the test host's
# `irsa-test-host e2e`, which `make e2e-host` runs first.
#
# KWCTL and POLICY may be overridden (the project's CI points KWCTL at its own
# waPC test host, which takes the same flags, to keep this file honest).

E2E_DIR="${BATS_TEST_DIRNAME}"
KWCTL="${KWCTL:-kwctl}"
POLICY="${POLICY:-annotated-policy.wasm}"

run_case() {
  local dir="${E2E_DIR}/cases/$1"
  local expect settings='{}'
  expect="$(cat "${dir}/expect.json")"
  if [ -f "${dir}/settings.json" ]; then
    settings="$(cat "${dir}/settings.json")"
  fi

  run ${KWCTL} run \
    --request-path "${dir}/request.json" \
    --settings-json "${settings}" \
    --allow-context-aware \
    --replay-host-capabilities-interactions "${dir}/session.yml" \
    "${POLICY}"

  # this prints the output when one of the checks below fails
  echo "output = ${output}"

  local refused
  refused="$(jq -r '.settings_refused // empty' <<<"${expect}")"
  if [ -n "${refused}" ]; then
    [ "$status" -ne 0 ]
    [[ "${output}" == *"${refused}"* ]]
    return 0
  fi

  [ "$status" -eq 0 ]
  # kwctl's log lines share the output; the response is the one line starting {"uid"
  local response
  response="$(grep -E '^\{"uid"' <<<"${output}" || true)"
  [ -n "${response}" ]
  [ "$(wc -l <<<"${response}")" -eq 1 ]

  local uid
  uid="$(jq -r 'if .kind == "AdmissionReview" then .request.uid else .uid end' "${dir}/request.json")"
  jq -e --arg uid "${uid}" '.uid == $uid' <<<"${response}"
  jq -e --argjson e "${expect}" '$e.allowed == null or .allowed == $e.allowed' <<<"${response}"
  jq -e --argjson e "${expect}" \
    '$e.mutated == null or ((.patchType == "JSONPatch" and .patch != null) == $e.mutated)' <<<"${response}"
  jq -e --argjson e "${expect}" \
    '$e.message == null or (.status.message // "" | contains($e.message))' <<<"${response}"
  jq -e --argjson e "${expect}" \
    '.status.message as $m | all($e.message_lacks[]?; . as $s | $m // "" | contains($s) | not)' <<<"${response}"
  jq -e --argjson e "${expect}" '$e.code == null or .status.code == $e.code' <<<"${response}"
  jq -e --argjson e "${expect}" '(.warnings // []) == ($e.warnings // [])' <<<"${response}"

  local patch
  patch="$(jq -r '.patch // empty' <<<"${response}" | base64 --decode)"
  [ -n "${patch}" ] || return 0
  echo "patch = ${patch}"
  local object
  object="$(jq -c 'if .kind == "AdmissionReview" then .request.object else .object end' "${dir}/request.json")"

  # RFC 6902 operations that only add or replace: kwctl diffs the returned pod
  # against the request, so a field the policy dropped would be a "remove".
  jq -e 'type == "array" and length > 0
    and all(.[]; (.op == "add" or .op == "replace") and (.path | startswith("/")))' <<<"${patch}"
  # Every value the case expects in the pod that the request did not carry
  # travels in the patch.
  jq -e --argjson e "${expect}" --argjson object "${object}" \
    '([$e.pod[]? | .. | scalars] - [$object | .. | scalars] - [.[].value | .. | scalars]) == []' <<<"${patch}"
  # Nothing is written at or under a pointer the case expects absent, nor
  # inside a value written above it.
  jq -e --argjson e "${expect}" '
    def tokens: .[1:] | split("/") | map(gsub("~1"; "/") | gsub("~0"; "~"));
    def at($tokens): reduce $tokens[] as $t (.;
      if type == "array" then .[$t | tonumber? // -1] elif type == "object" then .[$t] else null end);
    . as $ops
    | all($e.absent[]?; . as $gone | all($ops[]; .path as $path
        | $path != $gone and ($path | startswith($gone + "/") | not)
        and (if ($gone | startswith($path + "/"))
             then .value | at($gone[($path | length):] | tokens) == null else true end)))' <<<"${patch}"
}
