#!/usr/bin/env bash
# Container start time (docs/benchmarks.md, "Runner"), all measured in ONE hyperfine run as an
# unprivileged user with a fixture range bind-mounted over /etc/subuid and /etc/subgid in a private
# mount namespace (the machine's files are never edited):
#   unshare-run   unshare-run --rootfs R -- /bin/true                (full map; warm: joins the holder
#                 that the warm-up runs left, so no helper runs)
#   cold          unshare-run --holder-idle 0 --rootfs R -- /bin/true (full map through our helpers)
#   unshare       unshare --map-auto --map-root-user --fork --pid --mount --mount-proc --root=R /bin/true
#                 (util-linux with shadow's helpers, first subordinate block only)
#   bwrap         bwrap --unshare-all --share-net --uid 0 --gid 0 --bind R / --proc /proc --dev /dev /bin/true
#                 (single uid)
# R is a busybox root filesystem. Targets: unshare-run <= 0.5x unshare and <= 0.75x bwrap.
# Run as root: bench/runner.sh    Environment: RUNS (default 300), WARMUP (default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
RUNS=${RUNS:-300}
WARMUP=${WARMUP:-30}
USER_NAME=urt-bench

[ "$(id -u)" = 0 ] || { echo "bench/runner.sh: run as root" >&2; exit 1; }
for p in hyperfine bubblewrap uidmap busybox-static util-linux python3; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ -n "${missing[*]:-}" ]; then apt-get update -qq; apt-get install -y -qq "${missing[@]}" >/dev/null; fi
id "$USER_NAME" >/dev/null 2>&1 || useradd -m -s /bin/sh -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$USER_NAME"

cargo build --release --quiet
work=$(mktemp -d /tmp/unshare-run-bench.XXXXXX)
trap 'pkill -KILL -u "$USER_NAME" 2>/dev/null || true; rm -rf "$work" "/tmp/unshare-run-$(id -u "$USER_NAME")"' EXIT
chmod 755 "$work"
mkdir -m 755 "$work/bin"
install -d -m 0755 -o "$USER_NAME" "$work/out"
install -m 0755 target/release/unshare-run "$work/bin/unshare-run"
install -m 4755 target/release/unshare-run "$work/bin/newuidmap"
ln -s newuidmap "$work/bin/newgidmap"
printf '%s:100000:65536\n' "$USER_NAME" > "$work/subid"
chmod 644 "$work/subid"
root="$work/rootfs"
mkdir -p "$root/bin" "$root/proc" "$root/dev" "$root/sys" "$root/tmp" "$root/etc"
cp "$(command -v busybox)" "$root/bin/busybox"
for a in sh true; do ln -s busybox "$root/bin/$a"; done
chown -R "$USER_NAME:$USER_NAME" "$root"

cmd_ours="$work/bin/unshare-run --rootfs $root -- /bin/true"
cmd_cold="$work/bin/unshare-run --holder-idle 0 --rootfs $root -- /bin/true"
cmd_unshare="unshare --map-auto --map-root-user --fork --pid --mount --mount-proc --root=$root /bin/true"
cmd_bwrap="bwrap --unshare-all --share-net --uid 0 --gid 0 --bind $root / --proc /proc --dev /dev /bin/true"
uid=$(id -u "$USER_NAME")
unshare --mount --propagation private -- bash -c '
    mount --bind "$1/subid" /etc/subuid && mount --bind "$1/subid" /etc/subgid && shift
    exec setpriv --reuid="$1" --regid="$1" --init-groups -- env HOME=/tmp "${@:2}"' bash "$work" "$uid" \
    hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$work/out/result.json" \
        -n unshare-run "$cmd_ours" -n cold "$cmd_cold" -n unshare "$cmd_unshare" -n bwrap "$cmd_bwrap"

python3 - "$work/out/result.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
ms = lambda n: 1000 * r[n]["median"]
print(f"\nmedians: unshare-run {ms('unshare-run'):.2f} ms (cold {ms('cold'):.2f} ms), unshare {ms('unshare'):.2f} ms, bwrap {ms('bwrap'):.2f} ms")
for ours in ("unshare-run", "cold"):
    for peer, target in (("unshare", 0.5), ("bwrap", 0.75)):
        ratio = ms(ours) / ms(peer)
        print(f"{ours} / {peer}: {ratio:.3f} (target <= {target}: {'met' if ratio <= target else 'MISSED'})")
PY
