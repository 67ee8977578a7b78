//! The container's session keyring. The session keyring is inherited across fork and exec and is not
//! namespaced: a container in the caller's would read what the login session keeps there (Kerberos
//! credential caches, fscrypt keys, other tools' tokens) and leave keys in it. So PID 1 of a
//! `--rootfs` container joins a new one, as runc does for every container, also with --privileged and
//! seccomp=unconfined (the default filter refuses the keyring calls anyway); it is gone with the
//! container's last process. Its name, `_ses.unshare-run.` and 64 random bits (`new_name`, chosen
//! when the container is decided), is for `exec` to join later: PID 1 gives its owner Search
//! permission (runc's "make session keyring searchable"), without which the kernel finds no keyring
//! by name, and being unguessable, no other user's keyring can be made to answer to it. `--security-opt
//! keyring=host` keeps the caller's, as runc's --no-new-keyring. Host mode keeps the caller's, as
//! `podman unshare` does.

use std::ffi::CString;
use std::io::Read;

use crate::runner::error::RunError;
use crate::sys;

/// What PID 1 lets the keyring's owner (and its possessors) do: everything for possessors, and for
/// the owner's other processes View, Read, Search (exec finds it by name) and Link.
const PERMISSIONS: u32 = 0x3f00_0000 | 0x0001_0000 | 0x0002_0000 | 0x0008_0000 | 0x0010_0000;
const OWNER_SEARCH: u32 = 0x0008_0000;

/// A name for a container's session keyring.
pub fn new_name() -> Result<String, RunError> {
    let mut random = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut random))
        .map_err(|e| RunError::sys("cannot read /dev/urandom for the keyring's name", e))?;
    Ok(format!(
        "_ses.unshare-run.{:016x}",
        u64::from_le_bytes(random)
    ))
}

/// In PID 1: a new session keyring for the container, named `name`, that exec can join.
pub fn join_new(name: &str) -> Result<(), RunError> {
    let c_name = CString::new(name).map_err(|_| RunError::new("a NUL in the keyring's name"))?;
    match sys::keyring::join_session_keyring(&c_name) {
        Ok(serial) => {
            log::debug!("session keyring {serial} ({name})");
            sys::keyring::set_session_permissions(PERMISSIONS)
                .map_err(|e| RunError::sys("cannot set the session keyring's permissions", e))
        }
        // A kernel without keyrings has nothing to share.
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => Ok(()),
        Err(e) => Err(RunError::sys("cannot give the container a session keyring of its own", e)
            .with_hint("if you have too many keys (EDQUOT), remove some; --security-opt keyring=host keeps yours in the container")),
    }
}

/// In exec's entering process, inside the container's user namespace: joins the container's session
/// keyring. The kernel makes a new keyring when it finds none of that name (the container's went
/// with it, or it never had one), which lacks the owner's Search permission: that is an error, never
/// a keyring of the exec's own passed off as the container's.
pub fn join_existing(name: &str) -> Result<(), RunError> {
    let c_name = CString::new(name).map_err(|_| RunError::new("a NUL in the keyring's name"))?;
    match sys::keyring::join_session_keyring(&c_name) {
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => return Ok(()),
        Err(e) => {
            return Err(RunError::sys(
                "cannot join the container's session keyring",
                e,
            ));
        }
    }
    let description = sys::keyring::describe_session()
        .map_err(|e| RunError::sys("cannot read the session keyring's permissions", e))?;
    match permissions_of(&description) {
        Some(permissions) if permissions & OWNER_SEARCH != 0 => Ok(()),
        _ => Err(RunError::new(
            "the container's session keyring was not found (the container may have ended)",
        )),
    }
}

/// The permission mask of a KEYCTL_DESCRIBE answer ("keyring;0;0;3f1b0000;NAME").
fn permissions_of(description: &str) -> Option<u32> {
    let field = description.split(';').nth(3)?;
    u32::from_str_radix(field, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_random_and_permissions_are_read_from_a_description() {
        let (a, b) = (new_name().unwrap(), new_name().unwrap());
        assert!(a.starts_with("_ses.unshare-run.") && a.len() == 33, "{a}");
        assert_ne!(a, b);
        assert_eq!(
            permissions_of("keyring;0;0;3f1b0000;_ses.x"),
            Some(0x3f1b_0000)
        );
        assert_eq!(
            permissions_of("keyring;0;0;3f130000;_ses"),
            Some(0x3f13_0000)
        );
        assert_eq!(permissions_of("keyring;0;0"), None);
        assert_eq!(PERMISSIONS & OWNER_SEARCH, OWNER_SEARCH);
    }
}
