//! The container's processes:
//!
//! ```text
//! unshare-run (host)                     supervises: relays the container's terminal, forwards signals,
//!                                        waits, restores the caller's terminal
//!   └─ PID 1 (new user/mount/pid/uts/ipc[/net] namespaces)   set-up, then init: reaps, forwards
//!        └─ the command
//! ```
//! The parent writes the id maps for PID 1 (through the helpers) while PID 1 waits (`userns`); then
//! PID 1 sets up the filesystem and runs the command (`init`), and tells the parent through their
//! channel if that failed. PID 1 exits with the command's status; the kernel kills whatever is left in
//! the pid namespace and tears the namespaces down before the parent sees that exit, so when
//! unshare-run returns nothing of the container runs or holds the caller's descriptors. Killing the
//! parent, even with SIGKILL, kills PID 1 (parent-death signal) and with it everything in the pid
//! namespace.

use std::os::fd::AsFd;

use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::cli::NetMode;
use super::error::RunError;
use super::mapping::MapPlan;
use super::network::PastaTarget;
use super::spec::ContainerSpec;
use super::terminal::{self, Relay, Session};
use super::userns::{self, ChildIds, Lifetime, UserNamespace};
use super::{exit, holder, init, network, rootfs, signals};

/// How a start gets its network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attachment {
    /// The host's, or a namespace joined before the clone (the holder's private network).
    Inherited,
    /// A new namespace of the container's own, with only the loopback interface.
    Own,
    /// A new namespace of the container's own, connected by a pasta of its own.
    OwnPasta,
}

/// Runs the container; returns the exit status for unshare-run. `running`, if given, is called with
/// PID 1's pid once the command runs (a named container's record); without it nothing waits for that.
pub fn run(
    spec: &ContainerSpec,
    plan: &MapPlan,
    running: Option<&mut dyn FnMut(Pid)>,
) -> Result<u8, RunError> {
    // A holder's user namespace, joined: the map exists already and no helper runs. The lease keeps
    // the holder (and the private network's pasta) until the container has ended.
    let lease = holder_lease(spec, plan)?;
    let joined = lease
        .as_ref()
        .is_some_and(|l| nix::sched::setns(&l.user, CloneFlags::CLONE_NEWUSER).is_ok());
    let attachment = attach_network(spec.net, lease.as_ref().filter(|_| joined))?;
    // A pulled image's overlay, which the holder keeps mounted. Under keep-id the holder has no
    // capability to mount one.
    let lent = match lease.as_ref().filter(|_| joined && !plan.is_keep_id()) {
        Some(lease) => rootfs::overlay_request(spec).and_then(|r| lease.overlay(&r)),
        None => None,
    };
    let signals = signals::supervised();
    // Blocked before the clone so that nothing sent meanwhile is lost; read through a signalfd.
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&signals), None)
        .map_err(|e| RunError::sys("sigprocmask", e))?;
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC;
    if attachment != Attachment::Inherited {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    let userns = if joined {
        UserNamespace::Joined
    } else {
        UserNamespace::New(plan)
    };
    // PID 1 sets the container up as root inside; the command then becomes its own user.
    let ids = ChildIds::acting_as_root(plan);
    let mut pid1 = userns::spawn(flags, userns, ids, Lifetime::DiesWithParent, |channel| {
        init::pid1(spec, lent.as_ref(), &signals, channel)
    })?;
    // PID 1 has its own descriptor of it.
    drop(lent);
    // pasta joins the (now mapped) user namespace to configure the network namespace.
    let mut pasta = match attachment {
        Attachment::OwnPasta => Some(network::start_pasta(
            PastaTarget::Container(pid1.pid()),
            &spec.publish,
            &spec.pasta_options,
        )?),
        _ => None,
    };
    let status = pid1.start().and_then(|()| {
        // The terminal's master comes before the command runs; the relay restores the caller's
        // terminal when it is dropped, before anything is reported.
        let relay = match spec.session.has_terminal() {
            true => pid1.terminal().map(Relay::start).transpose()?,
            false => None,
        };
        if let Some(running) = running
            && pid1.command_runs()
        {
            running(pid1.pid());
        }
        supervise(pid1.pid(), &signals, spec.session, relay)
    });
    // Also when PID 1 could not be started: pasta goes with the container.
    if let Some(pasta) = pasta.as_mut() {
        let _ = pasta.kill();
        let _ = pasta.wait();
    }
    let outcome = pid1.finish(status?);
    drop(lease);
    outcome
}

/// The network of a container started with `net`: a private one is the holder's when this start
/// joined a holder (its namespace is joined here, so that PID 1 is made in it), else a pasta of the
/// container's own; never the host's.
fn attach_network(net: NetMode, lease: Option<&holder::Lease>) -> Result<Attachment, RunError> {
    Ok(match net {
        NetMode::Host => Attachment::Inherited,
        NetMode::None => Attachment::Own,
        NetMode::Pasta => Attachment::OwnPasta,
        NetMode::Private => match lease.and_then(|l| l.network.as_ref()) {
            Some(namespace) => {
                nix::sched::setns(namespace, CloneFlags::CLONE_NEWNET)
                    .map_err(|e| RunError::sys("cannot join the private network", e))?;
                log::debug!("joined the holder's private network");
                Attachment::Inherited
            }
            None => Attachment::OwnPasta,
        },
    })
}

/// A lease of the caller's holder for `plan` (made now if there is none, see `holder`), with its
/// private network for `--net private`. None when holders are off, the map is a single id (nothing
/// to save), with pasta (which joins the container's namespaces from outside them), and for a
/// keep-id container's private network.
fn holder_lease(spec: &ContainerSpec, plan: &MapPlan) -> Result<Option<holder::Lease>, RunError> {
    // Under keep-id the holder and a process that joins its user namespace are the caller's own uid
    // there, not root: they keep no capability across exec, so the holder cannot keep a network and
    // a pasta started after the join could not configure one. A private network is then a pasta of
    // the container's own, started from outside a user namespace of its own.
    let keep_id_network = plan.is_keep_id() && spec.net == NetMode::Private;
    if spec.holder_idle.is_zero() || spec.net == NetMode::Pasta || keep_id_network {
        return Ok(None);
    }
    let uid = nix::unistd::getuid().as_raw();
    let Some(socket) = holder::socket_path(uid, plan) else {
        return Ok(None);
    };
    let network = spec.net == NetMode::Private;
    if let Some(lease) = holder::join(&socket, uid, plan, network)? {
        log::debug!("joined the holder at {}", socket.display());
        return Ok(Some(lease));
    }
    log::debug!(
        "no holder at {}: starting one (idle {} s)",
        socket.display(),
        spec.holder_idle.as_secs()
    );
    let user = holder::spawn(plan, &socket, spec.holder_idle)?;
    if !network {
        return Ok(Some(holder::Lease::of_spawned(user)));
    }
    holder::join_when_listening(&socket, uid, plan, network).map(Some)
}

/// The parent: relays the container's terminal, if it has one, passes signals on, waits for PID 1;
/// its wait status. Signals that a process sends are passed on; so are those that the caller's
/// terminal sends when the container's processes are in a session of their own (they are out of
/// its foreground group). With a terminal, a window size change is copied instead, and signals
/// that would stop or end unshare-run give the caller's terminal back first.
pub fn supervise(
    child: Pid,
    signals: &SigSet,
    session: Session,
    mut relay: Option<Relay>,
) -> Result<WaitStatus, RunError> {
    let mut watched = *signals;
    if relay.is_some() {
        for signal in terminal::CAUGHT_WHILE_RAW {
            watched.add(signal);
        }
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&watched), None)
            .map_err(|e| RunError::sys("sigprocmask", e))?;
    }
    let sfd = SignalFd::with_flags(&watched, SfdFlags::SFD_CLOEXEC)
        .map_err(|e| RunError::sys("signalfd", e))?;
    loop {
        // A SIGCHLD may have been merged with an earlier one: always check before blocking.
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(status) if exit::of_process(status).is_some() => {
                if let Some(relay) = relay.as_mut() {
                    relay.drain();
                }
                if session == Session::Caller {
                    restore_terminal_foreground();
                }
                return Ok(status);
            }
            Ok(_) => {}
            Err(e) => return Err(RunError::sys("waitpid", e)),
        }
        if let Some(relay) = relay.as_mut() {
            relay.until_readable(sfd.as_fd())?;
        }
        let Some(received) = signals::next(&sfd)? else {
            continue;
        };
        match (received.signal, relay.as_mut()) {
            (Signal::SIGCHLD, _) => {}
            (Signal::SIGWINCH, Some(relay)) => relay.resize(),
            (Signal::SIGTSTP, Some(relay)) => {
                relay.suspend();
                let _ = kill(nix::unistd::getpid(), Signal::SIGSTOP);
                relay.resume();
            }
            (Signal::SIGCONT, Some(relay)) => relay.resume(),
            (signal, Some(_)) if terminal::CAUGHT_WHILE_RAW.contains(&signal) => {
                drop(relay.take());
                crate::sys::die_by(signal)
            }
            (signal, _) if !received.by_kernel || session.is_own() => {
                let _ = kill(child, signal);
            }
            _ => {}
        }
    }
}

/// An interactive shell inside took the terminal's foreground; give it back to our process group.
/// Only a container in the caller's session (host mode) can have taken it.
fn restore_terminal_foreground() {
    let fd = terminal::stdin();
    if !nix::unistd::isatty(fd).unwrap_or(false) {
        return;
    }
    let ours = nix::unistd::getpgrp();
    if nix::unistd::tcgetpgrp(fd).is_ok_and(|fg| fg != ours) {
        // A background process changing the foreground gets SIGTTOU unless it blocks it.
        let mut ttou = SigSet::empty();
        ttou.add(Signal::SIGTTOU);
        let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&ttou), None);
        let _ = nix::unistd::tcsetpgrp(fd, ours);
    }
}
