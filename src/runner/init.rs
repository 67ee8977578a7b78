//! PID 1 of the container: starts the command, reaps every process that ends up as its child, passes
//! signals that processes send it on to the command, and exits with the command's status. When it
//! exits, the kernel kills whatever is left in the pid namespace.

use nix::errno::Errno;
use nix::sys::signal::SigSet;
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

use super::command;
use super::container::{ContainerSpec, FORWARDED_SIGNALS, exit_code, forward_next_signal};
use super::error::RunError;
use crate::sys;

pub fn run(spec: &ContainerSpec, signals: &SigSet) -> Result<u8, RunError> {
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
            log::debug!("the command ended: exit status {code}");
            return Ok(code);
        }
        forward_next_signal(&sfd, command)?;
    }
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
