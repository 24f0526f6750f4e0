#!/usr/bin/env bash
# The main job on a fresh Debian/Ubuntu machine: build Warden, make sure
# bubblewrap, a Docker Engine and the runtime image are there, then run a
# short Python session in a hardened sandbox and show the results.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_go
ensure_docker
ensure_bwrap
build_warden
ensure_image

say "a Python session in one sandbox: variables persist from cell to cell"
"$WARDEN" exec \
  --python 'import os, platform; print(f"Python {platform.python_version()} as uid {os.getuid()} in {os.getcwd()}")' \
  --python 'x = 42' \
  --python 'print(f"x is still {x}")' \
  --python 'import numpy as np; np.arange(10).sum() + x' \
  --python 'open("/etc/passwd", "a")' || true

say "which provider runs them, and why (bubblewrap first on Linux, then Docker)"
"$WARDEN" doctor | sed -n '1,7p'

say "the same sandbox from the shell: no network, read-only root, no capabilities, seccomp"
"$WARDEN" exec --shell 'echo "hello world" | wc -w; tail -n +3 /proc/net/dev | cut -d: -f1; touch /usr/x 2>&1; grep -E "^(CapEff|Seccomp):" /proc/self/status'

say "the same session in Docker instead"
"$WARDEN" exec --provider docker --python 'import os; print("uid", os.getuid(), "in", os.getcwd())'

say "with the shell check on, a dangerous command is refused before anything runs"
SANDBOX__BYPASS_SHELL_SAFETY=false "$WARDEN" exec --shell 'ls; FOO=1 rm -rf /' || echo "(exit code $?)"

say "a timeout stops the code and says so"
"$WARDEN" exec --timeout 2 --python 'import time; time.sleep(60)' || echo "(exit code $?)"
