//! The container run, unshare-run's default command: plan the id map, resolve the root filesystem
//! (importing an image file the first time), build the spec, start the container.

use clap::FromArgMatches;

use super::cli::Cli;
use super::error::RunError;
use super::{container, image, mapping, spec};

pub fn main(matches: &clap::ArgMatches) -> Result<u8, RunError> {
    let cli = Cli::from_arg_matches(matches).map_err(|e| RunError::new(e.to_string()))?;
    let plan = mapping::plan_for_caller(cli.map)?;
    let mut image = match &cli.rootfs {
        None => None,
        Some(rootfs) => Some(image::resolve(
            rootfs,
            cli.name.as_deref(),
            &plan,
            image::ROOTFS_HINT,
            Some(&image::pull::Pulling::from_args(&cli.pull)?),
        )?),
    };
    // Held until the container has ended: `images rm` refuses an image in use.
    let in_use = image.as_mut().and_then(|i| i.in_use.take());
    let spec = spec::build(cli, &plan, image)?;
    let result = container::run(&spec, &plan);
    drop(in_use);
    // PID 1 removes the generated files once bound; this covers a container that failed before.
    if let Some(g) = &spec.generated {
        let _ = std::fs::remove_dir_all(&g.dir);
    }
    result
}
