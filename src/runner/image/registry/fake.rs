//! Test-only: a small HTTP/1.1 server on 127.0.0.1 (plain or TLS) that logs every request, and a
//! fake registry to run behind it (the distribution API's manifests, blobs with ranges, a token
//! service, Basic auth). Tests wrap the registry's handler to inject failures.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

/// A fresh directory of this test process's own.
pub(crate) fn tempdir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "unshare-run-registry-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub(crate) fn sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    format!(
        "sha256:{}",
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// Names lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The server's own `scheme://127.0.0.1:port`.
    pub base: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send the headers (with the full Content-Length) and this many bytes, then drop the
    /// connection.
    pub cut_after: Option<usize>,
    /// HEAD: the Content-Length of the body, and no body.
    pub head: bool,
}

impl Reply {
    pub fn new(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            cut_after: None,
            head: false,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Reply {
        self.body = body.into();
        self
    }

    pub fn cut_after(mut self, bytes: usize) -> Reply {
        self.cut_after = Some(bytes);
        self
    }

    /// A distribution API error body.
    pub fn error(status: u16, code: &str, message: &str) -> Reply {
        Reply::new(status)
            .header("Content-Type", "application/json")
            .body(format!(
                r#"{{"errors":[{{"code":"{code}","message":"{message}"}}]}}"#
            ))
    }
}

type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

pub(crate) struct Server {
    pub port: u16,
    scheme: &'static str,
    log: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Server {
        Self::spawn(None, Arc::new(handler))
    }

    pub fn start_tls(
        config: Arc<rustls::ServerConfig>,
        handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> Server {
        Self::spawn(Some(config), Arc::new(handler))
    }

    fn spawn(tls: Option<Arc<rustls::ServerConfig>>, handler: Handler) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base = format!("{scheme}://127.0.0.1:{port}");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (log, stop) = (log.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (handler, log, tls, base) =
                        (handler.clone(), log.clone(), tls.clone(), base.clone());
                    std::thread::spawn(move || serve(stream, tls, &handler, &log, &base));
                }
            })
        };
        Server {
            port,
            scheme,
            log,
            stop,
            thread: Some(thread),
        }
    }

    pub fn base(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }

    pub fn authority(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One request per connection: the reply says `Connection: close`.
fn serve(
    stream: TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
    handler: &Handler,
    log: &Mutex<Vec<Request>>,
    base: &str,
) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    match tls {
        None => exchange(stream, handler, log, base),
        Some(config) => {
            let Ok(connection) = rustls::ServerConnection::new(config) else {
                return;
            };
            exchange(
                rustls::StreamOwned::new(connection, stream),
                handler,
                log,
                base,
            )
        }
    }
}

fn exchange<S: Read + Write>(stream: S, handler: &Handler, log: &Mutex<Vec<Request>>, base: &str) {
    let mut reader = BufReader::new(stream);
    let Some(request) = read_request(&mut reader, base) else {
        return;
    };
    log.lock().unwrap().push(request.clone());
    let reply = handler(&request);
    let stream = reader.get_mut();
    let mut head = format!("HTTP/1.1 {} X\r\n", reply.status);
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !reply
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    if !reply.head {
        let body = match reply.cut_after {
            Some(n) => &reply.body[..n.min(reply.body.len())],
            None => &reply.body[..],
        };
        let _ = stream.write_all(body);
    }
    let _ = stream.flush();
}

fn read_request<R: BufRead>(reader: &mut R, base: &str) -> Option<Request> {
    // A TLS handshake at a plain server (a client trying https first): drop it at once, as a
    // real server's error would end it.
    if reader.fill_buf().ok()?.first() == Some(&0x16) {
        return None;
    }
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body,
        base: base.to_string(),
    })
}

/// How the fake registry wants to be authenticated.
#[derive(Debug, Clone)]
pub(crate) enum Auth {
    Open,
    /// Bearer tokens from `/token` on the same server; `login` is the Basic user and password the
    /// token service requires (None: anonymous tokens); `identity_token` a refresh token it trades
    /// by POST.
    Bearer {
        login: Option<(String, String)>,
        identity_token: Option<String>,
    },
    Basic(String, String),
}

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

#[derive(Default)]
struct State {
    /// (repository, tag or digest) -> (content type, bytes)
    manifests: HashMap<(String, String), (String, Vec<u8>)>,
    blobs: HashMap<String, Vec<u8>>,
    /// Tokens the registry accepts now.
    tokens: Vec<String>,
    issued: usize,
}

pub(crate) struct Registry {
    auth: Auth,
    state: Mutex<State>,
}

impl Registry {
    pub fn new(auth: Auth) -> Arc<Registry> {
        Arc::new(Registry {
            auth,
            state: Mutex::new(State::default()),
        })
    }

    pub fn blob(&self, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        self.state
            .lock()
            .unwrap()
            .blobs
            .insert(digest.clone(), bytes.to_vec());
        digest
    }

    /// Stores a manifest under its digest and, if given, a tag; returns the digest.
    pub fn manifest(
        &self,
        repository: &str,
        tag: Option<&str>,
        content_type: &str,
        bytes: &[u8],
    ) -> String {
        let digest = sha256(bytes);
        let mut state = self.state.lock().unwrap();
        for reference in tag.into_iter().chain([digest.as_str()]) {
            state.manifests.insert(
                (repository.into(), reference.into()),
                (content_type.into(), bytes.to_vec()),
            );
        }
        digest
    }

    /// An image of `layers` for `architecture`: its config and layers stored as blobs, its
    /// manifest under `tag`. Returns (manifest digest, config digest, config bytes).
    pub fn image(
        &self,
        repository: &str,
        tag: Option<&str>,
        architecture: &str,
        layers: &[&[u8]],
    ) -> (String, String, Vec<u8>) {
        let config = format!(
            r#"{{"architecture":"{architecture}","os":"linux","config":{{"Cmd":["sh"]}},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#
        )
        .into_bytes();
        let config_digest = self.blob(&config);
        let layers: Vec<String> = layers
            .iter()
            .map(|layer| {
                format!(
                    r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":{}}}"#,
                    self.blob(layer),
                    layer.len()
                )
            })
            .collect();
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{}]}}"#,
            config.len(),
            layers.join(",")
        );
        let digest = self.manifest(repository, tag, OCI_MANIFEST, manifest.as_bytes());
        (digest, config_digest, config)
    }

    /// Every token issued so far stops being accepted (as if expired).
    pub fn revoke_tokens(&self) {
        self.state.lock().unwrap().tokens.clear();
    }

    pub fn tokens_issued(&self) -> usize {
        self.state.lock().unwrap().issued
    }

    /// The distribution API's answer to `request`.
    pub fn handle(&self, request: &Request) -> Reply {
        let path = request.path.split('?').next().unwrap_or("");
        if path == "/token" {
            return self.token(request);
        }
        if let Some(refused) = self.refuse_unauthorised(request) {
            return refused;
        }
        if path == "/v2/" {
            return Reply::new(200).body("{}");
        }
        let head = request.method == "HEAD";
        let reply = if let Some((repository, reference)) = split_api(path, "/manifests/") {
            let state = self.state.lock().unwrap();
            match state.manifests.get(&(repository.into(), reference.into())) {
                Some((content_type, bytes)) => Reply::new(200)
                    .header("Content-Type", content_type)
                    .header("Docker-Content-Digest", &sha256(bytes))
                    .body(bytes.clone()),
                None => Reply::error(404, "MANIFEST_UNKNOWN", "manifest unknown"),
            }
        } else if let Some((_, digest)) = split_api(path, "/blobs/") {
            let state = self.state.lock().unwrap();
            match state.blobs.get(digest) {
                Some(bytes) => ranged(request, bytes),
                None => Reply::error(404, "BLOB_UNKNOWN", "blob unknown to registry"),
            }
        } else {
            Reply::error(404, "NAME_UNKNOWN", "repository name not known to registry")
        };
        Reply { head, ..reply }
    }

    fn refuse_unauthorised(&self, request: &Request) -> Option<Reply> {
        let given = request.header("authorization");
        match &self.auth {
            Auth::Open => None,
            Auth::Basic(user, password) => {
                let expected = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
                );
                (given != Some(expected.as_str())).then(|| {
                    Reply::error(401, "UNAUTHORIZED", "authentication required")
                        .header("WWW-Authenticate", r#"Basic realm="fake registry""#)
                })
            }
            Auth::Bearer { .. } => {
                let state = self.state.lock().unwrap();
                let ok = given
                    .and_then(|g| g.strip_prefix("Bearer "))
                    .is_some_and(|t| state.tokens.iter().any(|known| known == t));
                let repository = request
                    .path
                    .strip_prefix("/v2/")
                    .and_then(|p| p.rsplit_once("/manifests/").or(p.rsplit_once("/blobs/")))
                    .map(|(r, _)| r.to_string())
                    .unwrap_or_default();
                (!ok).then(|| {
                    Reply::error(401, "UNAUTHORIZED", "authentication required").header(
                        "WWW-Authenticate",
                        &format!(
                            r#"Bearer realm="{}/token",service="fake-registry",scope="repository:{repository}:pull""#,
                            request.base
                        ),
                    )
                })
            }
        }
    }

    fn token(&self, request: &Request) -> Reply {
        let Auth::Bearer {
            login,
            identity_token,
        } = &self.auth
        else {
            return Reply::new(404);
        };
        let query = request.path.split_once('?').map(|(_, q)| q).unwrap_or("");
        let form = String::from_utf8_lossy(&request.body).to_string();
        let fields = match request.method.as_str() {
            "POST" => form.as_str(),
            _ => query,
        };
        let field = |name: &str| {
            fields
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.replace("%3A", ":").replace("%2F", "/"))
        };
        // No scope is a login's request: a token that proves the credentials and grants nothing
        // more (the fake does not track grants).
        if field("service").as_deref() != Some("fake-registry")
            || !field("scope").is_none_or(|s| s.starts_with("repository:") && s.ends_with(":pull"))
        {
            return Reply::new(400).body("bad service or scope");
        }
        let allowed = match request.method.as_str() {
            "POST" => {
                field("grant_type").as_deref() == Some("refresh_token")
                    && field("client_id").as_deref() == Some("unshare-run")
                    && identity_token.is_some()
                    && field("refresh_token") == *identity_token
            }
            _ => match login {
                None => true,
                Some((user, password)) => {
                    request.header("authorization")
                        == Some(&format!(
                            "Basic {}",
                            base64::engine::general_purpose::STANDARD
                                .encode(format!("{user}:{password}"))
                        ))
                }
            },
        };
        if !allowed {
            return Reply::error(401, "UNAUTHORIZED", "bad credentials");
        }
        let mut state = self.state.lock().unwrap();
        state.issued += 1;
        let token = format!("token-{}", state.issued);
        state.tokens.push(token.clone());
        let key = match request.method.as_str() {
            "POST" => "access_token",
            _ => "token",
        };
        Reply::new(200)
            .header("Content-Type", "application/json")
            .body(format!(r#"{{"{key}":"{token}","expires_in":300}}"#))
    }
}

/// `/v2/NAME/manifests/REF` -> (NAME, REF).
fn split_api<'a>(path: &'a str, kind: &str) -> Option<(&'a str, &'a str)> {
    path.strip_prefix("/v2/")?.rsplit_once(kind)
}

/// A blob, or the part a `Range: bytes=N-` asks for (206).
pub(crate) fn ranged(request: &Request, bytes: &[u8]) -> Reply {
    let start = request
        .header("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    match start {
        Some(start) if start < bytes.len() => Reply::new(206)
            .header(
                "Content-Range",
                &format!("bytes {start}-{}/{}", bytes.len() - 1, bytes.len()),
            )
            .body(bytes[start..].to_vec()),
        Some(_) => Reply::new(416),
        None => Reply::new(200).body(bytes.to_vec()),
    }
}

/// A CA made for one test, and leaf certificates it signs.
pub(crate) struct TestCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "unshare-run test CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        TestCa {
            issuer: rcgen::CertifiedIssuer::self_signed(params, key).unwrap(),
        }
    }

    pub fn ca_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf certificate for `name` (an IP address or host) and its key, in PEM.
    pub fn leaf(&self, name: &str) -> (String, String) {
        let params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A server configuration for 127.0.0.1 with a leaf of this CA.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key_der)
        .unwrap();
        Arc::new(config)
    }
}
