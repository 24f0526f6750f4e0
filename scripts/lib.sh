# Shared set-up steps for demo.sh and test.sh. Source it; do not run it.
# Each step checks first and changes nothing that is already in place.

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WARDEN="$ROOT/bin/warden"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }

apt_install() {
  is_root || die "need root to install $*: run as root, or install them yourself: sudo apt-get install -y $*"
  command -v apt-get >/dev/null || die "no apt-get: install $* with your package manager"
  say "installing $* from the distribution's packages"
  if [ -z "${WARDEN_APT_UPDATED:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    WARDEN_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# ensure_go: Go 1.26 or newer must be on PATH (go.mod says which).
ensure_go() {
  if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
    export PATH="/usr/local/go/bin:$PATH"
  fi
  command -v go >/dev/null || die "Go is not installed: install Go 1.26 or newer from https://go.dev/dl/ (Debian's golang package is too old)"
  local want have
  want="$(awk '/^go /{print $2}' "$ROOT/go.mod")"
  have="$(go env GOVERSION | sed 's/^go//')"
  if [ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -1)" != "$want" ]; then
    die "Go $have is older than $want, which go.mod requires"
  fi
}

# ensure_node: the compatibility tests drive warden with official JS
# clients: the TypeScript MCP client (Node.js 18 or newer) and E2B's SDKs
# (e2b 2.51.0 declares Node.js 20.18.1 or newer), with npm.
ensure_node() {
  if ! command -v node >/dev/null; then
    is_root || die "Node.js is not installed: install Node.js 20.18.1 or newer and npm"
    apt_install nodejs npm
  fi
  command -v npm >/dev/null || apt_install npm
  node -e 'const [a, b, c] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a == 20 && (b > 18 || (b == 18 && c >= 1))) ? 0 : 1)' ||
    die "Node.js $(node --version) is older than 20.18.1, which E2B's SDKs need (Debian 12's own nodejs is 18): install Node.js 20 or newer (NodeSource's nodejs package, for one) and run this again"
}

docker_up() { docker info >/dev/null 2>&1; }

# ensure_docker: a running Docker Engine. As root on Debian/Ubuntu it
# installs docker.io and starts the daemon; otherwise it says what to do.
ensure_docker() {
  if ! command -v dockerd >/dev/null && ! docker_up; then
    apt_install docker.io
  fi
  command -v docker >/dev/null || apt_install docker.io
  if docker_up; then return; fi
  is_root || die "the Docker daemon is not running, or you may not use it: start it (sudo systemctl start docker) and add yourself to the docker group (sudo usermod -aG docker \$USER, then log in again)"
  say "starting the Docker daemon"
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl start docker
  else
    nohup dockerd >/var/log/dockerd.log 2>&1 &
  fi
  for _ in $(seq 1 60); do
    docker_up && return
    sleep 1
  done
  die "the Docker daemon did not come up within 60 s; see /var/log/dockerd.log"
}

# ensure_runsc [IMAGE]: gVisor's runsc registered with the Docker daemon as
# the runtime "runsc" (SANDBOX__DOCKER_RUNTIME=runsc), for the Docker
# provider's tests on gVisor. As root on Debian/Ubuntu it installs runsc,
# adds it to /etc/docker/daemon.json (merged with what is there, never
# replaced) and makes dockerd reload its runtimes; otherwise it says what to
# do. With IMAGE it then starts a container of IMAGE under runsc: a runsc
# older than the fix of gVisor issue 10704 (Debian 12's 20221219) cannot
# start its own network stack on recent kernels, which show
# net.core.rmem_default in every network namespace; runsc is then
# registered with --network=host (socket calls go to the host kernel, in
# the container's own network namespace). Call it after ensure_docker.
docker_has_runsc() { docker info --format '{{range $k, $v := .Runtimes}}{{$k}} {{end}}' 2>/dev/null | tr ' ' '\n' | grep -qx runsc; }
runsc_register() { # runsc_register <path> [runtime arg]: add or complete the runsc entry of daemon.json
  local conf=/etc/docker/daemon.json
  mkdir -p /etc/docker
  if ! command -v python3 >/dev/null; then
    [ ! -s "$conf" ] && [ -z "${2:-}" ] || die "python3 is needed to merge runsc into $conf: add \"runtimes\": {\"runsc\": {\"path\": \"$1\"${2:+, \"runtimeArgs\": [\"$2\"]}}} yourself and reload dockerd"
    printf '{\n  "runtimes": {\n    "runsc": {\n      "path": "%s"\n    }\n  }\n}\n' "$1" >"$conf"
    return
  fi
  python3 - "$conf" "$1" "${2:-}" <<'PY' || die "could not add runsc to $conf (is it valid JSON?): add \"runtimes\": {\"runsc\": {\"path\": \"$1\"}} yourself and reload dockerd"
import json, os, sys
conf, path, arg = sys.argv[1:4]
d = {}
if os.path.exists(conf) and open(conf).read().strip():
    d = json.load(open(conf))
rts = d.setdefault("runtimes", {}) if isinstance(d, dict) else None
if not isinstance(rts, dict) or not isinstance(rts.get("runsc", {}), dict):
    sys.exit("unexpected structure")
rt = rts.setdefault("runsc", {"path": path})
if arg and arg not in rt.setdefault("runtimeArgs", []):
    rt["runtimeArgs"].append(arg)
tmp = conf + ".warden.tmp"
with open(tmp, "w") as f:
    json.dump(d, f, indent=2)
    f.write("\n")
os.rename(tmp, conf)
PY
}
dockerd_reload() { # makes dockerd read daemon.json again (runtimes are reloaded on SIGHUP), then waits for runsc
  say "making dockerd reload /etc/docker/daemon.json"
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ] && systemctl is-active -q docker; then
    systemctl reload docker || systemctl restart docker
  elif pidof dockerd >/dev/null; then
    kill -HUP $(pidof dockerd)
  else
    die "dockerd is not running: start it (ensure_docker) and run this again"
  fi
  for _ in $(seq 1 30); do
    docker_has_runsc && return
    sleep 1
  done
  die "dockerd does not list runsc 30 s after reloading /etc/docker/daemon.json; see its log (/var/log/dockerd.log, or journalctl -u docker)"
}
ensure_runsc() {
  local image="${1:-}" path out
  if ! docker_has_runsc; then
    is_root || die "the Docker daemon has no runtime runsc (gVisor): as root, apt-get install -y runsc, add \"runtimes\": {\"runsc\": {\"path\": \"/usr/bin/runsc\"}} to /etc/docker/daemon.json (merged with what is there) and reload dockerd (systemctl reload docker, or kill -HUP \$(pidof dockerd))"
    command -v runsc >/dev/null || [ -x /usr/bin/runsc ] || apt_install runsc
    path="$(command -v runsc || echo /usr/bin/runsc)"
    say "registering $path with the Docker daemon as the runtime runsc"
    runsc_register "$path"
    dockerd_reload
  fi
  [ -n "$image" ] && docker image inspect "$image" >/dev/null 2>&1 || return 0
  out="$(docker run --rm --runtime=runsc --network none --log-driver none "$image" true 2>&1)" && return
  if grep -q 'cannot run with network enabled in root network namespace' <<<"$out" && is_root; then
    say "this runsc cannot start its own network stack on this kernel (gVisor issue 10704): registering it with --network=host"
    runsc_register "$(command -v runsc || echo /usr/bin/runsc)" --network=host
    dockerd_reload
    out="$(docker run --rm --runtime=runsc --network none --log-driver none "$image" true 2>&1)" && return
  fi
  die "runsc is registered but cannot start a container of $image: $out"
}

# ensure_bwrap: the bubblewrap provider's tests run the real bwrap, and
# slirp4netns, which connects the sandboxes that have networking.
ensure_bwrap() {
  command -v bwrap >/dev/null || apt_install bubblewrap
  command -v slirp4netns >/dev/null || apt_install slirp4netns
  # The fork server compiles its native set-up (setup.c) when it starts;
  # the race detector needs a C compiler too.
  command -v cc >/dev/null || apt_install gcc libc6-dev
}

# ensure_debootstrap: the offline image recipe needs it (no registry here).
ensure_debootstrap() {
  command -v debootstrap >/dev/null || apt_install debootstrap
}

build_warden() {
  say "building warden"
  # warden-init, beside warden, is what bubblewrap sandboxes run before
  # Python: a small program starts far faster than warden itself.
  (cd "$ROOT" && go build -trimpath -o "$(dirname "$WARDEN")/" ./cmd/warden ./cmd/warden-init)
}

# ensure_image: builds the runtime image unless it exists (reused as is).
ensure_image() {
  if is_root; then ensure_debootstrap; fi
  "$WARDEN" image build
}
