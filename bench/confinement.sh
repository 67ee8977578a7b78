#!/usr/bin/env bash
# What the default confinement (issue 15) costs a warm start (docs/benchmarks.md, "Confinement"):
# `unshare-run --rootfs R -- /bin/true` against the same with --privileged (no capability limits, no
# filter, nothing masked), as the unprivileged user of bench/common.sh on the busybox root
# filesystem of bench/runner.sh, the shipped build (scripts/runner-binary.sh), in alternating rounds
# (`rounds` of bench/common.sh). Both use the host's network (--net host): the private network is the
# same in both and would only dilute the difference. Run as root: bench/confinement.sh
# Environment: ROUNDS (default 20), RUNS per command and round (default 50).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
. bench/common.sh
bench_setup hyperfine busybox-static python3 musl-tools
shipped_start_setup
rounds default "$work/run/unshare-run --net host --rootfs $root -- /bin/true" \
    privileged "$work/run/unshare-run --net host --privileged --rootfs $root -- /bin/true"
