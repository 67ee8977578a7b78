#!/usr/bin/env bash
# Builds unshare-run, installs it with the setuid helpers under $PREFIX (default /usr/local), and runs
# containers as an unprivileged user with the full subordinate map: one on the host's files that gives
# a file to uid 1000, and a Debian bookworm one (docker.io's image, or mmdebstrap's minbase made
# through our helpers where docker.io is not reachable) that apt-installs and runs `hello`.
# Run as root: sudo scripts/setup-and-demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
PREFIX=${PREFIX:-/usr/local}
DEMO_USER=unshare-run-demo

if [ "$(id -u)" != 0 ]; then
    echo "setup-and-demo: run as root (sudo $0): the helpers are installed setuid root" >&2
    exit 1
fi
command -v cargo >/dev/null || { echo "setup-and-demo: install Rust >= 1.88 first (https://rustup.rs)" >&2; exit 1; }
for tool in setpriv unshare; do
    command -v "$tool" >/dev/null || { apt-get update -qq; apt-get install -y -qq util-linux >/dev/null; }
done
# pasta (package passt) connects a --rootfs container's default private network to the outside; it
# needs /dev/net/tun usable by users, the mode distributions ship (some VM images have 0600).
command -v pasta >/dev/null || { apt-get update -qq; apt-get install -y -qq passt >/dev/null; }
if [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
    echo "== /dev/net/tun: mode 0666 (was $(stat -c %a /dev/net/tun)), so that pasta can run for users"
    chmod 0666 /dev/net/tun
fi

echo "== building"
cargo build --release --quiet
bin=target/release/unshare-run
# unshare-run itself: the musl build, which starts containers ~0.5 ms faster (README, "Why the runner
# is linked against musl"); it needs musl-gcc and Rust's musl target. Without them, the glibc build.
command -v musl-gcc >/dev/null || { apt-get update -qq; apt-get install -y -qq musl-tools >/dev/null; } || true
if command -v rustup >/dev/null; then timeout 300 rustup target add x86_64-unknown-linux-musl >/dev/null 2>&1 || true; fi
runner=$(scripts/runner-binary.sh "$bin")

echo "== installing into $PREFIX (packaging/stage.sh: the packages' file list and modes)"
# unshare-run 0755, newuidmap 4755 root, newgidmap a link to it (the applet is chosen by name),
# getsubids 0755 (a file of its own), man pages and shell completions.
RUNNER_BINARY=$runner packaging/stage.sh local / "$bin" "$PREFIX"
ls -l "$PREFIX/bin/unshare-run" "$PREFIX/bin/newuidmap" "$PREFIX/bin/newgidmap" "$PREFIX/bin/getsubids"

# Who shows the demo: the user who ran sudo if they have ranges, otherwise a demo user whose range
# exists only inside a private mount namespace (the machine's /etc/subuid is not edited).
user=${SUDO_USER:-}
fixture=""
if [ -z "$user" ] || [ "$user" = root ] || ! grep -qE "^($user|$(id -u "$user")):" /etc/subuid 2>/dev/null; then
    user=$DEMO_USER
    id "$user" >/dev/null 2>&1 || useradd -m -s /bin/sh -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$user"
    fixture=$(mktemp -d /tmp/unshare-run-demo.XXXXXX)
    chmod 755 "$fixture"
    printf '%s:100000:65536\n' "$user" > "$fixture/subid"
    chmod 644 "$fixture/subid"
    echo "== $user has no ranges in /etc/subuid: using '$user:100000:65536' in a private mount namespace"
    echo "   (for a real user: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 NAME)"
fi
trap '[ -n "$fixture" ] && rm -rf "$fixture"' EXIT

# The Debian container: docker.io's debian:bookworm, pulled into the user's image store, when the
# registry is reachable; otherwise a minbase root filesystem that mmdebstrap makes as the user through
# our helpers (its unshare mode runs newuidmap/newgidmap from PATH: $PREFIX/bin's), made once and kept
# in the user's ~/.cache. Either way unshare-run stores it with every owner kept.
command -v mmdebstrap >/dev/null || { apt-get update -qq; apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null; }
# As the user: a container on the host filesystem with every range of the user mapped; inside, a file
# is given to uid 1000, which only a full map allows. Then the Debian one: apt drops to its _apt user
# and dpkg gives files to root and others, which only a full map allows (--ephemeral: the stored image
# stays as it was, so the demo can run again).
demo='set -e
echo "outside: $(id)"
unshare-run --tmpfs /mnt -- sh -c "echo \"inside:  \$(id)\"; echo uid_map:; cat /proc/self/uid_map; echo gid_map:; cat /proc/self/gid_map; touch /mnt/f; chown 1000:1000 /mnt/f; echo \"chown 1000:1000 inside: \$(stat -c %u:%g /mnt/f)\""
echo "== Debian bookworm"
if timeout 120 unshare-run images pull --quiet docker.io/library/debian:bookworm >/dev/null 2>&1; then
    image=docker.io/library/debian:bookworm
    echo "   from docker.io (unshare-run images pull)"
else
    image=$HOME/.cache/unshare-run-demo/bookworm-minbase.tar
    echo "   docker.io is not reachable: a root filesystem made with mmdebstrap through our helpers"
    if [ ! -f "$image" ]; then
        mkdir -p "$(dirname "$image")"
        echo "   mmdebstrap --mode=unshare --variant=minbase bookworm (once, about a minute; kept in ~/.cache)"
        mmdebstrap --quiet --mode=unshare --variant=minbase bookworm "$image.partial.tar" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
        mv "$image.partial.tar" "$image"
    fi
fi
echo "== apt-get install hello, in --rootfs $image"
unshare-run --rootfs "$image" --ephemeral -- sh -c "apt-get update -qq && apt-get install -y -qq hello >/dev/null && hello"'
home=$(getent passwd "$user" | cut -d: -f6)
run_as_user=(setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups -- env HOME="$home" PATH="$PREFIX/bin:/usr/bin:/bin" sh -c "$demo" demo)
echo "== demo"
if [ -n "$fixture" ]; then
    unshare --mount --propagation private -- sh -c \
        "mount --bind $fixture/subid /etc/subuid && mount --bind $fixture/subid /etc/subgid && exec \"\$@\"" sh "${run_as_user[@]}"
else
    "${run_as_user[@]}"
fi
echo "== done: unshare-run ran containers with the full map, written by newuidmap/newgidmap from $PREFIX/bin;"
echo "   the Debian image is in $user's store (unshare-run images)."
