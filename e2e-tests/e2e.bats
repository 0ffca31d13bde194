#!/usr/bin/env bats
#
# The e2e cases of e2e-tests/cases through `kwctl run`, one @test each.
# Run with `make e2e-tests` (needs kwctl and annotated-policy.wasm).

load helpers

@test "a Deployment pod whose ServiceAccount has a role gets the token volume, mounts and identity env in every container" {
  run_case mutates-deployment-pod
}

@test "a bare AdmissionRequest (not wrapped in an AdmissionReview) is read too, as kwctl reads it" {
  run_case bare-admission-request
}

@test "a pod that names no ServiceAccount is checked against 'default'" {
  run_case default-service-account
}

@test "a native sidecar (initContainer with restartPolicy: Always) is injected and keeps its restartPolicy (official #208)" {
  run_case native-sidecar-kept
}

@test "fields k8s-openapi does not know (spec.futureField, a container field) come back unchanged" {
  run_case unknown-fields-kept
}

@test "settings add AWS_STS_REGIONAL_ENDPOINTS, the region pair and AWS_ROLE_SESSION_NAME, in the official order" {
  run_case env-order-with-region-sts-and-session-name
}

@test "AWS_ROLE_SESSION_NAME comes from the downward API, so a generateName pod gets its real name" {
  run_case role-session-name-with-generate-name
}

@test "a container that sets AWS_ROLE_ARN keeps it and gets neither identity variable, but still gets the mount" {
  run_case user-identity-env-kept
}

@test "a container that sets AWS_REGION keeps it and gets no AWS_DEFAULT_REGION; the region pair is one group" {
  run_case user-region-kept
}

@test "the ServiceAccount's sts-regional-endpoints annotation (any case) wins over the setting" {
  run_case regional-sts-from-service-account
}

@test "the ServiceAccount's audience annotation sets the token audience" {
  run_case audience-from-service-account
}

@test "an empty audience annotation means unset, not a token for the API server" {
  run_case empty-audience-means-setting
}

@test "the pod's token-expiration annotation wins over the ServiceAccount's and the setting" {
  run_case token-expiration-pod-wins
}

@test "a ServiceAccount token-expiration under 600 is raised to 600, and the pod's author is warned" {
  run_case token-expiration-clamped-with-warning
}

@test "containers listed in skip-containers (trimmed, init containers too) are left alone" {
  run_case skip-containers
}

@test "when every container is skipped the pod is left unchanged, without a token volume" {
  run_case all-containers-skipped
}

@test "a pod pinned to Windows by nodeSelector gets the C:\ token path; the mount path is unchanged" {
  run_case windows-node-selector
}

@test "a pod with spec.os.name windows gets the C:\ token path (the official webhook misses it)" {
  run_case windows-os-field
}

@test "a pod whose required node affinity admits only windows gets the C:\ token path" {
  run_case windows-node-affinity
}

@test "a pod that already has everything (reinvocation) is accepted without a patch" {
  run_case already-injected-is-a-no-op
}

@test "an existing projected token volume for the same audience and path is reused, not duplicated" {
  run_case reuses-identical-volume
}

@test "annotationPrefix, tokenMountPath, tokenVolumeName, tokenAudience and tokenExpirationSeconds from settings" {
  run_case custom-settings
}

@test "null volumes, env and volumeMounts are treated as empty lists" {
  run_case null-lists-are-empty
}

@test "a ServiceAccount without a role-arn annotation leaves the pod unchanged" {
  run_case no-role-annotation
}

@test "a ServiceAccount with no annotations at all leaves the pod unchanged" {
  run_case service-account-without-annotations
}

@test "a ServiceAccount missing from the cache is asked for again past it; still missing, the pod is let through unchanged" {
  run_case service-account-not-found-twice
}

@test "a ServiceAccount created with its pod (official #174) is found on the second, uncached ask" {
  run_case service-account-found-past-the-cache
}

@test "an UPDATE is accepted unchanged without a host call" {
  run_case update-is-ignored
}

@test "a DELETE (no object) is accepted unchanged without a host call" {
  run_case delete-is-ignored
}

@test "a Deployment is accepted unchanged without a host call: the policy acts on pods" {
  run_case other-kinds-are-ignored
}

@test "a host error other than not-found (missing RBAC) rejects the pod and says what to grant" {
  run_case reject-host-forbidden
}

@test "an API server the policy-server cannot reach is refused as retryable, with no RBAC advice" {
  run_case reject-api-server-unreachable
}

@test "a host error carrying a stack backtrace keeps its advice and drops the backtrace" {
  run_case reject-host-error-with-backtrace
}

@test "a policy without contextAwareResources is refused with the declaration to add" {
  run_case reject-context-aware-not-declared
}

@test "an existing aws-iam-token hostPath volume is refused, not silently mounted (official #315)" {
  run_case reject-foreign-token-volume
}

@test "an aws-iam-token projected volume for another audience is refused" {
  run_case reject-token-volume-for-other-audience
}

@test "a container that mounts another volume at the token path is refused, naming the container and the skip annotation (official #159)" {
  run_case reject-duplicate-mount-path
}

@test "a role-arn annotation that is not an IAM role ARN is refused, not injected" {
  run_case reject-invalid-role-arn
}

@test "a token-expiration annotation that is not a number of seconds is refused, naming the pod" {
  run_case reject-unparseable-expiration
}

@test "an sts-regional-endpoints annotation that is not a boolean is refused" {
  run_case reject-unparseable-regional-sts
}

@test "a pod whose containers is not a list is refused, naming the field" {
  run_case reject-malformed-pod
}

@test "validate_settings refuses a tokenExpirationSeconds below 600, naming it" {
  run_case settings-refused
}

@test "allowedRoleArns refuses a role no rule allows for the pod's namespace, naming the setting" {
  run_case guardrail-refuses-role-of-another-team
}

@test "allowedRoleArns lets a role through when a rule's namespace and role globs match" {
  run_case guardrail-allows-matching-role
}

@test "allowedAccounts refuses a role of an account not listed" {
  run_case guardrail-refuses-other-account
}

@test "allowedPartitions refuses a role of a partition not listed" {
  run_case guardrail-refuses-other-partition
}

@test "a ServiceAccount without a role annotation gets the role, audience and expiration of the serviceAccounts setting" {
  run_case role-from-service-accounts-setting
}

@test "the ServiceAccount's own role annotation wins over a */name entry of the serviceAccounts setting" {
  run_case service-account-annotation-wins-over-setting
}

@test "with composeRoleArn, a role annotation that names a role becomes its ARN" {
  run_case compose-role-name
}

@test "EKS Pod Identity: a listed ServiceAccount's pods get the container credentials endpoint, its token volume and the pod-identity label" {
  run_case container-credentials
}

@test "container credentials take precedence over the ServiceAccount's role, as in the official webhook" {
  run_case container-credentials-over-role
}

@test "the pod annotation irsa-policy.io/inject-containers limits injection to the listed containers" {
  run_case inject-containers-annotation
}

@test "a skip-containers name that matches no container is reported as a warning" {
  run_case unknown-container-name-warns
}

@test "the ServiceAccount annotation irsa-policy.io/region sets its pods' region over awsDefaultRegion" {
  run_case region-from-service-account
}

@test "a region annotation that is not an AWS region is refused, naming the ServiceAccount" {
  run_case reject-bad-region-annotation
}

@test "with skipRegionWithEnvFrom, containers using envFrom get no region variables (official #248)" {
  run_case skip-region-with-env-from
}

@test "kubectl debug's ephemeral containers are accepted unchanged, without a host call, unless ephemeralContainers is on" {
  run_case ephemeral-containers-ignored-by-default
}

@test "with ephemeralContainers, a new ephemeral container of a pod that has the token volume gets the mount and env" {
  run_case ephemeral-containers-injected
}

@test "a pod created without the token volume cannot get one later: its new ephemeral containers are let through with a warning" {
  run_case ephemeral-containers-without-token-volume
}

@test "the audit scanner's request for a running pod in step passes, unedited" {
  run_case audit-pod-in-step
}

@test "the audit reports a running pod created before its ServiceAccount's role, with the restart to run" {
  run_case audit-pod-created-before-role
}

@test "the audit reports a running pod whose role is not its ServiceAccount's now" {
  run_case audit-role-changed
}

@test "the audit reports a running pod with credentials its ServiceAccount no longer grants" {
  run_case audit-credentials-no-longer-granted
}

@test "the audit reports a running pod with credentials for a role the guardrails now refuse" {
  run_case audit-guardrails-refuse
}

@test "the audit reports a running pod whose token audience changed" {
  run_case audit-token-audience-changed
}

@test "the ServiceAccount's sts-endpoint annotation injects AWS_ENDPOINT_URL_STS over the setting (official #52)" {
  run_case sts-endpoint-from-service-account
}

@test "a pod labelled eks.amazonaws.com/skip-pod-identity-webhook is accepted unchanged without a host call, as the official webhook's objectSelector leaves it alone" {
  run_case skip-pod-identity-webhook-label
}

@test "values Go's parsers read are read: sts-regional-endpoints \"t\" (strconv.ParseBool), token-expiration \"+3600\" (strconv.ParseInt); the pod's empty token-expiration means unset" {
  run_case go-parsed-annotation-values
}

@test "an sts-regional-endpoints value Go's strconv.ParseBool does not read (\"tRuE\") is refused, naming it" {
  run_case reject-regional-sts-go-does-not-read
}

@test "EKS Pod Identity with the default lifetime: the token lifetime is spread over 79200..86400 seconds (the official webhook's addJitterToDefaultToken), derived from the request's uid, namespace, generateName and ServiceAccount" {
  run_case container-credentials-lifetime-spread
}

@test "EKS Pod Identity: a lifetime an annotation chose, even 86400, is kept as it is, not spread" {
  run_case container-credentials-chosen-lifetime-kept
}
