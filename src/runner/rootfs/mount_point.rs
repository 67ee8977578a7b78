//! Mount points inside a root filesystem, resolved and made on descriptors. A path is resolved with
//! symlinks followed inside the root as the container will see them (openat2 RESOLVE_IN_ROOT): a link
//! in an image cannot lead a mount, or what is made for it, out of the image. What is missing is made
//! one component at a time, each by its name in the directory descriptor resolved before it, and the
//! mount goes onto the descriptor that results: no path is looked up twice.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{Mode, SFlag, fstatat, mkdirat};

use super::plan::MountPoint;
use crate::runner::error::RunError;

/// A root filesystem (or the host's "/"), opened once to resolve mount points in it.
pub struct Root {
    /// For messages only.
    pub path: PathBuf,
    pub dir: OwnedFd,
}

impl Root {
    pub fn open(path: &Path) -> Result<Root, RunError> {
        let dir = openat(
            nix::fcntl::AT_FDCWD,
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| RunError::sys(format!("cannot open {}", path.display()), e))?;
        Ok(Root {
            path: path.to_path_buf(),
            dir,
        })
    }

    /// Where `components` of a path inside are on the host, for messages.
    fn shown(&self, components: &[&OsStr]) -> String {
        let mut path = self.path.clone();
        path.extend(components);
        path.display().to_string()
    }
}

fn normal_components(inside: &Path) -> Vec<&OsStr> {
    inside
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name),
            _ => None,
        })
        .collect()
}

/// `components` of a path inside `root`, opened as an O_PATH descriptor with symlinks followed inside
/// the root; None when it does not exist.
fn open_in_root(root: &Root, components: &[&OsStr]) -> Result<Option<OwnedFd>, RunError> {
    let mut relative = PathBuf::from(".");
    relative.extend(components);
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match openat2(root.dir.as_fd(), &relative, how) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => Ok(None),
        Err(e) => Err(RunError::sys(
            format!(
                "cannot resolve {} in the root filesystem",
                root.shown(components)
            ),
            e,
        )),
    }
}

/// The kind of the entry `name` in `dir`, without following it; None when there is none.
fn kind_of(dir: BorrowedFd<'_>, name: &OsStr) -> Option<SFlag> {
    fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .ok()
        .map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT)
}

/// Whether an entry found to exist when we tried to make it was made meanwhile by another start on
/// the same root filesystem as what we wanted (a directory, or a regular file for a file mount point):
/// then it serves. Not a link: links are only ever followed by resolution in the root.
fn made_meanwhile(kind: Option<SFlag>, want_file: bool) -> bool {
    kind == Some(if want_file {
        SFlag::S_IFREG
    } else {
        SFlag::S_IFDIR
    })
}

/// A root filesystem we may not write to (another user's, read-only) cannot get the mount points it
/// lacks: say so, and what to do.
fn cannot_create(shown: &str, e: Errno) -> RunError {
    let error = RunError::sys(format!("cannot create {shown}"), std::io::Error::from(e));
    if !matches!(e, Errno::EACCES | Errno::EPERM | Errno::EROFS) {
        return error;
    }
    error.with_hint(
        "unshare-run creates the mount points a root filesystem lacks: create that one, make the \
         root filesystem writable for you, or add --ephemeral (missing mount points and every write \
         then go to a temporary overlay)",
    )
}

/// The mount point `inside` of `root` as a descriptor (O_PATH, or a file's own when it was just made
/// as one: see `make_entry`), made if missing: missing directories 0755, the last component as
/// `make` says. A dangling link where something must be made is an error;
/// None only for `MountPoint::OptionalFile` that cannot be made (see there).
pub fn mount_point(
    root: &Root,
    inside: &Path,
    make: MountPoint,
) -> Result<Option<OwnedFd>, RunError> {
    let components = normal_components(inside);
    // The longest part of the path that exists already.
    let mut existing = components.len();
    let mut dir = loop {
        match open_in_root(root, &components[..existing])? {
            Some(found) => break found,
            None if existing > 0 => existing -= 1,
            None => return Err(RunError::new(format!("{} is gone", root.path.display()))),
        }
    };
    if existing == components.len() {
        return Ok(Some(dir));
    }
    let optional = make == MountPoint::OptionalFile;
    if optional {
        // Nothing is made for an optional file whose directory is missing too.
        let in_a_directory = existing + 1 == components.len()
            && nix::sys::stat::fstat(dir.as_fd()).is_ok_and(|st| {
                SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
            });
        if !in_a_directory {
            return Ok(None);
        }
    }
    for index in existing..components.len() {
        let name = components[index];
        let last = index + 1 == components.len();
        let here = if last { make } else { MountPoint::Dir(0o755) };
        dir = match make_entry(dir.as_fd(), name, here) {
            Ok(made) => made,
            Err(e) => {
                let kind = kind_of(dir.as_fd(), name);
                let shown = || root.shown(&components[..=index]);
                let want_file = !matches!(here, MountPoint::Dir(_));
                if e == Errno::EEXIST && made_meanwhile(kind, want_file) {
                    // Made by another start meanwhile: it serves.
                    let mut flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
                    if !last {
                        flags |= OFlag::O_DIRECTORY;
                    }
                    openat(dir.as_fd(), name, flags, Mode::empty())
                        .map_err(|e| RunError::sys(format!("cannot open {}", shown()), e))?
                } else if kind == Some(SFlag::S_IFLNK) {
                    if optional {
                        return Ok(None);
                    }
                    return Err(RunError::new(format!(
                        "cannot make the mount point {}: {} is a symbolic link to nothing in the \
                         root filesystem",
                        inside.display(),
                        shown()
                    )));
                } else {
                    return Err(cannot_create(&shown(), e));
                }
            }
        };
    }
    Ok(Some(dir))
}

/// Makes `name` in `dir` as `make` says and returns its descriptor: an O_PATH one for a directory,
/// the new file's own for a file. Fails if `name` exists.
pub fn make_entry(dir: BorrowedFd<'_>, name: &OsStr, make: MountPoint) -> Result<OwnedFd, Errno> {
    match make {
        MountPoint::Dir(mode) => {
            mkdirat(dir, name, Mode::from_bits_truncate(mode as libc::mode_t))?;
            openat(
                dir,
                name,
                OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
        }
        MountPoint::File | MountPoint::OptionalFile => openat(
            dir,
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o666),
        ),
    }
}

/// The directory `inside` of `root`, which must exist (one this set-up has just mounted).
pub fn existing_dir(root: &Root, inside: &Path) -> Result<OwnedFd, RunError> {
    let components = normal_components(inside);
    open_in_root(root, &components)?
        .ok_or_else(|| RunError::new(format!("{} is missing", root.shown(&components))))
}

/// Whether `inside` exists in `root` (symlinks followed inside it).
pub fn exists(root: &Root, inside: &Path) -> Result<bool, RunError> {
    open_in_root(root, &normal_components(inside)).map(|found| found.is_some())
}

/// The file `inside` of `root`, opened for reading with symlinks followed inside the root, never
/// blocking (a FIFO there could otherwise stall the start); None when it does not exist.
pub fn open_for_reading(root: &Root, inside: &Path) -> Result<Option<std::fs::File>, RunError> {
    let components = normal_components(inside);
    let mut relative = PathBuf::from(".");
    relative.extend(&components);
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match openat2(root.dir.as_fd(), &relative, how) {
        Ok(fd) => Ok(Some(std::fs::File::from(fd))),
        Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => Ok(None),
        Err(e) => Err(RunError::sys(
            format!("cannot read {}", root.shown(&components)),
            e,
        )),
    }
}

/// Why an entry could not be made in a directory of `root`.
pub fn cannot_make(root: &Root, inside: &Path, e: Errno) -> RunError {
    cannot_create(&root.shown(&normal_components(inside)), e)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("urt-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The host path a descriptor refers to (for the test's checks only).
    fn where_is(fd: &OwnedFd) -> PathBuf {
        use std::os::fd::AsRawFd;
        std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap()
    }

    #[test]
    fn an_entry_made_meanwhile_serves_only_if_it_is_of_the_wanted_kind() {
        assert!(made_meanwhile(Some(SFlag::S_IFDIR), false));
        assert!(made_meanwhile(Some(SFlag::S_IFREG), true));
        assert!(!made_meanwhile(Some(SFlag::S_IFDIR), true));
        assert!(!made_meanwhile(Some(SFlag::S_IFREG), false));
        assert!(!made_meanwhile(Some(SFlag::S_IFLNK), false));
        assert!(!made_meanwhile(Some(SFlag::S_IFLNK), true));
        assert!(!made_meanwhile(None, false));
    }

    #[test]
    fn missing_mount_points_are_made_inside_the_root_through_its_links() {
        let scratch = Scratch::new("mount-point");
        let root_path = scratch.0.join("root");
        let outside = scratch.0.join("outside");
        std::fs::create_dir_all(root_path.join("data")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        // An absolute link means the container's /data, not the host's.
        std::os::unix::fs::symlink("/data", root_path.join("in")).unwrap();
        std::os::unix::fs::symlink(&outside, root_path.join("out")).unwrap();
        let root = Root::open(&root_path).unwrap();
        let made = mount_point(&root, Path::new("/in/a/b"), MountPoint::Dir(0o755))
            .unwrap()
            .unwrap();
        assert_eq!(where_is(&made), root_path.join("data/a/b"));
        assert!(root_path.join("data/a/b").is_dir());
        let file = mount_point(&root, Path::new("/in/f"), MountPoint::File)
            .unwrap()
            .unwrap();
        assert_eq!(where_is(&file), root_path.join("data/f"));
        assert!(root_path.join("data/f").is_file());
        // Existing: the same entry, nothing made.
        let again = mount_point(&root, Path::new("/data/a"), MountPoint::File)
            .unwrap()
            .unwrap();
        assert_eq!(where_is(&again), root_path.join("data/a"));
        // A link to the host's directory leads nowhere inside: an error, and nothing made outside.
        let error = mount_point(&root, Path::new("/out/t"), MountPoint::Dir(0o755)).unwrap_err();
        assert!(
            error.message.contains("is a symbolic link to nothing"),
            "{}",
            error.message
        );
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }

    #[test]
    fn an_optional_file_is_made_only_where_its_directory_exists() {
        let scratch = Scratch::new("optional-file");
        let root_path = scratch.0.clone();
        std::fs::create_dir_all(root_path.join("etc")).unwrap();
        std::os::unix::fs::symlink("/run/stub", root_path.join("etc/resolv.conf")).unwrap();
        let root = Root::open(&root_path).unwrap();
        let optional =
            |inside: &str| mount_point(&root, Path::new(inside), MountPoint::OptionalFile);
        assert!(
            optional("/etc/resolv.conf").unwrap().is_none(),
            "dangling link"
        );
        assert!(
            optional("/missing/hosts").unwrap().is_none(),
            "no directory"
        );
        assert!(optional("/etc/hosts").unwrap().is_some());
        assert!(root_path.join("etc/hosts").is_file());
        assert!(!root_path.join("missing").exists());
        assert!(!root_path.join("run").exists());
    }

    #[test]
    fn files_are_read_through_the_roots_links_never_the_hosts() {
        let scratch = Scratch::new("read-in-root");
        let root_path = scratch.0.join("root");
        std::fs::create_dir_all(root_path.join("etc")).unwrap();
        std::fs::write(root_path.join("etc/real"), "inside\n").unwrap();
        std::fs::write(scratch.0.join("secret"), "outside\n").unwrap();
        std::os::unix::fs::symlink("/etc/real", root_path.join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink(scratch.0.join("secret"), root_path.join("etc/group")).unwrap();
        let root = Root::open(&root_path).unwrap();
        let read = |inside: &str| {
            open_for_reading(&root, Path::new(inside))
                .unwrap()
                .map(|mut f| {
                    let mut text = String::new();
                    std::io::Read::read_to_string(&mut f, &mut text).unwrap();
                    text
                })
        };
        assert_eq!(read("/etc/passwd").as_deref(), Some("inside\n"));
        // The absolute link means the root's own path, which does not exist.
        assert_eq!(read("/etc/group"), None);
        assert_eq!(read("/missing/file"), None);
        assert!(exists(&root, Path::new("/etc/real")).unwrap());
        assert!(!exists(&root, Path::new("/etc/group")).unwrap());
    }

    #[test]
    fn entries_are_made_by_name_in_a_directory_and_never_over_something() {
        let scratch = Scratch::new("make-entry");
        std::fs::create_dir_all(scratch.0.join("dev")).unwrap();
        let root = Root::open(&scratch.0).unwrap();
        let dev = existing_dir(&root, Path::new("/dev")).unwrap();
        let pts = make_entry(dev.as_fd(), OsStr::new("pts"), MountPoint::Dir(0o755)).unwrap();
        assert_eq!(where_is(&pts), scratch.0.join("dev/pts"));
        let null = make_entry(dev.as_fd(), OsStr::new("null"), MountPoint::File).unwrap();
        assert_eq!(where_is(&null), scratch.0.join("dev/null"));
        assert_eq!(
            make_entry(dev.as_fd(), OsStr::new("null"), MountPoint::File).unwrap_err(),
            Errno::EEXIST
        );
        assert!(existing_dir(&root, Path::new("/nodir")).is_err());
    }
}
