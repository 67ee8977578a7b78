//! Image references as podman and docker write them: `[docker://]HOST[:PORT]/NAME[:TAG][@DIGEST]`,
//! normalised the way the Docker distribution's reference grammar does (docker.io for a name without
//! a host, `library/` for a one-component Docker Hub name, `index.docker.io` is docker.io).

use std::fmt;

/// Docker Hub's name in references (its API lives elsewhere: see `client`).
pub const DOCKER_HUB: &str = "docker.io";
/// The transport prefix podman and skopeo accept in front of a registry reference.
const TRANSPORT: &str = "docker://";
/// The distribution grammar's limit on a name (host and path).
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `docker.io`, or the registry's `host[:port]` as written.
    pub registry: String,
    /// The repository path, lowercase: `library/debian`.
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<64 lowercase hex>`.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses `[docker://]HOST[:PORT]/NAME[:TAG][@sha256:DIGEST]`. A first component is a host when
    /// it holds a `.` or a `:` or is `localhost`; otherwise the name is Docker Hub's.
    pub fn parse(text: &str) -> Result<Reference, String> {
        let (explicit, rest) = match text.strip_prefix(TRANSPORT) {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let parts = split(rest).map_err(|why| invalid(text, &why))?;
        let (registry, path) = match parts.host {
            Some(host) => {
                validate_host(host).map_err(|why| invalid(text, &why))?;
                let host = if host == "index.docker.io" {
                    DOCKER_HUB
                } else {
                    host
                };
                (host.to_string(), parts.path)
            }
            None => {
                if !explicit && parts.path.len() == 64 && is_lower_hex(parts.path) {
                    return Err(invalid(
                        text,
                        "a 64-digit hexadecimal name looks like an image id, not a repository",
                    ));
                }
                (DOCKER_HUB.to_string(), parts.path)
            }
        };
        validate_path(path).map_err(|why| invalid(text, &why))?;
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        if registry.len() + 1 + repository.len() > MAX_NAME_LEN {
            return Err(invalid(
                text,
                &format!("the name is longer than {MAX_NAME_LEN} characters"),
            ));
        }
        if let Some(tag) = parts.tag {
            validate_tag(tag).map_err(|why| invalid(text, &why))?;
        }
        if let Some(digest) = parts.digest {
            validate_digest(digest).map_err(|why| invalid(text, &why))?;
        }
        Ok(Reference {
            registry,
            repository,
            tag: parts.tag.map(String::from),
            digest: parts.digest.map(String::from),
        })
    }

    /// Whether `text` names its registry: a `docker://` reference, or one whose first component is
    /// a host. Short names (`debian`, `library/debian:12`) are resolved through registries.conf.
    pub fn is_fully_qualified(text: &str) -> bool {
        if text.starts_with(TRANSPORT) {
            return true;
        }
        match text.split_once('/') {
            Some((first, _)) => is_host_component(first),
            None => false,
        }
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// What the manifest is asked for by: the digest when there is one (it pins the content), else
    /// the tag, else `latest`.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The reference as written for registries.conf's prefix matching: name, then `:tag` and
    /// `@digest` only where given (Display adds `:latest`).
    pub(super) fn as_written(&self) -> String {
        let mut text = self.name();
        if let Some(tag) = &self.tag {
            text.push(':');
            text.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            text.push('@');
            text.push_str(digest);
        }
        text
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        match (&self.tag, &self.digest) {
            (None, None) => write!(f, ":latest"),
            (tag, digest) => {
                if let Some(tag) = tag {
                    write!(f, ":{tag}")?;
                }
                if let Some(digest) = digest {
                    write!(f, "@{digest}")?;
                }
                Ok(())
            }
        }
    }
}

fn invalid(text: &str, why: &str) -> String {
    format!("invalid image reference `{text}`: {why}")
}

/// A reference cut into its parts, unchecked.
struct Parts<'a> {
    host: Option<&'a str>,
    path: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

fn split(text: &str) -> Result<Parts<'_>, String> {
    if text.is_empty() {
        return Err("it is empty".into());
    }
    let (name_and_tag, digest) = match text.split_once('@') {
        Some((before, digest)) => (before, Some(digest)),
        None => (text, None),
    };
    // A tag's colon comes after the last slash; an earlier one is the host's port.
    let (name, tag) = match name_and_tag.rfind(':') {
        Some(colon) if !name_and_tag[colon..].contains('/') => {
            (&name_and_tag[..colon], Some(&name_and_tag[colon + 1..]))
        }
        _ => (name_and_tag, None),
    };
    let (host, path) = match name.split_once('/') {
        Some((first, rest)) if is_host_component(first) => (Some(first), rest),
        _ => (None, name),
    };
    if host.is_some() && path.is_empty() {
        return Err("the repository name is missing after the registry".into());
    }
    Ok(Parts {
        host,
        path,
        tag,
        digest,
    })
}

/// The distribution grammar's rule: a first component is a registry when it looks like a host.
fn is_host_component(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost"
}

pub(super) fn validate_host(host: &str) -> Result<(), String> {
    let bad = || format!("`{host}` is not a registry host[:port]");
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        // An IPv6 address: [hex:hex...][:port]
        let (address, after) = rest.split_once(']').ok_or_else(bad)?;
        if address.is_empty() || !address.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(bad());
        }
        match after {
            "" => (None, None),
            _ => (None, Some(after.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match host.split_once(':') {
            Some((name, port)) => (Some(name), Some(port)),
            None => (Some(host), None),
        }
    };
    if let Some(name) = name {
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if !name.split('.').all(label_ok) {
            return Err(bad());
        }
    }
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(bad());
    }
    Ok(())
}

/// Path components: lowercase alphanumerics joined by `.`, `_`, `__` or runs of `-`.
fn validate_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("the repository name is empty".into());
    }
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err("repository names must be lowercase".into());
    }
    for component in path.split('/') {
        if !is_path_component(component) {
            return Err(format!(
                "`{component}` is not a repository name component (lowercase letters and digits, \
                 separated by `.`, `_`, `__` or `-`)"
            ));
        }
    }
    Ok(())
}

fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        // A separator: ".", "_", "__" or one or more "-", always between alphanumerics.
        let start = i;
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if bytes.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || !bytes.get(i).copied().is_some_and(alnum) {
            return false;
        }
    }
    true
}

fn validate_tag(tag: &str) -> Result<(), String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let ok = !tag.is_empty()
        && tag.len() <= MAX_TAG_LEN
        && tag.starts_with(word)
        && tag.chars().all(|c| word(c) || c == '.' || c == '-');
    match ok {
        true => Ok(()),
        false => Err(format!(
            "`{tag}` is not a tag (up to {MAX_TAG_LEN} letters, digits, `_`, `.` and `-`, not \
             starting with `.` or `-`)"
        )),
    }
}

/// Only sha256 digests: every registry serves them, and the store names content by them.
pub(super) fn validate_digest(digest: &str) -> Result<(), String> {
    match digest.split_once(':') {
        Some(("sha256", hex)) if hex.len() == 64 && is_lower_hex(hex) => Ok(()),
        Some(("sha256", _)) => Err(format!(
            "`{digest}` is not a sha256 digest (sha256: and 64 lowercase hexadecimal digits)"
        )),
        Some((algorithm, _)) if !algorithm.is_empty() => Err(format!(
            "digest algorithm `{algorithm}` is not supported (only sha256)"
        )),
        _ => Err(format!(
            "`{digest}` is not a digest (sha256: and 64 hexadecimal digits)"
        )),
    }
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn parsed(text: &str) -> (String, String, Option<String>, Option<String>) {
        let r = Reference::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        (r.registry, r.repository, r.tag, r.digest)
    }

    fn is(registry: &str, repository: &str, tag: Option<&str>, digest: Option<&str>) -> Parsed {
        (
            registry.into(),
            repository.into(),
            tag.map(String::from),
            digest.map(String::from),
        )
    }
    type Parsed = (String, String, Option<String>, Option<String>);

    #[test]
    fn docker_hub_names_are_normalised_like_docker_and_podman() {
        let debian = is("docker.io", "library/debian", None, None);
        assert_eq!(parsed("debian"), debian);
        assert_eq!(parsed("docker.io/debian"), debian);
        assert_eq!(parsed("docker.io/library/debian"), debian);
        assert_eq!(parsed("index.docker.io/debian"), debian);
        assert_eq!(parsed("docker://debian"), debian);
        assert_eq!(parsed("docker://docker.io/library/debian"), debian);
        assert_eq!(parsed("library/debian"), debian);
        assert_eq!(
            parsed("debian:bookworm"),
            is("docker.io", "library/debian", Some("bookworm"), None)
        );
        assert_eq!(
            parsed("bitnami/redis:7.2"),
            is("docker.io", "bitnami/redis", Some("7.2"), None)
        );
        assert_eq!(
            parsed("a/b/c"),
            is("docker.io", "a/b/c", None, None),
            "more components stay as they are"
        );
    }

    #[test]
    fn hosts_are_told_by_a_dot_a_colon_or_localhost() {
        assert_eq!(
            parsed("quay.io/podman/stable:v5"),
            is("quay.io", "podman/stable", Some("v5"), None)
        );
        assert_eq!(
            parsed("localhost/foo"),
            is("localhost", "foo", None, None),
            "no library/ outside Docker Hub"
        );
        assert_eq!(
            parsed("localhost:5000/foo:1"),
            is("localhost:5000", "foo", Some("1"), None)
        );
        assert_eq!(
            parsed("127.0.0.1:5000/a/b"),
            is("127.0.0.1:5000", "a/b", None, None)
        );
        assert_eq!(parsed("[::1]:5000/a"), is("[::1]:5000", "a", None, None));
        assert_eq!(
            parsed("Registry.Example.COM/a"),
            is("Registry.Example.COM", "a", None, None),
            "hosts may have capitals"
        );
        assert_eq!(
            parsed("foo/bar"),
            is("docker.io", "foo/bar", None, None),
            "a first component without . or : is a Docker Hub namespace"
        );
    }

    #[test]
    fn tags_and_digests() {
        assert_eq!(
            parsed(&format!("debian@{DIGEST}")),
            is("docker.io", "library/debian", None, Some(DIGEST))
        );
        assert_eq!(
            parsed(&format!("localhost:5000/a:t@{DIGEST}")),
            is("localhost:5000", "a", Some("t"), Some(DIGEST))
        );
        assert_eq!(
            parsed("localhost:5000/a"),
            is("localhost:5000", "a", None, None),
            "the port's colon is no tag"
        );
        assert_eq!(
            parsed("r.io/a:A_b.c-1"),
            is("r.io", "a", Some("A_b.c-1"), None)
        );
        assert_eq!(
            parsed("r.io/a__b.c-d---e"),
            is("r.io", "a__b.c-d---e", None, None)
        );
    }

    #[test]
    fn malformed_references_are_refused_with_the_reason() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("Debian", "lowercase"),
            ("quay.io/Podman/stable", "lowercase"),
            ("docker.io/", "missing"),
            ("localhost:5000/", "missing"),
            ("debian:", "not a tag"),
            ("debian:-x", "not a tag"),
            ("debian:.x", "not a tag"),
            (&format!("debian:{}", "t".repeat(129)), "not a tag"),
            ("debian@", "not a digest"),
            ("debian@sha256:abc", "not a sha256 digest"),
            (
                &format!("debian@{}", DIGEST.to_uppercase()),
                "not supported",
            ),
            (
                &format!("debian@{}", DIGEST.replace("sha256:0", "sha256:A")),
                "not a sha256",
            ),
            ("debian@sha512:abcd", "not supported"),
            ("a//b", "not a repository name component"),
            ("a/b/", "not a repository name component"),
            ("-a", "not a repository name component"),
            ("a-", "not a repository name component"),
            ("a...b", "not a repository name component"),
            ("a___b", "not a repository name component"),
            ("a b", "not a repository name component"),
            ("quay.io:/a", "host[:port]"),
            ("quay.io:abc/a", "host[:port]"),
            ("-bad.io/a", "host[:port]"),
            ("bad..io/a", "host[:port]"),
            ("[zz]:5000/a", "host[:port]"),
            (
                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "image id",
            ),
            (&format!("r.io/{}", "a".repeat(260)), "longer than 255"),
        ];
        for (text, why) in cases {
            let err = Reference::parse(text).expect_err(text);
            assert!(err.contains(why), "{text}: {err}");
            assert!(err.starts_with("invalid image reference"), "{err}");
        }
    }

    #[test]
    fn display_writes_the_normalised_reference() {
        let shown = |t: &str| Reference::parse(t).unwrap().to_string();
        assert_eq!(shown("debian"), "docker.io/library/debian:latest");
        assert_eq!(
            shown("debian:bookworm"),
            "docker.io/library/debian:bookworm"
        );
        assert_eq!(
            shown(&format!("127.0.0.1:5000/a/b@{DIGEST}")),
            format!("127.0.0.1:5000/a/b@{DIGEST}")
        );
        assert_eq!(
            shown(&format!("r.io/a:t@{DIGEST}")),
            format!("r.io/a:t@{DIGEST}")
        );
        // What Display writes parses back to the same reference.
        for text in ["debian", "quay.io/a/b:1", "[::1]:5000/x"] {
            let once = Reference::parse(text).unwrap();
            assert_eq!(
                Reference::parse(&once.to_string()).unwrap().name(),
                once.name()
            );
        }
    }

    #[test]
    fn the_manifest_is_asked_for_by_digest_first() {
        let r = Reference::parse(&format!("r.io/a:t@{DIGEST}")).unwrap();
        assert_eq!(r.manifest_reference(), DIGEST);
        assert_eq!(
            Reference::parse("r.io/a:t").unwrap().manifest_reference(),
            "t"
        );
        assert_eq!(
            Reference::parse("r.io/a").unwrap().manifest_reference(),
            "latest"
        );
        assert_eq!(Reference::parse("r.io/a").unwrap().as_written(), "r.io/a");
    }

    #[test]
    fn fully_qualified_means_a_host_or_docker_transport() {
        for text in [
            "docker.io/debian",
            "quay.io/a/b:1",
            "localhost/a",
            "localhost:5000/a",
            "127.0.0.1:5000/a",
            "docker://debian",
        ] {
            assert!(Reference::is_fully_qualified(text), "{text}");
        }
        for text in [
            "debian",
            "debian:12",
            "library/debian",
            "foo/bar:1",
            "localhost",
        ] {
            assert!(!Reference::is_fully_qualified(text), "{text}");
        }
    }
}
