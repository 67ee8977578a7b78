#!/usr/bin/env bash
# Pulls (docs/benchmarks.md, "Pulls (issue 16)"): the Debian bookworm minbase image (one layer, the
# tarball of bench/images.sh, pushed gzip-compressed) from a registry that this script starts on
# 127.0.0.1 (Debian's docker-registry, distribution 2.8, TLS with a CA made by openssl and trusted
# through the bench user's ~/.config/containers/certs.d/127.0.0.1:PORT/ca.crt; no authentication),
# into an EMPTY store, as the unprivileged bench user with a fixture range bind-mounted over
# /etc/subuid and /etc/subgid in a private mount namespace (the machine's files are never edited):
#   unshare-run   unshare-run images pull -q REF   (the musl build, scripts/runner-binary.sh; before
#                 it, the store is removed with unshare-run -- rm -rf, its files being subordinate ids')
#   podman        podman pull -q REF               (rootless, its default storage for this user;
#                 before it, podman system reset -f)
# ROUNDS rounds (default 5), alternating which goes first; each store is emptied and the disk synced
# right before its pull. Prints each round's wall times (and the pulls' CPU time), the median ratio
# unshare-run / podman (target <= 0.6), and then, unmeasured, where the time of one more pull of each
# goes (the store's directories polled every 10 ms) beside the floors: the blob's download with curl,
# its decompression with gzip -dc, and unshare-run images import of the same blob as a .tar.gz.
# Run as root: bench/pull.sh    Environment: ROUNDS (default 5), PHASES=0 skips the phases,
# PODMAN_DRIVER=overlay (or vfs) writes the bench user's ~/.config/containers/storage.conf with that
# driver instead of leaving podman's default (here: no storage.conf exists, and podman 4.3 then uses
# vfs for a rootless user).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
ROUNDS=${ROUNDS:-5}
CACHE=/var/cache/unshare-run-tests

. bench/common.sh
. bench/registry.sh
bench_setup podman uidmap skopeo docker-registry openssl curl python3 musl-tools debootstrap gzip

if [ ! -f "$CACHE/bookworm-minbase.tar" ]; then
    mkdir -p "$CACHE"
    rm -rf "$CACHE/bookworm.tmp"
    debootstrap --variant=minbase bookworm "$CACHE/bookworm.tmp" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >/dev/null
    tar --numeric-owner --exclude='./dev/*' -cf "$CACHE/bookworm-minbase.tar.partial" -C "$CACHE/bookworm.tmp" .
    mv "$CACHE/bookworm-minbase.tar.partial" "$CACHE/bookworm-minbase.tar"
    rm -rf "$CACHE/bookworm.tmp"
fi

# Installed as the packages install it: unshare-run (musl when it can be built) beside the glibc helpers.
shipped=$(scripts/runner-binary.sh "$work/bin/unshare-run")
install_as "$work/shipped" "$shipped" "$work/bin/newuidmap"
run="$work/shipped/unshare-run"

bench_home
if [ -n "${PODMAN_DRIVER:-}" ]; then
    install -d -m 0755 -o "$USER_NAME" -g "$USER_NAME" "$XDG_CONFIG_HOME/containers"
    printf '[storage]\ndriver = "%s"\n' "$PODMAN_DRIVER" > "$XDG_CONFIG_HOME/containers/storage.conf"
    chown "$USER_NAME:$USER_NAME" "$XDG_CONFIG_HOME/containers/storage.conf"
fi
start_registry
oci_layout "$CACHE/bookworm-minbase.tar" "$work/layout" bookworm
push_layout "$work/layout" bookworm debian:bookworm
ref="$registry/debian:bookworm"
store="$XDG_DATA_HOME/unshare-run"
graphroot="$XDG_DATA_HOME/containers/storage"

cat > "$work/timed.py" <<'PY'
# timed.py LOG CMD...: runs CMD (output to LOG); prints its wall time, its CPU time (user, system;
# of the processes it waited for) and when it started (epoch), all in seconds. Exits with its status.
import resource, subprocess, sys, time
with open(sys.argv[1], "w") as log:
    start, t = time.time(), time.monotonic()
    rc = subprocess.call(sys.argv[2:], stdout=log, stderr=subprocess.STDOUT)
    elapsed = time.monotonic() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{elapsed:.3f} {ru.ru_utime:.3f} {ru.ru_stime:.3f} {start:.3f}")
sys.exit(rc)
PY
chmod 644 "$work/timed.py"

empty_ours() {
    if [ -e "$store" ]; then as_bench "$run" -- rm -rf "$store"; fi
}
empty_podman() {
    as_bench podman system reset -f >/dev/null 2>&1
}
pull_ours() {
    as_bench python3 "$work/timed.py" "$1" "$run" images pull -q "$ref"
}
pull_podman() {
    as_bench python3 "$work/timed.py" "$1" podman pull -q "$ref"
}

# Podman as this user picks its storage driver on first use; ask it (after a reset, as every round).
empty_podman
driver=$(as_bench podman info --format '{{.Store.GraphDriverName}} {{range $k, $v := .Store.GraphOptions}}{{$k}}={{$v}} {{end}}' 2>/dev/null)
empty_podman
blobs="$work/registry/storage/docker/registry/v2/blobs/sha256"
link="$work/registry/storage/docker/registry/v2/repositories/debian/_manifests/tags/bookworm/current/link"
manifest=$(cut -d: -f2 < "$link")
layer_gz=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["layers"][0]["digest"].split(":")[1])' \
    "$blobs/${manifest:0:2}/$manifest/data")
blob="$blobs/${layer_gz:0:2}/$layer_gz/data"

echo "# $(date -u '+%Y-%m-%d %H:%M:%S UTC')  commit $(git rev-parse --short HEAD)  $(uname -r)  $(nproc) cpus  load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# image $ref: one layer, $(stat -c %s "$CACHE/bookworm-minbase.tar") bytes uncompressed, $(stat -c %s "$blob") gzip"
echo "# $(as_bench podman --version), storage driver: $driver"
echo "# docker-registry $(dpkg-query -W -f='${Version}' docker-registry), skopeo $(dpkg-query -W -f='${Version}' skopeo)"

: > "$work/out/times"
for round in $(seq "$ROUNDS"); do
    order=(ours podman)
    if [ $((round % 2)) = 0 ]; then order=(podman ours); fi
    for who in "${order[@]}"; do
        "empty_$who"
        sync
        if ! t=$("pull_$who" "$work/out/$who-$round.log"); then
            echo "$0: the $who pull of round $round failed:" >&2
            cat "$work/out/$who-$round.log" >&2
            exit 1
        fi
        echo "$round $who $t" >> "$work/out/times"
    done
done

# Both stores now hold the image: check that it is the image, and say how much each keeps.
[ "$(as_bench "$run" --net host --rootfs "$ref" --pull never -- cat /etc/debian_version)" = \
  "$(tar -xOf "$CACHE/bookworm-minbase.tar" ./etc/debian_version)" ]
as_bench podman image exists "$ref"
echo "# stored: unshare-run $(du -sm "$store" | cut -f1) MiB, podman $(du -sm "$graphroot" | cut -f1) MiB"

python3 - "$work/out/times" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    rnd, who, wall, user, system, _ = line.split()
    rows.setdefault(int(rnd), {})[who] = (float(wall), float(user), float(system))
ratios = []
for rnd in sorted(rows):
    o, p = rows[rnd]["ours"], rows[rnd]["podman"]
    ratios.append(o[0] / p[0])
    first = "unshare-run" if rnd % 2 else "podman"
    print(f"round {rnd}: unshare-run {o[0]:.3f} s (cpu {o[1]:.2f}+{o[2]:.2f}), "
          f"podman {p[0]:.3f} s (cpu {p[1]:.2f}+{p[2]:.2f}), ratio {ratios[-1]:.3f}  ({first} first)")
med = lambda who: statistics.median(rows[r][who][0] for r in rows)
ratio = statistics.median(ratios)
print(f"medians: unshare-run {med('ours'):.3f} s, podman {med('podman'):.3f} s; "
      f"unshare-run / podman: median {ratio:.3f} (range {min(ratios):.3f} .. {max(ratios):.3f}, {len(ratios)} rounds) "
      f"(target <= 0.6: {'met' if ratio <= 0.6 else 'MISSED'})")
PY

[ "${PHASES:-1}" = 1 ] || exit 0

# Where the time goes (not part of the ratio): one more pull of each while a poller watches the
# store's directories (two levels deep; every 10 ms), then the floors.
cat > "$work/poll.py" <<'PY'
# poll.py OUT DIR...: until SIGTERM, every 10 ms, notes when each path two levels under a DIR appears,
# when its size last changed and when it goes; writes "EPOCH EVENT PATH SIZE" lines to OUT.
import os, signal, sys, time
out, roots = sys.argv[1], sys.argv[2:]
seen, events, running = {}, [], True
def stop(*_):
    global running
    running = False
signal.signal(signal.SIGTERM, stop)
def scan():
    now, found = time.time(), {}
    for root in roots:
        try:
            level1 = os.listdir(root)
        except OSError:
            continue
        for a in level1:
            pa = os.path.join(root, a)
            paths = [pa]
            if os.path.isdir(pa) and not os.path.islink(pa):
                try:
                    paths += [os.path.join(pa, b) for b in os.listdir(pa)]
                except OSError:
                    pass
            for p in paths:
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                found[p] = st.st_size if not os.path.isdir(p) else -1
    for p, size in found.items():
        if p not in seen:
            events.append((now, "appears", p, size))
        elif seen[p] != size:
            events.append((now, "size", p, size))
    for p in set(seen) - set(found):
        events.append((now, "gone", p, seen[p]))
    seen.clear()
    seen.update(found)
print("ready", flush=True)
while running:
    scan()
    time.sleep(0.01)
scan()
with open(out, "w") as f:
    for e in events:
        f.write(f"{e[0]:.3f} {e[1]} {e[2]} {e[3]}\n")
PY
cat > "$work/phases.py" <<'PY'
# phases.py EVENTS TIMES LABEL: a summary of poll.py's events relative to the pull's start.
import collections, os, sys
events, (wall, _, _, start), label = sys.argv[1], open(sys.argv[2]).read().split(), sys.argv[3]
wall, start = float(wall), float(start)
first, last_size, gone, size = {}, {}, {}, {}
for line in open(events):
    t, ev, p, s = line.split()
    t = float(t) - start
    if ev == "appears":
        first.setdefault(p, t)
    if ev in ("appears", "size"):
        last_size[p] = t
        size[p] = int(s)
    if ev == "gone":
        gone[p] = t
print(f"{label}: {wall:.3f} s in all")
for p in sorted(first, key=first.get):
    s = f", {size[p] / 2**20:.1f} MiB at +{last_size[p]:.3f} s" if size.get(p, -1) > 0 else ""
    g = f", gone +{gone[p]:.3f} s" if p in gone else ""
    print(f"  +{first[p]:.3f} s {p}{s}{g}")
PY
chmod 644 "$work/poll.py" "$work/phases.py"

phase_run() {  # phase_run WHO DIR...
    local who=$1 poller
    shift
    "empty_$who"
    sync
    python3 "$work/poll.py" "$work/out/events-$who" "$@" > "$work/out/poll-$who.out" &
    poller=$!
    until [ -s "$work/out/poll-$who.out" ]; do sleep 0.01; done
    "pull_$who" "$work/out/phase-$who.log" > "$work/out/phase-$who.time"
    kill -TERM "$poller"
    wait "$poller"
    python3 "$work/phases.py" "$work/out/events-$who" "$work/out/phase-$who.time" "$who" |
        sed "s|$work|\$work|g"
}
echo
echo "# where the time goes (one more pull of each, polled; not in the ratio)"
phase_run ours "$store"
phase_run podman "$graphroot" "$TMPDIR"

cp "$blob" "$work/tmp/layer.tar.gz"
chmod 644 "$work/tmp/layer.tar.gz"
sync
curl_time=$(as_bench curl -s --cacert "$work/registry/certs/ca.crt" -o /dev/null -w '%{time_total}' \
    "https://$registry/v2/debian/blobs/sha256:$layer_gz")
gunzip_time=$(python3 "$work/timed.py" /dev/null sh -c "gzip -dc $work/tmp/layer.tar.gz > /dev/null" | cut -d' ' -f1)
empty_ours
sync
import_time=$(as_bench python3 "$work/timed.py" "$work/out/import.log" "$run" images import "$work/tmp/layer.tar.gz" |
    cut -d' ' -f1)
echo "floors: the blob's download with curl $curl_time s, gzip -dc $gunzip_time s, unshare-run images import of the blob (.tar.gz) $import_time s"
