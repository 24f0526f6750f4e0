#!/usr/bin/env bash
# build.sh: build (or reuse) the Kubernetes binaries the test cluster needs,
# from the Go module proxy, into $K8S_CACHE/<version>/bin. A rerun with every
# binary in place returns at once; with Go's build cache warm a rebuild
# relinks in about a minute; cold it takes about 14 minutes on 2 cores.
# Runs at low priority (nice 19) so it does not starve other work.
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"

missing=""
for c in $K8S_COMPONENTS $K8S_TOOLS; do
  [ -x "$K8S_BIN/$c" ] || missing="$missing $c"
done
if [ -z "$missing" ]; then
  say "kubernetes $K8S_VERSION binaries cached in $K8S_BIN"
  exit 0
fi
ensure_go
say "building$missing ($K8S_VERSION) into $K8S_BIN"

src="$K8S_CACHE/$K8S_VERSION/src"
mkdir -p "$src" "$K8S_BIN"
t0=$(now_ms)
if [ ! -f "$src/go.sum" ]; then
  (
    cd "$src"
    modfile="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
    [ -f "$modfile" ] || die "could not download k8s.io/kubernetes@$K8S_VERSION from the module proxy"
    staging_version="v0.${K8S_VERSION#v1.}"
    {
      echo "module warden.local/k8sbuild"
      echo
      echo "go $(awk '/^go /{print $2}' "$modfile")"
      echo
      echo "require k8s.io/kubernetes $K8S_VERSION"
      echo
      # The kubernetes module points its 33 staging modules at ./staging;
      # outside its own tree they come from the proxy at the matching v0.x.
      awk '/=> \.\/staging/{print "replace " $1 " => " $1 " '"$staging_version"'"}' "$modfile"
    } >go.mod
    cat >tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
    GOFLAGS=-mod=mod go mod tidy
  )
  took "$t0" "k8s module tidy"
fi

minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
ld="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ld="$ld -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
# One go build for all of them: the packages they share are compiled
# once, and one binary links while the others' packages still compile.
pkgs=""
for c in $missing; do
  [ "$c" = crictl ] || pkgs="$pkgs k8s.io/kubernetes/cmd/$c"
done
if [ -n "$pkgs" ]; then
  t1=$(now_ms)
  out="$K8S_BIN/.build.$$"
  rm -rf "$out" && mkdir -p "$out"
  (cd "$src" && CGO_ENABLED=0 GOFLAGS=-mod=mod nice -n 19 go build -trimpath -ldflags "$ld" -o "$out/" $pkgs)
  for p in $pkgs; do mv "$out/${p##*/}" "$K8S_BIN/${p##*/}"; done
  rm -rf "$out"
  took "$t1" "build$pkgs"
fi
case "$missing" in
*crictl*)
  t1=$(now_ms)
  GOBIN="$K8S_BIN" CGO_ENABLED=0 nice -n 19 go install -trimpath -ldflags "-s -w" "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
  took "$t1" "build crictl"
  ;;
esac
took "$t0" "build total"
