//! Credentials where podman and docker users keep them: auth.json files (containers-auth.json(5)),
//! docker's config.json, and the credential helpers those name — asked only for the registry being
//! pulled from (podman asks every helper, podman#21672).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

use super::environment::Environment;
use super::reference::DOCKER_HUB;
use crate::runner::error::RunError;

/// The name registries.conf's `credential-helpers` gives the auth files.
pub(super) const AUTH_FILES: &str = "containers-auth.json";
/// Docker Hub's other names in auth files; docker login writes the first.
pub(super) const DOCKER_HUB_KEYS: &[&str] = &[
    "https://index.docker.io/v1/",
    "index.docker.io",
    "registry-1.docker.io",
    DOCKER_HUB,
];
/// A credential helper's answer is a line of JSON; more is not one.
const MAX_HELPER_OUTPUT: usize = 1 << 20;

#[derive(Clone, PartialEq, Eq)]
pub(super) enum Credentials {
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth refresh token (auth.json `identitytoken`, a helper's `<token>` user): traded at the
    /// token realm by a POST.
    IdentityToken(String),
}

// Never print a secret, not even in a debug trace.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, <secret>)"),
            Credentials::IdentityToken(_) => write!(f, "IdentityToken(<secret>)"),
        }
    }
}

/// What a lookup found, and where it looked (for the message of a refused pull).
#[derive(Debug, Default)]
pub(super) struct Found {
    pub credentials: Option<Credentials>,
    /// Where the credentials came from: "FILE (key KEY)" or "docker-credential-NAME".
    pub source: Option<String>,
    /// The files that exist and were read, in order.
    pub read: Vec<PathBuf>,
}

impl Found {
    /// For messages: "read A, B" or "no credential file exists".
    pub fn describe_read(&self) -> String {
        match self.read.as_slice() {
            [] => "no credential file exists".into(),
            files => format!(
                "read {}",
                files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// The auth files to read, in order, as podman reads them: the one given by --authfile or
/// $REGISTRY_AUTH_FILE alone; otherwise $XDG_RUNTIME_DIR/containers/auth.json (podman login's),
/// ~/.config/containers/auth.json, $DOCKER_CONFIG/config.json or ~/.docker/config.json, and
/// docker's legacy ~/.dockercfg. The flag says whether a file is of the legacy format.
pub(super) fn auth_files(env: &Environment, authfile: Option<&Path>) -> Vec<(PathBuf, bool)> {
    if let Some(only) = authfile
        .map(Path::to_path_buf)
        .or(env.registry_auth_file.clone())
    {
        return vec![(only, false)];
    }
    let mut files = Vec::new();
    files.push(match &env.runtime_dir {
        Some(dir) => dir.join("containers/auth.json"),
        None => env.system_path(&format!("run/containers/{}/auth.json", env.uid)),
    });
    files.extend(env.user_config("containers/auth.json"));
    match (&env.docker_config, &env.home) {
        (Some(dir), _) => files.push(dir.join("config.json")),
        (None, Some(home)) => files.push(home.join(".docker/config.json")),
        (None, None) => {}
    }
    let mut files: Vec<(PathBuf, bool)> = files.into_iter().map(|f| (f, false)).collect();
    if let Some(home) = &env.home {
        files.push((home.join(".dockercfg"), true));
    }
    files
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default, Clone)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// The credentials for `registry` (host[:port], `docker.io` for Docker Hub) and `repository`.
/// `helpers` is registries.conf's `credential-helpers` (None: the auth files only).
pub(super) fn lookup(
    env: &Environment,
    authfile: Option<&Path>,
    helpers: Option<&[String]>,
    registry: &str,
    repository: &str,
) -> Result<Found, RunError> {
    let default = [AUTH_FILES.to_string()];
    let helpers = helpers.filter(|h| !h.is_empty()).unwrap_or(&default);
    let mut found = Found::default();
    // A file named by --authfile or REGISTRY_AUTH_FILE must be readable; the usual places need not
    // be (a root-owned /run/containers keeps another user out of /run/containers/UID).
    let named = authfile.is_some() || env.registry_auth_file.is_some();
    for helper in helpers {
        if helper == AUTH_FILES {
            for (file, legacy) in auth_files(env, authfile) {
                if let Some((credentials, source)) = lookup_in_file(
                    env,
                    &file,
                    legacy,
                    named,
                    registry,
                    repository,
                    &mut found.read,
                )? {
                    found.credentials = Some(credentials);
                    found.source = Some(source);
                    return Ok(found);
                }
            }
        } else if let Some(credentials) = run_helper(
            env,
            helper,
            &helper_server(registry),
            "credential-helpers in registries.conf",
        )? {
            found.credentials = Some(credentials);
            found.source = Some(format!("docker-credential-{helper}"));
            return Ok(found);
        }
    }
    Ok(found)
}

/// Looks in one file: its credential helper for this registry, then the most specific `auths`
/// key (host/namespace/repo before host, scheme-prefixed and Docker Hub's other names too), then
/// its credsStore.
fn lookup_in_file(
    env: &Environment,
    file: &Path,
    legacy: bool,
    named: bool,
    registry: &str,
    repository: &str,
    read: &mut Vec<PathBuf>,
) -> Result<Option<(Credentials, String)>, RunError> {
    let text = match std::fs::read(file) {
        Ok(text) => text,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None);
        }
        Err(e) if !named && e.kind() == std::io::ErrorKind::PermissionDenied => return Ok(None),
        Err(e) => return Err(RunError::sys(format!("cannot read {}", file.display()), e)),
    };
    read.push(file.to_path_buf());
    let bad = |e: serde_json::Error| {
        RunError::new(format!("{} is not a credentials file: {e}", file.display()))
            .with_hint("fix or remove it (unshare-run login or podman login writes it again)")
    };
    let parsed: AuthFile = match legacy {
        // ~/.dockercfg is only the `auths` map.
        true => AuthFile {
            auths: serde_json::from_slice(&text).map_err(bad)?,
            ..AuthFile::default()
        },
        false if text.iter().all(u8::is_ascii_whitespace) => AuthFile::default(),
        false => serde_json::from_slice(&text).map_err(bad)?,
    };
    let host_keys = host_keys(registry);
    let where_helper = format!("credHelpers in {}", file.display());
    if let Some((key, helper)) = host_keys
        .iter()
        .find_map(|k| parsed.cred_helpers.get_key_value(*k))
    {
        return Ok(run_helper(env, helper, key, &where_helper)?
            .map(|c| (c, format!("docker-credential-{helper}"))));
    }
    let decoded = |key: &str, entry: &AuthEntry| decode(file, key, entry);
    // Exact keys, most specific first: host/ns/repo, host/ns, host (and Docker Hub's names). No
    // repository (a login's question about the registry itself): the host's keys only.
    let mut exact: Vec<String> = Vec::new();
    let mut path = format!("{registry}/{repository}");
    while let Some((parent, _)) = path.rsplit_once('/')
        && !repository.is_empty()
    {
        exact.push(path.clone());
        path = parent.to_string();
    }
    exact.extend(host_keys.iter().map(|k| k.to_string()));
    for key in &exact {
        if let Some(entry) = parsed.auths.get(key)
            && let Some(credentials) = decoded(key, entry)?
        {
            return Ok(Some((
                credentials,
                format!("{} (key {key})", file.display()),
            )));
        }
    }
    // Keys written as URLs (`https://host/v1/`, legacy and old docker logins) name the host.
    for (key, entry) in &parsed.auths {
        if normalised_host(key) == registry
            && let Some(credentials) = decoded(key, entry)?
        {
            return Ok(Some((
                credentials,
                format!("{} (key {key})", file.display()),
            )));
        }
    }
    if let Some(store) = parsed.creds_store.as_deref().filter(|s| !s.is_empty()) {
        let where_store = format!("credsStore in {}", file.display());
        return Ok(
            run_helper(env, store, &helper_server(registry), &where_store)?
                .map(|c| (c, format!("docker-credential-{store}"))),
        );
    }
    Ok(None)
}

/// The keys a registry's own entry may have.
fn host_keys(registry: &str) -> Vec<&str> {
    match registry == DOCKER_HUB {
        true => vec![
            DOCKER_HUB,
            "index.docker.io",
            "registry-1.docker.io",
            DOCKER_HUB_KEYS[0],
        ],
        false => vec![registry],
    }
}

/// The host a URL-like key names: scheme and path dropped, Docker Hub's names as docker.io.
fn normalised_host(key: &str) -> &str {
    let without_scheme = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"));
    let host = match without_scheme {
        Some(rest) => rest.split('/').next().unwrap_or(rest),
        None => key,
    };
    match DOCKER_HUB_KEYS.contains(&host) {
        true => DOCKER_HUB,
        false => host,
    }
}

/// What the helpers are asked about: the host, and for Docker Hub the key docker login uses.
fn helper_server(registry: &str) -> String {
    match registry == DOCKER_HUB {
        true => DOCKER_HUB_KEYS[0].to_string(),
        false => registry.to_string(),
    }
}

/// An `auths` entry: `auth` is base64 of user:password; `identitytoken` replaces the password.
/// An entry without either (docker's marker for a credsStore login) gives nothing.
fn decode(file: &Path, key: &str, entry: &AuthEntry) -> Result<Option<Credentials>, RunError> {
    let bad = |why: &str| {
        RunError::new(format!(
            "{}: the entry for {key} is damaged: {why}",
            file.display()
        ))
        .with_hint(format!(
            "log in again (unshare-run login {})",
            normalised_host(key)
        ))
    };
    if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credentials::IdentityToken(token.to_string())));
    }
    let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|_| bad("`auth` is not base64"))?;
    let text = String::from_utf8(bytes).map_err(|_| bad("`auth` is not text"))?;
    let (username, password) = text
        .split_once(':')
        .ok_or_else(|| bad("`auth` is not user:password"))?;
    Ok(Some(Credentials::Basic {
        username: username.to_string(),
        password: password.trim_end_matches('\n').to_string(),
    }))
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// `docker-credential-NAME get` with `server` on its standard input (the docker credential helper
/// protocol). Its "credentials not found" is no credentials; `named_in` says where it was named.
fn run_helper(
    env: &Environment,
    name: &str,
    server: &str,
    named_in: &str,
) -> Result<Option<Credentials>, RunError> {
    let program = format!("docker-credential-{name}");
    let hint = format!("install {program} or remove it from the {named_in}");
    if name.contains('/') {
        return Err(RunError::new(format!(
            "invalid credential helper name `{name}` ({named_in})"
        ))
        .with_hint(hint));
    }
    let path = env.find_program(&program).ok_or_else(|| {
        RunError::new(format!(
            "credential helper {program} ({named_in}) is not in PATH"
        ))
        .with_hint(hint.clone())
    })?;
    let mut child = Command::new(&path)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| RunError::sys(format!("cannot run {}", path.display()), e))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading leaves a broken pipe: its exit status tells.
        let _ = stdin.write_all(server.as_bytes());
    }
    let output = child
        .wait_with_output()
        .map_err(|e| RunError::sys(format!("cannot run {}", path.display()), e))?;
    let said = |bytes: &[u8]| {
        String::from_utf8_lossy(&bytes[..bytes.len().min(500)])
            .trim()
            .to_string()
    };
    if !output.status.success() {
        let message = format!("{} {}", said(&output.stdout), said(&output.stderr));
        if message
            .to_ascii_lowercase()
            .contains("credentials not found")
        {
            return Ok(None);
        }
        return Err(RunError::new(format!(
            "credential helper {program} failed for {server}: {}",
            message.trim()
        ))
        .with_hint(format!("check it with: echo {server} | {program} get")));
    }
    if output.stdout.len() > MAX_HELPER_OUTPUT {
        return Err(RunError::new(format!(
            "credential helper {program} said too much"
        )));
    }
    let answer: HelperAnswer = serde_json::from_slice(&output.stdout).map_err(|e| {
        RunError::new(format!(
            "credential helper {program} gave no JSON answer for {server}: {e}"
        ))
        .with_hint(format!("check it with: echo {server} | {program} get"))
    })?;
    Ok(match (answer.username.as_str(), answer.secret) {
        (_, secret) if secret.is_empty() => None,
        ("<token>", secret) => Some(Credentials::IdentityToken(secret)),
        (username, secret) => Some(Credentials::Basic {
            username: username.to_string(),
            password: secret,
        }),
    })
}

/// Base64 of user:password, for Basic Authorization.
pub(super) fn basic_header(username: &str, password: &str) -> String {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {encoded}")
}

#[cfg(test)]
mod tests {
    use super::super::fake::tempdir;
    use super::*;

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    fn basic(user: &str, password: &str) -> Option<Credentials> {
        Some(Credentials::Basic {
            username: user.into(),
            password: password.into(),
        })
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn entry(key: &str, user: &str) -> String {
        format!(
            r#"{{"auths": {{"{key}": {{"auth": "{}"}}}}}}"#,
            b64(&format!("{user}:pw-{user}"))
        )
    }

    /// An environment whose home, config, runtime dir and PATH are all under `dir`.
    fn fixture_env(dir: &Path) -> Environment {
        Environment {
            home: Some(dir.join("home")),
            config_home: Some(dir.join("home/.config")),
            runtime_dir: Some(dir.join("run")),
            path: Some(dir.join("bin").into_os_string()),
            uid: 4242,
            system: dir.join("root"),
            ..Environment::default()
        }
    }

    fn found(
        env: &Environment,
        authfile: Option<&Path>,
        registry: &str,
        repository: &str,
    ) -> Found {
        lookup(env, authfile, None, registry, repository).unwrap()
    }

    #[test]
    fn files_are_read_in_podmans_order() {
        let dir = tempdir();
        let env = fixture_env(&dir);
        let runtime = dir.join("run/containers/auth.json");
        let config = dir.join("home/.config/containers/auth.json");
        let docker = dir.join("home/.docker/config.json");
        let legacy = dir.join("home/.dockercfg");
        assert_eq!(
            auth_files(&env, None),
            [
                (runtime.clone(), false),
                (config.clone(), false),
                (docker.clone(), false),
                (legacy.clone(), true)
            ]
        );
        let nothing = found(&env, None, "r.io", "a/b");
        assert_eq!(nothing.credentials, None);
        assert_eq!(nothing.describe_read(), "no credential file exists");

        write(
            &legacy,
            &format!(r#"{{"r.io": {{"auth": "{}"}}}}"#, b64("legacy:pw")),
        );
        assert_eq!(
            found(&env, None, "r.io", "a/b").credentials,
            basic("legacy", "pw")
        );
        write(&docker, &entry("r.io", "docker"));
        assert_eq!(
            found(&env, None, "r.io", "a/b").credentials,
            basic("docker", "pw-docker")
        );
        write(&config, &entry("r.io", "config"));
        assert_eq!(
            found(&env, None, "r.io", "a/b").credentials,
            basic("config", "pw-config")
        );
        write(&runtime, &entry("other.io", "runtime"));
        let f = found(&env, None, "r.io", "a/b");
        assert_eq!(
            f.credentials,
            basic("config", "pw-config"),
            "a file without the registry is passed over"
        );
        assert_eq!(f.read, [runtime.clone(), config.clone()]);
        assert_eq!(
            f.source.unwrap(),
            format!("{} (key r.io)", config.display())
        );
        write(&runtime, &entry("r.io", "runtime"));
        assert_eq!(
            found(&env, None, "r.io", "a/b").credentials,
            basic("runtime", "pw-runtime")
        );

        // $DOCKER_CONFIG replaces ~/.docker; without XDG_RUNTIME_DIR podman's /run/containers/UID.
        let moved = Environment {
            docker_config: Some(dir.join("dockerconf")),
            runtime_dir: None,
            ..env.clone()
        };
        let files: Vec<PathBuf> = auth_files(&moved, None)
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(files[0], dir.join("root/run/containers/4242/auth.json"));
        assert_eq!(files[2], dir.join("dockerconf/config.json"));

        // --authfile, else $REGISTRY_AUTH_FILE, is the only file read (as podman).
        let given = dir.join("given.json");
        write(&given, &entry("other.io", "given"));
        let f = found(&env, Some(&given), "r.io", "a/b");
        assert_eq!(f.credentials, None);
        assert_eq!(f.read, std::slice::from_ref(&given));
        let by_variable = Environment {
            registry_auth_file: Some(given.clone()),
            ..env.clone()
        };
        assert_eq!(auth_files(&by_variable, None), [(given.clone(), false)]);
        let flag = dir.join("flag.json");
        assert_eq!(
            auth_files(&by_variable, Some(&flag)),
            [(flag, false)],
            "--authfile first"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_most_specific_key_wins_within_a_file() {
        let dir = tempdir();
        let env = fixture_env(&dir);
        let file = dir.join("auth.json");
        let auth = |user: &str| format!(r#"{{"auth": "{}"}}"#, b64(&format!("{user}:x")));
        write(
            &file,
            &format!(
                r#"{{"auths": {{"r.io": {}, "r.io/ns": {}, "r.io/ns/repo": {}, "https://s.io/v1/": {}, "http://t.io": {}}}}}"#,
                auth("host"),
                auth("ns"),
                auth("repo"),
                auth("url"),
                auth("plain")
            ),
        );
        let user =
            |registry: &str, repository: &str| match found(&env, Some(&file), registry, repository)
                .credentials
            {
                Some(Credentials::Basic { username, .. }) => username,
                other => format!("{other:?}"),
            };
        assert_eq!(user("r.io", "ns/repo"), "repo");
        assert_eq!(user("r.io", "ns/other"), "ns");
        assert_eq!(user("r.io", "ns"), "ns");
        assert_eq!(user("r.io", "else/x"), "host");
        assert_eq!(user("s.io", "a"), "url");
        assert_eq!(user("t.io", "a"), "plain");
        assert_eq!(user("u.io", "a"), "None");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn docker_hub_has_several_names() {
        let dir = tempdir();
        let env = fixture_env(&dir);
        let file = dir.join("auth.json");
        for key in DOCKER_HUB_KEYS
            .iter()
            .chain(&["https://registry-1.docker.io/v2/"])
        {
            write(&file, &entry(key, "hub"));
            assert_eq!(
                found(&env, Some(&file), "docker.io", "library/debian").credentials,
                basic("hub", "pw-hub"),
                "{key}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn identity_tokens_and_damaged_entries() {
        let dir = tempdir();
        let env = fixture_env(&dir);
        let file = dir.join("auth.json");
        write(
            &file,
            &format!(
                r#"{{"auths": {{"r.io": {{"auth": "{}", "identitytoken": "refresh-me"}}}}}}"#,
                b64("<token>:")
            ),
        );
        assert_eq!(
            found(&env, Some(&file), "r.io", "a").credentials,
            Some(Credentials::IdentityToken("refresh-me".into()))
        );
        write(&file, r#"{"auths": {"r.io": {"auth": "%%%"}}}"#);
        let err = lookup(&env, Some(&file), None, "r.io", "a").unwrap_err();
        assert!(
            err.message
                .contains("the entry for r.io is damaged: `auth` is not base64"),
            "{}",
            err.message
        );
        write(
            &file,
            &format!(
                r#"{{"auths": {{"r.io": {{"auth": "{}"}}}}}}"#,
                b64("nocolon")
            ),
        );
        assert!(lookup(&env, Some(&file), None, "r.io", "a").is_err());
        write(&file, "{not json");
        let err = lookup(&env, Some(&file), None, "r.io", "a").unwrap_err();
        assert!(
            err.message.contains("is not a credentials file"),
            "{}",
            err.message
        );
        write(&file, r#"{"auths": {"r.io": {}}}"#);
        assert_eq!(
            found(&env, Some(&file), "r.io", "a").credentials,
            None,
            "an empty entry"
        );
        write(&file, "");
        assert_eq!(
            found(&env, Some(&file), "r.io", "a").credentials,
            None,
            "an empty file"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A helper script that logs the server it was asked about and answers for `known` only.
    fn helper(dir: &Path, name: &str, known: &str, answer: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let log = dir.join(format!("{name}.log"));
        let path = dir.join("bin").join(format!("docker-credential-{name}"));
        write(
            &path,
            &format!(
                "#!/bin/sh\n[ \"$1\" = get ] || exit 3\nread -r server\necho \"$server\" >> {log}\n\
                 if [ \"$server\" = '{known}' ]; then echo '{answer}'; else echo 'credentials not found in native keychain'; exit 1; fi\n",
                log = log.display()
            ),
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        log
    }

    #[test]
    fn credential_helpers_run_only_for_the_registry_pulled_from() {
        let dir = tempdir();
        let env = fixture_env(&dir);
        let file = dir.join("auth.json");
        let x_log = helper(
            &dir,
            "x",
            "x.io",
            r#"{"ServerURL":"x.io","Username":"xu","Secret":"xs"}"#,
        );
        let y_log = helper(
            &dir,
            "y",
            "y.io",
            r#"{"ServerURL":"y.io","Username":"<token>","Secret":"yt"}"#,
        );
        let store_log = helper(
            &dir,
            "store",
            "https://index.docker.io/v1/",
            r#"{"Username":"hub","Secret":"hs"}"#,
        );
        write(
            &file,
            r#"{"credHelpers": {"x.io": "x", "y.io": "y", "gone.io": "missing"}, "credsStore": "store",
               "auths": {"a.io": {"auth": "YTpi"}}}"#,
        );
        assert_eq!(
            found(&env, Some(&file), "x.io", "r").credentials,
            basic("xu", "xs")
        );
        assert_eq!(
            found(&env, Some(&file), "y.io", "r").credentials,
            Some(Credentials::IdentityToken("yt".into()))
        );
        assert_eq!(
            std::fs::read_to_string(&x_log).unwrap(),
            "x.io\n",
            "x ran once, for x.io"
        );
        assert_eq!(std::fs::read_to_string(&y_log).unwrap(), "y.io\n");
        assert!(
            !store_log.exists(),
            "the store was not asked for registries with a helper"
        );
        // a.io has an entry: no helper runs.
        assert_eq!(
            found(&env, Some(&file), "a.io", "r").credentials,
            basic("a", "b")
        );
        assert!(!store_log.exists());
        // Docker Hub has no entry: the credsStore is asked, with docker login's key.
        let f = found(&env, Some(&file), "docker.io", "library/debian");
        assert_eq!(f.credentials, basic("hub", "hs"));
        assert_eq!(f.source.as_deref(), Some("docker-credential-store"));
        assert_eq!(
            std::fs::read_to_string(&store_log).unwrap(),
            "https://index.docker.io/v1/\n"
        );
        // Not found is no credentials, not an error.
        assert_eq!(found(&env, Some(&file), "b.io", "r").credentials, None);
        assert_eq!(std::fs::read_to_string(&x_log).unwrap(), "x.io\n");
        // A helper that is not installed is an error that says so.
        let err = lookup(&env, Some(&file), None, "gone.io", "r").unwrap_err();
        assert!(
            err.message.contains("docker-credential-missing"),
            "{}",
            err.message
        );
        assert!(err.message.contains("not in PATH"), "{}", err.message);

        // registries.conf's credential-helpers put a helper before the files.
        let helpers = ["x".to_string(), AUTH_FILES.to_string()];
        let f = lookup(&env, Some(&file), Some(&helpers), "x.io", "r").unwrap();
        assert_eq!(f.source.as_deref(), Some("docker-credential-x"));
        assert!(f.read.is_empty(), "the files were not needed");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn secrets_are_not_in_debug_output() {
        let c = Credentials::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{:?}", Credentials::IdentityToken("tok".into())).contains("tok"));
        assert_eq!(basic_header("u", "p"), "Basic dTpw");
    }
}
