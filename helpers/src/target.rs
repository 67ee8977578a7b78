//! The process whose map is written: naming it, pinning it and checking who owns it.
//!
//! The target is pinned once as a `/proc/<pid>` directory descriptor; every later access goes through
//! that descriptor, so a pid reused after the check cannot redirect the write.

use std::fmt;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};

use nix::fcntl::{OFlag, open, openat};
use nix::sys::stat::{Mode, SFlag, fstat};
use nix::sys::statfs::{PROC_SUPER_MAGIC, fstatfs};

use crate::sys;

/// How the command line names the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetSpec {
    Pid(i32),
    /// `fd:N`: an inherited descriptor, a `/proc/<pid>` directory or a pidfd.
    Fd(RawFd),
}

#[derive(Debug, PartialEq, Eq)]
pub enum TargetError {
    InvalidSpec(String),
    /// The process does not exist or its /proc directory cannot be opened.
    CannotOpen(String, String),
    NotAProcessFd(RawFd),
    CannotStat(String, String),
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::InvalidSpec(s) => {
                write!(f, "Invalid target {s:?}: expected a pid or fd:N")
            }
            TargetError::CannotOpen(t, e) => {
                write!(f, "Could not open proc directory for target {t}: {e}")
            }
            TargetError::NotAProcessFd(fd) => write!(
                f,
                "Could not open proc directory for target fd:{fd}: not a /proc/<pid> directory or pidfd"
            ),
            TargetError::CannotStat(t, e) => {
                write!(f, "Could not stat directory for target {t}: {e}")
            }
        }
    }
}

/// `<pid>`: decimal, 1..=i32::MAX. `fd:<N>`: decimal, 0..=i32::MAX. Nothing else. Leading zeros are
/// accepted, as shadow's strtol base 10 accepts them ("010" is pid 10).
pub fn parse_target(arg: &[u8]) -> Result<TargetSpec, TargetError> {
    let invalid = || TargetError::InvalidSpec(String::from_utf8_lossy(arg).into_owned());
    let decimal = |s: &[u8]| -> Option<i32> {
        if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(s).ok()?.parse::<i32>().ok()
    };
    if let Some(fd) = arg.strip_prefix(b"fd:") {
        return decimal(fd).map(TargetSpec::Fd).ok_or_else(invalid);
    }
    match decimal(arg) {
        Some(pid) if pid >= 1 => Ok(TargetSpec::Pid(pid)),
        _ => Err(invalid()),
    }
}

/// A pinned target process.
#[derive(Debug)]
pub struct Target {
    /// `/proc/<pid>` of the target.
    pub proc_dir: OwnedFd,
    /// How the user named it, for messages only.
    pub label: String,
}

/// The owner of the target as the kernel reports it on `/proc/<pid>` (the process's effective ids while
/// it is dumpable, root otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetOwner {
    pub uid: u32,
    pub gid: u32,
}

pub fn open_target(spec: TargetSpec) -> Result<Target, TargetError> {
    match spec {
        TargetSpec::Pid(pid) => {
            let label = pid.to_string();
            let proc_dir =
                open_proc_pid_dir(pid).map_err(|e| TargetError::CannotOpen(label.clone(), e))?;
            Ok(Target { proc_dir, label })
        }
        TargetSpec::Fd(fd) => {
            let label = format!("fd:{fd}");
            let inherited = sys::borrow_inherited_fd(fd).ok_or(TargetError::NotAProcessFd(fd))?;
            let proc_dir = if is_proc_pid_dir(inherited) {
                inherited
                    .try_clone_to_owned()
                    .map_err(|e| TargetError::CannotOpen(label.clone(), e.to_string()))?
            } else if let Some(pid) = pidfd_pid(fd) {
                let dir = open_proc_pid_dir(pid)
                    .map_err(|e| TargetError::CannotOpen(label.clone(), e))?;
                // The pidfd pins the process: if it is still alive now, `pid` was not reused between the
                // fdinfo read and the open, so the directory is that process's.
                if !sys::pidfd_process_alive(inherited) {
                    return Err(TargetError::CannotOpen(
                        label,
                        "the process has exited".into(),
                    ));
                }
                dir
            } else {
                return Err(TargetError::NotAProcessFd(fd));
            };
            Ok(Target { proc_dir, label })
        }
    }
}

fn open_proc_pid_dir(pid: i32) -> Result<OwnedFd, String> {
    open(
        format!("/proc/{pid}").as_str(),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| e.desc().to_string())
}

/// A directory on procfs that has a uid_map: `/proc/<pid>` or `/proc/<pid>/task/<tid>`.
fn is_proc_pid_dir(fd: BorrowedFd<'_>) -> bool {
    let is_dir = fstat(fd)
        .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR);
    let on_procfs = fstatfs(fd).is_ok_and(|fs| fs.filesystem_type() == PROC_SUPER_MAGIC);
    is_dir
        && on_procfs
        && openat(
            fd,
            "uid_map",
            OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::empty(),
        )
        .is_ok()
}

/// The pid of the process behind pidfd `fd`, from `/proc/self/fdinfo/<fd>` (only pidfds have a "Pid:"
/// line there). `None` for other descriptors and for exited processes (the kernel shows -1).
fn pidfd_pid(fd: RawFd) -> Option<i32> {
    let mut info = String::new();
    std::fs::File::open(format!("/proc/self/fdinfo/{fd}"))
        .ok()?
        .take(4096)
        .read_to_string(&mut info)
        .ok()?;
    let pid: i32 = info
        .lines()
        .find_map(|l| l.strip_prefix("Pid:"))?
        .trim()
        .parse()
        .ok()?;
    (pid >= 1).then_some(pid)
}

pub fn target_owner(target: &Target) -> Result<TargetOwner, TargetError> {
    let st = fstat(target.proc_dir.as_fd())
        .map_err(|e| TargetError::CannotStat(target.label.clone(), e.desc().to_string()))?;
    Ok(TargetOwner {
        uid: st.st_uid,
        gid: st.st_gid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pids_and_fds() {
        assert_eq!(parse_target(b"1"), Ok(TargetSpec::Pid(1)));
        assert_eq!(parse_target(b"2147483647"), Ok(TargetSpec::Pid(i32::MAX)));
        assert_eq!(parse_target(b"fd:0"), Ok(TargetSpec::Fd(0)));
        assert_eq!(parse_target(b"fd:17"), Ok(TargetSpec::Fd(17)));
        // Leading zeros, as shadow's strtol base 10 reads them, at any length.
        assert_eq!(parse_target(b"010"), Ok(TargetSpec::Pid(10)));
        assert_eq!(parse_target(b"000000000000001"), Ok(TargetSpec::Pid(1)));
        assert_eq!(parse_target(b"fd:007"), Ok(TargetSpec::Fd(7)));
    }

    #[test]
    fn refuses_bad_pids() {
        for s in [
            &b""[..],
            b"0",
            b"-5",
            b"abc",
            b"12x",
            b" 12",
            b"+12",
            b"2147483648",
            b"99999999999",
            b"0x10",
            b"fd:",
            b"fd:-1",
            b"fd:x",
            b"FD:3",
            b"fd: 3",
        ] {
            assert!(parse_target(s).is_err(), "{:?}", String::from_utf8_lossy(s));
        }
    }

    #[test]
    fn opens_own_proc_dir_by_pid_and_fd() {
        let me = std::process::id() as i32;
        let t = open_target(TargetSpec::Pid(me)).unwrap();
        let owner = target_owner(&t).unwrap();
        assert_eq!(owner.uid, nix::unistd::geteuid().as_raw());
        assert!(is_proc_pid_dir(t.proc_dir.as_fd()));
    }

    #[test]
    fn pidfd_resolves_to_its_process() {
        use std::os::fd::AsRawFd;
        let me = std::process::id() as i32;
        let pidfd = sys::pidfd_open(me).unwrap();
        assert_eq!(pidfd_pid(pidfd.as_raw_fd()), Some(me));
        let t = open_target(TargetSpec::Fd(pidfd.as_raw_fd())).unwrap();
        assert!(is_proc_pid_dir(t.proc_dir.as_fd()));
    }

    #[test]
    fn other_descriptors_are_refused() {
        use std::os::fd::AsRawFd;
        let null = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(
            open_target(TargetSpec::Fd(null.as_raw_fd())).unwrap_err(),
            TargetError::NotAProcessFd(null.as_raw_fd())
        );
        let proc_root = std::fs::File::open("/proc").unwrap();
        assert_eq!(
            open_target(TargetSpec::Fd(proc_root.as_raw_fd())).unwrap_err(),
            TargetError::NotAProcessFd(proc_root.as_raw_fd())
        );
        assert!(open_target(TargetSpec::Fd(999_999)).is_err());
        assert!(open_target(TargetSpec::Pid(i32::MAX)).is_err());
    }
}
