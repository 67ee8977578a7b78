//! Children in new namespaces: the one sequence behind every start (the container's PID 1, the image
//! jobs, the holder), and the one that enters a running container's (exec). A channel to the child, clone(2) into a new user namespace (or into the holder's
//! one that this process joined), the id map written from outside while the child waits, then the
//! start. A child handle that is dropped before its child was started and waited for kills and reaps
//! it, so a failed set-up leaves no zombie and no half-made namespace behind.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::sched::CloneFlags;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

use super::channel::{self, Channel};
use super::error::RunError;
use super::exit;
use super::mapping::{MapPlan, write_maps};
use crate::sys::{self, Forked};

/// The user namespace a child starts in.
#[derive(Clone, Copy, Debug)]
pub enum UserNamespace<'a> {
    /// A new one, whose maps are written as the plan says before the child starts.
    New(&'a MapPlan),
    /// The one this process has joined (a holder's): its map exists.
    Joined,
}

/// The ids a child runs `body` with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildIds {
    /// The caller's own, as the namespace shows them (the holder, whose uid its clients check).
    Callers,
    /// uid and gid 0 inside: a child that acts as root (PID 1's set-up, the image jobs) where the
    /// caller is another id (keep-id), so that what it makes is root's inside, as with the full map.
    Root,
}

impl ChildIds {
    /// For a child that acts as root inside a namespace mapped as `plan` says.
    pub fn acting_as_root(plan: &MapPlan) -> ChildIds {
        match plan.is_keep_id() {
            true => ChildIds::Root,
            false => ChildIds::Callers,
        }
    }
}

/// Whether the child dies with this process (PR_SET_PDEATHSIG).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifetime {
    DiesWithParent,
    /// The holder: it serves later starts.
    Outlives,
}

/// A child made by `spawn`, waiting for `start` until it is started.
#[derive(Debug)]
pub struct Child {
    pid: Pid,
    channel: Channel,
    /// Reaped or let go: nothing left to clean up.
    done: bool,
}

/// Makes a child in `flags`' new namespaces (CLONE_NEWUSER added for a new user namespace) that runs
/// `body` once started and exits with its value. Returns once the child's maps are written. Only call
/// while single-threaded. `body` gets the child's end of the channel, to report a failure with
/// `Channel::fail`; it should drop it once nothing more can fail that the parent must hear of.
pub fn spawn(
    flags: CloneFlags,
    userns: UserNamespace<'_>,
    ids: ChildIds,
    lifetime: Lifetime,
    body: impl FnOnce(Channel) -> u8,
) -> Result<Child, RunError> {
    let (parent_end, child_end) = channel::pair()?;
    let flags = match userns {
        UserNamespace::New(_) => flags | CloneFlags::CLONE_NEWUSER,
        UserNamespace::Joined => flags,
    };
    log::debug!("clone into new namespaces: {flags:?}");
    match sys::clone_into(flags).map_err(clone_error)? {
        Forked::Child => {
            drop(parent_end);
            // If the parent dies before the line below takes effect, await_start sees it (EOF).
            let lifetime_set = lifetime == Lifetime::Outlives
                || nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_ok();
            let status = if lifetime_set && child_end.await_start() {
                match take_ids(ids, lifetime, &child_end) {
                    Ok(()) => body(child_end),
                    Err(e) => child_end.fail(e),
                }
            } else {
                exit::RUNNER_ERROR
            };
            sys::exit_now(i32::from(status))
        }
        Forked::Parent(pid) => {
            drop(child_end);
            let child = Child {
                pid,
                channel: parent_end,
                done: false,
            };
            if let UserNamespace::New(plan) = userns {
                write_maps(pid.as_raw(), plan)?;
            }
            Ok(child)
        }
    }
}

/// In the started child: becomes `ids`. The kernel forgets the parent-death signal when credentials
/// change, so it is set again, and a parent that died before that is noticed on the channel.
fn take_ids(ids: ChildIds, lifetime: Lifetime, channel: &Channel) -> Result<(), RunError> {
    if ids == ChildIds::Callers {
        return Ok(());
    }
    let root_gid = nix::unistd::Gid::from_raw(0);
    let root_uid = nix::unistd::Uid::from_raw(0);
    nix::unistd::setresgid(root_gid, root_gid, root_gid)
        .map_err(|e| RunError::sys("cannot become gid 0 inside", e))?;
    // From another uid to 0: the capabilities stay.
    nix::unistd::setresuid(root_uid, root_uid, root_uid)
        .map_err(|e| RunError::sys("cannot become uid 0 inside", e))?;
    if lifetime == Lifetime::DiesWithParent {
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
            .map_err(|e| RunError::sys("PR_SET_PDEATHSIG", e))?;
        if channel.peer_is_gone() {
            sys::exit_now(i32::from(exit::RUNNER_ERROR));
        }
    }
    Ok(())
}

impl Child {
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The master of the terminal that the started child opened for its command (its body sends it
    /// with `Channel::send_terminal`); None if the child failed first or ended.
    pub fn terminal(&self) -> Option<std::os::fd::OwnedFd> {
        self.channel.receive_terminal()
    }

    /// Whether the started child's command runs: it closed its end of the channel (after the
    /// command's exec) rather than report a failure (which stays for `finish`). Blocks until then.
    pub fn command_runs(&self) -> bool {
        self.channel.await_close()
    }

    /// Lets the child run `body`. If it is gone already, it is reaped and its report (or its status)
    /// is the error.
    pub fn start(&mut self) -> Result<(), RunError> {
        if self.channel.send_start().is_ok() {
            return Ok(());
        }
        let status = self.kill_and_reap();
        Err(self.channel.report().unwrap_or_else(|| {
            RunError::new(format!(
                "the process in the new namespaces ended before it was started ({status:?})"
            ))
        }))
    }

    /// The pid the child sends before it exits (`Channel::send_pid`); None if it reported a failure
    /// instead (it stays for `wait`) or ended.
    pub fn receive_pid(&self) -> Option<Pid> {
        self.channel.receive_pid().map(Pid::from_raw)
    }

    /// Waits for the started child to end; its status, or the failure it reported.
    pub fn wait(self) -> Result<u8, RunError> {
        loop {
            match waitpid(self.pid, None) {
                Ok(status) if exit::of_process(status).is_some() => return self.finish(status),
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(RunError::sys("waitpid", e)),
            }
        }
    }

    /// The outcome of a child that the caller reaped with `status`: the failure it reported, else its
    /// exit status.
    pub fn finish(mut self, status: WaitStatus) -> Result<u8, RunError> {
        self.done = true;
        if let Some(report) = self.channel.report() {
            return Err(report);
        }
        exit::of_process(status)
            .ok_or_else(|| RunError::new(format!("unexpected wait status {status:?}")))
    }

    /// A started child that lives on by itself (the holder): not waited for, not killed.
    pub fn release(mut self) {
        self.done = true;
    }

    fn kill_and_reap(&mut self) -> Option<WaitStatus> {
        self.done = true;
        let _ = kill(self.pid, Signal::SIGKILL);
        waitpid(self.pid, None).ok()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.done {
            self.kill_and_reap();
        }
    }
}

/// Forks a child that enters the namespaces of a running container: those of the process whose pidfd
/// is `target`, `flags` of them, the user namespace first, in one setns (Linux 5.8). The child is not
/// dumpable, keeps no descriptor above 2 but `target` and its channel, and leads a session of its
/// own without a controlling terminal before it joins, so that nothing in the container can reach
/// the caller through it. It then becomes `ids`, drops its supplementary groups where `setgroups`
/// allows, and runs `body` with its end of the channel; its value is the child's exit status. It
/// dies with this process. Only call while single-threaded.
pub fn enter(
    target: BorrowedFd<'_>,
    flags: CloneFlags,
    ids: ChildIds,
    setgroups: bool,
    body: impl FnOnce(Channel) -> u8,
) -> Result<Child, RunError> {
    let (parent_end, child_end) = channel::pair()?;
    match sys::clone_into(CloneFlags::empty()).map_err(|e| RunError::sys("fork", e))? {
        Forked::Child => {
            drop(parent_end);
            let status = match join(target, flags, ids, setgroups, &child_end) {
                Ok(()) => body(child_end),
                Err(e) => child_end.fail(e),
            };
            sys::exit_now(i32::from(status))
        }
        Forked::Parent(pid) => {
            drop(child_end);
            Ok(Child {
                pid,
                channel: parent_end,
                done: false,
            })
        }
    }
}

fn join(
    target: BorrowedFd<'_>,
    flags: CloneFlags,
    ids: ChildIds,
    setgroups: bool,
    channel: &Channel,
) -> Result<(), RunError> {
    // First: from here no process of the container may open what this one holds (/proc/PID/fd).
    nix::sys::prctl::set_dumpable(false).map_err(|e| RunError::sys("PR_SET_DUMPABLE", e))?;
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(|e| RunError::sys("PR_SET_PDEATHSIG", e))?;
    if channel.peer_is_gone() {
        sys::exit_now(i32::from(exit::RUNNER_ERROR));
    }
    sys::close_from_except(3, &[target.as_raw_fd(), channel.as_raw_fd()])
        .map_err(|e| RunError::sys("close_range", e))?;
    nix::unistd::setsid().map_err(|e| RunError::sys("setsid", e))?;
    nix::sched::setns(target, flags).map_err(|e| {
        let error = RunError::sys("cannot enter the container's namespaces", e);
        match e {
            nix::errno::Errno::EINVAL => error.with_hint("exec needs Linux 5.8 or later"),
            _ => error,
        }
    })?;
    take_ids(ids, Lifetime::DiesWithParent, channel)?;
    if setgroups {
        nix::unistd::setgroups(&[]).map_err(|e| RunError::sys("setgroups", e))?;
    }
    Ok(())
}

/// Runs `work` in a child in a new user namespace mapped as `plan` says (as uid 0 inside), for jobs on
/// files owned by subordinate ids (importing and removing images). The child dies with us; its error
/// comes back through the channel.
pub fn run_job(
    plan: &MapPlan,
    work: impl FnOnce() -> Result<(), RunError>,
) -> Result<(), RunError> {
    let mut child = spawn(
        CloneFlags::empty(),
        UserNamespace::New(plan),
        ChildIds::acting_as_root(plan),
        Lifetime::DiesWithParent,
        |channel| {
            if plan.allows_setgroups() {
                // Unmapped supplementary groups would show as nogroup on what the job makes.
                let _ = nix::unistd::setgroups(&[]);
            }
            match work() {
                Ok(()) => 0,
                Err(e) => channel.fail(e),
            }
        },
    )?;
    child.start()?;
    match child.wait()? {
        0 => Ok(()),
        status => Err(RunError::new(format!(
            "the job in the user namespace ended with status {status}"
        ))),
    }
}

fn clone_error(e: std::io::Error) -> RunError {
    let hint = match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::ENOSPC) | Some(libc::EUSERS) => {
            "unprivileged user namespaces may be disabled: check sysctl user.max_user_namespaces \
             (and kernel.apparmor_restrict_unprivileged_userns on Ubuntu)"
        }
        _ => "check that your kernel supports user, mount, pid, uts and ipc namespaces",
    };
    RunError::sys("cannot create the container's namespaces", e).with_hint(hint)
}
