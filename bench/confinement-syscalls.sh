#!/usr/bin/env bash
# Where the default confinement's time goes in the kernel (docs/benchmarks.md, "Confinement: the
# kernel's share"). Warm starts of `unshare-run --net host --rootfs R -- /bin/true` (the busybox root
# filesystem and the bench user of bench/common.sh, the shipped build) in three modes:
#   default     podman's capabilities, the default filter, the masked and read-only kernel files;
#   minimal     the same with `--security-opt seccomp=FILE`, a profile that allows every call: the
#               kernel's fixed cost of installing any filter;
#   privileged  no capability limits, no filter, nothing masked.
# The starts are traced with the kernel's raw_syscalls tracepoints (tracefs), the modes taking turns
# start by start, each start marked in the trace; for the container's processes (unshare-run and the
# command) it sums, per system call, the time from entry to exit. Prints, per mode, the kernel time per
# start and the number of calls of each system call that differs from --privileged, and the totals.
# Unlike a wall-clock comparison, it is not moved by how busy the machine is between two starts; it
# does not see what the confinement costs in user space.
# Run as root: bench/confinement-syscalls.sh. Environment: STARTS per mode (default 60). Restores
# tracefs's settings on exit, and unmounts it if it mounted it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
. bench/common.sh
bench_setup hyperfine busybox-static python3 musl-tools
shipped_start_setup
printf '{"defaultAction": "SCMP_ACT_ALLOW"}\n' >"$work/allow-all.json"
chmod 0644 "$work/allow-all.json"

tracing=/sys/kernel/tracing
mounted_tracefs=
if ! mountpoint -q "$tracing"; then
    mount -t tracefs nodev "$tracing"
    mounted_tracefs=yes
fi
# "N" or, before first use, "N (expanded: M)": M is what it grows to.
buffer_kb=$(sed -E 's/.*expanded: ([0-9]+).*/\1/' "$tracing/buffer_size_kb")
restore_tracing() {
    echo 0 >"$tracing/tracing_on"
    echo >"$tracing/set_event"
    echo >"$tracing/set_event_pid"
    echo 0 >"$tracing/options/event-fork"
    echo >"$tracing/trace"
    echo "$buffer_kb" >"$tracing/buffer_size_kb"
}
trap 'restore_tracing; [ -z "$mounted_tracefs" ] || umount "$tracing"; pkill -KILL -u "$USER_NAME" 2>/dev/null || true; rm -rf "$work" "/tmp/unshare-run-$uid"' EXIT

start="$work/run/unshare-run --net host"
# Warm-up: the holder, and the page cache of the binaries. ($start is the program and its options.)
# shellcheck disable=SC2086
for _ in 1 2 3 4 5; do as_user $start --rootfs "$root" -- /bin/true; done

restore_tracing
# About 100 KB of events per start: room for all of them, none overwritten.
echo $((${STARTS:-60} * 3 * 150)) >"$tracing/buffer_size_kb"
echo 1 >"$tracing/options/event-fork"
echo 'raw_syscalls:sys_enter raw_syscalls:sys_exit' >"$tracing/set_event"
# The shell writes its own pid into set_event_pid and starts tracing; event-fork adds its children.
# Before each start it writes the mode into the trace (trace_marker).
bash -c 'echo $$ >"$1/set_event_pid"; echo 1 >"$1/tracing_on"; shift; exec "$@"' bash "$tracing" \
    bash -c "$(declare -f as_user); work=$work uid=$uid
        for _ in \$(seq ${STARTS:-60}); do
            for mode in default minimal privileged; do
                case \$mode in
                default) options= ;;
                minimal) options='--security-opt seccomp=$work/allow-all.json' ;;
                privileged) options=--privileged ;;
                esac
                echo \"start \$mode\" >$tracing/trace_marker
                as_user $start \$options --rootfs $root -- /bin/true
            done
        done"
echo 0 >"$tracing/tracing_on"
cat "$tracing/trace" >"$work/out/starts.trace"

python3 - "$work/out/starts.trace" /usr/include/x86_64-linux-gnu/asm/unistd_64.h <<'PY'
import collections, re, sys
trace, unistd = sys.argv[1], sys.argv[2]
names = {}
try:
    for line in open(unistd):
        m = re.match(r'#define __NR_(\w+) (\d+)', line)
        if m:
            names[int(m.group(2))] = m.group(1)
except OSError:
    pass
event = re.compile(r'\s*(.+?)-(\d+)\s+\[\d+\]\s+\S+\s+([\d.]+): (?:sys_(enter|exit): NR (\d+)|tracing_mark_write: start (\w+))')
# The container's processes: unshare-run (the command line, PID 1, the command before its exec) and
# the command (busybox's true). The trace names a process by its last program, so the calls that
# setpriv and env make before they exec unshare-run count too: the same in every mode, they cancel
# out of the differences.
ours = ("unshare-run", "true")
time = collections.defaultdict(collections.Counter)
calls = collections.defaultdict(collections.Counter)
starts = collections.Counter()
pending, mode = {}, None
for line in open(trace):
    m = event.match(line)
    if not m:
        continue
    comm, pid, ts, kind, nr, marked = m.groups()
    if marked:
        mode = marked
        starts[mode] += 1
    elif kind == "enter":
        pending[pid] = (int(nr), float(ts))
    elif pid in pending and pending[pid][0] == int(nr) and mode:
        nr, began = pending.pop(pid)
        if comm.startswith(ours):
            time[mode][nr] += float(ts) - began
            calls[mode][nr] += 1
modes = {m: ({nr: t / starts[m] * 1e6 for nr, t in time[m].items()},
             {nr: c / starts[m] for nr, c in calls[m].items()}) for m in ("default", "minimal", "privileged")}
base_time, base_calls = modes["privileged"]
print("kernel time per start in system calls of unshare-run and the command, and calls per start; starts: "
      + ", ".join(f"{m} {n}" for m, n in starts.items()))
print(f"{'system call':18} {'privileged':>16} {'default':>26} {'minimal filter':>26}")
rows = set()
for m in ("default", "minimal"):
    t, c = modes[m]
    rows |= {nr for nr in set(t) | set(base_time)
             if abs(t.get(nr, 0) - base_time.get(nr, 0)) >= 2 or abs(c.get(nr, 0) - base_calls.get(nr, 0)) >= 0.5}
def cell(m, nr):
    t, c = modes[m]
    return f"{t.get(nr, 0):7.1f} us ({c.get(nr, 0):4.1f}) {t.get(nr, 0) - base_time.get(nr, 0):+7.1f}"
for nr in sorted(rows, key=lambda nr: -(modes["default"][0].get(nr, 0) - base_time.get(nr, 0))):
    print(f"{names.get(nr, str(nr)):18} {base_time.get(nr, 0):7.1f} us ({base_calls.get(nr, 0):4.1f}) {cell('default', nr)} {cell('minimal', nr)}")
# Calls that block (waiting for another process) measure that process, not themselves.
blocking = {"read", "wait4", "waitid", "poll", "ppoll", "epoll_wait", "recvfrom", "recvmsg", "clone", "clone3", "execve", "exit_group", "futex"}
# What the confinement itself calls: the masks' mounts, the capability drops, the filter's install.
confining = {"mount", "umount2", "open_tree", "move_mount", "mount_setattr", "openat2", "prctl", "capset", "seccomp"}
def total(m, keep):
    return sum(t for nr, t in modes[m][0].items() if keep(names.get(nr)))
for m in ("default", "minimal"):
    mine = total(m, confining.__contains__) - total("privileged", confining.__contains__)
    other = total(m, lambda n: n not in blocking) - total("privileged", lambda n: n not in blocking)
    print(f"{m}: against --privileged, {mine:+.1f} us per start in the calls the confinement makes "
          f"({', '.join(sorted(confining))}), {other:+.1f} us in all that do not wait for another process")
PY
