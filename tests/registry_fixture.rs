//! The local registry fixture (tests/support/src/registry.rs) works, proved with skopeo and curl
//! rather than unshare-run's own pull: token authentication with anonymous pulls of public
//! repositories and credentials for private ones, blobs redirected to a server that refuses
//! Authorization and serves ranges, the request counts, an index of two platforms, Basic
//! authentication, and that nothing is left once a registry is dropped.

use std::fs;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use unshare_run_test_support::oci::{self, sha256_digest};
use unshare_run_test_support::registry::*;
use unshare_run_test_support::*;

fn token_and_redirect() -> LocalRegistry {
    LocalRegistry::start(RegistryOptions {
        token_auth: true,
        redirect_blobs: true,
        ..RegistryOptions::default()
    })
}

/// skopeo with the registry's CA (`--cert-dir` for inspect, `--src-cert-dir` for copy).
fn skopeo(registry: &LocalRegistry, verb: &str, args: &[&str]) -> Output {
    let cert_flag = if verb == "copy" {
        "--src-cert-dir"
    } else {
        "--cert-dir"
    };
    let scratch = TempDir::new("skopeo-tmp");
    Command::new("skopeo")
        .env("TMPDIR", scratch.path())
        .args(["--insecure-policy", verb, "--retry-times", "0", cert_flag])
        .arg(registry.cert_dir())
        .args(args)
        .output()
        .unwrap()
}

fn creds(registry: &LocalRegistry) -> String {
    let (user, password) = registry.credentials();
    format!("{user}:{password}")
}

fn json_of(out: &Output) -> Value {
    out.assert_code(0);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout_text()))
}

/// An HTTP exchange made with curl: status, headers (lower-case names) and body.
struct Exchange {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Exchange {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request with curl (no redirects followed), trusting the registry's CA.
fn curl(registry: &LocalRegistry, url: &str, args: &[&str]) -> Exchange {
    let dir = TempDir::new("curl");
    let headers = dir.path().join("headers");
    let body = dir.path().join("body");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "60", "--cacert"])
        .arg(registry.ca_pem())
        .arg("-D")
        .arg(&headers)
        .arg("-o")
        .arg(&body)
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success() || out.status.code() == Some(18),
        "curl {url}: {}",
        out.stderr_text()
    );
    let headers = fs::read_to_string(&headers).unwrap();
    let mut lines = headers.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {headers}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Exchange {
        status,
        headers,
        body: fs::read(&body).unwrap_or_default(),
    }
}

/// A token from the token server for `scope`, anonymously or with `credentials` ("user:password").
fn token(registry: &LocalRegistry, scope: &str, credentials: Option<&str>) -> String {
    let url = format!(
        "{}?service={SERVICE}&scope={scope}",
        registry.token_realm().unwrap()
    );
    let mut args = vec![];
    if let Some(c) = credentials {
        args.extend(["-u", c]);
    }
    let reply = curl(registry, &url, &args);
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let value: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(value["token"], value["access_token"]);
    assert_eq!(value["expires_in"], 300);
    value["token"].as_str().unwrap().to_string()
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

/// The blobs an `oci:` layout directory holds.
fn layout_has_blob(dir: &Path, digest: &str) -> bool {
    dir.join("blobs/sha256")
        .join(oci::digest_hex(digest))
        .is_file()
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn token_auth_redirected_blobs_and_a_private_repository() {
    require_root();
    let made = Instant::now();
    let debian = oci::debian_image();
    let layered = oci::debian_layered_image();
    eprintln!("Debian archives ready in {:?}", made.elapsed());
    assert_eq!(debian.diff_ids.len(), 1);
    assert_eq!(layered.diff_ids.len(), 2);
    assert_eq!(layered.diff_ids[0], debian.diff_ids[0]);

    let started = Instant::now();
    let registry = token_and_redirect();
    let start_time = started.elapsed();
    let base = registry.push(&debian.path, "debian:bookworm", Compression::Gzip);
    let first_push = started.elapsed() - start_time;
    let top = registry.push(&layered.path, "private/layered:1", Compression::Gzip);
    eprintln!(
        "registry started in {start_time:?}; Debian image pushed in {first_push:?}; layered image in {:?}",
        started.elapsed() - start_time - first_push
    );

    // The pushes: OCI manifests, gzip layers, the base layer one blob shared by both images, and
    // every token asked for with the credentials.
    assert_eq!(base.media_type, oci::MEDIA_TYPE_MANIFEST);
    assert_eq!(base.layers.len(), 1);
    assert_eq!(top.layers.len(), 2);
    assert_eq!(top.layers[0], base.layers[0]);
    for layer in base.layers.iter().chain(&top.layers) {
        assert_eq!(layer.media_type, oci::MEDIA_TYPE_LAYER_GZIP);
        assert_eq!(
            fs::metadata(registry.blob_path(&layer.digest))
                .unwrap()
                .len(),
            layer.size
        );
    }
    let base_layer = base.layers[0].digest.clone();
    let config = base.config.digest.clone();
    let (user, _) = registry.credentials();
    let pushes = registry.token_log();
    assert!(!pushes.is_empty());
    for request in &pushes {
        assert_eq!(request.account.as_deref(), Some(user), "{request:?}");
        assert_eq!(request.status, 200, "{request:?}");
    }
    assert!(
        pushes.iter().any(|r| r
            .granted
            .contains(&"repository:private/layered:pull,push".to_string())),
        "{pushes:?}"
    );
    registry.reset_counts();
    assert_eq!(
        (registry.token_requests(), registry.blob_requests_total()),
        (0, 0)
    );

    // Anonymous: the public image's manifest is served, with a token that grants pull only.
    let inspected = json_of(&skopeo(
        &registry,
        "inspect",
        &[
            "--no-creds",
            &format!("docker://{}", registry.reference("debian:bookworm")),
        ],
    ));
    assert_eq!(inspected["Digest"], base.digest.as_str());
    assert_eq!(inspected["Layers"], serde_json::json!([base_layer]));
    assert_eq!(inspected["Architecture"], "amd64");
    let anonymous = registry.token_log();
    assert!(
        anonymous.iter().any(|r| r.account.is_none()
            && r.scopes == ["repository:debian:pull"]
            && r.granted == ["repository:debian:pull"]),
        "{anonymous:?}"
    );
    assert!(anonymous.iter().all(|r| r.account.is_none()));

    // The private image: refused anonymously, served with the credentials, refused with wrong
    // ones (the token server answers 401).
    let private = format!("docker://{}", registry.reference("private/layered:1"));
    let before = registry.token_requests();
    let refused = skopeo(&registry, "inspect", &["--no-creds", &private]);
    assert_ne!(refused.code(), 0);
    let message = refused.stderr_text().to_lowercase();
    assert!(
        message.contains("unauthorized") || message.contains("authentication required"),
        "{message}"
    );
    let log = registry.token_log();
    assert!(log.len() > before);
    assert!(
        log[before..]
            .iter()
            .any(|r| r.account.is_none() && r.status == 200 && r.granted.is_empty()),
        "{log:?}"
    );
    let inspected = json_of(&skopeo(
        &registry,
        "inspect",
        &["--creds", &creds(&registry), &private],
    ));
    assert_eq!(inspected["Digest"], top.digest.as_str());
    assert!(
        inspected["Env"]
            .as_array()
            .unwrap()
            .contains(&Value::from("URT_LAYERED=yes")),
        "{inspected}"
    );
    let wrong = skopeo(
        &registry,
        "inspect",
        &["--creds", &format!("{user}:wrong"), &private],
    );
    assert_ne!(wrong.code(), 0);
    assert!(registry.token_log().iter().any(|r| r.status == 401));

    // Copies fetch every blob once, from the blob server, never with Authorization.
    let copies = TempDir::new("copies");
    registry.reset_counts();
    let public_copy = copies.path().join("public");
    skopeo(
        &registry,
        "copy",
        &[
            "--src-no-creds",
            &format!("docker://{}", registry.reference("debian:bookworm")),
            &format!("oci:{}", public_copy.display()),
        ],
    )
    .assert_code(0);
    assert_eq!(registry.blob_requests(&base_layer), 1);
    assert_eq!(registry.blob_requests(&config), 1);
    assert_eq!(registry.blob_requests_total(), 2);
    assert!(layout_has_blob(&public_copy, &base_layer));
    assert!(layout_has_blob(&public_copy, &config));
    let private_copy = copies.path().join("private");
    skopeo(
        &registry,
        "copy",
        &[
            "--src-creds",
            &creds(&registry),
            &private,
            &format!("oci:{}", private_copy.display()),
        ],
    )
    .assert_code(0);
    assert_eq!(registry.blob_requests(&base_layer), 2);
    assert_eq!(registry.blob_requests(&top.layers[1].digest), 1);
    assert!(layout_has_blob(&private_copy, &top.layers[1].digest));
    let log = registry.blob_log();
    assert!(
        log.iter().all(|r| !r.authorization && r.status == 200),
        "{log:?}"
    );

    // Raw requests. Without a token: 401 and the Bearer challenge.
    let v2 = format!("https://{}/v2", registry.address());
    let challenge = curl(&registry, &format!("{v2}/debian/manifests/bookworm"), &[]);
    assert_eq!(challenge.status, 401);
    let www = challenge.header("www-authenticate").unwrap();
    assert!(
        www.starts_with("Bearer ")
            && www.contains(&format!("realm=\"{}\"", registry.token_realm().unwrap()))
            && www.contains(&format!("service=\"{SERVICE}\""))
            && www.contains("scope=\"repository:debian:pull\""),
        "{www}"
    );
    // With an anonymous token: the manifest, its digest, and a blob GET that answers 307 to the
    // blob server's copy of the storage path.
    let public_token = token(&registry, "repository:debian:pull", None);
    let manifest = curl(
        &registry,
        &format!("{v2}/debian/manifests/bookworm"),
        &[
            "-H",
            &bearer(&public_token),
            "-H",
            &format!("Accept: {}", oci::MEDIA_TYPE_MANIFEST),
        ],
    );
    assert_eq!(manifest.status, 200);
    assert_eq!(manifest.body, base.manifest);
    assert_eq!(
        manifest.header("docker-content-digest"),
        Some(base.digest.as_str())
    );
    assert_eq!(
        manifest.header("content-type"),
        Some(oci::MEDIA_TYPE_MANIFEST)
    );
    registry.reset_counts();
    let redirect = curl(
        &registry,
        &format!("{v2}/debian/blobs/{config}"),
        &["-H", &bearer(&public_token)],
    );
    assert_eq!(redirect.status, 307);
    let hex = oci::digest_hex(&config);
    let location = format!(
        "https://{}/docker/registry/v2/blobs/sha256/{}/{hex}/data",
        registry.blob_server_address().unwrap(),
        &hex[..2]
    );
    assert_eq!(redirect.header("location"), Some(location.as_str()));
    assert_eq!(
        registry.blob_requests_total(),
        0,
        "curl followed the redirect"
    );

    // The blob server: Authorization refused (400, as S3), a range answered 206, the whole 200.
    let with_auth = curl(&registry, &location, &["-H", &bearer(&public_token)]);
    assert_eq!(with_auth.status, 400);
    assert!(String::from_utf8_lossy(&with_auth.body).contains("InvalidArgument"));
    let whole = fs::read(registry.blob_path(&config)).unwrap();
    let ranged = curl(&registry, &location, &["-H", "Range: bytes=100-"]);
    assert_eq!(ranged.status, 206);
    assert_eq!(ranged.body, whole[100..]);
    let range = format!("bytes 100-{}/{}", whole.len() - 1, whole.len());
    assert_eq!(ranged.header("content-range"), Some(range.as_str()));
    let bounded = curl(&registry, &location, &["-H", "Range: bytes=10-19"]);
    assert_eq!(
        (bounded.status, bounded.body.as_slice()),
        (206, &whole[10..20])
    );
    let beyond = curl(
        &registry,
        &location,
        &["-H", &format!("Range: bytes={}-", whole.len())],
    );
    assert_eq!(beyond.status, 416);
    let full = curl(&registry, &location, &[]);
    assert_eq!(full.status, 200);
    assert_eq!(sha256_digest(&full.body), config);
    assert_eq!(registry.blob_requests(&config), 5);
    assert_eq!(registry.blob_requests_total(), 5);
    let statuses: Vec<u16> = registry.blob_log().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [400, 206, 206, 416, 200]);
    assert!(registry.blob_log()[0].authorization);

    // An interrupted download: the announced length, then the connection broken off; resumed with
    // a range it completes the blob.
    registry.interrupt_next_get(&config, 50);
    let cut = curl(&registry, &location, &[]);
    assert_eq!((cut.status, cut.body.as_slice()), (200, &whole[..50]));
    let rest = curl(&registry, &location, &["-H", "Range: bytes=50-"]);
    assert_eq!((rest.status, rest.body.as_slice()), (206, &whole[50..]));

    // The private repository with raw requests: an anonymous token grants nothing and the registry
    // refuses it; a token got with the credentials reads the manifest.
    let empty_token = token(&registry, "repository:private/layered:pull", None);
    let refused = curl(
        &registry,
        &format!("{v2}/private/layered/manifests/1"),
        &["-H", &bearer(&empty_token)],
    );
    assert_eq!(refused.status, 401);
    let private_token = token(
        &registry,
        "repository:private/layered:pull",
        Some(&creds(&registry)),
    );
    let manifest = curl(
        &registry,
        &format!("{v2}/private/layered/manifests/1"),
        &[
            "-H",
            &bearer(&private_token),
            "-H",
            &format!("Accept: {}", oci::MEDIA_TYPE_MANIFEST),
        ],
    );
    assert_eq!(manifest.status, 200);
    assert_eq!(manifest.body, top.manifest);
    let wrong = curl(
        &registry,
        &format!(
            "{}?service={SERVICE}&scope=repository:private/layered:pull",
            registry.token_realm().unwrap()
        ),
        &["-u", &format!("{user}:wrong")],
    );
    assert_eq!(wrong.status, 401);

    // A test user trusts the registry the podman way (certs.d in their HOME): skopeo as that user,
    // with no --cert-dir, reads the manifest.
    let home = user_dir(alice(), "home");
    let trusted = registry.trust_for(home.path(), alice());
    assert_eq!(
        trusted,
        home.path()
            .join(".config/containers/certs.d")
            .join(registry.address())
            .join("ca.crt")
    );
    for path in [home.path().join(".config"), trusted.clone()] {
        let meta = fs::metadata(&path).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            (meta.uid(), meta.gid()),
            (alice().uid, alice().gid),
            "{path:?}"
        );
    }
    let as_alice = Command::new("setpriv")
        .arg(format!("--reuid={}", alice().uid))
        .arg(format!("--regid={}", alice().gid))
        .args(["--clear-groups", "env"])
        .arg(format!("HOME={}", home.path().display()))
        .arg(format!("TMPDIR={}", home.path().display()))
        .args(["skopeo", "inspect", "--retry-times", "0", "--no-creds"])
        .arg(format!(
            "docker://{}",
            registry.reference("debian:bookworm")
        ))
        .output()
        .unwrap();
    assert_eq!(json_of(&as_alice)["Digest"], base.digest.as_str());
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn an_index_of_two_platforms_with_zstd_layers() {
    require_root();
    let registry = LocalRegistry::start(RegistryOptions::default());
    assert_eq!(registry.token_realm(), None);
    assert_eq!(registry.blob_server_address(), None);
    let started = Instant::now();
    let index = registry.push_index("multi:latest", &oci::multi_arch_images(), Compression::Zstd);
    eprintln!("index pushed in {:?}", started.elapsed());
    assert_eq!(index.media_type, oci::MEDIA_TYPE_INDEX);
    let platforms: Vec<(&str, &str, Option<&str>)> = index
        .platforms
        .iter()
        .map(|p| (p.os.as_str(), p.architecture.as_str(), p.variant.as_deref()))
        .collect();
    assert_eq!(
        platforms,
        [("linux", "amd64", None), ("linux", "arm64", Some("v8"))]
    );
    for platform in &index.platforms {
        assert_eq!(platform.image.media_type, oci::MEDIA_TYPE_MANIFEST);
        assert!(!platform.image.layers.is_empty());
        for layer in &platform.image.layers {
            assert_eq!(layer.media_type, oci::MEDIA_TYPE_LAYER_ZSTD);
            let data = fs::read(registry.blob_path(&layer.digest)).unwrap();
            assert_eq!(&data[..4], b"\x28\xb5\x2f\xfd", "zstd's magic number");
        }
    }
    let reference = format!("docker://{}", registry.reference("multi:latest"));
    let raw = skopeo(&registry, "inspect", &["--raw", "--no-creds", &reference]);
    raw.assert_code(0);
    assert_eq!(raw.stdout, index.manifest);
    for platform in &index.platforms {
        let out = Command::new("skopeo")
            .args(["--override-arch", &platform.architecture])
            .args(["inspect", "--no-creds", "--cert-dir"])
            .arg(registry.cert_dir())
            .arg(&reference)
            .output()
            .unwrap();
        // skopeo's Digest is the index's; the layers are the platform's.
        let inspected = json_of(&out);
        assert_eq!(inspected["Architecture"], platform.architecture.as_str());
        assert_eq!(inspected["Digest"], index.digest.as_str());
        let layers: Vec<&str> = platform
            .image
            .layers
            .iter()
            .map(|l| l.digest.as_str())
            .collect();
        assert_eq!(inspected["Layers"], serde_json::json!(layers));
    }
}

/// skopeo would reuse a layer's blob of another compression that the registry already holds (its
/// blob-info cache); the fixture keeps each push compressed as asked.
#[test]
#[ignore = "needs root: sudo tests/run"]
fn one_image_pushed_with_each_compression_keeps_each() {
    require_root();
    let registry = LocalRegistry::start(RegistryOptions::default());
    let dir = TempDir::new("small");
    let small = oci::small_image(&dir);
    let gzip = registry.push(&small.path, "small:gzip", Compression::Gzip);
    let zstd = registry.push(&small.path, "small:zstd", Compression::Zstd);
    let docker = registry.push_as(
        &small.path,
        "small:docker",
        Compression::Gzip,
        ManifestFormat::Docker,
    );
    let again = registry.push(&small.path, "small:gzip-again", Compression::Gzip);
    let types = |p: &PushedImage| -> Vec<String> {
        p.layers.iter().map(|l| l.media_type.clone()).collect()
    };
    assert_eq!(types(&gzip), [oci::MEDIA_TYPE_LAYER_GZIP; 2]);
    assert_eq!(types(&zstd), [oci::MEDIA_TYPE_LAYER_ZSTD; 2]);
    assert_eq!(types(&docker), [MEDIA_TYPE_DOCKER_LAYER; 2]);
    for (a, b) in gzip.layers.iter().zip(&zstd.layers) {
        assert_ne!(a.digest, b.digest);
    }
    // Same compression, same blobs: the gzip layers are shared by the OCI and Docker manifests.
    assert_eq!(again.layers, gzip.layers);
    let digests =
        |p: &PushedImage| -> Vec<String> { p.layers.iter().map(|l| l.digest.clone()).collect() };
    assert_eq!(digests(&docker), digests(&gzip));
    // The uncompressed content is the archive's in each.
    let config: serde_json::Value =
        serde_json::from_slice(&fs::read(registry.blob_path(&zstd.config.digest)).unwrap())
            .unwrap();
    assert_eq!(
        config["rootfs"]["diff_ids"],
        serde_json::json!(small.diff_ids)
    );
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn basic_auth_and_a_docker_manifest() {
    require_root();
    let registry = LocalRegistry::start(RegistryOptions {
        basic_auth: true,
        ..RegistryOptions::default()
    });
    let dir = TempDir::new("small");
    let small = oci::small_image(&dir);
    let pushed = registry.push_as(
        &small.path,
        "small:docker",
        Compression::Gzip,
        ManifestFormat::Docker,
    );
    assert_eq!(pushed.media_type, MEDIA_TYPE_DOCKER_MANIFEST);
    assert!(
        pushed
            .layers
            .iter()
            .all(|l| l.media_type == MEDIA_TYPE_DOCKER_LAYER),
        "{:?}",
        pushed.layers
    );
    let reference = format!("docker://{}", registry.reference("small:docker"));
    let refused = skopeo(&registry, "inspect", &["--no-creds", &reference]);
    assert_ne!(refused.code(), 0);
    let inspected = json_of(&skopeo(
        &registry,
        "inspect",
        &["--creds", &creds(&registry), &reference],
    ));
    assert_eq!(inspected["Digest"], pushed.digest.as_str());
    let challenge = curl(
        &registry,
        &format!("https://{}/v2/", registry.address()),
        &[],
    );
    assert_eq!(challenge.status, 401);
    assert_eq!(
        challenge.header("www-authenticate"),
        Some(format!("Basic realm=\"{SERVICE}\"").as_str())
    );
    let ok = curl(
        &registry,
        &format!("https://{}/v2/", registry.address()),
        &["-u", &creds(&registry)],
    );
    assert_eq!(ok.status, 200);
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_dropped_registry_leaves_no_process_port_or_directory() {
    require_root();
    let registry = token_and_redirect();
    let dir = TempDir::new("small");
    let small = oci::small_image(&dir);
    let pushed = registry.push(&small.path, "small:1", Compression::Gzip);
    // A connection left open to the blob server does not keep the drop waiting.
    let idle = TcpStream::connect(registry.blob_server_address().unwrap()).unwrap();
    let pid = registry.pid();
    let addresses = [
        registry.address(),
        registry.blob_server_address().unwrap(),
        registry.token_realm().unwrap()["https://".len()..]
            .trim_end_matches("/token")
            .to_string(),
    ];
    let storage = registry.storage_dir();
    assert!(registry.blob_path(&pushed.digest).is_file());
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    let dropped = Instant::now();
    drop(registry);
    assert!(
        dropped.elapsed() < Duration::from_secs(5),
        "{:?}",
        dropped.elapsed()
    );
    drop(idle);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the registry still runs"
    );
    for address in &addresses {
        assert!(
            TcpStream::connect(address).is_err(),
            "{address} still accepts connections"
        );
    }
    assert!(!storage.exists());
    assert!(!storage.parent().unwrap().exists());
}
