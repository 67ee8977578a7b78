#!/usr/bin/env bash
# Benchmark of the newuidmap helpers (docs/benchmarks.md, "Helpers"; method: DESIGN.md section 7).
#
# Run as root from anywhere:  bench/helpers.sh [extra idmap_bench options, e.g. --iterations 400]
# Environment: ITERATIONS (default 400), WARMUP (default 10); HELPER_BINARY: measure that build as
# "ours" instead of target/release/unshare-run (e.g. the musl build of scripts/build-musl.sh).
#
# Measures in ONE interleaved run (examples/idmap_bench.rs does the timing):
#   ours-2      our newuidmap (setuid copy of target/release/unshare-run), 2-line /etc/subuid
#   shadow-2    /usr/bin/newuidmap (shadow-utils), same 2-line /etc/subuid
#   ours-100k   our newuidmap, 100,000-line /etc/subuid, the caller's line last
#   shadow-100k shadow's newuidmap, same 100,000-line file
#   true        /bin/true in the same loop: the spawn+exec+wait floor
# and prints the ratios (a) ours-2/shadow-2 (target <= 1.0) and (b) ours-100k/ours-2 (target <= 1.5).
# Run 2 repeats (b) alone, also with a 100,000-line file whose other owners are uids (ours-100k-uids,
# ratio b-uids, target <= 1.5), and, as context, the names file written in 1 MiB writes (large page
# cache folios; ours-100k-1m-writes, ratio b-1m-writes).
# Run 3 measures getsubids beside them, in hyperfine runs (RUNS, default 300; GETSUBIDS_WARMUP,
# default 20): our getsubids (a 0755 copy of the same build) and shadow's /usr/bin/getsubids, each for
# `getsubids urt-bench` with the 2-line file as /etc/subuid and `getsubids -g urt-bench` with a
# 100,000-line file as /etc/subgid (one private mount namespace holds both, so no wrapper is timed):
# one run with the names file, one with the uids file.
#
# How the fixtures are used: the driver runs as root and starts one worker per variant; each worker is
# `unshare --mount --propagation private` + `mount --bind FIXTURE /etc/subuid` + `setpriv` to urt-bench,
# so each variant sees its own /etc/subuid in its own mount namespace. That set-up happens once per
# worker; the timed interval (spawn+exec+wait of the helper, done inside the worker as urt-bench) holds
# no wrapper. The machine's real /etc/subuid and /etc/subgid are never written or bind-mounted over
# outside those private namespaces, which vanish with the workers.
#
# Leaves behind only the user urt-bench (created with no subordinate ids). Removes its temp directory.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
    echo "bench/helpers.sh: must run as root (setuid copy, bind mounts, test user)" >&2
    exit 1
fi
for tool in unshare setpriv mount useradd awk install pgrep python3; do
    command -v "$tool" >/dev/null || { echo "bench/helpers.sh: needs $tool" >&2; exit 1; }
done
[[ -u /usr/bin/newuidmap ]] || { echo "bench/helpers.sh: /usr/bin/newuidmap (uidmap) missing or not setuid" >&2; exit 1; }
[[ -x /usr/bin/getsubids ]] || { echo "bench/helpers.sh: /usr/bin/getsubids (uidmap) missing" >&2; exit 1; }
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
bench_user=urt-bench
start=100000
count=65536

cargo build --release
cargo build --release --example idmap_bench

if ! id -u "$bench_user" >/dev/null 2>&1; then
    # SUB_*_COUNT=0: useradd must not add lines to the real /etc/subuid and /etc/subgid.
    useradd -m -s /bin/sh -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$bench_user"
fi

tmp=
driver_pid=
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n $driver_pid ]] && kill -0 "$driver_pid" 2>/dev/null; then
        # The driver's children are its workers (one per variant); each worker's children are its
        # target and, at most, one helper. Stop them by pid, then wait until they are gone.
        local workers pids pid i
        workers=$(pgrep -P "$driver_pid" || true)
        pids="$workers"
        for pid in $workers; do pids+=" $(pgrep -P "$pid" || true)"; done
        kill "$driver_pid" 2>/dev/null || true
        wait "$driver_pid" 2>/dev/null || true
        for pid in $pids; do kill "$pid" 2>/dev/null || true; done
        # They are re-parented to init once the driver is gone: wait for them to be reaped (<= 5 s).
        for i in $(seq 50); do
            for pid in $pids; do [[ -e /proc/$pid ]] && break; pid=; done
            [[ -z ${pid:-} ]] && break
            sleep 0.1
        done
    fi
    if [[ -n $tmp && -d $tmp ]]; then
        rm -rf -- "$tmp"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

tmp=$(mktemp -d /tmp/urt-bench.XXXXXXXX)
chmod 0755 "$tmp"
# The helper must be named newuidmap (applet chosen by argv[0] basename); setuid root like shadow's.
install -o root -g root -m 4755 "${HELPER_BINARY:-target/release/unshare-run}" "$tmp/newuidmap"
# The worker runs as urt-bench and re-executes the driver, so the driver must be reachable by it.
install -o root -g root -m 0755 target/release/examples/idmap_bench "$tmp/idmap_bench"
# getsubids as the Debian package installs it: a 0755 file of its own.
install -o root -g root -m 0755 "${HELPER_BINARY:-target/release/unshare-run}" "$tmp/getsubids"
install -d -o "$bench_user" -m 0755 "$tmp/out"

# Fixtures: root-owned, 0644 (our reader refuses a subid file writable by others or not root's).
# Other users' ranges start at 200000 and step by 65536, so none overlaps urt-bench's 100000..165536.
printf 'benchother:200000:65536\n%s:%s:%s\n' "$bench_user" "$start" "$count" >"$tmp/subuid-2"
awk -v user="$bench_user" -v start="$start" -v count="$count" 'BEGIN {
    for (i = 1; i <= 99999; i++) printf "user%d:%.0f:65536\n", i, 200000 + (i - 1) * 65536
    printf "%s:%s:%s\n", user, start, count
}' >"$tmp/subuid-100k"
# The same with numeric owners: uids with as many digits as urt-bench's own (1000..9999 for a 4-digit
# uid, cycling, never its own), so the search for its "\nUID:" lines meets a candidate at many line
# starts; urt-bench's line is last, by name.
bench_uid=$(id -u "$bench_user")
awk -v user="$bench_user" -v uid="$bench_uid" -v start="$start" -v count="$count" 'BEGIN {
    low = 10 ^ (length(uid) - 1); span = 9 * low
    for (i = 1; i <= 99999; i++) {
        owner = low + (i - 1) % span
        if (owner == uid) owner = low + span - 1
        printf "%d:%.0f:65536\n", owner, 200000 + (i - 1) * 65536
    }
    printf "%s:%s:%s\n", user, start, count
}' >"$tmp/subuid-100k-uids"
# Context only: the names file again, written in 1 MiB writes. awk writes 4 KiB at a time, as shadow's
# tools write /etc/subuid (stdio), and the page cache then holds the file in 4 KiB folios, each of which
# costs the helper's mapping and its exit; 1 MiB writes (or a file read back from disk) give large
# folios. The scan is the same for both.
dd if="$tmp/subuid-100k" of="$tmp/subuid-100k-1m-writes" bs=1M status=none
chown root:root "$tmp/subuid-2" "$tmp/subuid-100k" "$tmp/subuid-100k-uids" "$tmp/subuid-100k-1m-writes"
chmod 0644 "$tmp/subuid-2" "$tmp/subuid-100k" "$tmp/subuid-100k-uids" "$tmp/subuid-100k-1m-writes"
for f in subuid-100k subuid-100k-uids; do
    [[ $(wc -l <"$tmp/$f") -eq 100000 ]] || { echo "fixture $f has the wrong size" >&2; exit 1; }
done

echo "# $(date -u '+%Y-%m-%d %H:%M:%S UTC')  $(uname -sr)  $(nproc) cpus  $(. /etc/os-release && echo "$PRETTY_NAME")"
echo "# shadow: $(dpkg-query -W -f='${Package} ${Version}' uidmap 2>/dev/null || echo unknown)"
echo "# ours:   $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$repo" diff --quiet HEAD -- src helpers 2>/dev/null || echo ' (+ uncommitted changes in src/ or helpers/)')"

run_driver() {
    "$tmp/idmap_bench" \
        --user "$bench_user" \
        --iterations "${ITERATIONS:-400}" --warmup "${WARMUP:-10}" \
        --start "$start" --count "$count" \
        "$@" &
    driver_pid=$!
    wait "$driver_pid"
}

# Run 1: everything interleaved. shadow-100k (about 35 ms of parsing) runs between our 100k runs and
# evicts the 2.7 MB file from the CPU caches, so "b-cold" is ours reading it from memory each time.
echo "# run 1: all variants interleaved"
run_driver \
    --helper "ours-2=$tmp/newuidmap,subuid=$tmp/subuid-2" \
    --helper "shadow-2=/usr/bin/newuidmap,subuid=$tmp/subuid-2" \
    --helper "ours-100k=$tmp/newuidmap,subuid=$tmp/subuid-100k" \
    --helper "shadow-100k=/usr/bin/newuidmap,subuid=$tmp/subuid-100k" \
    --floor "true=/bin/true,subuid=$tmp/subuid-2" \
    --ratio "a=ours-2/shadow-2,target=1.0" \
    --ratio "b-cold=ours-100k/ours-2" \
    --ratio "b-shadow=shadow-100k/shadow-2" \
    --ratio "ours-floor=ours-2/true" \
    --ratio "shadow-floor=shadow-2/true" \
    "$@"
# Run 2: (b) on its own: ours with the 2-line and with the two 100,000-line files (other owners names,
# other owners uids), interleaved.
echo "# run 2: ours, 2 lines vs 100,000 lines"
run_driver \
    --helper "ours-2=$tmp/newuidmap,subuid=$tmp/subuid-2" \
    --helper "ours-100k=$tmp/newuidmap,subuid=$tmp/subuid-100k" \
    --helper "ours-100k-uids=$tmp/newuidmap,subuid=$tmp/subuid-100k-uids" \
    --helper "ours-100k-1m-writes=$tmp/newuidmap,subuid=$tmp/subuid-100k-1m-writes" \
    --floor "true=/bin/true,subuid=$tmp/subuid-2" \
    --ratio "b=ours-100k/ours-2,target=1.5" \
    --ratio "b-uids=ours-100k-uids/ours-2,target=1.5" \
    --ratio "b-1m-writes=ours-100k-1m-writes/ours-2" \
    "$@"
# Run 3: getsubids, ours and shadow's, 2 lines (/etc/subuid) and 100,000 lines (/etc/subgid, -g): one
# hyperfine run with the names file as /etc/subgid, then one with the uids file.
getsubids_run() {
    local fixture=$1 json=$2
    unshare --mount --propagation private -- bash -c '
        set -euo pipefail
        tmp=$1 user=$2 runs=$3 warmup=$4 fixture=$5 json=$6
        mount --bind "$tmp/subuid-2" /etc/subuid
        mount --bind "$tmp/$fixture" /etc/subgid
        as_user() { setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups -- "$@"; }
        # Every variant must give the one right answer before anything is timed.
        for cmd in "$tmp/getsubids $user" "/usr/bin/getsubids $user" "$tmp/getsubids -g $user" "/usr/bin/getsubids -g $user"; do
            out=$(as_user $cmd)
            [[ $out == "0: $user 100000 65536" ]] || { echo "$cmd printed: $out" >&2; exit 1; }
        done
        as_user hyperfine -N --style basic --warmup "$warmup" --runs "$runs" --export-json "$tmp/out/$json" \
            -n ours-2 "$tmp/getsubids $user" -n shadow-2 "/usr/bin/getsubids $user" \
            -n ours-100k "$tmp/getsubids -g $user" -n shadow-100k "/usr/bin/getsubids -g $user"
    ' bash "$tmp" "$bench_user" "${RUNS:-300}" "${GETSUBIDS_WARMUP:-20}" "$fixture" "$json"
    python3 - "$tmp/out/$json" "$fixture" <<'PY'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
median = {name: r["median"] * 1000 for name, r in results.items()}
print(f"# 100,000-line file: {sys.argv[2]}")
print("| variant     | lines   | median ms | mean ms | stddev ms | min ms |")
for name, lines in [("ours-2", 2), ("shadow-2", 2), ("ours-100k", 100000), ("shadow-100k", 100000)]:
    r = results[name]
    print(f"| {name:<11} | {lines:<7} | {median[name]:9.3f} | {r['mean'] * 1000:7.3f} | {r['stddev'] * 1000:9.3f} | {r['min'] * 1000:6.3f} |")
for label, num, den in [("ours-2 / shadow-2", "ours-2", "shadow-2"),
                        ("ours-100k / ours-2", "ours-100k", "ours-2"),
                        ("shadow-100k / shadow-2", "shadow-100k", "shadow-2"),
                        ("ours-100k / shadow-100k", "ours-100k", "shadow-100k")]:
    print(f"ratio {label}: {median[num] / median[den]:.3f}")
PY
}
echo "# run 3: getsubids (hyperfine), 2 lines vs 100,000 lines"
getsubids_run subuid-100k getsubids.json
getsubids_run subuid-100k-uids getsubids-uids.json
