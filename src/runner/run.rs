//! The container run, unshare-run's default command: plan the id map, then launch the container
//! (`launch`), or hand a named or detached one to its record (`containers`).

use clap::FromArgMatches;

use super::cli::Cli;
use super::error::RunError;
use super::{containers, launch, mapping};

/// `args`: the arguments as given, which a named container keeps to start again.
pub fn main(matches: &clap::ArgMatches, args: &[std::ffi::OsString]) -> Result<u8, RunError> {
    let cli = Cli::from_arg_matches(matches).map_err(|e| RunError::new(e.to_string()))?;
    let plan = mapping::plan_for_caller(cli.map)?;
    if cli.detach {
        return containers::detach(cli, &plan, args);
    }
    if cli.name.is_some() {
        return containers::foreground(cli, &plan, args);
    }
    launch::launch(cli, &plan, None)
}
