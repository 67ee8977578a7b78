//! A real container registry on 127.0.0.1 for the pull tests (issue 16): Debian's `docker-registry`
//! (distribution 2.8) over TLS with a test CA, optionally behind token authentication (a token
//! server of ours) or Basic authentication (htpasswd), optionally redirecting blob GETs (307) to a
//! second HTTPS server of ours that serves the blobs from the registry's storage as S3 would: ranges
//! answered 206, requests that carry an Authorization header refused with 400, every request
//! counted per digest. Images are pushed with skopeo.
//!
//! ```no_run
//! use unshare_run_test_support::{oci, registry::*};
//! let registry = LocalRegistry::start(RegistryOptions {
//!     token_auth: true,
//!     redirect_blobs: true,
//!     ..RegistryOptions::default()
//! });
//! let pushed = registry.push(&oci::debian_image().path, "debian:bookworm", Compression::Gzip);
//! // registry.reference("debian:bookworm") == "127.0.0.1:PORT/debian:bookworm"
//! // registry.trust_for(home, alice()) makes alice's podman-style certs.d trust the test CA.
//! ```
//!
//! Everything ends when the value is dropped: the registry process is killed and waited for, the
//! token and blob servers' threads are joined, the temporary directory (certificates, storage,
//! configuration, log) is removed. A registry left by a killed test process is killed by the next
//! `start`. Ports are free ones, chosen by the kernel for our servers; the registry's is tried again
//! on a collision.

mod https;
mod token;

use std::fs;
use std::io::{Seek, SeekFrom};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use serde_json::Value;

use crate::oci::{self, Image, digest_hex};
use crate::{TMP_PREFIX, TempDir, TestUser};
use https::{Body, HttpsServer, Request, Response};
use token::TokenServer;
pub use token::{ISSUER, SERVICE, TokenRequest};

/// How a registry is set up. `RegistryOptions::default()`: no authentication, blobs served by the
/// registry itself.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// distribution's `auth.token`: clients get a Bearer token from our token server (anonymously
    /// for pulls of public repositories; with `username`/`password` for the private ones and for
    /// pushes).
    pub token_auth: bool,
    /// distribution's `auth.htpasswd`: every request, pulls too, needs `username`/`password` as
    /// Basic credentials. Not together with `token_auth`.
    pub basic_auth: bool,
    /// Blob GETs (and HEADs) answer 307 to the blob server (`blob_server_address`).
    pub redirect_blobs: bool,
    /// With `token_auth`: repositories whose name starts with this need credentials to be pulled.
    pub private_prefix: String,
    pub username: String,
    pub password: String,
    /// The tokens' `expires_in` (and JWT `exp` - now). distribution accepts a token up to 60 s
    /// after it expired (its leeway).
    pub token_expires_in: u64,
    /// distribution's `http.tls.clientcas`: a client must show a certificate the test CA signed
    /// (`client_pair_for`); the pushes show one.
    pub client_certificates: bool,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            token_auth: false,
            basic_auth: false,
            redirect_blobs: false,
            private_prefix: "private/".into(),
            username: "urt-registry-user".into(),
            password: "urt-registry-secret".into(),
            token_expires_in: 300,
            client_certificates: false,
        }
    }
}

/// The layer compression of a push (skopeo's `--dest-compress-format`): the archives' layers are
/// uncompressed, so skopeo compresses each while pushing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zstd,
}

impl Compression {
    fn skopeo_name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// The manifest a push stores: the archive's OCI manifest, or converted to Docker schema 2
/// (`skopeo --format v2s2`, gzip layers only) as most of Docker Hub's images are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestFormat {
    Oci,
    Docker,
}

pub const MEDIA_TYPE_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_TYPE_DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// A content descriptor as a manifest lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

impl Descriptor {
    fn from_json(value: &Value) -> Descriptor {
        Descriptor {
            media_type: value["mediaType"].as_str().unwrap_or_default().into(),
            digest: value["digest"].as_str().unwrap().into(),
            size: value["size"].as_u64().unwrap(),
        }
    }
}

/// An image as the registry holds it after a push.
#[derive(Clone, Debug)]
pub struct PushedImage {
    /// "127.0.0.1:PORT/NAME:TAG" (or "...NAME@DIGEST" for an index's platform images).
    pub reference: String,
    /// The repository: "NAME".
    pub name: String,
    /// The manifest's digest (of its bytes as stored).
    pub digest: String,
    pub media_type: String,
    /// The manifest's bytes as the registry serves them.
    pub manifest: Vec<u8>,
    pub config: Descriptor,
    /// The layers as pushed (compressed), bottom first.
    pub layers: Vec<Descriptor>,
}

/// One platform of a pushed index.
#[derive(Clone, Debug)]
pub struct PushedPlatform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    pub image: PushedImage,
}

/// An index as the registry holds it after `push_index`.
#[derive(Clone, Debug)]
pub struct PushedIndex {
    pub reference: String,
    pub name: String,
    pub digest: String,
    pub media_type: String,
    pub manifest: Vec<u8>,
    /// In the index's order.
    pub platforms: Vec<PushedPlatform>,
}

/// One request to the blob server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobRequest {
    pub method: String,
    pub path: String,
    /// "sha256:HEX" when the path is a blob's data file.
    pub digest: Option<String>,
    /// The Range header, if any.
    pub range: Option<String>,
    /// Whether the request carried an Authorization header (it was refused with 400).
    pub authorization: bool,
    pub status: u16,
}

/// The blob server's state: the registry's storage and what it was asked.
struct BlobServer {
    storage: PathBuf,
    log: Mutex<Vec<BlobRequest>>,
    /// Blobs whose next GET breaks off after this many bytes of the body (`interrupt_next_get`).
    interruptions: Mutex<Vec<(String, u64)>>,
}

pub struct LocalRegistry {
    child: Child,
    address: String,
    options: RegistryOptions,
    token: Option<(HttpsServer, Arc<TokenServer>)>,
    blobs: Option<(HttpsServer, Arc<BlobServer>)>,
    ca_pem: PathBuf,
    cert_dir: PathBuf,
    /// Last: removed after everything that uses it has ended.
    dir: TempDir,
}

/// The CA, the servers' leaf certificate (127.0.0.1 and localhost) and the token signer's
/// certificate, all made for one registry.
struct Pki {
    ca_der: Vec<u8>,
    ca_pem: String,
    leaf_der: Vec<u8>,
    leaf_pem: String,
    leaf_key_pkcs8: Vec<u8>,
    leaf_key_pem: String,
    signer_der: Vec<u8>,
    signer_pem: String,
    signer_key_pkcs8: Vec<u8>,
    client_pem: String,
    client_key_pem: String,
}

impl Pki {
    fn new() -> Pki {
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name = rcgen::DistinguishedName::new();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "unshare-run test registry CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

        let mut leaf_params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        leaf_params.distinguished_name = rcgen::DistinguishedName::new();
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        leaf_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf_params.use_authority_key_identifier_extension = true;
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();

        let mut signer_params = CertificateParams::default();
        signer_params.distinguished_name = rcgen::DistinguishedName::new();
        signer_params
            .distinguished_name
            .push(DnType::CommonName, "unshare-run test token signer");
        signer_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        signer_params.use_authority_key_identifier_extension = true;
        let signer_key = KeyPair::generate().unwrap();
        let signer = signer_params.signed_by(&signer_key, &ca).unwrap();

        let mut client_params = CertificateParams::default();
        client_params.distinguished_name = rcgen::DistinguishedName::new();
        client_params
            .distinguished_name
            .push(DnType::CommonName, "unshare-run test client");
        client_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        client_params.use_authority_key_identifier_extension = true;
        let client_key = KeyPair::generate().unwrap();
        let client = client_params.signed_by(&client_key, &ca).unwrap();

        Pki {
            ca_der: ca.der().to_vec(),
            ca_pem: ca.pem(),
            leaf_der: leaf.der().to_vec(),
            leaf_pem: leaf.pem(),
            leaf_key_pkcs8: leaf_key.serialize_der(),
            leaf_key_pem: leaf_key.serialize_pem(),
            signer_der: signer.der().to_vec(),
            signer_pem: signer.pem(),
            signer_key_pkcs8: signer_key.serialize_der(),
            client_pem: client.pem(),
            client_key_pem: client_key.serialize_pem(),
        }
    }
}

fn write_private(path: &Path, content: &[u8], mode: u32) {
    fs::write(path, content).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Kills the registries that test processes which no longer exist started (their configuration is
/// in the dead process's scratch directory, /tmp/unshare-run-tests.PID/).
fn kill_stale_registries() {
    let Ok(entries) = fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let argv: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if argv.len() < 3 || !argv[0].ends_with("docker-registry") || argv[1] != "serve" {
            continue;
        }
        let Some(owner) = argv[2]
            .strip_prefix(TMP_PREFIX)
            .and_then(|rest| rest.split('/').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{owner}")).exists() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut buf).unwrap();
    oci::hex(&buf)
}

/// A port that was free a moment ago (the registry binds it itself; a collision is retried).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// "NAME" and "TAG" of "NAME:TAG".
fn split_name_tag(name_tag: &str) -> (&str, &str) {
    match name_tag.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') && !name.is_empty() && !tag.is_empty() => {
            (name, tag)
        }
        _ => panic!("{name_tag:?} is not NAME:TAG"),
    }
}

enum Started {
    Listening(Child),
    PortTaken,
}

impl LocalRegistry {
    /// Starts the registry (and the token and blob servers the options ask for) on free ports of
    /// 127.0.0.1 and returns once it listens.
    pub fn start(options: RegistryOptions) -> LocalRegistry {
        assert!(
            !(options.token_auth && options.basic_auth),
            "token_auth and basic_auth exclude each other"
        );
        kill_stale_registries();
        let dir = TempDir::new("registry");
        let root = dir.path();
        for sub in ["certs", "tls", "storage", "tmp"] {
            fs::create_dir(root.join(sub)).unwrap();
        }
        fs::set_permissions(root.join("tls"), fs::Permissions::from_mode(0o700)).unwrap();
        let pki = Pki::new();
        write_private(&root.join("certs/ca.crt"), pki.ca_pem.as_bytes(), 0o644);
        // The client pair: in certs/ for skopeo's pushes when the registry asks for one, in tls/ for
        // `client_pair_for`.
        for dir in ["certs", "tls"] {
            if dir == "tls" || options.client_certificates {
                write_private(
                    &root.join(dir).join("client.cert"),
                    pki.client_pem.as_bytes(),
                    0o644,
                );
                write_private(
                    &root.join(dir).join("client.key"),
                    pki.client_key_pem.as_bytes(),
                    0o600,
                );
            }
        }
        write_private(
            &root.join("tls/leaf.crt"),
            format!("{}{}", pki.leaf_pem, pki.ca_pem).as_bytes(),
            0o644,
        );
        write_private(
            &root.join("tls/leaf.key"),
            pki.leaf_key_pem.as_bytes(),
            0o600,
        );
        write_private(
            &root.join("tls/token-bundle.pem"),
            format!("{}{}", pki.ca_pem, pki.signer_pem).as_bytes(),
            0o644,
        );
        let tls = https::tls_config(
            &[pki.leaf_der.clone(), pki.ca_der.clone()],
            &pki.leaf_key_pkcs8,
        );

        let blobs = options.redirect_blobs.then(|| {
            let state = Arc::new(BlobServer {
                storage: root.join("storage"),
                log: Mutex::default(),
                interruptions: Mutex::default(),
            });
            let handler = state.clone();
            let server = HttpsServer::start(
                "urt-blob-server",
                tls.clone(),
                Arc::new(move |r: &Request| handler.handle(r)),
            );
            (server, state)
        });
        let token = options.token_auth.then(|| {
            let state = Arc::new(TokenServer::new(
                &pki.signer_key_pkcs8,
                &[pki.signer_der.clone(), pki.ca_der.clone()],
                &options.username,
                &options.password,
                &options.private_prefix,
                options.token_expires_in,
            ));
            let handler = state.clone();
            let server = HttpsServer::start(
                "urt-token-server",
                tls.clone(),
                Arc::new(move |r: &Request| handler.handle(r)),
            );
            (server, state)
        });
        if options.basic_auth {
            let hash = bcrypt::hash_with_result(&options.password, 4)
                .unwrap()
                .format_for_version(bcrypt::Version::TwoY);
            write_private(
                &root.join("htpasswd"),
                format!("{}:{hash}\n", options.username).as_bytes(),
                0o600,
            );
        }

        let secret = random_hex(16);
        for _attempt in 0..10 {
            let port = free_port();
            let config = registry_config(
                root,
                port,
                &secret,
                token.as_ref().map(|(s, _)| s.addr().port()),
                options.basic_auth,
                blobs.as_ref().map(|(s, _)| s.addr().port()),
                options.client_certificates,
            );
            fs::write(root.join("config.yml"), config).unwrap();
            match start_registry(root, port) {
                Started::Listening(child) => {
                    return LocalRegistry {
                        child,
                        address: format!("127.0.0.1:{port}"),
                        options,
                        token,
                        blobs,
                        ca_pem: root.join("certs/ca.crt"),
                        cert_dir: root.join("certs"),
                        dir,
                    };
                }
                Started::PortTaken => continue,
            }
        }
        panic!("docker-registry found no free port in 10 attempts");
    }

    /// "127.0.0.1:PORT".
    pub fn address(&self) -> String {
        self.address.clone()
    }

    /// "127.0.0.1:PORT/NAME:TAG" (or NAME@DIGEST: anything after the address).
    pub fn reference(&self, name_tag: &str) -> String {
        format!("{}/{name_tag}", self.address)
    }

    pub fn options(&self) -> &RegistryOptions {
        &self.options
    }

    /// The test CA's certificate (PEM). The registry, token and blob servers all use one leaf
    /// certificate it signed, for 127.0.0.1 and localhost.
    pub fn ca_pem(&self) -> &Path {
        // certs/ca.crt: cert_dir() holds it alone, as skopeo's --cert-dir wants.
        &self.ca_pem
    }

    /// A directory holding only ca.crt: `skopeo --cert-dir` / `--src-cert-dir` / `--dest-cert-dir`.
    pub fn cert_dir(&self) -> &Path {
        &self.cert_dir
    }

    /// Makes `owner`'s containers tools trust the registry as podman's users do:
    /// HOME/.config/containers/certs.d/127.0.0.1:PORT/ca.crt (directories made here are given to
    /// `owner`). Returns the file. Only the registry's address is listed there: clients use the
    /// registry's trust for its token realm and for redirected blob fetches too, as containers/image
    /// does.
    pub fn trust_for(&self, home: &Path, owner: &TestUser) -> PathBuf {
        let mut dir = home.to_path_buf();
        for part in [".config", "containers", "certs.d", self.address.as_str()] {
            dir.push(part);
            if !dir.exists() {
                fs::create_dir(&dir).unwrap();
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
                std::os::unix::fs::chown(&dir, Some(owner.uid), Some(owner.gid)).unwrap();
            }
        }
        let file = dir.join("ca.crt");
        fs::copy(self.ca_pem(), &file).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::chown(&file, Some(owner.uid), Some(owner.gid)).unwrap();
        file
    }

    /// Gives `owner` the test client's certificate and key as containers-certs.d(5) has them:
    /// HOME/.config/containers/certs.d/127.0.0.1:PORT/client.cert and client.key (after
    /// `trust_for`, which makes the directory).
    pub fn client_pair_for(&self, home: &Path, owner: &TestUser) {
        let dir = home.join(".config/containers/certs.d").join(&self.address);
        for (name, mode) in [("client.cert", 0o644), ("client.key", 0o600)] {
            let file = dir.join(name);
            fs::copy(self.dir.path().join("tls").join(name), &file).unwrap();
            fs::set_permissions(&file, fs::Permissions::from_mode(mode)).unwrap();
            std::os::unix::fs::chown(&file, Some(owner.uid), Some(owner.gid)).unwrap();
        }
    }

    /// (user, password) that the token server (token_auth) or htpasswd (basic_auth) accepts.
    pub fn credentials(&self) -> (&str, &str) {
        (&self.options.username, &self.options.password)
    }

    /// The registry's storage root (distribution's filesystem driver: docker/registry/v2/...).
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Where the registry keeps the blob (or manifest) with this digest.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest_hex(digest);
        self.storage_dir().join(format!(
            "docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }

    /// The registry process's id (for tests of the fixture itself).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the registry logged (requests included): for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The token realm, "https://127.0.0.1:PORT/token" (token_auth).
    pub fn token_realm(&self) -> Option<String> {
        self.token
            .as_ref()
            .map(|(s, _)| format!("https://{}/token", s.addr()))
    }

    /// How many requests the token server answered (any outcome).
    pub fn token_requests(&self) -> usize {
        self.token
            .as_ref()
            .map_or(0, |(_, t)| t.log.lock().unwrap().len())
    }

    /// The token server's requests, in order.
    pub fn token_log(&self) -> Vec<TokenRequest> {
        self.token
            .as_ref()
            .map(|(_, t)| t.log.lock().unwrap().clone())
            .unwrap_or_default()
    }

    /// The blob server's address, "127.0.0.1:PORT" (redirect_blobs).
    pub fn blob_server_address(&self) -> Option<String> {
        self.blobs.as_ref().map(|(s, _)| s.addr().to_string())
    }

    /// How many GET requests for this blob reached the blob server (whatever their answer: ranges,
    /// and requests refused for an Authorization header, count too). HEADs are not counted: pushes
    /// make them (skopeo asks whether a blob exists) and they fetch nothing.
    pub fn blob_requests(&self, digest: &str) -> usize {
        self.blob_log()
            .iter()
            .filter(|r| r.method == "GET" && r.digest.as_deref() == Some(digest))
            .count()
    }

    /// How many GET requests reached the blob server.
    pub fn blob_requests_total(&self) -> usize {
        self.blob_log().iter().filter(|r| r.method == "GET").count()
    }

    /// Every request to the blob server, in order.
    pub fn blob_log(&self) -> Vec<BlobRequest> {
        self.blobs
            .as_ref()
            .map(|(_, b)| b.log.lock().unwrap().clone())
            .unwrap_or_default()
    }

    /// Forgets the token and blob requests so far (e.g. after the pushes, before a pull).
    pub fn reset_counts(&self) {
        if let Some((_, t)) = &self.token {
            t.log.lock().unwrap().clear();
        }
        if let Some((_, b)) = &self.blobs {
            b.log.lock().unwrap().clear();
        }
    }

    /// The next GET of this blob from the blob server announces the whole length but breaks the
    /// connection after `after_bytes` bytes of the body (an interrupted download, to be resumed).
    pub fn interrupt_next_get(&self, digest: &str, after_bytes: u64) {
        let (_, blobs) = self
            .blobs
            .as_ref()
            .expect("interrupt_next_get needs redirect_blobs");
        blobs
            .interruptions
            .lock()
            .unwrap()
            .push((digest.to_string(), after_bytes));
    }

    /// skopeo copy to this registry, with its CA and (when it asks for any) the credentials.
    ///
    /// skopeo (containers/image 5.23) remembers in its blob-info cache which compressed blobs of a
    /// layer a registry holds and reuses any of them, whatever `--dest-compress-format` says: a zstd
    /// push after a gzip one of the same layer would silently store gzip (and a Docker schema 2 push
    /// after a zstd one fails). So each registry and compression gets a cache of its own: as root,
    /// bound over /var/lib/containers/cache in a private mount namespace; otherwise through
    /// XDG_DATA_HOME, where an unprivileged skopeo keeps it.
    fn skopeo_copy(&self, compression: Compression, digest_file: &Path) -> Command {
        let cache = self
            .dir
            .path()
            .join("blob-info-cache")
            .join(compression.skopeo_name());
        fs::create_dir_all(&cache).unwrap();
        let mut cmd = if nix::unistd::geteuid().is_root() {
            fs::create_dir_all(ROOT_BLOB_INFO_CACHE).unwrap();
            let mut cmd = Command::new("unshare");
            cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
                .arg(format!(
                    "mount --bind \"$0\" {ROOT_BLOB_INFO_CACHE} && exec \"$@\""
                ))
                .arg(&cache)
                .arg("skopeo");
            cmd
        } else {
            let mut cmd = Command::new("skopeo");
            cmd.env("XDG_DATA_HOME", &cache);
            cmd
        };
        cmd.env("TMPDIR", self.dir.path().join("tmp"))
            .args(["--insecure-policy", "copy", "--quiet", "--retry-times", "0"])
            .arg("--dest-cert-dir")
            .arg(self.cert_dir())
            .args(["--dest-compress-format", compression.skopeo_name()])
            .arg("--digestfile")
            .arg(digest_file);
        if self.options.token_auth || self.options.basic_auth {
            let (user, password) = self.credentials();
            cmd.arg("--dest-creds").arg(format!("{user}:{password}"));
        } else {
            cmd.arg("--dest-no-creds");
        }
        cmd
    }

    /// Pushes an OCI archive (`oci::write_archive`) as `dest` ("NAME:TAG") with skopeo, its layers
    /// compressed as asked; returns what the registry now holds.
    pub fn push(&self, archive: &Path, dest: &str, compression: Compression) -> PushedImage {
        self.push_as(archive, dest, compression, ManifestFormat::Oci)
    }

    /// `push`, with the manifest stored as OCI or converted to Docker schema 2 (gzip only).
    pub fn push_as(
        &self,
        archive: &Path,
        dest: &str,
        compression: Compression,
        format: ManifestFormat,
    ) -> PushedImage {
        let (name, tag) = split_name_tag(dest);
        let digest_file = self
            .dir
            .path()
            .join(format!("tmp/digest-{}", random_hex(8)));
        let mut cmd = self.skopeo_copy(compression, &digest_file);
        if format == ManifestFormat::Docker {
            assert_eq!(
                compression,
                Compression::Gzip,
                "Docker schema 2 has no zstd layers"
            );
            cmd.args(["--format", "v2s2"]);
        }
        cmd.arg(format!("oci-archive:{}", archive.display()))
            .arg(format!("docker://{}", self.reference(dest)));
        self.run_skopeo(&mut cmd);
        let digest = self.tagged_digest(name, tag, &digest_file);
        let pushed = self.pushed_image(name, &digest, self.reference(dest));
        check_layer_types(&pushed, compression, format);
        pushed
    }

    /// Pushes `images` as a multi-platform index tagged `dest` ("NAME:TAG"): an OCI layout whose
    /// index lists them with their platforms (`oci::write_index_layout`), copied with `skopeo copy
    /// --all`, which pushes each image's manifest by digest and then the index by tag.
    pub fn push_index(
        &self,
        dest: &str,
        images: &[Image],
        compression: Compression,
    ) -> PushedIndex {
        let (name, tag) = split_name_tag(dest);
        let layout = TempDir::new("index-layout");
        let written = oci::write_index_layout(layout.path(), "index", images);
        let digest_file = self
            .dir
            .path()
            .join(format!("tmp/digest-{}", random_hex(8)));
        let mut cmd = self.skopeo_copy(compression, &digest_file);
        cmd.arg("--all")
            .arg(format!(
                "oci:{}:{}",
                layout.path().display(),
                written.ref_name
            ))
            .arg(format!("docker://{}", self.reference(dest)));
        self.run_skopeo(&mut cmd);
        let digest = self.tagged_digest(name, tag, &digest_file);
        let manifest = fs::read(self.blob_path(&digest)).unwrap();
        let index: Value = serde_json::from_slice(&manifest).unwrap();
        let platforms = index["manifests"]
            .as_array()
            .unwrap_or_else(|| panic!("not an index: {index}"))
            .iter()
            .map(|entry| {
                let digest = entry["digest"].as_str().unwrap();
                let platform = &entry["platform"];
                PushedPlatform {
                    os: platform["os"].as_str().unwrap_or_default().into(),
                    architecture: platform["architecture"].as_str().unwrap_or_default().into(),
                    variant: platform["variant"].as_str().map(str::to_string),
                    image: self.pushed_image(
                        name,
                        digest,
                        self.reference(&format!("{name}@{digest}")),
                    ),
                }
            })
            .collect::<Vec<PushedPlatform>>();
        for platform in &platforms {
            check_layer_types(&platform.image, compression, ManifestFormat::Oci);
        }
        PushedIndex {
            reference: self.reference(dest),
            name: name.into(),
            digest,
            media_type: index["mediaType"].as_str().unwrap_or_default().into(),
            manifest,
            platforms,
        }
    }

    fn run_skopeo(&self, cmd: &mut Command) {
        let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        assert!(
            out.status.success(),
            "{cmd:?} failed: {}{}\nregistry log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// The digest skopeo wrote, checked against the tag's link in the storage.
    fn tagged_digest(&self, name: &str, tag: &str, digest_file: &Path) -> String {
        let digest = fs::read_to_string(digest_file).unwrap().trim().to_string();
        fs::remove_file(digest_file).unwrap();
        let link = self.storage_dir().join(format!(
            "docker/registry/v2/repositories/{name}/_manifests/tags/{tag}/current/link"
        ));
        let linked =
            fs::read_to_string(&link).unwrap_or_else(|e| panic!("{}: {e}", link.display()));
        assert_eq!(linked.trim(), digest, "{name}:{tag}");
        digest
    }

    fn pushed_image(&self, name: &str, digest: &str, reference: String) -> PushedImage {
        let manifest = fs::read(self.blob_path(digest)).unwrap();
        assert_eq!(oci::sha256_digest(&manifest), digest);
        let value: Value = serde_json::from_slice(&manifest).unwrap();
        PushedImage {
            reference,
            name: name.into(),
            digest: digest.into(),
            media_type: value["mediaType"].as_str().unwrap_or_default().into(),
            config: Descriptor::from_json(&value["config"]),
            layers: value["layers"]
                .as_array()
                .unwrap_or_else(|| panic!("not an image manifest: {value}"))
                .iter()
                .map(Descriptor::from_json)
                .collect(),
            manifest,
        }
    }
}

/// Where skopeo keeps its blob-info cache when it runs as root.
const ROOT_BLOB_INFO_CACHE: &str = "/var/lib/containers/cache";

/// The pushed layers are compressed as asked (see `skopeo_copy` for how that could fail).
fn check_layer_types(pushed: &PushedImage, compression: Compression, format: ManifestFormat) {
    let expected = match (format, compression) {
        (ManifestFormat::Oci, Compression::Gzip) => oci::MEDIA_TYPE_LAYER_GZIP,
        (ManifestFormat::Oci, Compression::Zstd) => oci::MEDIA_TYPE_LAYER_ZSTD,
        (ManifestFormat::Docker, _) => MEDIA_TYPE_DOCKER_LAYER,
    };
    for layer in &pushed.layers {
        assert_eq!(
            layer.media_type, expected,
            "{}: a layer not compressed as asked ({compression:?})",
            pushed.reference
        );
    }
}

fn registry_config(
    root: &Path,
    port: u16,
    secret: &str,
    token_port: Option<u16>,
    basic_auth: bool,
    blob_port: Option<u16>,
    client_certificates: bool,
) -> String {
    let root = root.display();
    let client_cas = match client_certificates {
        true => format!("\n    clientcas:\n      - {root}/certs/ca.crt"),
        false => String::new(),
    };
    let mut config = format!(
        "version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {root}/storage
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: {secret}
  tls:
    certificate: {root}/tls/leaf.crt
    key: {root}/tls/leaf.key{client_cas}
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: false
"
    );
    if let Some(token_port) = token_port {
        config.push_str(&format!(
            "auth:
  token:
    realm: https://127.0.0.1:{token_port}/token
    service: {SERVICE}
    issuer: {ISSUER}
    rootcertbundle: {root}/tls/token-bundle.pem
"
        ));
    }
    if basic_auth {
        config.push_str(&format!(
            "auth:
  htpasswd:
    realm: {SERVICE}
    path: {root}/htpasswd
"
        ));
    }
    if let Some(blob_port) = blob_port {
        config.push_str(&format!(
            "middleware:
  storage:
    - name: redirect
      options:
        baseurl: https://127.0.0.1:{blob_port}/
"
        ));
    }
    config
}

/// Runs `docker-registry serve ROOT/config.yml` and waits until it logs that it listens on `port`.
fn start_registry(root: &Path, port: u16) -> Started {
    let log_path = root.join("registry.log");
    let log = fs::File::create(&log_path).unwrap();
    let mut child = Command::new("docker-registry")
        .arg("serve")
        .arg(root.join("config.yml"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("docker-registry: {e} (package docker-registry; tests/run installs it)")
        });
    let listening = format!("listening on 127.0.0.1:{port}");
    let start = Instant::now();
    loop {
        let text = fs::read_to_string(&log_path).unwrap_or_default();
        if text.contains(&listening) {
            return Started::Listening(child);
        }
        if let Some(status) = child.try_wait().unwrap() {
            if text.contains("address already in use") {
                return Started::PortTaken;
            }
            panic!("docker-registry ended ({status}) before listening:\n{text}");
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("docker-registry did not listen on {port} within 30 s:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The servers' threads are joined and the directory removed as the fields drop, in order.
    }
}

const S3_AUTH_ERROR: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidArgument</Code>\
<Message>Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query \
string parameter or the Authorization header should be specified</Message>\
<ArgumentName>Authorization</ArgumentName></Error>\n";

impl BlobServer {
    fn handle(&self, request: &Request) -> Response {
        let digest = blob_digest(&request.path);
        let range = request.header("range").map(str::to_string);
        let authorization = request.header("authorization").is_some();
        let response = self.answer(request, digest.as_deref(), range.as_deref(), authorization);
        self.log.lock().unwrap().push(BlobRequest {
            method: request.method.clone(),
            path: request.path.clone(),
            digest,
            range,
            authorization,
            status: response.status,
        });
        response
    }

    fn answer(
        &self,
        request: &Request,
        digest: Option<&str>,
        range: Option<&str>,
        authorization: bool,
    ) -> Response {
        if request.method != "GET" && request.method != "HEAD" {
            return Response::text(405, "GET or HEAD\n").header("Allow", "GET, HEAD");
        }
        // As S3 answers a presigned URL that also carries credentials.
        if authorization {
            return Response::new(400, "application/xml", S3_AUTH_ERROR.as_bytes().to_vec());
        }
        let Some(digest) = digest else {
            return Response::text(404, "no such blob\n");
        };
        let Ok(mut file) = fs::File::open(self.storage.join(request.path.trim_start_matches('/')))
        else {
            return Response::text(404, "no such blob\n");
        };
        let size = file.metadata().unwrap().len();
        let (status, start, end) = match range.and_then(parse_range) {
            Some((start, _)) if start >= size => {
                return Response::text(416, "range not satisfiable\n")
                    .header("Content-Range", &format!("bytes */{size}"));
            }
            Some((start, end)) => (206, start, end.unwrap_or(size - 1).min(size - 1)),
            None => (200, 0, size.saturating_sub(1)),
        };
        let len = if size == 0 { 0 } else { end - start + 1 };
        file.seek(SeekFrom::Start(start)).unwrap();
        let interrupted = {
            let mut pending = self.interruptions.lock().unwrap();
            let found = pending.iter().position(|(d, _)| d == digest);
            found.map(|i| pending.remove(i).1)
        };
        let body = match interrupted {
            Some(after) if request.method == "GET" && after < len => Body::Truncated {
                file,
                announced: len,
                sent: after,
            },
            _ => Body::File { file, len },
        };
        let mut response = Response {
            status,
            headers: vec![
                ("Content-Type".into(), "application/octet-stream".into()),
                ("Accept-Ranges".into(), "bytes".into()),
                ("ETag".into(), format!("\"{digest}\"")),
            ],
            body,
        };
        if status == 206 {
            response = response.header("Content-Range", &format!("bytes {start}-{end}/{size}"));
        }
        response
    }
}

/// "sha256:HEX" of /docker/registry/v2/blobs/sha256/HE/HEX/data (the redirect middleware's paths).
fn blob_digest(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/docker/registry/v2/blobs/sha256/")?;
    let mut parts = rest.split('/');
    let (prefix, hex, data) = (parts.next()?, parts.next()?, parts.next()?);
    let valid = parts.next().is_none()
        && data == "data"
        && hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        && hex.starts_with(prefix)
        && prefix.len() == 2;
    valid.then(|| format!("sha256:{hex}"))
}

/// (start, end) of "bytes=START-" or "bytes=START-END"; None for anything else (answered 200).
fn parse_range(header: &str) -> Option<(u64, Option<u64>)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    let (start, end) = spec.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end = match end.trim() {
        "" => None,
        end => Some(end.parse::<u64>().ok().filter(|e| *e >= start)?),
    };
    Some((start, end))
}

#[cfg(test)]
mod tests {
    use super::https::percent_decode;
    use super::*;

    #[test]
    fn blob_paths_ranges_and_names_parse() {
        let hex = "ab".repeat(32);
        let path = format!("/docker/registry/v2/blobs/sha256/ab/{hex}/data");
        assert_eq!(blob_digest(&path), Some(format!("sha256:{hex}")));
        for bad in [
            format!("/docker/registry/v2/blobs/sha256/cd/{hex}/data"),
            format!("/docker/registry/v2/blobs/sha256/ab/{hex}/data/x"),
            format!("/docker/registry/v2/blobs/sha256/ab/{hex}/../data"),
            format!(
                "/docker/registry/v2/blobs/sha256/AB/{}/data",
                hex.to_uppercase()
            ),
            "/docker/registry/v2/repositories/x/_manifests/tags/1/current/link".to_string(),
        ] {
            assert_eq!(blob_digest(&bad), None, "{bad}");
        }
        assert_eq!(parse_range("bytes=100-"), Some((100, None)));
        assert_eq!(parse_range("bytes=10-19"), Some((10, Some(19))));
        assert_eq!(parse_range("bytes=19-10"), None);
        assert_eq!(parse_range("bytes=0-1,5-6"), None);
        assert_eq!(parse_range("items=1-"), None);
        assert_eq!(
            split_name_tag("private/layered:1"),
            ("private/layered", "1")
        );
        assert_eq!(
            percent_decode("repository%3Adebian%3Apull%2Cpush+x"),
            "repository:debian:pull,push x"
        );
        assert_eq!(percent_decode("100%"), "100%");
    }

    /// The token is a JWS that distribution can check: ES256 over the first two parts, with the
    /// signer's certificate and the CA in x5c, and the claims it compares.
    #[test]
    fn tokens_are_es256_jwts_with_the_chain_and_the_access() {
        use base64::Engine;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let pki = Pki::new();
        let server = TokenServer::new(
            &pki.signer_key_pkcs8,
            &[pki.signer_der.clone(), pki.ca_der.clone()],
            "user",
            "secret",
            "private/",
            300,
        );
        let request = |query: &str, auth: Option<&str>| Request {
            method: "GET".into(),
            path: "/token".into(),
            query: query
                .split('&')
                .map(|p| {
                    let (n, v) = p.split_once('=').unwrap();
                    (n.into(), v.into())
                })
                .collect(),
            headers: auth
                .map(|a| vec![("authorization".to_string(), a.to_string())])
                .unwrap_or_default(),
        };
        let claims_of = |response: &Response| {
            let Body::Bytes(body) = &response.body else {
                panic!("no JSON body")
            };
            let value: Value = serde_json::from_slice(body).unwrap();
            let token = value["token"].as_str().unwrap().to_string();
            let parts: Vec<&str> = token.split('.').collect();
            assert_eq!(parts.len(), 3);
            let header: Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
            assert_eq!(header["alg"], "ES256");
            let x5c: Vec<Vec<u8>> = header["x5c"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| STANDARD.decode(c.as_str().unwrap()).unwrap())
                .collect();
            assert_eq!(x5c, [pki.signer_der.clone(), pki.ca_der.clone()]);
            let signer = KeyPair::from_der_and_sign_algo(
                &rustls::pki_types::PrivateKeyDer::Pkcs8(pki.signer_key_pkcs8.clone().into()),
                &rcgen::PKCS_ECDSA_P256_SHA256,
            )
            .unwrap();
            ring::signature::UnparsedPublicKey::new(
                &ring::signature::ECDSA_P256_SHA256_FIXED,
                signer.public_key_raw(),
            )
            .verify(
                format!("{}.{}", parts[0], parts[1]).as_bytes(),
                &URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
            )
            .expect("the signature verifies with the signer's key");
            let claims: Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
            assert_eq!(
                (claims["iss"].as_str(), claims["aud"].as_str()),
                (Some(ISSUER), Some(SERVICE))
            );
            claims["access"].clone()
        };
        let public = server.handle(&request(
            &format!("service={SERVICE}&scope=repository:debian:pull,push"),
            None,
        ));
        assert_eq!(public.status, 200);
        assert_eq!(
            claims_of(&public),
            serde_json::json!([{"type": "repository", "name": "debian", "actions": ["pull"]}])
        );
        let private = server.handle(&request(
            &format!("service={SERVICE}&scope=repository:private/x:pull"),
            None,
        ));
        assert_eq!(claims_of(&private), serde_json::json!([]));
        let basic = format!("Basic {}", STANDARD.encode("user:secret"));
        let authenticated = server.handle(&request(
            &format!("service={SERVICE}&scope=repository:private/x:pull,push"),
            Some(&basic),
        ));
        assert_eq!(
            claims_of(&authenticated),
            serde_json::json!([{"type": "repository", "name": "private/x", "actions": ["pull", "push"]}])
        );
        let wrong = format!("Basic {}", STANDARD.encode("user:wrong"));
        let refused = server.handle(&request(
            &format!("service={SERVICE}&scope=repository:debian:pull"),
            Some(&wrong),
        ));
        assert_eq!(refused.status, 401);
        let other_service = server.handle(&request(
            "service=elsewhere&scope=repository:debian:pull",
            None,
        ));
        assert_eq!(other_service.status, 400);
        let log = server.log.lock().unwrap();
        assert_eq!(log.len(), 5);
        assert_eq!(log[2].account.as_deref(), Some("user"));
        assert_eq!(log[2].granted, ["repository:private/x:pull,push"]);
    }
}
