//! One container from its command line: the root filesystem resolved (imported or pulled the first
//! time), the spec built, the container run, and what the start left cleaned up. The run verb
//! launches an unnamed container with nothing watching; a named container's record (`containers`)
//! watches, in the foreground and in a detached container's monitor.

use std::ffi::OsString;
use std::path::Path;

use nix::unistd::Pid;

use super::cli::Cli;
use super::error::RunError;
use super::mapping::MapPlan;
use super::spec::ContainerSpec;
use super::{container, image, spec};

/// What a named container's record hears of its launch.
pub trait Watch {
    /// The container is built and about to start.
    fn built(&mut self, built: &Built<'_>) -> Result<(), RunError>;
    /// Its command runs, under PID 1 (`pid1`, in the caller's pid namespace).
    fn running(&mut self, pid1: Pid);
    /// Where a container on a stored image keeps its writes (named containers: a layer of their own,
    /// as in podman), and its name.
    fn layer(&self) -> (std::path::PathBuf, String);
}

/// A container about to start, as its record keeps it.
pub struct Built<'a> {
    /// The root filesystem as given to --rootfs.
    pub given: &'a Path,
    /// The stored image it is built on, if any.
    pub digest: Option<&'a str>,
    /// What a later start gives --rootfs for the same root filesystem: the stored image's digest, or
    /// the directory's canonical path.
    pub pinned: &'a Path,
    /// The command as it runs (the image's entrypoint and command under the options).
    pub command: &'a [OsString],
    /// The image's StopSignal.
    pub stop_signal: Option<&'a str>,
    /// What it is (None where it is recorded before it is built: `--detach`).
    pub spec: Option<&'a ContainerSpec>,
    /// The ids it runs with.
    pub plan: &'a MapPlan,
}

/// Launches the container that `cli` asks for with the ids of `plan`; its exit status.
pub fn launch(mut cli: Cli, plan: &MapPlan, watch: Option<&mut dyn Watch>) -> Result<u8, RunError> {
    let mut image = match &cli.rootfs {
        None => None,
        Some(rootfs) => Some(image::resolve(
            rootfs,
            None,
            plan,
            image::ROOTFS_HINT,
            Some(&image::pull::Pulling::from_args(&cli.pull)?),
        )?),
    };
    // A named container on a stored image writes a layer of its own, unless told where its writes go.
    let own_layer = !(cli.ephemeral || cli.read_only || cli.overlay.is_some());
    if let (Some(watch), Some(resolved), true) = (&watch, image.as_mut(), own_layer)
        && resolved.digest.is_some()
    {
        let (layer, name) = watch.layer();
        resolved.read_only_below(&name)?;
        cli.overlay = Some(layer);
    }
    // Held until the container has ended: `images rm` refuses an image in use.
    let in_use = image.as_mut().and_then(|i| i.in_use.take());
    let digest = image.as_ref().and_then(|i| i.digest.clone());
    let pinned = image
        .as_ref()
        .map(|i| digest.as_ref().map_or(i.rootfs.clone(), Into::into));
    let given = cli.rootfs.clone();
    let stop_signal = image.as_ref().and_then(|i| i.config.stop_signal.clone());
    let spec = spec::build(cli, plan, image)?;
    let result = match watch {
        None => container::run(&spec, plan, None),
        Some(watch) => {
            let built = match (&given, &pinned) {
                (Some(given), Some(pinned)) => watch.built(&Built {
                    given,
                    digest: digest.as_deref(),
                    pinned,
                    command: &spec.command,
                    stop_signal: stop_signal.as_deref(),
                    spec: Some(&spec),
                    plan,
                }),
                _ => Ok(()),
            };
            built.and_then(|()| container::run(&spec, plan, Some(&mut |pid1| watch.running(pid1))))
        }
    };
    drop(in_use);
    // PID 1 removes the generated files once bound; this covers a container that failed before.
    if let Some(g) = &spec.generated {
        let _ = std::fs::remove_dir_all(&g.dir);
    }
    result
}
