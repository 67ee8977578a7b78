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
