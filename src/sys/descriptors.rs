//! Closing descriptors by number, which bypasses whatever Rust object owns them: the unsafe part of
//! keeping the caller's descriptors out of a container.

use std::io;
use std::os::fd::RawFd;

/// Closes every descriptor from `first` up except those in `keep`. Only for a process that owns no
/// descriptor in that range but the ones it keeps: PID 1 of a container between its set-up and the
/// command's start, a holder's network keeper (what they inherited belongs to objects of their
/// parent's that they never drop, since they exit without returning to them).
pub fn close_from_except(first: RawFd, keep: &[RawFd]) -> io::Result<()> {
    let mut kept: Vec<u32> = keep
        .iter()
        .filter(|&&fd| fd >= first)
        .map(|&fd| fd as u32)
        .collect();
    kept.sort_unstable();
    kept.dedup();
    let mut low = first as u32;
    for fd in kept {
        if fd > low {
            close_range(low, fd - 1)?;
        }
        low = fd + 1;
    }
    close_range(low, u32::MAX)
}

fn close_range(first: u32, last: u32) -> io::Result<()> {
    // SAFETY: close_range (Linux 5.9) takes its arguments by value; see close_from_except for why no
    // Rust object uses these descriptors afterwards.
    match unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Whether descriptor `fd` is open and stays open across exec (no FD_CLOEXEC): one this process
/// inherited to pass on, rather than one of its own (which it opens close-on-exec).
pub fn is_inheritable(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the flags of the descriptor with this number; EBADF if none.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    flags >= 0 && flags & libc::FD_CLOEXEC == 0
}
