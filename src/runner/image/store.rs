//! The per-user image store, `$XDG_DATA_HOME/unshare-run` (`~/.local/share/unshare-run`):
//!
//! ```text
//! images/<sha256>/rootfs        an extracted image (files owned by subordinate ids); for a pulled
//!                                 image, the empty mount point of its layers' overlay
//! images/<sha256>/upper, work   a pulled image's own writes (the overlay's upper layer)
//! images/<sha256>/image.json    where it came from, its size, the image's runtime defaults, its layers
//! layers/<sha256>/              one extracted layer (the digest of its uncompressed tar, the image
//!                                 config's diff_id), shared by every image that has it
//! partial/<sha256>              a blob being downloaded, locked by its puller, kept when a pull is
//!                                 killed so that the next one continues it
//! names/<NAME> -> ../images/<sha256>
//! references/<REF, / as +> -> ../images/<sha256>   what a registry reference was pulled as
//! sources/<file identity>       the digest a file was imported as (a second run does not re-read it)
//! tmp/                          imports and removals in progress, each locked by its process
//! layers.lock                   held shared by pulls while they use layers, exclusive by removals
//! ```
//! An image or a layer appears by one rename, complete; whatever a killed import leaves in tmp/ is
//! removed by the next import, which can tell it is abandoned because nobody holds its lock. The store
//! is 0700: images hold setuid files owned by subordinate ids, which no other user may reach.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::runner::mapping::MapPlan;

/// The runtime defaults an image's configuration sets; command-line options override them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
    /// The signal that stops the container (OCI StopSignal), for `unshare-run stop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
}

/// Whose ids an image's files were given, on the host, by its import: the map decides which
/// subordinate id each owner inside becomes, and the full map and keep-id differ (root inside is the
/// caller with one, the first subordinate id with the other), so an image is run with the map it was
/// imported for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdLayout {
    /// Root inside was the caller: the full map (or a single-id map, which maps only the caller).
    #[default]
    Full,
    /// --map keep-id: root inside was the first subordinate id, and the caller was these ids.
    KeepId { uid: u32, gid: u32 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// sha256 in hex: of the file for a tarball, of the configuration for a container image.
    pub digest: String,
    /// The file or directory it was imported from.
    pub source: String,
    /// "tarball (zstd)", "OCI image", ...
    pub kind: String,
    /// Bytes of file content.
    pub size: u64,
    /// Seconds since the epoch.
    pub imported: u64,
    #[serde(default)]
    pub config: ImageConfig,
    /// Records made before keep-id existed are the full map's.
    #[serde(default)]
    pub ids: IdLayout,
    /// A pulled image's layers (their directories in layers/, `layer_key`, the base first), composed
    /// by an overlay; empty for an image extracted into one tree.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<String>,
    /// The digest of the manifest a pulled image came from (of the index, for a multi-platform
    /// image: what the registry's tag names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// A pulled image's platform, `os/architecture[/variant]` as its configuration says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

pub struct Store {
    pub root: PathBuf,
}

/// A directory in tmp/ that belongs to this process while the lock is held.
pub struct TempDir {
    pub path: PathBuf,
    /// Held, never read: the lock says the directory is in use.
    pub _lock: Flock<File>,
}

/// A shared lock on a stored image's record, held while a container runs in it.
#[derive(Debug)]
pub struct InUse {
    /// Held, never read.
    _record: Flock<File>,
    /// A pulled image's upper layer, held exclusively by the one container that writes it, or shared
    /// by named containers that only read it.
    _upper: Option<Flock<File>>,
}

pub const RECORD: &str = "image.json";
pub const ROOTFS: &str = "rootfs";
/// A pulled image's own writes, and overlayfs's work directory beside them.
pub const UPPER: &str = "upper";
/// In an image's directory: one empty file per named container built on it.
const USED_BY: &str = "containers";
pub const WORK: &str = "work";

impl Store {
    /// The caller's store (not created yet).
    pub fn for_caller() -> Result<Store, String> {
        Ok(Store {
            root: crate::runner::dirs::data_dir()?,
        })
    }

    pub fn images(&self) -> PathBuf {
        self.root.join("images")
    }
    fn names(&self) -> PathBuf {
        self.root.join("names")
    }
    fn references(&self) -> PathBuf {
        self.root.join("references")
    }
    pub fn layers(&self) -> PathBuf {
        self.root.join("layers")
    }
    pub fn partial(&self) -> PathBuf {
        self.root.join("partial")
    }
    pub fn layer_dir(&self, diff_id: &str) -> PathBuf {
        self.layers().join(diff_id)
    }
    /// Where a blob is downloaded to (`digest` in hex).
    pub fn partial_blob(&self, digest: &str) -> PathBuf {
        self.partial().join(digest)
    }
    fn sources(&self) -> PathBuf {
        self.root.join("sources")
    }
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub fn image_dir(&self, digest: &str) -> PathBuf {
        self.images().join(digest)
    }

    /// Creates the store's directories (the store itself 0700).
    pub fn create(&self) -> io::Result<()> {
        if let Some(parent) = self.root.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)?;
        }
        let dirs = [
            self.root.clone(),
            self.images(),
            self.names(),
            self.references(),
            self.layers(),
            self.partial(),
            self.sources(),
            self.tmp(),
        ];
        for dir in dirs {
            match fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// A stored image's record; None when it is not (completely) stored.
    pub fn record(&self, digest: &str) -> Option<ImageRecord> {
        let text = fs::read(self.image_dir(digest).join(RECORD)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    pub fn write_record(dir: &Path, record: &ImageRecord) -> io::Result<()> {
        let text = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
        fs::write(dir.join(RECORD), text)
    }

    /// The digest a file with this identity was imported as, if that image is still stored.
    pub fn source(&self, key: &str) -> Option<String> {
        let digest = fs::read_to_string(self.sources().join(key)).ok()?;
        let digest = digest.trim().to_string();
        self.record(&digest).map(|_| digest)
    }

    pub fn remember_source(&self, key: &str, digest: &str) -> io::Result<()> {
        replace_atomically(&self.sources().join(key), |tmp| fs::write(tmp, digest))
    }

    /// Gives the image `digest` the name `name` (taking it from another image if need be).
    pub fn set_name(&self, name: &str, digest: &str) -> io::Result<()> {
        let target = Path::new("../images").join(digest);
        replace_atomically(&self.names().join(name), |tmp| {
            std::os::unix::fs::symlink(&target, tmp)
        })
    }

    /// Records that `reference` (normalised: `docker.io/library/debian:bookworm`) was pulled as the
    /// image `digest` (taking it from another image if need be).
    pub fn set_reference(&self, reference: &str, digest: &str) -> io::Result<()> {
        let target = Path::new("../images").join(digest);
        replace_atomically(&self.references().join(reference_file(reference)), |tmp| {
            std::os::unix::fs::symlink(&target, tmp)
        })
    }

    /// The stored image that `reference` (normalised) was last pulled as.
    pub fn find_reference(&self, reference: &str) -> Option<String> {
        let target = fs::read_link(self.references().join(reference_file(reference))).ok()?;
        let digest = target.file_name()?.to_str()?;
        self.record(digest).map(|_| digest.to_string())
    }

    /// The references the image `digest` was pulled as.
    pub fn references_of(&self, digest: &str) -> Vec<String> {
        let mut references: Vec<String> = links_to(&self.references(), digest)
            .into_iter()
            .map(|file| file.replace('+', "/"))
            .collect();
        references.sort();
        references
    }

    /// The names of the image `digest`.
    pub fn names_of(&self, digest: &str) -> Vec<String> {
        let mut names = links_to(&self.names(), digest);
        names.sort();
        names
    }

    /// Stored images, newest first.
    pub fn list(&self) -> Vec<ImageRecord> {
        let mut records: Vec<ImageRecord> = fs::read_dir(self.images())
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|d| self.record(&d))
            .collect();
        records.sort_by(|a, b| b.imported.cmp(&a.imported).then(a.digest.cmp(&b.digest)));
        records
    }

    /// The stored image that `reference` (a name, a digest or a unique digest prefix) means.
    pub fn find(&self, reference: &str) -> Result<Option<String>, String> {
        if is_valid_name(reference)
            && let Ok(target) = fs::read_link(self.names().join(reference))
            && let Some(digest) = target.file_name().and_then(|f| f.to_str())
            && self.record(digest).is_some()
        {
            return Ok(Some(digest.to_string()));
        }
        let prefix = reference.strip_prefix("sha256:").unwrap_or(reference);
        if prefix.len() < 4 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let prefix = prefix.to_ascii_lowercase();
        let matches: Vec<String> = self
            .list()
            .into_iter()
            .map(|r| r.digest)
            .filter(|d| d.starts_with(&prefix))
            .collect();
        match matches.len() {
            0 => Ok(None),
            1 => Ok(matches.into_iter().next()),
            n => Err(format!(
                "`{reference}` matches {n} stored images; give more of the digest"
            )),
        }
    }

    /// Marks the image `digest` as in use until the returned lock is dropped.
    pub fn mark_in_use(&self, digest: &str) -> io::Result<InUse> {
        let record = File::open(self.image_dir(digest).join(RECORD))?;
        Flock::lock(record, FlockArg::LockShared)
            .map(|record| InUse {
                _record: record,
                _upper: None,
            })
            .map_err(|(_, e)| e.into())
    }

    /// Holds the pulled image `digest`'s upper layer as a lower layer only (a named container's, whose
    /// writes go to a layer of its own), beside other such containers: false when a container writes
    /// it (`claim_upper`), whose changes would appear beneath this one's mount. Replaces this
    /// container's own claim to write it, if it had one.
    pub fn share_upper(&self, digest: &str, in_use: &mut InUse) -> io::Result<bool> {
        in_use._upper = None;
        let upper = File::open(self.image_dir(digest).join(UPPER))?;
        match Flock::lock(upper, FlockArg::LockSharedNonblock) {
            Ok(lock) => {
                in_use._upper = Some(lock);
                Ok(true)
            }
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(false),
            Err((_, e)) => Err(e.into()),
        }
    }

    /// Claims the pulled image `digest`'s upper layer for one container's writes: false when another
    /// container has it (two overlays must not share an upper layer).
    pub fn claim_upper(&self, digest: &str, in_use: &mut InUse) -> io::Result<bool> {
        let upper = File::open(self.image_dir(digest).join(UPPER))?;
        match Flock::lock(upper, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => {
                in_use._upper = Some(lock);
                Ok(true)
            }
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(false),
            Err((_, e)) => Err(e.into()),
        }
    }

    /// Records that the named container `name` is built on the image `digest` (`used_by`).
    pub fn mark_used(&self, digest: &str, name: &str) -> io::Result<()> {
        let dir = self.image_dir(digest).join(USED_BY);
        fs::create_dir_all(&dir)?;
        File::create(dir.join(name)).map(drop)
    }

    pub fn unmark_used(&self, digest: &str, name: &str) {
        let _ = fs::remove_file(self.image_dir(digest).join(USED_BY).join(name));
    }

    /// The named containers built on the image `digest` whose records are still there (a mark left
    /// by a container whose record is gone counts for nothing).
    pub fn used_by(&self, digest: &str) -> Vec<String> {
        let containers = crate::runner::dirs::containers_dir().ok();
        let exists = |name: &str| containers.as_ref().is_some_and(|d| d.join(name).is_dir());
        let mut names: Vec<String> = fs::read_dir(self.image_dir(digest).join(USED_BY))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| exists(name))
            .collect();
        names.sort();
        names
    }

    /// Whether a container runs in the image `digest` (someone holds its in-use lock).
    pub fn in_use(&self, digest: &str) -> bool {
        File::open(self.image_dir(digest).join(RECORD))
            .ok()
            .is_some_and(|f| Flock::lock(f, FlockArg::LockExclusiveNonblock).is_err())
    }

    /// Removes what refers to `digest` (names, remembered sources), then moves the image into tmp/
    /// for deletion, so that it is gone at once even if deleting its files takes long or fails.
    pub fn detach(&self, digest: &str) -> io::Result<TempDir> {
        for name in self.names_of(digest) {
            fs::remove_file(self.names().join(name))?;
        }
        for file in links_to(&self.references(), digest) {
            fs::remove_file(self.references().join(file))?;
        }
        for entry in fs::read_dir(self.sources())?.filter_map(Result::ok) {
            if fs::read_to_string(entry.path()).is_ok_and(|d| d.trim() == digest) {
                let _ = fs::remove_file(entry.path());
            }
        }
        let temp = self.temp_dir("remove", false)?;
        fs::rename(self.image_dir(digest), &temp.path)?;
        Ok(temp)
    }

    /// The lock between pulls, which hold it shared from finding a layer stored until their image's
    /// record lists it, and removals, which hold it exclusive while they remove unused layers.
    pub fn lock_layers(&self, exclusive: bool) -> io::Result<Flock<File>> {
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join("layers.lock"))?;
        let how = match exclusive {
            true => FlockArg::LockExclusive,
            false => FlockArg::LockShared,
        };
        Flock::lock(file, how).map_err(|(_, e)| e.into())
    }

    /// Moves the layers that no stored image lists into tmp/ for deletion (the caller holds
    /// `lock_layers(true)`).
    pub fn detach_unused_layers(&self) -> io::Result<Vec<TempDir>> {
        let used: std::collections::HashSet<String> =
            self.list().into_iter().flat_map(|r| r.layers).collect();
        let mut detached = Vec::new();
        for entry in fs::read_dir(self.layers())?.filter_map(Result::ok) {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if used.contains(&name) {
                continue;
            }
            let temp = self.temp_dir("remove-layer", false)?;
            fs::rename(entry.path(), &temp.path)?;
            detached.push(temp);
        }
        Ok(detached)
    }

    /// A new, locked directory in tmp/ (not created when `create` is false: a rename's target).
    pub fn temp_dir(&self, purpose: &str, create: bool) -> io::Result<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = self
            .tmp()
            .join(format!("{purpose}.{}.{nanos}", std::process::id()));
        let lock_file = File::create(lock_path(&path))?;
        let lock = Flock::lock(lock_file, FlockArg::LockExclusiveNonblock)
            .map_err(|(_, e)| io::Error::from(e))?;
        if create {
            fs::DirBuilder::new().mode(0o700).create(&path)?;
        }
        Ok(TempDir { path, _lock: lock })
    }

    /// Entries of tmp/ whose process is gone (their lock is free): what killed imports and removals
    /// left behind. Each is returned with its lock file, which the caller removes last.
    pub fn abandoned(&self) -> Vec<(PathBuf, PathBuf)> {
        let entries: Vec<PathBuf> = fs::read_dir(self.tmp())
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        let free = |lock: &Path| {
            File::open(lock)
                .ok()
                .map(|f| Flock::lock(f, FlockArg::LockExclusiveNonblock).is_ok())
        };
        let mut found = Vec::new();
        for path in entries {
            match path.to_str().and_then(|p| p.strip_suffix(".lock")) {
                // A lock file whose directory is already gone.
                Some(dir) => {
                    if !Path::new(dir).exists() && free(&path) == Some(true) {
                        let _ = fs::remove_file(&path);
                    }
                }
                None => {
                    let lock = lock_path(&path);
                    // No lock file at all: its lock was removed before the directory was.
                    if free(&lock) != Some(false) {
                        found.push((path, lock));
                    }
                }
            }
        }
        found
    }
}

/// The ids a map gives an image's files when it imports them.
pub fn layout_of(ids: &MapPlan) -> IdLayout {
    match ids.is_keep_id() {
        true => {
            let (uid, gid) = ids.caller_inside();
            IdLayout::KeepId { uid, gid }
        }
        false => IdLayout::Full,
    }
}

/// Removes a tree; one that is not there is removed already.
pub fn remove_path(path: &Path) -> std::io::Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The entries of `dir` that are symlinks to an image `digest`.
fn links_to(dir: &Path, digest: &str) -> Vec<String> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| {
            fs::read_link(e.path()).is_ok_and(|t| t.file_name().is_some_and(|f| f == digest))
        })
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}

/// The name of a layer's directory: its diff_id (hex), for the map its files were extracted with
/// (their owners differ between the full map and keep-id).
pub fn layer_key(diff_id: &str, layout: IdLayout) -> String {
    match layout {
        IdLayout::Full => diff_id.to_string(),
        IdLayout::KeepId { uid, gid } => format!("{diff_id}.keep-id-{uid}-{gid}"),
    }
}

/// A reference as a file name: `/` cannot be in one, and `+` is in no reference.
fn reference_file(reference: &str) -> String {
    reference.replace('/', "+")
}

/// The lock file of a directory in tmp/: its name with `.lock` added.
fn lock_path(dir: &Path) -> PathBuf {
    let mut name = dir.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

impl TempDir {
    /// Releases the lock and removes the lock file (the directory must be gone or moved).
    pub fn release(self) {
        let _ = fs::remove_file(lock_path(&self.path));
    }
}

/// Writes `path` by making it under a temporary name and renaming it over.
fn replace_atomically(path: &Path, make: impl FnOnce(&Path) -> io::Result<()>) -> io::Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("x"),
        std::process::id()
    ));
    let _ = fs::remove_file(&tmp);
    make(&tmp)?;
    fs::rename(&tmp, path)
}

/// Store names: what podman allows in a repository name's last part, without `/` or `:`.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 128
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A file's identity: the same file, unchanged, has the same key (device, inode, size, times).
pub fn source_key(meta: &fs::Metadata) -> String {
    format!(
        "{:x}-{:x}-{}-{}.{}-{}.{}",
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> Store {
        let dir = std::env::temp_dir().join(format!("urt-store-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        Store { root: dir }
    }

    fn record(digest: &str, imported: u64) -> ImageRecord {
        ImageRecord {
            digest: digest.into(),
            source: "/x.tar".into(),
            kind: "tarball".into(),
            size: 1,
            imported,
            config: ImageConfig::default(),
            ids: IdLayout::Full,
            layers: Vec::new(),
            manifest: None,
            platform: None,
        }
    }

    fn store_image(store: &Store, digest: &str, imported: u64) {
        store_layered(store, digest, imported, &[]);
    }

    fn store_layered(store: &Store, digest: &str, imported: u64, layers: &[&str]) {
        let dir = store.image_dir(digest);
        fs::create_dir_all(dir.join(ROOTFS)).unwrap();
        let mut record = record(digest, imported);
        record.layers = layers.iter().map(|l| l.to_string()).collect();
        Store::write_record(&dir, &record).unwrap();
    }

    #[test]
    fn references_find_pulled_images_and_go_with_them() {
        let store = scratch("references");
        store.create().unwrap();
        store_image(&store, "eeee5555", 1);
        store_image(&store, "ffff6666", 2);
        let debian = "docker.io/library/debian:bookworm";
        store.set_reference(debian, "eeee5555").unwrap();
        store
            .set_reference("127.0.0.1:5000/a/b:1", "eeee5555")
            .unwrap();
        assert_eq!(store.find_reference(debian).as_deref(), Some("eeee5555"));
        assert_eq!(
            store.references_of("eeee5555"),
            ["127.0.0.1:5000/a/b:1", debian]
        );
        // A tag pulled again as other content moves to it.
        store.set_reference(debian, "ffff6666").unwrap();
        assert_eq!(store.find_reference(debian).as_deref(), Some("ffff6666"));
        assert_eq!(store.references_of("eeee5555"), ["127.0.0.1:5000/a/b:1"]);
        store.detach("eeee5555").unwrap();
        assert_eq!(store.find_reference("127.0.0.1:5000/a/b:1"), None);
        assert!(fs::read_dir(store.references()).unwrap().count() == 1);
        fs::remove_dir_all(&store.root).unwrap();
    }

    #[test]
    fn only_layers_that_no_image_lists_are_removed() {
        let store = scratch("layers");
        store.create().unwrap();
        for layer in ["base", "mine", "theirs", "orphan"] {
            fs::create_dir_all(store.layer_dir(layer).join("etc")).unwrap();
        }
        store_layered(&store, "aaaa0001", 1, &["base", "mine"]);
        store_layered(&store, "aaaa0002", 2, &["base", "theirs"]);
        let _lock = store.lock_layers(true).unwrap();
        let removed = store.detach_unused_layers().unwrap();
        assert_eq!(removed.len(), 1);
        assert!(
            removed[0].path.join("etc").is_dir(),
            "moved whole into tmp/"
        );
        assert!(!store.layer_dir("orphan").exists());
        store.detach("aaaa0002").unwrap();
        let removed = store.detach_unused_layers().unwrap();
        assert_eq!(removed.len(), 1);
        assert!(!store.layer_dir("theirs").exists());
        assert!(
            store.layer_dir("base").is_dir(),
            "still used by the other image"
        );
        fs::remove_dir_all(&store.root).unwrap();
    }

    #[test]
    fn names_and_digest_prefixes_find_images() {
        let store = scratch("find");
        store.create().unwrap();
        store_image(&store, "aaaa1111", 1);
        store_image(&store, "aaaa2222", 2);
        store.set_name("debian", "aaaa1111").unwrap();
        assert_eq!(store.find("debian"), Ok(Some("aaaa1111".into())));
        assert_eq!(store.find("aaaa2"), Ok(Some("aaaa2222".into())));
        assert_eq!(store.find("sha256:aaaa22"), Ok(Some("aaaa2222".into())));
        assert!(store.find("aaaa").is_err(), "ambiguous prefix");
        assert_eq!(store.find("bbbb"), Ok(None));
        assert_eq!(store.names_of("aaaa1111"), ["debian"]);
        // A name moves to the image it is given to last.
        store.set_name("debian", "aaaa2222").unwrap();
        assert_eq!(store.find("debian"), Ok(Some("aaaa2222".into())));
        assert_eq!(
            store
                .list()
                .iter()
                .map(|r| r.digest.as_str())
                .collect::<Vec<_>>(),
            ["aaaa2222", "aaaa1111"]
        );
        fs::remove_dir_all(&store.root).unwrap();
    }

    #[test]
    fn an_unfinished_image_is_not_found() {
        let store = scratch("unfinished");
        store.create().unwrap();
        fs::create_dir_all(store.image_dir("cccc3333").join(ROOTFS)).unwrap();
        store.remember_source("k", "cccc3333").unwrap();
        assert_eq!(store.source("k"), None);
        assert_eq!(store.find("cccc3333"), Ok(None));
        fs::remove_dir_all(&store.root).unwrap();
    }

    #[test]
    fn only_unlocked_temporary_directories_are_abandoned() {
        let store = scratch("abandoned");
        store.create().unwrap();
        let live = store.temp_dir("import", true).unwrap();
        let dead = store.temp_dir("import", true).unwrap();
        let dead_path = dead.path.clone();
        drop(dead._lock);
        let abandoned: Vec<PathBuf> = store.abandoned().into_iter().map(|(p, _)| p).collect();
        assert_eq!(abandoned, [dead_path]);
        drop(live);
        fs::remove_dir_all(&store.root).unwrap();
    }

    #[test]
    fn names_are_single_path_components() {
        for good in ["debian", "bookworm-2024.1", "a_b"] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in ["", "-x", ".x", "a/b", "../x", "a:b", &"x".repeat(129)] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn detaching_removes_names_sources_and_the_image_at_once() {
        let store = scratch("detach");
        store.create().unwrap();
        store_image(&store, "dddd4444", 1);
        store.set_name("x", "dddd4444").unwrap();
        store.remember_source("key", "dddd4444").unwrap();
        let temp = store.detach("dddd4444").unwrap();
        assert!(temp.path.join(ROOTFS).is_dir());
        assert_eq!(store.find("x"), Ok(None));
        assert_eq!(store.source("key"), None);
        assert!(store.list().is_empty());
        fs::remove_dir_all(&store.root).unwrap();
    }
}
