//! The only module with `unsafe`: thin wrappers over the syscalls nix does not cover.
//!
//! Each wrapper is small enough to check by reading; everything above it is safe Rust.

use std::io;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// The three capability sets of this thread, one bit per capability (64 bits cover CAP_LAST_CAP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapabilitySets {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
}

impl CapabilitySets {
    pub const EMPTY: CapabilitySets = CapabilitySets {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    };
}

#[repr(C)]
struct CapUserHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapUserData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

pub fn capget() -> io::Result<CapabilitySets> {
    let mut header = CapUserHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapUserData::default(); 2];
    // SAFETY: header and data are valid for the kernel to read/write; version 3 uses two data structs.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let join = |low: u32, high: u32| u64::from(low) | (u64::from(high) << 32);
    Ok(CapabilitySets {
        effective: join(data[0].effective, data[1].effective),
        permitted: join(data[0].permitted, data[1].permitted),
        inheritable: join(data[0].inheritable, data[1].inheritable),
    })
}

pub fn capset(sets: CapabilitySets) -> io::Result<()> {
    let mut header = CapUserHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let split = |bits: u64| (bits as u32, (bits >> 32) as u32);
    let (e0, e1) = split(sets.effective);
    let (p0, p1) = split(sets.permitted);
    let (i0, i1) = split(sets.inheritable);
    let data = [
        CapUserData {
            effective: e0,
            permitted: p0,
            inheritable: i0,
        },
        CapUserData {
            effective: e1,
            permitted: p1,
            inheritable: i1,
        },
    ];
    // SAFETY: header and data are valid, initialised and outlive the call.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Empties the ambient capability set.
pub fn clear_ambient_capabilities() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The process's securebits (`prctl(PR_GET_SECUREBITS)`).
pub fn securebits() -> io::Result<u32> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_GET_SECUREBITS, 0, 0, 0, 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc as u32)
}

/// The ambient capability set, read bit by bit (the kernel offers no bulk read).
pub fn ambient_capabilities() -> io::Result<u64> {
    let mut set = 0u64;
    for cap in 0..64 {
        // SAFETY: prctl with integer arguments only.
        let rc = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_IS_SET,
                cap as libc::c_ulong,
                0,
                0,
            )
        };
        match rc {
            1 => set |= 1 << cap,
            0 => {}
            // EINVAL: past the kernel's last capability.
            _ => break,
        }
    }
    Ok(set)
}

/// Whether file descriptor `fd` is open.
pub fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD on any integer is harmless; a closed fd yields EBADF.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// Borrows an inherited descriptor named on the command line, if it is open.
///
/// The borrow lives only as long as this process does not close `fd`, which it never does:
/// inherited descriptors stay open until exit.
pub fn borrow_inherited_fd(fd: RawFd) -> Option<BorrowedFd<'static>> {
    if fd < 0 || !fd_is_open(fd) {
        return None;
    }
    // SAFETY: fd is open (checked above) and is never closed by this process.
    Some(unsafe { BorrowedFd::borrow_raw(fd) })
}

/// pidfd_open(2): a descriptor that refers to one process for its whole life.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments only.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Whether the process behind `pidfd` is still running (signal 0 through the pidfd).
pub fn pidfd_process_alive(pidfd: BorrowedFd<'_>) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: signal 0 sends nothing; null siginfo is allowed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            0,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    rc == 0
}

/// Removes every environment variable. Must run while the process is single-threaded.
pub fn clear_environment() -> io::Result<()> {
    // SAFETY: called at start-up before any thread exists, so nothing reads environ concurrently.
    let rc = unsafe { libc::clearenv() };
    if rc != 0 {
        return Err(io::Error::other("clearenv failed"));
    }
    Ok(())
}

/// A read-only private mapping of a whole file. The scan reads the page cache directly instead of
/// copying it (a third of the time for a 100,000-line /etc/subuid), and pages are only touched as far
/// as the scan goes. If the file shrank while mapped, reading past its new end would raise SIGBUS and
/// end the process before any decision: subid files are replaced by rename, not truncated, by the
/// shadow tools.
pub struct MappedFile {
    addr: *mut libc::c_void,
    len: usize,
}

impl MappedFile {
    pub fn map(file: &std::fs::File) -> io::Result<MappedFile> {
        use std::os::fd::AsRawFd;
        let len = usize::try_from(file.metadata()?.len()).map_err(io::Error::other)?;
        if len == 0 {
            // mmap refuses a length of 0; an empty file maps to nothing.
            return Ok(MappedFile {
                addr: std::ptr::null_mut(),
                len: 0,
            });
        }
        // SAFETY: a fresh read-only private mapping of a valid descriptor; the kernel picks the address.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(MappedFile { addr, len })
    }
}

impl AsRef<[u8]> for MappedFile {
    fn as_ref(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: addr..addr+len is a live read-only mapping owned by self (unmapped only in drop).
        unsafe { std::slice::from_raw_parts(self.addr.cast::<u8>(), self.len) }
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        if self.len != 0 {
            // SAFETY: the mapping was created by `map` with this address and length.
            unsafe { libc::munmap(self.addr, self.len) };
        }
    }
}

/// The uid of the passwd entry named `name`, from any NSS source (getpwnam_r): `Ok(None)` when there is
/// none. Unlike nix's `User::from_name`, the name is bytes: passwd names need not be UTF-8.
pub fn passwd_uid_by_name(name: &std::ffi::CStr) -> io::Result<Option<u32>> {
    // Entries longer than 1 MiB are refused rather than grown into.
    const MAX_BUFFER: usize = 1 << 20;
    let mut buffer = vec![0u8; 1024];
    loop {
        let mut entry = std::mem::MaybeUninit::<libc::passwd>::uninit();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: name is NUL-terminated; entry, buffer (with its length) and result are valid for
        // writing during the call, and nothing else refers to them.
        let rc = unsafe {
            libc::getpwnam_r(
                name.as_ptr(),
                entry.as_mut_ptr(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buffer.len() < MAX_BUFFER {
            buffer.resize(buffer.len() * 2, 0);
            continue;
        }
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        if result.is_null() {
            return Ok(None);
        }
        // SAFETY: on success with a non-null result, getpwnam_r filled `entry` and pointed result at it.
        return Ok(Some(unsafe { (*result).pw_uid }));
    }
}
