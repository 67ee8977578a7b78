#!/usr/bin/env bash
# Builds unshare-run, installs it with the setuid helpers under $PREFIX (default /usr/local), and runs
# containers as an unprivileged user with the full subordinate map: one on the host's files that gives
# a file to uid 1000, and a Debian bookworm one (debootstrap's minbase, made once and cached) that
# apt-installs and runs `hello`.
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

# A Debian root filesystem, as a tarball that unshare-run imports into the user's image store in the
# user's mapped namespace, every owner kept. Made once with debootstrap (about a minute), then cached;
# the test suite's copy serves if it is there.
cache=/var/cache/unshare-run-demo
tarball=$cache/bookworm-minbase.tar
if [ -f /var/cache/unshare-run-tests/bookworm-minbase.tar ] && [ ! -f "$tarball" ]; then
    install -D -m 0644 /var/cache/unshare-run-tests/bookworm-minbase.tar "$tarball"
fi
if [ ! -f "$tarball" ]; then
    command -v debootstrap >/dev/null || { apt-get update -qq; apt-get install -y -qq debootstrap >/dev/null; }
    echo "== debootstrap --variant=minbase bookworm (once; cached in $cache)"
    install -d -m 0755 "$cache"
    work=$(mktemp -d "$cache/make.XXXXXX")
    debootstrap --variant=minbase bookworm "$work/root" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >/dev/null
    # Device nodes stay out: nobody can create them in a user namespace, and containers get a /dev.
    tar --numeric-owner --exclude='./dev/*' -C "$work/root" -cf "$work/rootfs.tar" .
    chmod 0644 "$work/rootfs.tar"
    mv "$work/rootfs.tar" "$tarball"
    rm -rf "$work"
fi

# As the user: a container on the host filesystem with every range of the user mapped; inside, a file
# is given to uid 1000, which only a full map allows. Then the Debian one: apt drops to its _apt user
# and dpkg gives files to root and others, which only a full map allows (--ephemeral: the stored image
# stays as it was, so the demo can run again).
demo='set -e
echo "outside: $(id)"
unshare-run --tmpfs /mnt -- sh -c "echo \"inside:  \$(id)\"; echo uid_map:; cat /proc/self/uid_map; echo gid_map:; cat /proc/self/gid_map; touch /mnt/f; chown 1000:1000 /mnt/f; echo \"chown 1000:1000 inside: \$(stat -c %u:%g /mnt/f)\""
echo "== Debian bookworm: apt-get install hello"
unshare-run --rootfs "$1" --ephemeral -- sh -c "apt-get update -qq && apt-get install -y -qq hello >/dev/null && hello"'
home=$(getent passwd "$user" | cut -d: -f6)
run_as_user=(setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups -- env HOME="$home" PATH="$PREFIX/bin:/usr/bin:/bin" sh -c "$demo" demo "$tarball")
echo "== demo"
if [ -n "$fixture" ]; then
    unshare --mount --propagation private -- sh -c \
        "mount --bind $fixture/subid /etc/subuid && mount --bind $fixture/subid /etc/subgid && exec \"\$@\"" sh "${run_as_user[@]}"
else
    "${run_as_user[@]}"
fi
echo "== done: unshare-run ran containers with the full map, written by newuidmap/newgidmap from $PREFIX/bin;"
echo "   the Debian image is in $user's store (unshare-run images)."
