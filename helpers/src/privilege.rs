//! Privilege: what a setuid-root or file-capability process does with it, in four short sequences.
//!
//! 1. `harden_privileged_start`: first thing in a helper, before reading arguments.
//! 2. `narrow_to_caller`: next, still before any argument is parsed or the caller is looked up (NSS
//!    modules run then): files are opened with the caller's rights, and only the capabilities the map
//!    write may need are left (bubblewrap's order: narrow first, then parse).
//! 3. `drop_all_privilege`: first thing in every other applet (argv[0] is the caller's choice). A caller
//!    that is root by its real uid keeps what it had before the exec (it was not granted anything).
//! 4. `switch_to_caller_keeping`: in a helper, just before the map write: the effective uid becomes the
//!    caller's, so the kernel itself checks that the caller owns the target namespace, and only the one
//!    capability the write needs is left. Each sequence verifies its result and fails if anything remains.

use std::fmt;
use std::os::fd::IntoRawFd;

use nix::sys::prctl;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::unistd::{Gid, Uid, getresgid, getresuid, setfsgid, setfsuid, setresgid, setresuid};

use crate::sys::{self, CapabilitySets};

pub const CAP_SETGID: u32 = 6;
pub const CAP_SETUID: u32 = 7;
pub const CAP_SETFCAP: u32 = 31;

/// securebits: uid 0 gets no capabilities at exec (capabilities(7)).
pub const SECBIT_NOROOT: u32 = 1 << 0;

pub const fn capability_bit(cap: u32) -> u64 {
    1 << cap
}

#[derive(Debug)]
pub struct PrivilegeError(pub String);

impl fmt::Display for PrivilegeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn fail(what: &str, e: impl fmt::Display) -> PrivilegeError {
    PrivilegeError(format!("{what}: {e}"))
}

/// Opens /dev/null on each of fds 0, 1 and 2 that is closed, so that no file opened later can take one
/// of those numbers and receive output meant for a terminal (a map file must never get a message).
pub fn ensure_standard_fds_open() -> Result<(), PrivilegeError> {
    for fd in 0..=2 {
        if sys::fd_is_open(fd) {
            continue;
        }
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| fail("cannot open /dev/null", e))?;
        // open() returns the lowest free number, which is `fd` because all lower ones are open.
        let got = null.into_raw_fd();
        if got != fd {
            return Err(PrivilegeError(format!(
                "/dev/null opened as fd {got}, expected {fd}"
            )));
        }
    }
    Ok(())
}

/// Start-up of a helper: nothing from the caller's environment or limits may change what it decides or
/// writes, and nothing it holds may leak into a core dump.
pub fn harden_privileged_start() -> Result<(), PrivilegeError> {
    ensure_standard_fds_open()?;
    // No RUST_LOG, RUST_BACKTRACE, locale or NSS variables can reach any later code.
    sys::clear_environment().map_err(|e| fail("cannot clear the environment", e))?;
    std::panic::set_hook(Box::new(|_| {
        // No location, no backtrace (which would read RUST_BACKTRACE): a fixed message, then abort.
        eprintln!("internal error, aborting");
    }));
    setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(|e| fail("cannot disable core dumps", e))?;
    prctl::set_dumpable(false).map_err(|e| fail("cannot clear the dumpable flag", e))?;
    // A caller's `ulimit -f` must not truncate a write: raise the soft limit as far as allowed.
    let (_, hard) = getrlimit(Resource::RLIMIT_FSIZE).map_err(|e| fail("getrlimit", e))?;
    setrlimit(Resource::RLIMIT_FSIZE, hard, hard).map_err(|e| fail("setrlimit", e))?;
    Ok(())
}

/// The second step of a helper, before it parses an argument or looks up its caller: the filesystem
/// ids become the caller's real ids, so that every file it opens from here on (the subid files, the
/// target's /proc entries, whatever the caller's NSS modules read) is opened with the caller's rights;
/// and of its capabilities only `may_need` stays (what the map write may need: the parsed map decides
/// later, in `switch_to_caller_keeping`, how much of it). Verified. The caller's NSS lookup still works:
/// its files and sockets are open to every user (an /etc/subuid only root can read would not be, and
/// the runner could not read it either).
pub fn narrow_to_caller(may_need: u64) -> Result<(), PrivilegeError> {
    let current = sys::capget().map_err(|e| fail("capget", e))?;
    let kept = may_need & current.permitted;
    sys::capset(CapabilitySets {
        effective: kept,
        permitted: kept,
        inheritable: 0,
    })
    .map_err(|e| fail("capset", e))?;
    sys::clear_ambient_capabilities().map_err(|e| fail("clearing ambient capabilities", e))?;
    let uid = getresuid().map_err(|e| fail("getresuid", e))?.real;
    let gid = getresgid().map_err(|e| fail("getresgid", e))?.real;
    // The real ids: no capability is needed to take them as filesystem ids.
    setfsgid(gid);
    setfsuid(uid);
    verify_filesystem_ids(uid, gid)?;
    // The ambient set is not read back here (that takes a system call per capability): the kernel
    // keeps it within the inheritable set, which capget shows empty. The switch before the write
    // checks it too.
    verify_capability_sets(kept)
}

/// setfsuid and setfsgid return the previous ids and report no errors: ask with an id they refuse
/// (-1), which changes nothing and returns the current one.
fn verify_filesystem_ids(uid: Uid, gid: Gid) -> Result<(), PrivilegeError> {
    let fsuid = setfsuid(Uid::from_raw(u32::MAX));
    let fsgid = setfsgid(Gid::from_raw(u32::MAX));
    if fsuid != uid || fsgid != gid {
        return Err(PrivilegeError(format!(
            "filesystem ids not switched: fsuid {fsuid} fsgid {fsgid}, want {uid} {gid}"
        )));
    }
    Ok(())
}

/// Gives up everything setuid or file capabilities granted: all ids become the real ids and every
/// capability set is emptied, unless the caller is root already (`had_root_privilege_before_exec`).
/// Verified afterwards.
pub fn drop_all_privilege() -> Result<(), PrivilegeError> {
    ensure_standard_fds_open()?;
    let gid = getresgid().map_err(|e| fail("getresgid", e))?.real;
    let uid = getresuid().map_err(|e| fail("getresuid", e))?.real;
    setresgid(gid, gid, gid).map_err(|e| fail("setresgid", e))?;
    setresuid(uid, uid, uid).map_err(|e| fail("setresuid", e))?;
    let securebits = sys::securebits().map_err(|e| fail("PR_GET_SECUREBITS", e))?;
    if had_root_privilege_before_exec(uid, securebits) {
        return verify_ids(uid, gid);
    }
    sys::capset(CapabilitySets::EMPTY).map_err(|e| fail("capset", e))?;
    sys::clear_ambient_capabilities().map_err(|e| fail("clearing ambient capabilities", e))?;
    verify_ids(uid, gid)?;
    // As in `narrow_to_caller`, the ambient set is not read back (a system call per capability, at
    // every start of every applet): the kernel never lets a capability be ambient that is not both
    // permitted and inheritable, and capget shows both sets empty.
    verify_capability_sets(0)
}

/// Whether a process whose real uid is `real_uid` got its capabilities from being root rather than
/// from our setuid bit or file capabilities: the kernel gives a process of real uid 0 its whole
/// bounding set at every exec unless SECBIT_NOROOT is set. Such a caller keeps them, as with any other
/// program it runs: mapping uid 0 into a user namespace needs CAP_SETFCAP (Linux 5.12 and later), and
/// root without capabilities cannot reach files of other owners. Under SECBIT_NOROOT, file capabilities
/// may have granted something, so everything is dropped as for any other caller.
fn had_root_privilege_before_exec(real_uid: Uid, securebits: u32) -> bool {
    real_uid.is_root() && securebits & SECBIT_NOROOT == 0
}

/// Before the map write: all uids become the caller's (kernel checks then run against the caller),
/// and only `keep` (a capability bit mask) stays in the effective and permitted sets, as far as this
/// process had it. Verified afterwards.
pub fn switch_to_caller_keeping(
    caller_uid: u32,
    caller_gid: u32,
    keep: u64,
) -> Result<(), PrivilegeError> {
    let uid = Uid::from_raw(caller_uid);
    let gid = Gid::from_raw(caller_gid);
    let current = sys::capget().map_err(|e| fail("capget", e))?;
    let keep = keep & current.permitted;
    let least = CapabilitySets {
        effective: keep,
        permitted: keep,
        inheritable: 0,
    };
    // Narrow first, so the wider sets are gone before anything else happens.
    sys::capset(least).map_err(|e| fail("capset", e))?;
    sys::clear_ambient_capabilities().map_err(|e| fail("clearing ambient capabilities", e))?;
    setresgid(gid, gid, gid).map_err(|e| fail("setresgid", e))?;
    prctl::set_keepcaps(true).map_err(|e| fail("PR_SET_KEEPCAPS", e))?;
    setresuid(uid, uid, uid).map_err(|e| fail("setresuid", e))?;
    prctl::set_keepcaps(false).map_err(|e| fail("PR_SET_KEEPCAPS", e))?;
    // Leaving uid 0 empties the effective set; the permitted set survived thanks to keepcaps.
    sys::capset(least).map_err(|e| fail("capset", e))?;
    // The caller now owns this process: it must not be able to ptrace it or read its memory.
    prctl::set_dumpable(false).map_err(|e| fail("PR_SET_DUMPABLE", e))?;
    if prctl::get_dumpable().unwrap_or(true) {
        return Err(PrivilegeError("process is still dumpable".into()));
    }
    verify_ids(uid, gid)?;
    verify_capabilities(keep)
}

fn verify_ids(uid: Uid, gid: Gid) -> Result<(), PrivilegeError> {
    let u = getresuid().map_err(|e| fail("getresuid", e))?;
    let g = getresgid().map_err(|e| fail("getresgid", e))?;
    if [u.real, u.effective, u.saved] != [uid; 3] || [g.real, g.effective, g.saved] != [gid; 3] {
        return Err(PrivilegeError(format!(
            "ids not dropped: uid {}/{}/{} gid {}/{}/{}",
            u.real, u.effective, u.saved, g.real, g.effective, g.saved
        )));
    }
    Ok(())
}

fn verify_capabilities(expected: u64) -> Result<(), PrivilegeError> {
    verify_capability_sets(expected)?;
    let ambient =
        sys::ambient_capabilities().map_err(|e| fail("reading ambient capabilities", e))?;
    if ambient != 0 {
        return Err(PrivilegeError(format!(
            "ambient capabilities not dropped: {ambient:#x}"
        )));
    }
    Ok(())
}

/// The effective and permitted sets are `expected`, the inheritable set is empty.
fn verify_capability_sets(expected: u64) -> Result<(), PrivilegeError> {
    let sets = sys::capget().map_err(|e| fail("capget", e))?;
    let want = CapabilitySets {
        effective: expected,
        permitted: expected,
        inheritable: 0,
    };
    if sets != want {
        return Err(PrivilegeError(format!(
            "capabilities not dropped: effective {:#x} permitted {:#x} inheritable {:#x}",
            sets.effective, sets.permitted, sets.inheritable
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_real_root_that_the_kernel_treats_as_root_keeps_its_capabilities() {
        let root = Uid::from_raw(0);
        assert!(had_root_privilege_before_exec(root, 0));
        // SECBIT_KEEP_CAPS and the lock bits say nothing about how the capabilities were obtained.
        assert!(had_root_privilege_before_exec(root, 1 << 4 | 1 << 5));
        assert!(!had_root_privilege_before_exec(root, SECBIT_NOROOT));
        assert!(!had_root_privilege_before_exec(
            root,
            SECBIT_NOROOT | 1 << 1
        ));
        for uid in [1, 1000, 65534, u32::MAX - 1] {
            assert!(
                !had_root_privilege_before_exec(Uid::from_raw(uid), 0),
                "{uid}"
            );
        }
    }
}
