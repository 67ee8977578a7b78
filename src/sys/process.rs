//! Making processes: clone(2) into new namespaces, a spawn that shares memory until exec (as
//! posix_spawn), companions that die with us, the holder's and monitor's daemonising exec, pidfds,
//! and _exit(2).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

pub enum Forked {
    Parent(Pid),
    Child,
}

/// fork(2) as clone(2) with namespace flags: the child starts in new namespaces (and is PID 1 when
/// CLONE_NEWPID is given). Only call while single-threaded.
pub fn clone_into(flags: CloneFlags) -> io::Result<Forked> {
    let all = flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: without CLONE_VM and with a null stack, clone behaves like fork: the child gets a copy of
    // this (single-threaded) process. No pointers are passed.
    let rc = unsafe { libc::syscall(libc::SYS_clone, all, 0usize, 0usize, 0usize, 0usize) };
    match rc {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
    }
}

/// Starts a process that runs `child`, which should end with execve (if it returns, its value is the
/// exit status), and returns its pid once the process has exec'd or exited. Like posix_spawn, the new
/// process shares this one's memory until then (CLONE_VM | CLONE_VFORK) while the calling thread
/// sleeps: no page tables are copied, and this process takes no copy-on-write faults afterwards, as it
/// would after fork. `child` runs on a stack of its own (with a guard page) and may allocate: the
/// calling thread is suspended, and the runner has no other threads. With `as_sibling` (CLONE_PARENT)
/// the new process is the child of this one's parent, which waits for it (`exec`'s entering process
/// leaves the command to unshare-run).
pub fn spawn_sharing_memory(
    as_sibling: bool,
    child: &mut dyn FnMut() -> libc::c_int,
) -> io::Result<Pid> {
    const STACK_SIZE: usize = 256 * 1024;
    const GUARD_SIZE: usize = 4096;
    extern "C" fn start(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `arg` points to the `&mut dyn FnMut` below, which lives until clone returns, and
        // clone returns only after this process has exec'd or exited.
        let child = unsafe { &mut *arg.cast::<&mut dyn FnMut() -> libc::c_int>() };
        child()
    }
    // SAFETY: a new private anonymous mapping; nothing else refers to it.
    let stack = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            STACK_SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if stack == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the lowest page of the mapping made above becomes a guard against stack overflow.
    unsafe { libc::mprotect(stack, GUARD_SIZE, libc::PROT_NONE) };
    let mut child = child;
    // SAFETY: the stack grows down from the end of the mapping (page-aligned, so 16-byte aligned).
    // With CLONE_VFORK this call returns only after the child stopped using the stack and `child`.
    let pid = unsafe {
        libc::clone(
            start,
            stack.cast::<u8>().add(STACK_SIZE).cast(),
            libc::CLONE_VM
                | libc::CLONE_VFORK
                | if as_sibling { libc::CLONE_PARENT } else { 0 }
                | libc::SIGCHLD,
            (&raw mut child).cast(),
        )
    };
    let error = io::Error::last_os_error();
    // SAFETY: the mapping is not used any more (see above).
    unsafe { libc::munmap(stack, STACK_SIZE) };
    match pid {
        -1 => Err(error),
        pid => Ok(Pid::from_raw(pid)),
    }
}

/// Turns this (forked) process into a daemon running `exe`: its own session, / as working
/// directory, /dev/null as stdin, stdout and stderr, and no other inherited descriptor (a pipe of the
/// caller's kept open would make the caller wait for its end). Returns only if exec failed.
pub fn detach_and_exec(exe: &Path, args: &[std::ffi::OsString]) -> io::Error {
    detach_and_exec_with(exe, args, None, None)
}

/// As `detach_and_exec`, with `output` (if any) as stdout and stderr instead of /dev/null, and
/// `keep` (if any) passed on as descriptor 3: a container's monitor, writing its log and telling its
/// starter on `keep` when the container runs.
pub fn detach_and_exec_with(
    exe: &Path,
    args: &[std::ffi::OsString],
    output: Option<BorrowedFd<'_>>,
    keep: Option<BorrowedFd<'_>>,
) -> io::Error {
    let _ = nix::unistd::setsid();
    let _ = nix::unistd::chdir("/");
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let out = output.map_or(null.as_raw_fd(), |fd| fd.as_raw_fd());
        // SAFETY: dup2 onto the standard descriptors, which this process no longer uses; the sources
        // are open (borrowed, or opened above) and above 2, so none is overwritten before it is read.
        unsafe {
            libc::dup2(null.as_raw_fd(), 0);
            libc::dup2(out, 1);
            libc::dup2(out, 2);
        }
    }
    let mut first_closed = 3;
    if let Some(keep) = keep {
        // SAFETY: dup2 onto 3 (a descriptor above 2 that the standard ones above did not take); when
        // `keep` is 3 already dup2 does nothing, so its close-on-exec flag is cleared explicitly.
        unsafe {
            if keep.as_raw_fd() != 3 {
                libc::dup2(keep.as_raw_fd(), 3);
            }
            libc::fcntl(3, libc::F_SETFD, 0);
        }
        first_closed = 4;
    }
    // SAFETY: closes every descriptor from `first_closed` up; nothing in this process uses them after
    // this point (the /dev/null above is among them). The raw system call: musl has no close_range
    // wrapper.
    unsafe { libc::syscall(libc::SYS_close_range, first_closed, libc::c_uint::MAX, 0) };
    let to_c = |s: &std::ffi::OsStr| std::ffi::CString::new(s.as_bytes());
    let (Ok(path), Ok(argv)) = (
        to_c(exe.as_os_str()),
        args.iter().map(|a| to_c(a)).collect::<Result<Vec<_>, _>>(),
    ) else {
        return io::Error::from(io::ErrorKind::InvalidInput);
    };
    match nix::unistd::execv(&path, &argv) {
        Err(e) => e.into(),
        Ok(never) => match never {},
    }
}

/// The descriptor `fd` that this process inherited (a monitor's descriptor 3), taken over as owned and
/// made close-on-exec; None if it is not open.
pub fn take_inherited(fd: RawFd) -> Option<OwnedFd> {
    // SAFETY: F_GETFD/F_SETFD only read and set the flags of the descriptor with this number.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return None;
    }
    // SAFETY: the descriptor is open (above) and nothing else in this process owns it: it was
    // inherited across exec, before any Rust object was made for it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// pidfd_open(2) (Linux 5.3): a descriptor that stays with the process `pid` names now, whatever
/// process gets that number later.
pub fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: the system call takes a pid and flags by value and returns a new descriptor.
    match unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0u32) } {
        -1 => Err(io::Error::last_os_error()),
        // SAFETY: a new descriptor that nothing else owns.
        fd => Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }),
    }
}

/// pidfd_send_signal(2) (Linux 5.1): `signal` to the process of `pidfd`, never to another one that
/// took its number.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: Signal) -> io::Result<()> {
    // SAFETY: a descriptor, a signal number, a null siginfo (as kill(2)) and no flags, by value.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal as libc::c_int,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
    match rc {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// _exit(2): leaves a forked child without running exit handlers or flushing buffers it inherited
/// from the parent (which would print the parent's pending output twice).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions.
    unsafe { libc::_exit(code) }
}

/// Spawns `cmd` so that it is killed when this process dies, even by SIGKILL (PR_SET_PDEATHSIG):
/// for companion processes such as pasta that must not outlive the container. `inherited` stay open
/// in it under the same numbers (they are close-on-exec here).
pub fn spawn_dying_with_parent(
    cmd: &mut std::process::Command,
    inherited: &[std::os::fd::BorrowedFd<'_>],
) -> io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let parent = nix::unistd::getpid();
    let inherited: Vec<i32> = inherited.iter().map(|fd| fd.as_raw_fd()).collect();
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe system calls;
    // `inherited` is open until spawn returns (the caller's borrow).
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
            // The parent may have died before the line above: then nobody would kill us.
            if nix::unistd::getppid() != parent {
                return Err(io::Error::other("parent exited"));
            }
            for &fd in &inherited {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        })
    };
    cmd.spawn()
}
