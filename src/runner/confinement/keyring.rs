//! The container's session keyring. The session keyring is inherited across fork and exec and is not
//! namespaced: a container in the caller's would read what the login session keeps there (Kerberos
//! credential caches, fscrypt keys, other tools' tokens) and leave keys in it. So PID 1 of a
//! `--rootfs` container joins a new one, as runc does for every container, also with --privileged and
//! seccomp=unconfined (the default filter refuses the keyring calls anyway); it is gone with the
//! container's last process. Its name, `_ses.unshare-run.` and 64 random bits, is for `exec` to join
//! later; being unguessable, no other user's keyring can be made to answer to it. `--security-opt
//! keyring=host` keeps the caller's, as runc's --no-new-keyring. Host mode keeps the caller's, as
//! `podman unshare` does.

use std::ffi::CString;
use std::io::Read;

use crate::runner::error::RunError;
use crate::sys;

/// In PID 1: a new session keyring for the container.
pub fn join_new() -> Result<(), RunError> {
    let mut random = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut random))
        .map_err(|e| RunError::sys("cannot read /dev/urandom for the keyring's name", e))?;
    let name = format!("_ses.unshare-run.{:016x}", u64::from_le_bytes(random));
    let name = CString::new(name).expect("no NUL in the name");
    match sys::keyring::join_session_keyring(&name) {
        Ok(serial) => {
            log::debug!("session keyring {serial} ({})", name.to_string_lossy());
            Ok(())
        }
        // A kernel without keyrings has nothing to share.
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => Ok(()),
        Err(e) => Err(RunError::sys("cannot give the container a session keyring of its own", e)
            .with_hint("if you have too many keys (EDQUOT), remove some; --security-opt keyring=host keeps yours in the container")),
    }
}
