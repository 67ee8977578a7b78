//! The new mount API (Linux 5.2; mount_setattr 5.12): every mount is made detached, given its
//! attributes, and then attached onto a descriptor of its mount point, so that no path is looked up
//! again between resolving a mount point and mounting on it.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Mount attributes (MOUNT_ATTR_*).
pub const READ_ONLY: u64 = libc::MOUNT_ATTR_RDONLY;
pub const NO_SUID: u64 = libc::MOUNT_ATTR_NOSUID;
pub const NO_DEV: u64 = libc::MOUNT_ATTR_NODEV;
pub const NO_EXEC: u64 = libc::MOUNT_ATTR_NOEXEC;

/// Why a new filesystem could not be made: the errno, and what the filesystem said about it (the
/// kernel's messages for the filesystem context, e.g. "devpts: Bad value for 'gid'").
#[derive(Debug)]
pub struct FsError {
    pub error: io::Error,
    pub said: Vec<String>,
}

fn to_c(text: &str) -> io::Result<CString> {
    CString::new(text).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

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

/// A new, detached filesystem of type `fstype` with `options` (each "key=value" or a flag) and the
/// mount attributes `attrs`: fsopen, fsconfig, fsmount. Its source (the first field of
/// /proc/mounts) is its type, as mount(8) shows it.
pub fn new_filesystem(fstype: &str, options: &[&str], attrs: u64) -> Result<OwnedFd, FsError> {
    let plain = |error: io::Error| FsError {
        error,
        said: Vec::new(),
    };
    let name = to_c(fstype).map_err(plain)?;
    // SAFETY: a NUL-terminated name; the flag makes the descriptor close-on-exec.
    let context = fd_or_error(unsafe {
        libc::syscall(libc::SYS_fsopen, name.as_ptr(), libc::FSOPEN_CLOEXEC)
    })
    .map_err(plain)?;
    let fail = |error: io::Error| FsError {
        error,
        said: context_messages(context.as_fd()),
    };
    let source = format!("source={fstype}");
    for option in std::iter::once(source.as_str()).chain(options.iter().copied()) {
        let (key, value) = match option.split_once('=') {
            Some((key, value)) => (to_c(key).map_err(fail)?, Some(to_c(value).map_err(fail)?)),
            None => (to_c(option).map_err(fail)?, None),
        };
        let (command, value_ptr) = match &value {
            Some(value) => (libc::FSCONFIG_SET_STRING, value.as_ptr()),
            None => (libc::FSCONFIG_SET_FLAG, std::ptr::null()),
        };
        // SAFETY: a context descriptor, a NUL-terminated key and a NUL-terminated value or null (a flag).
        ok_or_error(unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                context.as_raw_fd(),
                command,
                key.as_ptr(),
                value_ptr,
                0,
            )
        })
        .map_err(fail)?;
    }
    // SAFETY: as above, with no key or value.
    ok_or_error(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            context.as_raw_fd(),
            libc::FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    })
    .map_err(fail)?;
    // SAFETY: a created context; the attributes are MOUNT_ATTR_* bits, which fit in 32 bits.
    fd_or_error(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            context.as_raw_fd(),
            libc::FSMOUNT_CLOEXEC,
            attrs as libc::c_uint,
        )
    })
    .map_err(fail)
}

/// What the kernel logged for a filesystem context (one message per read, until ENODATA).
fn context_messages(context: BorrowedFd<'_>) -> Vec<String> {
    let mut messages = Vec::new();
    let mut buffer = [0u8; 512];
    while messages.len() < 16 {
        match nix::unistd::read(context, &mut buffer) {
            Ok(n) if n > 0 => {
                let text = String::from_utf8_lossy(&buffer[..n]);
                // "e ", "w " or "i " (error, warning, information), then the message.
                let text = text.get(2..).unwrap_or(&text);
                messages.push(text.trim_end().to_string());
            }
            _ => break,
        }
    }
    messages
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
        attr_set: READ_ONLY,
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
