//! An image from a registry into the store: `--rootfs REF` and `unshare-run images pull REF`.
//!
//! The manifest and the configuration are read first (small, verified). Each layer the store lacks
//! (by its diff_id, so that images on one base share it) is then downloaded into partial/ and
//! extracted into a layer directory of its own, several at once, in one process in the mapped user
//! namespace. A blob's download is locked by its puller: a concurrent pull of the same blob waits and
//! then finds the layer stored; a killed pull leaves the partial file, which the next pull continues
//! with a Range request. A layer and the image each appear by one rename, complete.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::sync::{Condvar, Mutex};

use nix::fcntl::{Flock, FlockArg};

use super::progress::{Progress, human_size};
use super::registry::{
    Client, Descriptor, Platform, PullOptions, Reference, RegistriesConf, RemoteImage,
};
use super::store::{self, ImageRecord, Store, layout_of, now, remove_path};
use super::{extract, format, oci, stream};
use crate::runner::cli::PullArgs;
pub use crate::runner::cli::PullPolicy;
use crate::runner::error::RunError;
use crate::runner::mapping::MapPlan;
use crate::runner::userns;

/// Layers downloaded and extracted at the same time.
const PARALLEL_LAYERS: usize = 3;

/// How images are pulled: the registry options, the policy, and whether progress is shown.
pub struct Pulling {
    pub options: PullOptions,
    pub policy: PullPolicy,
    pub quiet: bool,
}

impl Pulling {
    /// The options as given on the command line.
    pub fn from_args(args: &PullArgs) -> Result<Pulling, RunError> {
        let platform = match &args.platform {
            None => Platform::host(),
            Some(text) => Platform::parse(text).map_err(|e| {
                RunError::new(format!("--platform {text}: {e}"))
                    .with_hint("give it as OS/ARCH[/VARIANT], e.g. linux/arm64 or linux/arm/v7")
            })?,
        };
        Ok(Pulling {
            options: PullOptions {
                authfile: args.authfile.clone(),
                tls_verify: args.tls_verify,
                platform,
            },
            policy: args.pull,
            quiet: args.quiet,
        })
    }
}

/// The stored image that the reference `text` was pulled as (short names as registries.conf
/// resolves them), without asking any registry.
pub fn stored_reference(store: &Store, text: &str) -> Option<String> {
    candidates(text, &mut None)
        .ok()?
        .iter()
        .find_map(|r| store.find_reference(&r.to_string()))
}

/// The references `given` may mean, in the order to try them. registries.conf is read into `conf`
/// only for a short name: a stored image of a fully qualified reference starts without it (its
/// files and drop-ins cost a start ~0.15 ms).
fn candidates(given: &str, conf: &mut Option<RegistriesConf>) -> Result<Vec<Reference>, RunError> {
    let text = given.strip_prefix("docker://").unwrap_or(given);
    match Reference::is_fully_qualified(given) {
        true => Ok(vec![
            Reference::parse(text).map_err(|e| bad_reference(given, e))?,
        ]),
        false => conf
            .insert(RegistriesConf::load()?)
            .resolve(text)
            .map_err(|e| bad_reference(given, e)),
    }
}

/// Whether `text` should be tried as a registry reference (`docker://`, or a name that parses as
/// one): what --rootfs falls back to when no file, directory or stored image has that name.
pub fn is_reference(text: &str) -> bool {
    text.starts_with("docker://") || Reference::parse(text).is_ok()
}

/// The stored image (its digest) for the reference `given`, pulled if `request`'s policy says so.
pub fn pull(
    store: &Store,
    given: &str,
    request: &Pulling,
    ids: &MapPlan,
) -> Result<String, RunError> {
    let mut conf = None;
    let candidates = candidates(given, &mut conf)?;
    let layout = layout_of(ids);
    // A stored copy counts for this pull if it is of the platform asked for.
    let stored = candidates.iter().find_map(|reference| {
        let digest = store.find_reference(&reference.to_string())?;
        let record = store.record(&digest)?;
        Some((reference, digest, record))
    });
    let fits = |record: &ImageRecord| {
        record.platform.as_deref().is_none_or(|p| {
            Platform::parse(p).is_ok_and(|p| request.options.platform.rank(&p).is_some())
        })
    };
    match (request.policy, &stored) {
        (PullPolicy::Missing, Some((_, digest, record)))
            if record.ids == layout && fits(record) =>
        {
            return Ok(digest.clone());
        }
        (PullPolicy::Never, Some((_, digest, _))) => return Ok(digest.clone()),
        (PullPolicy::Never, None) => {
            return Err(RunError::new(format!(
                "image {} is not stored, and --pull never does not pull it",
                given
            ))
            .with_hint("pull it first (unshare-run images pull REF), or leave out --pull never"));
        }
        _ => {}
    }
    let conf = match conf {
        Some(conf) => conf,
        None => RegistriesConf::load()?,
    };
    let mut failures = Vec::new();
    for reference in &candidates {
        let client = match Client::new(reference, &conf, &request.options) {
            Ok(client) => client,
            Err(e) => {
                failures.push((reference, e));
                continue;
            }
        };
        if let (PullPolicy::Newer, Some((known, digest, record))) = (request.policy, &stored)
            && known.to_string() == reference.to_string()
            && record.ids == layout
            && fits(record)
            && record.manifest.is_some()
            && client.manifest_digest()? == record.manifest
        {
            return Ok(digest.clone());
        }
        let image = match client.image() {
            Ok(image) => image,
            Err(e) => {
                failures.push((reference, e));
                continue;
            }
        };
        return store_image(store, &client, reference, &image, ids, request.quiet);
    }
    Err(combined(given, failures))
}

fn bad_reference(text: &str, why: String) -> RunError {
    RunError::new(format!("`{text}` is not an image reference: {why}")).with_hint(
        "a reference is [docker://]HOST[:PORT]/NAME[:TAG][@sha256:DIGEST], or a short name such as \
         debian:bookworm",
    )
}

/// One candidate's error as it is; several short-name candidates' errors together.
fn combined(text: &str, mut failures: Vec<(&Reference, RunError)>) -> RunError {
    if failures.len() == 1 {
        return failures.remove(0).1;
    }
    let tried: Vec<String> = failures
        .iter()
        .map(|(reference, e)| format!("{reference}: {}", e.message))
        .collect();
    let hint = failures.into_iter().find_map(|(_, e)| e.hint);
    let error = RunError::new(format!(
        "cannot pull {text} from any registry its short name resolves to: {}",
        tried.join("; ")
    ));
    match hint {
        Some(hint) => error.with_hint(hint),
        None => error,
    }
}

/// The hex of a `sha256:` digest (the client has checked the form).
fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// Stores the image the registry described: its missing layers, then its record and reference.
fn store_image(
    store: &Store,
    client: &Client,
    reference: &Reference,
    image: &RemoteImage,
    ids: &MapPlan,
    quiet: bool,
) -> Result<String, RunError> {
    let config = oci::runtime_config(&image.config).map_err(RunError::new)?;
    let diff_ids = oci::diff_ids(&image.config).map_err(RunError::new)?;
    if diff_ids.len() != image.layers.len() {
        return Err(RunError::new(format!(
            "image {reference}: its manifest lists {} layers and its configuration {}",
            image.layers.len(),
            diff_ids.len()
        )));
    }
    let digest = hex_of(&image.config_digest).to_string();
    let layout = layout_of(ids);
    let name = reference.to_string();
    if let Some(record) = store.record(&digest)
        && record.ids == layout
    {
        set_reference(store, &name, &digest)?;
        return Ok(digest);
    }
    store.create().map_err(|e| {
        RunError::sys(
            format!("cannot create the image store {}", store.root.display()),
            e,
        )
    })?;
    // Until the record lists them, the layers this pull finds or makes are not unused.
    let _layers_in_use = store
        .lock_layers(false)
        .map_err(|e| RunError::sys("cannot lock the image store's layers", e))?;
    // A layer's files have the owners its map gave them: each map has its own copy.
    let keys: Vec<String> = diff_ids
        .iter()
        .map(|d| store::layer_key(d, layout))
        .collect();
    let wanted: Vec<Wanted<'_>> = image
        .layers
        .iter()
        .zip(&diff_ids)
        .zip(&keys)
        .map(|((descriptor, diff_id), key)| Wanted {
            descriptor,
            diff_id,
            key,
        })
        .filter(|w| !store.layer_dir(w.key).is_dir())
        .collect();
    let total: u64 = wanted.iter().map(|w| w.descriptor.size).sum();
    if !quiet {
        eprintln!(
            "unshare-run: pulling {name}: {} of {} layer(s) to fetch ({})",
            wanted.len(),
            image.layers.len(),
            human_size(total)
        );
    }
    let record = ImageRecord {
        digest: digest.clone(),
        source: name.clone(),
        kind: "registry".into(),
        size: image.layers.iter().map(|l| l.size).sum(),
        imported: now(),
        config,
        ids: layout,
        layers: keys.clone(),
        manifest: Some(image.manifest_digest.clone()),
        platform: oci::platform_of(&image.config),
    };
    let temp = store.temp_dir("pull", true).map_err(|e| {
        RunError::sys(
            format!("cannot create a directory in {}", store.tmp().display()),
            e,
        )
    })?;
    let job = userns::run_job(ids, || {
        let parts = wanted
            .iter()
            .map(|w| {
                (
                    hex_of(&w.descriptor.digest)[..12].to_string(),
                    w.descriptor.size,
                )
            })
            .collect();
        let progress = match quiet {
            true => None,
            false => Some(Progress::of_parts_on_terminal(
                format!("pulling {name}"),
                parts,
            )),
        };
        fetch_layers(store, client, &wanted, progress.as_ref())?;
        if let Some(progress) = &progress {
            progress.finish();
        }
        // The image's directory: the mount point of its overlay, and its own (empty) upper layer
        // with the top layer's owner and mode (the container's / until it writes there; the run's
        // overlay gives a new upper layer the same).
        for part in [store::ROOTFS, store::UPPER, store::WORK] {
            fs::create_dir(temp.path.join(part))
                .map_err(|e| RunError::sys(format!("cannot create {part}"), e))?;
        }
        if let Some(top) = keys.last() {
            copy_owner_and_mode(&store.layer_dir(top), &temp.path.join(store::UPPER))?;
        }
        Store::write_record(&temp.path, &record)
            .map_err(|e| RunError::sys(format!("cannot write {}", store::RECORD), e))?;
        let target = store.image_dir(&digest);
        if let Err(e) = fs::rename(&temp.path, &target) {
            // Stored meanwhile by a concurrent pull: keep that one.
            if store.record(&digest).is_none() {
                return Err(RunError::sys(
                    format!("cannot store the image in {}", target.display()),
                    e,
                ));
            }
            let _ = remove_path(&temp.path);
        }
        Ok(())
    });
    if job.is_err() {
        let _ = fs::remove_dir_all(&temp.path);
    }
    temp.release();
    job.map_err(|e| out_of_space(e, store).context(format!("cannot pull {name}")))?;
    set_reference(store, &name, &digest)?;
    if !quiet {
        eprintln!("unshare-run: stored {name} as {}", &digest[..12]);
    }
    Ok(digest)
}

/// A full disk (or quota) says where and what to do.
fn out_of_space(error: RunError, store: &Store) -> RunError {
    match error.errno {
        Some(nix::errno::Errno::ENOSPC | nix::errno::Errno::EDQUOT) => error.with_hint(format!(
            "the filesystem of the image store ({}) is full: free space, or remove images with \
             `unshare-run images rm`; the next pull continues the downloads kept in partial/",
            store.root.display()
        )),
        _ => error,
    }
}

fn set_reference(store: &Store, name: &str, digest: &str) -> Result<(), RunError> {
    store
        .set_reference(name, digest)
        .map_err(|e| RunError::sys(format!("cannot record the reference {name}"), e))
}

fn copy_owner_and_mode(from: &std::path::Path, to: &std::path::Path) -> Result<(), RunError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::metadata(from).map_err(|e| RunError::sys(from.display().to_string(), e))?;
    let _ = std::os::unix::fs::chown(to, Some(meta.uid()), Some(meta.gid()));
    fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(|e| RunError::sys(to.display().to_string(), e))
}

/// A layer to fetch: its blob, its content's digest, and its directory's name in the store.
struct Wanted<'a> {
    descriptor: &'a Descriptor,
    diff_id: &'a str,
    key: &'a str,
}

/// Downloads and extracts `wanted`, PARALLEL_LAYERS at a time; the first error wins.
fn fetch_layers(
    store: &Store,
    client: &Client,
    wanted: &[Wanted<'_>],
    progress: Option<&Progress>,
) -> Result<(), RunError> {
    // The layers' modes come from the archives, not from the caller's umask.
    let umask = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let result = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..PARALLEL_LAYERS.min(wanted.len()))
            .map(|_| {
                scope.spawn(|| -> Result<(), RunError> {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(layer) = wanted.get(i) else {
                            return Ok(());
                        };
                        obtain_layer(store, client, layer, i, progress)?;
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(RunError::new("a download thread failed")))
            })
            .collect::<Result<Vec<()>, RunError>>()
    });
    nix::sys::stat::umask(umask);
    result.map(|_| ())
}

/// Makes sure `layer` is stored: downloads its blob (continuing a partial one) and extracts it,
/// unless a concurrent pull that held the blob's lock has stored it meanwhile.
fn obtain_layer(
    store: &Store,
    client: &Client,
    layer: &Wanted<'_>,
    part: usize,
    progress: Option<&Progress>,
) -> Result<(), RunError> {
    let descriptor = layer.descriptor;
    let blob = hex_of(&descriptor.digest);
    let short = &blob[..blob.len().min(12)];
    loop {
        if store.layer_dir(layer.key).is_dir() {
            return Ok(());
        }
        let path = store.partial_blob(blob);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| RunError::sys(format!("cannot open {}", path.display()), e))?;
        let mut file = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| RunError::sys(format!("cannot lock {}", path.display()), e))?;
        // The pull that held the lock finished (and removed the file): look again.
        if file.metadata().map(|m| m.nlink()).unwrap_or(0) == 0 {
            continue;
        }
        if store.layer_dir(layer.key).is_dir() {
            let _ = fs::remove_file(&path);
            return Ok(());
        }
        // The extraction follows the download through a second descriptor of the file.
        let follower = file
            .try_clone()
            .map_err(|e| RunError::sys(format!("cannot open {}", path.display()), e))?;
        let written = Written::new(follower.metadata().map_or(0, |m| m.len()));
        let advance = |n: u64| {
            if let Some(p) = progress {
                p.advance_part(part, n)
            }
            written.grew(follower.metadata().map_or(0, |m| m.len()));
        };
        let (fetched, streamed) = std::thread::scope(|scope| {
            let extraction = scope.spawn(|| {
                let source = Following {
                    file: &follower,
                    offset: 0,
                    written: &written,
                };
                extract_layer_from(store, source, layer)
            });
            let fetched = client.fetch_blob(descriptor, &mut file, &advance);
            written.finish(fetched.is_ok());
            let streamed = extraction
                .join()
                .unwrap_or_else(|_| Err(RunError::new("the extraction thread failed")));
            (fetched, streamed)
        });
        if let Err(e) = fetched {
            // A whole blob that failed did not match its digest: nothing of it is kept. A part is
            // kept for the next pull to continue.
            let len = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
            if len >= descriptor.size {
                let _ = fs::remove_file(&path);
            }
            return Err(e.context(format!("layer {short}")));
        }
        // The download started over under the extraction (a registry that answered a range with
        // the whole blob): extract the verified file again.
        let extracted = match streamed {
            Ok(()) => {
                log::debug!("layer {short} extracted while it downloaded");
                Ok(())
            }
            Err(_) if store.layer_dir(layer.key).is_dir() => Ok(()),
            Err(e) => {
                log::debug!("layer {short}: extracted again from the file ({e})");
                extract_layer(store, &file, layer)
            }
        };
        // Whether it was stored or did not match, the download is done with.
        let _ = fs::remove_file(&path);
        extracted.map_err(|e| e.context(format!("layer {short}")))?;
        if let Some(p) = progress {
            p.note(&format!(
                "unshare-run: layer {short} stored ({})",
                human_size(descriptor.size)
            ));
        }
        return Ok(());
    }
}

/// How far the download has written the blob's file, and whether it has ended (and how).
struct Written {
    state: Mutex<(u64, Option<bool>)>,
    changed: Condvar,
}

impl Written {
    fn new(len: u64) -> Written {
        Written {
            state: Mutex::new((len, None)),
            changed: Condvar::new(),
        }
    }

    fn grew(&self, len: u64) {
        if let Ok(mut state) = self.state.lock() {
            state.0 = len;
            self.changed.notify_all();
        }
    }

    /// The download ended: `verified` when the whole blob matched its digest.
    fn finish(&self, verified: bool) {
        if let Ok(mut state) = self.state.lock() {
            state.1 = Some(verified);
            self.changed.notify_all();
        }
    }
}

/// The blob's file read as the download writes it: the end is the end only once the download has
/// ended with the blob verified. Bytes that the download took back (it started over) break it.
struct Following<'a> {
    file: &'a File,
    offset: u64,
    written: &'a Written,
}

impl std::io::Read for Following<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut state = self
            .written
            .state
            .lock()
            .map_err(|_| std::io::Error::other("the download failed"))?;
        loop {
            let (len, ended) = *state;
            if self.offset < len {
                drop(state);
                let want = buf
                    .len()
                    .min(usize::try_from(len - self.offset).unwrap_or(usize::MAX));
                let n =
                    std::os::unix::fs::FileExt::read_at(self.file, &mut buf[..want], self.offset)?;
                if n == 0 {
                    return Err(std::io::Error::other("the download started over"));
                }
                self.offset += n as u64;
                return Ok(n);
            }
            match ended {
                Some(true) if self.offset == len => return Ok(0),
                Some(true) => return Err(std::io::Error::other("the download started over")),
                Some(false) => return Err(std::io::Error::other("the download failed")),
                None => {
                    state = self
                        .written
                        .changed
                        .wait(state)
                        .map_err(|_| std::io::Error::other("the download failed"))?;
                }
            }
        }
    }
}

/// Extracts the downloaded (and verified) blob `file` into the store as `layer`.
fn extract_layer(store: &Store, file: &File, layer: &Wanted<'_>) -> Result<(), RunError> {
    let len = file.metadata().map_err(RunError::of)?.len();
    let region = stream::Region {
        file,
        offset: 0,
        len,
    };
    extract_layer_from(store, region, layer)
}

/// Extracts the blob that `source` reads into the store as `layer`, checking that it is the blob
/// (its digest: a download that started over under a following extraction is not) and that its
/// uncompressed content has the layer's diff_id.
fn extract_layer_from(
    store: &Store,
    mut source: impl std::io::Read + Send,
    layer: &Wanted<'_>,
) -> Result<(), RunError> {
    let (diff_id, target) = (layer.diff_id, store.layer_dir(layer.key));
    // The compression, from the first bytes; they are put back in front of the rest.
    let mut head = vec![0u8; format::SNIFF_LEN];
    let mut n = 0;
    while n < head.len() {
        match source.read(&mut head[n..]).map_err(RunError::of)? {
            0 => break,
            read => n += read,
        }
    }
    head.truncate(n);
    let compression = format::sniff(&head).map_err(RunError::new)?;
    let source = std::io::Read::chain(std::io::Cursor::new(head), source);
    let temp = store
        .temp_dir("layer", true)
        .map_err(|e| RunError::sys("cannot create a layer directory", e))?;
    let result = (|| {
        let mut extractor = extract::Extractor::new(&temp.path, extract::Whiteouts::Recorded)
            .map_err(RunError::of)?;
        let (applied, digests) =
            stream::hashed_both(source, compression, &Progress::silent(), true, |r| {
                extractor.apply(r)
            })
            .map_err(RunError::of)?;
        applied.map_err(RunError::of)?;
        let digests = digests.ok_or_else(|| RunError::new("the layer could not be read"))?;
        if stream::hex(&digests.raw) != hex_of(&layer.descriptor.digest) {
            return Err(RunError::new(format!(
                "what was read is not the blob {}",
                layer.descriptor.digest
            )));
        }
        let content = stream::hex(&digests.content);
        if content != diff_id {
            return Err(RunError::new(format!(
                "its content is sha256:{content}, and the image's configuration says sha256:{diff_id}: \
                 the registry serves a damaged image"
            )));
        }
        match fs::rename(&temp.path, &target) {
            Ok(()) => Ok(()),
            // Stored meanwhile from another blob of the same content.
            Err(_) if target.is_dir() => remove_path(&temp.path).map_err(RunError::of),
            Err(e) => Err(RunError::sys("cannot store the layer", e)),
        }
    })();
    if result.is_err() {
        let _ = remove_path(&temp.path);
    }
    temp.release();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn temp_file() -> File {
        OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_TMPFILE)
            .open(std::env::temp_dir())
            .unwrap()
    }

    #[test]
    fn the_extraction_follows_the_download_to_its_verified_end() {
        let mut file = temp_file();
        let reader = file.try_clone().unwrap();
        let written = Written::new(0);
        let data: Vec<u8> = (0..200_000).map(|i| (i % 251) as u8).collect();
        let read = std::thread::scope(|scope| {
            let following = scope.spawn(|| {
                let mut source = Following {
                    file: &reader,
                    offset: 0,
                    written: &written,
                };
                let mut all = Vec::new();
                source.read_to_end(&mut all).map(|_| all)
            });
            for chunk in data.chunks(30_000) {
                file.write_all(chunk).unwrap();
                written.grew(file.metadata().unwrap().len());
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            written.finish(true);
            following.join().unwrap()
        });
        assert!(read.unwrap() == data, "the follower read other bytes");
    }

    #[test]
    fn a_failed_or_restarted_download_breaks_the_following_read() {
        let mut file = temp_file();
        file.write_all(b"0123456789").unwrap();
        let written = Written::new(10);
        let mut source = Following {
            file: &file,
            offset: 0,
            written: &written,
        };
        let mut buf = [0u8; 4];
        assert_eq!(source.read(&mut buf).unwrap(), 4);
        // The download truncates and starts over: what was read is no longer the blob's.
        file.set_len(0).unwrap();
        written.grew(0);
        written.finish(true);
        assert!(source.read(&mut buf).is_err());
        // A download that failed ends a read that waits for more.
        let failed = Written::new(0);
        failed.finish(false);
        let mut source = Following {
            file: &file,
            offset: 0,
            written: &failed,
        };
        assert!(source.read(&mut buf).is_err());
    }
}
