//! The container's filesystem, set up by PID 1 in its new mount namespace.
//!
//! Host mode keeps the host's tree and only mounts a /proc for the new pid namespace. With a root
//! filesystem: fresh /proc, a /dev with bound host devices and its own devpts, /sys, a 1777 /tmp, the
//! host's resolver files (shared network), the user's mounts, then pivot_root (or MS_MOVE + chroot where
//! pivot_root is impossible), and the old root is detached. Mount points in a root filesystem are
//! resolved inside it (`mount_point`): an image's symlinks lead them where the container will see
//! them, never to the host.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use super::cli::NetMode;
use super::container::ContainerSpec;
use super::error::RunError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bind {
    pub source: PathBuf,
    /// Absolute, inside the container.
    pub target: PathBuf,
    pub read_only: bool,
}

/// Where the container's writes go when they must not reach the root filesystem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Overlay {
    /// A tmpfs: gone with the container.
    Ephemeral,
    /// DIR/upper and DIR/work (created if missing): kept for later runs.
    Persistent(PathBuf),
}

/// Host devices bound into the container's /dev (mknod is impossible in a user namespace).
const HOST_DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

fn mount_error(what: &str, target: &Path, e: nix::Error) -> RunError {
    RunError::sys(format!("cannot mount {what} on {}", target.display()), e)
}

fn mount_fs(
    fstype: &str,
    target: &Path,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), RunError> {
    log::debug!(
        "mount {fstype} on {} ({flags:?}{})",
        target.display(),
        data.map(|d| format!(", {d}")).unwrap_or_default()
    );
    mount(Some(fstype), target, Some(fstype), flags, data)
        .map_err(|e| mount_error(fstype, target, e))
}

fn bind(source: &Path, target: &Path, flags: MsFlags) -> Result<(), RunError> {
    log::debug!(
        "bind {} to {} ({:?})",
        source.display(),
        target.display(),
        MsFlags::MS_BIND | flags
    );
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | flags,
        None::<&str>,
    )
    .map_err(|e| {
        RunError::sys(
            format!("cannot bind {} to {}", source.display(), target.display()),
            e,
        )
    })
}

fn remount_read_only(target: &Path) -> Result<(), RunError> {
    let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
    // A remount must repeat the locked flags of the mount (nosuid, nodev, noexec) or fail with EPERM.
    let locked = nix::sys::statvfs::statvfs(target)
        .map(|v| {
            let f = v.flags();
            let mut m = MsFlags::empty();
            for (vf, mf) in [
                (nix::sys::statvfs::FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
                (nix::sys::statvfs::FsFlags::ST_NODEV, MsFlags::MS_NODEV),
                (nix::sys::statvfs::FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
            ] {
                if f.contains(vf) {
                    m |= mf;
                }
            }
            m
        })
        .unwrap_or(MsFlags::empty());
    log::debug!(
        "remount {} read-only ({:?})",
        target.display(),
        flags | locked
    );
    mount(
        None::<&str>,
        target,
        None::<&str>,
        flags | locked,
        None::<&str>,
    )
    .map_err(|e| RunError::sys(format!("cannot make {} read-only", target.display()), e))
}

fn mkdir_all(path: &Path, mode: u32) -> Result<(), RunError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(|e| RunError::sys(format!("cannot create {}", path.display()), e))
}

/// A root filesystem we may not write to (another user's, read-only) cannot get the mount points it
/// lacks: say so, and what to do.
fn cannot_create_mount_point(path: &Path, e: std::io::Error) -> RunError {
    let denied = matches!(
        e.raw_os_error(),
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS)
    );
    let error = RunError::sys(format!("cannot create {}", path.display()), e);
    if !denied {
        return error;
    }
    error.with_hint(
        "unshare-run creates the mount points a root filesystem lacks: create that one, make the \
         root filesystem writable for you, or add --ephemeral (missing mount points and every write \
         then go to a temporary overlay)",
    )
}

/// What a missing mount point is made as.
#[derive(Clone, Copy)]
enum Make {
    Dir(u32),
    File,
}

impl Make {
    /// A mount point of the same kind as the host path `source` (a directory or a file).
    fn like(source: &Path) -> Make {
        if source.is_dir() {
            Make::Dir(0o755)
        } else {
            Make::File
        }
    }
}

/// A root filesystem (or the host's "/"), opened once to resolve mount points in it.
struct Root<'a> {
    path: &'a Path,
    dir: fs::File,
}

impl Root<'_> {
    fn open(path: &Path) -> Result<Root<'_>, RunError> {
        let dir = fs::File::open(path)
            .map_err(|e| RunError::sys(format!("cannot open {}", path.display()), e))?;
        Ok(Root { path, dir })
    }
}

/// The path `inside` names in the root filesystem `root`, with symlinks followed inside `root` as the
/// container will see them (RESOLVE_IN_ROOT): a link in an image cannot lead a mount, or what is made
/// for it, out of the image. Returned as the host path of what it resolves to (no symlinks left in
/// it); None when it does not exist.
fn existing_in_root(root: &Root<'_>, inside: &Path) -> Result<Option<PathBuf>, RunError> {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
    let relative = Path::new(".").join(inside.strip_prefix("/").unwrap_or(inside));
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match openat2(&root.dir, &relative, how) {
        Ok(fd) => {
            use std::os::fd::AsRawFd;
            fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                .map(Some)
                .map_err(|e| RunError::sys(format!("cannot resolve {}", inside.display()), e))
        }
        Err(nix::Error::ENOENT) | Err(nix::Error::ENOTDIR) => Ok(None),
        Err(e) => Err(RunError::sys(
            format!(
                "cannot resolve {} in {}",
                inside.display(),
                root.path.display()
            ),
            e,
        )),
    }
}

/// Whether `path`, found to exist when we tried to make it, was made meanwhile by another start on
/// the same root filesystem as what we wanted (a directory, or a regular file for a file mount point):
/// then it serves. Not a link: links are only ever followed by resolution in the root.
fn made_meanwhile(path: &Path, want_file: bool) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| {
        if want_file {
            m.file_type().is_file()
        } else {
            m.file_type().is_dir()
        }
    })
}

/// The host path of the mount point `inside` of `root` (see `existing_in_root`), made if missing:
/// missing directories 0755, the last component as `make` says. Only components that did not exist
/// are made, each by its own name in a directory already resolved, so nothing is made through a
/// link; a dangling link where something must be made is an error (EEXIST).
fn mount_point(root: &Root<'_>, inside: &Path, make: Make) -> Result<PathBuf, RunError> {
    let components: Vec<&std::ffi::OsStr> = inside
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(name) => Some(name),
            _ => None,
        })
        .collect();
    // The longest part of the path that exists already.
    let mut existing = components.len();
    let mut base = loop {
        let prefix: PathBuf = components[..existing].iter().collect();
        match existing_in_root(root, &prefix)? {
            Some(found) => break found,
            None if existing > 0 => existing -= 1,
            None => return Err(RunError::new(format!("{} is gone", root.path.display()))),
        }
    };
    for (index, name) in components.iter().enumerate().skip(existing) {
        base.push(name);
        // Parents are directories; the last component is what `make` says.
        let here = if index + 1 == components.len() {
            make
        } else {
            Make::Dir(0o755)
        };
        let want_file = matches!(here, Make::File);
        let made = match here {
            Make::File => fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&base)
                .map(drop),
            Make::Dir(mode) => fs::DirBuilder::new().mode(mode).create(&base),
        };
        if let Err(e) = made {
            if e.kind() == std::io::ErrorKind::AlreadyExists && made_meanwhile(&base, want_file) {
                continue;
            }
            let dangling = fs::symlink_metadata(&base).is_ok_and(|m| m.file_type().is_symlink());
            if dangling {
                return Err(RunError::new(format!(
                    "cannot make the mount point {}: {} is a symbolic link to nothing in the root \
                     filesystem",
                    inside.display(),
                    base.display()
                )));
            }
            return Err(cannot_create_mount_point(&base, e));
        }
    }
    Ok(base)
}

/// No mount event may pass between the host and the container. (Created from a user namespace, this
/// mount namespace already holds the host's shared mounts as slaves, so nothing can reach the host;
/// private also keeps the host's new mounts out.) In a chroot whose root is not a mount point, "/"
/// cannot be named, so each mount visible from the chroot is made private instead.
fn make_mounts_private() -> Result<(), RunError> {
    let private = |target: &Path| {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
    };
    match private(Path::new("/")) {
        Ok(()) => Ok(()),
        Err(nix::Error::EINVAL) => {
            let mountinfo = fs::read_to_string("/proc/self/mountinfo")
                .map_err(|e| RunError::sys("cannot read /proc/self/mountinfo", e))?;
            for mount_point in visible_mount_points(&mountinfo) {
                private(&mount_point).map_err(|e| {
                    RunError::sys(format!("cannot make {} private", mount_point.display()), e)
                })?;
            }
            Ok(())
        }
        Err(e) => Err(RunError::sys("cannot make the mount namespace private", e)),
    }
}

/// The mount points of a mountinfo text (field 5, octal escapes decoded), outermost first.
fn visible_mount_points(mountinfo: &str) -> Vec<PathBuf> {
    let mut points: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .collect();
    points.sort_by_key(|p| p.components().count());
    points.dedup();
    points
}

/// mountinfo writes space, tab, newline and backslash as \ooo.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'\\')
            .then(|| bytes.get(i + 1..i + 4))
            .flatten()
            .filter(|digits| digits.iter().all(|b| (b'0'..=b'7').contains(b)))
            .map(|d| d.iter().fold(0u32, |v, b| v * 8 + u32::from(b - b'0')))
            .and_then(|v| u8::try_from(v).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn setup(spec: &ContainerSpec) -> Result<(), RunError> {
    make_mounts_private()?;
    match &spec.rootfs {
        None => setup_host_mode(spec),
        Some(root) => setup_root(spec, root),
    }
}

fn setup_host_mode(spec: &ContainerSpec) -> Result<(), RunError> {
    mount_fs(
        "proc",
        Path::new("/proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None,
    )?;
    let root = Root::open(Path::new("/"))?;
    network_files(spec, &root)?;
    user_mounts(spec, &root)
}

fn setup_root(spec: &ContainerSpec, root: &Path) -> Result<(), RunError> {
    let merged;
    let root = match &spec.overlay {
        None => root,
        Some(overlay) => {
            merged = mount_overlay(root, overlay)?;
            merged.as_path()
        }
    };
    // pivot_root needs the new root to be a mount point.
    bind(root, root, MsFlags::MS_REC)?;
    let tree = Root::open(root)?;
    let proc = mount_point(&tree, Path::new("/proc"), Make::Dir(0o555))?;
    mount_fs(
        "proc",
        &proc,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None,
    )?;
    setup_dev(
        &mount_point(&tree, Path::new("/dev"), Make::Dir(0o755))?,
        spec.setgroups_allowed,
    )?;
    setup_sys(
        &mount_point(&tree, Path::new("/sys"), Make::Dir(0o555))?,
        spec.net,
    )?;
    let tmp = mount_point(&tree, Path::new("/tmp"), Make::Dir(0o1777))?;
    mount_fs(
        "tmpfs",
        &tmp,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777"),
    )?;
    network_files(spec, &tree)?;
    user_mounts(spec, &tree)?;
    // Last: the mount points above had to be made in it first.
    if spec.read_only_root {
        remount_read_only(root)?;
    }
    enter_root(root)
}

/// Mounts an overlay with `lower` as its read-only layer; returns where the merged tree is. The lower
/// directory is named through a descriptor opened before anything is mounted over its path.
fn mount_overlay(lower: &Path, overlay: &Overlay) -> Result<PathBuf, RunError> {
    use std::os::fd::AsRawFd;
    let open_dir = |path: &Path| {
        fs::File::open(path)
            .map_err(|e| RunError::sys(format!("cannot open {}", path.display()), e))
    };
    let lower_fd = open_dir(lower)?;
    let (upper_base, target) = match overlay {
        Overlay::Ephemeral => {
            // The tmpfs goes over the root filesystem's own path: nothing else needs a mount point.
            mount_fs(
                "tmpfs",
                lower,
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some("mode=0755"),
            )?;
            let merged = lower.join("merged");
            mkdir_all(&merged, 0o755)?;
            (lower.to_path_buf(), merged)
        }
        Overlay::Persistent(dir) => (dir.clone(), lower.to_path_buf()),
    };
    let upper = upper_base.join("upper");
    let work = upper_base.join("work");
    if !upper.is_dir() {
        // The upper directory's root becomes the container's /: same owner and mode as the image's.
        mkdir_all(&upper, 0o755)?;
        let meta = lower_fd
            .metadata()
            .map_err(|e| RunError::sys(format!("cannot read {}", lower.display()), e))?;
        use std::os::unix::fs::MetadataExt;
        let _ = std::os::unix::fs::chown(&upper, Some(meta.uid()), Some(meta.gid()));
        let _ = fs::set_permissions(&upper, fs::Permissions::from_mode(meta.mode() & 0o7777));
    }
    mkdir_all(&work, 0o700)?;
    let upper_fd = open_dir(&upper)?;
    let work_fd = open_dir(&work)?;
    let options = format!(
        "lowerdir=/proc/self/fd/{},upperdir=/proc/self/fd/{},workdir=/proc/self/fd/{},userxattr",
        lower_fd.as_raw_fd(),
        upper_fd.as_raw_fd(),
        work_fd.as_raw_fd()
    );
    mount(
        Some("overlay"),
        &target,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .map_err(|e| {
        RunError::sys(format!("cannot mount an overlay on {}", lower.display()), e).with_hint(
            "the overlay directory must be on a filesystem that supports overlayfs upper layers \
             (not another overlay or NFS)",
        )
    })?;
    Ok(target)
}

fn setup_dev(dev: &Path, gid5_mapped: bool) -> Result<(), RunError> {
    mount_fs(
        "tmpfs",
        dev,
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("mode=0755"),
    )?;
    for name in HOST_DEVICES {
        let host = Path::new("/dev").join(name);
        if !host.exists() {
            continue;
        }
        let target = dev.join(name);
        fs::File::create(&target)
            .map_err(|e| RunError::sys(format!("cannot create {}", target.display()), e))?;
        bind(&host, &target, MsFlags::empty())?;
    }
    let pts = dev.join("pts");
    mkdir_all(&pts, 0o755)?;
    // gid=5 (tty) is valid only when gid 5 is mapped, i.e. with the full map.
    let with_tty_group = "newinstance,ptmxmode=0666,mode=0620,gid=5";
    let plain = "newinstance,ptmxmode=0666,mode=0620";
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    if !gid5_mapped
        || mount(
            Some("devpts"),
            &pts,
            Some("devpts"),
            flags,
            Some(with_tty_group),
        )
        .is_err()
    {
        mount_fs("devpts", &pts, flags, Some(plain))?;
    }
    let link = |target: &str, name: &str| {
        std::os::unix::fs::symlink(target, dev.join(name))
            .map_err(|e| RunError::sys(format!("cannot create /dev/{name}"), e))
    };
    link("pts/ptmx", "ptmx")?;
    link("/proc/self/fd", "fd")?;
    link("/proc/self/fd/0", "stdin")?;
    link("/proc/self/fd/1", "stdout")?;
    link("/proc/self/fd/2", "stderr")?;
    let shm = dev.join("shm");
    mkdir_all(&shm, 0o1777)?;
    mount_fs(
        "tmpfs",
        &shm,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777"),
    )
}

fn setup_sys(sys: &Path, net: NetMode) -> Result<(), RunError> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY;
    // sysfs may be mounted only by the owner of the current network namespace.
    if net == NetMode::None && mount_fs("sysfs", sys, flags, None).is_ok() {
        return Ok(());
    }
    bind(Path::new("/sys"), sys, MsFlags::MS_REC)?;
    remount_read_only(sys)
}

/// /etc/resolv.conf and /etc/hosts: the files generated for this container (pasta's DNS, the
/// container's hostname), else, with the host's network, the host's own. Read-only. The generated
/// files are removed once bound (the mounts keep them).
fn network_files(spec: &ContainerSpec, root: &Root<'_>) -> Result<(), RunError> {
    let generated = spec.generated.as_ref();
    for (name, made) in [
        (
            "/etc/resolv.conf",
            generated.and_then(|g| g.resolv_conf.as_deref()),
        ),
        ("/etc/hosts", generated.map(|g| g.hosts.as_path())),
    ] {
        let host = Path::new(name);
        let source = match made {
            Some(path) => path,
            None if spec.net == NetMode::Host && host.is_file() => host,
            None => continue,
        };
        // Bound over the file the container's path resolves to; made when missing, unless its
        // directory is missing too or the name is a link to nothing (e.g. to systemd-resolved's
        // stub, which the image lacks): then the container keeps what it has.
        let target = match existing_in_root(root, host)? {
            Some(target) => target,
            None => {
                let parent = host.parent().unwrap_or(Path::new("/"));
                if !existing_in_root(root, parent)?.is_some_and(|p| p.is_dir()) {
                    continue;
                }
                match mount_point(root, host, Make::File) {
                    Ok(target) => target,
                    Err(_) if dangling_link(root, host)? => continue,
                    Err(e) => return Err(e),
                }
            }
        };
        bind(source, &target, MsFlags::empty())?;
        remount_read_only(&target)?;
    }
    if let Some(g) = generated {
        let _ = fs::remove_dir_all(&g.dir);
    }
    Ok(())
}

/// Whether `inside` of `root` is a symlink whose target does not exist (in the root).
fn dangling_link(root: &Root<'_>, inside: &Path) -> Result<bool, RunError> {
    let parent = inside.parent().unwrap_or(Path::new("/"));
    let (Some(dir), Some(name)) = (existing_in_root(root, parent)?, inside.file_name()) else {
        return Ok(false);
    };
    Ok(fs::symlink_metadata(dir.join(name)).is_ok_and(|m| m.file_type().is_symlink()))
}

fn user_mounts(spec: &ContainerSpec, root: &Root<'_>) -> Result<(), RunError> {
    for b in &spec.binds {
        let target = mount_point(root, &b.target, Make::like(&b.source))?;
        bind(&b.source, &target, MsFlags::MS_REC)?;
        if b.read_only {
            remount_read_only(&target)?;
        }
    }
    for dir in &spec.tmpfs {
        let target = mount_point(root, dir, Make::Dir(0o755))?;
        // The mode is the mount's own: nothing is changed after the mount (a --bind at the same
        // place would pass a chmod on to the host's directory).
        let mode = if dir == Path::new("/tmp") {
            "mode=1777"
        } else {
            "mode=0755"
        };
        mount_fs(
            "tmpfs",
            &target,
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(mode),
        )?;
    }
    Ok(())
}

/// pivot_root into `root` and detach the old root; MS_MOVE + chroot where pivot_root is refused
/// (a root on the initramfs).
fn enter_root(root: &Path) -> Result<(), RunError> {
    std::env::set_current_dir(root)
        .map_err(|e| RunError::sys(format!("cannot enter {}", root.display()), e))?;
    match nix::unistd::pivot_root(".", ".") {
        Ok(()) => {
            log::debug!("pivot_root into {}, old root detached", root.display());
            // The old root is stacked under the new one at "/": detach it.
            umount2(".", MntFlags::MNT_DETACH)
                .map_err(|e| RunError::sys("cannot detach the old root", e))?;
        }
        Err(nix::Error::EINVAL) => {
            log::debug!(
                "pivot_root refused (EINVAL): {} moved to / and chrooted into",
                root.display()
            );
            mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
                .map_err(|e| RunError::sys("cannot move the root filesystem to /", e))?;
            nix::unistd::chroot(".").map_err(|e| RunError::sys("chroot", e))?;
        }
        Err(e) => {
            return Err(RunError::sys(
                format!("cannot pivot_root into {}", root.display()),
                e,
            ));
        }
    }
    std::env::set_current_dir("/").map_err(|e| RunError::sys("chdir /", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{made_meanwhile, unescape_mountinfo, visible_mount_points};

    #[test]
    fn a_mount_point_made_meanwhile_serves_only_if_it_is_of_the_wanted_kind() {
        let dir = std::env::temp_dir().join(format!("urt-made-meanwhile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("d")).unwrap();
        std::fs::write(dir.join("f"), "").unwrap();
        std::os::unix::fs::symlink("d", dir.join("link-to-d")).unwrap();
        std::os::unix::fs::symlink("f", dir.join("link-to-f")).unwrap();
        assert!(made_meanwhile(&dir.join("d"), false));
        assert!(made_meanwhile(&dir.join("f"), true));
        assert!(!made_meanwhile(&dir.join("d"), true));
        assert!(!made_meanwhile(&dir.join("f"), false));
        assert!(!made_meanwhile(&dir.join("link-to-d"), false));
        assert!(!made_meanwhile(&dir.join("link-to-f"), true));
        assert!(!made_meanwhile(&dir.join("missing"), false));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn mountinfo_mount_points_are_decoded_outermost_first() {
        let info = "36 35 98:0 /mnt1 /mnt/with\\040space rw - ext3 /dev/root rw\n\
                    30 1 8:1 / / rw - ext4 /dev/vda rw\n\
                    40 30 0:5 / /proc rw - proc proc rw\n";
        let points = visible_mount_points(info);
        assert_eq!(points[0], std::path::Path::new("/"));
        assert!(points.contains(&"/mnt/with space".into()));
        assert_eq!(unescape_mountinfo("a\\134b\\011"), "a\\b\t");
        assert_eq!(unescape_mountinfo("odd\\9"), "odd\\9");
        assert_eq!(unescape_mountinfo("big\\777"), "big\\777");
    }
}
