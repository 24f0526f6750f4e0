#!/usr/bin/env bash
# up.sh: bring a single-node Kubernetes cluster up on this machine, on
# loopback, for the Kubernetes provider's tests. Needs root, Docker (only to
# export images) and the Debian mirror; everything else comes from the Go
# module proxy (see build.sh and ../../../shared/reference/kubernetes-here.md).
#
# It runs its own etcd, API server, controller manager, scheduler, kubelet
# and a SECOND containerd (own root, state and socket; Docker's containerd is
# never touched), with the bridge CNI plugin on $K8S_CNI_BRIDGE. Images named
# by WARDEN_K8S_IMAGES (default warden-runtime:latest) are copied from Docker
# with docker save | ctr import, and only again when Docker's image changed.
#
# Prints the kubeconfig's path on stdout; tear down with down.sh, which
# restores what the kubelet changes on the host. Timings go to
# $K8S_RUN/timings.
#
# up.sh --images only copies the images into the cluster's image store (a
# containerd started and stopped for it), without the Kubernetes binaries:
# CI can run it while build.sh builds them.
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"

is_root || die "up.sh needs root (it runs a kubelet and a containerd)"
images_only=false
[ "${1:-}" = --images ] && images_only=true
if [ -f "$K8S_RUN/kubelet.pid" ] && kill -0 "$(cat "$K8S_RUN/kubelet.pid")" 2>/dev/null; then
  say "cluster already up"; echo "$KUBECONFIG_OUT"; exit 0
fi
T0=$(now_ms)
mkdir -p "$K8S_RUN" "$K8S_LOG" "$K8S_STATE"
: >"$K8S_RUN/timings"

# What the kubelet and the CNI plugin change, recorded once so that down.sh
# can put it back.
SYSCTLS="vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward"
if [ ! -f "$K8S_STATE/host.before" ]; then
  for s in $SYSCTLS; do echo "sysctl $s $(sysctl -n "$s")"; done >"$K8S_STATE/host.before"
  for t in filter nat mangle; do
    for ipt in iptables ip6tables; do
      $ipt -t "$t" -S 2>/dev/null | awk -v ipt="$ipt" -v t="$t" '$1 == "-N" {print "chain", ipt, t, $2}'
    done
  done >>"$K8S_STATE/host.before"
  [ -d /var/run/netns ] && echo "dir /var/run/netns" >>"$K8S_STATE/host.before"
  for ns in /var/run/netns/*; do [ -e "$ns" ] && echo "netns $(basename "$ns")"; done >>"$K8S_STATE/host.before"
fi

if ! $images_only; then
  t=$(now_ms)
  "$(dirname "${BASH_SOURCE[0]}")/build.sh"
  took "$t" "binaries (build.sh)"
fi

t=$(now_ms)
pkgs=""
command -v etcd >/dev/null || pkgs="$pkgs etcd-server"
[ -x /usr/lib/cni/bridge ] || pkgs="$pkgs containernetworking-plugins"
command -v containerd >/dev/null || pkgs="$pkgs containerd"
command -v iptables >/dev/null || pkgs="$pkgs iptables"
command -v openssl >/dev/null || pkgs="$pkgs openssl"
# shellcheck disable=SC2086
[ -z "$pkgs" ] || apt_install $pkgs
ensure_docker
took "$t" "packages"

# start NAME CMD...: a daemon in its own session, logging to $K8S_LOG.
start() {
  local name=$1; shift
  setsid "$@" >"$K8S_LOG/$name.log" 2>&1 </dev/null &
  echo $! >"$K8S_RUN/$name.pid"
}
# wait_for WHAT SECONDS CMD...: poll until CMD succeeds.
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || { tail -20 "$K8S_LOG"/*.log >&2; die "$what not ready within ${secs}s (logs in $K8S_LOG)"; }
    sleep 0.2
  done
}

control_plane() {
# --- certificates and kubeconfig ------------------------------------------
t=$(now_ms)
PKI="$K8S_PKI"
mkdir -p "$PKI"
if [ ! -f "$PKI/admin.crt" ]; then
  (
    cd "$PKI"
    openssl genrsa -out ca.key 2048 2>/dev/null
    openssl req -x509 -new -nodes -key ca.key -subj "/CN=warden-k8s-ca" -days 30 -out ca.crt
    cert() { # cert NAME SUBJECT [SAN]
      openssl genrsa -out "$1.key" 2048 2>/dev/null
      openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
      if [ -n "${3:-}" ]; then echo "subjectAltName=$3" >"$1.ext"; else : >"$1.ext"; fi
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    }
    cert apiserver "/CN=kube-apiserver" "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:127.0.0.1,IP:${K8S_SERVICE_CIDR%.*}.1"
    cert admin "/O=system:masters/CN=warden-admin"
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
fi
cat >"$KUBECONFIG_OUT" <<KC
apiVersion: v1
kind: Config
clusters:
- name: warden
  cluster:
    server: https://127.0.0.1:$K8S_APISERVER_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: admin
  user:
    client-certificate: $PKI/admin.crt
    client-key: $PKI/admin.key
contexts:
- name: warden
  context: {cluster: warden, user: admin}
current-context: warden
KC
took "$t" "certificates"

# --- etcd and the control plane ----------------------------------------------
t=$(now_ms)
mkdir -p "$K8S_STATE/etcd"
start etcd etcd --name warden --data-dir "$K8S_STATE/etcd" \
  --listen-client-urls "http://127.0.0.1:$K8S_ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$K8S_ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$K8S_ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$K8S_ETCD_PEER_PORT" \
  --initial-cluster "warden=http://127.0.0.1:$K8S_ETCD_PEER_PORT"
wait_for etcd 30 curl -fsS "http://127.0.0.1:$K8S_ETCD_PORT/health"
took "$t" "etcd"

t=$(now_ms)
start kube-apiserver "$K8S_BIN/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$K8S_ETCD_PORT" \
  --advertise-address=127.0.0.1 --bind-address=127.0.0.1 --secure-port="$K8S_APISERVER_PORT" \
  --endpoint-reconciler-type=none \
  --service-cluster-ip-range="$K8S_SERVICE_CIDR" \
  --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc \
  --kubelet-client-certificate="$PKI/admin.crt" --kubelet-client-key="$PKI/admin.key" \
  --kubelet-preferred-address-types=Hostname \
  --authorization-mode=Node,RBAC
wait_for kube-apiserver 90 api GET /readyz
took "$t" "kube-apiserver ready"

t=$(now_ms)
start kube-controller-manager "$K8S_BIN/kube-controller-manager" \
  --kubeconfig="$KUBECONFIG_OUT" --bind-address=127.0.0.1 --secure-port="${WARDEN_K8S_CM_PORT:-16257}" \
  --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
  --use-service-account-credentials=false --leader-elect=false
start kube-scheduler "$K8S_BIN/kube-scheduler" \
  --kubeconfig="$KUBECONFIG_OUT" --bind-address=127.0.0.1 --secure-port="${WARDEN_K8S_SCHED_PORT:-16259}" --leader-elect=false
took "$t" "controller-manager, scheduler started"
}

containerd_up() {
# --- the second containerd -----------------------------------------------------
t=$(now_ms)
CROOT="$K8S_CACHE/containerd" # the image store survives down.sh
mkdir -p "$CROOT" "$K8S_RUN/containerd" "$K8S_STATE/cni/net.d" "$K8S_STATE/cni/ipam"
cat >"$K8S_STATE/containerd.toml" <<TOML
version = 2
root = "$CROOT"
state = "$K8S_RUN/containerd/state"
[grpc]
  address = "$K8S_CONTAINERD_SOCK"
[ttrpc]
  address = "$K8S_RUN/containerd/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$K8S_STATE/containerd-opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$K8S_PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # This machine lacks CAP_SYS_RESOURCE: without it every pod sandbox fails
  # with runc's "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$K8S_RUN/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$K8S_STATE/cni/net.d"
TOML
# No gateway and no routes: pods reach each other on the bridge and nothing
# beyond it (this plugin enforces no NetworkPolicy).
cat >"$K8S_STATE/cni/net.d/10-warden.conflist" <<CNI
{"cniVersion": "0.4.0", "name": "warden-k8s", "plugins": [
  {"type": "bridge", "bridge": "$K8S_CNI_BRIDGE", "isGateway": false, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$K8S_POD_CIDR"}]], "dataDir": "$K8S_STATE/cni/ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}}
]}
CNI
start containerd containerd --config "$K8S_STATE/containerd.toml"
wait_for containerd 30 ctr_ version
took "$t" "containerd"
}

images() {
# --- images --------------------------------------------------------------------
t=$(now_ms)
mkdir -p "$K8S_CACHE/images"
if ! ctr_ images ls -q | grep -qx "$K8S_PAUSE_IMAGE"; then
  pd="$(mktemp -d)"
  (cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$pd/pause" scripts/k8s/pause.go)
  tar -C "$pd" -c pause | docker import -c 'ENTRYPOINT ["/pause"]' - "$K8S_PAUSE_IMAGE" >/dev/null
  docker save "$K8S_PAUSE_IMAGE" | ctr_ images import - >/dev/null
  docker rmi "$K8S_PAUSE_IMAGE" >/dev/null
  rm -rf "$pd"
fi
took "$t" "pause image"
for img in $K8S_IMAGES; do
  t=$(now_ms)
  id="$(docker image inspect -f '{{.Id}}' "$img" 2>/dev/null)" || die "image $img is not in Docker: build it first (bin/warden image build)"
  stamp="$K8S_CACHE/images/$(echo "$img" | tr '/:' '__').id"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$id" ] || ! ctr_ images ls -q | grep -qx "docker.io/library/$img\|$img"; then
    docker save "$img" | ctr_ images import - >/dev/null
    echo "$id" >"$stamp"
    took "$t" "import $img"
  else
    took "$t" "image $img (cached)"
  fi
done

}

if $images_only; then
  containerd_up
  images
  kill "$(cat "$K8S_RUN/containerd.pid")"
  while kill -0 "$(cat "$K8S_RUN/containerd.pid")" 2>/dev/null; do sleep 0.1; done
  rm -f "$K8S_RUN/containerd.pid"
  took "$T0" "images total"
  exit 0
fi
control_plane
containerd_up
images

# --- kubelet -------------------------------------------------------------------
t=$(now_ms)
for c in /sys/fs/cgroup/*/; do
  case "$c" in */unified/) continue ;; esac
  mkdir -p "$c$K8S_CGROUP_PARENT"
done
if [ -f /sys/fs/cgroup/cpuset/cpuset.cpus ] && [ -z "$(cat "/sys/fs/cgroup/cpuset/$K8S_CGROUP_PARENT/cpuset.cpus")" ]; then
  cat /sys/fs/cgroup/cpuset/cpuset.cpus >"/sys/fs/cgroup/cpuset/$K8S_CGROUP_PARENT/cpuset.cpus"
  cat /sys/fs/cgroup/cpuset/cpuset.mems >"/sys/fs/cgroup/cpuset/$K8S_CGROUP_PARENT/cpuset.mems"
fi
mkdir -p "$KUBELET_ROOT" "$K8S_STATE/pod-logs"
cat >"$K8S_STATE/kubelet.yaml" <<KL
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$K8S_CGROUP_PARENT
containerRuntimeEndpoint: unix://$K8S_CONTAINERD_SOCK
address: 127.0.0.1
port: $K8S_KUBELET_PORT
healthzBindAddress: 127.0.0.1
healthzPort: ${WARDEN_K8S_KUBELET_HEALTHZ_PORT:-10248}
readOnlyPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: AlwaysAllow}
podLogsDir: $K8S_STATE/pod-logs
failSwapOn: false
# Bounds every pod's processes: Kubernetes has no per-pod pids limit.
podPidsLimit: ${WARDEN_K8S_POD_PIDS_LIMIT:-1024}
maxPods: 250
serializeImagePulls: false
# The image store holds images loaded by hand: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "200Mi", nodefs.available: "2%", imagefs.available: "2%", nodefs.inodesFree: "2%"}
KL
start kubelet "$K8S_BIN/kubelet" --config="$K8S_STATE/kubelet.yaml" --kubeconfig="$KUBECONFIG_OUT" \
  --root-dir="$KUBELET_ROOT" --hostname-override="$K8S_NODE"
node_ready() {
  api GET "/api/v1/nodes/$K8S_NODE" | python3 -c 'import json, sys
c = [c for c in json.load(sys.stdin)["status"].get("conditions", []) if c["type"] == "Ready"]
sys.exit(0 if c and c[0]["status"] == "True" else 1)'
}
wait_for "node $K8S_NODE" 90 node_ready
took "$t" "kubelet, node Ready"

t=$(now_ms)
api GET /api/v1/namespaces/warden >/dev/null 2>&1 ||
  api POST /api/v1/namespaces '{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "warden"}}' >/dev/null
wait_for "service account warden/default" 60 api GET /api/v1/namespaces/warden/serviceaccounts/default
took "$t" "namespace warden"
took "$T0" "up total"
echo "$KUBECONFIG_OUT"
