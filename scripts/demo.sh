#!/usr/bin/env bash
# The main job on a fresh Debian/Ubuntu machine: build Warden, make sure a
# Docker Engine and the runtime image are there, then run a short Python
# session in a hardened sandbox and show the results.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_go
ensure_docker
build_warden
ensure_image

say "a Python session in one sandbox: variables persist from cell to cell"
"$WARDEN" exec \
  --python 'import os, platform; print(f"Python {platform.python_version()} as uid {os.getuid()} in {os.getcwd()}")' \
  --python 'x = 42' \
  --python 'print(f"x is still {x}")' \
  --python 'import numpy as np; np.arange(10).sum() + x' \
  --python 'open("/etc/passwd", "a")' || true

say "the same sandbox settings from the shell: no network, read-only root, limits"
"$WARDEN" exec --shell 'echo "hello world" | wc -w; ls /sys/class/net; touch /usr/x 2>&1; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max'

say "a timeout stops the code and says so"
"$WARDEN" exec --timeout 2 --python 'import time; time.sleep(60)' || echo "(exit code $?)"
