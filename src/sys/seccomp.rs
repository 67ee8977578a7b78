//! Installing a seccomp filter.

use std::io;

/// One BPF instruction, as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// Installs `program` as a filter of the calling thread (SECCOMP_SET_MODE_FILTER). Needs
/// CAP_SYS_ADMIN in the thread's user namespace or no_new_privs.
pub fn install_filter(program: &[Insn]) -> io::Result<()> {
    #[repr(C)]
    struct Program {
        len: libc::c_ushort,
        filter: *const Insn,
    }
    let len = libc::c_ushort::try_from(program.len())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let fprog = Program {
        len,
        filter: program.as_ptr(),
    };
    // SAFETY: seccomp reads `len` instructions from `filter`, which `program` keeps alive, and the
    // struct, which lives on our stack; the kernel copies both before returning.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0u32,
            &raw const fprog,
        )
    };
    match rc {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}
