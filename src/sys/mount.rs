//! The new mount API (Linux 5.2; mount_setattr 5.12), for the mounts that must be given attributes
//! before they are attached: a bind is made detached, made read-only, and then attached onto a
//! descriptor of its mount point, so that no path is looked up again between resolving a mount point
//! and mounting on it.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn fd_or_error(rc: libc::c_long) -> io::Result<OwnedFd> {
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the system call returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(rc as libc::c_int) })
}

fn ok_or_error(rc: libc::c_long) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A detached copy of the mount at `source` (with the mounts below it when `recursive`), as a bind
/// mount makes: open_tree(OPEN_TREE_CLONE).
pub fn clone_tree(source: &Path, recursive: bool) -> io::Result<OwnedFd> {
    let path = CString::new(source.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: a NUL-terminated path resolved from the working directory; flags as documented.
    fd_or_error(unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) })
}

/// Makes the mount `mount` refers to read-only (not the mounts below it): mount_setattr(2).
pub fn set_read_only(mount: BorrowedFd<'_>) -> io::Result<()> {
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: an empty path with AT_EMPTY_PATH names `mount` itself; attr is valid for its size.
    ok_or_error(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mount.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    })
}

/// Attaches the detached mount `mount` onto the mount point that `target` refers to: move_mount(2).
pub fn attach(mount: BorrowedFd<'_>, target: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: both descriptors name themselves (empty paths with the *_EMPTY_PATH flags).
    ok_or_error(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mount.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH,
        )
    })
}

/// Attaches the detached mount `mount` onto `name` in `dir` (resolved from there, mounts on it
/// followed): move_mount(2).
pub fn attach_at(mount: BorrowedFd<'_>, dir: BorrowedFd<'_>, name: &Path) -> io::Result<()> {
    let name = CString::new(name.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `mount` names itself (an empty path with MOVE_MOUNT_F_EMPTY_PATH); `name` is a
    // NUL-terminated path resolved from `dir`.
    ok_or_error(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mount.as_raw_fd(),
            c"".as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    })
}

/// A detached copy of the detached or attached mount `mount` refers to: open_tree(OPEN_TREE_CLONE)
/// on the descriptor itself. The copy shares the filesystem (its superblock) with the original.
pub fn clone_mount(mount: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let flags =
        libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | libc::AT_EMPTY_PATH as libc::c_uint;
    // SAFETY: an empty path with AT_EMPTY_PATH names `mount` itself; flags as documented.
    fd_or_error(unsafe {
        libc::syscall(libc::SYS_open_tree, mount.as_raw_fd(), c"".as_ptr(), flags)
    })
}

/// One setting of a filesystem being made with fsconfig(2).
pub enum Setting<'a> {
    /// A key with a string value (FSCONFIG_SET_STRING; the kernel takes at most 256 bytes).
    Text(&'a CStr, &'a CStr),
    /// A flag (FSCONFIG_SET_FLAG).
    Flag(&'a CStr),
}

// From <linux/mount.h>, which not every libc this builds with exports.
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;

/// A new filesystem of type `fstype` with `settings`, as a detached mount (fsopen, fsconfig,
/// fsmount: Linux 5.2): it is attached nowhere until it is moved somewhere, and lives while a
/// descriptor of it or a copy of it does.
pub fn new_detached(fstype: &CStr, settings: &[Setting<'_>]) -> io::Result<OwnedFd> {
    // SAFETY: a NUL-terminated name; flags as documented.
    let context =
        fd_or_error(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) })?;
    let configure =
        |command: libc::c_uint, key: *const libc::c_char, value: *const libc::c_char| {
            // SAFETY: key and value are NUL-terminated strings or null as the command wants; the
            // context descriptor is open.
            ok_or_error(unsafe {
                libc::syscall(
                    libc::SYS_fsconfig,
                    context.as_raw_fd(),
                    command,
                    key,
                    value,
                    0,
                )
            })
        };
    // The error names the setting the filesystem refused.
    let refused = |key: &CStr, e: io::Error| {
        io::Error::new(e.kind(), format!("{}: {e}", key.to_string_lossy()))
    };
    for setting in settings {
        match setting {
            Setting::Text(key, value) => {
                configure(FSCONFIG_SET_STRING, key.as_ptr(), value.as_ptr())
                    .map_err(|e| refused(key, e))?
            }
            Setting::Flag(key) => configure(FSCONFIG_SET_FLAG, key.as_ptr(), std::ptr::null())
                .map_err(|e| refused(key, e))?,
        }
    }
    configure(FSCONFIG_CMD_CREATE, std::ptr::null(), std::ptr::null())
        .map_err(|e| refused(c"the filesystem", e))?;
    // SAFETY: the context descriptor is open and its filesystem made; flags as documented.
    fd_or_error(unsafe {
        libc::syscall(libc::SYS_fsmount, context.as_raw_fd(), FSMOUNT_CLOEXEC, 0)
    })
}
