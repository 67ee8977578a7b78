//! Terminal ioctls that nix has no safe call for: the pseudo-terminal's peer, the controlling
//! terminal and the window size.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

pub use libc::winsize as WindowSize;

/// Descriptor 0, 1 or 2 without std's `io::stdin()` and `io::stdout()`, whose first use allocates
/// their buffers: the start path only asks whether they are terminals.
pub fn standard(fd: Standard) -> BorrowedFd<'static> {
    // SAFETY: 0, 1 and 2 are the process's standard descriptors, which std also treats as open for
    // the whole life of the process; a closed one makes the calls on it fail with EBADF.
    unsafe { BorrowedFd::borrow_raw(fd as i32) }
}

/// The standard descriptors, by name.
#[derive(Clone, Copy)]
pub enum Standard {
    Input = 0,
    Output = 1,
    Error = 2,
}

/// Opens a new pseudo-terminal master through /dev/ptmx (close-on-exec, not a controlling terminal)
/// and unlocks its terminal end.
pub fn open_master() -> io::Result<OwnedFd> {
    // SAFETY: posix_openpt takes flags by value and returns a new descriptor, which we own.
    let fd = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by the kernel and is owned by nothing else.
    let master = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: unlockpt only reads the descriptor, which is open.
    match unsafe { libc::unlockpt(master.as_raw_fd()) } {
        0 => Ok(master),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Opens the terminal end (the "slave") of the pseudo-terminal whose master is `master`, through the
/// master itself (TIOCGPTPEER, Linux 4.13): no path is looked up, so nothing can be put in its place.
pub fn open_peer(master: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes its flags by value and returns a new descriptor, which we own.
    let fd = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by the kernel and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Makes `terminal` the controlling terminal of the calling process, a session leader without one.
pub fn make_controlling(terminal: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an int by value (0: do not steal it from another session).
    match unsafe { libc::ioctl(terminal.as_raw_fd(), libc::TIOCSCTTY, 0) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Gives up `terminal` as the calling process's controlling terminal (TIOCNOTTY). For a process that
/// does not lead its session, this concerns it alone: no signal is sent, and the session keeps it.
pub fn give_up_controlling(terminal: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCNOTTY takes no argument.
    match unsafe { libc::ioctl(terminal.as_raw_fd(), libc::TIOCNOTTY) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

pub fn window_size(terminal: BorrowedFd<'_>) -> io::Result<WindowSize> {
    let mut size = WindowSize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct it is given, which lives on our stack.
    match unsafe { libc::ioctl(terminal.as_raw_fd(), libc::TIOCGWINSZ, &mut size) } {
        0 => Ok(size),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Sets the window size; the kernel then sends SIGWINCH to the terminal's foreground process group.
pub fn set_window_size(terminal: BorrowedFd<'_>, size: &WindowSize) -> io::Result<()> {
    // SAFETY: TIOCSWINSZ reads one winsize from the struct it is given.
    match unsafe { libc::ioctl(terminal.as_raw_fd(), libc::TIOCSWINSZ, size) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Puts a copy of `terminal` on the standard descriptor `target` (0, 1 or 2), replacing what was
/// there; the copy is not close-on-exec.
pub fn put_on_standard(terminal: BorrowedFd<'_>, target: i32) -> io::Result<()> {
    assert!((0..=2).contains(&target), "only a standard descriptor");
    // SAFETY: dup2 onto a standard descriptor, which no Rust object owns in this process (the
    // command's, about to exec).
    match unsafe { libc::dup2(terminal.as_raw_fd(), target) } {
        -1 => Err(io::Error::last_os_error()),
        _ => Ok(()),
    }
}
