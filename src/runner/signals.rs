//! The signals unshare-run and the container's PID 1 pass on to the command, and how: both block
//! them and read them from a signalfd, so that nothing sent during a start is lost.

use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::SignalFd;
use nix::unistd::Pid;

use super::error::RunError;

/// Signals passed on to the command when a process sends them to unshare-run or to PID 1.
pub const FORWARDED: [Signal; 7] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// si_code of a signal the kernel generated itself (e.g. the terminal's ^C): such signals already
/// reached every process of the foreground group, so forwarding them would deliver them twice.
const SI_KERNEL: i32 = 0x80;

/// The forwarded signals and SIGCHLD: what the supervisors block and read.
pub fn supervised() -> SigSet {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.add(Signal::SIGCHLD);
    set
}

fn is_user_sent(code: i32) -> bool {
    code != SI_KERNEL
}

/// A signal read from a signalfd.
#[derive(Clone, Copy, Debug)]
pub struct Received {
    pub signal: Signal,
    /// The kernel generated it (a terminal's ^C, SIGWINCH, a hang-up), rather than a process.
    pub by_kernel: bool,
}

/// Waits for the next signal on `sfd`. None for one that nix does not know (a real-time signal).
pub fn next(sfd: &SignalFd) -> Result<Option<Received>, RunError> {
    let Some(info) = sfd
        .read_signal()
        .map_err(|e| RunError::sys("reading signals", e))?
    else {
        return Ok(None);
    };
    Ok(Signal::try_from(info.ssi_signo as i32)
        .ok()
        .map(|signal| Received {
            signal,
            by_kernel: !is_user_sent(info.ssi_code),
        }))
}

/// Waits for the next signal on `sfd` (SIGCHLD included, so the caller can reap) and passes it on to
/// `target` if a process sent it: PID 1, whose command is in the same session as its terminal's
/// signals, if any.
pub fn forward_next(sfd: &SignalFd, target: Pid) -> Result<(), RunError> {
    if let Some(received) = next(sfd)?
        && received.signal != Signal::SIGCHLD
        && !received.by_kernel
    {
        let _ = kill(target, received.signal);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_signals_that_a_process_sent_are_forwarded() {
        assert!(!is_user_sent(SI_KERNEL));
        // SI_USER (kill), SI_QUEUE (sigqueue), SI_TKILL (tgkill).
        for code in [0, -1, -6] {
            assert!(is_user_sent(code));
        }
        let set = supervised();
        assert!(set.contains(Signal::SIGCHLD) && FORWARDED.iter().all(|&s| set.contains(s)));
    }
}
