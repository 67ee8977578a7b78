//! The two-way channel between unshare-run and a child it starts in new namespaces (crun's idea):
//! the parent says when the child may start (once its id map is written), the child may pass a
//! descriptor back (the master of the container's terminal), and the child says why it failed, so
//! that the parent reports the error, with its errno and exit status, as its own. A holder and its
//! client talk the same way over the holder's socket (a request, the private network's namespace or
//! why there is none).
//!
//! A SOCK_SEQPACKET socket pair keeps each message whole; sending with MSG_NOSIGNAL turns a peer
//! that is gone into EPIPE rather than SIGPIPE. Both ends are close-on-exec: nothing the child execs
//! inherits its end.

use std::io;
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, recv, send, sendmsg, socketpair,
};

use super::error::RunError;

/// One end of the channel.
#[derive(Debug)]
pub struct Channel(OwnedFd);

const START: u8 = b'S';
const FAILED: u8 = b'F';
const TERMINAL: u8 = b'T';
/// Client to holder: its private network, which it has not made yet (the answer: NETWORK with the
/// namespace, or a failure). A client that needs only the user namespace, or finds the network made,
/// asks nothing: it opens them through /proc.
pub const WANT_NETWORK: u8 = b'N';
const NETWORK: u8 = b'W';
/// Client to holder: a pulled image's overlay (`rootfs::lent::Request`: its bytes follow, its
/// descriptors are the image's directories). The answer: OVERLAY with a copy of the overlay,
/// NO_OVERLAY, or a failure.
pub const WANT_OVERLAY: u8 = b'O';
const OVERLAY: u8 = b'V';
const NO_OVERLAY: u8 = b'-';
/// The process that entered a container to unshare-run: the pid of the command it started there.
const PID: u8 = b'P';
/// Monitor to the unshare-run that started it: the container's command runs (`containers::monitor`).
const RUNNING: u8 = b'R';
/// Client to holder: let go of the kept overlays of removed images. No answer.
pub const FORGET_OVERLAYS: u8 = b'X';
/// The longest request to a holder (an overlay request names the image's directories).
pub const MAX_REQUEST: usize = 64 * 1024;
/// A failure report longer than this is cut (messages name paths, not files' contents).
const MAX_REPORT: usize = 64 * 1024;

/// The parent's end and the child's end.
pub fn pair() -> Result<(Channel, Channel), RunError> {
    let (parent, child) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| RunError::sys("cannot create a socket pair", e))?;
    Ok((Channel(parent), Channel(child)))
}

impl std::os::fd::AsRawFd for Channel {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
    }
}

impl From<OwnedFd> for Channel {
    /// A connected SOCK_SEQPACKET socket (a holder's and its client's).
    fn from(socket: OwnedFd) -> Channel {
        Channel(socket)
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl Channel {
    /// Sends one byte (a request to a holder).
    pub fn send_byte(&self, byte: u8) -> io::Result<()> {
        send_all(&self.0, &[byte])
    }

    /// Parent: the child may start. Fails (EPIPE) when the child is gone.
    pub fn send_start(&self) -> io::Result<()> {
        send_all(&self.0, &[START])
    }

    /// Child: waits until the parent says start. False when the parent failed (it reports why) or
    /// died.
    pub fn await_start(&self) -> bool {
        let mut byte = [0u8; 1];
        loop {
            match recv(self.0.as_raw_fd(), &mut byte, MsgFlags::empty()) {
                Ok(1) => return byte[0] == START,
                Err(Errno::EINTR) => continue,
                _ => return false,
            }
        }
    }

    /// Whether the other end is closed, its process gone (asked without waiting).
    pub fn peer_is_gone(&self) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let mut fds = [PollFd::new(self.0.as_fd(), PollFlags::empty())];
        // POLLHUP is reported whatever was asked for; an error counts as gone too.
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(_) => fds[0]
                .revents()
                .is_none_or(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)),
            Err(_) => true,
        }
    }

    /// Parent of PID 1: waits until PID 1 closes its end, which it does once the command runs (true),
    /// or sends something first (false: a failure, which stays for `report`).
    pub fn await_close(&self) -> bool {
        let mut byte = [0u8; 1];
        loop {
            match recv(self.0.as_raw_fd(), &mut byte, MsgFlags::MSG_PEEK) {
                Ok(0) => return true,
                Err(Errno::EINTR) => continue,
                _ => return false,
            }
        }
    }

    /// The entering process: the pid of the command it started.
    pub fn send_pid(&self, pid: i32) -> io::Result<()> {
        let mut message = vec![PID];
        message.extend_from_slice(&pid.to_le_bytes());
        send_all(&self.0, &message)
    }

    /// unshare-run: the pid its entering process sent; None if that reported a failure instead (it
    /// stays for `report`) or ended.
    pub fn receive_pid(&self) -> Option<i32> {
        let mut message = [0u8; 5];
        loop {
            match recv(self.0.as_raw_fd(), &mut message, MsgFlags::MSG_PEEK) {
                Ok(5) if message[0] == PID => break,
                Err(Errno::EINTR) => continue,
                _ => return None,
            }
        }
        loop {
            match recv(self.0.as_raw_fd(), &mut message, MsgFlags::empty()) {
                Ok(5) => {
                    return Some(i32::from_le_bytes([
                        message[1], message[2], message[3], message[4],
                    ]));
                }
                Err(Errno::EINTR) => continue,
                _ => return None,
            }
        }
    }

    /// Monitor: the container's command runs.
    pub fn send_running(&self) -> io::Result<()> {
        send_all(&self.0, &[RUNNING])
    }

    /// The monitor's starter: waits for its word. Ok when the container's command runs; its report
    /// when it failed; an error saying so when it ended without a word.
    pub fn await_running(&self) -> Result<(), RunError> {
        let mut byte = [0u8; 1];
        loop {
            match recv(self.0.as_raw_fd(), &mut byte, MsgFlags::MSG_PEEK) {
                Ok(1) if byte[0] == RUNNING => return Ok(()),
                Ok(1) => break,
                Err(Errno::EINTR) => continue,
                _ => break,
            }
        }
        Err(self.report().unwrap_or_else(|| {
            RunError::new("the container's monitor ended before the container ran")
        }))
    }

    /// Child: passes the master of the container's terminal to the parent.
    pub fn send_terminal(&self, master: BorrowedFd<'_>) -> Result<(), RunError> {
        self.send_descriptor(TERMINAL, master)
            .map_err(|e| RunError::sys("passing the terminal to unshare-run", e))
    }

    /// Parent: waits for the terminal's master that the child sends before its command runs. None if
    /// the child failed first (its report stays for `report`) or ended.
    pub fn receive_terminal(&self) -> Option<OwnedFd> {
        self.receive_descriptor(TERMINAL)
    }

    /// Holder: passes its private network's namespace to a client.
    pub fn send_network(&self, namespace: BorrowedFd<'_>) -> io::Result<()> {
        self.send_descriptor(NETWORK, namespace)
            .map_err(io::Error::from)
    }

    /// Client: the holder's private network namespace; None if the holder reported a failure
    /// instead (it stays for `report`) or hung up.
    pub fn receive_network(&self) -> Option<OwnedFd> {
        self.receive_descriptor(NETWORK)
    }

    /// Client: asks the holder for an overlay (`request` is the bytes after the kind).
    pub fn send_overlay_request(&self, request: &[u8], dirs: &[BorrowedFd<'_>]) -> io::Result<()> {
        let mut message = vec![WANT_OVERLAY];
        message.extend_from_slice(request);
        self.send_message(&message, dirs).map_err(io::Error::from)
    }

    /// Holder: answers an overlay request with `overlay`, or that it has none.
    pub fn send_overlay(&self, overlay: Option<BorrowedFd<'_>>) -> io::Result<()> {
        match overlay {
            Some(fd) => self.send_descriptor(OVERLAY, fd).map_err(io::Error::from),
            None => send_all(&self.0, &[NO_OVERLAY]),
        }
    }

    /// Client: the holder's answer to an overlay request: the overlay, or None if it has none, failed
    /// (its report stays for `report`) or hung up.
    pub fn receive_overlay(&self) -> Option<OwnedFd> {
        if let Some(overlay) = self.receive_descriptor(OVERLAY) {
            return Some(overlay);
        }
        // Taken off the stream, so that nothing is left in the way of a later message.
        let mut first = [0u8; 1];
        let waiting = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
        if matches!(recv(self.0.as_raw_fd(), &mut first, waiting), Ok(1) if first[0] == NO_OVERLAY)
        {
            let _ = recv(self.0.as_raw_fd(), &mut first, MsgFlags::MSG_DONTWAIT);
        }
        None
    }

    /// Holder: the next request and the descriptors it carries; None at the end of the stream.
    pub fn receive_request(&self) -> Option<(Vec<u8>, Vec<OwnedFd>)> {
        match crate::sys::receive_message(self.0.as_fd(), MAX_REQUEST) {
            Ok((bytes, fds)) if !bytes.is_empty() => Some((bytes, fds)),
            _ => None,
        }
    }

    fn send_descriptor(&self, kind: u8, fd: BorrowedFd<'_>) -> Result<(), Errno> {
        self.send_message(&[kind], &[fd])
    }

    fn send_message(&self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), Errno> {
        let fds: Vec<_> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
        let rights = [ControlMessage::ScmRights(&fds)];
        loop {
            let message = [IoSlice::new(bytes)];
            match sendmsg::<()>(
                self.0.as_raw_fd(),
                &message,
                &rights,
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits for a message; the descriptor it carries if it is of `kind`. Any other message stays
    /// to be read (a failure, for `report`).
    fn receive_descriptor(&self, kind: u8) -> Option<OwnedFd> {
        let fd = self.0.as_raw_fd();
        let mut first = [0u8; 1];
        loop {
            match recv(fd, &mut first, MsgFlags::MSG_PEEK) {
                Ok(1) if first[0] == kind => break,
                Err(Errno::EINTR) => continue,
                _ => return None,
            }
        }
        match crate::sys::receive_descriptor(self.0.as_fd()) {
            Ok((received, fd)) if received == kind => fd,
            _ => None,
        }
    }

    /// Child: tells the parent why it failed; returns the status to exit with.
    pub fn fail(&self, error: RunError) -> u8 {
        // If the parent is gone there is nobody left to tell.
        let _ = send_all(&self.0, &encode(&error));
        error.status
    }

    /// Parent, once the child has ended: the failure it reported, if any. Asked after every start, so
    /// the usual answer (nothing) costs one system call and no buffer.
    pub fn report(&self) -> Option<RunError> {
        let fd = self.0.as_raw_fd();
        let peek = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC;
        // With MSG_TRUNC a packet socket says how long the message is, whatever the buffer's size;
        // 0 is the end of the stream (the child closed its end without a report).
        let len = loop {
            match recv(fd, &mut [0u8; 1], peek) {
                Ok(0) => return None,
                Ok(len) => break len.min(MAX_REPORT),
                Err(Errno::EINTR) => continue,
                Err(_) => return None,
            }
        };
        let mut buffer = vec![0u8; len];
        loop {
            match recv(fd, &mut buffer, MsgFlags::MSG_DONTWAIT) {
                Ok(n) => return decode(&buffer[..n.min(len)]),
                Err(Errno::EINTR) => continue,
                Err(_) => return None,
            }
        }
    }
}

fn send_all(fd: &OwnedFd, message: &[u8]) -> io::Result<()> {
    loop {
        match send(fd.as_raw_fd(), message, MsgFlags::MSG_NOSIGNAL) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// FAILED, status, errno (i32, 0 for none), then the message and the hint, each as a length (u32) and
/// its bytes; a hint length of u32::MAX means no hint.
fn encode(error: &RunError) -> Vec<u8> {
    let mut out = vec![FAILED, error.status];
    out.extend_from_slice(&error.errno.map_or(0, |e| e as i32).to_le_bytes());
    let mut text = |value: Option<&str>| match value {
        Some(text) => {
            let text = &text.as_bytes()[..text.len().min(MAX_REPORT / 2)];
            out.extend_from_slice(&(text.len() as u32).to_le_bytes());
            out.extend_from_slice(text);
        }
        None => out.extend_from_slice(&u32::MAX.to_le_bytes()),
    };
    text(Some(&error.message));
    text(error.hint.as_deref());
    out
}

fn decode(bytes: &[u8]) -> Option<RunError> {
    let (&kind, rest) = bytes.split_first()?;
    if kind != FAILED {
        return None;
    }
    let (&status, rest) = rest.split_first()?;
    let (errno, mut rest) = rest.split_first_chunk::<4>()?;
    let mut text = || -> Option<Option<String>> {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len);
        if len == u32::MAX {
            rest = tail;
            return Some(None);
        }
        let (value, tail) = tail.split_at_checked(len as usize)?;
        rest = tail;
        Some(Some(String::from_utf8_lossy(value).into_owned()))
    };
    let message = text()??;
    let hint = text()?;
    let errno = match i32::from_le_bytes(*errno) {
        0 => None,
        raw => Some(Errno::from_raw(raw)),
    };
    Some(RunError {
        message,
        hint,
        errno,
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_arrives_whole_with_its_errno_and_status() {
        let (parent, child) = pair().unwrap();
        let error = RunError::sys("cannot mount proc on /proc", Errno::EPERM)
            .with_hint("check this")
            .with_status(127);
        assert_eq!(child.fail(error), 127);
        let got = parent.report().unwrap();
        assert_eq!(
            got.message,
            "cannot mount proc on /proc: EPERM: Operation not permitted"
        );
        assert_eq!(got.hint.as_deref(), Some("check this"));
        assert_eq!(got.errno, Some(Errno::EPERM));
        assert_eq!(got.status, 127);
        // Nothing more was sent.
        assert!(parent.report().is_none());
    }

    #[test]
    fn start_reaches_the_child_and_a_closed_end_is_seen() {
        let (parent, child) = pair().unwrap();
        parent.send_start().unwrap();
        assert!(child.await_start());
        drop(parent);
        assert!(!child.await_start());
        // The parent's end is gone: no SIGPIPE, an error.
        let (parent, child) = pair().unwrap();
        drop(child);
        assert!(parent.send_start().is_err());
    }

    #[test]
    fn a_terminal_arrives_as_a_descriptor_and_a_failure_first_is_kept_for_report() {
        use std::io::{Read, Write};
        let (parent, child) = pair().unwrap();
        let (reader, writer) = std::io::pipe().unwrap();
        child.send_terminal(writer.as_fd()).unwrap();
        drop(writer);
        let received = parent.receive_terminal().expect("a descriptor");
        std::fs::File::from(received).write_all(b"through").unwrap();
        let mut text = String::new();
        std::io::BufReader::new(reader)
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "through");
        // A child that fails before it opens a terminal: no descriptor, and the report is intact.
        let (parent, child) = pair().unwrap();
        child.fail(RunError::new("no ptmx"));
        assert!(parent.receive_terminal().is_none());
        assert_eq!(parent.report().unwrap().message, "no ptmx");
        drop(child);
        assert!(parent.receive_terminal().is_none());
    }

    #[test]
    fn a_monitor_says_running_or_why_not_and_pid1_closing_its_end_means_the_command_runs() {
        let (cli, monitor) = pair().unwrap();
        monitor.send_running().unwrap();
        assert!(cli.await_running().is_ok());
        let (cli, monitor) = pair().unwrap();
        monitor.fail(RunError::new("no such command").with_status(127));
        let failed = cli.await_running().unwrap_err();
        assert_eq!(
            (failed.message.as_str(), failed.status),
            ("no such command", 127)
        );
        let (cli, monitor) = pair().unwrap();
        drop(monitor);
        assert!(
            cli.await_running()
                .unwrap_err()
                .message
                .contains("monitor ended")
        );
        let (cli, entering) = pair().unwrap();
        entering.send_pid(4242).unwrap();
        assert_eq!(cli.receive_pid(), Some(4242));
        entering.fail(RunError::new("nope").with_status(127));
        assert_eq!(cli.receive_pid(), None);
        assert_eq!(cli.report().unwrap().status, 127);
        // PID 1: closing its end says the command runs; a report first says it does not, and stays.
        let (parent, pid1) = pair().unwrap();
        drop(pid1);
        assert!(parent.await_close());
        let (parent, pid1) = pair().unwrap();
        pid1.fail(RunError::new("cannot mount"));
        assert!(!parent.await_close());
        assert_eq!(parent.report().unwrap().message, "cannot mount");
    }

    #[test]
    fn damaged_reports_are_ignored() {
        let error = RunError::new("x").with_hint("y");
        let whole = encode(&error);
        for cut in 0..whole.len() {
            assert!(decode(&whole[..cut]).is_none(), "{cut}");
        }
        assert!(decode(&[START]).is_none());
        let decoded = decode(&whole).unwrap();
        assert_eq!(
            (decoded.message.as_str(), decoded.hint.as_deref()),
            ("x", Some("y"))
        );
        assert_eq!(decode(&encode(&RunError::new("z"))).unwrap().hint, None);
    }
}
