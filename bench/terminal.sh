#!/usr/bin/env bash
# The container's terminal (docs/benchmarks.md, "Terminal relay"), as the unprivileged user of
# bench/common.sh: `cat` of a SIZE_MB file through the terminal of a --rootfs container (unshare-run's
# relay) against the same `cat` through `script -qc cat` (util-linux's relay), both on an outer
# terminal that a small Python driver provides and drains in 1 MiB reads; and `cat` on the outer
# terminal alone, as the floor. hyperfine, ROUNDS rounds alternating the order; prints each round's
# medians and the median ratio unshare-run/script.
# Run as root: bench/terminal.sh      Environment: SIZE_MB (default 200), ROUNDS (5), RUNS (5).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
SIZE_MB=${SIZE_MB:-200}
ROUNDS=${ROUNDS:-5}
RUNS=${RUNS:-5}
. bench/common.sh
bench_setup hyperfine busybox-static python3 util-linux
root=$(busybox_rootfs)
for a in cat tty; do ln -s busybox "$root/bin/$a"; done
# Printable lines, as a terminal shows them (a terminal's output processing touches every byte).
mkdir -p "$root/data"
python3 -c "
import sys
line = b'0123456789abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789\n'
sys.stdout.buffer.write(line * ($SIZE_MB * 1024 * 1024 // len(line)))" > "$root/data/big"
chown -R "$USER_NAME:$USER_NAME" "$root/data"
runner="$work/bin/unshare-run --net host --holder-idle 0 --map current --rootfs $root -- cat /data/big"
relayed_by_script="script -qc 'cat $root/data/big' /dev/null"
floor="cat $root/data/big"
cat > "$work/outer.py" <<'PY'
# outer.py COMMAND: runs COMMAND (through sh) on a new terminal of which it is the controlling
# terminal, reading and discarding everything it shows; exits with its status.
import os, sys
pid, master = os.forkpty()
if pid == 0:
    os.execv("/bin/sh", ["sh", "-c", sys.argv[1]])
while True:
    try:
        if not os.read(master, 1 << 20):
            break
    except OSError:
        break
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
PY
outer() { printf "python3 $work/outer.py %q" "$1"; }
# The container really has a terminal of its own in this set-up.
check=$(as_user script -qc "$work/bin/unshare-run --map current --rootfs $root -- tty" /dev/null </dev/null)
[[ "$check" == *"/dev/pts/0"* ]] || { echo "bench/terminal.sh: the container has no terminal ($check)" >&2; exit 1; }
for round in $(seq "$ROUNDS"); do
    a=unshare-run b=script
    if [ $((round % 2)) = 0 ]; then a=script b=unshare-run; fi
    declare -A cmd=([unshare-run]="$(outer "$runner")" [script]="$(outer "$relayed_by_script")")
    as_user hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$work/out/round$round.json" \
        -n "$a" "${cmd[$a]}" -n "$b" "${cmd[$b]}" -n floor "$(outer "$floor")" >/dev/null 2>&1
done
python3 - "$work/out" "$ROUNDS" "$SIZE_MB" <<'PY'
import json, statistics, sys
out, rounds, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ratios = []
for n in range(1, rounds + 1):
    r = {x["command"]: x["median"] for x in json.load(open(f"{out}/round{n}.json"))["results"]}
    ratios.append(r["unshare-run"] / r["script"])
    mbps = {k: size / v for k, v in r.items()}
    print(f"round {n}: unshare-run {mbps['unshare-run']:.0f} MB/s, script {mbps['script']:.0f} MB/s, "
          f"outer terminal alone {mbps['floor']:.0f} MB/s; time ratio unshare-run/script {ratios[-1]:.3f}")
print(f"median time ratio unshare-run/script over {rounds} rounds: {statistics.median(ratios):.3f} "
      "(below 1: unshare-run's relay is faster)")
PY
