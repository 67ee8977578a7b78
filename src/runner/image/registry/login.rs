//! What `unshare-run login` and `logout` do underneath, as podman's (containers/common pkg/auth):
//! the key a registry argument is stored under, the check of credentials against the registry
//! (the client's own authentication flow), and the edits of the auth file: one entry set or
//! removed, everything else in the file kept (other registries, credHelpers, keys we do not know),
//! written whole to a temporary file and renamed over it, mode 0600.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::auth::{self, AUTH_FILES, Credentials, DOCKER_HUB_KEYS};
use super::client::{Client, Verdict};
use super::conf::{RegistriesConf, describe_files};
use super::environment::Environment;
use super::reference::{DOCKER_HUB, Reference, validate_host};
use crate::runner::error::RunError;

/// An auth file larger than this is not one (they hold a few lines per registry).
const MAX_AUTH_FILE: u64 = 4 << 20;

/// A registry argument as login stores it: the auth file's key (`host[:port]`, or with a
/// repository path for credentials of that path only) and the registry that checks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoginKey {
    pub key: String,
    pub registry: String,
}

impl LoginKey {
    /// The repository path of a namespaced key (`ns/repo` of `quay.io/ns/repo`), "" for a host.
    fn path(&self) -> &str {
        self.key
            .strip_prefix(&self.registry)
            .and_then(|rest| rest.strip_prefix('/'))
            .unwrap_or("")
    }

    /// The keys that are this one in a file: Docker Hub's has several names.
    fn names_in_files(&self) -> Vec<String> {
        match (self.registry == DOCKER_HUB, self.path()) {
            (true, "") => DOCKER_HUB_KEYS.iter().map(|k| k.to_string()).collect(),
            _ => vec![self.key.clone()],
        }
    }
}

/// Credentials found for a key where pulls look for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoredLogin {
    Nothing,
    Password {
        username: String,
        password: String,
        /// "FILE (key KEY)" or "docker-credential-NAME".
        source: String,
    },
    /// An OAuth refresh token (a cloud registry's login): it names no user.
    IdentityToken {
        source: String,
    },
}

/// Parses what podman login and logout take: `host[:port]` or a URL of it (`https://quay.io`,
/// docker's `https://index.docker.io/v1/`), optionally with a repository path
/// (`quay.io/namespace`), never a tag or digest. Docker Hub's host names are `docker.io`.
pub(crate) fn parse_key(arg: &str) -> Result<LoginKey, RunError> {
    let hint = "give HOST[:PORT] (docker.io for Docker Hub), optionally with a repository path \
                (quay.io/NAMESPACE) for credentials of that path only";
    let invalid = |why: String| RunError::new(format!("`{arg}`: {why}")).with_hint(hint);
    // A URL names its host[:port]; its path is docker's API version, not a repository.
    let written = match arg
        .strip_prefix("https://")
        .or_else(|| arg.strip_prefix("http://"))
    {
        Some(rest) => rest.split(['/', '?', '#']).next().unwrap_or(""),
        None => arg.trim_end_matches('/'),
    };
    let (host, path) = match written.split_once('/') {
        Some((host, path)) => (host, Some(path)),
        None => (written, None),
    };
    if host.is_empty() {
        return Err(invalid("no registry named".into()));
    }
    validate_host(host).map_err(invalid)?;
    let registry = match DOCKER_HUB_KEYS.contains(&host) {
        true => DOCKER_HUB.to_string(),
        false => host.to_string(),
    };
    let Some(path) = path else {
        return Ok(LoginKey {
            key: registry.clone(),
            registry,
        });
    };
    // Checked as a reference, but kept as written: docker.io/vendor is not library/vendor.
    let key = format!("{registry}/{path}");
    let reference = Reference::parse(&key).map_err(invalid)?;
    if reference.registry != registry {
        return Err(invalid(format!(
            "`{host}` is not a registry host (a host has a `.` or a `:PORT`, or is localhost)"
        )));
    }
    if reference.tag.is_some() || reference.digest.is_some() {
        return Err(invalid(
            "credentials are kept for a registry or a repository path, without a tag or digest"
                .into(),
        ));
    }
    Ok(LoginKey { key, registry })
}

/// What login and logout work with: the environment (the files podman users have), the auth
/// file given by --authfile, and registries.conf.
pub(crate) struct Logins {
    env: Environment,
    authfile: Option<PathBuf>,
    conf: RegistriesConf,
}

impl Logins {
    pub fn of_process(authfile: Option<PathBuf>) -> Result<Logins, RunError> {
        Self::with_environment(Environment::of_process(), authfile)
    }

    pub(super) fn with_environment(
        env: Environment,
        authfile: Option<PathBuf>,
    ) -> Result<Logins, RunError> {
        let conf = RegistriesConf::load_from(&env)?;
        Ok(Logins {
            env,
            authfile,
            conf,
        })
    }

    /// Logins in an environment of fixture directories under `dir` (home, runtime dir, system
    /// root): for tests elsewhere, which must never read the real home.
    #[cfg(test)]
    pub(crate) fn in_fixture(dir: &Path, authfile: Option<PathBuf>) -> Logins {
        let env = Environment {
            home: Some(dir.join("home")),
            config_home: Some(dir.join("home/.config")),
            runtime_dir: Some(dir.join("run")),
            system: dir.join("root"),
            uid: 4242,
            ..Environment::default()
        };
        Self::with_environment(env, authfile).unwrap()
    }

    /// The file login writes and logout edits: --authfile, else $REGISTRY_AUTH_FILE, else podman's
    /// $XDG_RUNTIME_DIR/containers/auth.json (/run/containers/UID/auth.json without it): the
    /// first file a pull reads, so that what login stores is what pulls use.
    pub fn file(&self) -> PathBuf {
        auth::auth_files(&self.env, self.authfile.as_deref())
            .into_iter()
            .map(|(file, _)| file)
            .next()
            .unwrap_or_else(|| self.env.system_path("run/containers/auth.json"))
    }

    /// Whether the file was named (--authfile, $REGISTRY_AUTH_FILE) rather than found by default.
    fn file_is_named(&self) -> bool {
        self.authfile.is_some() || self.env.registry_auth_file.is_some()
    }

    /// The key for REGISTRY, or without one the first of registries.conf's
    /// unqualified-search-registries (as podman).
    pub fn key(&self, arg: Option<&str>) -> Result<LoginKey, RunError> {
        if let Some(arg) = arg {
            return parse_key(arg);
        }
        match self.conf.search_registries().first() {
            Some(first) => parse_key(first).map_err(|e| {
                e.context(format!(
                    "the first unqualified-search-registries entry ({})",
                    describe_files(&self.conf.files)
                ))
            }),
            None => Err(RunError::new(
                "no registry named, and registries.conf has no unqualified-search-registries to take the first of",
            )
            .with_hint("name the registry: e.g. docker.io, quay.io or HOST:PORT")),
        }
    }

    /// The credentials pulls would use for `key`, looked up as they do (every auth file and
    /// credential helper in podman's order; only the named file with --authfile).
    pub fn stored(&self, key: &LoginKey) -> Result<StoredLogin, RunError> {
        let found = auth::lookup(
            &self.env,
            self.authfile.as_deref(),
            self.conf.credential_helpers.as_deref(),
            &key.registry,
            key.path(),
        )?;
        let source = found.source.unwrap_or_default();
        Ok(match found.credentials {
            None => StoredLogin::Nothing,
            Some(Credentials::Basic { username, password }) => StoredLogin::Password {
                username,
                password,
                source,
            },
            Some(Credentials::IdentityToken(_)) => StoredLogin::IdentityToken { source },
        })
    }

    /// Asks the registry whether it accepts the credentials (see `Client::check_login`).
    pub fn check(
        &self,
        key: &LoginKey,
        username: &str,
        password: &str,
        tls_verify: Option<bool>,
    ) -> Result<Verdict, RunError> {
        Client::for_login(&key.registry, &self.conf, tls_verify, self.env.clone())?
            .check_login(username, password)
    }

    /// Stores the credentials under `key` in the login file; returns the file.
    pub fn save(
        &self,
        key: &LoginKey,
        username: &str,
        password: &str,
    ) -> Result<PathBuf, RunError> {
        self.refuse_helpers_first(key)?;
        let file = self.file();
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        edit(&file, |root| {
            refuse_cred_helper(&file, root, key)?;
            let mut entry = Map::new();
            entry.insert("auth".into(), Value::String(encoded));
            auths(&file, root)?.insert(key.key.clone(), Value::Object(entry));
            Ok(true)
        })?;
        Ok(file)
    }

    /// Removes `key`'s entry (for docker.io, Docker Hub's entry under any of its names) from the
    /// login file. Not there: an error that says where its credentials come from, if anywhere.
    pub fn remove(&self, key: &LoginKey) -> Result<PathBuf, RunError> {
        let file = self.file();
        self.require_named_file(&file)?;
        let mut removed = false;
        edit(&file, |root| {
            let names = key.names_in_files();
            if let Some(Value::Object(auths)) = root.get_mut("auths") {
                for name in &names {
                    removed |= auths.remove(name).is_some();
                }
            }
            if !removed {
                refuse_cred_helper(&file, root, key)?;
            }
            Ok(removed)
        })?;
        if removed {
            return Ok(file);
        }
        let elsewhere = match self.stored(key) {
            Ok(StoredLogin::Password { source, .. } | StoredLogin::IdentityToken { source }) => {
                format!(
                    " (its credentials come from {source}: remove them there, e.g. with docker logout)"
                )
            }
            _ => String::new(),
        };
        Err(RunError::new(format!(
            "not logged into {} in {}{elsewhere}",
            key.key,
            file.display()
        )))
    }

    /// Empties the login file's `auths` (everything else in it stays); returns the file.
    pub fn remove_all(&self) -> Result<PathBuf, RunError> {
        let file = self.file();
        self.require_named_file(&file)?;
        edit(&file, |root| {
            let auths = auths(&file, root)?;
            let had = !auths.is_empty();
            auths.clear();
            Ok(had)
        })?;
        Ok(file)
    }

    /// A file named by --authfile must exist for a logout (podman's rule): a typo must not say
    /// "not logged in" about a file that was never there.
    fn require_named_file(&self, file: &Path) -> Result<(), RunError> {
        match self.authfile.is_some() {
            true => fs::metadata(file).map(drop).map_err(|e| {
                RunError::sys(
                    format!("credential file {} is not accessible", file.display()),
                    e,
                )
            }),
            false => Ok(()),
        }
    }

    /// registries.conf's `credential-helpers` may put a helper before the auth files: pulls would
    /// ask it first, so credentials written to a file could go unused.
    fn refuse_helpers_first(&self, key: &LoginKey) -> Result<(), RunError> {
        let Some(first) = self
            .conf
            .credential_helpers
            .as_ref()
            .and_then(|helpers| helpers.first())
        else {
            return Ok(());
        };
        if first == AUTH_FILES || self.file_is_named() {
            return Ok(());
        }
        Err(RunError::new(format!(
            "registries.conf's credential-helpers asks docker-credential-{first} before the auth files ({}): \
             pulls would not use what login writes, and unshare-run does not store credentials in helpers",
            describe_files(&self.conf.files)
        ))
        .with_hint(format!(
            "store them with that helper's own tool, or log in with --authfile FILE; or put \
             \"{AUTH_FILES}\" first in credential-helpers (then: unshare-run login {})",
            key.key
        )))
    }
}

/// The auth file's `auths` object, made if missing.
fn auths<'a>(
    file: &Path,
    root: &'a mut Map<String, Value>,
) -> Result<&'a mut Map<String, Value>, RunError> {
    match root
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()))
    {
        Value::Object(auths) => Ok(auths),
        _ => Err(not_an_auth_file(file, "its `auths` is not an object")),
    }
}

/// An entry in the file's credHelpers sends the key to a helper, before any `auths` entry (as
/// podman and docker read it): login would write an entry that nothing reads.
fn refuse_cred_helper(
    file: &Path,
    root: &Map<String, Value>,
    key: &LoginKey,
) -> Result<(), RunError> {
    let Some(Value::Object(helpers)) = root.get("credHelpers") else {
        return Ok(());
    };
    let Some((name, helper)) = key
        .names_in_files()
        .into_iter()
        .find_map(|name| helpers.get(&name).map(|helper| (name, helper)))
    else {
        return Ok(());
    };
    let helper = helper.as_str().unwrap_or("?");
    Err(RunError::new(format!(
        "{} hands {name}'s credentials to docker-credential-{helper} (credHelpers), and unshare-run \
         does not store or erase credentials in helpers",
        file.display()
    ))
    .with_hint(format!(
        "use that helper's own tool (docker login {name} does), or remove \"{name}\" from credHelpers in {}",
        file.display()
    )))
}

fn not_an_auth_file(file: &Path, why: &str) -> RunError {
    RunError::new(format!(
        "{} is not a credentials file: {why}",
        file.display()
    ))
    .with_hint("fix or remove it; nothing was changed")
}

/// Reads the auth file (missing or empty: `{}`), lets `change` edit it, and if it says it changed
/// anything writes it back atomically. A symlink is followed, so that a linked file stays linked.
fn edit(
    file: &Path,
    change: impl FnOnce(&mut Map<String, Value>) -> Result<bool, RunError>,
) -> Result<(), RunError> {
    let target = match fs::symlink_metadata(file) {
        Ok(meta) if meta.file_type().is_symlink() => fs::canonicalize(file).map_err(|e| {
            RunError::sys(
                format!("{} is a symbolic link that leads nowhere", file.display()),
                e,
            )
        })?,
        _ => file.to_path_buf(),
    };
    let mut root = read_auth_file(&target)?;
    if change(&mut root)? {
        write_atomically(&target, &serialise(&root)?)?;
    }
    Ok(())
}

fn read_auth_file(file: &Path) -> Result<Map<String, Value>, RunError> {
    let bytes = match File::open(file) {
        Ok(opened) => {
            use std::io::Read;
            let mut bytes = Vec::new();
            opened
                .take(MAX_AUTH_FILE + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| RunError::sys(format!("cannot read {}", file.display()), e))?;
            if bytes.len() as u64 > MAX_AUTH_FILE {
                return Err(not_an_auth_file(file, "it is larger than 4 MiB"));
            }
            bytes
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
        Err(e) => return Err(RunError::sys(format!("cannot read {}", file.display()), e)),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(root)) => Ok(root),
        Ok(_) => Err(not_an_auth_file(file, "it is not a JSON object")),
        Err(e) => Err(not_an_auth_file(file, &e.to_string())),
    }
}

/// podman's layout: JSON indented by tabs. (serde_json without std pretty-prints with two spaces
/// only; a JSON string cannot hold a raw newline, so the spaces that start a line are indentation.)
fn serialise(root: &Map<String, Value>) -> Result<Vec<u8>, RunError> {
    let pretty = serde_json::to_string_pretty(root)
        .map_err(|e| RunError::new(format!("cannot write the credentials: {e}")))?;
    let mut out = String::with_capacity(pretty.len() + 1);
    for line in pretty.lines() {
        let body = line.trim_start_matches(' ');
        let depth = (line.len() - body.len()) / 2;
        out.extend(std::iter::repeat_n('\t', depth));
        out.push_str(body);
        out.push('\n');
    }
    Ok(out.into_bytes())
}

/// Writes `content` to a new 0600 file beside `file` and renames it over `file`, so that a reader
/// sees the old file or the new one, never a part. Missing directories are made 0700 (the
/// file holds passwords).
fn write_atomically(file: &Path, content: &[u8]) -> Result<(), RunError> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    // The usual failure: no XDG_RUNTIME_DIR, and /run/containers is root's to make.
    let hint = "the directory must be yours to write; without XDG_RUNTIME_DIR the default is \
                /run/containers/UID: set XDG_RUNTIME_DIR (a login session has it) or name a file \
                of yours with --authfile FILE";
    let dir = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| RunError::sys(format!("cannot make {}", dir.display()), e).with_hint(hint))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "auth.json".into());
    let temp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&temp)?;
        // The umask cannot add bits, but say 0600 exactly whatever it is.
        out.set_permissions(fs::Permissions::from_mode(0o600))?;
        out.write_all(content)?;
        out.sync_all()?;
        fs::rename(&temp, file)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(RunError::sys(format!("cannot write {}", file.display()), e).with_hint(hint));
    }
    // The rename is durable once the directory is (best effort: some filesystems refuse).
    if let Ok(directory) = File::open(&dir) {
        let _ = directory.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;
    use std::sync::Arc;

    use super::super::fake::{Auth, Registry, Server, tempdir};
    use super::*;

    fn key(arg: &str) -> LoginKey {
        parse_key(arg).unwrap()
    }

    fn error(arg: &str) -> String {
        parse_key(arg).unwrap_err().message
    }

    #[test]
    fn registry_arguments_become_podmans_keys() {
        let same = |arg: &str, k: &str, registry: &str| {
            assert_eq!(
                key(arg),
                LoginKey {
                    key: k.into(),
                    registry: registry.into()
                },
                "{arg}"
            );
        };
        same("quay.io", "quay.io", "quay.io");
        same("127.0.0.1:5000", "127.0.0.1:5000", "127.0.0.1:5000");
        same("localhost:5000/", "localhost:5000", "localhost:5000");
        same("myregistry", "myregistry", "myregistry");
        same("https://quay.io", "quay.io", "quay.io");
        same(
            "http://127.0.0.1:5000/v2/",
            "127.0.0.1:5000",
            "127.0.0.1:5000",
        );
        same("quay.io/ns", "quay.io/ns", "quay.io");
        same("quay.io/ns/repo", "quay.io/ns/repo", "quay.io");
        // Docker Hub: podman's key, whatever name is used; a path is kept as written.
        same("docker.io", "docker.io", "docker.io");
        same("index.docker.io", "docker.io", "docker.io");
        same("registry-1.docker.io", "docker.io", "docker.io");
        same("https://index.docker.io/v1/", "docker.io", "docker.io");
        same("docker.io/vendor", "docker.io/vendor", "docker.io");
        assert_eq!(key("quay.io/ns/repo").path(), "ns/repo");
        assert_eq!(key("quay.io").path(), "");

        assert!(error("quay.io/ns:tag").contains("without a tag or digest"));
        assert!(error(&format!("quay.io/ns@sha256:{}", "a".repeat(64))).contains("tag or digest"));
        assert!(error("myregistry/ns").contains("is not a registry host"));
        assert!(error("quay.io/UPPER").contains("lowercase"));
        assert!(error("bad_host!").contains("not a registry host"));
        assert!(error("").contains("no registry named"));
        assert!(error("https://").contains("no registry named"));
        assert!(
            parse_key("a b")
                .unwrap_err()
                .hint
                .unwrap()
                .contains("HOST[:PORT]")
        );
    }

    /// An environment of fixture directories under `dir` (the real home is never read).
    fn fixture_env(dir: &Path) -> Environment {
        Logins::in_fixture(dir, None).env
    }

    fn logins(dir: &Path, authfile: Option<PathBuf>) -> Logins {
        Logins::in_fixture(dir, authfile)
    }

    /// A registries.conf that marks the fake server insecure (it speaks plain http).
    fn insecure_logins(dir: &Path, server: &Server) -> Logins {
        let conf = dir.join("home/.config/containers/registries.conf");
        fs::create_dir_all(conf.parent().unwrap()).unwrap();
        fs::write(
            &conf,
            format!(
                "[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
                server.authority()
            ),
        )
        .unwrap();
        logins(dir, None)
    }

    fn serve(registry: &Arc<Registry>) -> Server {
        let registry = registry.clone();
        Server::start(move |request| registry.handle(request))
    }

    fn read_json(file: &Path) -> Value {
        serde_json::from_slice(&fs::read(file).unwrap()).unwrap()
    }

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn a_bearer_registry_accepts_good_credentials_and_refuses_wrong_ones() {
        let dir = tempdir();
        let registry = Registry::new(Auth::Bearer {
            login: Some(("alice".into(), "s3cret".into())),
            identity_token: None,
        });
        let server = serve(&registry);
        let logins = insecure_logins(&dir, &server);
        let key = key(&server.authority());
        assert_eq!(
            logins.check(&key, "alice", "s3cret", None).unwrap(),
            Verdict::Accepted
        );
        let requests = server.requests();
        let token = requests
            .iter()
            .find(|r| r.path.starts_with("/token"))
            .unwrap();
        assert_eq!(
            token.header("authorization"),
            Some(&*format!("Basic {}", b64("alice:s3cret")))
        );
        assert!(
            !token.path.contains("scope="),
            "a login asks for no repository: {}",
            token.path
        );
        let last = requests.last().unwrap();
        assert_eq!(last.path, "/v2/");
        assert_eq!(last.header("authorization"), Some("Bearer token-1"));

        match logins.check(&key, "alice", "wrong", None).unwrap() {
            Verdict::Refused(why) => {
                assert!(why.contains("token service answered 401"), "{why}");
                assert!(
                    why.contains("bad credentials"),
                    "the registry's words: {why}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            registry.tokens_issued(),
            1,
            "no token for wrong credentials"
        );
        assert!(!logins.file().exists(), "a check writes nothing");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_basic_registry_gets_the_credentials_on_v2() {
        let dir = tempdir();
        let registry = Registry::new(Auth::Basic("bob".into(), "pw".into()));
        let server = serve(&registry);
        let logins = insecure_logins(&dir, &server);
        let key = key(&server.authority());
        assert_eq!(
            logins.check(&key, "bob", "pw", None).unwrap(),
            Verdict::Accepted
        );
        let last = server.requests().pop().unwrap();
        assert_eq!(
            (last.path.as_str(), last.header("authorization")),
            ("/v2/", Some(&*format!("Basic {}", b64("bob:pw"))))
        );
        match logins.check(&key, "bob", "nope", None).unwrap() {
            Verdict::Refused(why) => assert!(why.starts_with("the registry answered 401"), "{why}"),
            other => panic!("{other:?}"),
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_open_registry_accepts_anyone_and_an_unreachable_one_is_an_error() {
        let dir = tempdir();
        let registry = Registry::new(Auth::Open);
        let server = serve(&registry);
        let logins = insecure_logins(&dir, &server);
        assert_eq!(
            logins
                .check(&key(&server.authority()), "x", "y", None)
                .unwrap(),
            Verdict::Accepted
        );
        let port = server.port;
        drop(server);
        let err = logins
            .check(&key(&format!("127.0.0.1:{port}")), "x", "y", Some(false))
            .unwrap_err();
        assert!(err.message.contains("cannot connect"), "{}", err.message);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn save_keeps_everything_else_in_the_file() {
        let dir = tempdir();
        let logins = logins(&dir, None);
        let file = logins.file();
        assert_eq!(file, dir.join("run/containers/auth.json"), "podman's file");
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(
            &file,
            r#"{"auths": {"other.io": {"auth": "b3RoZXI6cHc=", "email": "x@y"},
                          "quay.io": {"auth": "b2xkOm9sZA==", "identitytoken": "stale"}},
                "credHelpers": {"gcr.io": "gcloud"}, "unknown": [1, {"a": true}]}"#,
        )
        .unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        logins.save(&key("quay.io"), "alice", "s3:cret").unwrap();
        let saved = read_json(&file);
        assert_eq!(
            saved["auths"]["quay.io"],
            serde_json::json!({"auth": b64("alice:s3:cret")}),
            "the entry is replaced whole (no stale identity token)"
        );
        assert_eq!(
            saved["auths"]["other.io"],
            serde_json::json!({"auth": "b3RoZXI6cHc=", "email": "x@y"})
        );
        assert_eq!(
            saved["credHelpers"],
            serde_json::json!({"gcr.io": "gcloud"})
        );
        assert_eq!(saved["unknown"], serde_json::json!([1, {"a": true}]));
        assert_eq!(fs::metadata(&file).unwrap().mode() & 0o7777, 0o600);
        assert!(
            fs::read_to_string(&file).unwrap().contains("\n\t\"auths\""),
            "tab-indented, as podman writes it"
        );
        // What was saved is what a pull finds.
        assert_eq!(
            logins.stored(&key("quay.io")).unwrap(),
            StoredLogin::Password {
                username: "alice".into(),
                password: "s3:cret".into(),
                source: format!("{} (key quay.io)", file.display())
            }
        );
        // Docker Hub is stored as docker.io, a namespaced key as written.
        logins.save(&key("index.docker.io"), "hub", "pw").unwrap();
        logins.save(&key("quay.io/team"), "team", "pw").unwrap();
        let saved = read_json(&file);
        assert_eq!(saved["auths"]["docker.io"]["auth"], b64("hub:pw"));
        assert_eq!(saved["auths"]["quay.io/team"]["auth"], b64("team:pw"));
        assert_eq!(saved["auths"]["quay.io"]["auth"], b64("alice:s3:cret"));
        // Nothing but the file is left in the directory (the temporary file was renamed).
        let names: Vec<_> = fs::read_dir(file.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["auth.json"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn new_files_are_0600_in_0700_directories() {
        let dir = tempdir();
        let logins = logins(&dir, None);
        logins.save(&key("quay.io"), "u", "p").unwrap();
        let file = dir.join("run/containers/auth.json");
        assert_eq!(fs::metadata(&file).unwrap().mode() & 0o7777, 0o600);
        assert_eq!(
            fs::metadata(dir.join("run/containers")).unwrap().mode() & 0o7777,
            0o700
        );
        assert_eq!(
            read_json(&file),
            serde_json::json!({"auths": {"quay.io": {"auth": b64("u:p")}}})
        );
        // --authfile, else $REGISTRY_AUTH_FILE, is the file written.
        let named = dir.join("elsewhere/new/auth.json");
        let with_flag = Logins::with_environment(
            Environment {
                registry_auth_file: Some(dir.join("by-variable.json")),
                ..fixture_env(&dir)
            },
            Some(named.clone()),
        )
        .unwrap();
        assert_eq!(with_flag.file(), named);
        with_flag.save(&key("quay.io"), "u", "p").unwrap();
        assert_eq!(
            fs::metadata(dir.join("elsewhere/new")).unwrap().mode() & 0o777,
            0o700
        );
        let by_variable = Logins::with_environment(
            Environment {
                registry_auth_file: Some(dir.join("by-variable.json")),
                ..fixture_env(&dir)
            },
            None,
        )
        .unwrap();
        assert_eq!(by_variable.file(), dir.join("by-variable.json"));
        // Without XDG_RUNTIME_DIR: podman's /run/containers/UID.
        let without = Logins::with_environment(
            Environment {
                runtime_dir: None,
                ..fixture_env(&dir)
            },
            None,
        )
        .unwrap();
        assert_eq!(
            without.file(),
            dir.join("root/run/containers/4242/auth.json")
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_linked_file_stays_linked_and_a_damaged_one_is_left_alone() {
        let dir = tempdir();
        let real = dir.join("real.json");
        fs::write(&real, r#"{"auths": {}}"#).unwrap();
        let link = dir.join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let logins = logins(&dir, Some(link.clone()));
        logins.save(&key("quay.io"), "u", "p").unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(read_json(&real)["auths"]["quay.io"]["auth"], b64("u:p"));

        for damaged in ["{not json", "[1, 2]", r#"{"auths": []}"#] {
            fs::write(&real, damaged).unwrap();
            let err = logins.save(&key("quay.io"), "u", "p").unwrap_err();
            assert!(
                err.message.contains("is not a credentials file"),
                "{}",
                err.message
            );
            assert_eq!(fs::read_to_string(&real).unwrap(), damaged, "unchanged");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn logout_removes_only_that_entry() {
        let dir = tempdir();
        let logins = logins(&dir, None);
        let file = logins.file();
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(
            &file,
            r#"{"auths": {"quay.io": {"auth": "dTpw"}, "quay.io/team": {"auth": "dTpw"},
                          "https://index.docker.io/v1/": {"auth": "dTpw"}, "docker.io": {"auth": "dTpw"},
                          "r.io": {"auth": "dTpw"}},
                "credHelpers": {"gcr.io": "gcloud"}, "HttpHeaders": {"X": "y"}}"#,
        )
        .unwrap();
        logins.remove(&key("quay.io")).unwrap();
        let left = read_json(&file);
        assert_eq!(
            left["auths"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            [
                "docker.io",
                "https://index.docker.io/v1/",
                "quay.io/team",
                "r.io"
            ]
        );
        assert_eq!(left["credHelpers"], serde_json::json!({"gcr.io": "gcloud"}));
        assert_eq!(left["HttpHeaders"], serde_json::json!({"X": "y"}));
        assert_eq!(fs::metadata(&file).unwrap().mode() & 0o7777, 0o600);
        // Docker Hub goes under all of its names.
        logins.remove(&key("docker.io")).unwrap();
        assert_eq!(
            read_json(&file)["auths"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["quay.io/team", "r.io"]
        );
        // Twice: not logged in; the file is not written.
        let before = fs::read(&file).unwrap();
        let err = logins.remove(&key("quay.io")).unwrap_err();
        assert!(
            err.message.starts_with("not logged into quay.io in "),
            "{}",
            err.message
        );
        assert_eq!(fs::read(&file).unwrap(), before);
        // Credentials that come from another file are named.
        let docker = dir.join("home/.docker/config.json");
        fs::create_dir_all(docker.parent().unwrap()).unwrap();
        fs::write(&docker, r#"{"auths": {"quay.io": {"auth": "dTpw"}}}"#).unwrap();
        let err = logins.remove(&key("quay.io")).unwrap_err();
        assert!(
            err.message.contains(&docker.display().to_string()),
            "{}",
            err.message
        );
        assert!(err.message.contains("docker logout"), "{}", err.message);
        // --all empties auths and keeps the rest.
        logins.remove_all().unwrap();
        let left = read_json(&file);
        assert_eq!(left["auths"], serde_json::json!({}));
        assert_eq!(left["HttpHeaders"], serde_json::json!({"X": "y"}));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn logout_of_a_missing_file() {
        let dir = tempdir();
        let err = logins(&dir, None).remove(&key("quay.io")).unwrap_err();
        assert!(
            err.message.starts_with("not logged into quay.io"),
            "{}",
            err.message
        );
        assert!(!dir.join("run/containers").exists(), "nothing made");
        logins(&dir, None).remove_all().unwrap();
        assert!(
            !dir.join("run/containers").exists(),
            "nothing to empty, nothing made"
        );
        // A file named by --authfile must exist.
        let err = logins(&dir, Some(dir.join("typo.json")))
            .remove(&key("quay.io"))
            .unwrap_err();
        assert!(err.message.contains("is not accessible"), "{}", err.message);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn credential_helpers_are_not_written_around() {
        let dir = tempdir();
        let file = dir.join("auth.json");
        let text = r#"{"credHelpers": {"gcr.io": "gcloud"}, "auths": {}}"#;
        fs::write(&file, text).unwrap();
        let named = logins(&dir, Some(file.clone()));
        let err = named.save(&key("gcr.io"), "u", "p").unwrap_err();
        assert!(
            err.message.contains("docker-credential-gcloud"),
            "{}",
            err.message
        );
        assert!(err.hint.unwrap().contains("credHelpers"));
        let err = named.remove(&key("gcr.io")).unwrap_err();
        assert!(
            err.message.contains("docker-credential-gcloud"),
            "{}",
            err.message
        );
        assert_eq!(fs::read_to_string(&file).unwrap(), text);
        // registries.conf's credential-helpers with a helper first, for the default file.
        let conf = dir.join("home/.config/containers/registries.conf");
        fs::create_dir_all(conf.parent().unwrap()).unwrap();
        fs::write(
            &conf,
            "credential-helpers = [\"secretservice\", \"containers-auth.json\"]\n",
        )
        .unwrap();
        let err = logins(&dir, None)
            .save(&key("quay.io"), "u", "p")
            .unwrap_err();
        assert!(
            err.message.contains("docker-credential-secretservice"),
            "{}",
            err.message
        );
        assert!(!dir.join("run/containers/auth.json").exists());
        fs::write(&conf, "credential-helpers = [\"containers-auth.json\"]\n").unwrap();
        logins(&dir, None).save(&key("quay.io"), "u", "p").unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn without_a_registry_the_first_search_registry_is_used() {
        let dir = tempdir();
        let err = logins(&dir, None).key(None).unwrap_err();
        assert!(
            err.message.contains("unqualified-search-registries"),
            "{}",
            err.message
        );
        let conf = dir.join("home/.config/containers/registries.conf");
        fs::create_dir_all(conf.parent().unwrap()).unwrap();
        fs::write(
            &conf,
            "unqualified-search-registries = [\"quay.io\", \"docker.io\"]\n",
        )
        .unwrap();
        assert_eq!(logins(&dir, None).key(None).unwrap(), key("quay.io"));
        assert_eq!(logins(&dir, None).key(Some("r.io")).unwrap(), key("r.io"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
