#!/usr/bin/env bash
# Image import (docs/benchmarks.md, "Images"), measured in ONE hyperfine run as an unprivileged user
# with a fixture range bind-mounted over /etc/subuid and /etc/subgid in a private mount namespace:
#   import   unshare-run images import FILE        (our extractor, into an empty store)
#   tar      unshare-run -- tar -xpf FILE --numeric-owner -C DIR   (GNU tar under the same mapping)
# for the Debian bookworm minbase tarball, plain and compressed with zstd, gzip and xz. Before every
# run the previous result is removed and the disk is synced, so that each run starts alike.
# Target: import <= 1.1x tar. Then the peak memory (max RSS) of an import of the tarball and of the
# same tarball with a 512 MiB file appended: a streaming import needs the same memory for both.
# Run as root: bench/images.sh    Environment: RUNS (default 8).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
RUNS=${RUNS:-8}
USER_NAME=urt-bench
CACHE=/var/cache/unshare-run-tests

[ "$(id -u)" = 0 ] || { echo "bench/images.sh: run as root" >&2; exit 1; }
missing=()
for p in hyperfine uidmap debootstrap zstd xz-utils gzip time python3; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ -n "${missing[*]:-}" ]; then apt-get update -qq; apt-get install -y -qq "${missing[@]}" >/dev/null; fi
id "$USER_NAME" >/dev/null 2>&1 || useradd -m -s /bin/sh -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$USER_NAME"

if [ ! -f "$CACHE/bookworm-minbase.tar" ]; then
    mkdir -p "$CACHE"
    rm -rf "$CACHE/bookworm.tmp"
    debootstrap --variant=minbase bookworm "$CACHE/bookworm.tmp" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >/dev/null
    tar --numeric-owner --exclude='./dev/*' -cf "$CACHE/bookworm-minbase.tar.partial" -C "$CACHE/bookworm.tmp" .
    mv "$CACHE/bookworm-minbase.tar.partial" "$CACHE/bookworm-minbase.tar"
    rm -rf "$CACHE/bookworm.tmp"
fi

cargo build --release --quiet
work=$(mktemp -d /tmp/unshare-run-bench.XXXXXX)
trap 'pkill -KILL -u "$USER_NAME" 2>/dev/null || true; rm -rf "$work" "/tmp/unshare-run-$(id -u "$USER_NAME")"' EXIT
chmod 755 "$work"
mkdir -m 755 "$work/bin" "$work/in"
install -d -m 0755 -o "$USER_NAME" "$work/out"
install -m 0755 target/release/unshare-run "$work/bin/unshare-run"
install -m 4755 target/release/unshare-run "$work/bin/newuidmap"
ln -s newuidmap "$work/bin/newgidmap"
printf '%s:100000:65536\n' "$USER_NAME" > "$work/subid"
chmod 644 "$work/subid"
tarball="$work/in/bookworm.tar"
cp "$CACHE/bookworm-minbase.tar" "$tarball"
zstd -q -T2 -3 "$tarball" -o "$tarball.zst"
gzip -k -6 "$tarball"
xz -T2 -k -3 "$tarball"
head -c 512M /dev/urandom > "$work/in/padding"
cp "$tarball" "$work/in/big.tar"
tar -rf "$work/in/big.tar" -C "$work/in" padding
rm "$work/in/padding"
chmod 644 "$work/in"/*

uid=$(id -u "$USER_NAME")
as_user() {
    unshare --mount --propagation private -- bash -c '
        mount --bind "$1/subid" /etc/subuid && mount --bind "$1/subid" /etc/subgid && shift
        exec setpriv --reuid="$1" --regid="$1" --init-groups -- env HOME=/tmp XDG_DATA_HOME="$2" "${@:3}"' \
        bash "$work" "$uid" "$work/out/store" "$@"
}
run="$work/bin/unshare-run"
clean="$run -- rm -rf $work/out/store $work/out/x && mkdir $work/out/x && sync"
args=()
for f in bookworm.tar bookworm.tar.zst bookworm.tar.gz bookworm.tar.xz; do
    args+=(--prepare "$clean" -n "import $f" "$run images import $work/in/$f")
    args+=(--prepare "$clean" -n "tar $f" "$run -- tar -xpf $work/in/$f --numeric-owner -C $work/out/x")
done
as_user hyperfine --warmup 1 --runs "$RUNS" --export-json "$work/out/result.json" "${args[@]}"

echo
for f in bookworm.tar big.tar; do
    as_user sh -c "$clean"
    as_user /usr/bin/time -f "%M" -o "$work/out/rss-$f" "$run" images import "$work/in/$f" >/dev/null
done
python3 - "$work/out" "$tarball" <<'PY'
import json, os, sys
out, tarball = sys.argv[1], sys.argv[2]
r = {x["command"]: x for x in json.load(open(f"{out}/result.json"))["results"]}
print(f"tarball: {os.path.getsize(tarball) / 2**20:.1f} MiB uncompressed")
for f in ("bookworm.tar", "bookworm.tar.zst", "bookworm.tar.gz", "bookworm.tar.xz"):
    ours, tar = r[f"import {f}"]["median"], r[f"tar {f}"]["median"]
    verdict = "met" if ours / tar <= 1.1 else "MISSED"
    print(f"{f:18} import {ours:.2f} s  tar {tar:.2f} s  ratio {ours / tar:.3f} (target <= 1.1: {verdict})")
small, big = (int(open(f"{out}/rss-{f}").read().split()[-1]) for f in ("bookworm.tar", "big.tar"))
print(f"peak memory: {small / 1024:.1f} MiB for the tarball, {big / 1024:.1f} MiB with 512 MiB more")
PY
