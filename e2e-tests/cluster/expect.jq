# A case's expectations (expect.json) read against the pod a cluster returns: what the
# cluster script checks, whether the API server or the stand-in answered. Prints one line
# per expectation that does not hold; nothing when all do.
#
# Input: the pod as the API server returns it from `kubectl create --dry-run=server -o json`.
# $e: the case's expect.json (or {"mutated": false} for a pod that never reaches the policy).
# $sent: the pod as it was sent.
#
# The API server stores more than the policy writes (defaultMode on projected volumes,
# terminationMessagePath, the kube-api-access-* volume and mounts it adds before webhooks
# run, tolerations), so an expected value holds when it is contained in the returned one:
# objects key by key, lists as an ordered subsequence, other values equal.

def subset($actual):
  . as $expected
  | if ($expected | type) == "object" then
      ($actual | type) == "object"
      and all($expected | to_entries[]; . as $kv
        | ($actual | has($kv.key)) and ($kv.value | subset($actual[$kv.key])))
    elif ($expected | type) == "array" then
      ($actual | type) == "array"
      and (reduce $actual[] as $item (0;
        if . < ($expected | length) and ($expected[.] | subset($item)) then . + 1 else . end)
        == ($expected | length))
    else $expected == $actual end;

# RFC 6901, as the test host reads a case's pointers.
def tokens: .[1:] | split("/") | map(gsub("~1"; "/") | gsub("~0"; "~"));
def at($pointer): reduce ($pointer | tokens)[] as $t (.;
  if type == "array" then (if ($t | test("^[0-9]+$")) then .[$t | tonumber] else null end)
  elif type == "object" then .[$t]
  else null end);

def own: map(select(.name | startswith("kube-api-access-") | not));
def names: [.[]?.name];

# The policy added nothing: the volumes, and each container's variables and mounts, are
# the ones sent (the API server's kube-api-access-* aside).
def untouched($sent):
  . as $pod
  | [ (if ($pod.spec.volumes // [] | own | names) != ($sent.spec.volumes // [] | names)
       then "volumes are \($pod.spec.volumes // [] | own | names), sent \($sent.spec.volumes // [] | names)"
       else empty end),
      (["initContainers", "containers"][] as $list
       | ($sent.spec[$list] // []) | to_entries[]
       | .key as $i | .value as $container
       | $pod.spec[$list][$i] as $got
       | (if ($got.env // []) != ($container.env // [])
          then "\($list)[\($i)].env is \($got.env // [] | names), sent \($container.env // [] | names)"
          else empty end),
         (if ($got.volumeMounts // [] | own | names) != ($container.volumeMounts // [] | names)
          then "\($list)[\($i)].volumeMounts are \($got.volumeMounts // [] | own | names)"
          else empty end)) ];

. as $pod
| if $e.mutated == false then untouched($sent)[]
  else
    ( ($e.pod // {}) | to_entries[]
      | .key as $pointer | ($pod | at($pointer)) as $got
      | select(.value | subset($got) | not)
      | "\($pointer): expected \(.value | tojson) within \($got | tojson)" ),
    ( ($e.absent // [])[]
      | . as $pointer | ($pod | at($pointer)) as $got
      | select($got != null)
      | "\($pointer): expected absent, found \($got | tojson)" )
  end
