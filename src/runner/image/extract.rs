//! Writes tar streams into a directory so that no entry can create or change anything outside it.
//!
//! The rules, each enforced in one place:
//! - names: absolute names and `..` components are refused (`entry_components`);
//! - directories: every parent is opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), so an
//!   entry can never be written through a symlink, whoever made it (`open_parent`);
//! - the last component is created with O_EXCL / O_NOFOLLOW, or replaced by unlinking it first, never
//!   followed;
//! - hard links name their target by the same rules (`link_target`), so they cannot reach outside;
//! - whiteouts (image layers only) are names like any other: `.wh.` plus a plain name;
//! - `user.overlay.*` attributes are never written: the stored trees are overlayfs layers (mounted
//!   with userxattr), and an archive must not steer the overlay (redirects, opaque directories).
//!
//! Owners, modes (setuid too: chmod after chown), times, hard links, symlinks, FIFOs and xattrs are kept.
//! Device nodes cannot be made in a user namespace and are counted instead (the runner provides /dev).

use std::collections::HashSet;
use std::ffi::CString;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::mkdirat;
use nix::sys::stat::{FileStat, Mode, SFlag, UtimensatFlags, fchmod, fstatat, futimens, mknodat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, linkat, symlinkat, unlinkat};

/// The opaque-directory marker of OCI and Docker layers.
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const COPY_BUFFER: usize = 256 * 1024;

/// What was extracted, and what could not be kept (reported as one summary line each).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub entries: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    pub devices_skipped: u64,
    /// Entries whose owner is not mapped in this user namespace: they stay owned by root inside.
    pub unmapped_owners: u64,
    pub xattrs_skipped: u64,
    /// Sockets and unknown entry types.
    pub others_skipped: u64,
}

#[derive(Debug)]
pub enum Problem {
    /// The entry would reach outside the target, or break its structure.
    Unsafe(String),
    /// A system call failed.
    Io(&'static str, io::Error),
    /// The tar stream itself is damaged.
    Archive(io::Error),
}

#[derive(Debug)]
pub struct ExtractError {
    /// The entry's name as stored (lossily decoded), empty when the stream broke between entries.
    pub entry: String,
    pub problem: Problem,
}

impl fmt::Display for ExtractError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.problem {
            Problem::Unsafe(why) => write!(f, "refusing archive entry `{}`: {why}", self.entry),
            Problem::Io(what, e) => write!(f, "archive entry `{}`: cannot {what}: {e}", self.entry),
            Problem::Archive(e) if self.entry.is_empty() => {
                write!(f, "the archive is damaged or not a tar archive: {e}")
            }
            Problem::Archive(e) => {
                write!(f, "the archive is damaged at entry `{}`: {e}", self.entry)
            }
        }
    }
}

impl crate::runner::error::SysError for ExtractError {
    fn errno(&self) -> Option<nix::errno::Errno> {
        match &self.problem {
            Problem::Unsafe(_) => None,
            Problem::Io(_, e) | Problem::Archive(e) => e.errno(),
        }
    }
}

fn unsafe_entry(entry: &[u8], why: impl Into<String>) -> ExtractError {
    ExtractError {
        entry: String::from_utf8_lossy(entry).into_owned(),
        problem: Problem::Unsafe(why.into()),
    }
}

/// The archive itself is damaged (empty `entry`: between entries).
fn archive_error(entry: &[u8], e: io::Error) -> ExtractError {
    ExtractError {
        entry: String::from_utf8_lossy(entry).into_owned(),
        problem: Problem::Archive(e),
    }
}

fn io_error(entry: &[u8], what: &'static str, e: impl Into<io::Error>) -> ExtractError {
    ExtractError {
        entry: String::from_utf8_lossy(entry).into_owned(),
        problem: Problem::Io(what, e.into()),
    }
}

/// The path components of an archive name, or why the name is refused. `./a//b/` is `[a, b]`; the
/// archive's root (`./`) has no components.
pub fn entry_components(name: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    if name.starts_with(b"/") {
        return Err("it has an absolute name (names must be relative to the image's root)");
    }
    let mut components = Vec::new();
    for component in name.split(|b| *b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => return Err("its name climbs out of the image with `..`"),
            other => components.push(other),
        }
    }
    Ok(components)
}

/// What a whiteout entry asks for, if `name` is one.
#[derive(Debug, PartialEq, Eq)]
pub enum Whiteout<'a> {
    /// Hide everything lower layers put in the directory.
    Opaque,
    /// Remove this name from the directory.
    Remove(&'a [u8]),
}

/// Classifies a layer entry's last component; a whiteout may only name a plain entry of its own
/// directory.
pub fn whiteout_of(name: &[u8]) -> Result<Option<Whiteout<'_>>, &'static str> {
    if name == OPAQUE_MARKER {
        return Ok(Some(Whiteout::Opaque));
    }
    match name.strip_prefix(WHITEOUT_PREFIX) {
        None => Ok(None),
        Some(b"" | b"." | b"..") => Err("its whiteout names no entry of its own directory"),
        Some(target) => Ok(Some(Whiteout::Remove(target))),
    }
}

fn join(components: &[&[u8]]) -> Vec<u8> {
    components.join(&b'/')
}

/// Resolution that stays below the root and never follows a symlink (or a /proc magic link).
fn confined() -> ResolveFlag {
    ResolveFlag::RESOLVE_BENEATH
        | ResolveFlag::RESOLVE_NO_SYMLINKS
        | ResolveFlag::RESOLVE_NO_MAGICLINKS
}

fn open_confined(root: BorrowedFd<'_>, path: &[u8], flags: OFlag) -> nix::Result<OwnedFd> {
    let path: &[u8] = if path.is_empty() { b"." } else { path };
    openat2(
        root,
        path,
        OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(confined()),
    )
}

struct DeferredDir {
    path: Vec<u8>,
    mode: u32,
    mtime: TimeSpec,
    xattrs: Vec<(CString, Vec<u8>)>,
}

/// The metadata of one entry, from its header and pax records.
struct Attributes {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: TimeSpec,
    xattrs: Vec<(CString, Vec<u8>)>,
}

/// What a layer's whiteout entries do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    /// A plain tarball: `.wh.` names are files like any other.
    Plain,
    /// Layers applied in order into one tree: a whiteout removes what earlier layers wrote.
    Applied,
    /// One layer into a tree of its own, an overlayfs lower layer: a whiteout becomes overlayfs's
    /// (a 0:0 character device), an opaque marker its `user.overlay.opaque` attribute.
    Recorded,
}

/// overlayfs's attribute namespace under userxattr.
const OVERLAY_XATTR_PREFIX: &[u8] = b"user.overlay.";

pub struct Extractor {
    root: OwnedFd,
    whiteouts: Whiteouts,
    /// Paths written by the current layer (an opaque directory keeps them).
    written: HashSet<Vec<u8>>,
    deferred: Vec<DeferredDir>,
    /// The last parent directory opened, by path: entries of a directory come together.
    parent_cache: Option<(Vec<u8>, OwnedFd)>,
    buffer: Vec<u8>,
    pub summary: Summary,
}

impl Extractor {
    /// An extractor writing below `root` (an existing, empty directory), its whiteouts as said.
    pub fn new(root: &Path, whiteouts: Whiteouts) -> io::Result<Extractor> {
        let root = openat(
            nix::fcntl::AT_FDCWD,
            root,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Extractor {
            root,
            whiteouts,
            written: HashSet::new(),
            deferred: Vec::new(),
            parent_cache: None,
            buffer: vec![0; COPY_BUFFER],
            summary: Summary::default(),
        })
    }

    /// Extracts one tar stream (a whole archive, or one layer). Directory modes and times are set
    /// when the stream ends, once nothing more is written into them.
    pub fn apply(&mut self, stream: impl Read) -> Result<(), ExtractError> {
        self.written.clear();
        let mut archive = tar::Archive::new(stream);
        let entries = archive.entries().map_err(|e| archive_error(b"", e))?;
        let mut last_name = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| archive_error(&last_name, e))?;
            last_name = entry.path_bytes().into_owned();
            self.extract_entry(entry, &last_name)?;
        }
        self.apply_deferred()
    }

    fn extract_entry<R: Read>(
        &mut self,
        mut entry: tar::Entry<'_, R>,
        name: &[u8],
    ) -> Result<(), ExtractError> {
        use tar::EntryType;
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader) {
            return Ok(());
        }
        let components = entry_components(name).map_err(|why| unsafe_entry(name, why))?;
        let attributes = attributes_of(&mut entry).map_err(|e| archive_error(name, e))?;
        self.summary.entries += 1;
        let Some((&last, parents)) = components.split_last() else {
            // The archive's root: the target directory itself.
            if kind.is_dir() {
                if !set_owner(self.root.as_fd(), b".", &attributes, name)? {
                    self.summary.unmapped_owners += 1;
                }
                self.deferred.push(DeferredDir {
                    path: Vec::new(),
                    mode: attributes.mode,
                    mtime: attributes.mtime,
                    xattrs: attributes.xattrs,
                });
                return Ok(());
            }
            return Err(unsafe_entry(
                name,
                "only a directory can be the image's root",
            ));
        };
        if self.whiteouts != Whiteouts::Plain {
            let recorded = self.whiteouts == Whiteouts::Recorded;
            match whiteout_of(last).map_err(|why| unsafe_entry(name, why))? {
                Some(Whiteout::Opaque) if recorded => return self.mark_opaque(parents, name),
                Some(Whiteout::Opaque) => return self.make_opaque(parents, name),
                Some(Whiteout::Remove(target)) if recorded => {
                    return self.record_whiteout(parents, target, name);
                }
                Some(Whiteout::Remove(target)) => {
                    return self.remove_whiteout(parents, target, name);
                }
                None => {}
            }
            self.written.insert(join(&components));
        }
        match kind {
            EntryType::Directory => self.make_directory(&components, attributes, name),
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.make_file(parents, last, &mut entry, attributes, name)
            }
            EntryType::Symlink => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                self.make_symlink(parents, last, &target, attributes, name)
            }
            EntryType::Link => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                self.make_hard_link(parents, last, &target, name)
            }
            EntryType::Fifo => self.make_fifo(parents, last, attributes, name),
            EntryType::Char | EntryType::Block => {
                self.summary.devices_skipped += 1;
                Ok(())
            }
            _ => {
                self.summary.others_skipped += 1;
                Ok(())
            }
        }
    }

    /// The directory holding an entry, created (with its missing parents) when the archive did not
    /// list it first. Refuses to go through anything but real directories below the root.
    fn open_parent(
        &mut self,
        parents: &[&[u8]],
        entry: &[u8],
    ) -> Result<BorrowedFd<'_>, ExtractError> {
        let path = join(parents);
        let cached = matches!(&self.parent_cache, Some((p, _)) if *p == path);
        if !cached {
            let fd =
                match open_confined(self.root.as_fd(), &path, OFlag::O_PATH | OFlag::O_DIRECTORY) {
                    Ok(fd) => fd,
                    Err(Errno::ENOENT) => self.create_parents(parents, entry)?,
                    Err(e) => return Err(parent_error(entry, &path, e)),
                };
            self.parent_cache = Some((path, fd));
        }
        Ok(self
            .parent_cache
            .as_ref()
            .map(|(_, fd)| fd.as_fd())
            .expect("set above"))
    }

    fn create_parents(&self, parents: &[&[u8]], entry: &[u8]) -> Result<OwnedFd, ExtractError> {
        let mut dir = open_confined(self.root.as_fd(), b".", OFlag::O_PATH | OFlag::O_DIRECTORY)
            .map_err(|e| io_error(entry, "open the image's root", e))?;
        for (depth, component) in parents.iter().enumerate() {
            match mkdirat(dir.as_fd(), *component, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(io_error(entry, "create a parent directory", e)),
            }
            dir = open_confined(dir.as_fd(), component, OFlag::O_PATH | OFlag::O_DIRECTORY)
                .map_err(|e| parent_error(entry, &join(&parents[..=depth]), e))?;
        }
        Ok(dir)
    }

    /// Forgets the cached parent: something was removed or replaced, and it may have been that.
    fn forget_parent(&mut self) {
        self.parent_cache = None;
    }

    /// Creates the entry with `create` in its directory; if something of that name exists already (an
    /// earlier entry, a lower layer), removes it and creates again. `failed` describes the error.
    fn create_replacing<T>(
        &mut self,
        parents: &[&[u8]],
        last: &[u8],
        name: &[u8],
        create: impl Fn(BorrowedFd<'_>) -> nix::Result<T>,
        failed: impl Fn(Errno) -> ExtractError,
    ) -> Result<T, ExtractError> {
        let parent = self.open_parent(parents, name)?;
        match create(parent) {
            Err(Errno::EEXIST) => {}
            other => return other.map_err(failed),
        }
        let replaced =
            remove_any(parent, last).map_err(|e| io_error(name, "replace an entry", e))?;
        if replaced == Replaced::Directory {
            self.forget_parent();
        }
        let parent = self.open_parent(parents, name)?;
        create(parent).map_err(failed)
    }

    /// Owner and times of an entry that cannot be opened (a symlink, a FIFO), without following it.
    fn set_owner_and_times(
        &mut self,
        parents: &[&[u8]],
        last: &[u8],
        attributes: &Attributes,
        name: &[u8],
    ) -> Result<(), ExtractError> {
        let parent = self.open_parent(parents, name)?;
        let mapped = set_owner(parent, last, attributes, name)?;
        nix::sys::stat::utimensat(
            parent,
            last,
            &attributes.mtime,
            &attributes.mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| io_error(name, "set the times", e))?;
        self.count_owner(mapped);
        Ok(())
    }

    fn make_directory(
        &mut self,
        components: &[&[u8]],
        attributes: Attributes,
        name: &[u8],
    ) -> Result<(), ExtractError> {
        let (&last, parents) = components.split_last().expect("not the root");
        let parent = self.open_parent(parents, name)?;
        match mkdirat(parent, last, Mode::from_bits_truncate(0o700)) {
            Ok(()) => {}
            Err(Errno::EEXIST) if is_directory(parent, last) => {}
            Err(Errno::EEXIST) => {
                remove_any(parent, last).map_err(|e| io_error(name, "replace an entry", e))?;
                mkdirat(parent, last, Mode::from_bits_truncate(0o700))
                    .map_err(|e| io_error(name, "create the directory", e))?;
                self.forget_parent();
            }
            Err(e) => return Err(io_error(name, "create the directory", e)),
        }
        let parent = self.open_parent(parents, name)?;
        let mapped = set_owner(parent, last, &attributes, name)?;
        self.count_owner(mapped);
        self.deferred.push(DeferredDir {
            path: join(components),
            mode: attributes.mode,
            mtime: attributes.mtime,
            xattrs: attributes.xattrs,
        });
        Ok(())
    }

    fn make_file<R: Read>(
        &mut self,
        parents: &[&[u8]],
        last: &[u8],
        content: &mut R,
        attributes: Attributes,
        name: &[u8],
    ) -> Result<(), ExtractError> {
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        // Created with its final permission bits (the umask is 0); the set-id bits follow the chown.
        let mode = Mode::from_bits_truncate(attributes.mode & 0o777);
        let fd = self.create_replacing(
            parents,
            last,
            name,
            |parent| openat(parent, last, flags, mode),
            |e| io_error(name, "create the file", e),
        )?;
        let mut file = std::fs::File::from(fd);
        loop {
            let n = match content.read(&mut self.buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(archive_error(name, e)),
            };
            file.write_all(&self.buffer[..n])
                .map_err(|e| io_error(name, "write the file", e))?;
            self.summary.bytes += n as u64;
        }
        match fchown(
            &file,
            Some(Uid::from_raw(attributes.uid)),
            Some(Gid::from_raw(attributes.gid)),
        ) {
            Ok(()) => {}
            Err(Errno::EINVAL) => self.summary.unmapped_owners += 1,
            Err(e) => return Err(io_error(name, "set the owner", e)),
        }
        if attributes.mode & 0o7000 != 0 {
            // After chown, which clears setuid and setgid.
            fchmod(&file, Mode::from_bits_truncate(attributes.mode))
                .map_err(|e| io_error(name, "set the mode", e))?;
        }
        self.set_xattrs(file.as_fd(), &attributes.xattrs);
        futimens(&file, &attributes.mtime, &attributes.mtime)
            .map_err(|e| io_error(name, "set the times", e))?;
        Ok(())
    }

    fn make_symlink(
        &mut self,
        parents: &[&[u8]],
        last: &[u8],
        target: &[u8],
        attributes: Attributes,
        name: &[u8],
    ) -> Result<(), ExtractError> {
        // The target is stored as text and never followed here, wherever it points.
        self.create_replacing(
            parents,
            last,
            name,
            |parent| symlinkat(target, parent, last),
            |e| io_error(name, "create the symlink", e),
        )?;
        self.set_owner_and_times(parents, last, &attributes, name)
    }

    fn make_hard_link(
        &mut self,
        parents: &[&[u8]],
        last: &[u8],
        target: &[u8],
        name: &[u8],
    ) -> Result<(), ExtractError> {
        let target_components = entry_components(target).map_err(|why| {
            unsafe_entry(
                name,
                format!(
                    "it is a hard link whose target is refused: {}",
                    why.replace("its name", "the target")
                ),
            )
        })?;
        let Some((&target_last, target_parents)) = target_components.split_last() else {
            return Err(unsafe_entry(name, "it is a hard link to the image's root"));
        };
        let target_parent = open_confined(
            self.root.as_fd(),
            &join(target_parents),
            OFlag::O_PATH | OFlag::O_DIRECTORY,
        )
        .map_err(|e| parent_error(name, &join(target_parents), e))?;
        self.create_replacing(
            parents,
            last,
            name,
            |parent| linkat(&target_parent, target_last, parent, last, AtFlags::empty()),
            |e| match e {
                Errno::ENOENT => archive_error(
                    name,
                    io::Error::other(format!(
                        "it is a hard link to `{}`, which the archive does not hold before it",
                        String::from_utf8_lossy(target)
                    )),
                ),
                e => io_error(name, "create the hard link", e),
            },
        )
    }

    fn make_fifo(
        &mut self,
        parents: &[&[u8]],
        last: &[u8],
        attributes: Attributes,
        name: &[u8],
    ) -> Result<(), ExtractError> {
        let mode = Mode::from_bits_truncate(attributes.mode & 0o777);
        self.create_replacing(
            parents,
            last,
            name,
            |parent| mknodat(parent, last, SFlag::S_IFIFO, mode, 0),
            |e| io_error(name, "create the FIFO", e),
        )?;
        self.set_owner_and_times(parents, last, &attributes, name)
    }

    /// `.wh.NAME`: removes NAME (and everything below it) from the directory.
    fn remove_whiteout(
        &mut self,
        parents: &[&[u8]],
        target: &[u8],
        name: &[u8],
    ) -> Result<(), ExtractError> {
        let parent = self.open_parent(parents, name)?;
        match remove_any(parent, target) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(io_error(name, "remove the whited-out entry", e)),
        }
        self.forget_parent();
        Ok(())
    }

    /// `.wh.NAME` in a layer of its own: overlayfs's whiteout, a 0:0 character device (which a user
    /// namespace may make). An entry of this layer by that name wins: the whiteout is for lower ones.
    fn record_whiteout(
        &mut self,
        parents: &[&[u8]],
        target: &[u8],
        name: &[u8],
    ) -> Result<(), ExtractError> {
        let mut path = join(parents);
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(target);
        if self.written.contains(&path) {
            return Ok(());
        }
        let parent = self.open_parent(parents, name)?;
        match mknodat(parent, target, SFlag::S_IFCHR, Mode::empty(), 0) {
            Ok(()) | Err(Errno::EEXIST) => Ok(()),
            Err(e) => Err(io_error(name, "create the whiteout", e)),
        }
    }

    /// `.wh..wh..opq` in a layer of its own: overlayfs hides the lower layers' entries of the
    /// directory; this layer's stay.
    fn mark_opaque(&mut self, parents: &[&[u8]], name: &[u8]) -> Result<(), ExtractError> {
        let parent = self.open_parent(parents, name)?;
        let dir = openat(
            parent,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_error(name, "open the opaque directory", e))?;
        crate::sys::set_xattr(dir.as_fd(), c"user.overlay.opaque", b"y")
            .map_err(|e| io_error(name, "mark the directory opaque", e))
    }

    /// `.wh..wh..opq`: removes what lower layers put in the directory; this layer's entries stay.
    fn make_opaque(&mut self, parents: &[&[u8]], name: &[u8]) -> Result<(), ExtractError> {
        let prefix = join(parents);
        let parent = self.open_parent(parents, name)?;
        let dir = openat(
            parent,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_error(name, "open the opaque directory", e))?;
        let mut listing = nix::dir::Dir::from_fd(dir)
            .map_err(|e| io_error(name, "list the opaque directory", e))?;
        let mut lower = Vec::new();
        for child in listing.iter() {
            let child = child.map_err(|e| io_error(name, "list the opaque directory", e))?;
            let child_name = child.file_name().to_bytes();
            if child_name == b"." || child_name == b".." {
                continue;
            }
            let mut path = prefix.clone();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(child_name);
            if !self.written.contains(&path) {
                lower.push(child_name.to_vec());
            }
        }
        drop(listing);
        let parent = self.open_parent(parents, name)?;
        let parent = parent
            .try_clone_to_owned()
            .map_err(|e| io_error(name, "open", e))?;
        for child in lower {
            remove_any(parent.as_fd(), &child[..])
                .map_err(|e| io_error(name, "empty the opaque directory", e))?;
        }
        self.forget_parent();
        Ok(())
    }

    fn count_owner(&mut self, mapped: bool) {
        if !mapped {
            self.summary.unmapped_owners += 1;
        }
    }

    fn set_xattrs(&mut self, fd: BorrowedFd<'_>, xattrs: &[(CString, Vec<u8>)]) {
        for (key, value) in xattrs {
            if crate::sys::set_xattr(fd, key, value).is_err() {
                self.summary.xattrs_skipped += 1;
            }
        }
    }

    /// Directory modes and times, last: entries written into a directory change its time, and a
    /// read-only mode would stop them (outside a user namespace's root).
    fn apply_deferred(&mut self) -> Result<(), ExtractError> {
        self.forget_parent();
        let deferred = std::mem::take(&mut self.deferred);
        for dir in deferred.iter().rev() {
            let fd = match open_confined(
                self.root.as_fd(),
                &dir.path,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            ) {
                Ok(fd) => fd,
                // Replaced or removed by a later entry.
                Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => continue,
                Err(e) => return Err(io_error(&dir.path, "open the directory", e)),
            };
            self.set_xattrs(fd.as_fd(), &dir.xattrs);
            fchmod(&fd, Mode::from_bits_truncate(dir.mode))
                .map_err(|e| io_error(&dir.path, "set the mode", e))?;
            futimens(&fd, &dir.mtime, &dir.mtime)
                .map_err(|e| io_error(&dir.path, "set the times", e))?;
        }
        Ok(())
    }
}

/// chown without following a symlink. Ok(false): the owner is not mapped in this user namespace, and
/// the entry stays owned by root inside.
fn set_owner(
    dir: BorrowedFd<'_>,
    last: &[u8],
    attributes: &Attributes,
    name: &[u8],
) -> Result<bool, ExtractError> {
    match fchownat(
        dir,
        last,
        Some(Uid::from_raw(attributes.uid)),
        Some(Gid::from_raw(attributes.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    ) {
        Ok(()) => Ok(true),
        Err(Errno::EINVAL) => Ok(false),
        Err(e) => Err(io_error(name, "set the owner", e)),
    }
}

fn parent_error(entry: &[u8], path: &[u8], e: Errno) -> ExtractError {
    let shown = String::from_utf8_lossy(path);
    match e {
        Errno::ELOOP | Errno::EXDEV => unsafe_entry(
            entry,
            format!("`{shown}` is a symlink, and an archive may not write through a symlink"),
        ),
        Errno::ENOTDIR => unsafe_entry(entry, format!("`{shown}` is not a directory")),
        e => io_error(entry, "open its directory", e),
    }
}

fn attributes_of<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Attributes> {
    let header = entry.header();
    let mode = header.mode()? & 0o7777;
    let id =
        |value: u64| u32::try_from(value).map_err(|_| io::Error::other("owner id out of range"));
    let uid = id(header.uid()?)?;
    let gid = id(header.gid()?)?;
    let mut mtime = TimeSpec::new(i64::try_from(header.mtime()?).unwrap_or(i64::MAX), 0);
    let mut xattrs = Vec::new();
    if let Some(records) = entry.pax_extensions()? {
        for record in records {
            let record = record?;
            let key = record.key_bytes();
            if key == b"mtime" {
                if let Some(time) = pax_time(record.value_bytes()) {
                    mtime = time;
                }
            } else if let Some(xattr) = key.strip_prefix(b"SCHILY.xattr.")
                && !xattr.starts_with(OVERLAY_XATTR_PREFIX)
                && let Ok(xattr) = CString::new(xattr)
            {
                xattrs.push((xattr, record.value_bytes().to_vec()));
            }
        }
    }
    Ok(Attributes {
        mode,
        uid,
        gid,
        mtime,
        xattrs,
    })
}

/// A pax time: decimal seconds with an optional fraction ("1700000000.25").
pub fn pax_time(value: &[u8]) -> Option<TimeSpec> {
    let text = std::str::from_utf8(value).ok()?;
    let (seconds, fraction) = text.split_once('.').unwrap_or((text, ""));
    let seconds: i64 = seconds.parse().ok()?;
    let digits: String = fraction.chars().take(9).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let nanos: i64 = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().ok()?
    };
    let nanos = if seconds < 0 { -nanos } else { nanos };
    Some(TimeSpec::new(seconds, nanos))
}

fn is_directory(dir: BorrowedFd<'_>, name: &[u8]) -> bool {
    fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok_and(|st: FileStat| {
        SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
    })
}

#[derive(Debug, PartialEq, Eq)]
enum Replaced {
    NonDirectory,
    Directory,
}

/// Removes `name` from `dir`, with everything below it if it is a directory; never follows symlinks.
fn remove_any(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Replaced> {
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) => return Ok(Replaced::NonDirectory),
        Err(Errno::EISDIR) => {}
        Err(e) => return Err(e.into()),
    }
    remove_tree(dir, name)?;
    Ok(Replaced::Directory)
}

/// Removes the directory `name` of `dir` and its contents.
pub fn remove_tree(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let child = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut listing = nix::dir::Dir::from_fd(child.try_clone()?)?;
    let names: Vec<Vec<u8>> = listing
        .iter()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_bytes().to_vec())
        .filter(|n| n != b"." && n != b"..")
        .collect();
    drop(listing);
    for entry in names {
        match unlinkat(&child, &entry[..], UnlinkatFlags::NoRemoveDir) {
            Ok(()) => {}
            Err(Errno::EISDIR) => remove_tree(child.as_fd(), &entry)?,
            Err(e) => return Err(e.into()),
        }
    }
    unlinkat(dir, name, UnlinkatFlags::RemoveDir)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_split_into_plain_components() {
        assert_eq!(
            entry_components(b"./usr//bin/ls").unwrap(),
            vec![&b"usr"[..], b"bin", b"ls"]
        );
        assert_eq!(entry_components(b"./").unwrap(), Vec::<&[u8]>::new());
        assert_eq!(entry_components(b"a/./b/").unwrap(), vec![&b"a"[..], b"b"]);
        assert_eq!(
            entry_components(b"..a/b..").unwrap(),
            vec![&b"..a"[..], b"b.."]
        );
    }

    #[test]
    fn absolute_names_are_refused() {
        assert!(entry_components(b"/etc/passwd").is_err());
    }

    #[test]
    fn dot_dot_components_are_refused() {
        for name in [&b"../x"[..], b"a/../../x", b"a/..", b"./.."] {
            assert!(
                entry_components(name).is_err(),
                "{}",
                String::from_utf8_lossy(name)
            );
        }
    }

    #[test]
    fn whiteouts_name_only_plain_entries() {
        assert_eq!(whiteout_of(b".wh..wh..opq"), Ok(Some(Whiteout::Opaque)));
        assert_eq!(
            whiteout_of(b".wh.passwd"),
            Ok(Some(Whiteout::Remove(b"passwd")))
        );
        assert_eq!(whiteout_of(b"passwd"), Ok(None));
        for bad in [&b".wh."[..], b".wh..", b".wh..."] {
            assert!(whiteout_of(bad).is_err());
        }
    }

    #[test]
    fn pax_times_keep_fractions() {
        assert_eq!(
            pax_time(b"1700000000"),
            Some(TimeSpec::new(1_700_000_000, 0))
        );
        assert_eq!(
            pax_time(b"1700000000.25"),
            Some(TimeSpec::new(1_700_000_000, 250_000_000))
        );
        assert_eq!(pax_time(b"12.3x"), None);
    }

    /// Raw tar building, so that tests can write what no well-behaved tar tool would.
    pub(crate) mod raw {
        pub struct Entry<'a> {
            pub name: &'a str,
            pub kind: u8,
            pub link: &'a str,
            pub mode: u32,
            pub uid: u32,
            pub gid: u32,
            pub data: &'a [u8],
        }

        /// An entry of `kind` owned by the caller.
        fn entry<'a>(
            name: &'a str,
            kind: u8,
            link: &'a str,
            mode: u32,
            data: &'a [u8],
        ) -> Entry<'a> {
            let (uid, gid) = ids();
            Entry {
                name,
                kind,
                link,
                mode,
                uid,
                gid,
                data,
            }
        }
        pub fn file<'a>(name: &'a str, data: &'a [u8]) -> Entry<'a> {
            entry(name, b'0', "", 0o644, data)
        }
        pub fn dir(name: &str) -> Entry<'_> {
            entry(name, b'5', "", 0o755, b"")
        }
        pub fn symlink<'a>(name: &'a str, target: &'a str) -> Entry<'a> {
            entry(name, b'2', target, 0o777, b"")
        }
        pub fn hard_link<'a>(name: &'a str, target: &'a str) -> Entry<'a> {
            entry(name, b'1', target, 0o644, b"")
        }

        /// The caller's own ids: tests also run unprivileged.
        pub fn ids() -> (u32, u32) {
            (
                nix::unistd::getuid().as_raw(),
                nix::unistd::getgid().as_raw(),
            )
        }

        fn octal(field: &mut [u8], value: u64) {
            let text = format!("{:0width$o}\0", value, width = field.len() - 1);
            field.copy_from_slice(text.as_bytes());
        }

        pub fn archive(entries: &[Entry<'_>]) -> Vec<u8> {
            let mut out = Vec::new();
            for e in entries {
                let mut h = [0u8; 512];
                h[..e.name.len()].copy_from_slice(e.name.as_bytes());
                octal(&mut h[100..108], u64::from(e.mode));
                octal(&mut h[108..116], u64::from(e.uid));
                octal(&mut h[116..124], u64::from(e.gid));
                octal(&mut h[124..136], e.data.len() as u64);
                octal(&mut h[136..148], 1_600_000_000);
                h[156] = e.kind;
                h[157..157 + e.link.len()].copy_from_slice(e.link.as_bytes());
                h[257..263].copy_from_slice(b"ustar\0");
                h[263..265].copy_from_slice(b"00");
                h[148..156].copy_from_slice(b"        ");
                let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
                octal(&mut h[148..155], u64::from(sum));
                out.extend_from_slice(&h);
                out.extend_from_slice(e.data);
                out.resize(out.len().div_ceil(512) * 512, 0);
            }
            out.resize(out.len() + 1024, 0);
            out
        }
    }

    use raw::*;
    use std::fs;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    use std::path::PathBuf;

    /// A scratch directory holding `target/` (extracted into) and `outside/` (which must stay as it is).
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("urt-extract-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(dir.join("target")).unwrap();
            fs::create_dir_all(dir.join("outside")).unwrap();
            fs::write(dir.join("outside/secret"), "untouched").unwrap();
            Scratch(dir)
        }
        fn target(&self) -> PathBuf {
            self.0.join("target")
        }
        fn outside(&self) -> PathBuf {
            self.0.join("outside")
        }
        fn extract(&self, layers: bool, archives: &[Vec<u8>]) -> Result<Summary, ExtractError> {
            let whiteouts = match layers {
                true => Whiteouts::Applied,
                false => Whiteouts::Plain,
            };
            self.extract_as(whiteouts, archives)
        }
        fn extract_as(
            &self,
            whiteouts: Whiteouts,
            archives: &[Vec<u8>],
        ) -> Result<Summary, ExtractError> {
            let mut extractor = Extractor::new(&self.target(), whiteouts).unwrap();
            for archive in archives {
                extractor.apply(&archive[..])?;
            }
            Ok(extractor.summary)
        }
        fn assert_outside_untouched(&self) {
            let names: Vec<_> = fs::read_dir(self.outside())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names, ["secret"]);
            assert_eq!(
                fs::read_to_string(self.outside().join("secret")).unwrap(),
                "untouched"
            );
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    mod adversarial {
        use super::*;
        use proptest::prelude::*;

        /// Names an attacker would use: a link's name and names below it, parents, absolute names,
        /// whiteouts, the directory next to the target. Few enough that a link and an entry that
        /// goes through it often meet in one archive.
        const NAMES: &[&str] = &[
            "a",
            "a/secret",
            "a/b/c",
            "b",
            "..",
            "../outside/x",
            "/abs",
            "./a/../b",
            ".wh.a",
            "a/.wh..wh..opq",
            "a/.wh.secret",
        ];
        /// Link targets that point outside, at the root, or at entries inside.
        const TARGETS: &[&str] = &["../outside", "../outside/secret", "/", "a", "a/b", ""];

        /// (kind, name, link target or content)
        fn entry() -> impl Strategy<Value = (u8, String, String)> {
            (
                prop::sample::select(&[b'0', b'5', b'2', b'1'][..]),
                prop::sample::select(NAMES),
                prop::sample::select(TARGETS),
            )
                .prop_map(|(kind, name, target)| (kind, name.to_string(), target.to_string()))
        }

        fn build(entries: &[(u8, String, String)]) -> Vec<u8> {
            let raw: Vec<Entry<'_>> = entries
                .iter()
                .map(|(kind, name, target)| match kind {
                    b'0' => file(name, target.as_bytes()),
                    b'5' => dir(name),
                    b'2' => symlink(name, target),
                    _ => hard_link(name, target),
                })
                .collect();
            archive(&raw)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(500))]

            /// Whatever an archive (or a damaged one) holds, extraction either succeeds or stops with
            /// an error, and nothing outside the target directory appears or changes.
            #[test]
            fn nothing_outside_the_target_is_written(
                layers in prop::collection::vec(prop::collection::vec(entry(), 1..8), 1..3),
                as_layers in any::<bool>(),
                damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
            ) {
                let s = Scratch::new("adversarial");
                let mut archives: Vec<Vec<u8>> = layers.iter().map(|l| build(l)).collect();
                for (at, byte) in damage {
                    let first = &mut archives[0];
                    let i = at.index(first.len());
                    first[i] = byte;
                }
                let _ = s.extract(as_layers, &archives);
                s.assert_outside_untouched();
                let mut beside: Vec<_> = fs::read_dir(&s.0)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect();
                beside.sort();
                prop_assert_eq!(beside, ["outside", "target"]);
            }
        }
    }

    fn refused(result: Result<Summary, ExtractError>) -> String {
        let err = result.expect_err("the archive must be refused");
        assert!(matches!(err.problem, Problem::Unsafe(_)), "{err}");
        err.to_string()
    }

    #[test]
    fn a_plain_archive_keeps_modes_times_links_and_fifos() {
        let s = Scratch::new("plain");
        let mut setuid = file("usr/bin/su", b"#!/bin/true\n");
        setuid.mode = 0o4755;
        let mut fifo = file("run/fifo", b"");
        fifo.kind = b'6';
        let mut device = file("dev/null", b"");
        device.kind = b'3';
        let mut readonly = dir("ro");
        readonly.mode = 0o555;
        let archive = archive(&[
            dir("./"),
            dir("usr/"),
            setuid,
            hard_link("usr/bin/su2", "usr/bin/su"),
            symlink("bin", "usr/bin"),
            readonly,
            file("ro/inside", b"x"),
            fifo,
            device,
        ]);
        let summary = s.extract(false, &[archive]).unwrap();
        let t = s.target();
        let su = fs::metadata(t.join("usr/bin/su")).unwrap();
        assert_eq!(su.permissions().mode() & 0o7777, 0o4755);
        assert_eq!(su.mtime(), 1_600_000_000);
        assert_eq!(fs::metadata(t.join("usr/bin/su2")).unwrap().ino(), su.ino());
        assert_eq!(
            fs::read_link(t.join("bin")).unwrap(),
            PathBuf::from("usr/bin")
        );
        assert_eq!(
            fs::metadata(t.join("ro")).unwrap().permissions().mode() & 0o7777,
            0o555
        );
        assert_eq!(fs::metadata(t.join("ro")).unwrap().mtime(), 1_600_000_000);
        assert!(
            fs::symlink_metadata(t.join("run/fifo"))
                .unwrap()
                .file_type()
                .is_fifo()
        );
        assert!(!t.join("dev/null").exists());
        assert_eq!(summary.devices_skipped, 1);
        assert_eq!(summary.bytes, 13);
        fs::set_permissions(t.join("ro"), fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn dot_dot_names_are_refused() {
        let s = Scratch::new("dotdot");
        let why = refused(s.extract(false, &[archive(&[file("../outside/secret", b"changed")])]));
        assert!(why.contains(".."), "{why}");
        s.assert_outside_untouched();
    }

    #[test]
    fn absolute_names_are_refused_by_the_extractor() {
        let s = Scratch::new("absolute");
        let name = format!("{}/outside/new", s.0.display());
        let why = refused(s.extract(false, &[archive(&[file(&name, b"x")])]));
        assert!(why.contains("absolute"), "{why}");
        s.assert_outside_untouched();
    }

    #[test]
    fn writing_through_a_symlink_is_refused() {
        let s = Scratch::new("symlink-write");
        let outside = s.outside();
        for target in [outside.to_str().unwrap(), "../outside"] {
            let why = refused(s.extract(
                false,
                &[archive(&[
                    symlink("escape", target),
                    file("escape/new", b"x"),
                ])],
            ));
            assert!(why.contains("symlink"), "{why}");
            s.assert_outside_untouched();
        }
    }

    #[test]
    fn a_file_replacing_a_symlink_does_not_follow_it() {
        let s = Scratch::new("symlink-replace");
        let secret = s.outside().join("secret");
        s.extract(
            false,
            &[archive(&[
                symlink("f", secret.to_str().unwrap()),
                file("f", b"mine"),
            ])],
        )
        .unwrap();
        assert_eq!(fs::read_to_string(s.target().join("f")).unwrap(), "mine");
        s.assert_outside_untouched();
    }

    #[test]
    fn hard_links_out_of_the_target_are_refused() {
        let s = Scratch::new("hardlink");
        let secret = s.outside().join("secret");
        let cases = [
            archive(&[hard_link("l", "../outside/secret")]),
            archive(&[hard_link("l", secret.to_str().unwrap())]),
            archive(&[symlink("up", ".."), hard_link("l", "up/outside/secret")]),
        ];
        for case in cases {
            let err = s.extract(false, &[case]).expect_err("must be refused");
            assert!(matches!(err.problem, Problem::Unsafe(_)), "{err}");
            assert!(!s.target().join("l").exists());
        }
        assert_eq!(fs::metadata(&secret).unwrap().nlink(), 1);
        s.assert_outside_untouched();
    }

    #[test]
    fn whiteouts_remove_lower_entries_and_opaque_directories_keep_their_own() {
        let s = Scratch::new("whiteout");
        let lower = archive(&[
            dir("etc/"),
            file("etc/passwd", b"root"),
            file("etc/motd", b"hi"),
            dir("opt/"),
            file("opt/old", b"old"),
            dir("var/"),
            dir("var/cache/"),
            file("var/cache/big", b"x"),
        ]);
        let upper = archive(&[
            file("etc/.wh.motd", b""),
            file("etc/new", b"new"),
            dir("opt/"),
            file("opt/fresh", b"fresh"),
            file("opt/.wh..wh..opq", b""),
            file("var/.wh.cache", b""),
        ]);
        s.extract(true, &[lower, upper]).unwrap();
        let t = s.target();
        assert!(!t.join("etc/motd").exists());
        assert!(!t.join("etc/.wh.motd").exists());
        assert_eq!(fs::read_to_string(t.join("etc/passwd")).unwrap(), "root");
        assert!(t.join("etc/new").exists());
        assert!(!t.join("opt/old").exists());
        assert!(
            t.join("opt/fresh").exists(),
            "this layer's entry survives its opaque marker"
        );
        assert!(!t.join("opt/.wh..wh..opq").exists());
        assert!(!t.join("var/cache").exists());
    }

    #[test]
    fn a_layer_of_its_own_records_whiteouts_as_overlayfs_does() {
        use std::os::unix::fs::FileTypeExt;
        let s = Scratch::new("recorded");
        let layer = archive(&[
            dir("etc/"),
            file("etc/.wh.motd", b""),
            file("etc/new", b"new"),
            // This layer's own entry wins over its whiteout, whichever comes first.
            file("etc/kept", b"kept"),
            file("etc/.wh.kept", b""),
            dir("opt/"),
            file("opt/fresh", b"fresh"),
            file("opt/.wh..wh..opq", b""),
        ]);
        s.extract_as(Whiteouts::Recorded, &[layer]).unwrap();
        let t = s.target();
        let motd = fs::symlink_metadata(t.join("etc/motd")).unwrap();
        assert!(motd.file_type().is_char_device(), "{motd:?}");
        assert_eq!(motd.rdev(), 0, "overlayfs's whiteout is the device 0:0");
        assert!(!t.join("etc/.wh.motd").exists());
        assert_eq!(fs::read_to_string(t.join("etc/kept")).unwrap(), "kept");
        assert_eq!(
            crate::sys::read_xattr(&t.join("opt"), c"user.overlay.opaque").as_deref(),
            Some(&b"y"[..])
        );
        assert!(t.join("opt/fresh").exists());
        assert!(!t.join("opt/.wh..wh..opq").exists());
        assert_eq!(
            crate::sys::read_xattr(&t.join("etc"), c"user.overlay.opaque"),
            None
        );
    }

    #[test]
    fn an_archive_cannot_set_overlayfs_attributes() {
        let s = Scratch::new("overlay-xattr");
        let mut builder = tar::Builder::new(Vec::new());
        builder
            .append_pax_extensions([
                ("SCHILY.xattr.user.overlay.redirect", &b"/etc"[..]),
                ("SCHILY.xattr.user.overlay.opaque", &b"y"[..]),
                ("SCHILY.xattr.user.urt", &b"kept"[..]),
            ])
            .unwrap();
        let mut header = tar::Header::new_ustar();
        header.set_size(0);
        header.set_mode(0o755);
        header.set_uid(u64::from(ids().0));
        header.set_gid(u64::from(ids().1));
        header.set_entry_type(tar::EntryType::Directory);
        builder.append_data(&mut header, "d", &b""[..]).unwrap();
        let archive = builder.into_inner().unwrap();
        let summary = s.extract_as(Whiteouts::Recorded, &[archive]).unwrap();
        let d = s.target().join("d");
        assert_eq!(crate::sys::read_xattr(&d, c"user.overlay.redirect"), None);
        assert_eq!(crate::sys::read_xattr(&d, c"user.overlay.opaque"), None);
        assert_eq!(
            crate::sys::read_xattr(&d, c"user.urt").as_deref(),
            Some(&b"kept"[..])
        );
        assert_eq!(summary.xattrs_skipped, 0, "left out on purpose, not failed");
    }

    #[test]
    fn whiteouts_cannot_climb_out() {
        let s = Scratch::new("whiteout-escape");
        let outside = s.outside();
        let cases = [
            archive(&[file(".wh...", b"")]),
            archive(&[file("../outside/.wh.secret", b"")]),
            archive(&[
                symlink("up", outside.to_str().unwrap()),
                file("up/.wh.secret", b""),
            ]),
            archive(&[
                symlink("up", outside.to_str().unwrap()),
                file("up/.wh..wh..opq", b""),
            ]),
        ];
        for case in cases {
            refused(s.extract(true, &[case]));
            s.assert_outside_untouched();
        }
    }

    #[test]
    fn whiteout_names_are_plain_files_in_a_tarball() {
        let s = Scratch::new("whiteout-tarball");
        s.extract(false, &[archive(&[file("a", b"1"), file(".wh.a", b"")])])
            .unwrap();
        assert!(s.target().join("a").exists());
        assert!(s.target().join(".wh.a").exists());
    }

    #[test]
    fn pax_xattrs_and_times_are_kept_where_the_filesystem_allows() {
        let s = Scratch::new("xattr");
        let mut builder = tar::Builder::new(Vec::new());
        builder
            .append_pax_extensions([
                ("SCHILY.xattr.user.urt", &b"kept"[..]),
                ("SCHILY.xattr.trusted.urt", &b"not for users"[..]),
                ("mtime", &b"1700000000.5"[..]),
            ])
            .unwrap();
        let mut header = tar::Header::new_ustar();
        header.set_size(2);
        header.set_mode(0o644);
        header.set_uid(u64::from(ids().0));
        header.set_gid(u64::from(ids().1));
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, "f", &b"hi"[..]).unwrap();
        let archive = builder.into_inner().unwrap();
        let summary = s.extract(false, &[archive]).unwrap();
        let path = s.target().join("f");
        assert_eq!(
            crate::sys::read_xattr(&path, c"user.urt").as_deref(),
            Some(&b"kept"[..])
        );
        let privileged = nix::unistd::geteuid().is_root();
        assert_eq!(summary.xattrs_skipped, if privileged { 0 } else { 1 });
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(
            (meta.mtime(), meta.mtime_nsec()),
            (1_700_000_000, 500_000_000)
        );
    }

    #[test]
    fn a_damaged_archive_is_reported_as_such() {
        let s = Scratch::new("damaged");
        let mut bytes = archive(&[file("a", b"hello")]);
        bytes[148] = b'9';
        let err = s.extract(false, &[bytes]).unwrap_err();
        assert!(matches!(err.problem, Problem::Archive(_)), "{err}");
    }
}
