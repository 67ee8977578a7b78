//! Root filesystem images: `--rootfs` given a tarball, an OCI or Docker image archive, an OCI layout
//! directory or the name of a stored image. A file is imported once into the caller's store (see
//! `store`), by a process in the mapped user namespace so that every owner survives; later runs find
//! it by the file's identity without reading it again.
//!
//! `format` tells what a file is, `stream` reads it on a second thread, `extract` writes it safely,
//! `oci` reads image layouts, `progress` draws the bar, `commands` is `unshare-run images`,
//! `registry` pulls from registries, `login` is `unshare-run login` and `logout`.

pub mod commands;
mod extract;
mod format;
pub mod login;
mod oci;
mod progress;
pub mod pull;
mod registry;
pub mod store;
mod stream;

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::error::RunError;
use super::mapping::MapPlan;
use super::userns;
use format::Compression;
pub use store::ImageConfig;
use store::{IdLayout, ImageRecord, Store, layout_of, now, remove_path};

/// A pulled image's root filesystem: its read-only layers under the image's own upper layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Layered {
    /// The layers' directories, the top one first.
    pub layers: Vec<PathBuf>,
    /// The image's writes (kept for its next run) and overlayfs's work directory.
    pub upper: PathBuf,
    pub work: PathBuf,
}

impl Layered {
    /// The directories that show the root filesystem's files, the top one first.
    pub fn view(&self) -> Vec<PathBuf> {
        std::iter::once(self.upper.clone())
            .chain(self.layers.iter().cloned())
            .collect()
    }
}

/// The root filesystem to run in.
#[derive(Debug)]
pub struct Resolved {
    pub rootfs: PathBuf,
    pub config: ImageConfig,
    /// A stored image is in use while this shared lock is held (`images rm` refuses it meanwhile).
    pub in_use: Option<store::InUse>,
    /// A pulled image's layers (`rootfs` is then the mount point of their overlay).
    pub layered: Option<Layered>,
    /// Another container writes the pulled image's upper layer: this one's writes cannot go there.
    pub upper_taken: bool,
    /// The stored image's digest (None for a directory used in place).
    pub digest: Option<String>,
}

impl Resolved {
    /// For a container whose writes go to a layer of its own (a named one's): the stored image's files
    /// are only its lower layers. A pulled image's upper layer is then held shared with other such
    /// containers, and never while a container writes it.
    pub fn read_only_below(&mut self, name: &str) -> Result<(), RunError> {
        let (Some(digest), Some(_), Some(in_use)) = (&self.digest, &self.layered, &mut self.in_use)
        else {
            return Ok(());
        };
        let shared = open_store()?
            .share_upper(digest, in_use)
            .map_err(|e| RunError::sys(format!("cannot lock the stored image {digest}"), e))?;
        if !shared {
            return Err(RunError::new(
                "a run without --name writes this image's layer, which would change beneath the container",
            )
            .with_hint(format!("start {name} once that run has ended")));
        }
        self.upper_taken = false;
        Ok(())
    }
}

/// What the source of a root filesystem may be, said when it cannot be used: for --rootfs, and for
/// `unshare-run images import`.
pub(crate) const ROOTFS_HINT: &str = "--rootfs takes a directory, an image file (.tar, .tar.gz, .tar.xz, .tar.zst, an OCI or \
     Docker archive), an OCI layout directory, or a stored image's name (see `unshare-run images`)";
pub(crate) const IMPORT_HINT: &str = "images import takes an image file (.tar, .tar.gz, .tar.xz, .tar.zst, an OCI or \
     Docker archive) or an OCI layout directory";

/// What `--rootfs ARG` names, importing it first if it is an image file not yet stored (in a user
/// namespace mapped as `ids` says), or pulling it if it is a registry's image (when `pulling` says
/// how). `name` (`--name`) names the stored image; `hint` (ROOTFS_HINT or IMPORT_HINT) goes with the
/// errors of a source that cannot be used.
pub fn resolve(
    arg: &Path,
    name: Option<&str>,
    ids: &MapPlan,
    hint: &'static str,
    pulling: Option<&pull::Pulling>,
) -> Result<Resolved, RunError> {
    if let Some(name) = name {
        check_name(name)?;
    }
    // docker:// always means a registry, whatever the directory has.
    let explicit = arg.to_str().is_some_and(|a| a.starts_with("docker://"));
    let meta = match fs::metadata(arg) {
        _ if explicit => return stored_by_reference(arg, name, ids, hint, pulling),
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return stored_by_reference(arg, name, ids, hint, pulling);
        }
        Err(e) => {
            return Err(
                RunError::sys(format!("root filesystem {}", arg.display()), e).with_hint(hint),
            );
        }
    };
    let canonical = arg
        .canonicalize()
        .map_err(|e| RunError::sys(format!("root filesystem {}", arg.display()), e))?;
    if meta.is_dir() {
        let index = canonical.join("index.json");
        if !(canonical.join("oci-layout").is_file() && index.is_file()) {
            return plain_directory(canonical, name);
        }
        let store = open_store()?;
        let key = format!(
            "layout-{}",
            store::source_key(&fs::metadata(&index).map_err(|e| RunError::sys("index.json", e))?)
        );
        if let Some(digest) = store.source(&key) {
            return stored(&store, &digest, name, ids);
        }
        let files = oci::DirectoryFiles(&canonical);
        let image =
            oci::read_image(&files, oci::Layout::Oci).map_err(|e| not_importable(arg, e, hint))?;
        let source = ImportSource::Image {
            image,
            kind: "OCI layout",
            archive: None,
        };
        return import(&store, &canonical, &source, &key, name, ids);
    }
    let file = File::open(&canonical)
        .map_err(|e| RunError::sys(format!("cannot open {}", arg.display()), e))?;
    let mut head = [0u8; format::SNIFF_LEN];
    let n = file
        .read_at(&mut head, 0)
        .map_err(|e| RunError::sys(format!("cannot read {}", arg.display()), e))?;
    let compression = format::sniff(&head[..n]).map_err(|why| not_importable(arg, why, hint))?;
    let store = open_store()?;
    let key = store::source_key(&meta);
    if let Some(digest) = store.source(&key) {
        return stored(&store, &digest, name, ids);
    }
    let files = if compression == Compression::None {
        oci::ArchiveFiles::index(&file, &canonical.to_string_lossy())
            .map_err(|e| not_importable(arg, format!("the tar archive is damaged: {e}"), hint))?
    } else {
        None
    };
    let source = match files.as_ref().and_then(|f| Some((f, oci::detect(f)?))) {
        Some((files, layout)) => ImportSource::Image {
            image: oci::read_image(files, layout).map_err(|e| not_importable(arg, e, hint))?,
            kind: layout.name(),
            archive: Some(&file),
        },
        None => ImportSource::Tarball {
            file: &file,
            compression,
            len: meta.len(),
        },
    };
    import(&store, &canonical, &source, &key, name, ids)
}

/// `--name NAME` for a stored image: a single path component, as podman's names' last part.
pub(crate) fn check_name(name: &str) -> Result<(), RunError> {
    match store::is_valid_name(name) {
        true => Ok(()),
        false => Err(RunError::new(format!("invalid image name `{name}`")).with_hint(
            "a name starts with a letter or digit and holds letters, digits, `.`, `_` and `-` (at most 128)",
        )),
    }
}

/// The caller's image store (not created yet).
fn open_store() -> Result<Store, RunError> {
    Store::for_caller().map_err(|e| RunError::new(format!("cannot find the image store: {e}")))
}

fn not_importable(arg: &Path, why: impl std::fmt::Display, hint: &'static str) -> RunError {
    RunError::new(format!(
        "cannot use {} as a root filesystem: {why}",
        arg.display()
    ))
    .with_hint(hint)
}

fn plain_directory(canonical: PathBuf, name: Option<&str>) -> Result<Resolved, RunError> {
    if canonical == Path::new("/") {
        return Err(
            RunError::new("--rootfs / would pivot onto the host's own root")
                .with_hint("leave out --rootfs to run on the host's filesystem (host mode)"),
        );
    }
    if name.is_some() {
        return Err(RunError::new(format!(
            "--name names an imported image, and {} is a directory that is used in place",
            canonical.display()
        )));
    }
    Ok(Resolved {
        rootfs: canonical,
        config: ImageConfig::default(),
        in_use: None,
        layered: None,
        upper_taken: false,
        digest: None,
    })
}

/// `--rootfs NAME` for something that is not a path: a stored image's name or digest, else an image
/// of a registry.
fn stored_by_reference(
    arg: &Path,
    name: Option<&str>,
    ids: &MapPlan,
    hint: &'static str,
    pulling: Option<&pull::Pulling>,
) -> Result<Resolved, RunError> {
    let missing = || {
        RunError::new(format!(
            "root filesystem {}: no such file, directory or stored image",
            arg.display()
        ))
        .with_hint(hint)
    };
    let Some(text) = arg.to_str() else {
        return Err(missing());
    };
    let store = open_store()?;
    if !text.contains('/') && !text.starts_with("docker://") {
        match store.find(text) {
            Ok(Some(digest)) => return stored(&store, &digest, name, ids),
            Ok(None) => {}
            Err(ambiguous) => return Err(RunError::new(ambiguous)),
        }
    }
    match pulling {
        Some(pulling) if pull::is_reference(text) => {
            let digest = pull::pull(&store, text, pulling, ids).map_err(|e| {
                match text.starts_with("docker://") || registry::Reference::is_fully_qualified(text)
                {
                    true => e,
                    // A short name may as well have been a mistyped path or image name.
                    false => {
                        let hint = e.hint.clone().unwrap_or_else(|| hint.to_string());
                        RunError::new(format!(
                            "{}, and as an image of a registry: {}",
                            missing().message,
                            e.message
                        ))
                        .with_hint(hint)
                    }
                }
            })?;
            stored(&store, &digest, name, ids)
        }
        _ => Err(missing()),
    }
}

/// What a layout makes of the caller inside, for messages.
fn described(layout: IdLayout) -> String {
    match layout {
        IdLayout::Full => "with you as uid 0 inside (the full map)".into(),
        IdLayout::KeepId { uid, gid } => {
            format!("under --map keep-id, with you as {uid}:{gid} inside")
        }
    }
}

/// A stored image is run only with the map it was imported for: under another, its owners would be
/// other ids (the full map's root files would be the caller's under keep-id).
fn check_layout(store: &Store, record: &ImageRecord, ids: &MapPlan) -> Result<(), RunError> {
    let wanted = layout_of(ids);
    if record.ids == wanted {
        return Ok(());
    }
    let names = store.names_of(&record.digest);
    let image = names
        .first()
        .cloned()
        .unwrap_or_else(|| record.digest.chars().take(12).collect());
    // A named file's image is imported again under its name; anything else by a run.
    let again = match names.first() {
        Some(name) if record.source.starts_with('/') => format!(
            "unshare-run images import --map {} {} --name {name}",
            ids_option(wanted),
            record.source
        ),
        _ => format!(
            "unshare-run --map {} --rootfs {} -- true",
            ids_option(wanted),
            record.source
        ),
    };
    let run = match ids {
        MapPlan::Single { inside_uid, .. } => {
            format!("with a single-id map (you as uid {inside_uid} inside)")
        }
        MapPlan::Full { .. } => described(wanted),
    };
    // A single-id map keeps no owner but the caller's: the image is imported again with the full map.
    Err(RunError::new(format!(
        "image {image} was imported {}, and this run is {run}: its files would show with other owners",
        described(record.ids),
    ))
    .with_hint(format!(
        "run it with the map it was imported for, or import it again for this one: unshare-run \
         images rm {image}, then {again}"
    )))
}

/// The --map value that gives `layout` (keep-id with both ids named: a layout knows the numbers,
/// not whether they are the caller's own).
fn ids_option(layout: IdLayout) -> String {
    match layout {
        IdLayout::Full => "full".into(),
        IdLayout::KeepId { uid, gid } => format!("keep-id:uid={uid},gid={gid}"),
    }
}

fn stored(
    store: &Store,
    digest: &str,
    name: Option<&str>,
    ids: &MapPlan,
) -> Result<Resolved, RunError> {
    let record = store
        .record(digest)
        .ok_or_else(|| RunError::new(format!("stored image {digest} is incomplete")))?;
    check_layout(store, &record, ids)?;
    if let Some(name) = name {
        store
            .set_name(name, digest)
            .map_err(|e| RunError::sys(format!("cannot name the image {name}"), e))?;
    }
    let mut in_use = store
        .mark_in_use(digest)
        .map_err(|e| RunError::sys(format!("cannot lock the stored image {digest}"), e))?;
    let dir = store.image_dir(digest);
    let layered = (!record.layers.is_empty()).then(|| Layered {
        layers: record
            .layers
            .iter()
            .rev()
            .map(|key| store.layer_dir(key))
            .collect(),
        upper: dir.join(store::UPPER),
        work: dir.join(store::WORK),
    });
    if let Some(missing) = layered
        .iter()
        .flat_map(|l| &l.layers)
        .find(|layer| !layer.is_dir())
    {
        return Err(RunError::new(format!(
            "stored image {} lacks its layer {}",
            short_digest(digest),
            missing.display()
        ))
        .with_hint("remove the image (unshare-run images rm) and pull it again"));
    }
    let upper_taken = match &layered {
        Some(_) => !store
            .claim_upper(digest, &mut in_use)
            .map_err(|e| RunError::sys(format!("cannot lock the stored image {digest}"), e))?,
        None => false,
    };
    Ok(Resolved {
        rootfs: dir.join(store::ROOTFS),
        config: record.config,
        in_use: Some(in_use),
        layered,
        upper_taken,
        digest: Some(digest.to_string()),
    })
}

enum ImportSource<'a> {
    Tarball {
        file: &'a File,
        compression: Compression,
        len: u64,
    },
    Image {
        image: oci::Image,
        kind: &'static str,
        /// The archive holding the layers; None for a layout directory (a file per layer).
        archive: Option<&'a File>,
    },
}

/// Imports `source` into the store, in a process in the mapped user namespace; returns the image.
fn import(
    store: &Store,
    path: &Path,
    source: &ImportSource<'_>,
    key: &str,
    name: Option<&str>,
    ids: &MapPlan,
) -> Result<Resolved, RunError> {
    store.create().map_err(|e| {
        RunError::sys(
            format!("cannot create the image store {}", store.root.display()),
            e,
        )
    })?;
    let temp = store.temp_dir("import", true).map_err(|e| {
        RunError::sys(
            format!("cannot create a directory in {}", store.tmp().display()),
            e,
        )
    })?;
    let layout = layout_of(ids);
    let imported = userns::run_job(ids, || {
        import_in_namespace(store, &temp.path, path, source, key, name, layout)
    });
    temp.release();
    imported?;
    let digest = store
        .source(key)
        .ok_or_else(|| RunError::new("the import finished, but its image is not in the store"))?;
    stored(store, &digest, None, ids)
}

/// The importing process (uid 0 in the mapped user namespace), which gives the files `layout`'s ids.
fn import_in_namespace(
    store: &Store,
    temp: &Path,
    path: &Path,
    source: &ImportSource<'_>,
    key: &str,
    name: Option<&str>,
    layout: IdLayout,
) -> Result<(), RunError> {
    for (abandoned, lock) in store.abandoned() {
        match remove_path(&abandoned) {
            Ok(()) => {
                let _ = fs::remove_file(lock);
            }
            Err(e) => eprintln!(
                "unshare-run: warning: cannot remove {} (left by an interrupted import): {e}",
                abandoned.display()
            ),
        }
    }
    let result = extract_source(temp, path, source, layout).and_then(|record| {
        Store::write_record(temp, &record)
            .map_err(|e| RunError::sys(format!("cannot write {}", store::RECORD), e))?;
        let target = store.image_dir(&record.digest);
        if let Err(e) = fs::rename(temp, &target) {
            // The same content was stored meanwhile (or before, from another file): keep that one.
            if store.record(&record.digest).is_none() {
                return Err(RunError::sys(
                    format!("cannot store the image in {}", target.display()),
                    e,
                ));
            }
            let _ = remove_path(temp);
        }
        store
            .remember_source(key, &record.digest)
            .map_err(|e| RunError::sys("cannot record the import", e))?;
        if let Some(name) = name {
            store
                .set_name(name, &record.digest)
                .map_err(|e| RunError::sys(format!("cannot name the image {name}"), e))?;
        }
        Ok(())
    });
    result.map_err(|error| {
        let _ = remove_path(temp);
        error.context(format!("cannot import {}", path.display()))
    })
}

fn short_digest(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}

/// Extracts `source` into `temp`/rootfs; returns the record for the store.
fn extract_source(
    temp: &Path,
    path: &Path,
    source: &ImportSource<'_>,
    layout: IdLayout,
) -> Result<ImageRecord, RunError> {
    let rootfs = temp.join(store::ROOTFS);
    std::os::unix::fs::DirBuilderExt::mode(&mut fs::DirBuilder::new(), 0o755)
        .create(&rootfs)
        .map_err(|e| RunError::sys(format!("cannot create {}", rootfs.display()), e))?;
    // The image's modes come from the archive, not from the caller's umask.
    let umask = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let extracted = extract_into(&rootfs, path, source);
    nix::sys::stat::umask(umask);
    let (digest, kind, config, summary) = extracted?;
    report(&summary);
    Ok(ImageRecord {
        digest,
        source: path.to_string_lossy().into_owned(),
        kind,
        size: summary.bytes,
        imported: now(),
        config,
        ids: layout,
        layers: Vec::new(),
        manifest: None,
        platform: None,
    })
}

/// What `extract_into` found out: digest, kind, runtime defaults, and what was extracted.
type Extracted = (String, String, ImageConfig, extract::Summary);

fn extract_into(
    rootfs: &Path,
    path: &Path,
    source: &ImportSource<'_>,
) -> Result<Extracted, RunError> {
    let label = format!(
        "importing {}",
        path.file_name()
            .map_or_else(|| path.to_string_lossy(), |n| n.to_string_lossy())
    );
    Ok(match source {
        ImportSource::Tarball {
            file,
            compression,
            len,
        } => {
            let mut extractor =
                extract::Extractor::new(rootfs, extract::Whiteouts::Plain).map_err(RunError::of)?;
            let progress = progress::Progress::on_terminal(label, *len);
            let region = stream::Region {
                file,
                offset: 0,
                len: *len,
            };
            let (result, digest) =
                stream::pipelined(region, *compression, &progress, |r| extractor.apply(r))
                    .map_err(RunError::of)?;
            progress.finish();
            result.map_err(RunError::of)?;
            let digest = stream::hex(
                &digest.ok_or_else(|| RunError::new("the archive could not be read to its end"))?,
            );
            let kind = match compression {
                Compression::None => "tarball".to_string(),
                other => format!("tarball ({})", other.name()),
            };
            (digest, kind, ImageConfig::default(), extractor.summary)
        }
        ImportSource::Image {
            image,
            kind,
            archive,
        } => {
            let mut extractor = extract::Extractor::new(rootfs, extract::Whiteouts::Applied)
                .map_err(RunError::of)?;
            let total = image.layers.iter().map(|l| l.location.len).sum();
            let progress = progress::Progress::on_terminal(label, total);
            for (number, layer) in image.layers.iter().enumerate() {
                let opened;
                let file = match archive {
                    Some(file) => *file,
                    None => {
                        opened = File::open(&layer.location.path)
                            .map_err(|e| RunError::sys(&layer.location.path, e))?;
                        &opened
                    }
                };
                let mut head = [0u8; format::SNIFF_LEN];
                let n = file
                    .read_at(
                        &mut head[..format::SNIFF_LEN.min(layer.location.len as usize)],
                        layer.location.offset,
                    )
                    .map_err(RunError::of)?;
                let compression = format::sniff(&head[..n])
                    .map_err(|why| RunError::new(format!("layer {}: {why}", number + 1)))?;
                let region = stream::Region {
                    file,
                    offset: layer.location.offset,
                    len: layer.location.len,
                };
                let (result, digest) =
                    stream::pipelined(region, compression, &progress, |r| extractor.apply(r))
                        .map_err(RunError::of)?;
                result.map_err(|e| RunError::of(e).context(format!("layer {}", number + 1)))?;
                let digest = stream::hex(
                    &digest.ok_or_else(|| RunError::new("a layer could not be read to its end"))?,
                );
                if layer.digest.as_ref().is_some_and(|want| *want != digest) {
                    return Err(RunError::new(format!(
                        "layer {} does not match its digest: the archive is damaged",
                        number + 1
                    )));
                }
            }
            progress.finish();
            (
                image.id.clone(),
                kind.to_string(),
                image.config.clone(),
                extractor.summary,
            )
        }
    })
}

/// One line for each kind of thing the import could not keep.
fn report(summary: &extract::Summary) {
    if summary.devices_skipped > 0 {
        eprintln!(
            "unshare-run: skipped {} device node(s): containers get their own /dev",
            summary.devices_skipped
        );
    }
    if summary.unmapped_owners > 0 {
        eprintln!(
            "unshare-run: warning: entries owned by ids outside your id map were given to root inside: {}; \
             set up subordinate ids (see `unshare-run doctor`), remove the image and import it again",
            summary.unmapped_owners
        );
    }
    if summary.xattrs_skipped > 0 {
        eprintln!(
            "unshare-run: {} extended attribute(s) could not be kept (not allowed in a user namespace)",
            summary.xattrs_skipped
        );
    }
    if summary.others_skipped > 0 {
        eprintln!(
            "unshare-run: skipped {} socket(s) or entries of unknown type",
            summary.others_skipped
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::mapping::Helpers;

    fn full_plan(caller_inside: (u32, u32)) -> MapPlan {
        MapPlan::Full {
            uid: Vec::new(),
            gid: Vec::new(),
            caller_inside,
            helpers: Helpers {
                newuidmap: "/x/newuidmap".into(),
                newgidmap: "/x/newgidmap".into(),
            },
        }
    }

    fn record(ids: IdLayout) -> ImageRecord {
        ImageRecord {
            digest: "0123456789abcdef".into(),
            source: "/srv/bookworm.tar".into(),
            kind: "tarball".into(),
            size: 1,
            imported: 0,
            config: ImageConfig::default(),
            ids,
            layers: Vec::new(),
            manifest: None,
            platform: None,
        }
    }

    #[test]
    fn a_stored_image_runs_only_with_the_map_it_was_imported_for() {
        let store = Store {
            root: "/nonexistent/store".into(),
        };
        let full = full_plan((0, 0));
        let keep_id = full_plan((1000, 1001));
        let single = MapPlan::Single {
            inside_uid: 1000,
            inside_gid: 1000,
        };
        assert_eq!(layout_of(&full), IdLayout::Full);
        assert_eq!(layout_of(&single), IdLayout::Full);
        let kept = IdLayout::KeepId {
            uid: 1000,
            gid: 1001,
        };
        assert_eq!(layout_of(&keep_id), kept);
        assert!(check_layout(&store, &record(IdLayout::Full), &full).is_ok());
        assert!(check_layout(&store, &record(IdLayout::Full), &single).is_ok());
        assert!(check_layout(&store, &record(kept), &keep_id).is_ok());
        let err = check_layout(&store, &record(IdLayout::Full), &keep_id).unwrap_err();
        assert_eq!(
            err.message,
            "image 0123456789ab was imported with you as uid 0 inside (the full map), and this run \
             is under --map keep-id, with you as 1000:1001 inside: its files would show with other \
             owners"
        );
        assert_eq!(
            err.hint.as_deref(),
            Some(
                "run it with the map it was imported for, or import it again for this one: \
                 unshare-run images rm 0123456789ab, then unshare-run --map \
                 keep-id:uid=1000,gid=1001 --rootfs /srv/bookworm.tar -- true"
            )
        );
        let err = check_layout(&store, &record(kept), &full).unwrap_err();
        assert!(
            err.message.contains("was imported under --map keep-id"),
            "{}",
            err.message
        );
        assert!(
            err.hint
                .unwrap()
                .contains("unshare-run --map full --rootfs")
        );
        // keep-id with other numbers is another layout too.
        assert!(check_layout(&store, &record(kept), &full_plan((5, 5))).is_err());
        let err = check_layout(&store, &record(kept), &single).unwrap_err();
        assert!(
            err.message
                .contains("this run is with a single-id map (you as uid 1000 inside)"),
            "{}",
            err.message
        );
    }
}
