#!/bin/sh
# The one place that knows which files the packages ship, where, and with which modes.
# Both the Debian and the RPM packaging call it; scripts/setup-and-demo.sh installs with it too.
#
#   packaging/stage.sh debian|rpm|local DESTDIR [BINARY] [PREFIX]
#
# debian: /usr/bin/unshare-run 0755, /usr/bin/newuidmap 4755 root, /usr/bin/newgidmap -> newuidmap
#         (Debian's uidmap ships its helpers setuid root in /usr/bin), /usr/bin/getsubids 0755 (a copy
#         of its own: never a link to the setuid file), /etc/apparmor.d/unshare-run.
# rpm:    /usr/bin/unshare-run 0755, /usr/libexec/unshare-run/newuidmap and newgidmap as separate
#         0755 copies that get cap_setuid=ep / cap_setgid=ep from the spec's %caps (shadow-utils owns
#         /usr/bin/newuidmap on Fedora; a symlink cannot carry a different capability), and
#         /usr/libexec/unshare-run/getsubids 0755 (shadow-utils-subid owns /usr/bin/getsubids). Their
#         man pages are unshare-run-newuidmap.1, unshare-run-newgidmap.1 and unshare-run-getsubids.1:
#         shadow-utils and shadow-utils-subid own newuidmap.1, newgidmap.1 and getsubids.1 there.
# local:  like debian, under PREFIX (default /usr/local).
# All: man pages (gzipped) and bash/zsh/fish completions. BINARY defaults to target/release/unshare-run.
# RUNNER_BINARY (default BINARY): the build installed as unshare-run; the helpers are always BINARY
# (scripts/runner-binary.sh chooses: the musl build when there is one, see README).
# Modes that need root (owner root, setuid, capabilities) are applied only when run as root; the
# package tools apply them from their own file lists otherwise.
set -eu
layout=${1:?usage: packaging/stage.sh debian|rpm|local DESTDIR [BINARY] [PREFIX]}
dest=${2:?usage: packaging/stage.sh debian|rpm|local DESTDIR [BINARY] [PREFIX]}
src=$(cd "$(dirname "$0")/.." && pwd)
bin=${3:-$src/target/release/unshare-run}
prefix=/usr
[ "$layout" = local ] && prefix=${4:-/usr/local}
runner=${RUNNER_BINARY:-$bin}
for b in "$bin" "$runner"; do
    [ -x "$b" ] || { echo "stage.sh: $b missing: cargo build --release first" >&2; exit 1; }
done
as_root=false
[ "$(id -u)" = 0 ] && as_root=true

install_file() { # mode source target
    install -D -m "$1" "$2" "$dest$3"
    if $as_root; then chown root:root "$dest$3"; fi
}

install_file 0755 "$runner" "$prefix/bin/unshare-run"
case "$layout" in
debian | local)
    install_file 0755 "$bin" "$prefix/bin/newuidmap"
    # chmod after chown: chown clears the setuid bit.
    if $as_root; then chmod 4755 "$dest$prefix/bin/newuidmap"; fi
    ln -sfn newuidmap "$dest$prefix/bin/newgidmap"
    install_file 0755 "$bin" "$prefix/bin/getsubids"
    # Ubuntu 23.10+ allow unprivileged user namespaces only to profiles with the userns rule.
    if [ "$layout" = debian ]; then
        install_file 0644 "$src/etc/apparmor.d/unshare-run" /etc/apparmor.d/unshare-run
    fi
    ;;
rpm)
    install_file 0755 "$bin" "$prefix/libexec/unshare-run/newuidmap"
    install_file 0755 "$bin" "$prefix/libexec/unshare-run/newgidmap"
    install_file 0755 "$bin" "$prefix/libexec/unshare-run/getsubids"
    ;;
*)
    echo "stage.sh: unknown layout $layout (debian, rpm or local)" >&2
    exit 1
    ;;
esac

for path in "$src"/man/*.1; do
    page=$(basename "$path" .1)
    name=$page
    if [ "$layout" = rpm ]; then
        case $page in newuidmap | newgidmap | getsubids) name=unshare-run-$page ;; esac
    fi
    install -d -m 0755 "$dest$prefix/share/man/man1"
    gzip -9n < "$src/man/$page.1" > "$dest$prefix/share/man/man1/$name.1.gz"
    chmod 0644 "$dest$prefix/share/man/man1/$name.1.gz"
done
install_file 0644 "$src/completions/unshare-run.bash" "$prefix/share/bash-completion/completions/unshare-run"
# Debian's zsh reads vendor-completions; Fedora's (and a local install's) site-functions.
zsh_dir=site-functions
[ "$layout" = debian ] && zsh_dir=vendor-completions
install_file 0644 "$src/completions/_unshare-run" "$prefix/share/zsh/$zsh_dir/_unshare-run"
install_file 0644 "$src/completions/unshare-run.fish" "$prefix/share/fish/vendor_completions.d/unshare-run.fish"
