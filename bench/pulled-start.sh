#!/usr/bin/env bash
# Warm start of a pulled image (docs/benchmarks.md, "Pulls (issue 16)"), as the unprivileged bench
# user with a fixture range bind-mounted over /etc/subuid and /etc/subgid in a private mount namespace:
#   pulled      unshare-run --net host --rootfs REF -- /bin/true   (REF pulled once, before, from a
#               registry this script starts on 127.0.0.1 (bench/registry.sh); --pull missing, the
#               default, so the stored image is used without asking the registry: its layer composed
#               by overlayfs under the image's own upper layer)
#   directory   unshare-run --net host --rootfs DIR -- /bin/true   (DIR: the same files as a directory)
# both warm (the holder the warm-up runs leave), both with the host's network so that joining the
# holder's private network, the same in both, does not dilute the comparison. IMAGE=busybox (the
# default): the busybox root filesystem of bench/runner.sh, pushed as a one-layer image;
# IMAGE=debian: the Debian bookworm minbase tarball of bench/pull.sh, DIR extracted from it with
# unshare-run -- tar. Alternating rounds (bench/common.sh's rounds: ROUNDS short hyperfine runs of
# RUNS each); prints the median ratio pulled / directory. Target: <= 1.10.
# Then, where the difference comes from, one hyperfine run (BREAKDOWN_RUNS each, default 300) of:
# the pulled image by reference, by digest (no reference to resolve), by reference with --ephemeral
# (its overlay's upper layer a tmpfs instead of the store's directory), and the directory plain, with
# --ephemeral (an overlay with a tmpfs upper layer) and with --overlay DIR (an overlay with its upper
# layer on the disk, as a pulled image's is); medians and their difference from the plain directory.
# Run as root: bench/pulled-start.sh    Environment: IMAGE (busybox), ROUNDS (default 12), RUNS
# (default 40), BREAKDOWN=0 skips the breakdown.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
IMAGE=${IMAGE:-busybox}
ROUNDS=${ROUNDS:-12}
RUNS=${RUNS:-40}
CACHE=/var/cache/unshare-run-tests

. bench/common.sh
. bench/registry.sh
bench_setup hyperfine uidmap skopeo docker-registry openssl curl python3 musl-tools busybox-static

shipped=$(scripts/runner-binary.sh "$work/bin/unshare-run")
install_as "$work/shipped" "$shipped" "$work/bin/newuidmap"
run="$work/shipped/unshare-run"

bench_home
start_registry
mkdir -m 755 "$work/in"
case "$IMAGE" in
busybox)
    root=$(busybox_rootfs)
    tar --numeric-owner --owner=0 --group=0 -cf "$work/in/layer.tar" -C "$root" .
    ;;
debian)
    [ -f "$CACHE/bookworm-minbase.tar" ] || { echo "$0: $CACHE/bookworm-minbase.tar is missing: bench/pull.sh or bench/images.sh makes it" >&2; exit 1; }
    cp "$CACHE/bookworm-minbase.tar" "$work/in/layer.tar"
    root="$work/debian-root"
    install -d -m 0755 -o "$USER_NAME" -g "$USER_NAME" "$root"
    chmod 644 "$work/in/layer.tar"
    as_bench "$run" -- tar -xpf "$work/in/layer.tar" --numeric-owner -C "$root"
    ;;
*)
    echo "$0: IMAGE is busybox or debian, not $IMAGE" >&2
    exit 1
    ;;
esac
oci_layout "$work/in/layer.tar" "$work/layout" latest
push_layout "$work/layout" latest "$IMAGE:latest"
ref="$registry/$IMAGE:latest"
as_bench "$run" images pull -q "$ref"
# The same files both ways (the pulled one seen from inside its container).
listing='find / -xdev \( -path /proc -o -path /sys -o -path /dev \) -prune -o -printf "%p %u %g %m %s %l\n" | sort | md5sum'
if [ "$IMAGE" = debian ]; then
    a=$(as_bench "$run" --net host --rootfs "$ref" -- sh -c "$listing")
    b=$(as_bench "$run" --net host --rootfs "$root" -- sh -c "$listing")
    [ "$a" = "$b" ] || { echo "$0: the pulled image and $root differ" >&2; exit 1; }
fi

echo "# $(date -u '+%Y-%m-%d %H:%M:%S UTC')  commit $(git rev-parse --short HEAD)  $(uname -r)  $(nproc) cpus  load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# image $ref ($IMAGE, one layer of $(stat -c %s "$work/in/layer.tar") bytes), directory $root"
rounds pulled "$run --net host --rootfs $ref -- /bin/true" directory "$run --net host --rootfs $root -- /bin/true" |
    tee "$work/out/summary"
ratio=$(sed -n 's/^pulled \/ directory: median \([0-9.]*\).*/\1/p' "$work/out/summary")
awk -v r="$ratio" 'BEGIN { printf "target <= 1.10: %s (%.3f)\n", (r <= 1.10 ? "met" : "MISSED"), r }'

[ "${BREAKDOWN:-1}" = 1 ] || exit 0
digest=$(ls "$XDG_DATA_HOME/unshare-run/images")
install -d -m 0755 -o "$USER_NAME" -g "$USER_NAME" "$work/overlay"
echo
echo "# breakdown: one hyperfine run, ${BREAKDOWN_RUNS:-300} runs each, all --net host"
as_user hyperfine -N --warmup 20 --runs "${BREAKDOWN_RUNS:-300}" --export-json "$work/out/breakdown.json" \
    -n "pulled, by reference" "$run --net host --rootfs $ref -- /bin/true" \
    -n "pulled, by digest" "$run --net host --rootfs $digest -- /bin/true" \
    -n "pulled, by reference, --ephemeral" "$run --net host --ephemeral --rootfs $ref -- /bin/true" \
    -n "directory, --overlay DIR" "$run --net host --overlay $work/overlay --rootfs $root -- /bin/true" \
    -n "directory, --ephemeral" "$run --net host --ephemeral --rootfs $root -- /bin/true" \
    -n "directory" "$run --net host --rootfs $root -- /bin/true" >/dev/null 2>&1
python3 - "$work/out/breakdown.json" <<'PY'
import json, sys
r = {x["command"]: 1000 * x["median"] for x in json.load(open(sys.argv[1]))["results"]}
for name, ms in r.items():
    print(f"{name:36} {ms:.3f} ms  {ms - r['directory']:+.3f} ms")
PY
