//! The process entry point: a plain C main, so that Rust's runtime start-up is skipped (main.rs says
//! why).

/// The process entry point (see main.rs). The arguments come from argc/argv, not std::env::args:
/// std fills those from an init function to which glibc passes argc/argv but musl does not, so with
/// this entry point a musl build would see no arguments at all (and dispatch on an empty argv[0]).
#[cfg(not(test))]
#[unsafe(no_mangle)]
pub extern "C" fn main(argc: libc::c_int, argv: *const *const libc::c_char) -> libc::c_int {
    use std::io::Write;
    use std::os::unix::ffi::OsStrExt;
    let count = usize::try_from(argc).unwrap_or(0);
    let args = (0..count)
        .map(|i| {
            // SAFETY: the C runtime passes argc valid, NUL-terminated strings in argv[0..argc].
            let arg = unsafe { std::ffi::CStr::from_ptr(*argv.add(i)) };
            std::ffi::OsStr::from_bytes(arg.to_bytes()).to_owned()
        })
        .collect();
    let status = crate::applets::dispatch(args);
    // Without Rust's runtime nothing flushes stdout at exit.
    let _ = std::io::stdout().flush();
    libc::c_int::from(status)
}
