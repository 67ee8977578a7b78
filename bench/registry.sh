# Sourced by the pull benchmarks after bench/common.sh's bench_setup (which must have installed
# docker-registry, skopeo, openssl and python3). Everything lives in $work and runs as the bench user,
# so bench_setup's exit trap (pkill -u, rm -rf $work) ends and removes it all.
#
# bench_home: makes $work/home (the bench user's home for these benchmarks, instead of as_user's
#   HOME=/tmp), $work/run (its XDG_RUNTIME_DIR) and $work/tmp (its TMPDIR), and exports HOME-derived
#   XDG_DATA_HOME, XDG_CONFIG_HOME, XDG_RUNTIME_DIR and TMPDIR so that as_user's commands (hyperfine's
#   too) inherit them.
# as_bench CMD...: as_user CMD with HOME=$work/home.
# start_registry: Debian's docker-registry (distribution 2.8) on a free port of 127.0.0.1 over TLS,
#   with a CA and a leaf certificate (127.0.0.1, localhost) made here by openssl, no authentication,
#   storage in $work/registry; sets registry (127.0.0.1:PORT); the CA goes into the bench user's
#   ~/.config/containers/certs.d/127.0.0.1:PORT/ca.crt, where podman and unshare-run both look.
# oci_layout TARBALL DIR TAG: an OCI image layout in DIR with one image, TAG, whose one layer is
#   TARBALL (uncompressed), Env PATH and LANG=C.UTF-8, Cmd bash.
# push_layout DIR TAG NAME:TAG: skopeo copy oci:DIR:TAG docker://$registry/NAME:TAG, the layer
#   compressed with gzip (as the tests push), as the bench user with a blob-info cache of its own.

bench_home() {
    home="$work/home"
    install -d -m 0755 -o "$USER_NAME" -g "$USER_NAME" "$home" "$home/.config" "$home/.local" \
        "$home/.local/share" "$work/tmp"
    install -d -m 0700 -o "$USER_NAME" -g "$USER_NAME" "$work/run"
    export XDG_DATA_HOME="$home/.local/share" XDG_CONFIG_HOME="$home/.config" \
        XDG_RUNTIME_DIR="$work/run" TMPDIR="$work/tmp"
    unset DBUS_SESSION_BUS_ADDRESS
}

as_bench() {
    as_user env HOME="$home" "$@"
}

start_registry() {
    local dir="$work/registry" port attempt
    install -d -m 0755 -o "$USER_NAME" -g "$USER_NAME" "$dir" "$dir/storage" "$dir/certs"
    (
        cd "$dir"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
            -keyout ca.key -out certs/ca.crt -subj "/CN=unshare-run bench registry CA" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout leaf.key -out leaf.csr -subj "/CN=127.0.0.1" 2>/dev/null
        printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=critical,CA:FALSE" \
            "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" > leaf.ext
        openssl x509 -req -in leaf.csr -CA certs/ca.crt -CAkey ca.key -CAcreateserial -days 2 \
            -extfile leaf.ext -out leaf.pem 2>/dev/null
        cat leaf.pem certs/ca.crt > leaf.crt
        rm -f ca.key leaf.csr leaf.ext leaf.pem certs/ca.srl ca.srl
        chown "$USER_NAME:$USER_NAME" leaf.key leaf.crt
        chmod 0600 leaf.key
    )
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        cat > "$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  formatter: text
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/storage
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: $(openssl rand -hex 16)
  tls:
    certificate: $dir/leaf.crt
    key: $dir/leaf.key
health:
  storagedriver:
    enabled: false
EOF
        as_user docker-registry serve "$dir/config.yml" > "$dir/registry.log" 2>&1 &
        registry_pid=$!
        local waited=0
        while ! curl -s -o /dev/null --cacert "$dir/certs/ca.crt" "https://127.0.0.1:$port/v2/"; do
            if ! kill -0 "$registry_pid" 2>/dev/null; then break; fi
            sleep 0.05
            waited=$((waited + 1))
            [ "$waited" -lt 600 ] || { echo "$0: docker-registry did not answer on $port" >&2; cat "$dir/registry.log" >&2; exit 1; }
        done
        if kill -0 "$registry_pid" 2>/dev/null; then
            registry="127.0.0.1:$port"
            local certs="$home/.config/containers/certs.d/$registry"
            install -d -m 0755 -o "$USER_NAME" -g "$USER_NAME" "$home/.config/containers" \
                "$home/.config/containers/certs.d" "$certs"
            install -m 0644 -o "$USER_NAME" -g "$USER_NAME" "$dir/certs/ca.crt" "$certs/ca.crt"
            return 0
        fi
        grep -q "address already in use" "$dir/registry.log" || { cat "$dir/registry.log" >&2; exit 1; }
    done
    echo "$0: docker-registry found no free port in 10 attempts" >&2
    exit 1
}

oci_layout() {
    python3 - "$@" <<'PY'
import hashlib, json, os, sys
tarball, layout, tag = sys.argv[1:4]
blobs = os.path.join(layout, "blobs", "sha256")
os.makedirs(blobs)

def put(data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}

h, size, part = hashlib.sha256(), 0, os.path.join(blobs, "layer.partial")
with open(tarball, "rb") as src, open(part, "wb") as dst:
    while chunk := src.read(1 << 20):
        h.update(chunk)
        dst.write(chunk)
        size += len(chunk)
os.rename(part, os.path.join(blobs, h.hexdigest()))
layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + h.hexdigest(), "size": size}
config = {
    "architecture": "amd64",
    "os": "linux",
    "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"],
               "Cmd": ["bash"]},
    "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
    "history": [{"created_by": "bench/registry.sh oci_layout " + os.path.basename(tarball)}],
}
config_desc = put(json.dumps(config).encode()) | {"mediaType": "application/vnd.oci.image.config.v1+json"}
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config_desc, "layers": [layer]}
manifest_desc = put(json.dumps(manifest).encode()) | {"mediaType": manifest["mediaType"]}
manifest_desc["annotations"] = {"org.opencontainers.image.ref.name": tag}
with open(os.path.join(layout, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [manifest_desc]}, f)
with open(os.path.join(layout, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
PY
    chmod -R a+rX "$2"
}

push_layout() {
    install -d -m 0755 -o "$USER_NAME" -g "$USER_NAME" "$work/push-data"
    as_bench env XDG_DATA_HOME="$work/push-data" skopeo --insecure-policy copy --quiet --retry-times 0 \
        --dest-cert-dir "$work/registry/certs" --dest-no-creds --dest-compress-format gzip \
        "oci:$1:$2" "docker://$registry/$3"
}
