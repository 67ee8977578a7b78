//! A pulled image's overlay, kept mounted by the holder and lent to each start.
//!
//! Mounting an overlay whose upper layer is on a disk costs a warm start about a quarter of a
//! millisecond (overlayfs prepares its work directory and probes the upper filesystem), and its
//! unmount at the container's end syncs the upper filesystem, which costs as much again and more
//! after writes (docs/benchmarks.md, "Pulls"). So the holder makes each image's overlay once, as a
//! detached mount, and a start attaches a copy of it (open_tree(OPEN_TREE_CLONE)). The copy is the
//! same filesystem: every container of the image sees the same files, fsync inside works as on a
//! directory, and a copy's unmount syncs nothing. The overlay goes, and its upper filesystem is
//! synced, when the holder ends or when its image is removed (`unshare-run images rm`).
//!
//! Two overlays on one upper layer would each cache what the other changes there. So a start asks
//! the holder to make one only while it holds the image's upper layer (`Store::claim_upper`), and
//! a start that mounts an overlay of its own on the layer (without a holder, or with one that lent
//! nothing) first stamps the layer with a new token, an extended attribute: the holder lends an
//! overlay it keeps only while the layer carries the token that it stamped when it made it.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::channel::MAX_REQUEST;
use super::error::RunError;
use crate::sys;
use crate::sys::mount::{self as new_mount, Setting};

/// The extended attribute of an image's upper layer that names the overlay last made on it.
const TOKEN: &CStr = c"user.unshare-run.overlay";

/// The most overlays a holder keeps; the one kept longest goes first.
const MAX_KEPT: usize = 16;

/// What a start asks its holder for: the overlay of a pulled image's layers under its upper layer.
/// The directories go both as descriptors and as paths: overlayfs takes its layers only from the
/// mount namespace of the process that makes it, so the holder opens the paths in its own and uses
/// them only where they are the very directories that the start opened in its one.
#[derive(Debug)]
pub struct Request {
    /// Make the overlay if none is kept: the start holds the upper layer.
    pub may_make: bool,
    /// The upper layer, the work directory, then the layers, the top one first.
    pub paths: Vec<PathBuf>,
    /// The same directories, opened by the start.
    pub dirs: Vec<OwnedFd>,
}

const MAY_MAKE: u8 = b'm';
const IF_KEPT: u8 = b'k';

impl Request {
    /// The request for a pulled image's directories, `upper`, `work` and `layers` (the top one
    /// first); None when there is nothing to ask for: its upper layer not made yet (the first start
    /// makes it, as its top layer's owner has it), or more layers than one message carries.
    pub fn for_image(
        upper: &Path,
        work: &Path,
        layers: &[PathBuf],
        may_make: bool,
    ) -> Option<Request> {
        let paths: Vec<PathBuf> = [upper, work]
            .into_iter()
            .chain(layers.iter().map(PathBuf::as_path))
            .map(Path::to_path_buf)
            .collect();
        let length: usize = paths.iter().map(|p| p.as_os_str().len() + 1).sum();
        if paths.len() > sys::MAX_DESCRIPTORS || length + 2 > MAX_REQUEST {
            return None;
        }
        let dirs = paths
            .iter()
            .map(|dir| File::open(dir).map(OwnedFd::from))
            .collect::<io::Result<Vec<_>>>()
            .ok()?;
        Some(Request {
            may_make,
            paths,
            dirs,
        })
    }

    /// The message's bytes after its kind (the mode, then each path and a NUL), and its
    /// descriptors.
    pub fn message(&self) -> (Vec<u8>, Vec<BorrowedFd<'_>>) {
        let mut bytes = vec![if self.may_make { MAY_MAKE } else { IF_KEPT }];
        for path in &self.paths {
            bytes.extend_from_slice(path.as_os_str().as_bytes());
            bytes.push(0);
        }
        (bytes, self.dirs.iter().map(|d| d.as_fd()).collect())
    }

    /// The request in a message's bytes after its kind, with its descriptors.
    pub fn from_message(bytes: &[u8], dirs: Vec<OwnedFd>) -> Option<Request> {
        let (&mode, rest) = bytes.split_first()?;
        let may_make = match mode {
            MAY_MAKE => true,
            IF_KEPT => false,
            _ => return None,
        };
        let paths: Vec<PathBuf> = rest
            .strip_suffix(&[0])?
            .split(|&b| b == 0)
            .map(|p| PathBuf::from(std::ffi::OsStr::from_bytes(p)))
            .collect();
        let whole = paths.len() >= 3 && paths.len() == dirs.len();
        whole.then_some(Request {
            may_make,
            paths,
            dirs,
        })
    }
}

/// The overlays a holder keeps.
#[derive(Default)]
pub struct Kept {
    overlays: Vec<KeptOverlay>,
}

struct KeptOverlay {
    /// Device and inode of the upper layer, the work directory and each layer, in that order.
    identity: Vec<(u64, u64)>,
    /// Open, to see whether it was removed.
    upper: OwnedFd,
    /// The token stamped on the upper layer when this overlay was made.
    token: Vec<u8>,
    mount: OwnedFd,
}

impl Kept {
    /// A copy of the kept overlay that `request` names, made first if the request may make it;
    /// None when none is kept and it may not.
    pub fn lend(&mut self, request: Request) -> Result<Option<OwnedFd>, RunError> {
        self.forget_removed();
        let identity = request
            .dirs
            .iter()
            .map(|dir| identity_of(dir.as_fd()))
            .collect::<io::Result<Vec<_>>>()
            .map_err(|e| RunError::sys("cannot read the image's layers", e))?;
        let upper = &request.dirs[0];
        if let Some(index) = self.overlays.iter().position(|k| k.identity == identity) {
            if read_token(upper.as_fd()).as_deref() == Some(&self.overlays[index].token[..]) {
                return copy(&self.overlays[index].mount).map(Some);
            }
            log::debug!("the image's upper layer was mounted elsewhere: its kept overlay goes");
            self.overlays.remove(index);
        }
        if !request.may_make {
            return Ok(None);
        }
        let own = open_the_same(&request.paths, &identity)?;
        let mount = make(&own)?;
        let token = stamp(own[0].as_fd())
            .map_err(|e| RunError::sys("cannot mark the image's upper layer", e))?;
        let lent = copy(&mount)?;
        if self.overlays.len() == MAX_KEPT {
            self.overlays.remove(0);
        }
        let mut dirs = request.dirs;
        self.overlays.push(KeptOverlay {
            identity,
            upper: dirs.swap_remove(0),
            token,
            mount,
        });
        Ok(Some(lent))
    }

    /// Lets go of the overlays whose upper layer was removed (`unshare-run images rm`: the removed
    /// image's files take up their space until nothing holds them). The others stay: the holder
    /// serves every store of its user, and another image's overlay is still good.
    pub fn forget_removed(&mut self) {
        self.overlays.retain(|kept| still_there(kept.upper.as_fd()));
    }
}

/// `paths` opened here, if they are the directories whose identities the start sent (the holder's
/// mount namespace may show other files at those paths).
fn open_the_same(paths: &[PathBuf], identity: &[(u64, u64)]) -> Result<Vec<OwnedFd>, RunError> {
    let mut own = Vec::with_capacity(paths.len());
    for (path, wanted) in paths.iter().zip(identity) {
        let dir = File::open(path)
            .map(OwnedFd::from)
            .map_err(|e| RunError::sys(format!("cannot open {}", path.display()), e))?;
        let here = identity_of(dir.as_fd())
            .map_err(|e| RunError::sys(format!("cannot read {}", path.display()), e))?;
        if here != *wanted {
            return Err(RunError::new(format!(
                "{} is another directory in the holder's mount namespace",
                path.display()
            )));
        }
        own.push(dir);
    }
    Ok(own)
}

/// The overlay of `dirs` (upper, work, then the layers, the top one first), detached, as PID 1's own
/// mount makes it (`rootfs::mount_overlay`).
fn make(dirs: &[OwnedFd]) -> Result<OwnedFd, RunError> {
    let path = |fd: &OwnedFd| format!("/proc/self/fd/{}", fd.as_raw_fd());
    let c = |text: String| CString::new(text).expect("no NUL in a descriptor's path");
    let upper = c(path(&dirs[0]));
    let work = c(path(&dirs[1]));
    let layers: Vec<String> = dirs[2..].iter().map(path).collect();
    let joined = c(layers.join(":"));
    let each: Vec<CString> = layers.into_iter().map(c).collect();
    let mut settings = Vec::with_capacity(each.len() + 3);
    // fsconfig takes at most 256 bytes per value; beyond that one layer at a time (Linux 6.8).
    if joined.as_bytes().len() < 256 {
        settings.push(Setting::Text(c"lowerdir", &joined));
    } else {
        settings.extend(each.iter().map(|layer| Setting::Text(c"lowerdir+", layer)));
    }
    settings.push(Setting::Text(c"upperdir", &upper));
    settings.push(Setting::Text(c"workdir", &work));
    settings.push(Setting::Flag(c"userxattr"));
    new_mount::new_detached(c"overlay", &settings)
        .map_err(|e| RunError::sys("cannot make the image's overlay", e))
}

fn copy(mount: &OwnedFd) -> Result<OwnedFd, RunError> {
    new_mount::clone_mount(mount.as_fd())
        .map_err(|e| RunError::sys("cannot copy the image's overlay", e))
}

/// Stamps the upper layer `upper` with a new token: an overlay of it that a holder keeps is not lent
/// any more. Returns the token.
pub fn stamp(upper: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
    static STAMPED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    // Unique, not secret: the time, the process and a count.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let count = STAMPED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let token = format!("{nanos:x}.{:x}.{count:x}", std::process::id()).into_bytes();
    sys::set_xattr(upper, TOKEN, &token)?;
    Ok(token)
}

/// Stamps the upper layer at `upper` before an overlay of this start's own is mounted on it. A
/// filesystem without user extended attributes gets no token from a holder either.
pub fn stamp_before_own_mount(upper: &Path) -> Result<(), RunError> {
    let fail = |e: io::Error| RunError::sys(format!("cannot mark {}", upper.display()), e);
    let dir = File::open(upper).map_err(fail)?;
    match stamp(dir.as_fd()) {
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(()),
        result => result.map(drop).map_err(fail),
    }
}

fn read_token(upper: BorrowedFd<'_>) -> Option<Vec<u8>> {
    sys::read_xattr(
        Path::new(&format!("/proc/self/fd/{}", upper.as_raw_fd())),
        TOKEN,
    )
}

fn identity_of(dir: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    let meta = File::from(dir.try_clone_to_owned()?).metadata()?;
    Ok((meta.dev(), meta.ino()))
}

/// Whether the directory `dir` is still linked (`images rm` removed it otherwise).
fn still_there(dir: BorrowedFd<'_>) -> bool {
    nix::sys::stat::fstat(dir).is_ok_and(|st| st.st_nlink > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_arrives_as_it_was_sent() {
        let dir = std::env::temp_dir();
        let layers = [dir.join("."), dir.clone()];
        for may_make in [true, false] {
            let request = Request::for_image(&dir, &dir, &layers, may_make).unwrap();
            let (bytes, fds) = request.message();
            assert_eq!(fds.len(), 4);
            let owned = || {
                fds.iter()
                    .map(|fd| fd.try_clone_to_owned().unwrap())
                    .collect()
            };
            let back = Request::from_message(&bytes, owned()).unwrap();
            assert_eq!(back.may_make, may_make);
            assert_eq!(back.paths, request.paths);
            // A descriptor short, or a path cut: no request.
            let mut short: Vec<OwnedFd> = owned();
            short.pop();
            assert!(Request::from_message(&bytes, short).is_none());
            assert!(Request::from_message(&bytes[..bytes.len() - 1], owned()).is_none());
        }
        let open = || OwnedFd::from(File::open(&dir).unwrap());
        assert!(Request::from_message(b"xa\0b\0c\0", vec![open(), open(), open()]).is_none());
        assert!(Request::from_message(&[], vec![open(), open(), open()]).is_none());
        // More directories than a message carries: the start asks nothing.
        let many = vec![dir.clone(); sys::MAX_DESCRIPTORS];
        assert!(Request::for_image(&dir, &dir, &many, true).is_none());
    }

    #[test]
    fn a_new_stamp_replaces_the_token() {
        let dir = std::env::temp_dir().join(format!("urt-stamp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fd = OwnedFd::from(File::open(&dir).unwrap());
        match stamp(fd.as_fd()) {
            Ok(first) => {
                assert_eq!(read_token(fd.as_fd()).as_deref(), Some(&first[..]));
                let second = stamp(fd.as_fd()).unwrap();
                assert_ne!(first, second);
                assert_eq!(read_token(fd.as_fd()).as_deref(), Some(&second[..]));
            }
            // A temporary directory on a filesystem without user attributes (tmpfs before 6.6).
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EOPNOTSUPP)),
        }
        assert!(still_there(fd.as_fd()));
        std::fs::remove_dir(&dir).unwrap();
        assert!(!still_there(fd.as_fd()));
    }
}
