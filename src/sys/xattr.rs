//! Extended attributes (file capabilities read by the helpers' checks, image files' attributes).

use std::ffi::CStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The value of extended attribute `name` of `path` (at most 64 bytes: enough for capability sets).
pub fn read_xattr(path: &Path, name: &CStr) -> Option<Vec<u8>> {
    let cpath = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut buf = [0u8; 64];
    // SAFETY: both strings are NUL-terminated and buf is valid for buf.len() bytes.
    let rc = unsafe {
        libc::getxattr(
            cpath.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    usize::try_from(rc).ok().map(|n| buf[..n].to_vec())
}

/// fsetxattr(2): sets extended attribute `name` of the open file `fd` to `value`.
pub fn set_xattr(fd: std::os::fd::BorrowedFd<'_>, name: &CStr, value: &[u8]) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: name is NUL-terminated, value is valid for value.len() bytes, fd is open.
    let rc = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
