//! Container images saved to files: OCI image layouts (`podman save --format oci-archive` or
//! `oci-dir`, `skopeo copy oci:`) and Docker archives (`docker save`, `podman save --format
//! docker-archive`). Only the JSON documents are read here; the layers are tar streams for `extract`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use serde::Deserialize;

use super::store::ImageConfig;
use super::stream::sha256_hex;

/// Where a blob's bytes are: a file of its own (a layout directory) or a region of an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobLocation {
    pub path: String,
    pub offset: u64,
    pub len: u64,
}

/// The files of an image, in a directory or inside an uncompressed tar archive.
pub trait ImageFiles {
    fn locate(&self, path: &str) -> Option<BlobLocation>;
    fn read_small(&self, path: &str) -> Result<Vec<u8>, String>;
}

/// An image layout directory.
pub struct DirectoryFiles<'a>(pub &'a Path);

impl ImageFiles for DirectoryFiles<'_> {
    fn locate(&self, path: &str) -> Option<BlobLocation> {
        let full = self.0.join(path);
        let meta = std::fs::metadata(&full).ok().filter(|m| m.is_file())?;
        Some(BlobLocation {
            path: full.to_string_lossy().into_owned(),
            offset: 0,
            len: meta.len(),
        })
    }

    fn read_small(&self, path: &str) -> Result<Vec<u8>, String> {
        read_limited(
            &mut File::open(self.0.join(path)).map_err(|e| format!("{path}: {e}"))?,
            path,
        )
    }
}

/// The regular files of an uncompressed tar archive, by normalised name.
pub struct ArchiveFiles<'a> {
    pub file: &'a File,
    pub path: String,
    pub entries: HashMap<String, (u64, u64)>,
}

impl<'a> ArchiveFiles<'a> {
    /// Indexes an image archive by reading its headers only; None as soon as an entry shows that it
    /// is not one (a root filesystem tarball is told after its first few entries).
    pub fn index(file: &'a File, path: &str) -> io::Result<Option<ArchiveFiles<'a>>> {
        let mut archive = tar::Archive::new(file);
        let mut entries = HashMap::new();
        let mut links = Vec::new();
        for entry in archive.entries_with_seek()? {
            let entry = entry?;
            if !could_be_in_an_image_archive(&entry.path_bytes()) {
                return Ok(None);
            }
            let name = normalise(&String::from_utf8_lossy(&entry.path_bytes()));
            let kind = entry.header().entry_type();
            if kind.is_file() {
                entries.insert(name, (entry.raw_file_position(), entry.size()));
            } else if kind.is_symlink()
                && let Some(target) = entry.link_name_bytes()
            {
                // Older Docker archives link <id>/layer.tar to ../<digest>.tar.
                let target = String::from_utf8_lossy(&target).into_owned();
                let base = name.rsplit_once('/').map_or("", |(dir, _)| dir);
                let resolved = resolve_link(base, &target);
                links.push((name, resolved));
            }
        }
        for (name, target) in links {
            if let Some(Some(found)) = target.map(|t| entries.get(&t).copied()) {
                entries.insert(name, found);
            }
        }
        Ok(Some(ArchiveFiles {
            file,
            path: path.to_string(),
            entries,
        }))
    }
}

/// `target` of a symlink in directory `base`, as an archive name; None if it leaves the archive.
fn resolve_link(base: &str, target: &str) -> Option<String> {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        base.split('/').filter(|c| !c.is_empty()).collect()
    };
    for component in target.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

/// Image archives hold top-level documents, `blobs/...` (OCI) and directories named by a digest
/// (older Docker archives); a root filesystem has `./`, `etc/passwd` and the like.
fn could_be_in_an_image_archive(name: &[u8]) -> bool {
    let name = normalise(&String::from_utf8_lossy(name));
    let Some((first, _)) = name.split_once('/') else {
        return !name.is_empty();
    };
    first == "blobs" || (first.len() == 64 && first.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl ImageFiles for ArchiveFiles<'_> {
    fn locate(&self, path: &str) -> Option<BlobLocation> {
        self.entries
            .get(&normalise(path))
            .map(|&(offset, len)| BlobLocation {
                path: self.path.clone(),
                offset,
                len,
            })
    }

    fn read_small(&self, path: &str) -> Result<Vec<u8>, String> {
        let location = self
            .locate(path)
            .ok_or_else(|| format!("the archive has no {path}"))?;
        let mut region = super::stream::Region {
            file: self.file,
            offset: location.offset,
            len: location.len,
        };
        read_limited(&mut region, path)
    }
}

/// `./a//b` -> `a/b`.
pub fn normalise(name: &str) -> String {
    name.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// JSON documents are small; a huge one is a broken or hostile archive.
const MAX_DOCUMENT: u64 = 16 * 1024 * 1024;

fn read_limited(reader: &mut dyn Read, path: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_DOCUMENT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{path}: {e}"))?;
    if bytes.len() as u64 > MAX_DOCUMENT {
        return Err(format!("{path} is larger than 16 MiB"));
    }
    Ok(bytes)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Oci,
    Docker,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::Oci => "OCI image",
            Layout::Docker => "Docker image",
        }
    }
}

/// Which image layout the files hold, if any. OCI wins when both are present (docker save since
/// Docker 25 writes both).
pub fn detect(files: &dyn ImageFiles) -> Option<Layout> {
    if files.locate("oci-layout").is_some() && files.locate("index.json").is_some() {
        Some(Layout::Oci)
    } else if files.locate("manifest.json").is_some() {
        Some(Layout::Docker)
    } else {
        None
    }
}

/// One layer to apply, bottom first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub location: BlobLocation,
    /// The sha256 (hex) its bytes must have, when the layout records it.
    pub digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// sha256 (hex) of the image's configuration: the image id podman and docker show.
    pub id: String,
    pub layers: Vec<Layer>,
    pub config: ImageConfig,
}

#[derive(Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
}

#[derive(Deserialize)]
struct Index {
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Manifest {
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct DockerManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

#[derive(Deserialize, Default)]
struct ConfigFile {
    #[serde(default)]
    config: Option<RuntimeConfig>,
}

#[derive(Deserialize)]
struct PlatformOfConfig {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(Deserialize)]
struct LayersOfConfig {
    rootfs: RootfsOfConfig,
}

#[derive(Deserialize)]
struct RootfsOfConfig {
    #[serde(rename = "type", default)]
    kind: String,
    diff_ids: Vec<String>,
}

#[derive(Deserialize, Default)]
struct RuntimeConfig {
    #[serde(rename = "Env", default)]
    env: Option<Vec<String>>,
    #[serde(rename = "WorkingDir", default)]
    working_dir: Option<String>,
    #[serde(rename = "User", default)]
    user: Option<String>,
    #[serde(rename = "Entrypoint", default)]
    entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default)]
    cmd: Option<Vec<String>>,
    #[serde(rename = "StopSignal", default)]
    stop_signal: Option<String>,
}

fn json<'de, T: Deserialize<'de>>(bytes: &'de [u8], what: &str) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("{what} is not valid: {e}"))
}

/// The blob path of a digest, and its hex; only sha256 is used by images in practice.
fn blob_path(digest: &str) -> Result<(String, String), String> {
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| format!("unsupported or malformed digest `{digest}`"))?;
    Ok((format!("blobs/sha256/{hex}"), hex.to_ascii_lowercase()))
}

/// Reads a small blob and checks it against its digest.
fn verified_blob(files: &dyn ImageFiles, digest: &str) -> Result<Vec<u8>, String> {
    let (path, hex) = blob_path(digest)?;
    let bytes = files.read_small(&path)?;
    if sha256_hex(&bytes) != hex {
        return Err(format!(
            "{path} does not match its digest: the archive is damaged"
        ));
    }
    Ok(bytes)
}

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// Reads the image (the first one when the layout holds several).
pub fn read_image(files: &dyn ImageFiles, layout: Layout) -> Result<Image, String> {
    match layout {
        Layout::Oci => read_oci(files),
        Layout::Docker => read_docker(files),
    }
}

fn read_oci(files: &dyn ImageFiles) -> Result<Image, String> {
    let index: Index = json(&files.read_small("index.json")?, "index.json")?;
    let mut descriptor = index
        .manifests
        .into_iter()
        .next()
        .ok_or("index.json lists no image")?;
    // A multi-platform image: its index, then (the first) platform's manifest.
    for _ in 0..4 {
        if !INDEX_TYPES.contains(&descriptor.media_type.as_str()) {
            break;
        }
        let nested: Index = json(&verified_blob(files, &descriptor.digest)?, "an image index")?;
        descriptor = nested
            .manifests
            .into_iter()
            .next()
            .ok_or("an image index lists no image")?;
    }
    let manifest: Manifest = json(
        &verified_blob(files, &descriptor.digest)?,
        "the image manifest",
    )?;
    let config_bytes = verified_blob(files, &manifest.config.digest)?;
    let mut layers = Vec::new();
    for layer in &manifest.layers {
        let (path, hex) = blob_path(&layer.digest)?;
        let location = files
            .locate(&path)
            .ok_or_else(|| format!("layer {path} is missing"))?;
        layers.push(Layer {
            location,
            digest: Some(hex),
        });
    }
    Ok(Image {
        id: sha256_hex(&config_bytes),
        layers,
        config: runtime_config(&config_bytes)?,
    })
}

fn read_docker(files: &dyn ImageFiles) -> Result<Image, String> {
    let entries: Vec<DockerManifestEntry> =
        json(&files.read_small("manifest.json")?, "manifest.json")?;
    let entry = entries
        .into_iter()
        .next()
        .ok_or("manifest.json lists no image")?;
    let config_bytes = files.read_small(&entry.config)?;
    let mut layers = Vec::new();
    for path in &entry.layers {
        let location = files
            .locate(path)
            .ok_or_else(|| format!("layer {path} is missing"))?;
        // Docker 25+ stores layers as blobs named by their digest.
        let digest = normalise(path)
            .strip_prefix("blobs/sha256/")
            .map(str::to_ascii_lowercase);
        layers.push(Layer { location, digest });
    }
    Ok(Image {
        id: sha256_hex(&config_bytes),
        layers,
        config: runtime_config(&config_bytes)?,
    })
}

pub(super) fn runtime_config(bytes: &[u8]) -> Result<ImageConfig, String> {
    let file: ConfigFile = json(bytes, "the image configuration")?;
    let runtime = file.config.unwrap_or_default();
    Ok(ImageConfig {
        env: runtime.env.unwrap_or_default(),
        working_dir: runtime.working_dir.filter(|w| !w.is_empty()),
        user: runtime.user.filter(|u| !u.is_empty()),
        entrypoint: runtime.entrypoint.unwrap_or_default(),
        cmd: runtime.cmd.unwrap_or_default(),
        stop_signal: runtime.stop_signal.filter(|s| !s.is_empty()),
    })
}

/// An image's platform as its configuration says, `os/architecture[/variant]`; None if it says none.
pub(super) fn platform_of(bytes: &[u8]) -> Option<String> {
    let config: PlatformOfConfig = serde_json::from_slice(bytes).ok()?;
    if config.os.is_empty() || config.architecture.is_empty() {
        return None;
    }
    Some(match config.variant.filter(|v| !v.is_empty()) {
        Some(variant) => format!("{}/{}/{variant}", config.os, config.architecture),
        None => format!("{}/{}", config.os, config.architecture),
    })
}

/// The digests (hex) of an image's uncompressed layers, the base first, from its configuration.
pub(super) fn diff_ids(bytes: &[u8]) -> Result<Vec<String>, String> {
    let config: LayersOfConfig = json(bytes, "the image configuration")?;
    if config.rootfs.kind != "layers" {
        return Err(format!(
            "the image configuration's rootfs type is `{}`, not `layers`",
            config.rootfs.kind
        ));
    }
    config
        .rootfs
        .diff_ids
        .iter()
        .map(|d| blob_path(d).map(|(_, hex)| hex))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn diff_ids_come_from_the_configuration_in_order() {
        let a = "a".repeat(64);
        let b = "B".repeat(64);
        let config =
            format!(r#"{{"rootfs":{{"type":"layers","diff_ids":["sha256:{a}","sha256:{b}"]}}}}"#);
        assert_eq!(diff_ids(config.as_bytes()), Ok(vec![a, "b".repeat(64)]));
        assert!(diff_ids(br#"{"rootfs":{"type":"layers","diff_ids":["md5:00"]}}"#).is_err());
        assert!(diff_ids(br#"{"rootfs":{"type":"other","diff_ids":[]}}"#).is_err());
        assert!(diff_ids(b"{}").is_err());
    }

    /// Image files held in memory.
    struct Memory(HashMap<String, Vec<u8>>);

    impl ImageFiles for Memory {
        fn locate(&self, path: &str) -> Option<BlobLocation> {
            self.0.get(&normalise(path)).map(|b| BlobLocation {
                path: normalise(path),
                offset: 0,
                len: b.len() as u64,
            })
        }
        fn read_small(&self, path: &str) -> Result<Vec<u8>, String> {
            self.0
                .get(&normalise(path))
                .cloned()
                .ok_or(format!("no {path}"))
        }
    }

    fn blob(files: &mut HashMap<String, Vec<u8>>, content: &[u8]) -> String {
        let hex = sha256_hex(content);
        files.insert(format!("blobs/sha256/{hex}"), content.to_vec());
        format!("sha256:{hex}")
    }

    fn oci_image() -> (HashMap<String, Vec<u8>>, String) {
        let mut files = HashMap::new();
        let config = br#"{"architecture":"amd64","config":{"Env":["PATH=/usr/bin","LANG=C.UTF-8"],"WorkingDir":"/srv","User":"1000:1000","Cmd":["bash"],"StopSignal":"SIGINT"}}"#;
        let config_digest = blob(&mut files, config);
        let layer1 = blob(&mut files, b"layer one");
        let layer2 = blob(&mut files, b"layer two");
        let manifest = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":1}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{layer1}","size":9}},{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer2}","size":9}}]}}"#
        );
        let manifest_digest = blob(&mut files, manifest.as_bytes());
        files.insert(
            "index.json".into(),
            format!(r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest_digest}","size":1}}]}}"#).into_bytes(),
        );
        files.insert(
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        );
        (files, sha256_hex(config))
    }

    #[test]
    fn an_oci_layout_gives_layers_in_order_and_the_runtime_defaults() {
        let (files, id) = oci_image();
        let files = Memory(files);
        assert_eq!(detect(&files), Some(Layout::Oci));
        let image = read_image(&files, Layout::Oci).unwrap();
        assert_eq!(image.id, id);
        assert_eq!(image.layers.len(), 2);
        assert_eq!(
            image.layers[0].digest.as_deref(),
            Some(sha256_hex(b"layer one").as_str())
        );
        assert_eq!(image.config.env, ["PATH=/usr/bin", "LANG=C.UTF-8"]);
        assert_eq!(image.config.working_dir.as_deref(), Some("/srv"));
        assert_eq!(image.config.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(image.config.user.as_deref(), Some("1000:1000"));
        assert_eq!(image.config.cmd, ["bash"]);
        assert!(image.config.entrypoint.is_empty());
    }

    #[test]
    fn a_tampered_manifest_is_refused() {
        let (mut files, _) = oci_image();
        for (name, content) in files.iter_mut() {
            if name.starts_with("blobs/") && content.starts_with(b"{\"schemaVersion\"") {
                content.extend_from_slice(b" ");
            }
        }
        let err = read_image(&Memory(files), Layout::Oci).unwrap_err();
        assert!(err.contains("does not match its digest"), "{err}");
    }

    #[test]
    fn a_docker_archive_gives_its_layers_and_config() {
        let mut files = HashMap::new();
        files.insert(
            "abc.json".into(),
            br#"{"config":{"Env":["A=1"],"Entrypoint":["/bin/sh","-c"]}}"#.to_vec(),
        );
        files.insert("l1/layer.tar".into(), b"one".to_vec());
        files.insert("l2/layer.tar".into(), b"two".to_vec());
        files.insert(
            "manifest.json".into(),
            br#"[{"Config":"abc.json","RepoTags":["x:latest"],"Layers":["l1/layer.tar","l2/layer.tar"]}]"#.to_vec(),
        );
        let files = Memory(files);
        assert_eq!(detect(&files), Some(Layout::Docker));
        let image = read_image(&files, Layout::Docker).unwrap();
        assert_eq!(
            image
                .layers
                .iter()
                .map(|l| l.location.path.as_str())
                .collect::<Vec<_>>(),
            ["l1/layer.tar", "l2/layer.tar"]
        );
        assert_eq!(image.config.env, ["A=1"]);
        assert_eq!(image.config.entrypoint, ["/bin/sh", "-c"]);
    }

    #[test]
    fn root_filesystems_are_told_apart_from_image_archives() {
        for name in [
            "oci-layout",
            "index.json",
            "blobs/sha256/abc",
            &format!("{}/layer.tar", "a".repeat(64)),
        ] {
            assert!(could_be_in_an_image_archive(name.as_bytes()), "{name}");
        }
        for name in ["./", "etc/passwd", "./usr/bin/ls"] {
            assert!(!could_be_in_an_image_archive(name.as_bytes()), "{name}");
        }
    }

    #[test]
    fn links_between_archive_members_resolve_inside_the_archive() {
        assert_eq!(resolve_link("abc", "../def.tar"), Some("def.tar".into()));
        assert_eq!(resolve_link("a/b", "./c"), Some("a/b/c".into()));
        assert_eq!(resolve_link("", "../x"), None);
    }

    #[test]
    fn digests_other_than_sha256_are_refused() {
        assert!(blob_path("sha512:abcd").is_err());
        assert!(blob_path("sha256:../../etc/passwd").is_err());
    }
}
