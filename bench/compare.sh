#!/usr/bin/env bash
# A change against what it replaces, on a noisy machine: this tree's build and another one (e.g. of
# the commit before the change) in alternating rounds (`rounds` of bench/common.sh), as the
# unprivileged user of bench/common.sh on the busybox root filesystem of bench/runner.sh.
#   bench/compare.sh OTHER_RUNNER [OTHER_HELPER]        warm starts (the holder serves both builds)
#   EXTRA="--net host --holder-idle 0" bench/compare.sh ...   cold starts (both helpers run every time;
#                                                      the host network: no pasta per start)
# OTHER_HELPER defaults to OTHER_RUNNER; this tree's runner is the shipped build
# (scripts/runner-binary.sh) beside this tree's glibc helpers. Run as root.
# Environment: ROUNDS (default 20), RUNS per command and round (default 50), EXTRA.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
[ $# -ge 1 ] || { echo "usage: bench/compare.sh OTHER_RUNNER [OTHER_HELPER]" >&2; exit 2; }
other_runner=$(realpath "$1")
other_helper=$(realpath "${2:-$1}")
. bench/common.sh
bench_setup hyperfine busybox-static python3 musl-tools
root=$(busybox_rootfs)
this=$(scripts/runner-binary.sh "$work/bin/unshare-run")
install_as "$work/this" "$this" "$work/bin/newuidmap"
install_as "$work/other" "$other_runner" "$other_helper"
rounds this "$work/this/unshare-run ${EXTRA:-} --rootfs $root -- /bin/true" \
    other "$work/other/unshare-run ${EXTRA:-} --rootfs $root -- /bin/true"
