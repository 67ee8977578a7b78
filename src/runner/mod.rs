//! The unshare-run applet (the container runner). Unprivileged: `applets` has dropped every privilege
//! before this code runs. Modules by concern: `cli` (options), `mapping` (which ids, who writes them),
//! `container` (processes and namespaces), `rootfs` (mounts), `init` (PID 1), `command` (the exec); syscalls nix cannot offer safely are in `crate::sys`.

pub mod cli;
mod command;
mod container;
mod doctor;
mod error;
mod holder;
pub(crate) mod image;
mod init;
mod mapping;
mod rootfs;
mod users;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::Parser;

use container::ContainerSpec;
use error::RunError;
use mapping::{Caller, MapMode, MapPlan};
use users::GidWithoutEntry;

/// The runner's own failures (bad option, set-up failure), as podman and `env` use it.
pub const EXIT_RUNNER_ERROR: u8 = 125;

pub fn main(args: &[OsString]) -> u8 {
    start_debug_log();
    // `unshare-run doctor`; a container command of that name is run with `unshare-run -- doctor`.
    if args.first().is_some_and(|a| a == "doctor") {
        return doctor::main(&args[1..]);
    }
    // The holder of warm starts (started by unshare-run itself).
    if args.first().is_some_and(|a| a == holder::SERVE_ARG) {
        return holder::serve(&args[1..]);
    }
    // Likewise `unshare-run images`.
    if args.first().is_some_and(|a| a == "images") {
        return image::commands::main(&args[1..]);
    }
    match parse_or_exit::<cli::Cli>("unshare-run", args) {
        Ok(cli) => exit_status(run(cli)),
        Err(code) => code,
    }
}

/// UNSHARE_RUN_LOG (env_logger's syntax, e.g. `debug`) turns on the trace of what unshare-run does,
/// on stderr, each line with the process's pid (1 for the container's init). Unset: nothing is set up.
/// Not RUST_LOG: in host mode the command inherits the environment, and a Rust program run in the
/// container would take RUST_LOG as its own.
const LOG_VARIABLE: &str = "UNSHARE_RUN_LOG";

fn start_debug_log() {
    use std::io::Write;
    if std::env::var_os(LOG_VARIABLE).is_none() {
        return;
    }
    let _ = env_logger::Builder::from_env(LOG_VARIABLE)
        .format(|out, record| {
            writeln!(
                out,
                "unshare-run[{}]: {}: {}",
                std::process::id(),
                record.level().as_str().to_ascii_lowercase(),
                record.args()
            )
        })
        .try_init();
}

/// Parses `args` as `program`'s options. On an error, and for --help and --version, clap's text is
/// printed and the exit status is returned instead.
pub(crate) fn parse_or_exit<P: Parser>(program: &str, args: &[OsString]) -> Result<P, u8> {
    let argv = std::iter::once(OsString::from(program)).chain(args.iter().cloned());
    P::try_parse_from(argv).map_err(|e| {
        let _ = e.print();
        if e.use_stderr() { EXIT_RUNNER_ERROR } else { 0 }
    })
}

/// The exit status of a finished run: its own, or 125 once the error is printed (unless a child
/// process printed it already).
pub(crate) fn exit_status(result: Result<u8, RunError>) -> u8 {
    result.unwrap_or_else(|e| {
        if !e.reported {
            eprintln!("unshare-run: {e}");
        }
        EXIT_RUNNER_ERROR
    })
}

fn current_caller() -> Caller {
    let uid = nix::unistd::getuid();
    Caller {
        uid: uid.as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        name: users::caller_name(uid.as_raw()),
    }
}

/// The id map for `mode`: with `MapMode::Auto` and no usable subordinate ids, a single-id map and
/// one warning.
pub(crate) fn plan_ids(mode: MapMode) -> Result<(MapPlan, Option<mapping::Helpers>), RunError> {
    let caller = current_caller();
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let path_var = std::env::var_os("PATH");
    let find = |name: &str| mapping::find_helper(name, exe_dir.as_deref(), path_var.clone());
    match mapping::plan_map(mode, &caller, "/etc/subuid", "/etc/subgid", find) {
        Ok(planned) => {
            log::debug!("id map: {:?} (helpers: {:?})", planned.0, planned.1);
            Ok(planned)
        }
        Err(why) if mode == MapMode::Auto => {
            eprintln!(
                "unshare-run: warning: only your own id is mapped (uid 0 inside), so apt, su and chown to other \
                 ids will fail: {}\n  fix: {}",
                why.reason, why.fix
            );
            Ok((
                MapPlan::Single {
                    inside_uid: 0,
                    inside_gid: 0,
                },
                None,
            ))
        }
        Err(why) => Err(
            RunError::new(format!("cannot set up the full id map: {}", why.reason))
                .with_hint(why.fix),
        ),
    }
}

fn run(cli: cli::Cli) -> Result<u8, RunError> {
    let (plan, helpers) = plan_ids(cli.map)?;
    let mut image = match &cli.rootfs {
        None => None,
        Some(rootfs) => {
            let ids = image::MappedIds {
                plan: &plan,
                helpers: helpers.as_ref(),
            };
            Some(image::resolve(
                rootfs,
                cli.name.as_deref(),
                &ids,
                image::ROOTFS_HINT,
            )?)
        }
    };
    // Held until the container has ended: `images rm` refuses an image in use.
    let in_use = image.as_mut().and_then(|i| i.in_use.take());
    let spec = container_spec(cli, &plan, image)?;
    let result = container::run(&spec, &plan, helpers.as_ref());
    drop(in_use);
    // PID 1 removes the generated files once bound; this covers a container that failed before.
    if let Some(g) = &spec.generated {
        let _ = std::fs::remove_dir_all(&g.dir);
    }
    result
}

/// The ids usable inside under `plan`, as (first, count).
fn mapped_inside(
    lines: &[unshare_run_helpers::idmap::IdMapping],
) -> impl Iterator<Item = (u64, u64)> + '_ {
    lines
        .iter()
        .map(|m| (u64::from(m.inside), u64::from(m.count)))
}

fn is_mapped(plan: &MapPlan, id: u32, uid: bool) -> bool {
    match plan {
        MapPlan::Full { uid: u, gid: g } => mapped_inside(if uid { u } else { g })
            .any(|(first, count)| (first..first + count).contains(&u64::from(id))),
        MapPlan::Single {
            inside_uid,
            inside_gid,
        } => id == if uid { *inside_uid } else { *inside_gid },
    }
}

const USER_HINT: &str =
    "give the user as UID[:GID], or as a name that the root filesystem's /etc/passwd has";
const IMAGE_USER_HINT: &str = "choose another user with --user USER[:GROUP]";

fn container_spec(
    cli: cli::Cli,
    plan: &MapPlan,
    image: Option<image::Resolved>,
) -> Result<ContainerSpec, RunError> {
    let (rootfs, config) = match image {
        Some(resolved) => (Some(resolved.rootfs), resolved.config),
        None => (None, image::ImageConfig::default()),
    };
    let (default_uid, default_gid) = match plan {
        MapPlan::Single {
            inside_uid,
            inside_gid,
        } => (*inside_uid, *inside_gid),
        MapPlan::Full { .. } => (0, 0),
    };
    // Names mean what the container's /etc/passwd and /etc/group say (in host mode: the host's).
    let root = rootfs.as_deref().unwrap_or(Path::new("/"));
    let (uid, gid) = match (&cli.user, &config.user) {
        (Some(user), _) => users::ids_in(root, user, GidWithoutEntry::SameAsUid)
            .map_err(|e| RunError::new(format!("--user {user}: {e}")).with_hint(USER_HINT))?,
        (None, Some(user)) if rootfs.is_some() => users::ids_in(root, user, GidWithoutEntry::Zero)
            .map_err(|e| {
                RunError::new(format!("the image's user {user}: {e}")).with_hint(IMAGE_USER_HINT)
            })?,
        (None, _) => (default_uid, default_gid),
    };
    for (id, is_uid) in [(uid, true), (gid, false)] {
        if !is_mapped(plan, id, is_uid) {
            let kind = if is_uid { "uid" } else { "gid" };
            return Err(
                RunError::new(format!("{kind} {id} is not mapped in the container")).with_hint(
                    "with a single-id map only your own id exists inside; use --map full",
                ),
            );
        }
    }
    let mut binds = Vec::new();
    for (list, read_only) in [(&cli.bind, false), (&cli.ro_bind, true)] {
        for (source, target) in list {
            let source = source
                .canonicalize()
                .map_err(|e| RunError::new(format!("bind source {}: {e}", source.display())))?;
            binds.push(rootfs::Bind {
                source,
                target: target.clone(),
                read_only,
            });
        }
    }
    if !cli.publish.is_empty() && cli.net != cli::NetMode::Pasta {
        return Err(RunError::new("--publish needs --net pasta").with_hint(
            "add --net pasta (ports can only be published into a network of the container's own)",
        ));
    }
    let generated = generate_network_files(cli.net, cli.hostname.as_deref())?;
    let workdir = cli
        .workdir
        .or_else(|| config.working_dir.clone().map(PathBuf::from))
        .map(|w| {
            if w.is_absolute() {
                w
            } else {
                PathBuf::from("/").join(w)
            }
        });
    Ok(ContainerSpec {
        rootfs,
        net: cli.net,
        hostname: cli.hostname,
        uid,
        gid,
        workdir,
        env: image_env(&config.env).chain(cli.env).collect(),
        binds,
        tmpfs: cli.tmpfs,
        command: image_command(&config, cli.entrypoint, cli.command),
        overlay: match (cli.ephemeral, cli.overlay) {
            (true, _) => Some(rootfs::Overlay::Ephemeral),
            (false, Some(dir)) => Some(rootfs::Overlay::Persistent(absolute(&dir)?)),
            (false, None) => None,
        },
        read_only_root: cli.read_only,
        setgroups_allowed: matches!(plan, MapPlan::Full { .. }),
        publish: cli.publish,
        holder_idle: std::time::Duration::from_secs(cli.holder_idle),
        generated,
    })
}

/// The image's `Env` ("KEY=VALUE"), which --env overrides.
fn image_env(env: &[String]) -> impl Iterator<Item = (OsString, OsString)> + '_ {
    env.iter().filter_map(|entry| {
        let (key, value) = entry.split_once('=')?;
        Some((key.into(), value.into()))
    })
}

/// The command as an image defines it: its entrypoint (unless --entrypoint replaces it) followed by
/// the given command, or by the image's Cmd when none is given. Empty: an interactive shell.
fn image_command(
    config: &image::ImageConfig,
    entrypoint: Option<OsString>,
    command: Vec<OsString>,
) -> Vec<OsString> {
    let entrypoint: Vec<OsString> = match entrypoint {
        Some(program) if program.is_empty() => Vec::new(),
        Some(program) => vec![program],
        None => config.entrypoint.iter().map(OsString::from).collect(),
    };
    let arguments = if command.is_empty() {
        config.cmd.iter().map(OsString::from).collect()
    } else {
        command
    };
    entrypoint.into_iter().chain(arguments).collect()
}

fn absolute(path: &Path) -> Result<PathBuf, RunError> {
    std::path::absolute(path).map_err(|e| RunError::sys(path.display(), e))
}

/// The container's /etc/resolv.conf (pasta's DNS forwarder) and /etc/hosts (the host's, plus the
/// container's hostname on 127.0.1.1 so that it resolves), when they differ from the host's.
fn generate_network_files(
    net: cli::NetMode,
    hostname: Option<&str>,
) -> Result<Option<container::Generated>, RunError> {
    if net == cli::NetMode::Host && hostname.is_none() {
        return Ok(None);
    }
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = base.join(format!("unshare-run.{}.{nanos}", std::process::id()));
    let fail = |e: std::io::Error| RunError::sys(format!("cannot create {}", dir.display()), e);
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(&dir)
        .map_err(fail)?;
    let resolv_conf = if net == cli::NetMode::Pasta {
        let path = dir.join("resolv.conf");
        std::fs::write(&path, format!("nameserver {}\n", container::PASTA_DNS)).map_err(fail)?;
        Some(path)
    } else {
        None
    };
    let name = match hostname {
        Some(h) => h.to_string(),
        None => nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "localhost".into()),
    };
    let mut hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_else(|_| {
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n".into()
    });
    if !hosts.ends_with('\n') {
        hosts.push('\n');
    }
    hosts.push_str(&format!("127.0.1.1\t{name}\n"));
    let hosts_path = dir.join("hosts");
    std::fs::write(&hosts_path, hosts).map_err(fail)?;
    Ok(Some(container::Generated {
        dir,
        resolv_conf,
        hosts: hosts_path,
    }))
}
