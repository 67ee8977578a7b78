//! The container's filesystem, set up by PID 1 in its new mount namespace.
//!
//! `plan` lists the mounts (pure, unit-tested): in host mode a /proc for the new pid namespace, the
//! resolver files and the user's mounts on the host's tree; with a root filesystem also a fresh /dev,
//! /sys and /tmp. Here the root filesystem becomes a mount point (under an overlay when asked), the
//! plan is applied on descriptors of mount points resolved inside it (`mount_point`), and PID 1
//! switches into it: pivot_root, or MS_MOVE + chroot where pivot_root is impossible; the old root is
//! detached.

mod mount_point;
mod plan;

use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use super::error::RunError;
use super::lent_overlay;
use super::spec::{ContainerSpec, Overlay};
use super::users::{self, Account};
use crate::runner::confinement::paths::Kind;
use crate::sys::mount as new_mount;
use mount_point::Root;
use plan::{Attrs, Covering, Entry, Host, MountPoint, Source, Step};

/// Sets up the container's filesystem; `lent` is the holder's overlay of a pulled image
/// (`overlay_request`), if it lent one.
pub fn setup(spec: &ContainerSpec, lent: Option<&OwnedFd>) -> Result<(), RunError> {
    make_mounts_private()?;
    let steps = plan::plan(spec, &Host::probe());
    match &spec.rootfs {
        None => {
            let result = apply(&Root::open(Path::new("/"))?, &steps);
            remove_generated(spec);
            result
        }
        Some(root) => setup_root(spec, root, &steps, lent),
    }
}

/// What to ask the holder for: the overlay of `spec`'s pulled image (`lent_overlay`), which it
/// makes only for a container that holds the image's upper layer.
pub fn overlay_request(spec: &ContainerSpec) -> Option<lent_overlay::Request> {
    let image = spec.layered.as_ref().filter(|_| spec.rootfs.is_some())?;
    lent_overlay::Request::for_image(&image.upper, &image.work, &image.layers, spec.upper_claimed)
}

/// Bound by now (the mounts keep them) or never to be: the generated files are not needed. Removed
/// while the host's paths can still be named, before the switch into the root filesystem; a start
/// killed before this leaves them to the next one (`network::generate_files`).
fn remove_generated(spec: &ContainerSpec) {
    if let Some(g) = &spec.generated {
        let _ = fs::remove_dir_all(&g.dir);
    }
}

fn setup_root(
    spec: &ContainerSpec,
    root: &Path,
    steps: &[Step],
    lent: Option<&OwnedFd>,
) -> Result<(), RunError> {
    let merged;
    let root = match (overlay_of(spec, root, lent.is_some()), lent) {
        (None, _) => root,
        (Some(RootOverlay::Lent), Some(lent)) => {
            log::debug!("the holder's overlay of the image on {}", root.display());
            let point = fs::File::open(root)
                .map_err(|e| RunError::sys(format!("cannot open {}", root.display()), e))?;
            new_mount::attach(lent.as_fd(), point.as_fd()).map_err(|e| {
                RunError::sys(
                    format!("cannot attach the image's overlay on {}", root.display()),
                    e,
                )
            })?;
            root
        }
        (Some(RootOverlay::Own(lowers, upper)), lent) => {
            merged = mount_overlay(root, &lowers, upper, lent)?;
            merged.as_path()
        }
        (Some(RootOverlay::Lent), None) => unreachable!("a lent overlay only when one was lent"),
    };
    // pivot_root needs the new root to be a mount point.
    bind(root, root, MsFlags::MS_REC)?;
    let tree = Root::open(root)?;
    let applied = apply(&tree, steps);
    remove_generated(spec);
    applied?;
    // Last: the mount points above had to be made in it first.
    if spec.read_only_root {
        log::debug!("remount {} read-only", root.display());
        new_mount::set_read_only(tree.dir.as_fd())
            .map_err(|e| RunError::sys(format!("cannot make {} read-only", root.display()), e))?;
    }
    enter_root(&tree)
}

/// Carries out the plan's steps in `root`.
fn apply(root: &Root, steps: &[Step]) -> Result<(), RunError> {
    let mut masks = Masks::default();
    for step in steps {
        match step {
            Step::Mount {
                target,
                make,
                sources,
            } => {
                let Some(point) = mount_point::mount_point(root, target, *make)? else {
                    log::debug!("no mount point for {}: left out", target.display());
                    continue;
                };
                mount_first(sources, target, point.as_fd())?;
            }
            Step::Account { account, dir, home } => add_account(root, account, dir, home)?,
            Step::Populate { dir, entries } => {
                let dir_fd = mount_point::existing_dir(root, dir)?;
                for entry in entries {
                    match entry {
                        Entry::Mount {
                            name,
                            make,
                            sources,
                        } => {
                            let target = dir.join(name);
                            let point =
                                mount_point::make_entry(dir_fd.as_fd(), name.as_ref(), *make)
                                    .map_err(|e| mount_point::cannot_make(root, &target, e))?;
                            mount_first(sources, &target, point.as_fd())?;
                        }
                        Entry::Symlink { name, to } => {
                            nix::unistd::symlinkat(*to, dir_fd.as_fd(), *name).map_err(|e| {
                                RunError::sys(
                                    format!("cannot create {}", dir.join(name).display()),
                                    e,
                                )
                            })?;
                        }
                    }
                }
            }
            Step::Cover { under, paths } => cover(root, under, paths, &mut masks)?,
        }
    }
    Ok(())
}

/// `Step::Account`: the command's user where the container's /etc/passwd and /etc/group lack it.
fn add_account(root: &Root, account: &Account, dir: &Path, home: &Source) -> Result<(), RunError> {
    let read = |inside: &str| -> Result<String, RunError> {
        let file = mount_point::open_for_reading(root, Path::new(inside))?;
        Ok(file.map(users::read_account).unwrap_or_default())
    };
    let passwd = read("/etc/passwd")?;
    let group = read("/etc/group")?;
    // The host's shell where the root filesystem has it, else the one every system has.
    let shell = &account.shell;
    let usable = !shell.is_empty()
        && !shell.ends_with("/nologin")
        && !shell.ends_with("/false")
        && mount_point::exists(root, Path::new(shell))?;
    let shell = if usable { shell.as_str() } else { "/bin/sh" };
    let (passwd, group) = users::with_account(&passwd, &group, account, shell);
    let user_added = passwd.is_some();
    for (name, text) in [("passwd", passwd), ("group", group)] {
        let Some(text) = text else { continue };
        let target = Path::new("/etc").join(name);
        let file = dir.join(name);
        write_readable(&file, &text)?;
        match mount_point::mount_point(root, &target, MountPoint::OptionalFile)? {
            Some(point) => {
                log::debug!("{} lacks {}: adding it", target.display(), account.name);
                let source = Source::Bind {
                    host: file,
                    recursive: false,
                    read_only: true,
                };
                mount_source(&source, &target, point.as_fd())?;
            }
            None => log::debug!("no {} to add {} to", target.display(), account.name),
        }
    }
    let home_path = Path::new(&account.home);
    if user_added && !mount_point::exists(root, home_path)? {
        // A home directory helps (shells keep their history there) but is no reason to fail: a
        // root filesystem we cannot write cannot get the mount point.
        match mount_point::mount_point(root, home_path, MountPoint::Dir(0o755)) {
            Ok(Some(point)) => mount_source(home, home_path, point.as_fd())?,
            Ok(None) => {}
            Err(e) => log::debug!("no home directory {}: {e}", home_path.display()),
        }
    }
    Ok(())
}

/// A new file with `text`, mode 0644 whatever the umask: the command, which is not root, reads it.
fn write_readable(path: &Path, text: &str) -> Result<(), RunError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |e: std::io::Error| RunError::sys(format!("cannot write {}", path.display()), e);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .map_err(fail)?;
    file.set_permissions(fs::Permissions::from_mode(0o644))
        .map_err(fail)?;
    file.write_all(text.as_bytes()).map_err(fail)
}

/// Mounts the first of `sources` that works onto `point`; the last one's error if none does.
fn mount_first(sources: &[Source], target: &Path, point: BorrowedFd<'_>) -> Result<(), RunError> {
    let mut outcome = Err(RunError::new(format!(
        "nothing to mount on {}",
        target.display()
    )));
    for source in sources {
        outcome = mount_source(source, target, point);
        if outcome.is_ok() {
            break;
        }
    }
    outcome
}

fn ms_flags(attrs: Attrs) -> MsFlags {
    [
        (attrs.read_only, MsFlags::MS_RDONLY),
        (attrs.nosuid, MsFlags::MS_NOSUID),
        (attrs.nodev, MsFlags::MS_NODEV),
        (attrs.noexec, MsFlags::MS_NOEXEC),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .fold(MsFlags::empty(), |flags, (_, flag)| flags | flag)
}

/// Mounts `source` on the mount point that `point` refers to (`target` inside, for messages). A new
/// filesystem or a plain bind is one mount(2) onto /proc/self/fd/N, a magic link that leads to exactly
/// that descriptor's place. A read-only bind uses the new mount API: the tree is cloned, made
/// read-only and attached to the descriptor (a remount through the descriptor would reach the mount
/// point's own mount, not the bind on top of it).
fn mount_source(source: &Source, target: &Path, point: BorrowedFd<'_>) -> Result<(), RunError> {
    let on = PathBuf::from(format!("/proc/self/fd/{}", point.as_raw_fd()));
    match source {
        Source::Fs {
            fstype,
            options,
            attrs,
        } => {
            let data = options.join(",");
            log::debug!(
                "mount {fstype} on {} ({attrs}{}{data})",
                target.display(),
                if data.is_empty() { "" } else { "; " },
            );
            mount(
                Some(*fstype),
                &on,
                Some(*fstype),
                ms_flags(*attrs),
                (!data.is_empty()).then_some(data.as_str()),
            )
            .map_err(|e| RunError::sys(format!("cannot mount {fstype} on {}", target.display()), e))
        }
        Source::Bind {
            host,
            recursive,
            read_only,
        } => {
            log::debug!(
                "bind {} to {} ({}{})",
                host.display(),
                target.display(),
                if *recursive { "recursive" } else { "alone" },
                if *read_only { ", read-only" } else { "" }
            );
            let fail = |e: std::io::Error| {
                RunError::sys(
                    format!("cannot bind {} to {}", host.display(), target.display()),
                    e,
                )
            };
            if !*read_only {
                let mut flags = MsFlags::MS_BIND;
                if *recursive {
                    flags |= MsFlags::MS_REC;
                }
                return mount(Some(host.as_path()), &on, None::<&str>, flags, None::<&str>)
                    .map_err(|e| fail(e.into()));
            }
            let tree = new_mount::clone_tree(host, *recursive).map_err(fail)?;
            new_mount::set_read_only(tree.as_fd()).map_err(fail)?;
            new_mount::attach(tree.as_fd(), point).map_err(fail)
        }
    }
}

/// The masks mounted so far. Each further mask is a bind of the first of its kind, one system call:
/// a bind keeps the read-only flag and the other attributes of what it copies.
#[derive(Default)]
struct Masks {
    /// The first masked directory, with its tmpfs on top, as a path through /proc/self/fd.
    directory: Option<PathBuf>,
    /// The host's /dev/null, read-only, made once: detached until the first masked file that this
    /// kernel has, attached there after.
    file: Option<(OwnedFd, bool)>,
    /// The descriptors that `directory` goes through.
    kept: Vec<OwnedFd>,
}

impl Masks {
    /// Hides `name` in `dir` (`at`, the same as a path): a directory under an empty read-only tmpfs,
    /// a file under the host's /dev/null, read-only.
    fn mask(&mut self, dir: BorrowedFd<'_>, name: &str, at: &Path, kind: Kind) -> io::Result<()> {
        let bind_of = |first: &Path| {
            mount(
                Some(first),
                at,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(io::Error::from)
        };
        match kind {
            Kind::Directory => match &self.directory {
                Some(first) => bind_of(first),
                None => {
                    let attrs = MsFlags::MS_RDONLY
                        | MsFlags::MS_NOSUID
                        | MsFlags::MS_NODEV
                        | MsFlags::MS_NOEXEC;
                    mount(
                        Some("tmpfs"),
                        at,
                        Some("tmpfs"),
                        attrs,
                        Some("size=0,mode=0555"),
                    )?;
                    self.directory = Some(at.to_path_buf());
                    Ok(())
                }
            },
            Kind::File => {
                let (null, attached) = match &mut self.file {
                    Some(made) => made,
                    None => {
                        let null = new_mount::clone_tree(Path::new("/dev/null"), false)?;
                        new_mount::set_read_only(null.as_fd())?;
                        self.file.insert((null, false))
                    }
                };
                if *attached {
                    return bind_of(&PathBuf::from(format!(
                        "/proc/self/fd/{}",
                        null.as_raw_fd()
                    )));
                }
                new_mount::attach_at(null.as_fd(), dir, Path::new(name))?;
                *attached = true;
                Ok(())
            }
        }
    }
}

/// Covers `paths` below `under` (`Step::Cover`): resolved once in the root, then each by its name
/// through /proc/self/fd. Nothing of the container has run yet and the names are the kernel's own
/// in its own filesystem, so no link of an image's is on the way.
fn cover(
    root: &Root,
    under: &Path,
    paths: &[(&'static str, Covering)],
    masks: &mut Masks,
) -> Result<(), RunError> {
    let dir = mount_point::existing_dir(root, under)?;
    let through = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    for &(name, covering) in paths {
        let target = under.join(name);
        let at = through.join(name);
        let outcome = match covering {
            Covering::ReadOnly => read_only_itself(&at),
            Covering::Mask(kind) => match masks.mask(dir.as_fd(), name, &at, kind) {
                // This kernel has a file where podman's list expects a directory, or the reverse.
                Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                    masks.mask(dir.as_fd(), name, &at, other_kind(kind))
                }
                outcome => outcome,
            },
        };
        let shown = target.display();
        match outcome {
            Ok(()) => log::debug!("{shown}: {covering:?}"),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                log::debug!("{shown}: not on this kernel, left out")
            }
            Err(e) => {
                let message = match covering {
                    Covering::ReadOnly => format!("cannot make {shown} read-only"),
                    Covering::Mask(_) => format!("cannot mask {shown}"),
                };
                return Err(RunError::sys(message, e));
            }
        }
    }
    masks.kept.push(dir);
    Ok(())
}

fn other_kind(kind: Kind) -> Kind {
    match kind {
        Kind::Directory => Kind::File,
        Kind::File => Kind::Directory,
    }
}

/// Binds `at` read-only over itself, with what is mounted below it. The kernel's files are never
/// to be run, set-id or devices: the remount sets nosuid, nodev and noexec as well, which also keeps
/// those that the mount it is in has.
fn read_only_itself(at: &Path) -> io::Result<()> {
    mount(
        Some(at),
        at,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )?;
    let flags = MsFlags::MS_REMOUNT
        | MsFlags::MS_BIND
        | MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV
        | MsFlags::MS_NOEXEC;
    mount(None::<&str>, at, None::<&str>, flags, None::<&str>)?;
    Ok(())
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
        .map_err(|e| RunError::sys(format!("cannot mount {fstype} on {}", target.display()), e))
}

fn mkdir_all(path: &Path, mode: u32) -> Result<(), RunError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(|e| RunError::sys(format!("cannot create {}", path.display()), e))
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

/// Where an overlay's writes go.
#[derive(Debug, PartialEq)]
enum Upper {
    /// A tmpfs mounted over the root filesystem's path.
    Ephemeral,
    /// Kept: the upper layer and overlayfs's work directory beside it. `image`: a pulled image's
    /// own, of which a holder may keep an overlay (`lent_overlay`), stamped before it is mounted here.
    Kept {
        upper: PathBuf,
        work: PathBuf,
        image: bool,
    },
}

/// A read-only layer of an overlay.
#[derive(Debug, PartialEq)]
enum Layer<'a> {
    Dir(&'a Path),
    /// The overlay of the image that the holder lent.
    Lent,
}

/// How the root filesystem becomes an overlay.
#[derive(Debug, PartialEq)]
enum RootOverlay<'a> {
    /// The holder's overlay of the pulled image, as it is.
    Lent,
    /// An overlay mounted here: its layers (the top one first) and where the writes go.
    Own(Vec<Layer<'a>>, Upper),
}

/// The overlay the root filesystem `root` needs, if any. A pulled image is always one: its layers
/// under the image's own upper layer, which --ephemeral and --overlay put under theirs; with `lent`,
/// the holder's overlay is that part. Another root filesystem is one only with those options.
fn overlay_of<'a>(spec: &'a ContainerSpec, root: &'a Path, lent: bool) -> Option<RootOverlay<'a>> {
    let upper = match &spec.overlay {
        None => None,
        Some(Overlay::Ephemeral) => Some(Upper::Ephemeral),
        Some(Overlay::Persistent(dir)) => Some(Upper::Kept {
            upper: dir.join("upper"),
            work: dir.join("work"),
            image: false,
        }),
    };
    let Some(image) = &spec.layered else {
        return upper.map(|upper| RootOverlay::Own(vec![Layer::Dir(root)], upper));
    };
    let layers = image.layers.iter().map(|l| Layer::Dir(l.as_path()));
    Some(match (upper, lent) {
        (None, true) => RootOverlay::Lent,
        (None, false) => RootOverlay::Own(
            layers.collect(),
            Upper::Kept {
                upper: image.upper.clone(),
                work: image.work.clone(),
                image: true,
            },
        ),
        (Some(upper), true) => RootOverlay::Own(vec![Layer::Lent], upper),
        (Some(upper), false) => RootOverlay::Own(
            std::iter::once(Layer::Dir(image.upper.as_path()))
                .chain(layers)
                .collect(),
            upper,
        ),
    })
}

/// Mounts an overlay of `lowers` (read-only, the top one first) and `upper` on the root
/// filesystem's path `root`; returns where the merged tree is. The layers are named through
/// descriptors opened before anything is mounted over their paths (a plain root filesystem is its
/// own lower layer).
fn mount_overlay(
    root: &Path,
    lowers: &[Layer<'_>],
    upper: Upper,
    lent: Option<&OwnedFd>,
) -> Result<PathBuf, RunError> {
    let open_dir = |path: &Path| {
        fs::File::open(path)
            .map(OwnedFd::from)
            .map_err(|e| RunError::sys(format!("cannot open {}", path.display()), e))
    };
    let lower_fds = lowers
        .iter()
        .map(|lower| match (lower, lent) {
            (Layer::Dir(path), _) => open_dir(path),
            (Layer::Lent, Some(lent)) => lent
                .try_clone()
                .map_err(|e| RunError::sys("cannot use the image's overlay", e)),
            (Layer::Lent, None) => unreachable!("a lent layer only when one was lent"),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (upper, work, target, image) = match upper {
        Upper::Ephemeral => {
            // The tmpfs goes over the root filesystem's own path: nothing else needs a mount point.
            mount_fs(
                "tmpfs",
                root,
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some("mode=0755"),
            )?;
            let merged = root.join("merged");
            mkdir_all(&merged, 0o755)?;
            (root.join("upper"), root.join("work"), merged, false)
        }
        Upper::Kept { upper, work, image } => (upper, work, root.to_path_buf(), image),
    };
    if !upper.is_dir() {
        // The upper directory's root becomes the container's /: same owner and mode as the image's.
        mkdir_all(&upper, 0o755)?;
        let top = fs::File::from(
            lower_fds[0]
                .try_clone()
                .map_err(|e| RunError::sys("cannot read the top layer", e))?,
        );
        let meta = top
            .metadata()
            .map_err(|e| RunError::sys("cannot read the top layer", e))?;
        use std::os::unix::fs::MetadataExt;
        let _ = std::os::unix::fs::chown(&upper, Some(meta.uid()), Some(meta.gid()));
        let _ = fs::set_permissions(&upper, fs::Permissions::from_mode(meta.mode() & 0o7777));
    }
    mkdir_all(&work, 0o700)?;
    if image {
        lent_overlay::stamp_before_own_mount(&upper)?;
    }
    let upper_fd = open_dir(&upper)?;
    let work_fd = open_dir(&work)?;
    let lowerdir: Vec<String> = lower_fds
        .iter()
        .map(|fd| format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .collect();
    let options = format!(
        "lowerdir={},upperdir=/proc/self/fd/{},workdir=/proc/self/fd/{},userxattr",
        lowerdir.join(":"),
        upper_fd.as_raw_fd(),
        work_fd.as_raw_fd()
    );
    log::debug!(
        "overlay on {}: lower {lowers:?}, upper {}",
        target.display(),
        upper.display()
    );
    mount(
        Some("overlay"),
        &target,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .map_err(|e| {
        RunError::sys(format!("cannot mount an overlay on {}", root.display()), e).with_hint(
            "the overlay directory must be on a filesystem that supports overlayfs upper layers \
             (not another overlay or NFS)",
        )
    })?;
    Ok(target)
}

/// pivot_root into `root` and detach the old root; MS_MOVE + chroot where pivot_root is refused
/// (a root on the initramfs).
fn enter_root(root: &Root) -> Result<(), RunError> {
    nix::unistd::fchdir(root.dir.as_fd())
        .map_err(|e| RunError::sys(format!("cannot enter {}", root.path.display()), e))?;
    match nix::unistd::pivot_root(".", ".") {
        Ok(()) => {
            log::debug!("pivot_root into {}, old root detached", root.path.display());
            // The old root is stacked under the new one at "/": detach it.
            umount2(".", MntFlags::MNT_DETACH)
                .map_err(|e| RunError::sys("cannot detach the old root", e))?;
        }
        Err(nix::Error::EINVAL) => {
            log::debug!(
                "pivot_root refused (EINVAL): {} moved to / and chrooted into",
                root.path.display()
            );
            mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
                .map_err(|e| RunError::sys("cannot move the root filesystem to /", e))?;
            nix::unistd::chroot(".").map_err(|e| RunError::sys("chroot", e))?;
        }
        Err(e) => {
            return Err(RunError::sys(
                format!("cannot pivot_root into {}", root.path.display()),
                e,
            ));
        }
    }
    std::env::set_current_dir("/").map_err(|e| RunError::sys("chdir /", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pulled_image_is_always_an_overlay_of_its_layers_under_its_own_writes() {
        let root = Path::new("/store/images/i/rootfs");
        let mut spec = plan::tests::spec(true);
        for lent in [false, true] {
            assert_eq!(
                overlay_of(&spec, root, lent),
                None,
                "a plain directory is used in place"
            );
        }
        spec.overlay = Some(Overlay::Ephemeral);
        assert_eq!(
            overlay_of(&spec, root, false),
            Some(RootOverlay::Own(vec![Layer::Dir(root)], Upper::Ephemeral))
        );
        spec.layered = Some(crate::runner::image::Layered {
            layers: vec!["/store/layers/top".into(), "/store/layers/base".into()],
            upper: "/store/images/i/upper".into(),
            work: "/store/images/i/work".into(),
        });
        let with_own = || {
            vec![
                Layer::Dir(Path::new("/store/images/i/upper")),
                Layer::Dir(Path::new("/store/layers/top")),
                Layer::Dir(Path::new("/store/layers/base")),
            ]
        };
        assert_eq!(
            overlay_of(&spec, root, false),
            Some(RootOverlay::Own(with_own(), Upper::Ephemeral))
        );
        // The holder's overlay is the image's layers under its upper layer, whole.
        assert_eq!(
            overlay_of(&spec, root, true),
            Some(RootOverlay::Own(vec![Layer::Lent], Upper::Ephemeral))
        );
        spec.overlay = Some(Overlay::Persistent("/home/u/writes".into()));
        let kept = || Upper::Kept {
            upper: "/home/u/writes/upper".into(),
            work: "/home/u/writes/work".into(),
            image: false,
        };
        assert_eq!(
            overlay_of(&spec, root, false),
            Some(RootOverlay::Own(with_own(), kept()))
        );
        assert_eq!(
            overlay_of(&spec, root, true),
            Some(RootOverlay::Own(vec![Layer::Lent], kept()))
        );
        spec.overlay = None;
        let own = Upper::Kept {
            upper: "/store/images/i/upper".into(),
            work: "/store/images/i/work".into(),
            image: true,
        };
        assert_eq!(
            overlay_of(&spec, root, false),
            Some(RootOverlay::Own(
                vec![
                    Layer::Dir(Path::new("/store/layers/top")),
                    Layer::Dir(Path::new("/store/layers/base"))
                ],
                own
            ))
        );
        assert_eq!(overlay_of(&spec, root, true), Some(RootOverlay::Lent));
    }

    use super::{unescape_mountinfo, visible_mount_points};

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
