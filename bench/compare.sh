#!/usr/bin/env bash
# A change against what it replaces, on a noisy machine: ROUNDS short hyperfine runs, each timing
# this tree's build and another one (e.g. of the commit before the change) one after the other, as
# the unprivileged user of bench/common.sh on the busybox root filesystem of bench/runner.sh; prints
# each round's medians and ratio, then the median ratio and its quartiles over all rounds. A slow
# stretch of the machine then spoils a round or two, not one command's whole run.
#   bench/compare.sh OTHER_RUNNER [OTHER_HELPER]        warm starts (the holder serves both builds)
#   EXTRA="--holder-idle 0" bench/compare.sh ...         cold starts (both helpers run every time)
# OTHER_HELPER defaults to OTHER_RUNNER; this tree's runner is the shipped build
# (scripts/runner-binary.sh) beside this tree's glibc helpers. Run as root.
# Environment: ROUNDS (default 20), RUNS per command and round (default 50), EXTRA.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
[ $# -ge 1 ] || { echo "usage: bench/compare.sh OTHER_RUNNER [OTHER_HELPER]" >&2; exit 2; }
other_runner=$(realpath "$1")
other_helper=$(realpath "${2:-$1}")
ROUNDS=${ROUNDS:-20}
RUNS=${RUNS:-50}
. bench/common.sh
bench_setup hyperfine busybox-static python3 musl-tools
root=$(busybox_rootfs)
this=$(scripts/runner-binary.sh "$work/bin/unshare-run")
install_as "$work/this" "$this" "$work/bin/newuidmap"
install_as "$work/other" "$other_runner" "$other_helper"
for round in $(seq "$ROUNDS"); do
    # Alternate which build goes first, so that neither always runs on a warmer machine.
    first=this second=other
    if [ $((round % 2)) = 0 ]; then first=other second=this; fi
    as_user hyperfine -N --warmup 10 --runs "$RUNS" --export-json "$work/out/round$round.json" \
        -n "$first" "$work/$first/unshare-run ${EXTRA:-} --rootfs $root -- /bin/true" \
        -n "$second" "$work/$second/unshare-run ${EXTRA:-} --rootfs $root -- /bin/true" >/dev/null 2>&1
done
python3 - "$work/out" "$ROUNDS" <<'PY'
import json, statistics, sys
ratios = []
for n in range(1, int(sys.argv[2]) + 1):
    r = {x["command"]: 1000 * x["median"] for x in json.load(open(f"{sys.argv[1]}/round{n}.json"))["results"]}
    ratios.append(r["this"] / r["other"])
    print(f"round {n:2}: this {r['this']:.3f} ms, other {r['other']:.3f} ms, ratio {ratios[-1]:.3f}")
q = statistics.quantiles(ratios, n=4)
print(f"this / other: median {statistics.median(ratios):.3f} (quartiles {q[0]:.3f} .. {q[2]:.3f}, {len(ratios)} rounds)")
PY
