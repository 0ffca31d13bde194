# What `make run` prints after kwctl's (or the test host's) AdmissionResponse line: the
# JSON patch decoded from its base64, and each container it changed as it is after the
# patch, so a newcomer sees what the policy did without a second tool.
#
# Input: the AdmissionResponse line. $request[0]: the request file (an AdmissionReview
# or a bare AdmissionRequest), read with --slurpfile.

# RFC 6901 pointer to a jq path; the policy only adds and replaces, and adds to a list
# only at its end, which setpath does too.
def path_of: .[1:] | split("/") | map(gsub("~1"; "/") | gsub("~0"; "~") | (tonumber? // .));

($request[0] | if .kind == "AdmissionReview" then .request else . end | .object) as $pod
| if .allowed != true then
    "refused (\(.status.code)): \(.status.message)"
  elif .patch == null then
    "accepted unchanged" + (if .warnings then ", warnings: \(.warnings | join("; "))" else "" end)
  else
    (.patch | @base64d | fromjson) as $ops
    | (reduce $ops[] as $op ($pod;
        if $op.op == "add" or $op.op == "replace" then setpath($op.path | path_of; $op.value) else . end)) as $after
    | ([$ops[].path | capture("^/spec/(?<list>initContainers|containers|ephemeralContainers)/(?<i>[0-9]+)")
        | [.list, (.i | tonumber)]] | unique) as $changed
    | "== the JSON patch, decoded (\($ops | length) operations):",
      ($ops[] | tojson),
      "",
      "== the containers it changed, after the patch:",
      ($changed[] as [$list, $i] | $after.spec[$list][$i]
        | "\($list)[\($i)] \(.name):", "  env: \(.env | tojson)", "  volumeMounts: \(.volumeMounts | tojson)"),
      (if .warnings then "", "== warnings: \(.warnings | join("; "))" else empty end)
  end
