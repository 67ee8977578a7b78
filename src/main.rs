//! unshare-run: one executable, three applets chosen by the basename of argv[0].
//!
//! Start here: `applets.rs` holds the applet table and enforces each applet's privilege class before the
//! applet runs. Everything privileged is in the `unshare-run-helpers` crate (helpers/).

// Enforced: unsafe code only in src/runner/sys.rs (and helpers/src/sys.rs in the helpers crate).
#![deny(unsafe_code)]

mod applets;
mod runner;

fn main() -> std::process::ExitCode {
    applets::dispatch(std::env::args_os().collect())
}
