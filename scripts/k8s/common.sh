# Shared settings for the single-node test cluster. Source it; do not run it.
# Everything lives outside the repository:
#   $K8S_CACHE/<version>/bin   binaries built from the Go module proxy (kept)
#   $K8S_STATE                 etcd data, containerd root, certificates (removed by down.sh)
#   $K8S_RUN                   sockets, pid files, logs (removed by down.sh)
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/lib.sh"

K8S_VERSION="${WARDEN_K8S_VERSION:-v1.37.2}"
CRICTL_VERSION="${WARDEN_CRICTL_VERSION:-v1.37.0}"
K8S_CACHE="${WARDEN_K8S_CACHE:-/var/cache/warden/k8s}"
K8S_BIN="$K8S_CACHE/$K8S_VERSION/bin"
K8S_STATE="${WARDEN_K8S_STATE:-/var/lib/warden-k8s}"
K8S_RUN="${WARDEN_K8S_RUN:-/run/warden-k8s}"
K8S_LOG="$K8S_RUN/log"
# The kubelet's root (not /var/lib/kubelet): down.sh unmounts what is under it.
KUBELET_ROOT="$K8S_STATE/kubelet"
K8S_NODE="${WARDEN_K8S_NODE:-localhost}"
K8S_APISERVER_PORT="${WARDEN_K8S_APISERVER_PORT:-16443}"
K8S_ETCD_PORT="${WARDEN_K8S_ETCD_PORT:-12379}"
K8S_ETCD_PEER_PORT="${WARDEN_K8S_ETCD_PEER_PORT:-12380}"
K8S_KUBELET_PORT="${WARDEN_K8S_KUBELET_PORT:-10250}"
K8S_CONTAINERD_SOCK="$K8S_RUN/containerd/containerd.sock"
K8S_CNI_BRIDGE="${WARDEN_K8S_CNI_BRIDGE:-wardenk8s0}"
K8S_POD_CIDR="${WARDEN_K8S_POD_CIDR:-10.88.0.0/24}"
K8S_SERVICE_CIDR="${WARDEN_K8S_SERVICE_CIDR:-10.96.0.0/24}"
K8S_CGROUP_PARENT="${WARDEN_K8S_CGROUP_PARENT:-warden-k8s}"
KUBECONFIG_OUT="$K8S_STATE/admin.kubeconfig"
K8S_IMAGES="${WARDEN_K8S_IMAGES:-warden-runtime:latest}"
K8S_PAUSE_IMAGE="registry.local/warden/pause:1"

# The cluster needs these four; WARDEN_K8S_TOOLS=1 also builds kubectl and
# crictl, handy when debugging (the scripts do without them).
K8S_COMPONENTS="kube-apiserver kube-controller-manager kube-scheduler kubelet"
K8S_TOOLS=""
if [ "${WARDEN_K8S_TOOLS:-}" = 1 ]; then K8S_TOOLS="kubectl crictl"; fi
K8S_PKI="$K8S_STATE/pki"

# api METHOD PATH [JSON]: one request to the API server as the admin.
api() {
  curl -fsS --max-time 10 --cacert "$K8S_PKI/ca.crt" --cert "$K8S_PKI/admin.crt" --key "$K8S_PKI/admin.key" \
    -X "$1" -H 'Content-Type: application/json' ${3:+--data "$3"} "https://127.0.0.1:$K8S_APISERVER_PORT$2"
}
ctr_() { ctr --address "$K8S_CONTAINERD_SOCK" -n k8s.io "$@"; }

# now_ms and took: time each step (written to $K8S_RUN/timings and stderr).
now_ms() { date +%s%3N; }
took() { # took START LABEL
  local ms=$(( $(now_ms) - $1 ))
  local line
  line="$(printf '%-28s %6d.%03d s' "$2" $((ms / 1000)) $((ms % 1000)))"
  say "$line"
  if [ -d "$K8S_RUN" ]; then echo "$line" >>"$K8S_RUN/timings"; fi
}
