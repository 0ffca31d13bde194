# Checks one kwctl AdmissionResponse against a case's expect.json.
# Input: the original object. Arguments: $expect, $response, $patch (the
# decoded RFC 6902 patch, [] when none). Output: a list of failures, [] if none.

# RFC 6901 pointer -> list of reference tokens.
def tokens: if . == "" then [] else .[1:] | split("/") | map(gsub("~1"; "/") | gsub("~0"; "~")) end;

# Tokens -> a jq path into $doc (array indices become numbers, "-" the end).
def resolve($doc):
  reduce .[] as $k ({p: [], d: $doc};
    if (.d | type) == "array" then
      (if $k == "-" then (.d | length) else ($k | tonumber) end) as $i
      | {p: (.p + [$i]), d: .d[$i]}
    else {p: (.p + [$k]), d: (.d | if type == "object" then .[$k] else null end)} end)
  | .p;

def apply_op($op):
  . as $doc
  | ($op.path | tokens | resolve($doc)) as $p
  | if $op.op == "add" then
      if ($p | length) > 0 and ($p[-1] | type) == "number" then
        ($doc | getpath($p[:-1])) as $list
        | setpath($p[:-1]; $list[:$p[-1]] + [$op.value] + $list[$p[-1]:])
      else setpath($p; $op.value) end
    elif $op.op == "replace" then setpath($p; $op.value)
    elif $op.op == "remove" then delpaths([$p])
    else error("unsupported patch operation \($op.op)") end;

def at($pointer): . as $doc | getpath($pointer | tokens | resolve($doc));

(reduce $patch[] as $op (.; apply_op($op))) as $pod
| [
    (if $expect.allowed != null and $expect.allowed != $response.allowed
     then "allowed is \($response.allowed), expected \($expect.allowed)" else empty end),
    (if $expect.mutated != null and $expect.mutated != ($response.patch != null)
     then "patch present is \($response.patch != null), expected \($expect.mutated)" else empty end),
    (if $expect.message != null and (($response.status.message // "") | contains($expect.message) | not)
     then "message \($response.status.message | tojson) does not contain \($expect.message | tojson)" else empty end),
    (($expect.message_lacks // [])[]
     | . as $unwanted
     | if (($response.status.message // "") | contains($unwanted))
       then "message \($response.status.message | tojson) contains \($unwanted | tojson)" else empty end),
    (if $expect.code != null and $response.status.code != $expect.code
     then "code is \($response.status.code), expected \($expect.code)" else empty end),
    (if ($expect.warnings // []) != ($response.warnings // [])
     then "warnings are \($response.warnings | tojson), expected \($expect.warnings | tojson)" else empty end),
    (($expect.pod // {}) | to_entries[]
     | . as $e | ($pod | at($e.key)) as $actual
     | if $actual != $e.value then "\($e.key) is \($actual | tojson), expected \($e.value | tojson)" else empty end),
    (($expect.absent // [])[]
     | . as $pointer | ($pod | at($pointer)) as $actual
     | if $actual != null then "\($pointer) should be absent, is \($actual | tojson)" else empty end)
  ]
