//! The unshare-run applet (the container runner). Unprivileged: `applets` has dropped every privilege
//! before this code runs.

mod cli;

use std::ffi::OsString;

use clap::Parser;

/// The runner's own failures (bad option, setup failure), as podman and `env` use it.
pub const EXIT_RUNNER_ERROR: u8 = 125;

pub fn main(args: &[OsString]) -> u8 {
    let argv = std::iter::once(OsString::from("unshare-run")).chain(args.iter().cloned());
    let cli = match cli::Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_RUNNER_ERROR } else { 0 };
        }
    };
    let _ = cli.command;
    eprintln!(
        "unshare-run: running containers is not implemented in this version yet; \
         this build provides the newuidmap and newgidmap helpers (run them under those names)"
    );
    EXIT_RUNNER_ERROR
}
