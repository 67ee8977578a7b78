#!/bin/bash
# Builds the RPM from this checkout: packaging/build-rpm.sh [OUTDIR]   (default OUTDIR: target/rpm)
# Needs rpmbuild (Debian: apt-get install rpm) and Rust >= 1.88 in PATH.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$src/target/rpm}
export CARGO_TARGET_DIR="$src/target/deb-build"
(cd "$src" && cargo build --release --locked)
# unshare-run: the musl build when there is one (README, "Why the runner is linked against musl").
runner=$("$src/scripts/runner-binary.sh" "$CARGO_TARGET_DIR/release/unshare-run")
top=$(mktemp -d /tmp/unshare-run-rpm.XXXXXX)
trap 'rm -rf "$top"' EXIT
rpmbuild -bb --nodeps \
    --define "_topdir $top" \
    --define "srcdir $src" \
    --define "binary $CARGO_TARGET_DIR/release/unshare-run" \
    --define "runner_binary $runner" \
    "$src/packaging/rpm/unshare-run.spec"
mkdir -p "$out"
mv "$top"/RPMS/*/*.rpm "$out"/
ls -l "$out"/*.rpm
