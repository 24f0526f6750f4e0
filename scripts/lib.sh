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

# ensure_bwrap: the bubblewrap provider's tests run the real bwrap, and
# slirp4netns, which connects the sandboxes that have networking.
ensure_bwrap() {
  command -v bwrap >/dev/null || apt_install bubblewrap
  command -v slirp4netns >/dev/null || apt_install slirp4netns
}

# ensure_debootstrap: the offline image recipe needs it (no registry here).
ensure_debootstrap() {
  command -v debootstrap >/dev/null || apt_install debootstrap
}

build_warden() {
  say "building warden"
  (cd "$ROOT" && go build -trimpath -o "$WARDEN" ./cmd/warden)
}

# ensure_image: builds the runtime image unless it exists (reused as is).
ensure_image() {
  if is_root; then ensure_debootstrap; fi
  "$WARDEN" image build
}
