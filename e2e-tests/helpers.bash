# Runs one case of e2e-tests/cases through `kwctl run` and checks it with checks.jq.
# KWCTL and POLICY may be overridden (the project's CI points KWCTL at its own
# waPC test host, which takes the same flags, to keep this file honest).

E2E_DIR="${BATS_TEST_DIRNAME}"
KWCTL="${KWCTL:-kwctl}"
POLICY="${POLICY:-annotated-policy.wasm}"

run_case() {
  local dir="${E2E_DIR}/cases/$1"
  local settings='{}'
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
  refused="$(jq -r '.settings_refused // empty' "${dir}/expect.json")"
  if [ -n "${refused}" ]; then
    [ "$status" -ne 0 ]
    [[ "${output}" == *"${refused}"* ]]
    return 0
  fi

  [ "$status" -eq 0 ]
  local response patch failures
  response="$(echo "${output}" | grep -E '^\{"uid"' | tail -n 1)"
  [ -n "${response}" ]
  patch="$(echo "${response}" | jq -r '.patch // empty' | base64 --decode)"
  echo "patch = ${patch:-[]}"
  failures="$(jq --argjson expect "$(cat "${dir}/expect.json")" \
                 --argjson response "${response}" \
                 --argjson patch "${patch:-[]}" \
                 -f "${E2E_DIR}/checks.jq" \
                 <(jq 'if .kind == "AdmissionReview" then .request.object else .object end' "${dir}/request.json"))"
  echo "failures = ${failures}"
  [ "$(echo "${failures}" | jq 'length')" -eq 0 ]
}
