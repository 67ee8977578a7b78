#!/usr/bin/env bash
# Builds unshare-run statically against musl instead of glibc: target/musl/x86_64-unknown-linux-musl/
# release/unshare-run. Not what the packages ship (they link glibc dynamically); the benchmarks measure
# it (MUSL=1 bench/runner.sh, HELPER=... bench/helpers.sh) and the test suite can run against it
# (UNSHARE_RUN_TEST_BINARY=...). See docs/benchmarks.md, "A musl build", for why it exists and what
# it lacks (NSS beyond /etc/passwd and nscd).
# Needs Rust's musl target (rustup target add x86_64-unknown-linux-musl) and, for the C code of the
# zstd and xz crates, Debian's musl-tools (musl-gcc). Prints the path of the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
target=x86_64-unknown-linux-musl
if ! rustc --print target-libdir --target "$target" >/dev/null 2>&1 \
    || [ ! -d "$(rustc --print target-libdir --target "$target")" ]; then
    echo "build-musl: Rust's $target target is missing: rustup target add $target" >&2
    exit 1
fi
command -v musl-gcc >/dev/null || { echo "build-musl: musl-gcc is missing: apt-get install musl-tools" >&2; exit 1; }
# cc-rs looks for x86_64-linux-musl-gcc; Debian names the wrapper musl-gcc.
CC_x86_64_unknown_linux_musl=musl-gcc cargo build --release --quiet --target "$target" --target-dir target/musl
echo "target/musl/$target/release/unshare-run"
