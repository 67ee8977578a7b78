//! The runner's command line. The same definition will generate the man page and completions.

use std::ffi::OsString;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "unshare-run",
    version,
    about = "Run a command in a rootless container with your full subordinate id map",
    long_about = "Run a command in new user, mount, pid, uts and ipc namespaces, with inside id 0 mapped to \
you and inside ids 1.. mapped to all of your ranges in /etc/subuid and /etc/subgid, so that \
multi-user software (apt-get, su, chown) works without root.\n\n\
The same executable is also the newuidmap and newgidmap helpers when called by those names."
)]
pub struct Cli {
    /// The command to run, with its arguments.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<OsString>,
}
