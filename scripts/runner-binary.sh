#!/usr/bin/env bash
# Prints which build to install as unshare-run:
#   scripts/runner-binary.sh GLIBC_BINARY
# The musl build (scripts/build-musl.sh) when it can be made: it starts a container ~0.5 ms faster,
# because glibc probes the CPU at every program start (README, "Why the runner is linked against
# musl"). Without its prerequisites (build-musl.sh says which), GLIBC_BINARY, with a warning; a musl
# build that fails is an error, never a silent fallback. The setuid helpers are always the glibc build.
# Says on stderr which build it chose. RUNNER_LIBC=musl makes a missing musl build an error, RUNNER_LIBC=glibc
# skips it. Used by scripts/setup-and-demo.sh, the Debian and RPM packaging and tests/run.
set -euo pipefail
glibc=${1:?usage: scripts/runner-binary.sh GLIBC_BINARY}
here=$(dirname "$0")
case "${RUNNER_LIBC:-auto}" in
glibc)
    echo "runner-binary: unshare-run is the glibc build (RUNNER_LIBC=glibc)" >&2
    echo "$glibc"
    ;;
musl)
    "$here/build-musl.sh"
    echo "runner-binary: unshare-run is the musl build" >&2
    ;;
auto)
    if musl=$("$here/build-musl.sh"); then
        echo "runner-binary: unshare-run is the musl build" >&2
        echo "$musl"
    else
        status=$?
        [ "$status" = 2 ] || exit "$status"
        echo "runner-binary: unshare-run will be the glibc build, which starts containers ~0.5 ms slower" \
            "(RUNNER_LIBC=glibc to choose it without this warning)" >&2
        echo "$glibc"
    fi
    ;;
*)
    echo "runner-binary: RUNNER_LIBC must be auto, musl or glibc, not ${RUNNER_LIBC}" >&2
    exit 1
    ;;
esac
