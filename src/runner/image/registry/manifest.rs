//! Image manifests and indexes as registries serve them (OCI image-spec and Docker's schema 2), and
//! which entry of an index is the image for a platform.

use serde::Deserialize;

use super::platform::Platform;
use super::reference::validate_digest;

pub(super) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(super) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub(super) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(super) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// What manifests are asked for: without these, registries answer schema 1 or refuse an index.
pub(super) const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// Manifests and configs are small documents; a larger answer is refused, not read.
pub(super) const MAX_DOCUMENT: u64 = 4 << 20;

/// A blob as a manifest names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    /// `sha256:<64 hex>`, checked: safe to use in a file name.
    pub digest: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Manifest {
    Index(Vec<IndexEntry>),
    Image {
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct IndexEntry {
    pub descriptor: Descriptor,
    pub platform: Option<Platform>,
    /// Docker's build attestations (`unknown/unknown`, `vnd.docker.reference.type`): no image.
    pub attestation: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDocument {
    schema_version: Option<u32>,
    media_type: Option<String>,
    manifests: Option<Vec<RawEntry>>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    /// Schema 1's layers.
    fs_layers: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    size: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEntry {
    #[serde(default)]
    media_type: String,
    digest: String,
    size: u64,
    platform: Option<RawPlatform>,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RawPlatform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    variant: Option<String>,
}

/// Parses a manifest or index; `content_type` (the response's) decides what it is, then the
/// document's own mediaType, then its shape. Schema 1 is refused with a message that says why.
pub(super) fn parse(content_type: Option<&str>, bytes: &[u8]) -> Result<Manifest, String> {
    let content_type = content_type
        .map(|t| t.split(';').next().unwrap_or(t).trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty());
    let raw: RawDocument = serde_json::from_slice(bytes)
        .map_err(|e| format!("the manifest is not valid JSON: {e}"))?;
    let known = [
        OCI_INDEX,
        DOCKER_LIST,
        OCI_MANIFEST,
        DOCKER_MANIFEST,
        DOCKER_SCHEMA1,
        DOCKER_SCHEMA1_SIGNED,
    ];
    let kind = content_type
        .filter(|t| known.contains(&t.as_str()))
        .or_else(|| {
            raw.media_type
                .clone()
                .filter(|t| known.contains(&t.as_str()))
        })
        .unwrap_or_else(|| {
            match (raw.schema_version, &raw.manifests, &raw.fs_layers) {
                (Some(1), _, _) | (_, _, Some(_)) => DOCKER_SCHEMA1,
                (_, Some(_), _) => OCI_INDEX,
                _ => OCI_MANIFEST,
            }
            .to_string()
        });
    match kind.as_str() {
        DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED => Err(
            "it is in Docker's schema 1 manifest format, deprecated since 2017 and not supported: \
             push the image again with a current tool (docker push or podman push write schema 2)"
                .into(),
        ),
        OCI_INDEX | DOCKER_LIST => {
            let entries = raw
                .manifests
                .ok_or("the index lists no manifests")?
                .into_iter()
                .map(entry)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Manifest::Index(entries))
        }
        _ => {
            let config = raw.config.ok_or("the manifest names no config")?;
            let config = descriptor(config)?;
            if !config.media_type.is_empty()
                && config.media_type != OCI_CONFIG
                && config.media_type != DOCKER_CONFIG
            {
                return Err(format!(
                    "it is not a container image but an artifact (its config is {})",
                    config.media_type
                ));
            }
            let layers = raw
                .layers
                .unwrap_or_default()
                .into_iter()
                .map(descriptor)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Manifest::Image { config, layers })
        }
    }
}

fn descriptor(raw: RawDescriptor) -> Result<Descriptor, String> {
    validate_digest(&raw.digest).map_err(|e| format!("the manifest names a bad digest: {e}"))?;
    Ok(Descriptor {
        media_type: raw.media_type,
        digest: raw.digest,
        size: raw.size,
    })
}

fn entry(raw: RawEntry) -> Result<IndexEntry, String> {
    let platform = raw.platform.map(|p| Platform {
        os: p.os,
        architecture: p.architecture,
        variant: p.variant.filter(|v| !v.is_empty()),
    });
    let attestation = raw.annotations.contains_key("vnd.docker.reference.type")
        || platform
            .as_ref()
            .is_some_and(|p| p.os == "unknown" && p.architecture == "unknown");
    Ok(IndexEntry {
        descriptor: descriptor(RawDescriptor {
            media_type: raw.media_type,
            digest: raw.digest,
            size: raw.size,
        })?,
        platform,
        attestation,
    })
}

/// The index entry for `wanted`: the best variant fit, the first such entry. Attestations and
/// entries that are no manifests are passed over. Err lists the platforms there are.
pub(super) fn choose<'a>(
    entries: &'a [IndexEntry],
    wanted: &Platform,
) -> Result<&'a IndexEntry, Vec<String>> {
    let manifests = [OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST, ""];
    let images = entries
        .iter()
        .filter(|e| !e.attestation && manifests.contains(&e.descriptor.media_type.as_str()));
    let best = images
        .clone()
        .enumerate()
        .filter_map(|(at, e)| Some(((wanted.rank(e.platform.as_ref()?)?, at), e)))
        .min_by_key(|(key, _)| *key)
        .map(|(_, e)| e);
    best.ok_or_else(|| {
        let mut there: Vec<String> = images
            .map(|e| match &e.platform {
                Some(p) => p.to_string(),
                None => "an image without a platform".into(),
            })
            .collect();
        there.dedup();
        there
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    fn index(entries: &[(&str, &str, Option<&str>, bool)]) -> Vec<u8> {
        let manifests: Vec<String> = entries
            .iter()
            .enumerate()
            .map(|(n, (os, arch, variant, attestation))| {
                let variant = variant.map(|v| format!(r#","variant":"{v}""#)).unwrap_or_default();
                let annotations = match attestation {
                    true => format!(
                        r#","annotations":{{"vnd.docker.reference.type":"attestation-manifest","vnd.docker.reference.digest":"{}"}}"#,
                        digest(0)
                    ),
                    false => String::new(),
                };
                format!(
                    r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":{},"platform":{{"os":"{os}","architecture":"{arch}"{variant}}}{annotations}}}"#,
                    digest(n as u8 + 1),
                    100 + n
                )
            })
            .collect();
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
            manifests.join(",")
        )
        .into_bytes()
    }

    fn pick(
        entries: &[(&str, &str, Option<&str>, bool)],
        wanted: &str,
    ) -> Result<u64, Vec<String>> {
        let Manifest::Index(parsed) = parse(Some(OCI_INDEX), &index(entries)).unwrap() else {
            panic!("not an index")
        };
        choose(&parsed, &Platform::parse(wanted).unwrap()).map(|e| e.descriptor.size - 100)
    }

    #[test]
    fn an_index_is_resolved_by_platform_skipping_attestations() {
        let buildx = [
            ("linux", "amd64", None, false),
            ("linux", "arm64", Some("v8"), false),
            ("unknown", "unknown", None, true),
            ("unknown", "unknown", None, true),
        ];
        assert_eq!(pick(&buildx, "linux/amd64"), Ok(0));
        assert_eq!(pick(&buildx, "linux/arm64"), Ok(1));
        assert_eq!(pick(&buildx, "linux/arm64/v8"), Ok(1));
        assert_eq!(
            pick(&buildx, "linux/s390x"),
            Err(vec![
                "linux/amd64".to_string(),
                "linux/arm64/v8".to_string()
            ]),
            "the attestations are not offered"
        );
        // An attestation marked only by its annotation, with a real-looking platform.
        let sneaky = [
            ("linux", "amd64", None, true),
            ("linux", "amd64", None, false),
        ];
        assert_eq!(pick(&sneaky, "linux/amd64"), Ok(1));
    }

    #[test]
    fn arm_variants_fall_back_to_older_ones() {
        let arms = [
            ("linux", "arm", Some("v6"), false),
            ("linux", "arm", Some("v7"), false),
            ("linux", "arm64", None, false),
        ];
        assert_eq!(
            pick(&arms, "linux/arm/v7"),
            Ok(1),
            "the exact variant, not the first"
        );
        assert_eq!(pick(&arms, "linux/arm/v8"), Ok(1), "v8 runs v7");
        assert_eq!(pick(&arms, "linux/arm/v6"), Ok(0));
        assert_eq!(
            pick(&arms, "linux/arm64/v8"),
            Ok(2),
            "an arm64 entry without variant is v8"
        );
        let v6_only = [("linux", "arm", Some("v6"), false)];
        assert_eq!(pick(&v6_only, "linux/arm/v8"), Ok(0));
        assert!(pick(&[("linux", "arm", Some("v7"), false)], "linux/arm/v6").is_err());
        assert!(pick(&[("windows", "amd64", None, false)], "linux/amd64").is_err());
    }

    #[test]
    fn content_type_decides_then_the_document() {
        let image = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{DOCKER_CONFIG}","digest":"{}","size":7}},
               "layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{}","size":9}}]}}"#,
            digest(1),
            digest(2)
        );
        let expected = Manifest::Image {
            config: Descriptor {
                media_type: DOCKER_CONFIG.into(),
                digest: digest(1),
                size: 7,
            },
            layers: vec![Descriptor {
                media_type: "application/vnd.docker.image.rootfs.diff.tar.gzip".into(),
                digest: digest(2),
                size: 9,
            }],
        };
        for content_type in [
            Some(DOCKER_MANIFEST),
            Some("application/json"),
            None,
            Some("text/plain; charset=utf-8"),
        ] {
            assert_eq!(
                parse(content_type, image.as_bytes()).unwrap(),
                expected,
                "{content_type:?}"
            );
        }
        let list = index(&[("linux", "amd64", None, false)]);
        for content_type in [Some(DOCKER_LIST), Some("application/json"), None] {
            assert!(matches!(
                parse(content_type, &list).unwrap(),
                Manifest::Index(_)
            ));
        }
    }

    #[test]
    fn schema_1_artifacts_and_bad_documents_are_refused() {
        let schema1 = br#"{"schemaVersion":1,"name":"a","tag":"b","fsLayers":[{"blobSum":"x"}]}"#;
        for content_type in [
            Some(DOCKER_SCHEMA1_SIGNED),
            Some(DOCKER_SCHEMA1),
            None,
            Some("application/json"),
        ] {
            let err = parse(content_type, schema1).unwrap_err();
            assert!(err.contains("schema 1"), "{err}");
        }
        let helm = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"{}","size":1}},"layers":[]}}"#,
            digest(1)
        );
        assert!(
            parse(Some(OCI_MANIFEST), helm.as_bytes())
                .unwrap_err()
                .contains("artifact")
        );
        let bad_digest =
            r#"{"schemaVersion":2,"config":{"digest":"sha256:../../etc","size":1},"layers":[]}"#;
        assert!(
            parse(None, bad_digest.as_bytes())
                .unwrap_err()
                .contains("bad digest")
        );
        assert!(
            parse(None, b"<html>")
                .unwrap_err()
                .contains("not valid JSON")
        );
        assert!(
            parse(Some(OCI_INDEX), br#"{"schemaVersion":2}"#)
                .unwrap_err()
                .contains("no manifests")
        );
        assert!(
            parse(Some(OCI_MANIFEST), br#"{"schemaVersion":2}"#)
                .unwrap_err()
                .contains("no config")
        );
        let negative = format!(r#"{{"config":{{"digest":"{}","size":-1}}}}"#, digest(1));
        assert!(parse(None, negative.as_bytes()).is_err());
    }
}
