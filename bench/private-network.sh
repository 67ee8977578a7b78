#!/usr/bin/env bash
# What the default private network (issue 19) costs a warm start (docs/benchmarks.md, "Private
# network"): `unshare-run --rootfs R -- /bin/true` (joins the holder's user namespace and its private
# network) against the same with --net host, as the unprivileged user of bench/common.sh on the
# busybox root filesystem of bench/runner.sh, the shipped build, in alternating rounds (`rounds` of
# bench/common.sh; bench/runner.sh measures the same pair in one hyperfine run). Run as root:
# bench/private-network.sh    Environment: ROUNDS (default 20), RUNS per command and round (default 50).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
. bench/common.sh
bench_setup hyperfine busybox-static python3 musl-tools passt
shipped_start_setup
rounds private "$work/run/unshare-run --rootfs $root -- /bin/true" \
    host-net "$work/run/unshare-run --net host --rootfs $root -- /bin/true"
