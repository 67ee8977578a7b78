//! The container run, unshare-run's default command: plan the id map, claim the container's name
//! (--name), resolve the root filesystem (importing an image file the first time), build the spec,
//! start the container, record how a named one ended.

use clap::FromArgMatches;

use super::cli::Cli;
use super::error::RunError;
use super::{container, containers, image, mapping, spec};

pub fn main(matches: &clap::ArgMatches) -> Result<u8, RunError> {
    let cli = Cli::from_arg_matches(matches).map_err(|e| RunError::new(e.to_string()))?;
    let plan = mapping::plan_for_caller(cli.map)?;
    // A taken name is refused before anything is pulled or imported.
    let mut named = match &cli.name {
        Some(name) => Some(containers::claim(name, cli.rm)?),
        None => None,
    };
    let mut image = match &cli.rootfs {
        None => None,
        Some(rootfs) => Some(image::resolve(
            rootfs,
            None,
            &plan,
            image::ROOTFS_HINT,
            Some(&image::pull::Pulling::from_args(&cli.pull)?),
        )?),
    };
    // Held until the container has ended: `images rm` refuses an image in use.
    let in_use = image.as_mut().and_then(|i| i.in_use.take());
    let digest = image.as_ref().and_then(|i| i.digest.clone());
    let rootfs_given = cli.rootfs.as_ref().map(|r| r.display().to_string());
    let spec = spec::build(cli, &plan, image)?;
    if let (Some(named), Some(rootfs)) = (named.as_mut(), &rootfs_given) {
        named.start(rootfs, digest.as_deref(), &spec.command)?;
    }
    let result = container::run(&spec, &plan);
    if let Some(named) = named {
        named.end(match &result {
            Ok(status) => *status,
            Err(e) => e.status,
        });
    }
    drop(in_use);
    // PID 1 removes the generated files once bound; this covers a container that failed before.
    if let Some(g) = &spec.generated {
        let _ = std::fs::remove_dir_all(&g.dir);
    }
    result
}
