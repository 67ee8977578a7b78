//! Joining a session keyring (keyctl(2), which nix does not wrap).

use std::ffi::CStr;
use std::io;

const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;

/// Makes the keyring named `name` the calling process's session keyring, a new one if no keyring of
/// that name can be found; its serial number.
pub fn join_session_keyring(name: &CStr) -> io::Result<i64> {
    // SAFETY: KEYCTL_JOIN_SESSION_KEYRING reads the NUL-terminated name, which `name` keeps alive.
    let serial =
        unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    match serial {
        -1 => Err(io::Error::last_os_error()),
        serial => Ok(serial),
    }
}

const KEYCTL_SETPERM: libc::c_long = 5;
const KEYCTL_DESCRIBE: libc::c_long = 6;
const KEY_SPEC_SESSION_KEYRING: libc::c_long = -3;

/// Sets the permissions of the calling process's session keyring.
pub fn set_session_permissions(permissions: u32) -> io::Result<()> {
    // SAFETY: KEYCTL_SETPERM takes a keyring id and the permission mask by value.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_SETPERM,
            KEY_SPEC_SESSION_KEYRING,
            permissions as libc::c_ulong,
        )
    };
    match rc {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// The calling process's session keyring as KEYCTL_DESCRIBE says it: "type;uid;gid;perm;name".
pub fn describe_session() -> io::Result<String> {
    let mut buffer = vec![0u8; 512];
    // SAFETY: KEYCTL_DESCRIBE writes at most the given length into the buffer, which outlives the
    // call; it returns the description's full length, with its NUL.
    let len = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_DESCRIBE,
            KEY_SPEC_SESSION_KEYRING,
            buffer.as_mut_ptr(),
            buffer.len(),
        )
    };
    if len < 0 {
        return Err(io::Error::last_os_error());
    }
    buffer.truncate((len as usize).min(buffer.len()));
    while buffer.last() == Some(&0) {
        buffer.pop();
    }
    Ok(String::from_utf8_lossy(&buffer).into_owned())
}
