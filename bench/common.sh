# Sourced by the benchmarks (run as root). bench_setup PACKAGE...: installs what is missing (and passt), makes the
# unprivileged user urt-bench, builds, and installs a copy in $work/bin (unshare-run, and the helpers
# setuid next to it; BINARY=FILE installs that build instead, e.g. the musl one of scripts/build-musl.sh)
# with a fixture range in $work/subid; removes all of it, and the user's processes,
# on exit. as_user CMD...: runs CMD as urt-bench with the fixture bind-mounted over /etc/subuid and
# /etc/subgid in a private mount namespace (the machine's files are never edited), HOME=/tmp.
USER_NAME=urt-bench

bench_setup() {
    [ "$(id -u)" = 0 ] || { echo "$0: run as root" >&2; exit 1; }
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    # A --rootfs container's default network is pasta's, which needs /dev/net/tun usable by the bench
    # user (0666, as distributions ship it).
    dpkg-query -W -f='${Status}' passt 2>/dev/null | grep -q "ok installed" || missing+=(passt)
    if [ -n "${missing[*]:-}" ]; then apt-get update -qq; apt-get install -y -qq "${missing[@]}" >/dev/null; fi
    chmod 0666 /dev/net/tun
    id "$USER_NAME" >/dev/null 2>&1 || useradd -m -s /bin/sh -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$USER_NAME"
    uid=$(id -u "$USER_NAME")
    cargo build --release --quiet
    work=$(mktemp -d /tmp/unshare-run-bench.XXXXXX)
    trap 'pkill -KILL -u "$USER_NAME" 2>/dev/null || true; rm -rf "$work" "/tmp/unshare-run-$uid"' EXIT
    chmod 755 "$work"
    install -d -m 0755 -o "$USER_NAME" "$work/out"
    local bin=${BINARY:-target/release/unshare-run}
    install_as "$work/bin" "$bin" "$bin"
    printf '%s:100000:65536\n' "$USER_NAME" > "$work/subid"
    chmod 644 "$work/subid"
}

# busybox_rootfs: makes $work/rootfs, the busybox root filesystem of the start benchmarks (owned by
# the bench user, who is root inside), and prints its path.
busybox_rootfs() {
    local root="$work/rootfs"
    mkdir -p "$root/bin" "$root/proc" "$root/dev" "$root/sys" "$root/tmp" "$root/etc"
    cp "$(command -v busybox)" "$root/bin/busybox"
    for a in sh true; do ln -s busybox "$root/bin/$a"; done
    chown -R "$USER_NAME:$USER_NAME" "$root"
    echo "$root"
}

# shipped_start_setup (after bench_setup): the busybox root filesystem in $root, and the build that the
# packages ship as unshare-run (scripts/runner-binary.sh) in $work/run beside the setuid helpers.
shipped_start_setup() {
    local shipped
    root=$(busybox_rootfs)
    shipped=$(scripts/runner-binary.sh "$work/bin/unshare-run")
    install_as "$work/run" "$shipped" "$work/bin/newuidmap"
}

# install_as DIR RUNNER HELPER: a fresh DIR with RUNNER as unshare-run (0755) and HELPER as the setuid
# newuidmap, newgidmap a link to it: the packages' layout.
install_as() {
    mkdir -m 755 "$1"
    install -m 0755 "$2" "$1/unshare-run"
    install -m 4755 "$3" "$1/newuidmap"
    ln -s newuidmap "$1/newgidmap"
}

as_user() {
    unshare --mount --propagation private -- bash -c '
        mount --bind "$1/subid" /etc/subuid && mount --bind "$1/subid" /etc/subgid && shift
        exec setpriv --reuid="$1" --regid="$1" --init-groups -- env HOME=/tmp "${@:2}"' bash "$work" "$uid" "$@"
}

# rounds A_NAME A_COMMAND B_NAME B_COMMAND: ROUNDS short hyperfine runs (RUNS each, as the bench user)
# of both commands, alternating which goes first so that neither always runs on a warmer machine;
# prints each round's medians, their difference and ratio A/B, then the median ratio with its
# quartiles and the median difference. A slow stretch of the machine spoils a round, not a command.
rounds() {
    local a=$1 a_command=$2 b=$3 b_command=$4 round first second
    for round in $(seq "${ROUNDS:-20}"); do
        first=("$a" "$a_command") second=("$b" "$b_command")
        if [ $((round % 2)) = 0 ]; then first=("$b" "$b_command") second=("$a" "$a_command"); fi
        as_user hyperfine -N --warmup 10 --runs "${RUNS:-50}" --export-json "$work/out/round$round.json" \
            -n "${first[0]}" "${first[1]}" -n "${second[0]}" "${second[1]}" >/dev/null 2>&1
    done
    python3 - "$work/out" "${ROUNDS:-20}" "$a" "$b" <<'PY'
import json, statistics, sys
out, rounds, a, b = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ratios, diffs = [], []
for n in range(1, rounds + 1):
    r = {x["command"]: 1000 * x["median"] for x in json.load(open(f"{out}/round{n}.json"))["results"]}
    ratios.append(r[a] / r[b])
    diffs.append(r[a] - r[b])
    print(f"round {n:2}: {a} {r[a]:.3f} ms, {b} {r[b]:.3f} ms, {diffs[-1]:+.3f} ms, ratio {ratios[-1]:.3f}")
q = statistics.quantiles(ratios, n=4) if rounds > 1 else [ratios[0]] * 3
print(f"{a} / {b}: median {statistics.median(ratios):.3f} (quartiles {q[0]:.3f} .. {q[2]:.3f}, "
      f"{rounds} rounds), median difference {statistics.median(diffs):+.3f} ms")
PY
}
