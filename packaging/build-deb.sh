#!/bin/bash
# Builds the Debian package from the tracked files of this checkout:
#   packaging/build-deb.sh [OUTDIR]        (default OUTDIR: target/debian)
# Needs dpkg-dev, debhelper and fakeroot (apt-get install dpkg-dev debhelper fakeroot) and Rust >= 1.88
# in PATH (build dependencies are not checked: Debian 12's own rustc is too old).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$src/target/debian}
version=$(dpkg-parsechangelog -l "$src/packaging/debian/changelog" -S Version)
work=$(mktemp -d /tmp/unshare-run-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
tree="$work/unshare-run-$version"
mkdir -p "$tree"
(cd "$src" && git ls-files -z | xargs -0 cp --parents -t "$tree")
cp -r "$src/packaging/debian" "$tree/debian"
# Keep compiled dependencies between builds.
export CARGO_TARGET_DIR="$src/target/deb-build"
(cd "$tree" && dpkg-buildpackage -us -uc -b -d)
mkdir -p "$out"
mv "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$out"/
ls -l "$out"/*.deb
