//! The container's network beyond its namespace: pasta, which connects a network namespace to the
//! host's network (a container's own, or the private network a holder keeps for its containers), and
//! the /etc/resolv.conf and /etc/hosts generated for a container whose network or hostname is not the
//! host's (in the directory of generated files, where PID 1 also writes the command's passwd and
//! group lines when the root filesystem lacks them).

use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::unistd::Pid;

use super::cli::{NetMode, Publish};
use super::error::RunError;

/// The address inside at which pasta answers DNS queries (link-local, never a real server).
pub const PASTA_DNS: &str = "169.254.1.1";

/// How long pasta may take to configure the namespace.
const PASTA_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Files written for the container, in a private directory of the caller's: before it starts, or by
/// PID 1 (the account files, which depend on what the root filesystem holds).
#[derive(Debug, Clone)]
pub struct Generated {
    pub dir: PathBuf,
    /// Only with pasta (its DNS forwarder).
    pub resolv_conf: Option<PathBuf>,
    /// With a network or a hostname of the container's own.
    pub hosts: Option<PathBuf>,
}

/// The generated files' directory: this, the pid of the unshare-run that made it, a dot, nanoseconds.
const GENERATED_PREFIX: &str = "unshare-run.";

/// Generated directories of starts that were killed (SIGKILL) before PID 1 removed theirs: their
/// unshare-run is gone. Only ours: the caller's own directories in `base`.
fn remove_stale_files(base: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    let uid = nix::unistd::getuid().as_raw();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(GENERATED_PREFIX))
            .and_then(|rest| rest.split_once('.'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let ours = entry
            .metadata()
            .is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == uid && m.is_dir());
        if ours && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The container's /etc/resolv.conf (pasta's DNS forwarder) and /etc/hosts (the host's, plus the
/// container's hostname on 127.0.1.1 so that it resolves), when they differ from the host's; and the
/// directory alone when only PID 1 may write account files there (`for_account`).
pub fn generate_files(
    net: NetMode,
    hostname: Option<&str>,
    for_account: bool,
) -> Result<Option<Generated>, RunError> {
    let network_files = net != NetMode::Host || hostname.is_some();
    if !network_files && !for_account {
        return Ok(None);
    }
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    remove_stale_files(&base);
    let dir = base.join(format!("{GENERATED_PREFIX}{}.{nanos}", std::process::id()));
    let fail = |e: std::io::Error| RunError::sys(format!("cannot create {}", dir.display()), e);
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(&dir)
        .map_err(fail)?;
    if !network_files {
        return Ok(Some(Generated {
            dir,
            resolv_conf: None,
            hosts: None,
        }));
    }
    let resolv_conf = if matches!(net, NetMode::Pasta | NetMode::Private) {
        let path = dir.join("resolv.conf");
        std::fs::write(&path, format!("nameserver {PASTA_DNS}\n")).map_err(fail)?;
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
    Ok(Some(Generated {
        dir,
        resolv_conf,
        hosts: Some(hosts_path),
    }))
}

/// In --net pasta:OPTIONS, as in podman's: pasta may map its gateway address to the host.
const MAP_GATEWAY: &str = "--map-gw";

/// The network namespace pasta connects. pasta gets the namespaces it joins as descriptors that it
/// inherits: it may not open another process's /proc entries itself (PID 1 may have switched to
/// another uid inside, as under keep-id, and a pasta started by root switches to nobody).
#[derive(Clone, Copy, Debug)]
pub enum PastaTarget {
    /// A container's own: PID 1's, whose user namespace pasta joins to configure it.
    Container(Pid),
    /// The holder's private network, kept by this process (its keeper): pasta runs in the holder's
    /// user namespace already, so it joins only the network namespace.
    NetworkOf(Pid),
}

impl PastaTarget {
    fn pid(self) -> Pid {
        match self {
            PastaTarget::Container(pid) | PastaTarget::NetworkOf(pid) => pid,
        }
    }
}

/// pasta's arguments for the network namespace it inherits as descriptor `netns_fd` (and its user
/// namespace as `userns_fd`, to join first): outbound traffic and DNS (at PASTA_DNS), only the
/// published ports inbound, and no mapping to the host's own addresses.
fn pasta_arguments(
    userns_fd: Option<i32>,
    netns_fd: i32,
    publish: &[Publish],
    options: &[String],
    caller_is_root: bool,
) -> Vec<String> {
    // podman's pseudo-option: the gateway address leads to the host's own services.
    let map_gw = options.iter().any(|o| o == MAP_GATEWAY);
    let mut args: Vec<String> = [
        "--foreground",
        "--quiet",
        "--config-net",
        if map_gw { "" } else { "--no-map-gw" },
        "--dns-forward",
        PASTA_DNS,
        "-T",
        "none",
        "-U",
        "none",
    ]
    .into_iter()
    .filter(|a| !a.is_empty())
    .map(String::from)
    .collect();
    for (flag, udp) in [("-t", false), ("-u", true)] {
        let specs: Vec<String> = publish
            .iter()
            .filter(|p| p.udp == udp)
            .map(|p| {
                let addr = p.host_ip.map(|ip| format!("{ip}/")).unwrap_or_default();
                format!("{addr}{}:{}", p.host_port, p.container_port)
            })
            .collect();
        if specs.is_empty() {
            args.extend([flag.to_string(), "none".into()]);
        }
        for spec in specs {
            args.extend([flag.to_string(), spec]);
        }
    }
    args.extend(options.iter().filter(|o| *o != MAP_GATEWAY).cloned());
    // pasta started by root switches to nobody, who may not enter namespaces that root owns: it
    // stays the caller (a root caller's pasta still drops every capability it does not need).
    if let Some(userns_fd) = userns_fd {
        if caller_is_root {
            args.extend(["--runas".into(), "0:0".into()]);
        }
        args.extend(["--userns".into(), format!("/proc/self/fd/{userns_fd}")]);
    }
    args.extend([
        "--netns".into(),
        format!("/proc/self/fd/{netns_fd}"),
        // Not a name in /run/netns that could be deleted: it ends when we stop it.
        "--no-netns-quit".into(),
    ]);
    args
}

/// Connects the network namespace of `target` to the host's network with pasta; nothing of the host's
/// own ports or loopback is reachable from inside. pasta runs in the foreground as our child and dies
/// with us (even on SIGKILL); the caller stops the returned child when the network is no longer used.
pub fn start_pasta(
    target: PastaTarget,
    publish: &[Publish],
    options: &[String],
) -> Result<Child, RunError> {
    let open = |kind: &str| {
        std::fs::File::open(format!("/proc/{}/ns/{kind}", target.pid().as_raw()))
            .map_err(|e| RunError::sys("cannot open the namespaces pasta connects", e))
    };
    let userns = match target {
        PastaTarget::Container(_) => Some(open("user")?),
        PastaTarget::NetworkOf(_) => None,
    };
    let netns = open("net")?;
    let mut cmd = Command::new("pasta");
    cmd.args(pasta_arguments(
        userns.as_ref().map(|f| f.as_raw_fd()),
        netns.as_raw_fd(),
        publish,
        options,
        nix::unistd::geteuid().is_root(),
    ));
    // Where pasta's complaints go, to quote them if it fails (without the file: not quoted).
    let log = anonymous_file().ok();
    let stderr = match log.as_ref().and_then(|l| l.try_clone().ok()) {
        Some(file) => Stdio::from(file),
        None => Stdio::null(),
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    let inherited: Vec<_> = userns.iter().chain([&netns]).map(|f| f.as_fd()).collect();
    let mut child = crate::sys::spawn_dying_with_parent(&mut cmd, &inherited).map_err(|e| {
        // exec reports EACCES, not ENOENT, when a directory of PATH cannot be searched.
        let missing = super::mapping::in_path("pasta", std::env::var_os("PATH")).is_none();
        let hint = if missing {
            "install pasta: apt-get install passt (or dnf install passt)"
        } else {
            "check that pasta can be run"
        };
        match missing {
            true => RunError::new(
                "pasta was not found in PATH: a --rootfs container's private network needs it",
            )
            .with_hint(format!(
                "{hint}, or run with --net host to keep the host's network"
            )),
            false => RunError::sys("cannot run pasta", e).with_hint(hint),
        }
    })?;
    // Ready when the namespace has its default route, the last thing --config-net sets.
    let route = format!("/proc/{}/net/route", target.pid().as_raw());
    let deadline = Instant::now() + PASTA_READY_TIMEOUT;
    loop {
        let configured = std::fs::read_to_string(&route).is_ok_and(|r| {
            r.lines()
                .skip(1)
                .any(|l| l.split_whitespace().nth(1) == Some("00000000"))
        });
        if configured {
            return Ok(child);
        }
        let exited = child.try_wait().ok().flatten().is_some();
        if exited || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(pasta_failed(log.as_ref()));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The private network that a holder keeps for its containers (`--net private`): a network namespace
/// in the holder's user namespace, connected to the outside by one pasta, and joined by the holder
/// itself once pasta has configured it, so that a container finds it as the holder's /proc/PID/ns/net.
/// pasta dies with the holder (even by SIGKILL); the holder cannot go back to the host's network to
/// start another, so it ends when pasta does.
pub struct SharedNetwork {
    pub pasta: Child,
}

impl SharedNetwork {
    /// Makes the namespace, connects it with pasta, waits until pasta has configured it, and moves
    /// this process into it. A small process of its own (the keeper) holds the namespace meanwhile,
    /// so that pasta and the readiness check can name it. Only call while single-threaded.
    pub fn make_and_join() -> Result<SharedNetwork, RunError> {
        let holder = nix::unistd::getpid();
        let keeper = match crate::sys::clone_into(nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| RunError::sys("cannot create the private network's namespace", e))?
        {
            crate::sys::Forked::Child => {
                let dies_with_holder =
                    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).is_ok();
                if dies_with_holder && nix::unistd::getppid() == holder {
                    // The holder's sockets are not the keeper's to hold (it never returns to them).
                    let _ = crate::sys::close_from_except(3, &[]);
                    loop {
                        nix::unistd::pause();
                    }
                }
                crate::sys::exit_now(0)
            }
            crate::sys::Forked::Parent(pid) => pid,
        };
        let joined = start_pasta(PastaTarget::NetworkOf(keeper), &[], &[]).and_then(|pasta| {
            // From here on a failure drops the network, which stops pasta.
            let network = SharedNetwork { pasta };
            let namespace = std::fs::File::open(format!("/proc/{}/ns/net", keeper.as_raw()))
                .map_err(|e| RunError::sys("cannot open the private network's namespace", e))?;
            nix::sched::setns(&namespace, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| RunError::sys("cannot join the private network", e))?;
            Ok(network)
        });
        stop(keeper);
        joined
    }
}

impl Drop for SharedNetwork {
    fn drop(&mut self) {
        let _ = self.pasta.kill();
        let _ = self.pasta.wait();
    }
}

fn stop(pid: Pid) {
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(pid, None);
}

/// The error for a pasta that exited or never configured the network: what it said, and the likely
/// fix.
fn pasta_failed(log: Option<&std::fs::File>) -> RunError {
    let mut text = String::new();
    if let Some(mut log) = log {
        // The descriptor shares its offset with pasta's, which is at the end.
        let _ = std::io::Seek::seek(&mut log, std::io::SeekFrom::Start(0));
        let _ = std::io::Read::read_to_string(&mut log, &mut text);
    }
    let said: Vec<&str> = text.lines().filter(|l| !l.contains("syslog")).collect();
    let tun_usable = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .is_ok();
    let hint = if tun_usable {
        "see pasta's message above"
    } else {
        "/dev/net/tun is not usable: as root, chmod 0666 /dev/net/tun (the mode distributions ship)"
    };
    RunError::new(format!(
        "pasta could not set up the network: {}",
        if said.is_empty() {
            "no message".to_string()
        } else {
            said.join("; ")
        }
    ))
    .with_hint(hint)
}

/// An anonymous file (already unlinked) in the temporary directory, for pasta's error output.
fn anonymous_file() -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .open(std::env::temp_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasta_publishes_only_the_given_ports_and_maps_nothing_to_the_host() {
        let publish = [
            Publish {
                host_ip: Some("127.0.0.1".parse().unwrap()),
                host_port: 8080,
                container_port: 80,
                udp: false,
            },
            Publish {
                host_ip: None,
                host_port: 53,
                container_port: 5353,
                udp: true,
            },
        ];
        let args = pasta_arguments(Some(3), 4, &publish, &[], false).join(" ");
        assert_eq!(
            args,
            "--foreground --quiet --config-net --no-map-gw --dns-forward 169.254.1.1 -T none -U none \
             -t 127.0.0.1/8080:80 -u 53:5353 --userns /proc/self/fd/3 --netns /proc/self/fd/4 \
             --no-netns-quit"
        );
        let none = pasta_arguments(Some(3), 4, &[], &[], false).join(" ");
        assert!(none.contains("-t none -u none --userns"), "{none}");
        // The holder's network: only the network namespace.
        let shared = pasta_arguments(None, 5, &[], &[], true).join(" ");
        assert!(
            shared.starts_with("--foreground --quiet --config-net --no-map-gw --dns-forward")
                && shared.ends_with("-t none -u none --netns /proc/self/fd/5 --no-netns-quit"),
            "{shared}"
        );
        // A root caller's pasta stays root, which may enter the container's namespaces.
        let as_root = pasta_arguments(Some(3), 4, &[], &[], true).join(" ");
        assert!(
            as_root.contains("-u none --runas 0:0 --userns"),
            "{as_root}"
        );
        // --net pasta:--map-gw,-4: the gateway mapping on (our --no-map-gw left out), -4 added.
        let asked = ["--map-gw".to_string(), "-4".to_string()];
        let mapped = pasta_arguments(Some(3), 4, &[], &asked, false);
        assert!(!mapped.iter().any(|a| a.contains("map-gw")), "{mapped:?}");
        assert!(
            mapped.join(" ").contains("-u none -4 --userns"),
            "{mapped:?}"
        );
    }
}
