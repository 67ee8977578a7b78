//! Whether a container's processes are the ones its record names: a process is named by its pid and
//! its start time (field 22 of /proc/PID/stat, in clock ticks since boot), so a pid that another
//! process took later is never mistaken for it; it is signalled only through a pidfd opened before
//! that check. A record from another boot (boot_id) names no process at all.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::runner::error::RunError;
use crate::sys;

/// This boot's id (/proc/sys/kernel/random/boot_id).
pub fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(id.trim().to_string())
}

/// When process `pid` started, in clock ticks since boot; None if there is none.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    start_time_in(&stat)
}

/// Field 22 of a /proc/PID/stat line: the command's name (field 2) is in parentheses and may hold
/// any character, `)` and spaces too, so the fields are counted after its last `)`.
fn start_time_in(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    // Field 3 (state) is the first after the name: field 22 is the 20th.
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// A process as a record names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    pub pid: i32,
    pub start: u64,
}

impl ProcessId {
    /// The process `pid` now.
    pub fn of(pid: Pid) -> Option<ProcessId> {
        Some(ProcessId {
            pid: pid.as_raw(),
            start: start_time(pid.as_raw())?,
        })
    }

    pub fn is_alive(&self) -> bool {
        self.pid > 0 && start_time(self.pid) == Some(self.start)
    }

    /// A pidfd of this process, if it still runs: opened first, then checked, so that it cannot be
    /// another process's.
    pub fn open(&self) -> Option<Process> {
        if self.pid <= 0 {
            return None;
        }
        let pidfd = sys::pidfd_open(Pid::from_raw(self.pid)).ok()?;
        self.is_alive().then_some(Process(pidfd))
    }
}

/// A running process, by pidfd.
#[derive(Debug)]
pub struct Process(OwnedFd);

impl AsFd for Process {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl Process {
    pub fn signal(&self, signal: Signal) -> Result<(), RunError> {
        match sys::pidfd_send_signal(self.0.as_fd(), signal) {
            Ok(()) => Ok(()),
            // It ended meanwhile.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            Err(e) => Err(RunError::sys(format!("cannot send {signal}"), e)),
        }
    }

    /// Waits until the process has ended (a pidfd becomes readable then), at most `timeout`;
    /// whether it has.
    pub fn wait_exit(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let millis = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.0.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(millis)) {
                Ok(n) if n > 0 => return true,
                Ok(_) if left.is_zero() => return false,
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(_) => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_time_is_read_after_the_last_parenthesis() {
        let fields: Vec<String> = (3..=52).map(|n| n.to_string()).collect();
        let line = format!("42 (a) (b) c) {}\n", fields.join(" "));
        assert_eq!(start_time_in(&line), Some(22));
        assert_eq!(start_time_in("42 (x) S 1"), None);
        assert_eq!(start_time_in("no parenthesis"), None);
        let me = ProcessId::of(nix::unistd::getpid()).unwrap();
        assert!(me.is_alive() && me.start > 0);
        assert!(me.open().is_some());
        let other = ProcessId {
            start: me.start + 1,
            ..me
        };
        assert!(!other.is_alive() && other.open().is_none());
    }

    #[test]
    fn the_boot_id_is_a_uuid() {
        assert_eq!(boot_id().unwrap().len(), 36);
    }

    #[test]
    fn a_pidfd_says_when_its_process_ends() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let id = ProcessId::of(Pid::from_raw(child.id() as i32)).unwrap();
        let process = id.open().unwrap();
        assert!(!process.wait_exit(Duration::from_millis(50)));
        process.signal(Signal::SIGKILL).unwrap();
        assert!(process.wait_exit(Duration::from_secs(5)));
        let _ = child.wait();
        // Ended and reaped: the pid names nothing, and a signal through the old pidfd reaches nobody.
        assert!(id.open().is_none());
        process.signal(Signal::SIGTERM).unwrap();
    }
}
