//! PID 1 of the container: sets the container up (groups, hostname, loopback, the filesystem), starts
//! the command, then serves as its init: reaps every process that ends up as its child, passes signals
//! that processes send it on to the command, and exits with the command's status. When it exits, the
//! kernel kills whatever is left in the pid namespace.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::signal::SigSet;
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::channel::Channel;
use super::cli::NetMode;
use super::confinement::{descriptors, keyring};
use super::error::RunError;
use super::spec::ContainerSpec;
use super::{command, exit, rootfs, signals, terminal};
use crate::sys;

/// PID 1, once started by the parent. Returns the status to exit with. A failure before the command
/// runs (set-up, or the command cannot be executed) goes to the parent through `channel`, which is
/// closed once the command runs: the container keeps nothing of the parent's.
/// `lent`: the holder's overlay of a pulled image, if it lent one (`lent_overlay`).
pub fn pid1(
    spec: &ContainerSpec,
    lent: Option<&OwnedFd>,
    signals: &SigSet,
    channel: Channel,
) -> u8 {
    // Processes in the container cannot open what PID 1 holds (/proc/1/exe, fd, root, cwd): a
    // process that is not dumpable is reached only with CAP_SYS_PTRACE in the initial user namespace.
    let _ = nix::sys::prctl::set_dumpable(false);
    let started = setup(spec, lent)
        .and_then(|()| keep_only_passed(spec, &channel))
        .and_then(|()| start_command(spec, signals, &channel));
    let (command, sfd) = match started {
        Ok(started) => started,
        Err(e) => return channel.fail(e),
    };
    drop(channel);
    match serve(command, &sfd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("unshare-run: {e}");
            exit::RUNNER_ERROR
        }
    }
}

fn setup(spec: &ContainerSpec, lent: Option<&OwnedFd>) -> Result<(), RunError> {
    if spec.session.is_own() {
        terminal::leave_caller_terminal()?;
    }
    if let Some(name) = &spec.confinement.keyring {
        keyring::join_new(name)?;
    }
    if spec.setgroups_allowed {
        // Unmapped supplementary groups would show up as nogroup inside.
        nix::unistd::setgroups(&[]).map_err(|e| RunError::sys("setgroups", e))?;
    }
    if let Some(name) = &spec.hostname {
        nix::unistd::sethostname(name).map_err(|e| RunError::sys("sethostname", e))?;
    }
    if spec.net == NetMode::None {
        sys::bring_up_loopback().map_err(|e| RunError::sys("bringing up lo", e))?;
    }
    rootfs::setup(spec, lent)
}

/// With a root filesystem, the container gets only the caller's descriptors that it passes
/// (`confinement::descriptors`); PID 1 keeps its channel to unshare-run until the command runs.
fn keep_only_passed(spec: &ContainerSpec, channel: &Channel) -> Result<(), RunError> {
    match spec.rootfs {
        Some(_) => descriptors::close_unpassed(&spec.passed_fds, channel.as_raw_fd()),
        None => Ok(()),
    }
}

/// Starts the command (on a terminal of the container's own, whose master goes to unshare-run through
/// `channel`, when the spec says so); its pid and the signalfd on which PID 1 reads what to forward.
fn start_command(
    spec: &ContainerSpec,
    signals: &SigSet,
    channel: &Channel,
) -> Result<(Pid, SignalFd), RunError> {
    let mut ignored_by_caller = Vec::new();
    for signal in signals::FORWARDED {
        // PID 1 only receives signals it has a handler for; they stay blocked and arrive on the fd.
        if sys::install_noop_handler(signal).map_err(|e| RunError::sys("sigaction", e))? {
            ignored_by_caller.push(signal);
        }
    }
    let sfd = SignalFd::with_flags(signals, SfdFlags::SFD_CLOEXEC)
        .map_err(|e| RunError::sys("signalfd", e))?;
    let prepared = command::prepare(&command::Invocation::of_spec(spec))?;
    let terminal = match spec.session.has_terminal() {
        true => {
            let pty = terminal::open(spec.uid)?;
            channel.send_terminal(pty.master.as_fd())?;
            // PID 1 keeps no end of it: once the command's processes are gone, unshare-run reads
            // the end of its output.
            Some(pty.terminal)
        }
        false => None,
    };
    let (command, failed) = command::spawn(
        &prepared,
        &ignored_by_caller,
        terminal.as_ref().map(|t| t.as_fd()),
        false,
    )?;
    drop(terminal);
    match failed {
        Some(error) => Err(error),
        None => Ok((command, sfd)),
    }
}

/// init's loop, until the command has exited: its status.
fn serve(command: Pid, sfd: &SignalFd) -> Result<u8, RunError> {
    loop {
        if let Some(code) = reap_all(command)? {
            log::debug!("the command ended: exit status {code}");
            return Ok(code);
        }
        signals::forward_next(sfd, command)?;
    }
}

/// Collects every exited child; the command's status once it has exited.
fn reap_all(command: Pid) -> Result<Option<u8>, RunError> {
    let mut status = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return Ok(status),
            Ok(ws) => {
                if ws.pid() == Some(command)
                    && let Some(code) = exit::of_process(ws)
                {
                    status = Some(code);
                }
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(RunError::sys("waitpid", e)),
        }
    }
}
