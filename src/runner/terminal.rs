//! The container's terminal: a container never holds the caller's terminal.
//!
//! With --rootfs the command runs in a session of its own. Without a terminal of its own it has no
//! controlling terminal, so a terminal it inherited on stdin cannot be used to push input into the
//! caller's shell (TIOCSTI needs the controlling terminal: bubblewrap's CVE-2017-5226). With one
//! (stdin and stdout are terminals, or -t), PID 1 opens a pseudo-terminal in the container's own
//! devpts, so that `tty` names it, and passes its master to unshare-run, which relays between it and
//! the caller's terminal, held in raw mode until the container ends: keys such as ^C and ^Z reach the
//! container's foreground job through its own line discipline.
//!
//! The pieces, in the order a start uses them: `session_for` (the decision), `open` (in PID 1),
//! `enter_session` (in the command's process, before exec), `Relay` (in unshare-run). `exec -t` and
//! a later detach with logs use the same pieces.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::sys::termios::{self, LocalFlags, SetArg, SpecialCharacterIndices, Termios};
use nix::unistd::Pid;

use super::error::RunError;
use crate::sys::terminal::{self as tty, Standard};

/// The caller's stdin, which the relay reads and whose settings it changes.
pub fn stdin() -> BorrowedFd<'static> {
    tty::standard(Standard::Input)
}

/// Which session the command runs in, and on which terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Session {
    /// The caller's session (host mode, which is not a boundary): job control on the caller's
    /// terminal, as before.
    Caller,
    /// A session of its own without a controlling terminal.
    Own,
    /// A session of its own whose controlling terminal is a pseudo-terminal of the container's, on
    /// stdin and stdout, and on stderr when `stderr` (the caller's stderr is a terminal too: a
    /// stderr redirected to a file stays separate).
    OwnTerminal { stderr: bool },
}

impl Session {
    /// Whether the container's processes are out of the caller's session, and so out of its terminal's
    /// foreground group: the signals that terminal sends (^C while unshare-run is not in raw mode)
    /// reach only unshare-run, which must pass them on.
    pub fn is_own(self) -> bool {
        self != Session::Caller
    }

    pub fn has_terminal(self) -> bool {
        matches!(self, Session::OwnTerminal { .. })
    }
}

/// What unshare-run's standard descriptors are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallerStdio {
    pub stdin_tty: bool,
    pub stdout_tty: bool,
    pub stderr_tty: bool,
    /// unshare-run is in its terminal's foreground process group (a background job may not take the
    /// terminal into raw mode, nor read from it).
    pub foreground: bool,
}

impl CallerStdio {
    pub fn probe() -> CallerStdio {
        let is_tty = |fd: BorrowedFd<'_>| nix::unistd::isatty(fd).unwrap_or(false);
        let stdin_tty = is_tty(stdin());
        CallerStdio {
            stdin_tty,
            stdout_tty: is_tty(tty::standard(Standard::Output)),
            stderr_tty: is_tty(tty::standard(Standard::Error)),
            foreground: stdin_tty
                && nix::unistd::tcgetpgrp(stdin()).is_ok_and(|g| g == nix::unistd::getpgrp()),
        }
    }
}

/// The session for a container: `tty` is -t/--tty (None: not given), `rootfs` whether it has a root
/// filesystem of its own. By default a --rootfs container gets a terminal when unshare-run runs in
/// the foreground of a terminal on stdin and stdout (podman's `-it`, which is what an interactive
/// user means); --tty=false forces none; -t forces one, also in host mode.
pub fn session_for(tty: Option<bool>, rootfs: bool, caller: CallerStdio) -> Session {
    let terminal = match tty {
        Some(wanted) => wanted,
        None => rootfs && caller.stdin_tty && caller.stdout_tty && caller.foreground,
    };
    match (terminal, rootfs) {
        (true, _) => Session::OwnTerminal {
            stderr: caller.stderr_tty,
        },
        (false, true) => Session::Own,
        (false, false) => Session::Caller,
    }
}

/// In PID 1, first, for a session of the container's own: out of the caller's terminal. A process
/// group of its own keeps the terminal's ^C and ^Z from reaching the container directly (unshare-run
/// passes them on); giving up the controlling terminal leaves no process in the container able to
/// use the caller's terminal (TIOCSTI and TIOCLINUX need it to be theirs, and a process that leads
/// no session cannot take one, nor open /dev/tty). Not setsid, which does the same but, with the
/// scheduler's autogroups (the kernel default), also makes a scheduler group for each container: 2%
/// of a start here (docs/benchmarks.md). setsid is the fallback when /dev/tty cannot be opened for
/// another reason than there being no controlling terminal.
pub fn leave_caller_terminal() -> Result<(), RunError> {
    nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0))
        .map_err(|e| RunError::sys("setpgid", e))?;
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let given_up = match nix::fcntl::open("/dev/tty", flags, Mode::empty()) {
        Ok(controlling) => tty::give_up_controlling(controlling.as_fd()).is_ok(),
        Err(Errno::ENXIO) => true,
        Err(_) => false,
    };
    if !given_up {
        nix::unistd::setsid().map_err(|e| RunError::sys("setsid", e))?;
    }
    Ok(())
}

/// A pseudo-terminal opened inside the container.
pub struct Pty {
    /// Passed to unshare-run, which relays it.
    pub master: OwnedFd,
    /// The command's controlling terminal.
    pub terminal: OwnedFd,
}

/// In PID 1, after the switch to the root filesystem: a new pseudo-terminal of the container's devpts
/// (/dev/ptmx there), its terminal end owned by `owner`, the command's user, as login does.
pub fn open(owner: u32) -> Result<Pty, RunError> {
    let master = tty::open_master().map_err(|e| {
        RunError::sys("cannot open a terminal in the container (/dev/ptmx)", e)
            .with_hint("run without a terminal: --tty=false")
    })?;
    let terminal = tty::open_peer(master.as_fd())
        .map_err(|e| RunError::sys("cannot open the container's terminal", e))?;
    if owner != 0 {
        nix::unistd::fchown(&terminal, Some(nix::unistd::Uid::from_raw(owner)), None)
            .map_err(|e| RunError::sys("cannot give the container's terminal to its user", e))?;
    }
    Ok(Pty { master, terminal })
}

/// In the command's process, before exec: enters `session`; with a terminal, `terminal` becomes the
/// controlling terminal and the standard descriptors.
pub fn enter_session(session: Session, terminal: Option<BorrowedFd<'_>>) -> Result<(), RunError> {
    // Without a terminal, PID 1's session (which has no controlling terminal) is enough, and the
    // caller's session is kept in host mode.
    let (Session::OwnTerminal { stderr }, Some(terminal)) = (session, terminal) else {
        return Ok(());
    };
    // Only a session leader can take a controlling terminal.
    nix::unistd::setsid().map_err(|e| RunError::sys("setsid", e))?;
    tty::make_controlling(terminal)
        .map_err(|e| RunError::sys("cannot make the terminal the command's own", e))?;
    let targets: &[i32] = if stderr { &[0, 1, 2] } else { &[0, 1] };
    for &target in targets {
        // The copy is not close-on-exec; the original closes at exec.
        tty::put_on_standard(terminal, target)
            .map_err(|e| RunError::sys("cannot put the terminal on stdin and stdout", e))?;
    }
    Ok(())
}

/// Signals that would end or stop unshare-run while the caller's terminal is in raw mode: caught, so
/// that the terminal is restored first. SIGKILL cannot be caught: after it the terminal stays raw
/// (`reset` or `stty sane` repairs it) and the container ends with unshare-run (parent-death signal).
pub const CAUGHT_WHILE_RAW: [Signal; 10] = [
    Signal::SIGALRM,
    Signal::SIGPROF,
    Signal::SIGVTALRM,
    Signal::SIGXCPU,
    Signal::SIGXFSZ,
    Signal::SIGIO,
    Signal::SIGPWR,
    Signal::SIGSTKFLT,
    Signal::SIGTSTP,
    Signal::SIGCONT,
];

/// What the relay moves at most in one read.
const CHUNK: usize = 64 * 1024;

/// unshare-run's side of the container's terminal: copies the caller's stdin to the container's
/// terminal and its output to the caller's stdout, keeps the window size in step, and gives the
/// caller's terminal back as it was when dropped.
pub struct Relay {
    master: OwnedFd,
    /// The caller's terminal settings before raw mode; restored on drop.
    saved: Option<Termios>,
    /// Whether the caller's terminal is in raw mode now (not while unshare-run is stopped).
    raw: bool,
    stdin_open: bool,
    /// Output from the container: false once its terminal's last descriptor is closed.
    output_open: bool,
    /// Input read but not yet taken by the container's terminal (its buffer is full).
    pending: Vec<u8>,
    buffer: Vec<u8>,
}

impl Relay {
    /// Starts relaying `master`: the window size is copied and the caller's terminal, if stdin is
    /// one, goes into raw mode.
    pub fn start(master: OwnedFd) -> Result<Relay, RunError> {
        Relay::start_with(master, true)
    }

    /// As `start`; without `input` (exec -t without -i) the caller's stdin is neither read nor put
    /// into raw mode: only the output and the window size are relayed.
    pub fn start_with(master: OwnedFd, input: bool) -> Result<Relay, RunError> {
        let flags = fcntl(&master, FcntlArg::F_GETFL).map_err(|e| RunError::sys("fcntl", e))?;
        fcntl(
            &master,
            FcntlArg::F_SETFL(OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK),
        )
        .map_err(|e| RunError::sys("fcntl", e))?;
        let saved = termios::tcgetattr(stdin()).ok().filter(|_| input);
        let mut relay = Relay {
            master,
            saved,
            raw: false,
            stdin_open: input,
            output_open: true,
            pending: Vec::new(),
            buffer: vec![0; CHUNK],
        };
        relay.resize();
        relay.make_raw()?;
        Ok(relay)
    }

    fn make_raw(&mut self) -> Result<(), RunError> {
        let Some(saved) = &self.saved else {
            return Ok(());
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin(), SetArg::TCSANOW, &raw)
            .map_err(|e| RunError::sys("cannot put your terminal into raw mode", e))?;
        self.raw = true;
        Ok(())
    }

    fn restore(&mut self) {
        if let (true, Some(saved)) = (self.raw, &self.saved) {
            // TCSADRAIN: what was relayed is shown before the settings change back.
            let _ = termios::tcsetattr(stdin(), SetArg::TCSADRAIN, saved);
            self.raw = false;
        }
    }

    /// The caller's window size (from the first of stdin, stdout, stderr that is a terminal) onto
    /// the container's terminal, whose foreground job the kernel then sends SIGWINCH.
    pub fn resize(&self) {
        let size = [
            stdin(),
            tty::standard(Standard::Output),
            tty::standard(Standard::Error),
        ]
        .into_iter()
        .find_map(|fd| tty::window_size(fd).ok());
        if let Some(size) = size {
            let _ = tty::set_window_size(self.master.as_fd(), &size);
        }
    }

    /// Before unshare-run stops (SIGTSTP): the caller's terminal as it was.
    pub fn suspend(&mut self) {
        self.restore();
    }

    /// After unshare-run continues (SIGCONT): raw mode again, and the size, which may have changed.
    pub fn resume(&mut self) {
        if !self.raw {
            let _ = self.make_raw();
        }
        self.resize();
    }

    /// Relays until `signals` (a signalfd) has a signal to read.
    pub fn until_readable(&mut self, signals: BorrowedFd<'_>) -> Result<(), RunError> {
        loop {
            let mut master_events = PollFlags::empty();
            if self.output_open {
                master_events |= PollFlags::POLLIN;
            }
            if !self.pending.is_empty() {
                master_events |= PollFlags::POLLOUT;
            }
            let watch_stdin = self.stdin_open && self.pending.is_empty();
            // A descriptor is watched only while there is something to do with it: poll reports a
            // hang-up whatever was asked, and would not wait again.
            let mut fds = vec![PollFd::new(signals, PollFlags::POLLIN)];
            if !master_events.is_empty() {
                fds.push(PollFd::new(self.master.as_fd(), master_events));
            }
            if watch_stdin {
                fds.push(PollFd::new(stdin(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(RunError::sys("poll", e)),
            }
            let events: Vec<PollFlags> = fds
                .iter()
                .map(|fd| fd.revents().unwrap_or(PollFlags::empty()))
                .collect();
            drop(fds);
            let mut next = events[1..].iter().copied();
            let master_ready = if master_events.is_empty() {
                PollFlags::empty()
            } else {
                next.next().unwrap_or(PollFlags::empty())
            };
            let stdin_ready = if watch_stdin {
                next.next().unwrap_or(PollFlags::empty())
            } else {
                PollFlags::empty()
            };
            let readable = PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR;
            if self.output_open && master_ready.intersects(readable) {
                self.copy_output();
            }
            if !self.pending.is_empty() && master_ready.intersects(PollFlags::POLLOUT | readable) {
                self.write_pending();
            }
            if !stdin_ready.is_empty() {
                self.read_input();
            }
            if !events[0].is_empty() {
                return Ok(());
            }
        }
    }

    /// Once the container has ended (its processes are gone, so nothing holds its terminal): what
    /// the terminal still has goes to the caller, until the read that says it is closed (EIO).
    pub fn drain(&mut self) {
        while self.output_open {
            if !self.copy_output() {
                break;
            }
        }
    }

    /// One read from the container's terminal, written whole to stdout; false when there was nothing
    /// to read now. A read error (EIO: the terminal's last descriptor in the container is closed)
    /// or 0 ends the output.
    fn copy_output(&mut self) -> bool {
        match nix::unistd::read(&self.master, &mut self.buffer) {
            Ok(0) => self.output_open = false,
            Ok(n) => {
                if write_all(tty::standard(Standard::Output), &self.buffer[..n]).is_err() {
                    // The caller's stdout is gone (EPIPE): the output is dropped, the container goes on.
                    log::debug!("stdout is closed: the container's output is dropped");
                }
            }
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => return false,
            Err(_) => self.output_open = false,
        }
        true
    }

    fn read_input(&mut self) {
        match nix::unistd::read(stdin(), &mut self.buffer) {
            Ok(0) => {
                self.stdin_open = false;
                // A stdin that is not a terminal ended: the container's terminal reads end-of-file
                // too (its EOF character, as typing ^D), if it reads lines.
                if self.saved.is_none()
                    && let Ok(settings) = termios::tcgetattr(&self.master)
                    && settings.local_flags.contains(LocalFlags::ICANON)
                {
                    self.pending
                        .push(settings.control_chars[SpecialCharacterIndices::VEOF as usize]);
                    self.write_pending();
                }
            }
            Ok(n) => {
                self.pending.extend_from_slice(&self.buffer[..n]);
                self.write_pending();
            }
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(_) => self.stdin_open = false,
        }
    }

    /// As much of the pending input as the container's terminal takes now.
    fn write_pending(&mut self) {
        while !self.pending.is_empty() {
            match nix::unistd::write(&self.master, &self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return,
                Err(_) => {
                    // The container's terminal is gone: its input is too.
                    self.pending.clear();
                    self.stdin_open = false;
                }
            }
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.restore();
    }
}

/// Writes all of `data` to `fd`, waiting while a non-blocking descriptor is full.
fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> Result<(), Errno> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
                let _ = poll(&mut fds, PollTimeout::NONE);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERACTIVE: CallerStdio = CallerStdio {
        stdin_tty: true,
        stdout_tty: true,
        stderr_tty: true,
        foreground: true,
    };

    #[test]
    fn a_rootfs_container_never_shares_the_callers_session() {
        let piped = CallerStdio {
            stdout_tty: false,
            ..INTERACTIVE
        };
        let background = CallerStdio {
            foreground: false,
            ..INTERACTIVE
        };
        let log_on_stderr = CallerStdio {
            stderr_tty: false,
            ..INTERACTIVE
        };
        let terminal = Session::OwnTerminal { stderr: true };
        assert_eq!(session_for(None, true, INTERACTIVE), terminal);
        assert_eq!(
            session_for(None, true, log_on_stderr),
            Session::OwnTerminal { stderr: false }
        );
        for caller in [piped, background, CallerStdio::default()] {
            assert_eq!(session_for(None, true, caller), Session::Own, "{caller:?}");
        }
        assert_eq!(session_for(Some(false), true, INTERACTIVE), Session::Own);
        assert_eq!(session_for(Some(true), true, piped), terminal);
    }

    #[test]
    fn host_mode_keeps_the_callers_terminal_unless_asked() {
        assert_eq!(session_for(None, false, INTERACTIVE), Session::Caller);
        assert_eq!(
            session_for(Some(false), false, INTERACTIVE),
            Session::Caller
        );
        assert_eq!(
            session_for(Some(true), false, INTERACTIVE),
            Session::OwnTerminal { stderr: true }
        );
        assert!(!Session::Caller.is_own() && Session::Own.is_own());
        assert!(
            Session::OwnTerminal { stderr: false }.has_terminal() && !Session::Own.has_terminal()
        );
    }

    /// The relay between a pseudo-terminal pair made here: what the terminal end writes arrives on
    /// the master and is copied out until the end is closed (EIO), also when it comes after the
    /// last writer has gone.
    #[test]
    fn drain_reads_what_a_closed_terminal_still_holds() {
        let pty = open(0).unwrap();
        let master = pty.master;
        let terminal = pty.terminal;
        let mut settings = termios::tcgetattr(&terminal).unwrap();
        termios::cfmakeraw(&mut settings);
        termios::tcsetattr(&terminal, SetArg::TCSANOW, &settings).unwrap();
        nix::unistd::write(&terminal, b"held").unwrap();
        drop(terminal);
        let mut relay = Relay {
            master,
            saved: None,
            raw: false,
            stdin_open: false,
            output_open: true,
            pending: Vec::new(),
            buffer: vec![0; CHUNK],
        };
        let flags = fcntl(&relay.master, FcntlArg::F_GETFL).unwrap();
        fcntl(
            &relay.master,
            FcntlArg::F_SETFL(OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK),
        )
        .unwrap();
        // Read into the buffer rather than stdout: one read, as drain's loop does.
        let n = nix::unistd::read(&relay.master, &mut relay.buffer).unwrap();
        assert_eq!(&relay.buffer[..n], b"held");
        relay.drain();
        assert!(!relay.output_open, "EIO ends the output");
    }
}
