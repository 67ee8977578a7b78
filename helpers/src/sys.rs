//! The only module with `unsafe`: thin wrappers over the syscalls nix does not cover.
//!
//! Each wrapper is small enough to check by reading; everything above it is safe Rust. Besides the
//! syscalls: the vectorised filter of the subid scan (`next_line_candidates`).

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

/// The subid scan's filter, vectorised (`subid::LineFilter::mask_scalar` is its definition): from
/// `pos`, in steps of 64 positions while 128 bytes of `region` remain from the step's first, the
/// first step with a position `p` where `region[p]` is "\n" and, for `j` 0 or 2,
/// `region[p + offsets[j]] == bytes[j]` and `region[p + offsets[j + 1]] == bytes[j + 1]`:
/// `Ok((step, mask))`, bit `i` of `mask` for position `step + i`. `Err(end)` when no step has one:
/// the positions from `end` on are left to the caller. Offsets are taken modulo 64, so every load
/// lies within the 128 bytes. With `avx2` 32 bytes at a time, else 16 with SSE2, which every x86-64
/// processor has.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
pub fn next_line_candidates(
    region: &[u8],
    pos: usize,
    offsets: [usize; 4],
    bytes: [u8; 4],
    avx2: Option<Avx2>,
) -> Result<(usize, u64), usize> {
    #[cfg(target_env = "gnu")]
    if avx2.is_some() {
        // SAFETY: an `Avx2` is made only by avx2(), when glibc found AVX2 on this processor, enabled
        // by the kernel.
        return unsafe { next_line_candidates_avx2(region, pos, offsets, bytes) };
    }
    let _ = avx2;
    // SAFETY: the function only needs SSE2, which this build's target has (the cfg above).
    unsafe { next_line_candidates_sse2(region, pos, offsets, bytes) }
}

/// How far ahead of the scan the next bytes are asked for. The processor's own prefetcher does not
/// cross a 4 KiB page, and a fresh process finds none of a large subid file in its caches: asking
/// 2 KiB ahead took a 100,000-line file from 1.43 to 1.36 times the 2-line helper's time (1, 4 and 8
/// KiB were no better; docs/benchmarks.md).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
const PREFETCH_AHEAD: usize = 2048;

/// Asks for the cache line `PREFETCH_AHEAD` bytes after `pos` of `region`.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn prefetch(region: &[u8], pos: usize) {
    use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    let ahead = region
        .as_ptr()
        .wrapping_add(pos.wrapping_add(PREFETCH_AHEAD));
    // SAFETY: a prefetch reads nothing the program sees and never faults, whatever the address (past
    // the end of the file it is dropped); `wrapping_add` makes no claim about the pointer.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(ahead.cast()) };
}

/// The 128 bytes of `region` from `pos`, if there are that many.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn block_at(region: &[u8], pos: usize) -> Option<&[u8; 128]> {
    region.get(pos..).and_then(|rest| rest.first_chunk::<128>())
}

/// `N` bytes of the block from `at` (at most 48 + 63: always within the block; `get` only keeps
/// this free of any panic path, and the compiler removes the check).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn lane<const N: usize>(block: &[u8; 128], at: usize) -> &[u8; N] {
    block
        .get(at..)
        .and_then(|rest| rest.first_chunk::<N>())
        .unwrap_or(&[0; N])
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
fn next_line_candidates_sse2(
    region: &[u8],
    mut pos: usize,
    offsets: [usize; 4],
    bytes: [u8; 4],
) -> Result<(usize, u64), usize> {
    use std::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    let offsets = offsets.map(|o| o % 64);
    let newline = _mm_set1_epi8(b'\n' as i8);
    let wanted = bytes.map(|b| _mm_set1_epi8(b as i8));
    while let Some(block) = block_at(region, pos) {
        prefetch(region, pos);
        let load = |at: usize| -> __m128i {
            // SAFETY: a lane is 16 readable bytes; the load has no alignment requirement.
            unsafe { _mm_loadu_si128(lane::<16>(block, at).as_ptr().cast()) }
        };
        let hits_from = |start: usize| {
            let is = |j: usize| _mm_cmpeq_epi8(load(start + offsets[j]), wanted[j]);
            let either = _mm_or_si128(_mm_and_si128(is(0), is(1)), _mm_and_si128(is(2), is(3)));
            _mm_and_si128(_mm_cmpeq_epi8(load(start), newline), either)
        };
        let hits = [hits_from(0), hits_from(16), hits_from(32), hits_from(48)];
        let any = _mm_or_si128(
            _mm_or_si128(hits[0], hits[1]),
            _mm_or_si128(hits[2], hits[3]),
        );
        // Most blocks of a large file hold none of the caller's lines.
        if _mm_movemask_epi8(any) != 0 {
            let mask = hits.iter().enumerate().fold(0u64, |mask, (i, hit)| {
                mask | (u64::from(_mm_movemask_epi8(*hit) as u16) << (16 * i))
            });
            return Ok((pos, mask));
        }
        pos += 64;
    }
    Err(pos)
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2", target_env = "gnu"))]
#[target_feature(enable = "avx2")]
fn next_line_candidates_avx2(
    region: &[u8],
    mut pos: usize,
    offsets: [usize; 4],
    bytes: [u8; 4],
) -> Result<(usize, u64), usize> {
    use std::arch::x86_64::{
        __m256i, _mm256_and_si256, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8,
        _mm256_or_si256, _mm256_set1_epi8,
    };
    let offsets = offsets.map(|o| o % 64);
    let newline = _mm256_set1_epi8(b'\n' as i8);
    let wanted = bytes.map(|b| _mm256_set1_epi8(b as i8));
    while let Some(block) = block_at(region, pos) {
        prefetch(region, pos);
        let load = |at: usize| -> __m256i {
            // SAFETY: a lane is 32 readable bytes; the load has no alignment requirement.
            unsafe { _mm256_loadu_si256(lane::<32>(block, at).as_ptr().cast()) }
        };
        let hits_from = |start: usize| {
            let is = |j: usize| _mm256_cmpeq_epi8(load(start + offsets[j]), wanted[j]);
            let either = _mm256_or_si256(
                _mm256_and_si256(is(0), is(1)),
                _mm256_and_si256(is(2), is(3)),
            );
            _mm256_and_si256(_mm256_cmpeq_epi8(load(start), newline), either)
        };
        let (low, high) = (hits_from(0), hits_from(32));
        if _mm256_movemask_epi8(_mm256_or_si256(low, high)) != 0 {
            let mask = u64::from(_mm256_movemask_epi8(low) as u32)
                | (u64::from(_mm256_movemask_epi8(high) as u32) << 32);
            return Ok((pos, mask));
        }
        pos += 64;
    }
    Err(pos)
}

/// Proof that this processor can run AVX2 instructions: only `avx2()` makes one, so that no safe
/// code can ask for the AVX2 scan where it would fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Avx2(());

/// Whether AVX2 can be used: glibc's record of the processor's features (`CPU_FEATURE_ACTIVE(AVX2)`
/// of <sys/platform/x86.h>, glibc 2.33+), made at start-up, so no CPUID instruction runs here (each
/// one traps to the hypervisor in a VM). A caller can only turn it off (GLIBC_TUNABLES), which
/// changes the speed of the scan, never its result.
#[cfg(all(target_arch = "x86_64", target_env = "gnu"))]
pub fn avx2() -> Option<Avx2> {
    /// struct cpuid_feature: the CPUID registers of one leaf, and the bits glibc found usable.
    #[repr(C)]
    struct CpuidFeature {
        cpuid: [u32; 4],
        active: [u32; 4],
    }
    unsafe extern "C" {
        fn __x86_get_cpuid_feature_leaf(leaf: u32) -> *const CpuidFeature;
    }
    const CPUID_INDEX_7: u32 = 1;
    const EBX: usize = 1;
    const AVX2: u32 = 1 << 5;
    // SAFETY: the function takes any index and returns a pointer to glibc's static, read-only record
    // (a zeroed one for an index it does not know), valid for the whole process.
    let leaf = unsafe { __x86_get_cpuid_feature_leaf(CPUID_INDEX_7).as_ref() };
    leaf.is_some_and(|leaf| leaf.active[EBX] & AVX2 != 0)
        .then_some(Avx2(()))
}

/// Without glibc's record (musl, other architectures), the scan uses SSE2 (or no vectors).
#[cfg(not(all(target_arch = "x86_64", target_env = "gnu")))]
pub fn avx2() -> Option<Avx2> {
    None
}
