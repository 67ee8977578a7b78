//! The registry client: the distribution API's pull side over blocking HTTP (ureq on rustls). One
//! `Client` per reference; it picks the endpoint (mirrors, then the registry), authenticates
//! (bearer tokens, Basic), fetches and verifies manifests and the config, and downloads blobs with
//! resumption. Redirects are followed here, so that credentials never leave the registry's origin.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use ureq::http::{self, Method, StatusCode, Uri};

use super::auth::{self, Credentials, Found};
use super::challenge::{self, Challenge};
use super::conf::{RegistriesConf, describe_files};
use super::environment::Environment;
use super::manifest::{self, ACCEPT, Descriptor, MAX_DOCUMENT, Manifest};
use super::platform::Platform;
use super::reference::{DOCKER_HUB, Reference, validate_digest};
use super::tls;
use crate::runner::error::RunError;

/// Where Docker Hub's API is.
const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The identity podman-style token requests give (`client_id`).
const CLIENT_ID: &str = "unshare-run";
const MAX_REDIRECTS: usize = 8;
/// An unreachable host fails within this (each of DNS and connect).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// A registry that sends nothing for this long is treated as a dropped connection.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Error bodies are read only this far, for their message.
const MAX_ERROR_BODY: u64 = 64 << 10;
/// Token service answers are small JSON.
const MAX_TOKEN_BODY: u64 = 1 << 20;
/// A token without `expires_in` lives this long (the distribution token spec's default).
const DEFAULT_TOKEN_LIFE: Duration = Duration::from_secs(60);
/// A token is renewed this long before it expires, so that it does not expire in flight.
const TOKEN_MARGIN: Duration = Duration::from_secs(5);

/// What a pull is asked to do beyond the reference.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// --authfile: the only credentials file read.
    pub authfile: Option<PathBuf>,
    /// --tls-verify: Some(false) accepts any certificate and plain http; Some(true) verifies
    /// even a registry registries.conf marks insecure.
    pub tls_verify: Option<bool>,
    pub platform: Platform,
}

/// An image's manifest as the registry has it for a platform, and its verified config.
#[derive(Debug, Clone)]
pub struct RemoteImage {
    /// The digest of the manifest the reference names (an index's, when it names one): what
    /// `Client::manifest_digest` returns while the reference still names this image.
    pub manifest_digest: String,
    pub config_digest: String,
    /// The config blob's bytes, checked against config_digest.
    pub config: Vec<u8>,
    pub layers: Vec<Descriptor>,
}

/// How often and how patiently requests are retried (429, 5xx, dropped connections).
#[derive(Debug, Clone, Copy)]
pub(super) struct RetryPolicy {
    /// Tries of one request without progress.
    pub attempts: u32,
    /// The first wait; it doubles each time.
    pub backoff: Duration,
    /// No single wait (a Retry-After included) is longer.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            backoff: Duration::from_secs(1),
            max_wait: Duration::from_secs(30),
        }
    }
}

/// A client for one reference. Send + Sync: blobs are fetched from several threads at once.
pub struct Client {
    /// The reference as asked for, for messages.
    reference: Reference,
    /// Mirrors first, then the registry.
    endpoints: Vec<Endpoint>,
    /// The endpoint that answered the manifest: blobs come from the same one.
    chosen: Mutex<Option<usize>>,
    platform: Platform,
    retry: RetryPolicy,
    authfile: Option<PathBuf>,
    credential_helpers: Option<Vec<String>>,
    env: Environment,
}

struct Endpoint {
    /// The reference at this endpoint (a mirror's host and path). A login's has no repository.
    reference: Reference,
    /// Where connections go: `host[:port]` (Docker Hub's API host for docker.io).
    host: String,
    insecure: bool,
    is_mirror: bool,
    /// What bearer tokens are asked to grant: `repository:NAME:pull` for a pull; None for a login,
    /// which only proves the credentials (distribution's token services answer that too).
    token_scope: Option<String>,
    agent: ureq::Agent,
    session: Mutex<Session>,
}

impl Endpoint {
    /// An endpoint for `reference` at its registry's host, with its TLS set-up and proxy. No
    /// network traffic yet.
    fn new(
        reference: Reference,
        insecure: bool,
        is_mirror: bool,
        token_scope: Option<String>,
        env: &Environment,
    ) -> Result<Endpoint, RunError> {
        let host = match reference.registry.as_str() {
            DOCKER_HUB => DOCKER_HUB_API.to_string(),
            other => other.to_string(),
        };
        let tls = tls::config_for(env, &host, insecure)?;
        let proxy = match is_loopback(&host) {
            // As Go's net/http (podman's) does: a proxy is never used for loopback.
            true => None,
            false => ureq::Proxy::try_from_env(),
        };
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .tls_config(tls)
            .proxy(proxy)
            .timeout_resolve(Some(CONNECT_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_recv_response(Some(READ_TIMEOUT))
            .timeout_per_read(Some(READ_TIMEOUT))
            .user_agent(format!("unshare-run/{}", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Endpoint {
            reference,
            host,
            insecure,
            is_mirror,
            token_scope,
            agent: ureq::Agent::new_with_config(config),
            session: Mutex::new(Session::default()),
        })
    }
}

/// What an endpoint has told us so far.
#[derive(Default)]
struct Session {
    /// `https://host[:port]`, or `http://` for an insecure registry without TLS; set by the ping.
    base: Option<String>,
    /// How the registry wants to be authenticated; None: not at all (or not yet known).
    challenge: Option<Challenge>,
    token: Option<Token>,
    /// The credentials lookup, made once when first needed.
    found: Option<Found>,
}

struct Token {
    value: String,
    renew_at: Instant,
}

/// What a registry said to a login's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Accepted,
    /// Who refused them and how: "its token service answered 401: ...".
    Refused(String),
}

/// A failed try, and whether trying again may help.
struct Failure {
    error: RunError,
    retry: Retry,
}

enum Retry {
    No,
    /// After the registry's Retry-After, or the backoff.
    After(Option<Duration>),
}

impl From<RunError> for Failure {
    fn from(error: RunError) -> Failure {
        Failure {
            error,
            retry: Retry::No,
        }
    }
}

impl Failure {
    fn transient(error: RunError, after: Option<Duration>) -> Failure {
        Failure {
            error,
            retry: Retry::After(after),
        }
    }
}

/// A manifest as fetched: its bytes, Content-Type and Docker-Content-Digest.
type Fetched = (Vec<u8>, Option<String>, Option<String>);

/// What a request was for, for the messages of its failures.
#[derive(Clone, Copy)]
enum What<'a> {
    Ping,
    Manifest(&'a str),
    Blob(&'a str),
    Token,
}

impl Client {
    /// Chooses the endpoints (registries.conf's mirrors first, then the registry at its location;
    /// a blocked registry is refused) and their TLS set-up. No network traffic yet.
    pub fn new(
        reference: &Reference,
        conf: &RegistriesConf,
        options: &PullOptions,
    ) -> Result<Client, RunError> {
        Self::with_environment(reference, conf, options, Environment::of_process())
    }

    pub(crate) fn with_environment(
        reference: &Reference,
        conf: &RegistriesConf,
        options: &PullOptions,
        env: Environment,
    ) -> Result<Client, RunError> {
        let sources = conf.sources(reference).map_err(|why| {
            RunError::new(why).with_hint(format!(
                "pull it from elsewhere, or change the registries.conf entry ({})",
                describe_files(&conf.files)
            ))
        })?;
        let mut endpoints = Vec::new();
        for source in sources {
            let insecure = match options.tls_verify {
                Some(verify) => !verify,
                None => source.insecure,
            };
            let scope = format!("repository:{}:pull", source.reference.repository);
            endpoints.push(Endpoint::new(
                source.reference,
                insecure,
                source.is_mirror,
                Some(scope),
                &env,
            )?);
        }
        Ok(Client {
            reference: reference.clone(),
            endpoints,
            chosen: Mutex::new(None),
            platform: options.platform.clone(),
            retry: RetryPolicy::default(),
            authfile: options.authfile.clone(),
            credential_helpers: conf.credential_helpers.clone(),
            env,
        })
    }

    /// A client for the registry `host[:port]` itself (`docker.io` for Docker Hub), for a login:
    /// no mirrors and no repository, insecure if registries.conf marks the host so (or
    /// `tls_verify` says). No network traffic yet.
    pub(super) fn for_login(
        registry: &str,
        conf: &RegistriesConf,
        tls_verify: Option<bool>,
        env: Environment,
    ) -> Result<Client, RunError> {
        let reference = Reference {
            registry: registry.to_string(),
            repository: String::new(),
            tag: None,
            digest: None,
        };
        let insecure = match tls_verify {
            Some(verify) => !verify,
            None => conf.is_insecure(registry),
        };
        let endpoint = Endpoint::new(reference.clone(), insecure, false, None, &env)?;
        Ok(Client {
            reference,
            endpoints: vec![endpoint],
            chosen: Mutex::new(None),
            platform: Platform::host(),
            retry: RetryPolicy::default(),
            authfile: None,
            credential_helpers: None,
            env,
        })
    }

    /// Whether the registry accepts `username` and `password`, checked the way a pull
    /// authenticates (and podman login checks): `GET /v2/`; on a Bearer challenge a token from its
    /// token service with these Basic credentials (for no repository), on a Basic challenge the
    /// credentials themselves; then `GET /v2/` with them. A registry that asks for nothing accepts
    /// anyone. Errors are failures to ask (network, TLS, the registry's own trouble), not refusals.
    pub(super) fn check_login(&self, username: &str, password: &str) -> Result<Verdict, RunError> {
        // A login's client has the registry as its one endpoint.
        let endpoint = self.endpoints.last().ok_or_else(|| {
            RunError::new(format!("no registry to log into for {}", self.reference))
        })?;
        let base = self.retrying(|| self.base(endpoint))?;
        let Some(challenge) = lock(&endpoint.session).challenge.clone() else {
            return Ok(Verdict::Accepted);
        };
        let credentials = Credentials::Basic {
            username: username.to_string(),
            password: password.to_string(),
        };
        let authorization = match challenge.scheme.as_str() {
            "basic" => auth::basic_header(username, password),
            _ => {
                let answer = self.retrying(|| {
                    let response = self.request_token(endpoint, &challenge, Some(&credentials))?;
                    refusal_or(response, "its token service", |response| {
                        self.check_status(endpoint, response, What::Token)
                    })
                })?;
                match answer {
                    Err(refusal) => return Ok(Verdict::Refused(refusal)),
                    Ok(response) => format!("Bearer {}", read_token(endpoint, response)?.value),
                }
            }
        };
        let url = format!("{base}/v2/");
        let answer = self.retrying(|| {
            let response = self.follow(
                endpoint,
                Method::GET,
                &url,
                &[],
                None,
                Some((base.as_str(), authorization.as_str())),
                What::Ping,
            )?;
            refusal_or(response, "the registry", |response| {
                self.check_status(endpoint, response, What::Ping)
            })
        })?;
        Ok(match answer {
            Ok(_) => Verdict::Accepted,
            Err(refusal) => Verdict::Refused(refusal),
        })
    }

    #[cfg(test)]
    pub(super) fn with_retry(mut self, retry: RetryPolicy) -> Client {
        self.retry = retry;
        self
    }

    /// The image for the platform: the manifest by tag or digest, an index resolved by platform,
    /// every manifest checked against its digest, then the config fetched and checked.
    pub fn image(&self) -> Result<RemoteImage, RunError> {
        self.on_endpoints(|endpoint| self.image_at(endpoint))
    }

    /// The digest of the manifest the reference names now, by HEAD (Docker Hub counts GETs, not
    /// HEADs); None if the registry sends no Docker-Content-Digest.
    pub fn manifest_digest(&self) -> Result<Option<String>, RunError> {
        if let Some(digest) = &self.reference.digest {
            return Ok(Some(digest.clone()));
        }
        self.on_endpoints(|endpoint| {
            let reference = endpoint.reference.manifest_reference();
            let path = format!(
                "/v2/{}/manifests/{reference}",
                endpoint.reference.repository
            );
            self.retrying(|| {
                let response =
                    self.request(endpoint, Method::HEAD, &path, &[("Accept", ACCEPT.into())])?;
                let response = self.check_status(endpoint, response, What::Manifest(reference))?;
                Ok(header(&response, "docker-content-digest")
                    .filter(|d| validate_digest(d).is_ok())
                    .map(String::from))
            })
        })
    }

    /// Downloads the blob into `partial` (open for reading and writing), continuing after what it
    /// already holds (`Range: bytes=N-`, asking the registry again, since a redirect's signed URL
    /// may have expired), and checks the whole file against the digest. `progress` gets the bytes
    /// added (after a start-over, when the registry answers a range with the whole blob, those
    /// bytes again). 429, 5xx and dropped connections are retried, resuming each time. A mismatch
    /// is an error naming the digest; the caller removes the file.
    pub fn fetch_blob(
        &self,
        descriptor: &Descriptor,
        partial: &mut File,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), RunError> {
        validate_digest(&descriptor.digest).map_err(RunError::new)?;
        self.on_endpoints(|endpoint| self.fetch_blob_at(endpoint, descriptor, partial, progress))
    }

    /// Runs `attempt` on the chosen endpoint, or on each in order until one succeeds (remembering
    /// it). The error is the registry's (the last endpoint's), noting what the mirrors said.
    fn on_endpoints<T>(
        &self,
        mut attempt: impl FnMut(&Endpoint) -> Result<T, RunError>,
    ) -> Result<T, RunError> {
        let chosen = *lock(&self.chosen);
        let order: Vec<usize> = match chosen {
            Some(at) => vec![at],
            None => (0..self.endpoints.len()).collect(),
        };
        let mut mirror_errors = Vec::new();
        let mut last = None;
        for at in order {
            let endpoint = &self.endpoints[at];
            match attempt(endpoint) {
                Ok(value) => {
                    *lock(&self.chosen) = Some(at);
                    return Ok(value);
                }
                Err(error) if endpoint.is_mirror => {
                    mirror_errors.push(format!("{}: {}", endpoint.host, error.message));
                    last = Some(error);
                }
                Err(error) => {
                    last = Some(error);
                    break;
                }
            }
        }
        let mut error = last.unwrap_or_else(|| {
            RunError::new(format!("no registry to pull {} from", self.reference))
        });
        if !mirror_errors.is_empty() && chosen.is_none() {
            error.message = format!(
                "{} (the mirrors failed first: {})",
                error.message,
                mirror_errors.join("; ")
            );
        }
        Err(error)
    }

    fn image_at(&self, endpoint: &Endpoint) -> Result<RemoteImage, RunError> {
        let reference = endpoint.reference.manifest_reference();
        let (bytes, content_type, said_digest) = self.manifest_bytes(endpoint, reference)?;
        let top_digest = sha256_of(&bytes);
        let expected = endpoint
            .reference
            .digest
            .as_deref()
            .or(said_digest.as_deref());
        if let Some(expected) = expected
            && expected != top_digest
        {
            return Err(mismatch(
                &format!("the manifest of {}", self.reference),
                expected,
                &top_digest,
            ));
        }
        let unusable =
            |why: String| RunError::new(format!("cannot pull {}: {why}", self.reference));
        let mut manifest = manifest::parse(content_type.as_deref(), &bytes).map_err(unusable)?;
        // An index may name another index (rarely); two levels are plenty.
        for _ in 0..3 {
            match manifest {
                Manifest::Index(entries) => {
                    let entry = manifest::choose(&entries, &self.platform).map_err(|there| {
                        RunError::new(format!(
                            "{} has no image for {}: it has {}",
                            self.reference,
                            self.platform,
                            match there.is_empty() {
                                true => "none".to_string(),
                                false => there.join(", "),
                            }
                        ))
                        .with_hint("choose one of those with --platform OS/ARCH[/VARIANT]")
                    })?;
                    let digest = &entry.descriptor.digest;
                    if entry.descriptor.size > MAX_DOCUMENT {
                        return Err(unusable(format!(
                            "its manifest {digest} is larger than {} MiB",
                            MAX_DOCUMENT >> 20
                        )));
                    }
                    let (bytes, content_type, _) = self.manifest_bytes(endpoint, digest)?;
                    let actual = sha256_of(&bytes);
                    if actual != *digest {
                        return Err(mismatch(
                            &format!("the manifest {digest} of {}", self.reference),
                            digest,
                            &actual,
                        ));
                    }
                    manifest =
                        manifest::parse(content_type.as_deref(), &bytes).map_err(unusable)?;
                }
                Manifest::Image { config, layers } => {
                    let config_bytes = self.config_blob(endpoint, &config)?;
                    return Ok(RemoteImage {
                        manifest_digest: top_digest,
                        config_digest: config.digest,
                        config: config_bytes,
                        layers,
                    });
                }
            }
        }
        Err(unusable("its indexes nest too deep".into()))
    }

    /// A manifest's bytes, content type and Docker-Content-Digest.
    fn manifest_bytes(&self, endpoint: &Endpoint, reference: &str) -> Result<Fetched, RunError> {
        let path = format!(
            "/v2/{}/manifests/{reference}",
            endpoint.reference.repository
        );
        self.retrying(|| {
            let response =
                self.request(endpoint, Method::GET, &path, &[("Accept", ACCEPT.into())])?;
            let response = self.check_status(endpoint, response, What::Manifest(reference))?;
            let content_type = header(&response, "content-type").map(String::from);
            let digest = header(&response, "docker-content-digest")
                .filter(|d| d.starts_with("sha256:"))
                .map(String::from);
            let bytes = read_limited(
                response,
                MAX_DOCUMENT,
                &format!("the manifest of {}", self.reference),
            )?;
            Ok((bytes, content_type, digest))
        })
    }

    fn config_blob(&self, endpoint: &Endpoint, config: &Descriptor) -> Result<Vec<u8>, RunError> {
        if config.size > MAX_DOCUMENT {
            return Err(RunError::new(format!(
                "cannot pull {}: its config is {} bytes, more than the {} MiB a config may have",
                self.reference,
                config.size,
                MAX_DOCUMENT >> 20
            )));
        }
        let path = format!(
            "/v2/{}/blobs/{}",
            endpoint.reference.repository, config.digest
        );
        let bytes = self.retrying(|| {
            let response = self.request(endpoint, Method::GET, &path, &[])?;
            let response = self.check_status(endpoint, response, What::Blob(&config.digest))?;
            read_limited(
                response,
                MAX_DOCUMENT,
                &format!("the config of {}", self.reference),
            )
        })?;
        let actual = sha256_of(&bytes);
        if actual != config.digest || bytes.len() as u64 != config.size {
            return Err(mismatch(
                &format!("the config of {}", self.reference),
                &config.digest,
                &actual,
            ));
        }
        Ok(bytes)
    }

    fn fetch_blob_at(
        &self,
        endpoint: &Endpoint,
        descriptor: &Descriptor,
        partial: &mut File,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), RunError> {
        let file_error =
            |e: std::io::Error| RunError::sys(format!("the download of {}", descriptor.digest), e);
        // What the file holds already counts towards the digest.
        let mut have = partial.metadata().map_err(file_error)?.len();
        if have > descriptor.size {
            partial.set_len(0).map_err(file_error)?;
            have = 0;
        }
        let mut hasher = Sha256::new();
        partial.seek(SeekFrom::Start(0)).map_err(file_error)?;
        let mut buffer = vec![0u8; 256 << 10];
        let mut hashed = 0u64;
        while hashed < have {
            let n = partial.read(&mut buffer).map_err(file_error)?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            hashed += n as u64;
        }
        let path = format!(
            "/v2/{}/blobs/{}",
            endpoint.reference.repository, descriptor.digest
        );
        self.retrying_with_progress(|made_progress| {
            if have == descriptor.size {
                return Ok(());
            }
            let range = [("Range", format!("bytes={have}-"))];
            let headers: &[(&str, String)] = if have > 0 { &range } else { &[] };
            let response = self.request(endpoint, Method::GET, &path, headers)?;
            if response.status() == StatusCode::RANGE_NOT_SATISFIABLE {
                // The registry cannot serve the rest: start over without a range.
                partial.set_len(0).map_err(file_error)?;
                have = 0;
                hasher = Sha256::new();
                return Err(Failure::transient(
                    RunError::new(format!("{} refused to resume blob {}", endpoint.host, descriptor.digest)),
                    Some(Duration::ZERO),
                ));
            }
            let response = self.check_status(endpoint, response, What::Blob(&descriptor.digest))?;
            let resumed = response.status() == StatusCode::PARTIAL_CONTENT
                && header(&response, "content-range")
                    .and_then(|r| r.strip_prefix("bytes "))
                    .and_then(|r| r.split('-').next())
                    .and_then(|start| start.parse::<u64>().ok())
                    == Some(have);
            if have > 0 && !resumed {
                // A 200 (or a range we did not ask for): the whole blob comes, so start over.
                partial.set_len(0).map_err(file_error)?;
                have = 0;
                hasher = Sha256::new();
            }
            partial.seek(SeekFrom::Start(have)).map_err(file_error)?;
            let mut body = response.into_body().into_reader();
            loop {
                let n = match body.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) => {
                        return Err(Failure::transient(
                            RunError::new(format!(
                                "the download of {} from {} broke off after {have} of {} bytes: {e}",
                                descriptor.digest, endpoint.host, descriptor.size
                            )),
                            None,
                        ));
                    }
                };
                if have + n as u64 > descriptor.size {
                    return Err(Failure::from(RunError::new(format!(
                        "blob {} is larger than the {} bytes its manifest says: the registry sent other content",
                        descriptor.digest, descriptor.size
                    ))));
                }
                partial.write_all(&buffer[..n]).map_err(file_error)?;
                hasher.update(&buffer[..n]);
                have += n as u64;
                *made_progress = true;
                progress(n as u64);
            }
            if have < descriptor.size {
                return Err(Failure::transient(
                    RunError::new(format!(
                        "the download of {} from {} ended after {have} of {} bytes",
                        descriptor.digest, endpoint.host, descriptor.size
                    )),
                    None,
                ));
            }
            Ok(())
        })?;
        let actual = hex_digest(hasher);
        if actual != descriptor.digest {
            return Err(mismatch(
                &format!("blob {}", descriptor.digest),
                &descriptor.digest,
                &actual,
            ));
        }
        Ok(())
    }

    /// Tries `attempt` again after transient failures, with backoff (or the registry's
    /// Retry-After), a few times.
    fn retrying<T>(&self, mut attempt: impl FnMut() -> Result<T, Failure>) -> Result<T, RunError> {
        self.retrying_with_progress(|_| attempt())
    }

    /// As `retrying`; a try that sets its flag (it made progress) does not count against the tries.
    fn retrying_with_progress<T>(
        &self,
        mut attempt: impl FnMut(&mut bool) -> Result<T, Failure>,
    ) -> Result<T, RunError> {
        let mut failures = 0;
        let mut wait = self.retry.backoff;
        loop {
            let mut made_progress = false;
            match attempt(&mut made_progress) {
                Ok(value) => return Ok(value),
                Err(Failure {
                    error,
                    retry: Retry::No,
                }) => return Err(error),
                Err(Failure {
                    error,
                    retry: Retry::After(after),
                }) => {
                    if made_progress {
                        failures = 0;
                        wait = self.retry.backoff;
                    }
                    failures += 1;
                    if failures >= self.retry.attempts {
                        let tries = self.retry.attempts;
                        return Err(RunError {
                            message: format!("{} (tried {tries} times)", error.message),
                            ..error
                        });
                    }
                    log::debug!("registry: {} (retrying)", error.message);
                    std::thread::sleep(after.unwrap_or(wait).min(self.retry.max_wait));
                    wait = (wait * 2).min(self.retry.max_wait);
                }
            }
        }
    }

    /// A request to the registry at `path` (`/v2/...`), authenticated as it asks, following
    /// redirects. A 401 renews the token once (expired, revoked, or a scope the ping did not show).
    fn request(
        &self,
        endpoint: &Endpoint,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
    ) -> Result<http::Response<ureq::Body>, Failure> {
        let base = self.base(endpoint)?;
        let url = format!("{base}{path}");
        let mut authorization = self.authorization(endpoint)?;
        let mut renewed = false;
        loop {
            // What::Ping: a network failure here is the registry's, whatever was asked.
            let sent_authorization = authorization.as_ref().map(|a| (base.as_str(), a.as_str()));
            let response = self.follow(
                endpoint,
                method.clone(),
                &url,
                headers,
                None,
                sent_authorization,
                What::Ping,
            )?;
            if response.status() != StatusCode::UNAUTHORIZED || renewed {
                return Ok(response);
            }
            let offered = challenge::preferred(header_values(&response, "www-authenticate"));
            let mut session = lock(&endpoint.session);
            let current = session
                .token
                .as_ref()
                .map(|t| format!("Bearer {}", t.value));
            // Our token refused: drop it. Another thread's newer token: just use that one.
            let ours_refused = current.is_some() && current == authorization;
            let renewed_elsewhere = current.is_some() && current != authorization;
            if ours_refused {
                session.token = None;
            }
            let changed = offered.is_some() && offered != session.challenge;
            if offered.is_some() {
                session.challenge = offered;
            }
            drop(session);
            if !(changed || ours_refused || renewed_elsewhere) {
                // Nothing new to try: the credentials themselves are refused.
                return Ok(response);
            }
            renewed = true;
            authorization = self.authorization(endpoint)?;
        }
    }

    /// Sends one request and follows redirects. `authorization` is (origin, header value): sent
    /// only to that origin (scheme, host and port), never to a redirect's other host.
    #[allow(clippy::too_many_arguments)]
    fn follow(
        &self,
        endpoint: &Endpoint,
        mut method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Option<(&str, Vec<u8>)>,
        authorization: Option<(&str, &str)>,
        what: What<'_>,
    ) -> Result<http::Response<ureq::Body>, Failure> {
        let auth_origin = authorization.and_then(|(origin, _)| origin_of(origin));
        let mut url = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let uri: Uri = url.parse().map_err(|_| {
                RunError::new(format!(
                    "{}: the registry sent an invalid URL {url}",
                    endpoint.host
                ))
            })?;
            let mut request = http::Request::builder()
                .method(method.clone())
                .uri(uri.clone());
            for (name, value) in headers {
                request = request.header(*name, value);
            }
            if let Some((_, value)) = authorization
                && auth_origin.is_some()
                && origin_of(&url) == auth_origin
            {
                request = request.header("Authorization", value);
            }
            let sent = match &body {
                Some((content_type, bytes)) => request
                    .header("Content-Type", *content_type)
                    .body(bytes.clone())
                    .map(|r| endpoint.agent.run(r)),
                None => request.body(()).map(|r| endpoint.agent.run(r)),
            };
            let response = match sent {
                Ok(Ok(response)) => response,
                Ok(Err(error)) => return Err(network_failure(endpoint, &uri, error, what)),
                Err(e) => {
                    return Err(RunError::new(format!(
                        "{}: cannot make a request for {url}: {e}",
                        endpoint.host
                    ))
                    .into());
                }
            };
            let status = response.status().as_u16();
            if !matches!(status, 301 | 302 | 303 | 307 | 308) {
                return Ok(response);
            }
            let Some(location) = header(&response, "location") else {
                return Ok(response);
            };
            let next = resolve(&url, location).ok_or_else(|| {
                RunError::new(format!(
                    "{}: the registry redirected to an invalid URL {location}",
                    endpoint.host
                ))
            })?;
            if next.starts_with("http://") && !endpoint.insecure {
                return Err(RunError::new(format!(
                    "{} redirected {url} to plain http ({next}), which is refused",
                    endpoint.host
                ))
                .with_hint("a registry marked insecure in registries.conf (or --tls-verify=false) may use http")
                .into());
            }
            if status == 303 {
                method = Method::GET;
            }
            log::debug!("registry: {status} redirect to another URL");
            url = next;
        }
        Err(RunError::new(format!("{}: too many redirects for {url}", endpoint.host)).into())
    }

    /// The endpoint's base URL, pinging `/v2/` the first time: https, or for an insecure
    /// registry http when https fails (as podman). The ping also says how to authenticate.
    fn base(&self, endpoint: &Endpoint) -> Result<String, Failure> {
        if let Some(base) = &lock(&endpoint.session).base {
            return Ok(base.clone());
        }
        let mut candidates = vec![format!("https://{}", endpoint.host)];
        if endpoint.insecure {
            candidates.push(format!("http://{}", endpoint.host));
        }
        let mut https_error = None;
        for candidate in &candidates {
            let url = format!("{candidate}/v2/");
            match self.follow(endpoint, Method::GET, &url, &[], None, None, What::Ping) {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let challenge = match status {
                        200..=299 => None,
                        401 => Some(
                            challenge::preferred(header_values(&response, "www-authenticate"))
                                .unwrap_or(Challenge {
                                    scheme: "basic".into(),
                                    params: Vec::new(),
                                }),
                        ),
                        429 | 500..=599 => {
                            // Worth another try, as check_status says.
                            let not_a_registry =
                                RunError::new(format!("{}: GET /v2/ gave {status}", endpoint.host));
                            return Err(self
                                .check_status(endpoint, response, What::Ping)
                                .err()
                                .unwrap_or(not_a_registry.into()));
                        }
                        _ => {
                            return Err(RunError::new(format!(
                                "{} does not answer as a container registry (GET /v2/ gave {status})",
                                endpoint.host
                            ))
                            .with_hint("check the registry's name and port")
                            .into());
                        }
                    };
                    let mut session = lock(&endpoint.session);
                    session.base = Some(candidate.clone());
                    session.challenge = challenge;
                    return Ok(candidate.clone());
                }
                Err(failure) if candidate.starts_with("https://") && candidates.len() > 1 => {
                    https_error = Some(failure.error.message);
                }
                Err(mut failure) => {
                    if let Some(https) = &https_error {
                        failure.error.message =
                            format!("{} (and over https: {https})", failure.error.message);
                    }
                    return Err(failure);
                }
            }
        }
        Err(RunError::new(format!("{}: no way to reach it", endpoint.host)).into())
    }

    /// The Authorization header for the registry, fetching a token if the challenge wants one.
    fn authorization(&self, endpoint: &Endpoint) -> Result<Option<String>, Failure> {
        let mut session = lock(&endpoint.session);
        let Some(challenge) = session.challenge.clone() else {
            return Ok(None);
        };
        let credentials = self.credentials(endpoint, &mut session)?;
        match challenge.scheme.as_str() {
            "basic" => Ok(match credentials {
                Some(Credentials::Basic { username, password }) => {
                    Some(auth::basic_header(&username, &password))
                }
                _ => None,
            }),
            _ => {
                if let Some(token) = &session.token
                    && Instant::now() < token.renew_at
                {
                    return Ok(Some(format!("Bearer {}", token.value)));
                }
                // Held across the token request: threads that need one wait for this one.
                let token =
                    self.fetch_token(endpoint, &challenge, credentials.as_ref(), &session)?;
                let value = format!("Bearer {}", token.value);
                session.token = Some(token);
                Ok(Some(value))
            }
        }
    }

    fn credentials(
        &self,
        endpoint: &Endpoint,
        session: &mut Session,
    ) -> Result<Option<Credentials>, RunError> {
        if session.found.is_none() {
            session.found = Some(auth::lookup(
                &self.env,
                self.authfile.as_deref(),
                self.credential_helpers.as_deref(),
                &endpoint.reference.registry,
                &endpoint.reference.repository,
            )?);
            if let Some(source) = session.found.as_ref().and_then(|f| f.source.as_ref()) {
                log::debug!(
                    "registry: credentials for {} from {source}",
                    endpoint.reference.registry
                );
            }
        }
        Ok(session.found.as_ref().and_then(|f| f.credentials.clone()))
    }

    /// A bearer token from the challenge's realm for what the endpoint is for (a pull of its
    /// repository): 429, 5xx and dropped connections are retried, a refusal says what was read.
    fn fetch_token(
        &self,
        endpoint: &Endpoint,
        challenge: &Challenge,
        credentials: Option<&Credentials>,
        session: &Session,
    ) -> Result<Token, Failure> {
        let response = self.retrying(|| {
            let response = self.request_token(endpoint, challenge, credentials)?;
            self.check_token_status(endpoint, response, session)
        })?;
        Ok(read_token(endpoint, response)?)
    }

    /// One request to the challenge's token service (its realm, which must be https unless the
    /// registry is insecure): a GET with the Basic credentials if there are any, or for an
    /// identity token the OAuth2 POST. The answer is the caller's to judge: a pull's and a
    /// login's differ in what a refusal means.
    fn request_token(
        &self,
        endpoint: &Endpoint,
        challenge: &Challenge,
        credentials: Option<&Credentials>,
    ) -> Result<http::Response<ureq::Body>, Failure> {
        let realm = challenge.param("realm").ok_or_else(|| {
            RunError::new(format!(
                "{} asks for a bearer token but names no token service (realm)",
                endpoint.host
            ))
        })?;
        if !(realm.starts_with("https://") || (realm.starts_with("http://") && endpoint.insecure)) {
            return Err(RunError::new(format!("{}: refusing the token service {realm}: not https", endpoint.host))
                .with_hint("a registry marked insecure in registries.conf (or --tls-verify=false) may use http")
                .into());
        }
        let mut fields = Vec::new();
        if let Some(service) = challenge.param("service") {
            fields.push(("service", service.to_string()));
        }
        if let Some(scope) = &endpoint.token_scope {
            fields.push(("scope", scope.clone()));
        }
        let query = |fields: &[(&str, String)]| {
            fields
                .iter()
                .map(|(k, v)| format!("{k}={}", percent_encode(v)))
                .collect::<Vec<_>>()
                .join("&")
        };
        match credentials {
            Some(Credentials::IdentityToken(refresh)) => {
                let mut form = vec![
                    ("grant_type", "refresh_token".to_string()),
                    ("refresh_token", refresh.clone()),
                    ("client_id", CLIENT_ID.to_string()),
                ];
                form.extend(fields.iter().cloned());
                self.follow(
                    endpoint,
                    Method::POST,
                    realm,
                    &[],
                    Some((
                        "application/x-www-form-urlencoded",
                        query(&form).into_bytes(),
                    )),
                    None,
                    What::Token,
                )
            }
            basic => {
                let url = match fields.is_empty() {
                    true => realm.to_string(),
                    false => {
                        let separator = if realm.contains('?') { '&' } else { '?' };
                        format!("{realm}{separator}{}", query(&fields))
                    }
                };
                let authorization = match basic {
                    Some(Credentials::Basic { username, password }) => {
                        Some(auth::basic_header(username, password))
                    }
                    _ => None,
                };
                self.follow(
                    endpoint,
                    Method::GET,
                    &url,
                    &[],
                    None,
                    authorization.as_deref().map(|a| (realm, a)),
                    What::Token,
                )
            }
        }
    }

    fn check_token_status(
        &self,
        endpoint: &Endpoint,
        response: http::Response<ureq::Body>,
        session: &Session,
    ) -> Result<http::Response<ureq::Body>, Failure> {
        match response.status().as_u16() {
            200..=299 => Ok(response),
            401 | 403 => Err(self
                .access_refused(
                    endpoint,
                    response,
                    session.found.as_ref(),
                    "its token service refused the credentials",
                )
                .into()),
            _ => self.check_status(endpoint, response, What::Token),
        }
    }

    /// 2xx passes; 429 and 5xx are worth another try; 401/403 and 404 are errors that say what to
    /// do; anything else is an error with the registry's message.
    fn check_status(
        &self,
        endpoint: &Endpoint,
        response: http::Response<ureq::Body>,
        what: What<'_>,
    ) -> Result<http::Response<ureq::Body>, Failure> {
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let retry_after = header(&response, "retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let subject = match what {
            What::Ping => format!("registry {}", endpoint.host),
            What::Manifest(reference) => {
                format!("the manifest {reference} of {}", endpoint.reference.name())
            }
            What::Blob(digest) => format!("blob {digest} of {}", endpoint.reference.name()),
            What::Token => format!("the token service of {}", endpoint.host),
        };
        match status {
            401 | 403 => {
                let session = lock(&endpoint.session);
                Err(self.access_refused(endpoint, response, session.found.as_ref(), "").into())
            }
            404 => {
                let said = registry_message(response);
                let (message, hint) = match what {
                    What::Manifest(_) => (
                        format!(
                            "{}: no image {}:{} there (manifest unknown{said})",
                            endpoint.host,
                            endpoint.reference.repository,
                            endpoint.reference.manifest_reference()
                        ),
                        "check the repository name and the tag (skopeo list-tags docker://REGISTRY/REPOSITORY lists the tags)",
                    ),
                    _ => (format!("{subject}: not found{said}"), "the registry lacks part of the image: try again later, or report it to the registry's owner"),
                };
                Err(RunError::new(message).with_hint(hint).into())
            }
            429 => Err(Failure::transient(RunError::new(format!("{subject}: the registry limits requests (429 Too Many Requests)")).with_hint("wait and pull again; logged-in users have higher limits on Docker Hub (unshare-run login docker.io)"), retry_after)),
            500..=599 => {
                let said = registry_message(response);
                Err(Failure::transient(RunError::new(format!("{subject}: the registry failed ({status}{said})")).with_hint("the registry has trouble: try again later"), retry_after))
            }
            _ => {
                let said = registry_message(response);
                Err(RunError::new(format!("{subject}: unexpected answer {status}{said}")).into())
            }
        }
    }

    /// A 401 or 403: which files were read, and how to log in.
    fn access_refused(
        &self,
        endpoint: &Endpoint,
        response: http::Response<ureq::Body>,
        found: Option<&Found>,
        detail: &str,
    ) -> RunError {
        let status = response.status().as_u16();
        let said = registry_message(response);
        let registry = &endpoint.reference.registry;
        let (whose, read) = match found {
            Some(found) => (
                match &found.source {
                    Some(source) => format!("with the credentials from {source}"),
                    None => "anonymously (no credentials found)".to_string(),
                },
                found.describe_read(),
            ),
            None => (
                "anonymously".to_string(),
                "no credential file was read".to_string(),
            ),
        };
        let detail = match detail {
            "" => String::new(),
            d => format!(": {d}"),
        };
        RunError::new(format!(
            "{} refused to let you pull {} ({status}{said}){detail}; tried {whose}; {read}",
            endpoint.host,
            endpoint.reference.repository,
        ))
        .with_hint(format!(
            "the repository may not exist, or be private: log in with `unshare-run login {registry}` (or podman login: both write podman's auth.json), or pass --authfile FILE"
        ))
    }
}

/// A login's answer: 401 and 403 are a refusal of the credentials (said as `who` answered it, with
/// the registry's words), anything else goes to `otherwise` (2xx passes, 429 and 5xx are retried).
fn refusal_or(
    response: http::Response<ureq::Body>,
    who: &str,
    otherwise: impl FnOnce(http::Response<ureq::Body>) -> Result<http::Response<ureq::Body>, Failure>,
) -> Result<Result<http::Response<ureq::Body>, String>, Failure> {
    match response.status().as_u16() {
        status @ (401 | 403) => Ok(Err(format!(
            "{who} answered {status}{}",
            registry_message(response)
        ))),
        _ => otherwise(response).map(Ok),
    }
}

/// The token in a token service's answer (`token`, or OAuth2's `access_token`), and when to renew it.
fn read_token(
    endpoint: &Endpoint,
    response: http::Response<ureq::Body>,
) -> Result<Token, RunError> {
    #[derive(serde::Deserialize)]
    struct TokenAnswer {
        #[serde(default)]
        token: String,
        #[serde(default)]
        access_token: String,
        #[serde(default)]
        expires_in: u64,
    }
    let bytes = read_limited(response, MAX_TOKEN_BODY, "the token service's answer")
        .map_err(|f| f.error)?;
    let answer: TokenAnswer = serde_json::from_slice(&bytes).map_err(|e| {
        RunError::new(format!(
            "the token service of {} gave no token: {e}",
            endpoint.host
        ))
    })?;
    let value = match (answer.token, answer.access_token) {
        (token, _) if !token.is_empty() => token,
        (_, access) if !access.is_empty() => access,
        _ => {
            return Err(RunError::new(format!(
                "the token service of {} gave an empty token",
                endpoint.host
            )));
        }
    };
    let life = match answer.expires_in {
        0 => DEFAULT_TOKEN_LIFE,
        seconds => Duration::from_secs(seconds),
    };
    Ok(Token {
        value,
        renew_at: Instant::now() + life.saturating_sub(TOKEN_MARGIN),
    })
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn header<'a>(response: &'a http::Response<ureq::Body>, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

fn header_values<'a>(
    response: &'a http::Response<ureq::Body>,
    name: &str,
) -> impl Iterator<Item = &'a str> {
    response
        .headers()
        .get_all(name)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
}

/// The registry's own words from an error body (`{"errors":[{"code","message"}]}`), as ": ...".
fn registry_message(response: http::Response<ureq::Body>) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<ErrorEntry>,
        /// Token services (docker's auth server, Docker Hub's) say why in `details`.
        #[serde(default)]
        details: String,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let Ok(bytes) = response
        .into_body()
        .into_with_config()
        .limit(MAX_ERROR_BODY)
        .read_to_vec()
    else {
        return String::new();
    };
    let Ok(parsed) = serde_json::from_slice::<Errors>(&bytes) else {
        return String::new();
    };
    let said: Vec<String> = parsed
        .errors
        .iter()
        .map(|e| match (e.code.as_str(), e.message.as_str()) {
            ("", message) => message.to_string(),
            (code, "") => code.to_string(),
            (code, message) => format!("{code}: {message}"),
        })
        .chain(std::iter::once(parsed.details.clone()))
        .filter(|s| !s.is_empty())
        .take(3)
        .collect();
    match said.is_empty() {
        true => String::new(),
        false => format!(": {}", said.join("; ")),
    }
}

/// Reads a body of at most `limit` bytes; larger is refused.
fn read_limited(
    response: http::Response<ureq::Body>,
    limit: u64,
    what: &str,
) -> Result<Vec<u8>, Failure> {
    if let Some(length) = header(&response, "content-length").and_then(|l| l.parse::<u64>().ok())
        && length > limit
    {
        return Err(too_large(what, limit).into());
    }
    match response
        .into_body()
        .into_with_config()
        .limit(limit)
        .read_to_vec()
    {
        Ok(bytes) => Ok(bytes),
        Err(ureq::Error::BodyExceedsLimit(_)) => Err(too_large(what, limit).into()),
        Err(e) => Err(Failure::transient(
            RunError::new(format!("reading {what} broke off: {e}")),
            None,
        )),
    }
}

fn too_large(what: &str, limit: u64) -> RunError {
    RunError::new(format!(
        "{what} is larger than {} MiB: refused",
        limit >> 20
    ))
    .with_hint("the registry sends something that is not an image document; check the reference")
}

/// A network failure, said as what to check. Connection and name failures are not retried:
/// another try would only make the wait for the message longer.
fn network_failure(endpoint: &Endpoint, uri: &Uri, error: ureq::Error, what: What<'_>) -> Failure {
    let authority = match (uri.host(), uri.port_u16()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => format!(
            "{host}:{}",
            if uri.scheme_str() == Some("http") {
                80
            } else {
                443
            }
        ),
        _ => endpoint.host.clone(),
    };
    let registry =
        match authority.split(':').next() == Some(endpoint.host.split(':').next().unwrap_or("")) {
            true => "registry ",
            false => "",
        };
    let proxy_hint =
        "check the name, your network and DNS, and a proxy setting (HTTPS_PROXY, NO_PROXY)";
    match error {
        ureq::Error::HostNotFound => RunError::new(format!("cannot find {registry}host {authority}: no such host name")).with_hint(proxy_hint).into(),
        ureq::Error::Io(ref io) if is_name_lookup_error(io) => {
            let reason = io.to_string();
            let reason = reason.strip_prefix(NAME_LOOKUP_FAILED).map_or(&reason[..], |r| r.trim_start_matches([':', ' ']));
            RunError::new(format!("cannot find {registry}host {authority}: {reason}")).with_hint(proxy_hint).into()
        }
        ureq::Error::ConnectionFailed | ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) => {
            RunError::new(format!("cannot connect to {registry}{authority}: {error}")).with_hint(format!("is the registry up and reachable from here? {proxy_hint}")).into()
        }
        ureq::Error::Io(ref io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            RunError::new(format!("cannot connect to {registry}{authority}: connection refused")).with_hint(format!("is the registry up and reachable from here? {proxy_hint}")).into()
        }
        ref tls if asks_for_client_certificate(tls) => RunError::new(format!("TLS with {authority} failed: {error}"))
            .with_hint(format!(
                "the registry asks for a client certificate: put it and its key as NAME.cert and NAME.key in \
                 ~/.config/containers/certs.d/{}/ (containers-certs.d(5))",
                endpoint.host
            ))
            .into(),
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => RunError::new(format!("TLS with {authority} failed: {error}"))
            .with_hint(format!(
                "if it uses a certificate of your own CA, put the CA in ~/.config/containers/certs.d/{}/ca.crt; \
                 --tls-verify=false (or insecure = true in registries.conf) skips the check",
                endpoint.host
            ))
            .into(),
        ureq::Error::Io(ref io) if is_tls_io_error(io) => RunError::new(format!("TLS with {authority} failed: {error}"))
            .with_hint(format!(
                "if it uses a certificate of your own CA, put the CA in ~/.config/containers/certs.d/{}/ca.crt; \
                 --tls-verify=false (or insecure = true in registries.conf) skips the check",
                endpoint.host
            ))
            .into(),
        ureq::Error::ConnectProxyFailed(_) | ureq::Error::InvalidProxyUrl => {
            RunError::new(format!("the proxy for {authority} failed: {error}")).with_hint("check HTTPS_PROXY, HTTP_PROXY and NO_PROXY").into()
        }
        other => {
            let subject = match what {
                What::Token => "the token service",
                _ => "the registry",
            };
            Failure::transient(RunError::new(format!("{subject} at {authority}: {other}")), None)
        }
    }
}

/// How the standard library's resolver (getaddrinfo) failures begin, which ureq passes on as io
/// errors.
const NAME_LOOKUP_FAILED: &str = "failed to lookup address information";

/// A host name that the resolver does not know, or a resolver that cannot be asked: another try soon
/// after would fail the same way.
fn is_name_lookup_error(error: &std::io::Error) -> bool {
    error.to_string().starts_with(NAME_LOOKUP_FAILED)
}

/// The server ended the handshake because this client showed no certificate (or one it refused):
/// TLS 1.3's certificate_required alert, or bad_certificate.
fn asks_for_client_certificate(error: &ureq::Error) -> bool {
    let rustls_error = match error {
        ureq::Error::Rustls(e) => Some(e),
        ureq::Error::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        _ => None,
    };
    matches!(
        rustls_error,
        Some(rustls::Error::AlertReceived(
            rustls::AlertDescription::CertificateRequired
                | rustls::AlertDescription::BadCertificate
        ))
    )
}

/// rustls reports certificate failures inside io errors during the handshake.
fn is_tls_io_error(error: &std::io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
}

/// Scheme, host and port of a URL, default ports made explicit; None if it is no absolute URL.
fn origin_of(url: &str) -> Option<(String, String, u16)> {
    let uri: Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri.host()?.to_ascii_lowercase();
    let port = uri.port_u16().unwrap_or(match scheme.as_str() {
        "http" => 80,
        _ => 443,
    });
    Some((scheme, host, port))
}

/// A Location header against the URL it answered: absolute, scheme-relative, absolute path or
/// relative path.
fn resolve(current: &str, location: &str) -> Option<String> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.parse::<Uri>().ok().map(|_| location.to_string());
    }
    let uri: Uri = current.parse().ok()?;
    let scheme = uri.scheme_str()?;
    let authority = uri.authority()?.as_str();
    let resolved = if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else {
        let path = uri.path();
        let directory = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        format!("{scheme}://{authority}{directory}{location}")
    };
    resolved.parse::<Uri>().ok().map(|_| resolved)
}

/// Percent-encoding for query and form values: all but RFC 3986's unreserved characters.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => host.split(':').next().unwrap_or(host),
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn sha256_of(bytes: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(bytes);
    hex_digest(hasher)
}

fn hex_digest(hasher: Sha256) -> String {
    let digest = hasher.finalize();
    let mut text = String::with_capacity(7 + 64);
    text.push_str("sha256:");
    for byte in digest.iter() {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

fn mismatch(what: &str, expected: &str, actual: &str) -> RunError {
    RunError::new(format!("{what} does not match its digest {expected} (the bytes received hash to {actual})"))
        .with_hint("the download was damaged or the registry serves other content: pull again; if it persists, tell the registry's owner")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::super::fake::{
        self, Auth, OCI_INDEX, Registry, Reply, Request, Server, TestCa, sha256, tempdir,
    };
    use super::*;

    const REPOSITORY: &str = "library/app";

    /// A configuration that marks the fake server insecure (it speaks plain http).
    fn insecure_conf(server: &Server) -> RegistriesConf {
        RegistriesConf::from_toml(&format!(
            "[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
            server.authority()
        ))
        .unwrap()
    }

    fn options(platform: &str) -> PullOptions {
        PullOptions {
            authfile: None,
            tls_verify: None,
            platform: Platform::parse(platform).unwrap(),
        }
    }

    /// An environment of empty fixture directories: the real home is never read.
    fn fixture_env(dir: &std::path::Path) -> Environment {
        Environment {
            home: Some(dir.join("home")),
            config_home: Some(dir.join("home/.config")),
            runtime_dir: Some(dir.join("run")),
            system: dir.join("root"),
            uid: 4242,
            ..Environment::default()
        }
    }

    fn quick() -> RetryPolicy {
        RetryPolicy {
            attempts: 4,
            backoff: Duration::from_millis(10),
            max_wait: Duration::from_secs(5),
        }
    }

    fn client_for(
        text: &str,
        conf: &RegistriesConf,
        options: &PullOptions,
        dir: &std::path::Path,
    ) -> Client {
        let reference = Reference::parse(text).unwrap();
        Client::with_environment(&reference, conf, options, fixture_env(dir))
            .unwrap()
            .with_retry(quick())
    }

    fn client(server: &Server, tag: &str, dir: &std::path::Path) -> Client {
        client_for(
            &format!("{}/{REPOSITORY}:{tag}", server.authority()),
            &insecure_conf(server),
            &options("linux/amd64"),
            dir,
        )
    }

    fn serve(registry: &Arc<Registry>) -> Server {
        let registry = registry.clone();
        Server::start(move |request| registry.handle(request))
    }

    fn partial(dir: &std::path::Path, name: &str) -> File {
        File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(name))
            .unwrap()
    }

    /// Downloads a descriptor's blob into a fresh file; returns the bytes and the progress sum.
    fn download(
        client: &Client,
        descriptor: &Descriptor,
        dir: &std::path::Path,
    ) -> Result<(Vec<u8>, u64), RunError> {
        let mut file = partial(dir, &descriptor.digest);
        let added = AtomicUsize::new(0);
        client.fetch_blob(descriptor, &mut file, &|n| {
            added.fetch_add(n as usize, Ordering::SeqCst);
        })?;
        Ok((
            std::fs::read(dir.join(&descriptor.digest)).unwrap(),
            added.load(Ordering::SeqCst) as u64,
        ))
    }

    fn blob_requests(server: &Server) -> Vec<Request> {
        server
            .requests()
            .into_iter()
            .filter(|r| r.path.contains("/blobs/"))
            .collect()
    }

    fn layer(size: usize, seed: u8) -> Vec<u8> {
        (0..size)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn the_client_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Client>();
    }

    #[test]
    fn anonymous_token_flow_pulls_an_image() {
        let dir = tempdir();
        let registry = Registry::new(Auth::Bearer {
            login: None,
            identity_token: None,
        });
        let layers = [layer(3000, 1), layer(10, 2)];
        let (manifest_digest, config_digest, config) =
            registry.image(REPOSITORY, Some("1"), "amd64", &[&layers[0], &layers[1]]);
        let server = serve(&registry);
        let client = client(&server, "1", &dir);
        let image = client.image().unwrap();
        assert_eq!(image.manifest_digest, manifest_digest);
        assert_eq!(image.config_digest, config_digest);
        assert_eq!(image.config, config);
        assert_eq!(image.layers.len(), 2);
        assert_eq!(image.layers[0].digest, sha256(&layers[0]));
        assert_eq!(image.layers[0].size, 3000);
        let (bytes, added) = download(&client, &image.layers[0], &dir).unwrap();
        assert_eq!((bytes, added), (layers[0].clone(), 3000));

        let requests = server.requests();
        let token_requests: Vec<&Request> = requests
            .iter()
            .filter(|r| r.path.starts_with("/token"))
            .collect();
        assert_eq!(token_requests.len(), 1, "one token serves the whole pull");
        assert_eq!(token_requests[0].header("authorization"), None, "anonymous");
        assert!(
            token_requests[0]
                .path
                .contains("scope=repository%3Alibrary%2Fapp%3Apull"),
            "{}",
            token_requests[0].path
        );
        assert!(token_requests[0].path.contains("service=fake-registry"));
        let manifest = requests
            .iter()
            .find(|r| r.path.contains("/manifests/1"))
            .unwrap();
        assert_eq!(manifest.header("authorization"), Some("Bearer token-1"));
        assert!(manifest.header("accept").unwrap().contains(OCI_INDEX));
        assert!(
            manifest
                .header("accept")
                .unwrap()
                .contains("application/vnd.docker.distribution.manifest.v2+json")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn basic_credentials_from_an_auth_file_get_the_token() {
        let dir = tempdir();
        let registry = Registry::new(Auth::Bearer {
            login: Some(("alice".into(), "s3cret".into())),
            identity_token: None,
        });
        registry.image(REPOSITORY, Some("1"), "amd64", &[b"layer"]);
        let server = serve(&registry);
        let authfile = dir.join("auth.json");
        let encoded =
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "alice:s3cret");
        std::fs::write(
            &authfile,
            format!(
                r#"{{"auths":{{"{}":{{"auth":"{encoded}"}}}}}}"#,
                server.authority()
            ),
        )
        .unwrap();
        let reference = format!("{}/{REPOSITORY}:1", server.authority());
        let with_file = PullOptions {
            authfile: Some(authfile.clone()),
            ..options("linux/amd64")
        };
        let image = client_for(&reference, &insecure_conf(&server), &with_file, &dir)
            .image()
            .unwrap();
        assert_eq!(image.layers.len(), 1);
        let requests = server.requests();
        let token = requests
            .iter()
            .find(|r| r.path.starts_with("/token"))
            .unwrap();
        assert_eq!(
            token.header("authorization"),
            Some(&*format!("Basic {encoded}"))
        );
        assert!(
            requests
                .iter()
                .filter(|r| r.path.starts_with("/v2/"))
                .all(|r| r
                    .header("authorization")
                    .is_none_or(|a| a.starts_with("Bearer "))),
            "the password goes to the token service only"
        );

        // Without the file the token service refuses: the error says what was read and how to log in.
        let err = client_for(
            &reference,
            &insecure_conf(&server),
            &options("linux/amd64"),
            &dir,
        )
        .image()
        .unwrap_err();
        assert!(
            err.message
                .contains("refused to let you pull library/app (401"),
            "{}",
            err.message
        );
        assert!(err.message.contains("anonymously"), "{}", err.message);
        assert!(
            err.message.contains("no credential file exists"),
            "{}",
            err.message
        );
        assert!(
            err.hint
                .as_deref()
                .unwrap()
                .contains(&format!("unshare-run login {}", server.authority()))
        );
        // A wrong password: the file that was read is named.
        std::fs::write(
            &authfile,
            format!(
                r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#,
                server.authority(),
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "alice:wrong")
            ),
        )
        .unwrap();
        let err = client_for(&reference, &insecure_conf(&server), &with_file, &dir)
            .image()
            .unwrap_err();
        assert!(
            err.message
                .contains(&format!("read {}", authfile.display())),
            "{}",
            err.message
        );
        assert!(
            err.message.contains("with the credentials from"),
            "{}",
            err.message
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn identity_tokens_are_traded_by_post() {
        let dir = tempdir();
        let registry = Registry::new(Auth::Bearer {
            login: None,
            identity_token: Some("refresh-42".into()),
        });
        registry.image(REPOSITORY, Some("1"), "amd64", &[b"layer"]);
        let server = serve(&registry);
        std::fs::create_dir_all(dir.join("run/containers")).unwrap();
        std::fs::write(
            dir.join("run/containers/auth.json"),
            format!(
                r#"{{"auths":{{"{}":{{"auth":"","identitytoken":"refresh-42"}}}}}}"#,
                server.authority()
            ),
        )
        .unwrap();
        client(&server, "1", &dir).image().unwrap();
        let post = server
            .requests()
            .into_iter()
            .find(|r| r.method == "POST")
            .unwrap();
        let form = String::from_utf8(post.body.clone()).unwrap();
        assert!(form.contains("grant_type=refresh_token"), "{form}");
        assert!(form.contains("refresh_token=refresh-42"), "{form}");
        assert!(form.contains("client_id=unshare-run"), "{form}");
        assert!(form.contains("service=fake-registry"), "{form}");
        assert_eq!(
            post.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn basic_auth_registries_get_the_credentials_on_each_request() {
        let dir = tempdir();
        let registry = Registry::new(Auth::Basic("bob".into(), "pw".into()));
        let (_, _, config) = registry.image(REPOSITORY, Some("1"), "amd64", &[b"layer"]);
        let server = serve(&registry);
        std::fs::create_dir_all(dir.join("home/.docker")).unwrap();
        let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "bob:pw");
        std::fs::write(
            dir.join("home/.docker/config.json"),
            format!(
                r#"{{"auths":{{"http://{}":{{"auth":"{encoded}"}}}}}}"#,
                server.authority()
            ),
        )
        .unwrap();
        let image = client(&server, "1", &dir).image().unwrap();
        assert_eq!(image.config, config);
        assert!(
            server
                .requests()
                .iter()
                .filter(|r| r.path != "/v2/")
                .all(|r| r.header("authorization") == Some(&*format!("Basic {encoded}")))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_expired_token_is_renewed_on_401() {
        let dir = tempdir();
        let registry = Registry::new(Auth::Bearer {
            login: None,
            identity_token: None,
        });
        let blob = layer(500, 3);
        registry.image(REPOSITORY, Some("1"), "amd64", &[&blob]);
        let server = serve(&registry);
        let client = client(&server, "1", &dir);
        let image = client.image().unwrap();
        assert_eq!(registry.tokens_issued(), 1);
        registry.revoke_tokens();
        let (bytes, _) = download(&client, &image.layers[0], &dir).unwrap();
        assert_eq!(bytes, blob);
        assert_eq!(registry.tokens_issued(), 2, "a new token after the 401");
        let blobs = blob_requests(&server);
        let layer_requests: Vec<_> = blobs
            .iter()
            .filter(|r| r.path.ends_with(&image.layers[0].digest))
            .collect();
        assert_eq!(layer_requests.len(), 2);
        assert_eq!(
            layer_requests[0].header("authorization"),
            Some("Bearer token-1")
        );
        assert_eq!(
            layer_requests[1].header("authorization"),
            Some("Bearer token-2")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_token_past_its_life_is_renewed_before_use() {
        let dir = tempdir();
        let registry = Registry::new(Auth::Bearer {
            login: None,
            identity_token: None,
        });
        registry.image(REPOSITORY, Some("1"), "amd64", &[b"x"]);
        let server = serve(&registry);
        let client = client(&server, "1", &dir);
        client.image().unwrap();
        // As if its expires_in had passed.
        lock(&client.endpoints[0].session)
            .token
            .as_mut()
            .unwrap()
            .renew_at = Instant::now();
        client.image().unwrap();
        assert_eq!(
            registry.tokens_issued(),
            2,
            "renewed before use, without a 401"
        );
        let manifests: Vec<_> = server
            .requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/manifests/1"))
            .collect();
        assert_eq!(manifests.len(), 2);
        assert_eq!(manifests[1].header("authorization"), Some("Bearer token-2"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn too_many_requests_waits_for_retry_after() {
        let dir = tempdir();
        let registry = Registry::new(Auth::Open);
        registry.image(REPOSITORY, Some("1"), "amd64", &[b"layer"]);
        let limited = AtomicUsize::new(0);
        let server = {
            let registry = registry.clone();
            Server::start(move |request| {
                if request.path.contains("/manifests/")
                    && limited.fetch_add(1, Ordering::SeqCst) == 0
                {
                    return Reply::error(429, "TOOMANYREQUESTS", "slow down")
                        .header("Retry-After", "1");
                }
                registry.handle(request)
            })
        };
        let started = Instant::now();
        client(&server, "1", &dir).image().unwrap();
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "Retry-After: 1 was honoured"
        );
        let manifests = server
            .requests()
            .iter()
            .filter(|r| r.path.contains("/manifests/"))
            .count();
        assert_eq!(manifests, 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn server_errors_are_retried_and_then_reported() {
        let dir = tempdir();
        let registry = Registry::new(Auth::Open);
        let blob = layer(100, 4);
        registry.image(REPOSITORY, Some("1"), "amd64", &[&blob]);
        let failures = Arc::new(AtomicUsize::new(1));
        let server = {
            let (registry, failures) = (registry.clone(), failures.clone());
            Server::start(move |request| {
                if request.path.contains("/blobs/")
                    && request.path.ends_with(&sha256(&layer(100, 4)))
                {
                    let left = failures.load(Ordering::SeqCst);
                    if left > 0 {
                        failures.store(left - 1, Ordering::SeqCst);
                        return Reply::error(500, "UNKNOWN", "storage hiccup");
                    }
                }
                registry.handle(request)
            })
        };
        let client = client(&server, "1", &dir);
        let image = client.image().unwrap();
        assert_eq!(download(&client, &image.layers[0], &dir).unwrap().0, blob);
        assert_eq!(
            blob_requests(&server)
                .iter()
                .filter(|r| r.path.ends_with(&image.layers[0].digest))
                .count(),
            2
        );

        // Always failing: a bounded number of tries, then the registry's words.
        failures.store(usize::MAX, Ordering::SeqCst);
        std::fs::remove_file(dir.join(&image.layers[0].digest)).unwrap();
        let err = download(&client, &image.layers[0], &dir).unwrap_err();
        assert!(
            err.message
                .contains("the registry failed (500: UNKNOWN: storage hiccup)"),
            "{}",
            err.message
        );
        assert!(err.message.contains("tried 4 times"), "{}", err.message);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_dropped_connection_resumes_with_a_range() {
        let dir = tempdir();
        let registry = Registry::new(Auth::Open);
        let blob = layer(200_000, 5);
        registry.image(REPOSITORY, Some("1"), "amd64", &[&blob]);
        let cut = AtomicUsize::new(0);
        let server = {
            let registry = registry.clone();
            Server::start(move |request| {
                let reply = registry.handle(request);
                if request.path.contains("/blobs/")
                    && reply.body.len() == 200_000
                    && cut.fetch_add(1, Ordering::SeqCst) == 0
                {
                    return reply.cut_after(70_000);
                }
                reply
            })
        };
        let client = client(&server, "1", &dir);
        let image = client.image().unwrap();
        let (bytes, added) = download(&client, &image.layers[0], &dir).unwrap();
        assert_eq!(bytes.len(), blob.len());
        assert!(bytes == blob);
        assert_eq!(added, 200_000, "progress counts every byte once");
        let tries: Vec<_> = blob_requests(&server)
            .into_iter()
            .filter(|r| r.path.ends_with(&image.layers[0].digest))
            .collect();
        assert_eq!(tries.len(), 2);
        assert_eq!(tries[0].header("range"), None);
        assert_eq!(
            tries[1].header("range"),
            Some("bytes=70000-"),
            "resumed where the file ended"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn what_a_file_holds_already_is_kept_or_started_over() {
        let dir = tempdir();
        let registry = Registry::new(Auth::Open);
        let blob = layer(5000, 6);
        registry.image(REPOSITORY, Some("1"), "amd64", &[&blob]);
        let ignore_ranges = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let server = {
            let (registry, ignore) = (registry.clone(), ignore_ranges.clone());
            Server::start(move |request| {
                if ignore.load(Ordering::SeqCst) && request.path.contains("/blobs/") {
                    let mut whole = request.clone();
                    whole.headers.retain(|(n, _)| n != "range");
                    return registry.handle(&whole);
                }
                registry.handle(request)
            })
        };
        let client = client(&server, "1", &dir);
        let descriptor = client.image().unwrap().layers[0].clone();
        let path = dir.join(&descriptor.digest);
        let fetch = || {
            let mut file = partial(&dir, &descriptor.digest);
            let added = AtomicUsize::new(0);
            let result = client.fetch_blob(&descriptor, &mut file, &|n| {
                added.fetch_add(n as usize, Ordering::SeqCst);
            });
            (result, added.load(Ordering::SeqCst))
        };
        // An interrupted download's first 1234 bytes: only the rest is fetched (206).
        std::fs::write(&path, &blob[..1234]).unwrap();
        let (result, added) = fetch();
        result.unwrap();
        assert_eq!(added, 5000 - 1234);
        assert!(std::fs::read(&path).unwrap() == blob);
        assert_eq!(
            blob_requests(&server).last().unwrap().header("range"),
            Some("bytes=1234-")
        );

        // A registry that answers a range with the whole blob (200): the file starts over.
        ignore_ranges.store(true, Ordering::SeqCst);
        std::fs::write(&path, &blob[..777]).unwrap();
        let (result, added) = fetch();
        result.unwrap();
        assert_eq!(added, 5000);
        assert!(std::fs::read(&path).unwrap() == blob, "not 777 bytes twice");
        assert_eq!(
            blob_requests(&server).last().unwrap().header("range"),
            Some("bytes=777-")
        );

        // A complete file is only checked; one with wrong bytes at its start fails the digest.
        let before = blob_requests(&server).len();
        let (result, added) = fetch();
        result.unwrap();
        assert_eq!(
            (added, blob_requests(&server).len()),
            (0, before),
            "nothing fetched"
        );
        ignore_ranges.store(false, Ordering::SeqCst);
        let mut damaged = blob[..100].to_vec();
        damaged[0] ^= 0xff;
        std::fs::write(&path, &damaged).unwrap();
        let err = fetch().0.unwrap_err();
        assert!(
            err.message.contains(&format!(
                "blob {} does not match its digest",
                descriptor.digest
            )),
            "{}",
            err.message
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_blob_with_other_bytes_fails_naming_its_digest() {
        let dir = tempdir();
        let registry = Registry::new(Auth::Open);
        let blob = layer(1000, 7);
        let digest = sha256(&blob);
        registry.image(REPOSITORY, Some("1"), "amd64", &[&blob]);
        let server = {
            let registry = registry.clone();
            Server::start(move |request| {
                let mut reply = registry.handle(request);
                if request.path.ends_with(&digest) {
                    reply.body[500] ^= 1;
                }
                reply
            })
        };
        let client = client(&server, "1", &dir);
        let descriptor = client.image().unwrap().layers[0].clone();
        let err = download(&client, &descriptor, &dir).unwrap_err();
        assert!(
            err.message
                .contains(&format!("does not match its digest {}", descriptor.digest)),
            "{}",
            err.message
        );
        // More bytes than the manifest says is refused as it arrives.
        let longer = Descriptor {
            size: 999,
            ..descriptor.clone()
        };
        std::fs::remove_file(dir.join(&descriptor.digest)).unwrap();
        let err = download(&client, &longer, &dir).unwrap_err();
        assert!(
            err.message.contains("larger than the 999 bytes"),
            "{}",
            err.message
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn redirects_to_another_origin_never_carry_the_authorization() {
        let dir = tempdir();
        let blob = layer(4096, 8);
        // The "CDN": another port, which refuses a request with Authorization (as S3 does), and
        // drops its first answer half-way.
        let cdn = {
            let blob = blob.clone();
            let answered = AtomicUsize::new(0);
            Server::start(move |request| match request.header("authorization") {
                Some(_) => Reply::new(400).body("Only one auth mechanism allowed"),
                None if answered.fetch_add(1, Ordering::SeqCst) == 0 => {
                    fake::ranged(request, &blob).cut_after(1000)
                }
                None => fake::ranged(request, &blob),
            })
        };
        let registry = Registry::new(Auth::Bearer {
            login: None,
            identity_token: None,
        });
        registry.image(REPOSITORY, Some("1"), "amd64", &[&blob]);
        let layer_digest = sha256(&blob);
        let cdn_base = cdn.base();
        let server = {
            let registry = registry.clone();
            Server::start(move |request| {
                let reply = registry.handle(request);
                if request.path.ends_with(&layer_digest)
                    && (reply.status == 200 || reply.status == 206)
                {
                    return Reply::new(307).header(
                        "Location",
                        &format!("{cdn_base}/signed/{layer_digest}?X-Amz-Signature=abc"),
                    );
                }
                reply
            })
        };
        let client = client(&server, "1", &dir);
        let image = client.image().unwrap();
        let (bytes, _) = download(&client, &image.layers[0], &dir).unwrap();
        assert!(bytes == blob);
        let at_cdn = cdn.requests();
        assert_eq!(at_cdn.len(), 2);
        assert!(at_cdn.iter().all(|r| r.header("authorization").is_none()));
        assert!(at_cdn[0].path.ends_with("?X-Amz-Signature=abc"));
        assert_eq!(at_cdn[1].header("range"), Some("bytes=1000-"));
        // The resumption asked the registry again (a signed URL may have expired).
        let at_registry: Vec<_> = blob_requests(&server)
            .into_iter()
            .filter(|r| r.path.ends_with(&image.layers[0].digest))
            .collect();
        assert_eq!(at_registry.len(), 2);
        assert_eq!(at_registry[1].header("range"), Some("bytes=1000-"));
        assert!(
            at_registry
                .iter()
                .all(|r| r.header("authorization").is_some()),
            "the registry itself gets the token"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_index_is_resolved_for_the_platform() {
        let dir = tempdir();
        let registry = Registry::new(Auth::Open);
        let (amd64, _, amd64_config) = registry.image(REPOSITORY, None, "amd64", &[b"amd64 layer"]);
        let (arm64, _, arm64_config) = registry.image(REPOSITORY, None, "arm64", &[b"arm64 layer"]);
        let (attestation, _, _) = registry.image(REPOSITORY, None, "unknown", &[b"in-toto"]);
        let size = |digest: &str| registry_manifest_len(&registry, digest);
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
              {{"mediaType":"{m}","digest":"{amd64}","size":{},"platform":{{"os":"linux","architecture":"amd64"}}}},
              {{"mediaType":"{m}","digest":"{arm64}","size":{},"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
              {{"mediaType":"{m}","digest":"{attestation}","size":{},"platform":{{"os":"unknown","architecture":"unknown"}},
                "annotations":{{"vnd.docker.reference.type":"attestation-manifest","vnd.docker.reference.digest":"{amd64}"}}}}]}}"#,
            size(&amd64),
            size(&arm64),
            size(&attestation),
            m = fake::OCI_MANIFEST
        );
        let index_digest =
            registry.manifest(REPOSITORY, Some("multi"), OCI_INDEX, index.as_bytes());
        let server = serve(&registry);
        let reference = format!("{}/{REPOSITORY}:multi", server.authority());
        let pull = |platform: &str| {
            client_for(
                &reference,
                &insecure_conf(&server),
                &options(platform),
                &dir,
            )
            .image()
        };
        let image = pull("linux/arm64").unwrap();
        assert_eq!(image.config, arm64_config);
        assert_eq!(
            image.manifest_digest, index_digest,
            "the index's digest: what the tag names"
        );
        assert_eq!(pull("linux/amd64").unwrap().config, amd64_config);
        let err = pull("linux/riscv64").unwrap_err();
        assert_eq!(
            err.message,
            format!(
                "{reference} has no image for linux/riscv64: it has linux/amd64, linux/arm64/v8"
            )
        );
        assert!(err.hint.unwrap().contains("--platform"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn registry_manifest_len(registry: &Registry, digest: &str) -> usize {
        let request = Request {
            method: "GET".into(),
            path: format!("/v2/{REPOSITORY}/manifests/{digest}"),
            headers: Vec::new(),
            body: Vec::new(),
            base: String::new(),
        };
        registry.handle(&request).body.len()
    }

    #[test]
    fn schema_1_is_refused_with_a_message() {
        let dir = tempdir();
        let registry = Registry::new(Auth::Open);
        registry.manifest(
            REPOSITORY,
            Some("old"),
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            br#"{"schemaVersion":1,"name":"library/app","tag":"old","fsLayers":[],"history":[],"signatures":[]}"#,
        );
        let server = serve(&registry);
        let err = client(&server, "old", &dir).image().unwrap_err();
        assert!(
            err.message.starts_with(&format!(
                "cannot pull {}/library/app:old",
                server.authority()
            )),
            "{}",
            err.message
        );
        assert!(err.message.contains("schema 1"), "{}", err.message);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_tag_names_the_repository_and_tag() {
        let dir = tempdir();
        let registry = Registry::new(Auth::Open);
        let server = serve(&registry);
        let err = client(&server, "nope", &dir).image().unwrap_err();
        assert_eq!(
            err.message,
            format!(
                "{}: no image library/app:nope there (manifest unknown: MANIFEST_UNKNOWN: manifest unknown)",
                server.authority()
            )
        );
        assert!(err.hint.unwrap().contains("tag"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn manifest_digest_is_a_head_request() {
        let dir = tempdir();
        let registry = Registry::new(Auth::Open);
        let (digest, _, _) = registry.image(REPOSITORY, Some("1"), "amd64", &[b"x"]);
        let server = serve(&registry);
        assert_eq!(
            client(&server, "1", &dir).manifest_digest().unwrap(),
            Some(digest.clone())
        );
        let manifests: Vec<_> = server
            .requests()
            .into_iter()
            .filter(|r| r.path.contains("/manifests/"))
            .collect();
        assert_eq!(manifests.len(), 1);
        assert_eq!(manifests[0].method, "HEAD");
        // A by-digest reference names its digest without asking.
        let before = server.requests().len();
        let by_digest = client_for(
            &format!("{}/{REPOSITORY}@{digest}", server.authority()),
            &insecure_conf(&server),
            &options("linux/amd64"),
            &dir,
        );
        assert_eq!(by_digest.manifest_digest().unwrap(), Some(digest));
        assert_eq!(server.requests().len(), before);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn manifests_must_match_their_digests() {
        let dir = tempdir();
        let registry = Registry::new(Auth::Open);
        let (digest, _, _) = registry.image(REPOSITORY, Some("1"), "amd64", &[b"x"]);
        let wrong = "sha256:".to_string() + &"0".repeat(64);
        let server = {
            let (registry, wrong) = (registry.clone(), wrong.clone());
            Server::start(move |request| {
                let mut reply = registry.handle(request);
                if request.path.contains("/manifests/sha256:") {
                    // Other bytes under the digest asked for, with a header that matches them.
                    reply.body.push(b' ');
                    let actual = sha256(&reply.body);
                    reply.headers.retain(|(n, _)| n != "Docker-Content-Digest");
                    reply = reply.header("Docker-Content-Digest", &actual);
                } else if request.path.contains("/manifests/") {
                    reply.headers.retain(|(n, _)| n != "Docker-Content-Digest");
                    reply = reply.header("Docker-Content-Digest", &wrong);
                }
                reply
            })
        };
        let err = client(&server, "1", &dir).image().unwrap_err();
        assert!(
            err.message
                .contains(&format!("does not match its digest {wrong}")),
            "{}",
            err.message
        );
        // By digest, the digest asked for decides, whatever the header says.
        let by_digest = client_for(
            &format!("{}/{REPOSITORY}@{digest}", server.authority()),
            &insecure_conf(&server),
            &options("linux/amd64"),
            &dir,
        );
        let err = by_digest.image().unwrap_err();
        assert!(
            err.message
                .contains(&format!("does not match its digest {digest}")),
            "{}",
            err.message
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn oversized_documents_are_refused_unread() {
        let dir = tempdir();
        let server = Server::start(|request| match request.path.as_str() {
            "/v2/" => Reply::new(200),
            _ => Reply::new(200)
                .header("Content-Type", fake::OCI_MANIFEST)
                .body(vec![b' '; (MAX_DOCUMENT + 1) as usize]),
        });
        let err = client(&server, "1", &dir).image().unwrap_err();
        assert!(
            err.message.contains("larger than 4 MiB: refused"),
            "{}",
            err.message
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn mirrors_are_tried_first_and_blobs_come_from_the_one_that_answered() {
        let dir = tempdir();
        let empty_mirror = serve(&Registry::new(Auth::Open));
        let registry = Registry::new(Auth::Open);
        registry.image(
            "mirrored/library/app",
            Some("1"),
            "amd64",
            &[b"from the mirror"],
        );
        let mirror = serve(&registry);
        let conf = RegistriesConf::from_toml(&format!(
            r#"
            [[registry]]
            prefix = "docker.io"
            [[registry.mirror]]
            location = "{}"
            insecure = true
            [[registry.mirror]]
            location = "{}/mirrored"
            insecure = true
            "#,
            empty_mirror.authority(),
            mirror.authority()
        ))
        .unwrap();
        let client = client_for("app:1", &conf, &options("linux/amd64"), &dir);
        let image = client.image().unwrap();
        assert_eq!(
            download(&client, &image.layers[0], &dir).unwrap().0,
            b"from the mirror"
        );
        assert!(
            empty_mirror
                .requests()
                .iter()
                .any(|r| r.path == "/v2/library/app/manifests/1")
        );
        assert!(
            mirror
                .requests()
                .iter()
                .any(|r| r.path.starts_with("/v2/mirrored/library/app/blobs/"))
        );

        let blocked =
            RegistriesConf::from_toml("[[registry]]\nlocation = \"r.example\"\nblocked = true")
                .unwrap();
        let err = Client::new(
            &Reference::parse("r.example/a").unwrap(),
            &blocked,
            &options("linux/amd64"),
        )
        .err()
        .unwrap();
        assert!(
            err.message.contains("blocked by registries.conf"),
            "{}",
            err.message
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_host_name_that_does_not_resolve_is_named_and_not_retried() {
        let dir = tempdir();
        let conf = RegistriesConf::default();
        let started = Instant::now();
        // .invalid is reserved (RFC 2606): no resolver knows it, and an unreachable one fails too.
        let err = client_for(
            "no-such-host.invalid:5000/a:1",
            &conf,
            &options("linux/amd64"),
            &dir,
        )
        .image()
        .unwrap_err();
        assert!(
            err.message
                .starts_with("cannot find registry host no-such-host.invalid:5000: "),
            "{}",
            err.message
        );
        assert!(!err.message.contains("tried"), "{}", err.message);
        assert!(err.hint.unwrap().contains("DNS"));
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
        let lookup =
            std::io::Error::other(format!("{NAME_LOOKUP_FAILED}: Name or service not known"));
        assert!(is_name_lookup_error(&lookup));
        assert!(!is_name_lookup_error(&std::io::Error::other(
            "connection reset"
        )));
    }

    #[test]
    fn an_unreachable_registry_is_named_with_its_port() {
        let dir = tempdir();
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let reference = format!("127.0.0.1:{port}/a:1");
        let conf = RegistriesConf::default();
        let started = Instant::now();
        let err = client_for(&reference, &conf, &options("linux/amd64"), &dir)
            .image()
            .unwrap_err();
        assert!(
            err.message
                .contains(&format!("cannot connect to registry 127.0.0.1:{port}")),
            "{}",
            err.message
        );
        assert!(err.hint.unwrap().contains("HTTPS_PROXY"));
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no retries for a refused connection"
        );
        // A plain-http registry that is not marked insecure is never spoken to over http.
        let registry = Registry::new(Auth::Open);
        let server = serve(&registry);
        let err = client_for(
            &format!("{}/a:1", server.authority()),
            &conf,
            &options("linux/amd64"),
            &dir,
        )
        .image()
        .unwrap_err();
        assert!(server.requests().is_empty(), "no plain http request");
        assert!(err.message.contains(&server.authority()), "{}", err.message);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tls_with_a_ca_from_certs_d() {
        let dir = tempdir();
        let ca = TestCa::new();
        let registry = Registry::new(Auth::Bearer {
            login: None,
            identity_token: None,
        });
        let (_, _, config) = registry.image(REPOSITORY, Some("1"), "amd64", &[b"over tls"]);
        let server = {
            let registry = registry.clone();
            Server::start_tls(ca.server_config(), move |request| registry.handle(request))
        };
        let reference = format!("{}/{REPOSITORY}:1", server.authority());
        let conf = RegistriesConf::default();
        // Unknown CA: refused, with the certs.d path to put it in.
        let err = client_for(&reference, &conf, &options("linux/amd64"), &dir)
            .image()
            .unwrap_err();
        assert!(
            err.message
                .contains(&format!("TLS with {} failed", server.authority())),
            "{}",
            err.message
        );
        assert!(
            err.hint
                .as_deref()
                .unwrap()
                .contains(&format!("certs.d/{}/ca.crt", server.authority()))
        );
        // --tls-verify=false accepts it.
        let unverified = PullOptions {
            tls_verify: Some(false),
            ..options("linux/amd64")
        };
        assert_eq!(
            client_for(&reference, &conf, &unverified, &dir)
                .image()
                .unwrap()
                .config,
            config
        );
        // The CA in ~/.config/containers/certs.d/HOST:PORT/ makes it trusted.
        let certs = dir.join(format!(
            "home/.config/containers/certs.d/{}",
            server.authority()
        ));
        std::fs::create_dir_all(&certs).unwrap();
        std::fs::write(certs.join("ca.crt"), ca.ca_pem()).unwrap();
        let client = client_for(&reference, &conf, &options("linux/amd64"), &dir);
        let image = client.image().unwrap();
        assert_eq!(image.config, config);
        assert_eq!(
            download(&client, &image.layers[0], &dir).unwrap().0,
            b"over tls"
        );
        assert!(
            server
                .requests()
                .iter()
                .any(|r| r.path.starts_with("/token")),
            "the token flow ran over TLS"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn blobs_are_fetched_from_several_threads_at_once() {
        let dir = tempdir();
        let registry = Registry::new(Auth::Bearer {
            login: None,
            identity_token: None,
        });
        let layers: Vec<Vec<u8>> = (0..4).map(|n| layer(50_000 + n * 1000, n as u8)).collect();
        let refs: Vec<&[u8]> = layers.iter().map(|l| l.as_slice()).collect();
        registry.image(REPOSITORY, Some("1"), "amd64", &refs);
        let server = serve(&registry);
        let client = client(&server, "1", &dir);
        let image = client.image().unwrap();
        std::thread::scope(|scope| {
            for (descriptor, expected) in image.layers.iter().zip(&layers) {
                let (client, dir) = (&client, &dir);
                scope.spawn(move || {
                    assert!(download(client, descriptor, dir).unwrap().0 == *expected)
                });
            }
        });
        assert_eq!(registry.tokens_issued(), 1);
        // The token is revoked while all of them are at it: each renews or takes the new one.
        registry.revoke_tokens();
        for descriptor in &image.layers {
            std::fs::remove_file(dir.join(&descriptor.digest)).unwrap();
        }
        std::thread::scope(|scope| {
            for (descriptor, expected) in image.layers.iter().zip(&layers) {
                let (client, dir) = (&client, &dir);
                scope.spawn(move || {
                    assert!(download(client, descriptor, dir).unwrap().0 == *expected)
                });
            }
        });
        assert!(registry.tokens_issued() >= 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn docker_hub_is_reached_at_its_api_host() {
        let dir = tempdir();
        let hub = client_for(
            "debian:bookworm",
            &RegistriesConf::default(),
            &options("linux/amd64"),
            &dir,
        );
        assert_eq!(hub.endpoints.len(), 1);
        assert_eq!(hub.endpoints[0].host, "registry-1.docker.io");
        assert_eq!(
            hub.endpoints[0].reference.registry, "docker.io",
            "credentials are looked up as docker.io"
        );
        assert_eq!(hub.endpoints[0].reference.repository, "library/debian");
        assert!(!hub.endpoints[0].insecure);
        let forced = PullOptions {
            tls_verify: Some(true),
            ..options("linux/amd64")
        };
        let conf =
            RegistriesConf::from_toml("[[registry]]\nlocation = \"r.example\"\ninsecure = true")
                .unwrap();
        assert!(
            client_for("r.example/a", &conf, &options("linux/amd64"), &dir).endpoints[0].insecure
        );
        assert!(
            !client_for("r.example/a", &conf, &forced, &dir).endpoints[0].insecure,
            "--tls-verify=true wins"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn urls_origins_and_encoding() {
        assert_eq!(
            resolve("https://r.io/v2/a/blobs/x", "https://cdn.io/p?q=1").as_deref(),
            Some("https://cdn.io/p?q=1")
        );
        assert_eq!(
            resolve("https://r.io/v2/a/blobs/x", "/other").as_deref(),
            Some("https://r.io/other")
        );
        assert_eq!(
            resolve("https://r.io:5000/v2/a/blobs/x", "y").as_deref(),
            Some("https://r.io:5000/v2/a/blobs/y")
        );
        assert_eq!(
            resolve("https://r.io/v2/x", "//cdn.io/z").as_deref(),
            Some("https://cdn.io/z")
        );
        assert_eq!(origin_of("https://R.io/x"), origin_of("https://r.io:443/y"));
        assert_ne!(origin_of("https://r.io/x"), origin_of("http://r.io/x"));
        assert_ne!(
            origin_of("https://r.io/x"),
            origin_of("https://r.io:5000/x")
        );
        assert_eq!(
            percent_encode("repository:a/b:pull"),
            "repository%3Aa%2Fb%3Apull"
        );
        assert!(
            is_loopback("127.0.0.1:5000") && is_loopback("localhost") && is_loopback("[::1]:80")
        );
        assert!(!is_loopback("registry-1.docker.io"));
    }
}
