#!/usr/bin/env bash
# Container start time (docs/benchmarks.md, "Runner"), all measured in ONE hyperfine run as an
# unprivileged user with a fixture range bind-mounted over /etc/subuid and /etc/subgid in a private
# mount namespace (the machine's files are never edited):
#   unshare-run   unshare-run --rootfs R -- /bin/true                (full map; warm: joins the holder
#                 that the warm-up runs left, so no helper runs)
#   cold          unshare-run --holder-idle 0 --rootfs R -- /bin/true (full map through our helpers)
#   unshare       unshare --map-auto --map-root-user --fork --pid --mount --mount-proc --root=R /bin/true
#                 (util-linux with shadow's helpers, first subordinate block only)
#   bwrap         bwrap --unshare-all --share-net --uid 0 --gid 0 --bind R / --proc /proc --dev /dev /bin/true
#                 (single uid)
# R is a busybox root filesystem. Targets: unshare-run <= 0.5x unshare and <= 0.75x bwrap.
# Run as root: bench/runner.sh    Environment: RUNS (default 300), WARMUP (default 30); STATIC=1 adds
# "static": the same source linked statically against glibc; MUSL=1 adds "musl": the same source
# linked statically against musl (scripts/build-musl.sh; needs Rust's musl target). Neither is what
# the packages ship (see docs/benchmarks.md); each is installed the same way and measured warm.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
RUNS=${RUNS:-300}
WARMUP=${WARMUP:-30}
. bench/common.sh
packages=(hyperfine bubblewrap uidmap busybox-static util-linux python3)
[ "${MUSL:-}" = 1 ] && packages+=(musl-tools)
bench_setup "${packages[@]}"
root="$work/rootfs"
mkdir -p "$root/bin" "$root/proc" "$root/dev" "$root/sys" "$root/tmp" "$root/etc"
cp "$(command -v busybox)" "$root/bin/busybox"
for a in sh true; do ln -s busybox "$root/bin/$a"; done
chown -R "$USER_NAME:$USER_NAME" "$root"

extra=()
if [ "${STATIC:-}" = 1 ]; then
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --quiet \
        --target x86_64-unknown-linux-gnu --target-dir target/static
    static=target/static/x86_64-unknown-linux-gnu/release/unshare-run
    mkdir -m 755 "$work/static"
    install -m 0755 "$static" "$work/static/unshare-run"
    install -m 4755 "$static" "$work/static/newuidmap"
    ln -s newuidmap "$work/static/newgidmap"
    extra=(-n static "$work/static/unshare-run --rootfs $root -- /bin/true")
fi
if [ "${MUSL:-}" = 1 ]; then
    musl=$(scripts/build-musl.sh)
    mkdir -m 755 "$work/musl"
    install -m 0755 "$musl" "$work/musl/unshare-run"
    install -m 4755 "$musl" "$work/musl/newuidmap"
    ln -s newuidmap "$work/musl/newgidmap"
    extra+=(-n musl "$work/musl/unshare-run --rootfs $root -- /bin/true")
fi
cmd_ours="$work/bin/unshare-run --rootfs $root -- /bin/true"
cmd_cold="$work/bin/unshare-run --holder-idle 0 --rootfs $root -- /bin/true"
cmd_unshare="unshare --map-auto --map-root-user --fork --pid --mount --mount-proc --root=$root /bin/true"
cmd_bwrap="bwrap --unshare-all --share-net --uid 0 --gid 0 --bind $root / --proc /proc --dev /dev /bin/true"
as_user \
    hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$work/out/result.json" \
        -n unshare-run "$cmd_ours" -n cold "$cmd_cold" -n unshare "$cmd_unshare" -n bwrap "$cmd_bwrap" \
        "${extra[@]}"

python3 - "$work/out/result.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
ms = lambda n: 1000 * r[n]["median"]
others = "".join(f", {n} {ms(n):.2f} ms" for n in ("static", "musl") if n in r)
print(f"\nmedians: unshare-run {ms('unshare-run'):.2f} ms (cold {ms('cold'):.2f} ms{others}), unshare {ms('unshare'):.2f} ms, bwrap {ms('bwrap'):.2f} ms")
for ours in [n for n in ("unshare-run", "cold", "static", "musl") if n in r]:
    for peer, target in (("unshare", 0.5), ("bwrap", 0.75)):
        ratio = ms(ours) / ms(peer)
        print(f"{ours} / {peer}: {ratio:.3f} (target <= {target}: {'met' if ratio <= target else 'MISSED'})")
PY
