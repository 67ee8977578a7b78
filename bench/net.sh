#!/usr/bin/env bash
# Networking (docs/benchmarks.md, "Network"), as an unprivileged user with a fixture range in a
# private mount namespace: container start with --net pasta against --net host (hyperfine, one run),
# and a 1 GiB TCP transfer from the host into the container, through a port published by pasta
# against the same transfer with the host's network (each 5 times, alternating).
# Run as root: bench/net.sh     (makes /dev/net/tun 0666, as distributions ship it)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
. bench/common.sh
bench_setup hyperfine passt python3 util-linux
chmod 0666 /dev/net/tun
cat > "$work/sink.py" <<'PY'
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(1)
print("ready", flush=True)
c, _ = s.accept(); n = 0
while True:
    b = c.recv(1 << 20)
    if not b: break
    n += len(b)
print(n, flush=True)
PY
cat > "$work/transfer.py" <<'PY'
# transfer.py RUNNER NET PORT HOSTPORT: start a sink in a container, send 1 GiB, print MB/s.
import subprocess, socket, sys, time
runner, net, port, hostport = sys.argv[1:5]
args = [runner, "--net", net]
if net == "pasta":
    args += ["-p", f"127.0.0.1:{hostport}:{port}"]
args += ["--", "/usr/bin/python3", sys.argv[5], port]
p = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
assert p.stdout.readline() == "ready\n"
total, chunk = 1 << 30, b"\0" * (1 << 20)
deadline = time.time() + 10
while True:
    try:
        s = socket.create_connection(("127.0.0.1", int(hostport)))
        break
    except OSError:
        if time.time() > deadline: raise
        time.sleep(0.01)
start = time.time()
for _ in range(total // len(chunk)):
    s.sendall(chunk)
s.shutdown(socket.SHUT_WR)
got = int(p.stdout.readline())
elapsed = time.time() - start
p.wait(); s.close()
assert got == total, got
print(f"{net} {total / elapsed / 1e6:.0f} MB/s")
PY
chmod 644 "$work"/*.py
r="$work/bin/unshare-run"
echo "# $(date -u '+%Y-%m-%d %H:%M:%S UTC')  $(uname -r)  $(nproc) cpus"
echo "# pasta options: --foreground --quiet --config-net --no-map-gw --dns-forward 169.254.1.1 -T none -U none -t|-u SPEC"
as_user hyperfine -N --warmup 10 --runs "${RUNS:-100}" --export-json "$work/out/start.json" \
    -n host "$r --net host -- /bin/true" -n pasta "$r --net pasta -- /bin/true"
for i in 1 2 3 4 5; do
    as_user python3 "$work/transfer.py" "$r" host 18090 18090 "$work/sink.py"
    as_user python3 "$work/transfer.py" "$r" pasta 8080 18091 "$work/sink.py"
done | tee "$work/out/throughput.txt"
python3 - "$work/out/start.json" "$work/out/throughput.txt" <<'PY'
import json, statistics, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
h, p = 1000 * r["host"]["median"], 1000 * r["pasta"]["median"]
print(f"\nstart: host {h:.2f} ms, pasta {p:.2f} ms, pasta/host {p / h:.2f}")
rates = {}
for line in open(sys.argv[2]):
    net, mbs, _ = line.split()
    rates.setdefault(net, []).append(float(mbs))
mh, mp = statistics.median(rates["host"]), statistics.median(rates["pasta"])
print(f"throughput (median of 5, 1 GiB): host {mh:.0f} MB/s, pasta {mp:.0f} MB/s, pasta/host {mp / mh:.2f}")
PY
