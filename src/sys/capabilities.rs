//! The calls that set a process's capabilities, which nix does not wrap: the bounding set, the
//! ambient set and capset(2).

use std::io;

/// Removes capability `cap` from the bounding set (needs CAP_SETPCAP): no later exec can gain it.
pub fn drop_from_bounding_set(cap: u32) -> io::Result<()> {
    // SAFETY: PR_CAPBSET_DROP takes the capability's number by value.
    match unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Empties the ambient set, which would otherwise carry capabilities across exec for a non-root user.
pub fn clear_ambient_set() -> io::Result<()> {
    let clear = libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong;
    // SAFETY: PR_CAP_AMBIENT with CLEAR_ALL takes no pointer.
    match unsafe { libc::prctl(libc::PR_CAP_AMBIENT, clear, 0, 0, 0) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Sets the calling thread's effective, permitted and inheritable sets (bit N: capability N).
pub fn set_capabilities(effective: u64, permitted: u64, inheritable: u64) -> io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let half = |set: u64, upper: bool| {
        if upper {
            (set >> 32) as u32
        } else {
            set as u32
        }
    };
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let data = [false, true].map(|upper| Data {
        effective: half(effective, upper),
        permitted: half(permitted, upper),
        inheritable: half(inheritable, upper),
    });
    // SAFETY: capset reads one header and, for version 3, two data structs, which live on our stack.
    match unsafe { libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}
