//! registries.conf(5), version 2 (and the deprecated version 1 tables), as podman reads it: which
//! registries a short name may mean, and for a reference which mirrors and location serve it, which
//! are insecure, which are blocked.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::environment::Environment;
use super::reference::Reference;
use crate::runner::error::RunError;

/// The merged configuration of registries.conf and its drop-ins. Empty when there is none.
#[derive(Debug, Clone, Default)]
pub struct RegistriesConf {
    /// `unqualified-search-registries`, in order.
    search: Vec<String>,
    /// `[aliases]`: short name -> fully qualified name without tag or digest.
    aliases: BTreeMap<String, String>,
    /// `[[registry]]` tables; drop-ins replace a table with the same prefix.
    registries: Vec<RegistryEntry>,
    /// `credential-helpers`, if set: the helpers to ask, `containers-auth.json` for the auth files.
    pub(super) credential_helpers: Option<Vec<String>>,
    /// The files read, for messages.
    pub(super) files: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
struct RegistryEntry {
    prefix: String,
    /// Where the prefix's images physically are (the prefix itself unless remapped).
    location: String,
    insecure: bool,
    blocked: bool,
    mirror_by_digest_only: bool,
    mirrors: Vec<Mirror>,
}

#[derive(Debug, Clone, PartialEq)]
struct Mirror {
    location: String,
    insecure: bool,
    pull_from: PullFrom,
}

/// A mirror's `pull-from-mirror`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum PullFrom {
    All,
    DigestOnly,
    TagOnly,
}

/// One place to pull a reference from: a mirror, or the (possibly remapped) registry itself.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Source {
    /// The reference at that place (a mirror's host and path).
    pub reference: Reference,
    pub insecure: bool,
    pub is_mirror: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawFile {
    unqualified_search_registries: Option<Vec<String>>,
    aliases: Option<BTreeMap<String, String>>,
    registry: Option<Vec<RawRegistry>>,
    credential_helpers: Option<Vec<String>>,
    /// Version 1: [registries.search], [registries.insecure], [registries.block].
    registries: Option<RawV1>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawRegistry {
    prefix: Option<String>,
    location: Option<String>,
    insecure: Option<bool>,
    blocked: Option<bool>,
    mirror_by_digest_only: Option<bool>,
    mirror: Option<Vec<RawMirror>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawMirror {
    location: String,
    insecure: Option<bool>,
    pull_from_mirror: Option<String>,
}

#[derive(Deserialize)]
struct RawV1 {
    search: Option<RawV1List>,
    insecure: Option<RawV1List>,
    block: Option<RawV1List>,
}

#[derive(Deserialize)]
struct RawV1List {
    #[serde(default)]
    registries: Vec<String>,
}

/// One file's settings, before merging.
struct Layer {
    search: Option<Vec<String>>,
    aliases: BTreeMap<String, String>,
    registries: Vec<RegistryEntry>,
    credential_helpers: Option<Vec<String>>,
}

impl RegistriesConf {
    /// The caller's configuration, as podman finds it: $CONTAINERS_REGISTRIES_CONF alone if set;
    /// else ~/.config/containers/registries.conf if it exists (with only the drop-ins of
    /// ~/.config/containers/registries.conf.d), else /etc/containers/registries.conf with the
    /// drop-ins of /etc/containers/registries.conf.d and then ~/.config's. Missing files are empty.
    pub fn load() -> Result<RegistriesConf, RunError> {
        Self::load_from(&Environment::of_process())
    }

    pub(crate) fn load_from(env: &Environment) -> Result<RegistriesConf, RunError> {
        let user_dir = env.user_config("containers/registries.conf.d");
        let system_dir = env.system_path("etc/containers/registries.conf.d");
        let (main, dropin_dirs) = match (
            &env.registries_conf,
            env.user_config("containers/registries.conf"),
        ) {
            (Some(only), _) => (only.clone(), vec![]),
            (None, Some(user)) if user.exists() => (user, user_dir.into_iter().collect()),
            (None, _) => (
                env.system_path("etc/containers/registries.conf"),
                std::iter::once(system_dir).chain(user_dir).collect(),
            ),
        };
        let mut conf = RegistriesConf::default();
        let mut files = vec![main];
        for dir in dropin_dirs {
            let mut dropins: Vec<PathBuf> = match std::fs::read_dir(&dir) {
                Ok(entries) => entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "conf") && p.is_file())
                    .collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(RunError::sys(dir.display(), e)),
            };
            dropins.sort();
            files.extend(dropins);
        }
        for file in files {
            let text = match std::fs::read_to_string(&file) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(RunError::sys(file.display(), e)),
            };
            let layer = parse_layer(&text).map_err(|why| {
                RunError::new(format!("{}: {why}", file.display()))
                    .with_hint("fix the file (see containers-registries.conf(5)) or move it away")
            })?;
            conf.merge(layer);
            conf.files.push(file);
        }
        Ok(conf)
    }

    /// One registries.conf's text (tests build configurations this way).
    #[cfg(test)]
    pub fn from_toml(text: &str) -> Result<RegistriesConf, String> {
        let mut conf = RegistriesConf::default();
        conf.merge(parse_layer(text)?);
        Ok(conf)
    }

    /// A later file's settings over the earlier ones: lists replace, aliases and registries (by
    /// prefix) are added or replaced; an alias set to "" is removed.
    fn merge(&mut self, layer: Layer) {
        if let Some(search) = layer.search {
            self.search = search;
        }
        for (name, value) in layer.aliases {
            match value.is_empty() {
                true => self.aliases.remove(&name),
                false => self.aliases.insert(name, value),
            };
        }
        for entry in layer.registries {
            match self
                .registries
                .iter_mut()
                .find(|e| e.prefix == entry.prefix)
            {
                Some(existing) => *existing = entry,
                None => self.registries.push(entry),
            }
        }
        if layer.credential_helpers.is_some() {
            self.credential_helpers = layer.credential_helpers;
        }
    }

    /// `unqualified-search-registries`, in order: the first is where `login` and `logout` go when
    /// no registry is named (as podman's).
    pub fn search_registries(&self) -> &[String] {
        &self.search
    }

    /// The references a name may mean, to try in order. A fully qualified name is itself; a short
    /// name is its alias if it has one, else each unqualified-search registry's, else Docker Hub's
    /// (`library/` for one component). Never asks.
    pub fn resolve(&self, text: &str) -> Result<Vec<Reference>, String> {
        if Reference::is_fully_qualified(text) {
            return Ok(vec![Reference::parse(text)?]);
        }
        // Parsing checks the whole short name; the name as written is what aliases and search
        // registries complete.
        let short = Reference::parse(text)?;
        let name = short_name_of(text);
        let suffix = tag_and_digest(&short);
        if let Some(alias) = self.aliases.get(name) {
            return Ok(vec![
                Reference::parse(&format!("{alias}{suffix}"))
                    .map_err(|e| format!("the alias of `{name}` in registries.conf: {e}"))?,
            ]);
        }
        if self.search.is_empty() {
            return Ok(vec![short]);
        }
        self.search
            .iter()
            .map(|registry| {
                Reference::parse(&format!("{registry}/{name}{suffix}")).map_err(|e| {
                    format!(
                        "unqualified-search-registries entry `{registry}` in registries.conf: {e}"
                    )
                })
            })
            .collect()
    }

    /// Where to pull `reference` from, in order: its mirrors that serve it (by digest or by tag,
    /// as each allows), then its registry at its (possibly remapped) location. Refused when the
    /// registry is blocked.
    pub(super) fn sources(&self, reference: &Reference) -> Result<Vec<Source>, String> {
        let written = reference.as_written();
        let Some((entry, matched)) = self
            .registries
            .iter()
            .filter_map(|e| prefix_match(&e.prefix, &written, &reference.registry).map(|n| (e, n)))
            .max_by_key(|(_, n)| *n)
        else {
            return Ok(vec![Source {
                reference: reference.clone(),
                insecure: false,
                is_mirror: false,
            }]);
        };
        if entry.blocked {
            return Err(format!(
                "pulling {} is blocked by registries.conf (the [[registry]] with prefix `{}`)",
                reference.name(),
                entry.prefix
            ));
        }
        let rest = &written[matched..];
        let remap = |location: &str| -> Result<Reference, String> {
            Reference::parse(&format!("{location}{rest}")).map_err(|e| {
                format!(
                    "registries.conf maps {} to `{location}{rest}`, which is not a reference: {e}",
                    reference.name()
                )
            })
        };
        let by_digest = reference.digest.is_some();
        let mut sources = Vec::new();
        for mirror in &entry.mirrors {
            let serves = match (entry.mirror_by_digest_only, mirror.pull_from) {
                (true, _) | (false, PullFrom::DigestOnly) => by_digest,
                (false, PullFrom::TagOnly) => !by_digest,
                (false, PullFrom::All) => true,
            };
            if serves {
                sources.push(Source {
                    reference: remap(&mirror.location)?,
                    insecure: mirror.insecure,
                    is_mirror: true,
                });
            }
        }
        let primary = match entry.location.is_empty() {
            true => reference.clone(),
            false => remap(&entry.location)?,
        };
        sources.push(Source {
            reference: primary,
            insecure: entry.insecure,
            is_mirror: false,
        });
        Ok(sources)
    }

    /// Whether the registry `host[:port]` itself is marked insecure: what a login to it uses. The
    /// most specific table that matches the bare host decides (its own, else a `*.domain` one),
    /// as containers/image finds a registry's table.
    pub(super) fn is_insecure(&self, host: &str) -> bool {
        self.registries
            .iter()
            .filter_map(|e| prefix_match(&e.prefix, host, host).map(|n| (e, n)))
            .max_by_key(|(e, n)| (*n, !e.prefix.starts_with('*')))
            .is_some_and(|(e, _)| e.insecure)
    }
}

/// How much of `written` (a reference as written) `prefix` matches: all of it, or up to a `/`, `@`
/// or a tag's `:`. A `*.example.com` prefix matches hosts under example.com, and as much as the host.
fn prefix_match(prefix: &str, written: &str, registry: &str) -> Option<usize> {
    if let Some(domain) = prefix.strip_prefix('*') {
        let host = match registry.strip_prefix('[') {
            Some(_) => registry.split_inclusive(']').next().unwrap_or(registry),
            None => registry.split(':').next().unwrap_or(registry),
        };
        return host.ends_with(domain).then_some(registry.len());
    }
    let rest = written.strip_prefix(prefix)?;
    match rest.chars().next() {
        None | Some('/') | Some('@') => Some(prefix.len()),
        // A colon after the host would be a port: only a colon after a path is a tag.
        Some(':') if prefix.contains('/') => Some(prefix.len()),
        _ => None,
    }
}

/// The short name as written, without its tag or digest: what aliases are keyed by.
fn short_name_of(text: &str) -> &str {
    let name = text.split('@').next().unwrap_or(text);
    match name.rsplit_once(':') {
        Some((before, _)) => before,
        None => name,
    }
}

fn tag_and_digest(reference: &Reference) -> String {
    let mut suffix = String::new();
    if let Some(tag) = &reference.tag {
        suffix.push(':');
        suffix.push_str(tag);
    }
    if let Some(digest) = &reference.digest {
        suffix.push('@');
        suffix.push_str(digest);
    }
    suffix
}

fn parse_layer(text: &str) -> Result<Layer, String> {
    let raw: RawFile =
        toml::from_str(text).map_err(|e| format!("not valid registries.conf TOML: {e}"))?;
    let v2 = raw.unqualified_search_registries.is_some()
        || raw.registry.is_some()
        || raw.aliases.is_some();
    let mut layer = Layer {
        search: raw.unqualified_search_registries,
        aliases: BTreeMap::new(),
        registries: Vec::new(),
        credential_helpers: raw.credential_helpers,
    };
    if let Some(v1) = raw.registries {
        if v2 {
            return Err("mixes the version 1 [registries.*] tables with version 2 settings".into());
        }
        let list = |l: Option<RawV1List>| l.map(|l| l.registries).unwrap_or_default();
        let search = list(v1.search);
        if !search.is_empty() {
            layer.search = Some(search);
        }
        let insecure = list(v1.insecure);
        let blocked = list(v1.block);
        for host in insecure.iter().chain(&blocked) {
            let host = location(host)?;
            if layer.registries.iter().any(|e| e.prefix == host) {
                continue;
            }
            layer.registries.push(RegistryEntry {
                prefix: host.clone(),
                location: host.clone(),
                insecure: insecure
                    .iter()
                    .any(|h| location(h).ok().as_ref() == Some(&host)),
                blocked: blocked
                    .iter()
                    .any(|h| location(h).ok().as_ref() == Some(&host)),
                mirror_by_digest_only: false,
                mirrors: Vec::new(),
            });
        }
    }
    if let Some(search) = &layer.search {
        for registry in search {
            if registry.contains('/') || registry.is_empty() {
                return Err(format!(
                    "unqualified-search-registries: `{registry}` is not a registry host[:port]"
                ));
            }
        }
    }
    for (name, value) in raw.aliases.unwrap_or_default() {
        if Reference::is_fully_qualified(&name) || name.contains(':') || name.contains('@') {
            return Err(format!(
                "alias `{name}`: an alias is a short name, without registry, tag or digest"
            ));
        }
        Reference::parse(&name).map_err(|e| format!("alias `{name}`: {e}"))?;
        if !value.is_empty() {
            let target = Reference::parse(&value).map_err(|e| format!("alias `{name}`: {e}"))?;
            if !Reference::is_fully_qualified(&value)
                || target.tag.is_some()
                || target.digest.is_some()
            {
                return Err(format!(
                    "alias `{name}` = `{value}`: the value must be a fully qualified name without \
                     tag or digest (registry.example.com/namespace/image)"
                ));
            }
        }
        layer.aliases.insert(name, value);
    }
    for raw in raw.registry.unwrap_or_default() {
        let location_value = raw.location.as_deref().map(location).transpose()?;
        let prefix = match (raw.prefix.as_deref(), &location_value) {
            (Some(prefix), _) => location(prefix)?,
            (None, Some(location)) => location.clone(),
            (None, None) => return Err("a [[registry]] table needs a prefix or a location".into()),
        };
        if prefix.starts_with('*') {
            if !prefix.starts_with("*.") || prefix.contains('/') {
                return Err(format!(
                    "[[registry]] prefix `{prefix}`: a wildcard prefix is `*.domain`, without a path"
                ));
            }
            if location_value.is_some() {
                return Err(format!(
                    "[[registry]] prefix `{prefix}`: a wildcard prefix cannot have a location"
                ));
            }
        }
        let mut mirrors = Vec::new();
        for mirror in raw.mirror.unwrap_or_default() {
            let pull_from = match mirror.pull_from_mirror.as_deref() {
                None | Some("") | Some("all") => PullFrom::All,
                Some("digest-only") => PullFrom::DigestOnly,
                Some("tag-only") => PullFrom::TagOnly,
                Some(other) => {
                    return Err(format!(
                        "mirror `{}`: pull-from-mirror = `{other}` is none of all, digest-only, tag-only",
                        mirror.location
                    ));
                }
            };
            mirrors.push(Mirror {
                location: location(&mirror.location)?,
                insecure: mirror.insecure.unwrap_or(false),
                pull_from,
            });
        }
        let entry = RegistryEntry {
            location: location_value.unwrap_or_else(|| match prefix.starts_with('*') {
                true => String::new(),
                false => prefix.clone(),
            }),
            prefix,
            insecure: raw.insecure.unwrap_or(false),
            blocked: raw.blocked.unwrap_or(false),
            mirror_by_digest_only: raw.mirror_by_digest_only.unwrap_or(false),
            mirrors,
        };
        if layer.registries.iter().any(|e| e.prefix == entry.prefix) {
            return Err(format!(
                "two [[registry]] tables have the prefix `{}`",
                entry.prefix
            ));
        }
        layer.registries.push(entry);
    }
    Ok(layer)
}

/// A prefix or location as written: no scheme, no trailing slash.
fn location(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.contains("://") {
        return Err(format!(
            "`{text}`: registries.conf names registries as host[:port][/path], without http:// or https://"
        ));
    }
    let text = text.trim_end_matches('/');
    if text.is_empty() {
        return Err("an empty registry location".into());
    }
    Ok(text.to_string())
}

/// For messages: the files a configuration came from.
pub(super) fn describe_files(files: &[PathBuf]) -> String {
    match files {
        [] => "no registries.conf".into(),
        files => files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::tempdir;
    use super::*;

    fn names(refs: Result<Vec<Reference>, String>) -> Vec<String> {
        refs.unwrap().iter().map(|r| r.to_string()).collect()
    }

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn an_empty_configuration_means_docker_hub() {
        let conf = RegistriesConf::from_toml("").unwrap();
        assert_eq!(
            names(conf.resolve("debian")),
            ["docker.io/library/debian:latest"]
        );
        assert_eq!(
            names(conf.resolve("bitnami/redis:7")),
            ["docker.io/bitnami/redis:7"]
        );
        assert_eq!(names(conf.resolve("quay.io/a/b")), ["quay.io/a/b:latest"]);
        assert!(conf.resolve("Debian").unwrap_err().contains("lowercase"));
    }

    #[test]
    fn short_names_go_to_aliases_then_search_registries_in_order() {
        let conf = RegistriesConf::from_toml(
            r#"
            unqualified-search-registries = ["registry.fedoraproject.org", "quay.io", "docker.io"]
            [aliases]
            "fedora" = "registry.fedoraproject.org/fedora"
            "library/alpine" = "docker.io/library/alpine"
            "#,
        )
        .unwrap();
        assert_eq!(
            names(conf.resolve("fedora:40")),
            ["registry.fedoraproject.org/fedora:40"],
            "an alias alone, with the tag put back"
        );
        assert_eq!(
            names(conf.resolve(&format!("fedora@{DIGEST}"))),
            [format!("registry.fedoraproject.org/fedora@{DIGEST}")]
        );
        assert_eq!(
            names(conf.resolve("library/alpine")),
            ["docker.io/library/alpine:latest"]
        );
        assert_eq!(
            names(conf.resolve("busybox")),
            [
                "registry.fedoraproject.org/busybox:latest",
                "quay.io/busybox:latest",
                "docker.io/library/busybox:latest"
            ]
        );
        assert_eq!(
            names(conf.resolve("docker.io/busybox")),
            ["docker.io/library/busybox:latest"],
            "fully qualified names are not searched"
        );
        assert_eq!(
            names(conf.resolve("docker://busybox")),
            ["docker.io/library/busybox:latest"]
        );
    }

    #[test]
    fn drop_ins_override_earlier_files() {
        let mut conf = RegistriesConf::from_toml(
            r#"
            unqualified-search-registries = ["a.io"]
            [aliases]
            x = "a.io/x"
            y = "a.io/y"
            [[registry]]
            location = "a.io"
            insecure = true
            "#,
        )
        .unwrap();
        conf.merge(
            parse_layer(
                r#"
                unqualified-search-registries = ["b.io"]
                [aliases]
                x = ""
                y = "b.io/y"
                [[registry]]
                location = "a.io"
                blocked = true
                "#,
            )
            .unwrap(),
        );
        assert_eq!(
            names(conf.resolve("x")),
            ["b.io/x:latest"],
            "the alias was erased"
        );
        assert_eq!(names(conf.resolve("y")), ["b.io/y:latest"]);
        let a = Reference::parse("a.io/z").unwrap();
        let err = conf.sources(&a).unwrap_err();
        assert!(err.contains("blocked"), "{err}");
        assert!(!conf.is_insecure("a.io"), "the table was replaced whole");
    }

    #[test]
    fn mirrors_come_first_then_the_remapped_location() {
        let conf = RegistriesConf::from_toml(
            r#"
            [[registry]]
            prefix = "example.com/foo"
            location = "internal.example.net/bar"
            [[registry.mirror]]
            location = "mirror-0.local/mirror-for-foo"
            [[registry.mirror]]
            location = "mirror-1.local:5000/mirrors/foo"
            insecure = true
            [[registry.mirror]]
            location = "digests.local/foo"
            pull-from-mirror = "digest-only"

            [[registry]]
            prefix = "docker.io"
            [[registry.mirror]]
            location = "127.0.0.1:5000"
            insecure = true
            "#,
        )
        .unwrap();
        let sources = |text: &str| -> Vec<(String, bool, bool)> {
            conf.sources(&Reference::parse(text).unwrap())
                .unwrap()
                .into_iter()
                .map(|s| (s.reference.to_string(), s.insecure, s.is_mirror))
                .collect()
        };
        assert_eq!(
            sources("example.com/foo/image:latest"),
            [
                (
                    "mirror-0.local/mirror-for-foo/image:latest".into(),
                    false,
                    true
                ),
                (
                    "mirror-1.local:5000/mirrors/foo/image:latest".into(),
                    true,
                    true
                ),
                ("internal.example.net/bar/image:latest".into(), false, false),
            ]
        );
        assert_eq!(sources(&format!("example.com/foo/image@{DIGEST}")).len(), 4);
        assert_eq!(
            sources("example.com/foobar/x"),
            [("example.com/foobar/x:latest".into(), false, false)],
            "a prefix matches whole components"
        );
        assert_eq!(
            sources("debian:12"),
            [
                ("127.0.0.1:5000/library/debian:12".into(), true, true),
                ("docker.io/library/debian:12".into(), false, false),
            ],
            "a docker.io mirror serves library/ names"
        );
    }

    #[test]
    fn the_longest_prefix_wins_and_ports_are_not_tags() {
        let conf = RegistriesConf::from_toml(
            r#"
            [[registry]]
            location = "r.io"
            insecure = true
            [[registry]]
            prefix = "r.io/secret"
            blocked = true
            [[registry]]
            prefix = "r.io/a/b:1"
            location = "s.io/b"
            [[registry]]
            location = "localhost"
            blocked = true
            [[registry]]
            prefix = "*.corp.example"
            insecure = true
            [[registry.mirror]]
            location = "cache.local"
            "#,
        )
        .unwrap();
        let first = |text: &str| {
            conf.sources(&Reference::parse(text).unwrap()).map(|s| {
                let last = s.last().unwrap();
                (
                    s[0].reference.to_string(),
                    last.reference.to_string(),
                    last.insecure,
                )
            })
        };
        assert_eq!(
            first("r.io/x").unwrap(),
            ("r.io/x:latest".into(), "r.io/x:latest".into(), true)
        );
        assert!(first("r.io/secret/x").unwrap_err().contains("blocked"));
        assert_eq!(
            first("r.io/a/b:1").unwrap().1,
            "s.io/b:latest",
            "a prefix with a tag"
        );
        assert!(first("localhost/x").is_err());
        assert!(
            first("localhost:5000/x").is_ok(),
            "prefix localhost is not localhost:5000"
        );
        assert_eq!(
            first("build.corp.example:8443/t/u:2").unwrap(),
            (
                "cache.local/t/u:2".into(),
                "build.corp.example:8443/t/u:2".into(),
                true
            )
        );
        assert!(
            !first("corp.example/t").unwrap().2,
            "*.corp.example is below corp.example"
        );
    }

    #[test]
    fn version_1_tables_are_read() {
        let conf = RegistriesConf::from_toml(
            r#"
            [registries.search]
            registries = ["quay.io", "docker.io"]
            [registries.insecure]
            registries = ["localhost:5000"]
            [registries.block]
            registries = ["bad.io"]
            "#,
        )
        .unwrap();
        assert_eq!(
            names(conf.resolve("a")),
            ["quay.io/a:latest", "docker.io/library/a:latest"]
        );
        assert!(conf.is_insecure("localhost:5000"));
        assert!(
            conf.sources(&Reference::parse("bad.io/x").unwrap())
                .is_err()
        );
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let cases = [
            ("unqualified-search-registries = 1", "TOML"),
            ("[[registry]]\ninsecure = true", "prefix or a location"),
            (
                "[[registry]]\nlocation = \"https://r.io\"",
                "without http://",
            ),
            (
                "[[registry]]\nprefix = \"*.r.io\"\nlocation = \"s.io\"",
                "wildcard",
            ),
            ("[[registry]]\nprefix = \"*r.io\"", "wildcard"),
            ("[aliases]\n\"quay.io/x\" = \"quay.io/x\"", "short name"),
            ("[aliases]\nx = \"y\"", "fully qualified"),
            ("[aliases]\nx = \"r.io/y:1\"", "without tag"),
            ("[aliases]\nX = \"r.io/y\"", "lowercase"),
            (
                "unqualified-search-registries = [\"a.io/ns\"]",
                "host[:port]",
            ),
            (
                "[[registry]]\nlocation = \"a.io\"\n[[registry]]\nlocation = \"a.io\"",
                "two",
            ),
            (
                "[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"m\"\npull-from-mirror = \"x\"",
                "pull-from-mirror",
            ),
            (
                "unqualified-search-registries = []\n[registries.search]\nregistries = []",
                "mixes",
            ),
        ];
        for (text, why) in cases {
            let err = RegistriesConf::from_toml(text).expect_err(text);
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn files_are_found_as_podman_finds_them() {
        let dir = tempdir();
        let system = dir.join("root");
        let config = dir.join("config");
        let write = |path: PathBuf, text: &str| {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        let env = Environment {
            config_home: Some(config.clone()),
            system: system.clone(),
            ..Environment::default()
        };
        // Nothing at all: an empty configuration.
        let conf = RegistriesConf::load_from(&env).unwrap();
        assert!(conf.files.is_empty());
        assert_eq!(names(conf.resolve("x")), ["docker.io/library/x:latest"]);

        write(
            system.join("etc/containers/registries.conf"),
            "unqualified-search-registries = [\"sys.io\"]",
        );
        write(
            system.join("etc/containers/registries.conf.d/10-b.conf"),
            "[aliases]\nb = \"sys.io/b\"",
        );
        write(
            system.join("etc/containers/registries.conf.d/05-a.conf"),
            "[aliases]\nb = \"early.io/b\"",
        );
        write(
            system.join("etc/containers/registries.conf.d/ignored.txt"),
            "not toml [",
        );
        write(
            config.join("containers/registries.conf.d/20-user.conf"),
            "[aliases]\nu = \"user.io/u\"",
        );
        let conf = RegistriesConf::load_from(&env).unwrap();
        assert_eq!(names(conf.resolve("x")), ["sys.io/x:latest"]);
        assert_eq!(
            names(conf.resolve("b")),
            ["sys.io/b:latest"],
            "drop-ins in name order"
        );
        assert_eq!(
            names(conf.resolve("u")),
            ["user.io/u:latest"],
            "the user's drop-ins last"
        );
        assert_eq!(conf.files.len(), 4);

        // The user's own registries.conf replaces the system's and its drop-ins.
        write(
            config.join("containers/registries.conf"),
            "unqualified-search-registries = [\"mine.io\"]",
        );
        let conf = RegistriesConf::load_from(&env).unwrap();
        assert_eq!(names(conf.resolve("x")), ["mine.io/x:latest"]);
        assert_eq!(names(conf.resolve("b")), ["mine.io/b:latest"]);
        assert_eq!(names(conf.resolve("u")), ["user.io/u:latest"]);

        write(
            dir.join("only.conf"),
            "unqualified-search-registries = [\"only.io\"]",
        );
        let only = Environment {
            registries_conf: Some(dir.join("only.conf")),
            ..env.clone()
        };
        let conf = RegistriesConf::load_from(&only).unwrap();
        assert_eq!(names(conf.resolve("u")), ["only.io/u:latest"]);

        write(config.join("containers/registries.conf"), "[[registry]]");
        let err = RegistriesConf::load_from(&env).unwrap_err();
        assert!(
            err.message.contains("registries.conf: a [[registry]]"),
            "{}",
            err.message
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
