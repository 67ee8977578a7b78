//! The container run's command line. The same definition makes the man page and completions
//! (`commands`).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Parser;

use super::confinement::capabilities::{self, Named};
use super::mapping::MapMode;

/// `--map`'s values: the modes of `MapMode`, with keep-id's podman options (`keep-id:uid=,gid=`)
/// that a value enum cannot take. The listed values document them in --help, the man page and the
/// completions.
#[derive(Clone, Copy, Debug)]
pub struct MapModeParser;

impl clap::builder::TypedValueParser for MapModeParser {
    type Value = MapMode;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<MapMode, clap::Error> {
        // A function parser's error: "invalid value 'X' for '--map <MODE>': why".
        let parse: fn(&str) -> Result<MapMode, String> = str::parse;
        parse.parse_ref(cmd, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        use clap::builder::PossibleValue;
        Some(Box::new(
            [
                PossibleValue::new("auto").help(
                    "The full map when you have ranges and working helpers, else a single-id map \
                     and a warning saying why",
                ),
                PossibleValue::new("full").help(
                    "You are uid 0 inside and all your subordinate ids are 1..: a system of its \
                     own, where apt, su and chown to any id work (exit 125 when impossible)",
                ),
                PossibleValue::new("keep-id").help(
                    "Your own uid and gid inside, all your subordinate ids around them (podman's \
                     keep-id; keep-id:uid=UID,gid=GID picks the numbers): for working on your files, \
                     which stay yours inside and out. The command runs as you unless --user \
                     (--user 0 is root inside, for apt). Never falls back (exit 125)",
                ),
                PossibleValue::new("root")
                    .help("A single-id map without the helpers: you are uid 0 inside, alone"),
                PossibleValue::new("current")
                    .help("A single-id map without the helpers that keeps your uid inside"),
            ]
            .into_iter(),
        ))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum NetMode {
    /// The default with --rootfs: a private network connected to the outside by pasta (package
    /// passt), with DNS; nothing of the host's own is reachable (its loopback services, its abstract
    /// sockets, the host through pasta's gateway). Your containers of the same map share this one
    /// network through the holder: they reach each other's loopback services and abstract sockets
    /// and share its ports. Without a holder (--holder-idle 0, single-id maps) and under --map
    /// keep-id each container gets a pasta of its own.
    Private,
    /// Share the host's network, its loopback services and abstract sockets (the default without
    /// --rootfs).
    Host,
    /// A new network namespace with only the loopback interface, up.
    None,
    /// A network namespace of the container's own, connected to the outside by a pasta of its own,
    /// with DNS and published ports (--publish; the default when ports are published).
    Pasta,
}

/// --net: the mode, and for pasta the options the user adds to its command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Net {
    pub mode: NetMode,
    pub pasta_options: Vec<String>,
}

/// Parses --net as MODE or pasta:OPTION,...; lists the modes for help and completions.
#[derive(Clone, Copy, Debug)]
struct NetParser;

impl clap::builder::TypedValueParser for NetParser {
    type Value = Net;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Net, clap::Error> {
        let text = value.to_str().unwrap_or_default();
        let (name, options) = match text.split_once(':') {
            Some((name, options)) => (name, Some(options)),
            None => (text, None),
        };
        let mode = clap::builder::EnumValueParser::<NetMode>::new().parse_ref(
            cmd,
            arg,
            std::ffi::OsStr::new(name),
        )?;
        let pasta_options: Vec<String> = options
            .map(|o| {
                o.split(',')
                    .filter(|o| !o.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        if !pasta_options.is_empty() && mode != NetMode::Pasta {
            let mut error = clap::Error::new(clap::error::ErrorKind::InvalidValue).with_cmd(cmd);
            error.insert(
                clap::error::ContextKind::InvalidArg,
                clap::error::ContextValue::String("--net <MODE>".into()),
            );
            error.insert(
                clap::error::ContextKind::InvalidValue,
                clap::error::ContextValue::String(text.into()),
            );
            error.insert(
                clap::error::ContextKind::Suggested,
                clap::error::ContextValue::StyledStrs(vec![
                    "only pasta takes options: --net pasta:OPTION,...".into(),
                ]),
            );
            return Err(error);
        }
        Ok(Net {
            mode,
            pasta_options,
        })
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            <NetMode as clap::ValueEnum>::value_variants()
                .iter()
                .filter_map(clap::ValueEnum::to_possible_value),
        ))
    }
}

/// A port published from the host into the container (--publish: a pasta of the container's own).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    /// Host address to listen on (all when None).
    pub host_ip: Option<std::net::IpAddr>,
    pub host_port: u16,
    pub container_port: u16,
    pub udp: bool,
}

#[derive(Debug, Parser)]
#[command(
    name = "unshare-run",
    version,
    about = "Run a command in a rootless container with your full subordinate id map",
    long_about = "Run a command in new user, mount, pid, uts and ipc namespaces. Inside, id 0 is you and ids \
1.. are all of your ranges from /etc/subuid and /etc/subgid, so multi-user software works without root: \
apt-get install, su, chown to any mapped id. With --map keep-id your own uid and gid keep their numbers \
inside instead, with all of your ranges around them: files of yours bound in stay yours, and the command \
runs as you (--user 0 is root inside, for apt); a root filesystem without an entry for you shows one.\n\n\
With --rootfs the command runs in that root filesystem (with fresh /proc, /dev, /sys and /tmp): a \
directory, an image file that is imported once into your image store (~/.local/share/unshare-run; \
tarballs compressed or not, OCI and Docker image archives), or an image of a registry, pulled once \
(debian:bookworm, quay.io/NAME:TAG; layers shared between images, checked against their digests, \
resumed after an interruption). --ephemeral keeps the root filesystem \
unchanged; `unshare-run images` lists and removes stored images. Without --rootfs the command sees the host's files with ids mapped (\"host mode\"), which is how you remove or \
chown trees that belong to your subordinate ids.\n\n\
The same executable is also newuidmap and newgidmap when called by those names.",
    after_help = "Examples:\n  \
unshare-run -- cat /proc/self/uid_map          your full map, in host mode\n  \
unshare-run -- rm -rf ~/rootfs                 remove files owned by subordinate ids\n  \
unshare-run -- tar -xpf rootfs.tar --numeric-owner -C ~/rootfs\n  \
unshare-run --rootfs debian:bookworm -- sh -c 'apt-get update && apt-get install -y hello'\n  \
unshare-run --rootfs ~/rootfs -- apt-get install -y hello\n  \
unshare-run --rootfs ~/rootfs --user 1000 --workdir /home/me\n  \
unshare-run --map keep-id --rootfs ~/rootfs --bind ~/src:/src -- make   you, on your files\n  \
unshare-run images import bookworm.tar.zst --name bookworm     import once, by name later\n  \
unshare-run --rootfs bookworm --ephemeral -- apt-get install -y hello\n  \
unshare-run -d --name box --rootfs debian:bookworm -- sleep infinity   in the background\n  \
unshare-run exec -it box bash                  a shell beside it (stop, start, logs, rm -f box)\n  \
unshare-run images                             list stored images (images rm NAME removes one)\n  \
unshare-run login quay.io                      credentials for private images (logout forgets them)\n  \
unshare-run doctor                             what to fix when containers will not start\n\n\
Exit status: the command's status; 128+N when it was killed by signal N; 125 when unshare-run itself \
failed; 126 when the command cannot be executed; 127 when it was not found.\n\n\
Debugging: UNSHARE_RUN_LOG=debug unshare-run ... prints on stderr what unshare-run does (the id map, the \
holder, every mount, the switch to the root filesystem, the command and how it ended); lines from \
the container's init show pid 1.",
    after_long_help = None::<&str>
)]
pub struct Cli {
    /// Run inside this root filesystem instead of the host's: a directory, an image file (tar,
    /// tar.gz, tar.xz, tar.zst, OCI or Docker archive; imported once), an OCI layout directory, a
    /// stored image's name or digest, or an image of a registry (pulled once: debian:bookworm,
    /// quay.io/fedora/fedora:41, docker://HOST:PORT/NAME@sha256:DIGEST), tried in this order.
    #[arg(long, value_name = "DIR|FILE|NAME|REF")]
    pub rootfs: Option<PathBuf>,

    #[command(flatten)]
    pub pull: PullArgs,

    /// Name the container, as podman does: it is listed by `unshare-run ps -a` after it ended,
    /// until `unshare-run rm NAME` (names are unique per user). To name an image, use `unshare-run
    /// images import FILE --name NAME` or `images pull REF --name NAME`.
    #[arg(long, value_name = "NAME", requires = "rootfs")]
    pub name: Option<String>,

    /// Remove the named container's record when it ends (a run without --name leaves none).
    #[arg(long)]
    pub rm: bool,

    /// Run the container in the background, as podman run -d: unshare-run prints its name once its
    /// command runs and returns; its output goes to its log (`unshare-run logs NAME`), its stdin is
    /// /dev/null. Without --name it gets a generated name. `ps`, `exec`, `stop`, `start` and `rm`
    /// take the name.
    #[arg(short = 'd', long, requires = "rootfs")]
    pub detach: bool,

    /// Whether the command is systemd (podman's --systemd): true (the default) when it is
    /// /sbin/init or a systemd binary, always, or false. systemd as a container's init needs a
    /// cgroup v2 subtree delegated to you, which unshare-run does not set up: such a run exits 125
    /// and says so; false runs the command as any other.
    #[arg(long, value_name = "MODE", default_value = "true")]
    pub systemd: SystemdMode,

    /// The signal `unshare-run stop` sends first (default: the image's StopSignal, else SIGTERM).
    #[arg(long, value_name = "SIGNAL", value_parser = parse_signal)]
    pub stop_signal: Option<String>,

    /// Leave the root filesystem unchanged: writes go to a temporary layer that is gone after the
    /// run (overlayfs over a tmpfs).
    #[arg(long, requires = "rootfs", conflicts_with = "overlay")]
    pub ephemeral: bool,

    /// Mount the root filesystem read-only (as podman --read-only); /tmp, /dev/shm and the --tmpfs
    /// and --bind mounts stay writable.
    #[arg(long, requires = "rootfs", conflicts_with_all = ["ephemeral", "overlay"])]
    pub read_only: bool,

    /// Keep the container's writes in DIR instead of the root filesystem; later runs with the same
    /// DIR see them (overlayfs).
    #[arg(long, value_name = "DIR", requires = "rootfs")]
    pub overlay: Option<PathBuf>,

    /// Replace the image's entrypoint with this program ("" runs COMMAND, or the image's command, alone).
    #[arg(long, value_name = "PROGRAM", requires = "rootfs")]
    pub entrypoint: Option<OsString>,

    /// Which ids to map inside the container (--userns is podman's name for it): full for a system
    /// of its own (packages, several users); keep-id to work on your own files (a directory bound in
    /// stays yours, and what the command makes there is yours on the host); root or current where
    /// the helpers or your ranges are missing.
    #[arg(
        long,
        visible_alias = "userns",
        value_parser = MapModeParser,
        default_value_t = MapMode::Auto,
        value_name = "MODE"
    )]
    pub map: MapMode,

    /// Which network the container gets. Default: private with --rootfs (pasta with --publish), the
    /// host's without. pasta:OPTION,... adds options to its pasta's command line, as podman's
    /// --network pasta:...; pasta:--map-gw lets the container reach the host's own services through
    /// the gateway address, which is off otherwise.
    #[arg(long, value_name = "MODE", value_parser = NetParser)]
    pub net: Option<Net>,

    /// Run the command as this user inside: UID[:GID], or names from the root filesystem's
    /// /etc/passwd and /etc/group (the host's in host mode). Without GID: the user's primary group
    /// from /etc/passwd, else the same number as UID. Default: the image's User, else you as the map
    /// has you (0:0 with the full map); under --map keep-id always your own uid and gid.
    #[arg(short = 'u', long, value_name = "USER[:GROUP]", value_parser = parse_user)]
    pub user: Option<String>,

    /// Give the container a terminal of its own (a pseudo-terminal of its devpts, relayed to yours,
    /// which is in raw mode meanwhile). Default: with --rootfs, when stdin and stdout are terminals;
    /// --tty=false: none. Without one, a --rootfs command runs in a session of its own with no
    /// controlling terminal: it cannot push input into your shell (TIOCSTI). Your terminal's
    /// settings come back when the container ends, and before unshare-run stops or ends by a
    /// signal; only after SIGKILL does it stay raw (`reset` repairs it).
    #[arg(
        short = 't',
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub tty: Option<bool>,

    /// Accepted for podman's `-it`: stdin always reaches the command.
    #[arg(short = 'i', long)]
    pub interactive: bool,

    /// Add a capability to the --rootfs container's default set (podman's: CHOWN, DAC_OVERRIDE,
    /// FOWNER, FSETID, KILL, NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT): a
    /// name with or without CAP_, or ALL (repeatable, or comma-separated). Capabilities count inside
    /// the user namespace only: SYS_ADMIN mounts there, never on the host.
    #[arg(long, value_name = "CAP", value_delimiter = ',', value_parser = capabilities::parse, requires = "rootfs")]
    pub cap_add: Vec<Named>,

    /// Take a capability from the default set, or ALL of them (repeatable, or comma-separated).
    #[arg(long, value_name = "CAP", value_delimiter = ',', value_parser = capabilities::parse, requires = "rootfs")]
    pub cap_drop: Vec<Named>,

    /// Confine the --rootfs container no more than host mode is: every capability of the user
    /// namespace, no system-call filter, no masked kernel files (for nested containers and mounts
    /// inside). Your descriptors stay out all the same.
    #[arg(long, conflicts_with_all = ["cap_add", "cap_drop"])]
    pub privileged: bool,

    /// podman's security options (repeatable): no-new-privileges (no setuid program or file
    /// capability gains anything); seccomp=unconfined (no system-call filter) or seccomp=FILE (a
    /// profile in Docker's and podman's seccomp.json format instead of the default filter, which
    /// refuses new namespaces, mounts, the keyrings and io_uring unless --cap-add SYS_ADMIN);
    /// unmask=ALL|PATH[:PATH...] (show masked kernel files); keyring=host (your session keyring
    /// inside instead of one of the container's own); label=disable (accepted).
    #[arg(long, value_name = "OPT")]
    pub security_opt: Vec<String>,

    /// Pass descriptors 3 to 3+N-1 on to the command (with --rootfs, it gets only 0, 1 and 2
    /// otherwise; systemd's socket activation, LISTEN_FDS, is passed on without it). Host mode
    /// passes every descriptor.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,

    /// Hostname inside the container.
    #[arg(long, value_name = "NAME", value_parser = parse_hostname)]
    pub hostname: Option<String>,

    /// Working directory of the command inside the container; with --rootfs it is made if missing.
    #[arg(short = 'w', long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,

    /// Set an environment variable (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(OsString, OsString)>,

    /// Bind-mount host path SRC at DST inside (repeatable).
    #[arg(long, value_name = "SRC:DST", value_parser = parse_bind)]
    pub bind: Vec<(PathBuf, PathBuf)>,

    /// Bind-mount host path SRC read-only at DST inside (repeatable).
    #[arg(long = "ro-bind", value_name = "SRC:DST", value_parser = parse_bind)]
    pub ro_bind: Vec<(PathBuf, PathBuf)>,

    /// Publish a container port on the host: [IP:]HOSTPORT:CONTAINERPORT[/tcp|/udp] (repeatable;
    /// through a pasta of the container's own: without --net, or with --net pasta).
    #[arg(short = 'p', long, value_name = "[IP:]HOST:CONTAINER[/PROTO]", value_parser = parse_publish)]
    pub publish: Vec<Publish>,

    /// Mount an empty tmpfs at DST inside (repeatable).
    #[arg(long, value_name = "DST", value_parser = parse_container_path)]
    pub tmpfs: Vec<PathBuf>,

    /// Keep the full-map user namespace in a holder process for this many seconds after the last
    /// start, so that the next containers start without running newuidmap/newgidmap (0: no holder).
    /// The holder also keeps the private network and the overlays of pulled images mounted.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "UNSHARE_RUN_HOLDER_IDLE",
        default_value_t = 300
    )]
    pub holder_idle: u64,

    /// The command and its arguments (default: an interactive shell).
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// podman's --systemd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SystemdMode {
    /// When the command is /sbin/init or systemd.
    #[default]
    True,
    False,
    Always,
}

/// When a stored image is used instead of asking the registry (podman's --pull).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PullPolicy {
    /// Pull only what is not stored yet.
    #[default]
    Missing,
    /// Ask the registry every time; a changed image is pulled.
    Always,
    /// Never pull: the image must be stored.
    Never,
    /// Pull when the registry's manifest differs from the stored image's.
    Newer,
}

/// How images of registries are pulled: the run's options and `images pull`'s (podman's names).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PullArgs {
    /// When --rootfs REF asks the registry: missing (only what is not stored), always, never, newer
    /// (when the registry's manifest changed).
    #[arg(long, value_name = "POLICY", default_value = "missing")]
    pub pull: PullPolicy,

    /// The platform to pull from a multi-platform image, OS/ARCH[/VARIANT] (default: this
    /// machine's, e.g. linux/amd64).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,

    /// Registry credentials (podman's auth.json format) to use instead of the usual files
    /// (REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json,
    /// ~/.docker/config.json).
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,

    /// --tls-verify=false accepts any certificate of the registry, and plain HTTP: only for a
    /// registry you trust on a network you trust (better: its CA in
    /// ~/.config/containers/certs.d/HOST:PORT/ca.crt).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub tls_verify: Option<bool>,

    /// Say nothing while pulling (errors are still said).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

fn parse_publish(s: &str) -> Result<Publish, String> {
    let bad = || format!("{s:?} is not [IP:]HOSTPORT:CONTAINERPORT[/tcp|/udp]");
    let (ports, udp) = match s.rsplit_once('/') {
        Some((p, "tcp")) => (p, false),
        Some((p, "udp")) => (p, true),
        Some(_) => return Err(bad()),
        None => (s, false),
    };
    let (rest, container) = ports.rsplit_once(':').ok_or_else(bad)?;
    let (host_ip, host) = match rest.rsplit_once(':') {
        Some((ip, host)) => {
            let ip = ip.trim_start_matches('[').trim_end_matches(']');
            (Some(ip.parse().map_err(|_| bad())?), host)
        }
        None => (None, rest),
    };
    let port = |p: &str| p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(bad);
    Ok(Publish {
        host_ip,
        host_port: port(host)?,
        container_port: port(container)?,
        udp,
    })
}

/// USER[:GROUP], each a number or a name (looked up once the root filesystem is known).
pub fn parse_user(s: &str) -> Result<String, String> {
    let (user, group) = match s.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (s, None),
    };
    // Names as shadow's useradd accepts them by default, plus upper case.
    let name = |part: &str| {
        part.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$'))
    };
    let valid = |part: &str| part.parse::<u32>().is_ok() || name(part);
    if valid(user) && group.is_none_or(valid) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not USER[:GROUP] (each a number below 2^32 or a name)"
        ))
    }
}

/// The kernel takes 1 to 64 bytes (HOST_NAME_MAX) and says only EINVAL otherwise.
fn parse_hostname(s: &str) -> Result<String, String> {
    if (1..=64).contains(&s.len()) {
        Ok(s.to_string())
    } else {
        Err(format!("a hostname has 1 to 64 bytes, not {}", s.len()))
    }
}

/// A signal by name (TERM, SIGTERM, any case) or number, as podman's --stop-signal and kill take it.
pub fn parse_signal(s: &str) -> Result<String, String> {
    signal_by_name(s).map(|signal| signal.as_str().to_string())
}

pub fn signal_by_name(s: &str) -> Result<nix::sys::signal::Signal, String> {
    use nix::sys::signal::Signal;
    let bad = || format!("{s:?} is not a signal (a name such as TERM or SIGKILL, or a number)");
    if let Ok(number) = s.parse::<i32>() {
        return Signal::try_from(number).map_err(|_| bad());
    }
    let upper = s.to_ascii_uppercase();
    let name = match upper.starts_with("SIG") {
        true => upper,
        false => format!("SIG{upper}"),
    };
    name.parse::<Signal>().map_err(|_| bad())
}

pub fn parse_env(s: &str) -> Result<(OsString, OsString), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.into(), v.into())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

fn parse_bind(s: &str) -> Result<(PathBuf, PathBuf), String> {
    match s.split_once(':') {
        Some((src, dst)) if !src.is_empty() => Ok((src.into(), parse_container_path(dst)?)),
        _ => Err(format!("{s:?} is not SRC:DST")),
    }
}

/// A mount point inside the container: absolute, without ".." (which would leave the root filesystem),
/// and not the root itself: in host mode such a mount is never seen (path lookups start at the
/// process's root, under it), and with --rootfs it would replace the root filesystem and hide /proc,
/// /dev and every other mount made for the container.
fn parse_container_path(s: &str) -> Result<PathBuf, String> {
    use std::path::Component;
    let path = PathBuf::from(s);
    if !path.is_absolute() {
        return Err(format!(
            "{s:?} must be an absolute path inside the container"
        ));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(format!("{s:?} must not contain \"..\""));
    }
    if path
        .components()
        .all(|c| matches!(c, Component::RootDir | Component::CurDir))
    {
        return Err(format!(
            "{s:?} is the container's root: choose it with --rootfs (with --ephemeral, a writable \
             layer over it is thrown away at the end)"
        ));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options_and_command() {
        let cli = Cli::try_parse_from([
            "unshare-run",
            "--rootfs",
            "/r",
            "--map",
            "full",
            "--net",
            "none",
            "-u",
            "5:6",
            "-e",
            "A=b=c",
            "--bind",
            "/a:/b",
            "--ro-bind",
            "/c:/d",
            "--tmpfs",
            "/t",
            "-w",
            "/w",
            "--",
            "ls",
            "-l",
        ])
        .unwrap();
        assert_eq!(cli.rootfs, Some("/r".into()));
        assert_eq!(cli.map, MapMode::Full);
        assert_eq!(cli.net.map(|n| n.mode), Some(NetMode::None));
        assert_eq!(cli.user.as_deref(), Some("5:6"));
        assert_eq!(cli.env, [("A".into(), "b=c".into())]);
        assert_eq!(cli.bind, [("/a".into(), "/b".into())]);
        assert_eq!(cli.command, ["ls", "-l"]);
        let cli = Cli::try_parse_from(["unshare-run", "ls", "-l"]).unwrap();
        assert_eq!(cli.command, ["ls", "-l"]);
        let cli = Cli::try_parse_from(["unshare-run", "--", "-x", "--net", "none"]).unwrap();
        assert_eq!(cli.command, ["-x", "--net", "none"]);
        let cli = Cli::try_parse_from(["unshare-run", "sh", "-c", "--hostname"]).unwrap();
        assert_eq!(cli.command, ["sh", "-c", "--hostname"]);
        // A misspelt option is an error, not a command named after it.
        assert!(Cli::try_parse_from(["unshare-run", "--hostnme", "x", "--", "true"]).is_err());
    }

    #[test]
    fn map_takes_keep_id_and_podmans_spelling() {
        use super::super::mapping::KeepId;
        let map = |args: &[&str]| {
            let mut argv = vec!["unshare-run"];
            argv.extend_from_slice(args);
            Cli::try_parse_from(argv).map(|cli| cli.map)
        };
        let keep_id = MapMode::KeepId(KeepId::default());
        assert_eq!(map(&[]).unwrap(), MapMode::Auto);
        assert_eq!(map(&["--map", "keep-id"]).unwrap(), keep_id);
        assert_eq!(map(&["--userns=keep-id"]).unwrap(), keep_id);
        assert_eq!(map(&["--userns", "full"]).unwrap(), MapMode::Full);
        assert_eq!(
            map(&["--userns=keep-id:uid=200,gid=210"]).unwrap(),
            MapMode::KeepId(KeepId {
                uid: Some(200),
                gid: Some(210)
            })
        );
        let err = map(&["--map", "keep-id:size=5"]).unwrap_err().to_string();
        assert!(
            err.contains("invalid value 'keep-id:size=5' for '--map <MODE>'")
                && err.contains("keep-id takes uid=UID and gid=GID"),
            "{err}"
        );
        // The help lists every mode, keep-id with its options.
        let help = <Cli as clap::CommandFactory>::command()
            .render_long_help()
            .to_string();
        for mode in [
            "auto:",
            "full:",
            "keep-id:",
            "root:",
            "current:",
            "keep-id:uid=UID,gid=GID",
        ] {
            assert!(help.contains(mode), "{mode} missing from\n{help}");
        }
        assert!(help.contains("[alias: --userns]"), "{help}");
    }

    #[test]
    fn tty_is_podmans_option() {
        let tty = |args: &[&str]| {
            let mut argv = vec!["unshare-run"];
            argv.extend_from_slice(args);
            let cli = Cli::try_parse_from(argv).unwrap();
            (cli.tty, cli.interactive, cli.command)
        };
        assert_eq!(tty(&["--", "sh"]), (None, false, vec!["sh".into()]));
        assert_eq!(tty(&["-t", "sh"]), (Some(true), false, vec!["sh".into()]));
        assert_eq!(tty(&["-it", "sh"]), (Some(true), true, vec!["sh".into()]));
        assert_eq!(tty(&["-ti", "sh"]), (Some(true), true, vec!["sh".into()]));
        assert_eq!(tty(&["--tty", "sh"]).0, Some(true));
        assert_eq!(tty(&["--tty=false", "sh"]).0, Some(false));
        assert_eq!(tty(&["--tty=true", "--", "sh"]).0, Some(true));
        assert!(Cli::try_parse_from(["unshare-run", "--tty=maybe"]).is_err());
    }

    #[test]
    fn user_specs() {
        for good in [
            "0",
            "1000:1000",
            "app",
            "app:staff",
            "nobody:65534",
            "4294967295",
        ] {
            assert_eq!(parse_user(good).as_deref(), Ok(good));
        }
        for bad in [
            "",
            ":",
            "app:",
            ":staff",
            "4294967296",
            "1x",
            "a:b:c",
            "a/b",
            "-1",
        ] {
            assert!(parse_user(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn publish_specs() {
        let p = |s: &str| parse_publish(s);
        assert_eq!(
            p("127.0.0.1:18080:8080").unwrap(),
            Publish {
                host_ip: Some("127.0.0.1".parse().unwrap()),
                host_port: 18080,
                container_port: 8080,
                udp: false
            }
        );
        assert_eq!(
            p("53:5353/udp").unwrap(),
            Publish {
                host_ip: None,
                host_port: 53,
                container_port: 5353,
                udp: true
            }
        );
        assert_eq!(
            p("[::1]:80:8080/tcp").unwrap().host_ip,
            Some("::1".parse().unwrap())
        );
        for bad in ["8080", "a:1", "1:0", "1:2/sctp", "x.y:1:2", "70000:1"] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_values_are_errors() {
        for args in [
            &["unshare-run", "--map", "half"][..],
            &["unshare-run", "--net", "slirp"],
            &["unshare-run", "-u", "1x"],
            &["unshare-run", "--hostname", ""],
            &["unshare-run", "--hostname", &"h".repeat(65)],
            &["unshare-run", "-e", "=v"],
            &["unshare-run", "--bind", "/a:rel"],
            &["unshare-run", "--bind", "/a:/x/../../etc"],
            &["unshare-run", "--tmpfs", "/../home"],
            &["unshare-run", "--tmpfs", "rel"],
            &["unshare-run", "--tmpfs", "/"],
            &["unshare-run", "--tmpfs", "//."],
            &["unshare-run", "--bind", "/a:/"],
            &["unshare-run", "--ro-bind", "/a:/./"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
        assert!(parse_hostname(&"h".repeat(64)).is_ok());
    }
}
