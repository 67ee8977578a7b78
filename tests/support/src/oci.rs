//! OCI images written offline: layers built entry by entry (`LayerBuilder`), an image's config and
//! manifest (`Image`), saved as an OCI archive (`write_archive`: what `skopeo copy oci-archive:FILE`
//! and `unshare-run --rootfs FILE` read) or as an OCI layout whose index.json names a multi-platform
//! index (`write_index_layout`: what `skopeo copy --all oci:DIR:REF` pushes as a real index).
//!
//! The test images: `debian_image()` (the cached debootstrap tarball as its one layer),
//! `debian_layered_image()` (the same base layer and one more on top), and `multi_arch_images()`
//! (two small images for amd64 and arm64). Layers are written uncompressed; whoever pushes them
//! compresses them (`registry::Compression`).
//!
//! Everything is deterministic (fixed times, owners and key order), so equal inputs give equal
//! digests: the cached Debian archives are named by their manifest digest and rebuilt only when the
//! tarball or the image's config changes.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{CACHE_DIR, TempDir, bookworm_tarball, busybox, run_ok};

pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_TYPE_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_TYPE_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_TYPE_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// The annotation in an OCI layout's index.json that names an entry (`oci:DIR:NAME`).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The time every entry, config and history record carries.
const EPOCH: u64 = 1_600_000_000;
const CREATED: &str = "2020-09-13T12:26:40Z";
/// Part of the cache key of the Debian archives: bump when the archive's tar wrapping changes in a
/// way the manifest digest does not show.
const ARCHIVE_FORMAT: &str = "v1";

/// "sha256:" and the hex SHA-256 of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(data)))
}

/// The digest of a file's content (sha256sum: the Debian tarball is 200 MB, and this crate is built
/// without optimisation in test builds), remembered while the file's size and time stay.
pub fn file_digest(path: &Path) -> String {
    type Known = Mutex<Vec<(PathBuf, u64, SystemTime, String)>>;
    static KNOWN: OnceLock<Known> = OnceLock::new();
    let meta = fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let key = (path.to_path_buf(), meta.len(), meta.modified().unwrap());
    let known = KNOWN.get_or_init(Known::default);
    if let Some((.., digest)) = known
        .lock()
        .unwrap()
        .iter()
        .find(|(p, len, time, _)| (p, len, time) == (&key.0, &key.1, &key.2))
    {
        return digest.clone();
    }
    let out = run_ok(Command::new("sha256sum").arg(path));
    let text = String::from_utf8(out.stdout).unwrap();
    let hex = text.split_whitespace().next().unwrap();
    assert_eq!(hex.len(), 64, "sha256sum {}: {text}", path.display());
    let digest = format!("sha256:{hex}");
    known
        .lock()
        .unwrap()
        .push((key.0, key.1, key.2, digest.clone()));
    digest
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hex part of "sha256:HEX" (panics on another algorithm or a malformed digest).
pub fn digest_hex(digest: &str) -> &str {
    let hex = digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("not a sha256 digest: {digest}"));
    assert!(
        hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "not a sha256 digest: {digest}"
    );
    hex
}

/// A layer's uncompressed tar stream, in memory or in a file (the Debian tarball is not read into
/// memory).
#[derive(Clone, Debug)]
pub enum LayerData {
    Bytes(Vec<u8>),
    File(PathBuf),
}

impl LayerData {
    fn describe(&self) -> (String, u64) {
        match self {
            LayerData::Bytes(bytes) => (sha256_digest(bytes), bytes.len() as u64),
            LayerData::File(path) => (file_digest(path), fs::metadata(path).unwrap().len()),
        }
    }
}

/// A layer's tar stream built entry by entry: root-owned, fixed times, parent directories not added
/// implicitly (add them with `dir` where the test needs their mode).
pub struct LayerBuilder {
    tar: tar::Builder<Vec<u8>>,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        LayerBuilder::new()
    }
}

impl LayerBuilder {
    pub fn new() -> LayerBuilder {
        LayerBuilder {
            tar: tar::Builder::new(Vec::new()),
        }
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(EPOCH);
        h
    }

    pub fn dir(mut self, path: &str, mode: u32) -> Self {
        let mut h = Self::header(tar::EntryType::Directory, mode, 0);
        self.tar
            .append_data(&mut h, format!("{}/", path.trim_end_matches('/')), &[][..])
            .unwrap();
        self
    }

    pub fn file(mut self, path: &str, mode: u32, content: &[u8]) -> Self {
        let mut h = Self::header(tar::EntryType::Regular, mode, content.len() as u64);
        self.tar.append_data(&mut h, path, content).unwrap();
        self
    }

    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0);
        self.tar.append_link(&mut h, path, target).unwrap();
        self
    }

    /// An OCI whiteout: `path` is deleted from the layers below.
    pub fn whiteout(self, path: &str) -> Self {
        let (dir, name) = match path.rsplit_once('/') {
            Some((dir, name)) => (format!("{dir}/"), name),
            None => (String::new(), path),
        };
        self.file(&format!("{dir}.wh.{name}"), 0o644, b"")
    }

    pub fn build(self) -> LayerData {
        LayerData::Bytes(self.tar.into_inner().unwrap())
    }
}

/// An image: its platform, layers (bottom first) and the config a run uses.
#[derive(Clone, Debug)]
pub struct Image {
    pub architecture: String,
    pub os: String,
    pub variant: Option<String>,
    pub layers: Vec<LayerData>,
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    pub working_dir: Option<String>,
    /// Annotations on this image's entry in an index (e.g. `vnd.docker.reference.type`).
    pub index_annotations: Vec<(String, String)>,
}

impl Image {
    /// A linux image for `architecture` ("amd64", "arm64", ...) with no layers yet and the usual PATH.
    pub fn new(architecture: &str) -> Image {
        Image {
            architecture: architecture.into(),
            os: "linux".into(),
            variant: None,
            layers: Vec::new(),
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            cmd: Vec::new(),
            working_dir: None,
            index_annotations: Vec::new(),
        }
    }

    pub fn layer(mut self, layer: LayerData) -> Self {
        self.layers.push(layer);
        self
    }

    pub fn env(mut self, var: &str) -> Self {
        self.env.push(var.into());
        self
    }

    pub fn cmd(mut self, argv: &[&str]) -> Self {
        self.cmd = argv.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn working_dir(mut self, dir: &str) -> Self {
        self.working_dir = Some(dir.into());
        self
    }

    fn platform_json(&self) -> Value {
        let mut platform = json!({"architecture": self.architecture, "os": self.os});
        if let Some(variant) = &self.variant {
            platform["variant"] = json!(variant);
        }
        platform
    }

    /// The config and manifest documents and the layers' digests (computing those reads the layers).
    fn documents(&self) -> Documents {
        let layers: Vec<(String, u64)> = self.layers.iter().map(LayerData::describe).collect();
        let mut container_config = json!({"Env": self.env});
        if !self.cmd.is_empty() {
            container_config["Cmd"] = json!(self.cmd);
        }
        if let Some(dir) = &self.working_dir {
            container_config["WorkingDir"] = json!(dir);
        }
        let mut config = self.platform_json();
        config["created"] = json!(CREATED);
        config["config"] = container_config;
        config["rootfs"] = json!({
            "type": "layers",
            "diff_ids": layers.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>(),
        });
        config["history"] = json!(
            layers
                .iter()
                .map(|_| json!({"created": CREATED, "created_by": "unshare-run tests (oci.rs)"}))
                .collect::<Vec<_>>()
        );
        let config = serde_json::to_vec(&config).unwrap();
        let config_digest = sha256_digest(&config);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_MANIFEST,
            "config": {"mediaType": MEDIA_TYPE_CONFIG, "digest": config_digest, "size": config.len()},
            "layers": layers
                .iter()
                .map(|(digest, size)| json!({"mediaType": MEDIA_TYPE_LAYER, "digest": digest, "size": size}))
                .collect::<Vec<_>>(),
        });
        let manifest = serde_json::to_vec(&manifest).unwrap();
        Documents {
            manifest_digest: sha256_digest(&manifest),
            config_digest,
            config,
            manifest,
            layers,
        }
    }
}

struct Documents {
    config: Vec<u8>,
    config_digest: String,
    manifest: Vec<u8>,
    manifest_digest: String,
    /// (digest, size) of each layer, bottom first.
    layers: Vec<(String, u64)>,
}

/// What an archive or layout holds, as written (a push that compresses the layers changes the
/// manifest's and layers' digests, not the config's or the diff ids).
#[derive(Clone, Debug)]
pub struct WrittenImage {
    /// The archive file or layout directory.
    pub path: PathBuf,
    pub manifest_digest: String,
    pub config_digest: String,
    /// The uncompressed layers' digests, bottom first: the config's rootfs.diff_ids.
    pub diff_ids: Vec<String>,
    pub architecture: String,
}

/// Blobs and index.json of an OCI layout, written into a directory or an archive.
trait LayoutSink {
    fn add(&mut self, name: &str, data: &[u8]);
    fn add_file(&mut self, name: &str, path: &Path);
}

struct DirSink(PathBuf);

impl LayoutSink for DirSink {
    fn add(&mut self, name: &str, data: &[u8]) {
        let path = self.0.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, data).unwrap();
    }
    fn add_file(&mut self, name: &str, source: &Path) {
        let path = self.0.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::copy(source, path).unwrap();
    }
}

struct TarSink(tar::Builder<fs::File>);

impl TarSink {
    fn header(size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(size);
        h.set_mtime(EPOCH);
        h
    }
}

impl LayoutSink for TarSink {
    fn add(&mut self, name: &str, data: &[u8]) {
        let mut h = Self::header(data.len() as u64);
        self.0.append_data(&mut h, name, data).unwrap();
    }
    fn add_file(&mut self, name: &str, source: &Path) {
        let file = fs::File::open(source).unwrap();
        let mut h = Self::header(file.metadata().unwrap().len());
        self.0.append_data(&mut h, name, file).unwrap();
    }
}

fn blob_name(digest: &str) -> String {
    format!("blobs/sha256/{}", digest_hex(digest))
}

/// Writes one image's blobs (config, manifest, layers; a layer already written is skipped).
fn write_image_blobs(
    sink: &mut dyn LayoutSink,
    image: &Image,
    docs: &Documents,
    seen: &mut Vec<String>,
) {
    let mut add =
        |sink: &mut dyn LayoutSink, digest: &str, write: &dyn Fn(&mut dyn LayoutSink, &str)| {
            if !seen.iter().any(|d| d == digest) {
                seen.push(digest.to_string());
                write(sink, &blob_name(digest));
            }
        };
    add(sink, &docs.config_digest, &|s, n| s.add(n, &docs.config));
    add(sink, &docs.manifest_digest, &|s, n| {
        s.add(n, &docs.manifest)
    });
    for (layer, (digest, _)) in image.layers.iter().zip(&docs.layers) {
        add(sink, digest, &|s, n| match layer {
            LayerData::Bytes(bytes) => s.add(n, bytes),
            LayerData::File(path) => s.add_file(n, path),
        });
    }
}

fn layout_header(sink: &mut dyn LayoutSink, index: &Value) {
    sink.add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    sink.add("index.json", &serde_json::to_vec(index).unwrap());
}

fn written(path: &Path, image: &Image, docs: &Documents) -> WrittenImage {
    WrittenImage {
        path: path.to_path_buf(),
        manifest_digest: docs.manifest_digest.clone(),
        config_digest: docs.config_digest.clone(),
        diff_ids: docs.layers.iter().map(|(d, _)| d.clone()).collect(),
        architecture: image.architecture.clone(),
    }
}

fn archive_of(path: &Path, image: &Image, docs: &Documents) -> WrittenImage {
    let partial = path.with_extension("partial");
    let mut sink = TarSink(tar::Builder::new(fs::File::create(&partial).unwrap()));
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_INDEX,
        "manifests": [{
            "mediaType": MEDIA_TYPE_MANIFEST,
            "digest": docs.manifest_digest,
            "size": docs.manifest.len(),
        }],
    });
    layout_header(&mut sink, &index);
    write_image_blobs(&mut sink, image, docs, &mut Vec::new());
    let mut file = sink.0.into_inner().unwrap();
    file.flush().unwrap();
    file.sync_all().unwrap();
    fs::set_permissions(&partial, fs::Permissions::from_mode(0o644)).unwrap();
    fs::rename(&partial, path).unwrap();
    written(path, image, docs)
}

/// Writes `image` as an OCI archive (a tar of an OCI layout whose index.json has this one manifest)
/// at `path`, mode 0644.
pub fn write_archive(path: &Path, image: &Image) -> WrittenImage {
    archive_of(path, image, &image.documents())
}

/// An OCI layout written by `write_index_layout`.
#[derive(Clone, Debug)]
pub struct WrittenIndex {
    pub dir: PathBuf,
    /// The name of the index's entry in index.json: `oci:DIR:REF_NAME`.
    pub ref_name: String,
    pub index_digest: String,
    /// One per image, in the order given.
    pub images: Vec<WrittenImage>,
}

/// Writes an OCI layout in `dir` whose index.json names (`ref_name`) one entry: an image index
/// listing `images` with their platforms and index annotations.
pub fn write_index_layout(dir: &Path, ref_name: &str, images: &[Image]) -> WrittenIndex {
    let mut sink = DirSink(dir.to_path_buf());
    let mut seen = Vec::new();
    let mut entries = Vec::new();
    let mut written_images = Vec::new();
    for image in images {
        let docs = image.documents();
        write_image_blobs(&mut sink, image, &docs, &mut seen);
        let mut entry = json!({
            "mediaType": MEDIA_TYPE_MANIFEST,
            "digest": docs.manifest_digest,
            "size": docs.manifest.len(),
            "platform": image.platform_json(),
        });
        if !image.index_annotations.is_empty() {
            let annotations: serde_json::Map<String, Value> = image
                .index_annotations
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            entry["annotations"] = Value::Object(annotations);
        }
        entries.push(entry);
        written_images.push(written(dir, image, &docs));
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_INDEX,
        "manifests": entries,
    }))
    .unwrap();
    let index_digest = sha256_digest(&index);
    sink.add(&blob_name(&index_digest), &index);
    layout_header(
        &mut sink,
        &json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_INDEX,
            "manifests": [{
                "mediaType": MEDIA_TYPE_INDEX,
                "digest": index_digest,
                "size": index.len(),
                "annotations": {REF_NAME: ref_name},
            }],
        }),
    );
    WrittenIndex {
        dir: dir.to_path_buf(),
        ref_name: ref_name.into(),
        index_digest,
        images: written_images,
    }
}

/// The Debian bookworm minbase image: the cached debootstrap tarball as its one layer, Cmd bash.
pub fn debian_image_spec() -> Image {
    Image::new("amd64")
        .layer(LayerData::File(bookworm_tarball()))
        .env("LANG=C.UTF-8")
        .cmd(&["bash"])
}

/// What the layered image's top layer holds (paths inside the image).
pub const LAYERED_FILE: &str = "/etc/urt-layered";
pub const LAYERED_FILE_CONTENT: &str = "layered on bookworm\n";
/// The file of the base that the layered image's top layer deletes (a whiteout).
pub const LAYERED_WHITEOUT: &str = "/etc/motd";

/// The Debian image's layer and one more: it adds /etc/urt-layered and /opt/urt/hello.txt, deletes
/// /etc/motd (a whiteout), and sets URT_LAYERED=yes, WorkingDir /opt/urt and Cmd
/// `cat /etc/urt-layered`.
pub fn debian_layered_image_spec() -> Image {
    let top = LayerBuilder::new()
        .file(
            LAYERED_FILE.trim_start_matches('/'),
            0o644,
            LAYERED_FILE_CONTENT.as_bytes(),
        )
        .dir("opt/urt", 0o755)
        .file("opt/urt/hello.txt", 0o644, b"hello from the top layer\n")
        .whiteout(LAYERED_WHITEOUT.trim_start_matches('/'))
        .build();
    debian_image_spec()
        .layer(top)
        .env("URT_LAYERED=yes")
        .working_dir("/opt/urt")
        .cmd(&["cat", LAYERED_FILE])
}

/// `image` as an OCI archive in CACHE_DIR, named by its manifest digest (so a changed tarball or
/// config makes a new one), written once under a lock shared with other test processes.
fn cached_archive(label: &str, image: &Image) -> WrittenImage {
    let docs = image.documents();
    let path = Path::new(CACHE_DIR).join(format!(
        "{label}-{ARCHIVE_FORMAT}-{}.oci.tar",
        &digest_hex(&docs.manifest_digest)[..16]
    ));
    // Not CACHE_DIR/lock: bookworm_tarball() takes that one, and a second flock of the same file
    // in this process would wait for ever.
    let lock = fs::File::create(Path::new(CACHE_DIR).join("oci.lock")).unwrap();
    let _guard = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).unwrap();
    if path.exists() {
        return written(&path, image, &docs);
    }
    // Older archives of this image (another tarball, config or format) are not used again.
    let stem = format!("{label}-v");
    for entry in fs::read_dir(CACHE_DIR).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&stem) && name.ends_with(".oci.tar") {
            let _ = fs::remove_file(entry.path());
        }
    }
    archive_of(&path, image, &docs)
}

/// The Debian image as an OCI archive (cached; see `debian_image_spec`).
pub fn debian_image() -> &'static WrittenImage {
    static IMAGE: OnceLock<WrittenImage> = OnceLock::new();
    IMAGE.get_or_init(|| cached_archive("bookworm-base", &debian_image_spec()))
}

/// The layered image as an OCI archive (cached; see `debian_layered_image_spec`). Its first layer is
/// the Debian image's: `diff_ids[0]` equal.
pub fn debian_layered_image() -> &'static WrittenImage {
    static IMAGE: OnceLock<WrittenImage> = OnceLock::new();
    IMAGE.get_or_init(|| cached_archive("bookworm-layered", &debian_layered_image_spec()))
}

/// The file whose content names each multi-arch image's architecture.
pub const ARCH_FILE: &str = "/etc/urt-arch";

/// Two small images for an index: amd64, which runs here (the static busybox as /bin/sh and friends)
/// and arm64 (only files). Both hold ARCH_FILE with their architecture and a newline; Cmd
/// `cat /etc/urt-arch`.
pub fn multi_arch_images() -> Vec<Image> {
    let mut busybox_bytes = Vec::new();
    fs::File::open(busybox())
        .unwrap()
        .read_to_end(&mut busybox_bytes)
        .unwrap();
    let mut amd64 =
        LayerBuilder::new()
            .dir("bin", 0o755)
            .file("bin/busybox", 0o755, &busybox_bytes);
    for applet in ["sh", "cat", "ls", "echo", "uname", "id", "env", "test"] {
        amd64 = amd64.symlink(&format!("bin/{applet}"), "busybox");
    }
    let arch_layer = |arch: &str| {
        LayerBuilder::new()
            .dir("etc", 0o755)
            .file(
                ARCH_FILE.trim_start_matches('/'),
                0o644,
                format!("{arch}\n").as_bytes(),
            )
            .build()
    };
    let mut arm64 = Image::new("arm64")
        .layer(arch_layer("arm64"))
        .cmd(&["cat", ARCH_FILE]);
    arm64.variant = Some("v8".into());
    vec![
        Image::new("amd64")
            .layer(amd64.build())
            .layer(arch_layer("amd64"))
            .cmd(&["cat", ARCH_FILE]),
        arm64,
    ]
}

/// The amd64 image of `multi_arch_images` as an OCI archive in `dir`: small and quick to push.
pub fn small_image(dir: &TempDir) -> WrittenImage {
    let image = multi_arch_images().remove(0);
    write_archive(&dir.path().join("small.oci.tar"), &image)
}
