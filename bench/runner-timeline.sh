#!/usr/bin/env bash
# Where a warm start's time goes (docs/benchmarks.md, "Runner"): runs `unshare-run --rootfs R --
# /bin/true` (R: the busybox root filesystem of bench/runner.sh) RUNS times from a shell loop, as the
# unprivileged user of bench/common.sh, while `perf record` collects scheduler and system-call
# tracepoints; prints, for each phase, the median time since the shell's execve over all runs.
# Run as root: bench/runner-timeline.sh     Environment: RUNS (default 500).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
RUNS=${RUNS:-500}
. bench/common.sh
bench_setup busybox-static linux-perf python3 util-linux
root=$(busybox_rootfs)
cat > "$work/loop.sh" <<EOF
for i in \$(seq 20); do $work/bin/unshare-run --rootfs $root -- /bin/true; done   # warm-up, holder
for i in \$(seq $RUNS); do $work/bin/unshare-run --rootfs $root -- /bin/true; done
EOF
events=(sched:sched_process_exec sched:sched_process_fork sys_enter_exit_group sys_exit_wait4
    sys_enter_execve sys_enter_clone sys_enter_pivot_root sys_exit_setns sys_enter_getresgid)
record=()
for e in "${events[@]}"; do [[ $e == *:* ]] || e="syscalls:$e"; record+=(-e "$e"); done
perf record -q "${record[@]}" -a -o "$work/out/trace.data" -- bash -c "$(declare -f as_user); $(declare -p work uid); as_user bash $work/loop.sh"
perf script -i "$work/out/trace.data" -F comm,pid,time,event,trace 2>/dev/null | python3 -c '
import re, statistics, sys
runs, cur = [], None
for line in sys.stdin:
    m = re.match(r"\s*(\S+)\s+(\d+)\s+([\d.]+):\s+(\S+):\s*(.*)", line)
    if not m:
        continue
    comm, pid, t, event, rest = m.groups()
    pid, t = int(pid), float(t) * 1000
    if comm == "bash" and event.endswith("sys_enter_execve"):
        cur = {"shell execs unshare-run": t, "_p": pid}
        runs.append(cur)
        continue
    if cur is None:
        continue
    def mark(name):
        cur.setdefault(name, t)
    done = event.endswith("sys_exit_wait4") and not rest.startswith("0xffff") and rest.strip() != "0x0"
    child = lambda: int(re.search(r"child_pid=(\d+)", rest).group(1))
    p, p1, c = cur["_p"], cur.get("_pid1"), cur.get("_cmd")
    if pid == p and event.endswith("sched_process_exec"): mark("exec done, ld.so starts")
    elif pid == p and event.endswith("sys_enter_getresgid"): mark("main starts (ld.so done)")
    elif pid == p and event.endswith("sys_exit_setns"): mark("holder joined")
    elif pid == p and event.endswith("sys_enter_clone"): mark("clone into new namespaces")
    elif pid == p and event.endswith("sched_process_fork"): mark("PID 1 exists"); cur["_pid1"] = child()
    elif pid == p1 and event.endswith("sys_enter_pivot_root"): mark("PID 1: mounts done, pivot_root")
    elif pid == p1 and event.endswith("sys_enter_clone"): mark("PID 1: old root detached, spawn")
    elif pid == p1 and event.endswith("sched_process_fork"): mark("command process exists"); cur["_cmd"] = child()
    elif pid == c and event.endswith("sys_enter_execve"): mark("command: execve")
    elif pid == c and event.endswith("sched_process_exec"): mark("command: exec done")
    elif pid == c and event.endswith("sys_enter_exit_group"): mark("command: exit")
    elif pid == p1 and done: mark("PID 1 reaped it")
    elif pid == p1 and event.endswith("sys_enter_exit_group"): mark("PID 1: exit")
    elif pid == p and done: mark("unshare-run saw PID 1 exit")
    elif pid == p and event.endswith("sys_enter_exit_group"): mark("unshare-run: exit")
    elif comm == "bash" and done: mark("shell saw unshare-run exit")
phases = lambda r: [k for k in r if not k.startswith("_")]
runs = [r for r in runs if len(phases(r)) == 17][20:]  # complete starts, after the warm-up
order = sorted(phases(runs[0]), key=lambda k: statistics.median(r[k] for r in runs))
print(f"{len(runs)} starts; median ms since the shell execs unshare-run (phase length in brackets)")
prev = 0.0
for k in order:
    at = statistics.median(r[k] - r["shell execs unshare-run"] for r in runs)
    print(f"  {at:6.3f}  (+{at - prev:.3f})  {k}")
    prev = at
'
