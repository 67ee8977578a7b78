#!/usr/bin/env bash
# Container start time (docs/benchmarks.md, "Runner"), all measured in ONE hyperfine run as an
# unprivileged user with a fixture range bind-mounted over /etc/subuid and /etc/subgid in a private
# mount namespace (the machine's files are never edited):
#   unshare-run   unshare-run --rootfs R -- /bin/true                (full map; warm: joins the holder
#                 that the warm-up runs left, so no helper runs, and its private network, the default).
#                 unshare-run is the build the packages install (scripts/runner-binary.sh: the musl
#                 build when it can be made), beside the glibc helpers; the script says which
#   host-net      the same with --net host (the host's network, as the peers below have it). Target
#                 of the default private network: unshare-run <= 1.3x host-net
#   cold          --net host --holder-idle 0 (full map through our helpers at every start; the host's
#                 network, since without a holder a private network is a pasta per start)
#   glibc         the same as unshare-run (warm) with the glibc build as unshare-run
#   unshare       unshare --map-auto --map-root-user --fork --pid --mount --mount-proc --root=R /bin/true
#                 (util-linux with shadow's helpers, first subordinate block only)
#   bwrap         bwrap --unshare-all --share-net --uid 0 --gid 0 --bind R / --proc /proc --dev /dev /bin/true
#                 (single uid)
#   exec          unshare-run exec bench-exec /bin/true: the same command in a detached container
#                 (-d --name bench-exec --rootfs R -- busybox sleep infinity, started before the run). Target:
#                 exec <= 0.8x unshare-run (the warm start)
# R is a busybox root filesystem. Targets: unshare-run <= 0.5x unshare and <= 0.75x bwrap.
# Run as root: bench/runner.sh    Environment: RUNS (default 300), WARMUP (default 30); STATIC=1 adds
# "static": the same source linked statically against glibc (not shipped; docs/benchmarks.md).
# BASELINE_RUNNER=FILE [BASELINE_HELPER=FILE] add "baseline" and "baseline-cold": another build (e.g.
# of an earlier commit) installed the same way, to compare a change with what it replaces in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
RUNS=${RUNS:-300}
WARMUP=${WARMUP:-30}
. bench/common.sh
bench_setup hyperfine bubblewrap uidmap busybox-static util-linux python3 musl-tools
root=$(busybox_rootfs)

# Installed as the packages install it: unshare-run and, beside it, the glibc helpers.
shipped=$(scripts/runner-binary.sh "$work/bin/unshare-run")
install_as "$work/shipped" "$shipped" "$work/bin/newuidmap"

extra=()
if [ "${STATIC:-}" = 1 ]; then
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --quiet \
        --target x86_64-unknown-linux-gnu --target-dir target/static
    static=target/static/x86_64-unknown-linux-gnu/release/unshare-run
    install_as "$work/static" "$static" "$static"
    extra=(-n static "$work/static/unshare-run --rootfs $root -- /bin/true")
fi
if [ -n "${BASELINE_RUNNER:-}" ]; then
    install_as "$work/baseline" "$BASELINE_RUNNER" "${BASELINE_HELPER:-$BASELINE_RUNNER}"
    extra+=(-n baseline "$work/baseline/unshare-run --rootfs $root -- /bin/true"
        -n baseline-cold "$work/baseline/unshare-run --net host --holder-idle 0 --rootfs $root -- /bin/true")
fi
cmd_ours="$work/shipped/unshare-run --rootfs $root -- /bin/true"
cmd_host_net="$work/shipped/unshare-run --net host --rootfs $root -- /bin/true"
cmd_cold="$work/shipped/unshare-run --net host --holder-idle 0 --rootfs $root -- /bin/true"
cmd_glibc="$work/bin/unshare-run --rootfs $root -- /bin/true"
# The detached container for exec, with a data directory of its own (killed with the user's
# processes at exit).
data="$work/data"
mkdir -p "$data"
chown "$uid" "$data"
as_user env XDG_DATA_HOME="$data" "$work/shipped/unshare-run" -d --name bench-exec --rootfs "$root" \
    -- busybox sleep infinity
cmd_exec="$work/shipped/unshare-run exec bench-exec /bin/true"
cmd_unshare="unshare --map-auto --map-root-user --fork --pid --mount --mount-proc --root=$root /bin/true"
cmd_bwrap="bwrap --unshare-all --share-net --uid 0 --gid 0 --bind $root / --proc /proc --dev /dev /bin/true"
as_user env XDG_DATA_HOME="$data" \
    hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$work/out/result.json" \
        -n unshare-run "$cmd_ours" -n host-net "$cmd_host_net" -n cold "$cmd_cold" -n glibc "$cmd_glibc" \
        -n unshare "$cmd_unshare" -n bwrap "$cmd_bwrap" -n exec "$cmd_exec" "${extra[@]}"
as_user env XDG_DATA_HOME="$data" "$work/shipped/unshare-run" rm -f bench-exec > /dev/null

python3 - "$work/out/result.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
ms = lambda n: 1000 * r[n]["median"]
others = ", ".join(f"{n} {ms(n):.2f} ms" for n in ("host-net", "cold", "glibc", "static") if n in r)
print(f"\nmedians: unshare-run {ms('unshare-run'):.2f} ms ({others}), unshare {ms('unshare'):.2f} ms, bwrap {ms('bwrap'):.2f} ms")
for ours in [n for n in ("unshare-run", "cold", "glibc", "static") if n in r]:
    for peer, target in (("unshare", 0.5), ("bwrap", 0.75)):
        ratio = ms(ours) / ms(peer)
        print(f"{ours} / {peer}: {ratio:.3f} (target <= {target}: {'met' if ratio <= target else 'MISSED'})")
ratio = ms("exec") / ms("unshare-run")
print(f"exec / unshare-run: {ratio:.3f} ({ms('exec'):.2f} ms; target <= 0.8: {'met' if ratio <= 0.8 else 'MISSED'})")
ratio = ms("unshare-run") / ms("host-net")
print(f"unshare-run (private network) / host-net: {ratio:.3f} (target <= 1.3: {'met' if ratio <= 1.3 else 'MISSED'})")
for ours, base in (("unshare-run", "baseline"), ("cold", "baseline-cold")):
    if base in r:
        print(f"{ours} / {base}: {ms(ours) / ms(base):.3f} ({ms(base):.2f} ms)")
PY
