//! The container's processes:
//!
//! ```text
//! unshare-run (host)                     supervises: forwards signals, waits, restores the terminal
//!   └─ PID 1 (new user/mount/pid/uts/ipc[/net] namespaces)   set-up, then init: reaps, forwards
//!        └─ the command
//! ```
//! The parent writes the id maps for PID 1 (through the helpers) while PID 1 waits on a pipe; then PID 1
//! sets up the filesystem and runs the command. PID 1 exits with the command's status; the kernel kills
//! whatever is left in the pid namespace and tears the namespaces down before the parent sees that
//! exit, so when unshare-run returns nothing of the container runs or holds the caller's descriptors.
//! Killing the parent, even with SIGKILL, kills PID 1 (parent-death signal) and with it everything in
//! the pid namespace.

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::cli::NetMode;
use super::error::RunError;
use super::mapping::{Helpers, MapPlan, write_maps};
use super::{holder, init, rootfs};
use crate::sys::{self, Forked};

/// Signals passed on to the command when a process sends them to unshare-run or to PID 1.
pub const FORWARDED_SIGNALS: [Signal; 7] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// PID 1's status when its set-up failed (it prints why).
const EXIT_SETUP_FAILED: u8 = 125;

/// si_code of a signal the kernel generated itself (e.g. the terminal's ^C): such signals already
/// reached every process of the foreground group, so forwarding them would deliver them twice.
const SI_KERNEL: i32 = 0x80;

/// Everything the container needs, resolved and validated.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    pub rootfs: Option<PathBuf>,
    pub net: NetMode,
    pub hostname: Option<String>,
    pub uid: u32,
    pub gid: u32,
    pub workdir: Option<PathBuf>,
    pub env: Vec<(OsString, OsString)>,
    pub binds: Vec<rootfs::Bind>,
    pub tmpfs: Vec<PathBuf>,
    /// Empty: an interactive shell.
    pub command: Vec<OsString>,
    /// Whether setgroups(2) works inside (full map): supplementary groups can then be dropped.
    pub setgroups_allowed: bool,
    /// Ports published through pasta.
    pub publish: Vec<super::cli::Publish>,
    /// How long a holder keeps the user namespace for later starts (zero: no holder).
    pub holder_idle: std::time::Duration,
    /// Writes go to an overlay instead of the root filesystem.
    pub overlay: Option<rootfs::Overlay>,
    /// The root filesystem is mounted read-only (its submounts keep their own flags).
    pub read_only_root: bool,
    /// Generated /etc/resolv.conf and /etc/hosts for the container (bound by PID 1, which then removes
    /// them and their directory).
    pub generated: Option<Generated>,
}

/// Files written for the container before it starts, in a private directory of the caller's.
#[derive(Debug, Clone)]
pub struct Generated {
    pub dir: PathBuf,
    /// Only with pasta (its DNS forwarder).
    pub resolv_conf: Option<PathBuf>,
    pub hosts: PathBuf,
}

/// The address inside at which pasta answers DNS queries (link-local, never a real server).
pub const PASTA_DNS: &str = "169.254.1.1";

pub fn signal_set() -> SigSet {
    let mut set = SigSet::empty();
    for s in FORWARDED_SIGNALS {
        set.add(s);
    }
    set.add(Signal::SIGCHLD);
    set
}

fn is_user_sent(code: i32) -> bool {
    code != SI_KERNEL
}

/// Runs the container; returns the exit status for unshare-run.
pub fn run(
    spec: &ContainerSpec,
    plan: &MapPlan,
    helpers: Option<&Helpers>,
) -> Result<u8, RunError> {
    // A holder's user namespace, joined: the map exists already and no helper runs.
    let joined = match holder_namespace(spec, plan, helpers)? {
        Some(ns) => nix::sched::setns(&ns, CloneFlags::CLONE_NEWUSER).is_ok(),
        None => false,
    };
    let signals = signal_set();
    // Blocked before the clone so that nothing sent meanwhile is lost; read through a signalfd.
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&signals), None)
        .map_err(|e| RunError::sys("sigprocmask", e))?;
    let (go_read, go_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| RunError::sys("pipe", e))?;
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC;
    if !joined {
        flags |= CloneFlags::CLONE_NEWUSER;
    }
    if spec.net != NetMode::Host {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    log::debug!("clone into new namespaces: {flags:?}");
    match sys::clone_into(flags).map_err(clone_error)? {
        Forked::Child => {
            drop(go_write);
            let code = pid1(spec, go_read, &signals);
            sys::exit_now(i32::from(code));
        }
        Forked::Parent(child) => {
            drop(go_read);
            let mapped = if joined {
                Ok(())
            } else {
                write_maps(child.as_raw(), plan, helpers)
            };
            let started = mapped.and_then(|()| {
                // pasta joins the (now mapped) user namespace to configure the network namespace.
                match spec.net {
                    NetMode::Pasta => start_pasta(child, &spec.publish).map(Some),
                    _ => Ok(None),
                }
            });
            let pasta = match started {
                Ok(pasta) => pasta,
                Err(e) => {
                    kill_and_reap(child);
                    return Err(e);
                }
            };
            let status = start_and_supervise(child, go_write, &signals);
            if let Some(mut pasta) = pasta {
                let _ = pasta.kill();
                let _ = pasta.wait();
            }
            status
        }
    }
}

/// The user namespace of the caller's holder for `plan`, made now if there is none (see `holder`).
/// None when holders are off, the map is a single id (nothing to save), or with pasta (which joins
/// the container's namespaces from outside them).
fn holder_namespace(
    spec: &ContainerSpec,
    plan: &MapPlan,
    helpers: Option<&Helpers>,
) -> Result<Option<OwnedFd>, RunError> {
    if spec.holder_idle.is_zero() || spec.net == NetMode::Pasta {
        return Ok(None);
    }
    let uid = nix::unistd::getuid().as_raw();
    let Some(socket) = holder::socket_path(uid, plan) else {
        return Ok(None);
    };
    if let Some(ns) = holder::join(&socket, uid, plan) {
        log::debug!("joined the holder at {}", socket.display());
        return Ok(Some(ns));
    }
    log::debug!(
        "no holder at {}: starting one (idle {} s)",
        socket.display(),
        spec.holder_idle.as_secs()
    );
    holder::spawn(plan, helpers, &socket, spec.holder_idle).map(Some)
}

/// Runs `work` in a child process in a new user namespace with the ids of `plan` (uid 0 inside),
/// for jobs on files owned by subordinate ids (importing and removing images). Returns the child's
/// exit status; the child dies with us.
pub fn run_in_user_namespace(
    plan: &MapPlan,
    helpers: Option<&Helpers>,
    work: impl FnOnce() -> u8,
) -> Result<u8, RunError> {
    let (go_read, go_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| RunError::sys("pipe", e))?;
    match sys::clone_into(CloneFlags::CLONE_NEWUSER).map_err(clone_error)? {
        Forked::Child => {
            drop(go_write);
            let started =
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_ok() && await_start(go_read);
            if !started {
                sys::exit_now(i32::from(EXIT_SETUP_FAILED));
            }
            if matches!(plan, MapPlan::Full { .. }) {
                let _ = nix::unistd::setgroups(&[]);
            }
            sys::exit_now(i32::from(work()))
        }
        Forked::Parent(child) => {
            drop(go_read);
            start_and_wait(child, go_write, plan, helpers)
        }
    }
}

fn start_and_wait(
    child: Pid,
    go_write: OwnedFd,
    plan: &MapPlan,
    helpers: Option<&Helpers>,
) -> Result<u8, RunError> {
    if let Err(e) = write_maps(child.as_raw(), plan, helpers) {
        kill_and_reap(child);
        return Err(e);
    }
    let _ = send_start(go_write);
    loop {
        match waitpid(child, None) {
            Ok(status) => {
                if let Some(code) = exit_code(status) {
                    return Ok(code);
                }
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(RunError::sys("waitpid", e)),
        }
    }
}

/// A child that will not be started (its maps or pasta failed): killed and reaped, so that no zombie
/// and no half-made namespace is left.
pub fn kill_and_reap(child: Pid) {
    let _ = kill(child, Signal::SIGKILL);
    let _ = waitpid(child, None);
}

/// In a child made with a start pipe: waits until the parent has written the map and sends the
/// start byte. False: the parent failed (and says why) or died.
pub fn await_start(go: OwnedFd) -> bool {
    let mut byte = [0u8; 1];
    matches!(nix::unistd::read(&go, &mut byte), Ok(1)) && byte[0] == b'G'
}

/// Sends the start byte. If the child is already gone this fails with EPIPE instead of killing us:
/// SIGPIPE is blocked for the write, and the one it raised is taken before the mask is restored (the
/// container must get the caller's disposition of SIGPIPE, so it is not left blocked).
pub fn send_start(go: OwnedFd) -> std::io::Result<()> {
    let mut sigpipe = SigSet::empty();
    sigpipe.add(Signal::SIGPIPE);
    let mut old_mask = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&sigpipe), Some(&mut old_mask))?;
    let sent = nix::unistd::write(&go, b"G");
    if sent == Err(nix::errno::Errno::EPIPE) && !old_mask.contains(Signal::SIGPIPE) {
        let _ = sigpipe.wait();
    }
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old_mask), None)?;
    sent.map(drop).map_err(std::io::Error::from)
}

/// Lets PID 1 start, then supervises it until it exits.
fn start_and_supervise(child: Pid, go_write: OwnedFd, signals: &SigSet) -> Result<u8, RunError> {
    if let Err(e) = send_start(go_write) {
        // PID 1 died before it started: its status says why (it printed the reason).
        let _ = kill(child, Signal::SIGKILL);
        return match waitpid(child, None) {
            Ok(status) => Ok(exit_code(status).unwrap_or(EXIT_SETUP_FAILED)),
            Err(_) => Err(RunError::sys("starting the container", e)),
        };
    }
    supervise(child, signals)
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

/// Connects the network namespace of `pid` to the host's network with pasta: outbound traffic and DNS
/// (at PASTA_DNS), and only the published ports inbound; nothing of the host's own ports or loopback is
/// reachable from inside. pasta runs in the foreground as our child and dies with us (even on
/// SIGKILL); the returned child is stopped when the container ends.
fn start_pasta(pid: Pid, publish: &[super::cli::Publish]) -> Result<std::process::Child, RunError> {
    use std::process::{Command, Stdio};
    let mut cmd = Command::new("pasta");
    cmd.args(["--foreground", "--quiet", "--config-net", "--no-map-gw"])
        .args(["--dns-forward", PASTA_DNS, "-T", "none", "-U", "none"]);
    for (flag, udp) in [("-t", false), ("-u", true)] {
        let specs: Vec<String> = publish
            .iter()
            .filter(|p| p.udp == udp)
            .map(|p| {
                let addr = p.host_ip.map(|ip| format!("{ip}/")).unwrap_or_default();
                format!("{addr}{}:{}", p.host_port, p.container_port)
            })
            .collect();
        if specs.is_empty() {
            cmd.args([flag, "none"]);
        }
        for spec in specs {
            cmd.args([flag, &spec]);
        }
    }
    cmd.arg(pid.as_raw().to_string());
    // Where pasta's complaints go, to quote them if it fails (without the file: not quoted).
    let log = tempfile_for_output().ok();
    let stderr = match log.as_ref().and_then(|l| l.try_clone().ok()) {
        Some(file) => Stdio::from(file),
        None => Stdio::null(),
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    let mut child = crate::sys::spawn_dying_with_parent(&mut cmd).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            "install pasta: apt-get install passt (or dnf install passt)"
        } else {
            "check that pasta can be run"
        };
        RunError::sys("cannot run pasta", e).with_hint(hint)
    })?;
    // Ready when the namespace has its default route, the last thing --config-net sets.
    let route = format!("/proc/{}/net/route", pid.as_raw());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let configured = std::fs::read_to_string(&route).is_ok_and(|r| {
            r.lines()
                .skip(1)
                .any(|l| l.split_whitespace().nth(1) == Some("00000000"))
        });
        if configured {
            return Ok(child);
        }
        let exited = child.try_wait().ok().flatten().is_some();
        if exited || std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let mut text = String::new();
            if let Some(mut log) = log.as_ref() {
                // The descriptor shares its offset with pasta's, which is at the end.
                let _ = std::io::Seek::seek(&mut log, std::io::SeekFrom::Start(0));
                let _ = std::io::Read::read_to_string(&mut log, &mut text);
            }
            let said: Vec<&str> = text.lines().filter(|l| !l.contains("syslog")).collect();
            let tun_usable = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/net/tun")
                .is_ok();
            let hint = if tun_usable {
                "see pasta's message above"
            } else {
                "/dev/net/tun is not usable: as root, chmod 0666 /dev/net/tun (the mode distributions ship)"
            };
            return Err(RunError::new(format!(
                "pasta could not set up the network: {}",
                if said.is_empty() {
                    "no message".to_string()
                } else {
                    said.join("; ")
                }
            ))
            .with_hint(hint));
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// An anonymous file (already unlinked) in the temporary directory, e.g. for pasta's error output.
pub fn tempfile_for_output() -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .open(std::env::temp_dir())
}

/// The parent: forwards signals that processes send it, waits for PID 1, returns its status.
fn supervise(child: Pid, signals: &SigSet) -> Result<u8, RunError> {
    let sfd = SignalFd::with_flags(signals, SfdFlags::SFD_CLOEXEC)
        .map_err(|e| RunError::sys("signalfd", e))?;
    loop {
        // A SIGCHLD may have been merged with an earlier one: always check before blocking.
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(status) => {
                if let Some(code) = exit_code(status) {
                    restore_terminal_foreground();
                    return Ok(code);
                }
            }
            Err(e) => return Err(RunError::sys("waitpid", e)),
        }
        forward_next_signal(&sfd, child)?;
    }
}

/// Waits for the next signal on `sfd` (SIGCHLD included, so the caller can reap) and passes it on to
/// `target` if a process sent it. Signals the kernel generated (the terminal's ^C) already reached
/// every process of the foreground group; forwarding them would deliver them twice.
pub fn forward_next_signal(sfd: &SignalFd, target: Pid) -> Result<(), RunError> {
    let Some(info) = sfd
        .read_signal()
        .map_err(|e| RunError::sys("reading signals", e))?
    else {
        return Ok(());
    };
    let signo = info.ssi_signo as i32;
    if signo != libc::SIGCHLD
        && is_user_sent(info.ssi_code)
        && let Ok(signal) = Signal::try_from(signo)
    {
        let _ = kill(target, signal);
    }
    Ok(())
}

/// The shell statuses: the exit code, or 128 + the signal number.
pub fn exit_code(status: WaitStatus) -> Option<u8> {
    match status {
        WaitStatus::Exited(_, code) => Some(code as u8),
        WaitStatus::Signaled(_, signal, _) => Some(128u8.wrapping_add(signal as u8)),
        _ => None,
    }
}

/// An interactive shell inside took the terminal's foreground; give it back to our process group.
fn restore_terminal_foreground() {
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
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

/// PID 1: waits for the maps, sets up, then becomes init. Returns the status to exit with.
fn pid1(spec: &ContainerSpec, go: OwnedFd, signals: &SigSet) -> u8 {
    // If unshare-run dies from here on, so does the whole container.
    if nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_err() {
        return EXIT_SETUP_FAILED;
    }
    if !await_start(go) {
        return EXIT_SETUP_FAILED;
    }
    match setup(spec).and_then(|()| init::run(spec, signals)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("unshare-run: {e}");
            EXIT_SETUP_FAILED
        }
    }
}

fn setup(spec: &ContainerSpec) -> Result<(), RunError> {
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
    rootfs::setup(spec)
}
