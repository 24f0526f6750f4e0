#!/usr/bin/env bash
# down.sh: tear down the cluster up.sh started and restore what it and the
# kubelet changed on the host: every pod and its network namespace, the
# daemons (ended by the pids up.sh recorded, nothing else), mounts under
# the kubelet's and containerd's directories, the CNI bridge, the cgroups
# under /$K8S_CGROUP_PARENT, the iptables chains the kubelet added
# (KUBE-FIREWALL and friends) and the sysctls it set (vm.overcommit_memory,
# kernel.panic, kernel.panic_on_oops, ...). The binaries and the image
# store in $K8S_CACHE stay, so the next up.sh takes seconds; --purge
# removes the image store too.
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"
is_root || die "down.sh needs root"
purge=false
[ "${1:-}" = --purge ] && purge=true
T0=$(now_ms)

# stop NAME [SIGNAL]: end a daemon up.sh started, by its recorded pid.
stop() {
  local f="$K8S_RUN/$1.pid" pid
  [ -f "$f" ] || return 0
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "-${2:-TERM}" "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# Pods first, removed by the kubelet (which runs the CNI plugin's DEL and
# removes their network namespaces); then the kubelet, and whatever is left
# through the CRI (crictl, if built) or containerd's own client.
t=$(now_ms)
tasks="$K8S_RUN/containerd/state/io.containerd.runtime.v2.task/k8s.io"
if api GET /readyz >/dev/null 2>&1; then
  for ns in $(api GET /api/v1/pods | python3 -c 'import json, sys
print(" ".join(sorted({p["metadata"]["namespace"] for p in json.load(sys.stdin)["items"]})))'); do
    api DELETE "/api/v1/namespaces/$ns/pods?gracePeriodSeconds=0" >/dev/null || true
  done
  for _ in $(seq 1 150); do
    [ -z "$(ls -A "$tasks" 2>/dev/null)" ] && break
    sleep 0.2
  done
fi
stop kubelet
if [ -S "$K8S_CONTAINERD_SOCK" ]; then
  if [ -x "$K8S_BIN/crictl" ]; then
    "$K8S_BIN/crictl" --runtime-endpoint "unix://$K8S_CONTAINERD_SOCK" --timeout 30s rmp -af >/dev/null 2>&1 || true
  fi
  # Whatever is left (no crictl, or it failed): kill and delete tasks.
  for c in $(ctr_ containers ls -q 2>/dev/null); do
    ctr_ tasks kill -s SIGKILL "$c" >/dev/null 2>&1 || true
    ctr_ tasks delete -f "$c" >/dev/null 2>&1 || true
    ctr_ containers delete "$c" >/dev/null 2>&1 || true
  done
fi
took "$t" "pods removed"

t=$(now_ms)
# All at once: each may take its time to exit.
for d in containerd kube-scheduler kube-controller-manager kube-apiserver; do stop "$d" & done
wait
stop etcd
took "$t" "daemons stopped"

# Shims of ours outlive containerd when their container is still there;
# each wrote its pid in our containerd's state directory.
for f in "$K8S_RUN"/containerd/state/io.containerd.runtime.v2.task/*/*/shim.pid; do
  [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null || true
done

t=$(now_ms)
# Mounts: kubelet volumes (emptyDirs, tmpfs), containerd's rootfs and shm.
for dir in "$KUBELET_ROOT" "$K8S_RUN" "$K8S_CACHE/containerd"; do
  [ -e "$dir" ] || continue
  findmnt -rn -o TARGET | awk -v d="$dir" 'index($0, d "/") == 1 || $0 == d' | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
done
# Network namespaces the CRI made (cni-*), if any survived.
for ns in /var/run/netns/cni-*; do
  [ -e "$ns" ] || continue
  grep -qx "netns $(basename "$ns")" "$K8S_STATE/host.before" 2>/dev/null && continue
  ip netns delete "$(basename "$ns")" 2>/dev/null || true
done
ip link show "$K8S_CNI_BRIDGE" >/dev/null 2>&1 && ip link delete "$K8S_CNI_BRIDGE"
# The CRI creates /var/run/netns when it is missing; leave it as it was.
if [ -f "$K8S_STATE/host.before" ] && ! grep -qx "dir /var/run/netns" "$K8S_STATE/host.before"; then
  rmdir /var/run/netns 2>/dev/null || true
fi
took "$t" "mounts and network"

t=$(now_ms)
# cgroups: remove the tree under /$K8S_CGROUP_PARENT, deepest first.
for c in /sys/fs/cgroup/*/"$K8S_CGROUP_PARENT"; do
  [ -d "$c" ] || continue
  find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null || true
done
# A kubelet run with the default cgroup root leaves /kubepods.
for c in /sys/fs/cgroup/*/kubepods; do
  [ -d "$c" ] || continue
  find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null || true
done
# Sysctls and iptables chains, as they were before up.sh.
if [ -f "$K8S_STATE/host.before" ]; then
  while read -r kind a b c; do
    [ "$kind" = sysctl ] && sysctl -qw "$a=$b" || true
  done <"$K8S_STATE/host.before"
  for ipt in iptables ip6tables; do
    for table in filter nat mangle; do
      for chain in $($ipt -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}'); do
        grep -qx "chain $ipt $table $chain" "$K8S_STATE/host.before" && continue
        # Drop every rule that jumps to it, then the chain.
        $ipt -t "$table" -S | awk -v c="$chain" '$1 == "-A" && $0 ~ ("-j " c "( |$)") {sub(/^-A/, "-D"); print}' |
          while read -r rule; do eval "$ipt -t $table $rule" 2>/dev/null || true; done
        $ipt -t "$table" -F "$chain" 2>/dev/null || true
        $ipt -t "$table" -X "$chain" 2>/dev/null || true
      done
    done
  done
fi
took "$t" "cgroups, sysctls, iptables"

rm -rf "$K8S_STATE" "$K8S_RUN"
$purge && rm -rf "$K8S_CACHE/containerd" "$K8S_CACHE/images"
took "$T0" "down total"
