//! What a container is: `ContainerSpec`, everything a start needs, resolved and validated; and
//! building it from the command line, the image's defaults and the id map. The start (container,
//! init, rootfs, command) only reads it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cli::{Cli, NetMode, Publish, SystemdMode};
use super::confinement::descriptors::{self, Passed};
use super::confinement::{self, Confinement};
use super::error::RunError;
pub use super::image::Layered;
use super::image::{ImageConfig, Resolved};
use super::mapping::MapPlan;
use super::network::{self, Generated};
use super::terminal::{self, CallerStdio, Session};
use super::users::{self, Account, GidWithoutEntry};

/// Everything the container needs, resolved and validated.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    pub rootfs: Option<PathBuf>,
    pub net: NetMode,
    pub hostname: Option<String>,
    pub uid: u32,
    pub gid: u32,
    pub workdir: Option<PathBuf>,
    pub env: Vec<(OsString, OsString)>,
    pub binds: Vec<Bind>,
    pub tmpfs: Vec<PathBuf>,
    /// Empty: an interactive shell.
    pub command: Vec<OsString>,
    /// Whether setgroups(2) works inside (full map): supplementary groups can then be dropped.
    pub setgroups_allowed: bool,
    /// Ports published through pasta.
    pub publish: Vec<Publish>,
    /// Options added to the container's own pasta (--net pasta:OPTION,...).
    pub pasta_options: Vec<String>,
    /// How long a holder keeps the user namespace for later starts (zero: no holder).
    pub holder_idle: Duration,
    /// Writes go to an overlay instead of the root filesystem.
    pub overlay: Option<Overlay>,
    /// A pulled image: `rootfs` is the empty mount point of its layers' overlay.
    pub layered: Option<Layered>,
    /// This container holds the pulled image's upper layer (no other container writes it).
    pub upper_claimed: bool,
    /// The root filesystem is mounted read-only (its submounts keep their own flags).
    pub read_only_root: bool,
    /// The command's session, and whether it has a terminal of the container's own.
    pub session: Session,
    /// Generated /etc/resolv.conf and /etc/hosts for the container (bound by PID 1, which then removes
    /// them and their directory), and where PID 1 writes the account files.
    pub generated: Option<Generated>,
    /// The command's user when it is the caller's own uid inside (keep-id): added to the root
    /// filesystem's /etc/passwd and /etc/group by generated files where they lack it, with a home.
    pub account: Option<Account>,
    /// The caller's descriptors above 2 that a --rootfs container gets (host mode: all of them).
    pub passed_fds: Passed,
    /// The command's capabilities and no_new_privs.
    pub confinement: Confinement,
}

/// A host path bound into the container (--bind, --ro-bind).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bind {
    /// Canonical, on the host.
    pub source: PathBuf,
    /// Absolute, inside the container.
    pub target: PathBuf,
    pub read_only: bool,
    /// The source is a directory (a missing mount point is made as one), else a file.
    pub source_is_dir: bool,
}

/// Where the container's writes go when they must not reach the root filesystem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Overlay {
    /// A tmpfs: gone with the container.
    Ephemeral,
    /// DIR/upper and DIR/work (created if missing): kept for later runs.
    Persistent(PathBuf),
}

const USER_HINT: &str =
    "give the user as UID[:GID], or as a name that the root filesystem's /etc/passwd has";
const IMAGE_USER_HINT: &str = "choose another user with --user USER[:GROUP]";

/// The container that `cli` asks for, with `image`'s defaults under the options, for the ids of
/// `plan`.
pub fn build(
    mut cli: Cli,
    plan: &MapPlan,
    image: Option<Resolved>,
) -> Result<ContainerSpec, RunError> {
    let passed_fds = descriptors::passed(
        cli.preserve_fds,
        |k| std::env::var_os(k),
        std::process::id(),
    )?;
    descriptors::check_open(&passed_fds)?;
    let confinement = confinement::decide(&confinement::Options {
        rootfs: image.is_some(),
        privileged: cli.privileged,
        cap_add: &cli.cap_add,
        cap_drop: &cli.cap_drop,
        security_opt: &cli.security_opt,
    })?;
    let (rootfs, config, layered, upper_taken) = match image {
        Some(resolved) => (
            Some(resolved.rootfs),
            resolved.config,
            resolved.layered,
            resolved.upper_taken,
        ),
        None => (None, ImageConfig::default(), None, false),
    };
    let command = image_command(
        &config,
        cli.entrypoint.take(),
        std::mem::take(&mut cli.command),
    );
    refuse_systemd(cli.systemd, &command)?;
    let view = match (&layered, &rootfs) {
        (Some(layered), _) => Some(layered.view()),
        (None, Some(root)) => Some(vec![root.clone()]),
        (None, None) => None,
    };
    let (uid, gid) = user_ids(&cli, &config, view.as_deref(), plan)?;
    let binds = binds(&cli)?;
    let pasta_options = cli
        .net
        .as_ref()
        .map(|n| n.pasta_options.clone())
        .unwrap_or_default();
    let net = network_mode(
        cli.net.map(|n| n.mode),
        rootfs.is_some(),
        !cli.publish.is_empty(),
    )?;
    let account = match rootfs {
        Some(_) if runs_as_callers_uid(uid, plan) => caller_account(plan),
        _ => None,
    };
    let generated = network::generate_files(net, cli.hostname.as_deref(), account.is_some())?;
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
    // Host mode without -t keeps the caller's session whatever its descriptors are: no probe.
    let caller = match (&rootfs, cli.tty) {
        (None, None) => CallerStdio::default(),
        _ => CallerStdio::probe(),
    };
    let session = terminal::session_for(cli.tty, rootfs.is_some(), caller);
    Ok(ContainerSpec {
        rootfs,
        net,
        hostname: cli.hostname,
        uid,
        gid,
        workdir,
        env: image_env(&config.env)
            .chain(descriptors::environment(&passed_fds))
            .chain(cli.env)
            .collect(),
        binds,
        tmpfs: cli.tmpfs,
        command,
        overlay: match (cli.ephemeral, cli.overlay) {
            (true, _) => Some(Overlay::Ephemeral),
            (false, Some(dir)) => Some(Overlay::Persistent(absolute(&dir)?)),
            (false, None) if upper_taken => {
                // overlayfs leaves two mounts on one upper layer undefined.
                eprintln!(
                    "unshare-run: warning: another container uses this image's layer, so this \
                     one's writes go to a temporary layer (--overlay DIR keeps them)"
                );
                Some(Overlay::Ephemeral)
            }
            (false, None) => None,
        },
        upper_claimed: layered.is_some() && !upper_taken,
        layered,
        read_only_root: cli.read_only,
        setgroups_allowed: plan.allows_setgroups(),
        session,
        publish: cli.publish,
        pasta_options,
        holder_idle: Duration::from_secs(cli.holder_idle),
        generated,
        account,
        passed_fds,
        confinement,
    })
}

/// A run that asks for systemd as the container's init is refused (see `asks_for_systemd`).
pub fn refuse_systemd(mode: SystemdMode, command: &[OsString]) -> Result<(), RunError> {
    match asks_for_systemd(mode, command) {
        true => Err(RunError::new(
            "systemd as the container's init needs a cgroup v2 subtree delegated to you, which \
             unshare-run does not set up",
        )
        .with_hint(
            "run a service's own command instead, or --systemd=false to start it as any other command",
        )),
        false => Ok(()),
    }
}

/// Whether the run asks for systemd as the container's init (podman's rule: --systemd=always, or the
/// default and a command that is /sbin/init or a systemd binary).
fn asks_for_systemd(mode: SystemdMode, command: &[OsString]) -> bool {
    let is_systemd = command.first().is_some_and(|program| {
        let path = Path::new(program);
        path == Path::new("/sbin/init")
            || path == Path::new("/usr/sbin/init")
            || path.file_name().is_some_and(|name| name == "systemd")
    });
    match mode {
        SystemdMode::Always => true,
        SystemdMode::True => is_systemd,
        SystemdMode::False => false,
    }
}

/// Whether the command runs as the caller's own uid inside, other than root (keep-id, or a single-id
/// map that keeps the uid): a root filesystem's passwd has no entry for it unless the image was made
/// for this user. As root (`--user 0`), the image's own files are used untouched: useradd and adduser
/// rename a new /etc/passwd over the old one, which a file bound there would make fail (EBUSY).
fn runs_as_callers_uid(uid: u32, plan: &MapPlan) -> bool {
    uid != 0 && uid == plan.caller_inside().0
}

/// The caller's host account at the caller's inside ids; None when the host knows no such user.
fn caller_account(plan: &MapPlan) -> Option<Account> {
    let (uid, gid) = plan.caller_inside();
    let host_uid = nix::unistd::getuid().as_raw();
    let host = users::caller_entry(host_uid)?;
    let group = users::host_group_name(nix::unistd::getgid().as_raw());
    let account = Account::of_caller(host, group, uid, gid);
    log::debug!("the command's account, where the root filesystem lacks it: {account:?}");
    account
}

/// The command's ids: --user, else the image's User (not under keep-id, which runs the command as
/// the caller, as podman does), else the caller's own ids inside. Names mean what the container's
/// /etc/passwd and /etc/group say (in host mode: the host's). Each must be mapped. `rootfs`: the
/// directories that show the root filesystem's files (`users::find_in_layers`).
fn user_ids(
    cli: &Cli,
    config: &ImageConfig,
    rootfs: Option<&[PathBuf]>,
    plan: &MapPlan,
) -> Result<(u32, u32), RunError> {
    let host = [PathBuf::from("/")];
    let root = rootfs.unwrap_or(&host);
    let image_user = config.user.as_ref().filter(|_| !plan.is_keep_id());
    let (uid, gid) = match (&cli.user, image_user) {
        (Some(user), _) => users::ids_in(root, user, GidWithoutEntry::SameAsUid)
            .map_err(|e| RunError::new(format!("--user {user}: {e}")).with_hint(USER_HINT))?,
        (None, Some(user)) if rootfs.is_some() => users::ids_in(root, user, GidWithoutEntry::Zero)
            .map_err(|e| {
                RunError::new(format!("the image's user {user}: {e}")).with_hint(IMAGE_USER_HINT)
            })?,
        (None, _) => plan.caller_inside(),
    };
    for (id, is_uid) in [(uid, true), (gid, false)] {
        if !plan.is_mapped(id, is_uid) {
            let kind = if is_uid { "uid" } else { "gid" };
            return Err(
                RunError::new(format!("{kind} {id} is not mapped in the container")).with_hint(
                    "with a single-id map only your own id exists inside; use --map full",
                ),
            );
        }
    }
    Ok((uid, gid))
}

fn binds(cli: &Cli) -> Result<Vec<Bind>, RunError> {
    let mut binds = Vec::new();
    for (list, read_only) in [(&cli.bind, false), (&cli.ro_bind, true)] {
        for (source, target) in list {
            let source = source
                .canonicalize()
                .map_err(|e| RunError::sys(format!("bind source {}", source.display()), e))?;
            binds.push(Bind {
                source_is_dir: source.is_dir(),
                source,
                target: target.clone(),
                read_only,
            });
        }
    }
    Ok(binds)
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
pub fn image_command(
    config: &ImageConfig,
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

/// The network asked for, else the default: a private one with a root filesystem (with published
/// ports a pasta of the container's own, which publishes them), the host's in host mode.
fn network_mode(asked: Option<NetMode>, rootfs: bool, publish: bool) -> Result<NetMode, RunError> {
    match asked {
        Some(mode) if publish && mode != NetMode::Pasta => Err(RunError::new(format!(
            "--publish needs a network of the container's own, not --net {}",
            clap::ValueEnum::to_possible_value(&mode).map_or_else(String::new, |v| v.get_name().to_string())
        ))
        .with_hint("use --net pasta, or leave --net out: then the ports are published into a private network")),
        Some(mode) => Ok(mode),
        None if publish => Ok(NetMode::Pasta),
        None if rootfs => Ok(NetMode::Private),
        None => Ok(NetMode::Host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(entrypoint: &[&str], cmd: &[&str]) -> ImageConfig {
        ImageConfig {
            entrypoint: entrypoint.iter().map(|s| s.to_string()).collect(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            ..ImageConfig::default()
        }
    }

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn systemd_is_asked_for_as_podman_decides_it() {
        let init = os(&["/sbin/init"]);
        assert!(asks_for_systemd(SystemdMode::True, &init));
        assert!(asks_for_systemd(
            SystemdMode::True,
            &os(&["/usr/lib/systemd/systemd", "--user"])
        ));
        assert!(asks_for_systemd(SystemdMode::Always, &os(&["sh"])));
        assert!(!asks_for_systemd(SystemdMode::False, &init));
        assert!(!asks_for_systemd(
            SystemdMode::True,
            &os(&["sh", "/sbin/init"])
        ));
        assert!(!asks_for_systemd(SystemdMode::True, &[]));
    }

    #[test]
    fn the_image_command_is_its_entrypoint_and_the_given_command_or_its_cmd() {
        let image = config(&["/entry", "-x"], &["default"]);
        assert_eq!(
            image_command(&image, None, Vec::new()),
            os(&["/entry", "-x", "default"])
        );
        assert_eq!(
            image_command(&image, None, os(&["mine"])),
            os(&["/entry", "-x", "mine"])
        );
        assert_eq!(
            image_command(&image, Some("/other".into()), Vec::new()),
            os(&["/other", "default"])
        );
        assert_eq!(
            image_command(&image, Some("".into()), os(&["sh"])),
            os(&["sh"])
        );
        assert!(image_command(&ImageConfig::default(), None, Vec::new()).is_empty());
    }

    #[test]
    fn only_the_callers_own_uid_other_than_root_gets_an_account() {
        let helpers = crate::runner::mapping::Helpers {
            newuidmap: "/x/newuidmap".into(),
            newgidmap: "/x/newgidmap".into(),
        };
        let full = |caller_inside| MapPlan::Full {
            uid: Vec::new(),
            gid: Vec::new(),
            caller_inside,
            helpers: helpers.clone(),
        };
        // keep-id: the caller's uid, not --user 0 or another.
        assert!(runs_as_callers_uid(1000, &full((1000, 1000))));
        assert!(!runs_as_callers_uid(0, &full((1000, 1000))));
        assert!(!runs_as_callers_uid(1001, &full((1000, 1000))));
        // The full map: the caller is root inside.
        assert!(!runs_as_callers_uid(0, &full((0, 0))));
        assert!(!runs_as_callers_uid(1000, &full((0, 0))));
        // Single-id maps: only the one that keeps the uid.
        let current = MapPlan::Single {
            inside_uid: 1000,
            inside_gid: 1000,
        };
        let root = MapPlan::Single {
            inside_uid: 0,
            inside_gid: 0,
        };
        assert!(runs_as_callers_uid(1000, &current));
        assert!(!runs_as_callers_uid(0, &root));
    }

    #[test]
    fn keep_id_runs_the_command_as_the_caller_over_the_images_user() {
        use crate::runner::mapping::{Helpers, map_around};
        use unshare_run_helpers::subid::IdInterval;
        let ranges = [IdInterval::from_start_count(100000, 65536).unwrap()];
        let plan = |own_inside: u32| MapPlan::Full {
            uid: map_around(1000, own_inside, &ranges),
            gid: map_around(1000, own_inside, &ranges),
            caller_inside: (own_inside, own_inside),
            helpers: Helpers {
                newuidmap: "/x/newuidmap".into(),
                newgidmap: "/x/newgidmap".into(),
            },
        };
        let image = ImageConfig {
            user: Some("5:6".into()),
            ..ImageConfig::default()
        };
        let nonexistent = [PathBuf::from("/nonexistent")];
        let rootfs = Some(&nonexistent[..]);
        let cli = |args: &[&str]| {
            let mut argv = vec!["unshare-run"];
            argv.extend_from_slice(args);
            <Cli as clap::Parser>::try_parse_from(argv).unwrap()
        };
        // The full map: the image's User, else root (the caller).
        assert_eq!(
            user_ids(&cli(&[]), &image, rootfs, &plan(0)).unwrap(),
            (5, 6)
        );
        let plain = ImageConfig::default();
        assert_eq!(
            user_ids(&cli(&[]), &plain, rootfs, &plan(0)).unwrap(),
            (0, 0)
        );
        // keep-id: the caller, whatever the image says; --user still decides.
        assert_eq!(
            user_ids(&cli(&[]), &image, rootfs, &plan(1000)).unwrap(),
            (1000, 1000)
        );
        assert_eq!(
            user_ids(&cli(&["--user", "0"]), &image, rootfs, &plan(1000)).unwrap(),
            (0, 0)
        );
    }

    #[test]
    fn image_env_entries_without_a_value_are_left_out() {
        let env = ["A=1".to_string(), "B".into(), "C=x=y".into()];
        let got: Vec<_> = image_env(&env).collect();
        assert_eq!(got, [("A".into(), "1".into()), ("C".into(), "x=y".into())]);
    }

    #[test]
    fn the_default_network_is_private_with_a_root_filesystem_and_pasta_with_ports() {
        assert_eq!(network_mode(None, true, false).unwrap(), NetMode::Private);
        assert_eq!(network_mode(None, false, false).unwrap(), NetMode::Host);
        assert_eq!(network_mode(None, true, true).unwrap(), NetMode::Pasta);
        assert_eq!(network_mode(None, false, true).unwrap(), NetMode::Pasta);
        assert_eq!(
            network_mode(Some(NetMode::Host), true, false).unwrap(),
            NetMode::Host
        );
        let error = network_mode(Some(NetMode::Private), true, true).unwrap_err();
        assert_eq!(
            error.message,
            "--publish needs a network of the container's own, not --net private"
        );
    }
}
