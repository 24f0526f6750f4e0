#!/usr/bin/env bash
# ci.sh: the real-cluster step for CI, in one call (root): build or reuse the
# binaries while the images are copied, bring the cluster up, run the
# Kubernetes provider's tests against it (conformance, faults, hardening)
# and the two-replica test of `warden serve` (cmd/warden
# TestClusterReplicas), and tear it down whatever happened. Timings go to stderr.
#
#   sudo scripts/k8s/ci.sh            # WARDEN_K8S_TEST_RUN overrides -run
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"
is_root || die "ci.sh needs root"
here="$(dirname "${BASH_SOURCE[0]}")"
T0=$(now_ms)
trap '"$here/down.sh" >&2 || true' EXIT

t=$(now_ms)
"$here/build.sh" &
build=$!
"$here/up.sh" --images
wait "$build"
took "$t" "binaries and images"

kc="$("$here/up.sh")"
t=$(now_ms)
(cd "$ROOT" && WARDEN_TEST_KUBECONFIG="$kc" WARDEN_REQUIRE_KUBERNETES=1 \
  go test -race -count=1 -timeout 20m -run "${WARDEN_K8S_TEST_RUN:-TestCluster}" ./internal/provider/kubernetes/ ./cmd/warden/)
took "$t" "cluster tests"
took "$T0" "ci total (before teardown)"
