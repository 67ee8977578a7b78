//! unshare-run: one executable, four applets chosen by the basename of argv[0].
//!
//! Start here: `applets.rs` holds the applet table and enforces each applet's privilege class before the
//! applet runs. Everything privileged is in the `unshare-run-helpers` crate (helpers/).

// Enforced: unsafe code only in src/sys.rs (and helpers/src/sys.rs in the helpers crate).
#![deny(unsafe_code)]
// The process entry is `sys::main`, a plain C main: Rust's runtime start-up is skipped, so the helpers
// start faster (no /proc/self/maps read, no signal stack), and SIGPIPE keeps the disposition the caller
// gave us instead of being ignored, which exec'd commands would inherit.
#![cfg_attr(not(test), no_main)]
// Unit tests use the harness's main, so the entry path is unused there.
#![cfg_attr(test, allow(dead_code))]

mod applets;
mod runner;
#[allow(unsafe_code)]
mod sys;
