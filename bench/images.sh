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
CACHE=/var/cache/unshare-run-tests

. bench/common.sh
bench_setup hyperfine uidmap debootstrap zstd xz-utils gzip time python3

if [ ! -f "$CACHE/bookworm-minbase.tar" ]; then
    mkdir -p "$CACHE"
    rm -rf "$CACHE/bookworm.tmp"
    debootstrap --variant=minbase bookworm "$CACHE/bookworm.tmp" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >/dev/null
    tar --numeric-owner --exclude='./dev/*' -cf "$CACHE/bookworm-minbase.tar.partial" -C "$CACHE/bookworm.tmp" .
    mv "$CACHE/bookworm-minbase.tar.partial" "$CACHE/bookworm-minbase.tar"
    rm -rf "$CACHE/bookworm.tmp"
fi

mkdir -m 755 "$work/in"
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

run="$work/bin/unshare-run"
clean="$run -- rm -rf $work/out/store $work/out/x && mkdir $work/out/x && sync"
args=()
for f in bookworm.tar bookworm.tar.zst bookworm.tar.gz bookworm.tar.xz; do
    args+=(--prepare "$clean" -n "import $f" "$run images import $work/in/$f")
    args+=(--prepare "$clean" -n "tar $f" "$run -- tar -xpf $work/in/$f --numeric-owner -C $work/out/x")
done
as_user env XDG_DATA_HOME="$work/out/store" hyperfine --warmup 1 --runs "$RUNS" --export-json "$work/out/result.json" "${args[@]}"

echo
for f in bookworm.tar big.tar; do
    as_user env XDG_DATA_HOME="$work/out/store" sh -c "$clean"
    as_user env XDG_DATA_HOME="$work/out/store" /usr/bin/time -f "%M" -o "$work/out/rss-$f" "$run" images import "$work/in/$f" >/dev/null
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
