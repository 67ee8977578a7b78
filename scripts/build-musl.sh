#!/usr/bin/env bash
# Builds unshare-run statically against musl: ${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-musl/
# release/unshare-run, and prints that path. The packages and scripts/setup-and-demo.sh install this
# build as unshare-run when it can be made, and the glibc build as the setuid helpers (README, "Why the
# runner is linked against musl"); the tests run it as unshare-run (tests/run). Needs Rust's musl
# target (rustup target add x86_64-unknown-linux-musl) and, for the C code of the zstd and xz crates,
# musl-gcc (Debian: musl-tools); without them it says what is missing and exits 2 (a failed build
# exits with cargo's status).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
target=x86_64-unknown-linux-musl
if ! rustc --print target-libdir --target "$target" >/dev/null 2>&1 \
    || [ ! -d "$(rustc --print target-libdir --target "$target")" ]; then
    echo "build-musl: Rust's $target target is missing: rustup target add $target" >&2
    exit 2
fi
command -v musl-gcc >/dev/null || { echo "build-musl: musl-gcc is missing: apt-get install musl-tools" >&2; exit 2; }
# cc-rs looks for x86_64-linux-musl-gcc; Debian names the wrapper musl-gcc.
CC_x86_64_unknown_linux_musl=musl-gcc cargo build --release --locked --quiet --target "$target" >&2
echo "${CARGO_TARGET_DIR:-$PWD/target}/$target/release/unshare-run"
