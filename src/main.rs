//! unshare-run: one executable, three applets chosen by the basename of argv[0].
//!
//! Start here: `applets.rs` holds the applet table and enforces each applet's privilege class before the
//! applet runs. Everything privileged is in the `unshare-run-helpers` crate (helpers/).

mod applets;
mod runner;

fn main() -> std::process::ExitCode {
    applets::dispatch(std::env::args_os().collect())
}
