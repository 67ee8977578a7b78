//! PID 1 of the container: starts the command, reaps every process that ends up as its child, passes
//! signals that processes send it on to the command, and once the command has exited ends what is
//! left, reports the status to unshare-run and exits with it.

use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

use super::command;
use super::container::{ContainerSpec, FORWARDED_SIGNALS, exit_code, forward_next_signal};
use super::error::RunError;
use crate::sys;

/// Returns only if the command could not be started or waited for; otherwise PID 1 ends in `finish`.
pub fn run(
    spec: &ContainerSpec,
    signals: &SigSet,
    status: OwnedFd,
) -> Result<std::convert::Infallible, RunError> {
    let mut ignored_by_caller = Vec::new();
    for signal in FORWARDED_SIGNALS {
        // PID 1 only receives signals it has a handler for; they stay blocked and arrive on the fd.
        if sys::install_noop_handler(signal).map_err(|e| RunError::sys("sigaction", e))? {
            ignored_by_caller.push(signal);
        }
    }
    let sfd = SignalFd::with_flags(signals, SfdFlags::SFD_CLOEXEC)
        .map_err(|e| RunError::sys("signalfd", e))?;
    let prepared = command::prepare(spec)?;
    let command = sys::spawn_sharing_memory(&mut || command::exec(&prepared, &ignored_by_caller))
        .map_err(|e| RunError::sys("starting the command", e))?;
    loop {
        if let Some(code) = reap_all(command)? {
            finish(&status, code);
        }
        forward_next_signal(&sfd, command)?;
    }
}

/// Kills and reaps whatever the command left running (daemons, orphans). The kernel would do the
/// same when PID 1 exits, but only this way is all of it gone before unshare-run returns.
fn end_remaining_processes() {
    // In a pid namespace, -1 means every process of the namespace except PID 1.
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(-1), Signal::SIGKILL);
    loop {
        match waitpid(None, None) {
            Err(Errno::EINTR) => continue,
            Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Ends the container once the command has exited: the processes it left are killed and reaped, PID
/// 1 closes every descriptor it holds (the caller's stdout and other pipes, whose readers wait for
/// all writers, and the image's in-use lock), then tells unshare-run the status. unshare-run exits
/// with it at once; PID 1's own exit tears down the namespaces, which it need not wait for.
fn finish(status: &OwnedFd, code: u8) -> ! {
    end_remaining_processes();
    sys::close_all_descriptors_but(status.as_fd());
    // If unshare-run is gone (killed), this fails or raises SIGPIPE: PID 1 is ending either way.
    let _ = nix::unistd::write(status, &[code]);
    sys::exit_now(i32::from(code))
}

/// Collects every exited child; the command's status once it has exited.
fn reap_all(command: nix::unistd::Pid) -> Result<Option<u8>, RunError> {
    let mut status = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return Ok(status),
            Ok(ws) => {
                if ws.pid() == Some(command)
                    && let Some(code) = exit_code(ws)
                {
                    status = Some(code);
                }
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(RunError::sys("waitpid", e)),
        }
    }
}
