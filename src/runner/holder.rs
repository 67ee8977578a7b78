//! Warm starts. The two setuid helpers cost about 1.2 ms per container here (two execs), more than
//! everything else unshare-run does. So the first full-map container also starts a small process per
//! user and map, the holder, that keeps a user namespace with that map; later containers join it with
//! setns(2) and run no helper at all. Like podman's pause process, except that it exits after an idle
//! time without starts (`--holder-idle`, default 300 s; 0 turns holders off).
//!
//! The holder listens on a Unix socket in the caller's runtime directory ($XDG_RUNTIME_DIR/unshare-run,
//! else /tmp/unshare-run-UID; 0700 and the caller's, or no holder is used) named after a digest of the
//! map: when /etc/subuid changes, the planned map changes and so does the socket, and a new holder is
//! made (after the helpers approved the new map). A client learns the holder's pid from the kernel
//! (SO_PEERCRED, checked to be the caller's uid) and opens /proc/PID/ns/user while it is connected, so
//! the pid cannot be reused meanwhile. Only the same user can join, and that user could make the same
//! namespace with the helpers anyway.
//!
//! The holder also keeps the private network of its containers (`--net private`, the default with a
//! root filesystem), made when the first container asks for it: a network namespace in its user
//! namespace with one pasta (`network::SharedNetwork`), which the holder then joins itself. Later
//! containers find it as the holder's /proc/PID/ns/net (owned by the holder's user namespace, unlike
//! the network it was started in) without asking. A client stays connected while its container runs
//! (the `Lease`): the holder counts its containers by their connections and waits for the idle time
//! only once none is left, so that its pasta serves every container to its end; it ends with pasta.
//!
//! And it keeps the overlays of pulled images that its containers run (`lent_overlay`), in a mount
//! namespace of its own: a start that asks gets a copy of the image's overlay instead of mounting one
//! (and syncing its upper filesystem when it ends). `unshare-run images rm` tells it to let them go.

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{
    AddressFamily, SockFlag, SockType, UnixAddr, accept4, bind, connect, getsockopt, listen,
    socket, sockopt::PeerCredentials,
};

use super::channel::{Channel, FORGET_OVERLAYS, WANT_NETWORK, WANT_OVERLAY};
use super::error::RunError;
use super::exit;
use super::lent_overlay as lent;
use super::mapping::MapPlan;
use super::network::SharedNetwork;
use super::userns::{self, ChildIds, Lifetime, UserNamespace};
use crate::sys;

/// The argument that makes unshare-run a holder (not a documented interface).
pub const SERVE_ARG: &str = "--serve-as-holder";

/// How long a start waits for the holder it has just made to listen.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(2);

/// A holder's namespaces, lent to one container: the holder stays while the lease (its connection)
/// lasts, and with it the private network's pasta.
pub struct Lease {
    pub user: OwnedFd,
    /// Its private network's namespace, when asked for.
    pub network: Option<OwnedFd>,
    /// None for the holder this start made: its namespace came from the spawn.
    connection: Option<Channel>,
}

impl Lease {
    /// A copy of the holder's overlay of a pulled image (`lent_overlay`); None when this start has
    /// no connection to its holder, or the holder has none to lend or could not make it (the start
    /// then mounts one of its own).
    pub fn overlay(&self, request: &lent::Request) -> Option<OwnedFd> {
        let channel = self.connection.as_ref()?;
        let (bytes, dirs) = request.message();
        channel.send_overlay_request(&bytes, &dirs).ok()?;
        let overlay = channel.receive_overlay();
        if overlay.is_none()
            && let Some(e) = channel.report()
        {
            log::debug!("the holder lent no overlay: {e}");
        }
        overlay
    }

    /// The user namespace of a holder this start has just made, without a connection to it (a
    /// host-mode start, which needs no network).
    pub fn of_spawned(user: OwnedFd) -> Lease {
        Lease {
            user,
            network: None,
            connection: None,
        }
    }
}

/// The caller's private runtime directory, if it is safe to use: a real directory of the caller's
/// that nobody else can write to.
fn runtime_dir(uid: u32) -> Option<PathBuf> {
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        Some(base) if base.is_absolute() => base.join("unshare-run"),
        _ => PathBuf::from(format!("/tmp/unshare-run-{uid}")),
    };
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(_) => return None,
    }
    let meta = std::fs::symlink_metadata(&dir).ok()?;
    let private = meta.is_dir() && meta.uid() == uid && meta.permissions().mode() & 0o077 == 0;
    private.then_some(dir)
}

/// The socket of the holder for `plan` (full maps only). The name carries the protocol's version and
/// a digest of the map.
pub fn socket_path(uid: u32, plan: &MapPlan) -> Option<PathBuf> {
    let (uid_map, gid_map) = plan.full_map_texts()?;
    let digest = fnv1a64(&[uid_map.as_bytes(), b"--\n", gid_map.as_bytes()]);
    Some(runtime_dir(uid)?.join(format!("holder-v2-{digest:016x}.sock")))
}

/// FNV-1a. The digest only names the socket (a holder is joined only after its map was compared with
/// the plan), so it needs no strength; unlike sha2 it asks the CPU nothing, and each CPUID instruction
/// costs tens of microseconds in a virtual machine, where a warm start takes two milliseconds.
fn fnv1a64(parts: &[&[u8]]) -> u64 {
    parts
        .iter()
        .flat_map(|part| part.iter())
        .fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        })
}

/// A connection to whatever listens at `socket`; None when nothing does.
fn connect_to(socket: &Path) -> Result<Option<OwnedFd>, RunError> {
    let Ok(address) = UnixAddr::new(socket) else {
        return Ok(None);
    };
    let stream = seqpacket_socket()?;
    Ok(connect(stream.as_fd().as_raw_fd(), &address)
        .is_ok()
        .then_some(stream))
}

fn seqpacket_socket() -> Result<OwnedFd, RunError> {
    socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| RunError::sys("cannot create a socket", e))
}

/// A lease from a live holder at `socket` whose map is `plan`'s, with its private network when
/// `network`; None when there is no such holder (none, not the caller's, another map). An error when
/// the holder could not make its private network (it says why: pasta's message and the fix).
pub fn join(
    socket: &Path,
    uid: u32,
    plan: &MapPlan,
    network: bool,
) -> Result<Option<Lease>, RunError> {
    let Some((uid_map, gid_map)) = plan.full_map_texts() else {
        return Ok(None);
    };
    let Some(stream) = connect_to(socket)? else {
        return Ok(None);
    };
    let Ok(peer) = getsockopt(&stream, PeerCredentials) else {
        return Ok(None);
    };
    if peer.uid() != uid || peer.pid() <= 0 {
        return Ok(None);
    }
    // The holder lives while we are connected, so the pid is still the holder's; and the namespace
    // must have exactly the planned map (so a pid reused after a holder was killed between connect
    // and open can never lend us another namespace).
    let proc = format!("/proc/{}", peer.pid());
    let Ok(user) = std::fs::File::open(format!("{proc}/ns/user")) else {
        return Ok(None);
    };
    let same = |file: &str, want: &str| {
        read_map_file(&format!("{proc}/{file}"))
            .is_ok_and(|have| normalise_map(&have) == normalise_map(want))
    };
    if !(same("uid_map", &uid_map) && same("gid_map", &gid_map)) {
        return Ok(None);
    }
    let channel = Channel::from(stream);
    let network = match network {
        false => None,
        true => match private_network_of(&proc, &user) {
            Some(namespace) => Some(namespace),
            // Not made yet: the holder makes it and sends it, or says why it cannot.
            None => {
                if channel.send_byte(WANT_NETWORK).is_err() {
                    return Ok(None);
                }
                match channel.receive_network() {
                    Some(namespace) => Some(namespace),
                    None => {
                        return Err(channel.report().unwrap_or_else(|| {
                            RunError::new("the holder ended before it sent its private network")
                        }));
                    }
                }
            }
        },
    };
    Ok(Some(Lease {
        user: user.into(),
        network,
        connection: Some(channel),
    }))
}

/// The holder's network namespace (`proc` is its /proc directory) if it is its private network: one
/// that its own user namespace `user` owns (the holder joins it once made; before, it is in the
/// network it was started in, which another user namespace owns). No round trip to the holder.
fn private_network_of(proc: &str, user: &std::fs::File) -> Option<OwnedFd> {
    let network = std::fs::File::open(format!("{proc}/ns/net")).ok()?;
    let owner = sys::owning_user_namespace(network.as_fd()).ok()?;
    let identity = |fd: std::os::fd::BorrowedFd<'_>| {
        nix::sys::stat::fstat(fd)
            .ok()
            .map(|st| (st.st_dev, st.st_ino))
    };
    let owner = identity(owner.as_fd());
    (owner.is_some() && owner == identity(user.as_fd())).then(|| network.into())
}

/// `join` for a holder that was just made: it may not listen yet.
pub fn join_when_listening(
    socket: &Path,
    uid: u32,
    plan: &MapPlan,
    network: bool,
) -> Result<Lease, RunError> {
    let deadline = Instant::now() + LISTEN_TIMEOUT;
    loop {
        if let Some(lease) = join(socket, uid, plan, network)? {
            return Ok(lease);
        }
        if Instant::now() > deadline {
            return Err(RunError::new(format!(
                "the holder made for this start does not answer at {}",
                socket.display()
            ))
            .with_hint("try again, or --holder-idle 0 to start without a holder"));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A /proc map file (at most 340 lines of ~33 bytes), in two reads: its size shows as 0, so a plain
/// read_to_string would ask for the size and then start with 32-byte reads.
fn read_map_file(path: &str) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::with_capacity(16 * 1024);
    std::fs::File::open(path)?
        .take(1 << 20)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// A map file's lines with the kernel's column padding taken out.
fn normalise_map(text: &str) -> String {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Makes a holder for `plan`: a process in a new user namespace mapped by the helpers, which then
/// serves at `socket`. Returns its user namespace.
pub fn spawn(plan: &MapPlan, socket: &Path, idle: Duration) -> Result<OwnedFd, RunError> {
    let mut child = userns::spawn(
        // A mount namespace of its own, in which it may make the overlays it lends (`lent_overlay`).
        CloneFlags::CLONE_NEWNS,
        UserNamespace::New(plan),
        // Its clients check that it is theirs by its uid (SO_PEERCRED).
        ChildIds::Callers,
        Lifetime::Outlives,
        |_| {
            // A fresh program, so that ps and pgrep show what this is, not the container's command.
            let exe = Path::new("/proc/self/exe");
            let args: [OsString; 4] = [
                "unshare-run".into(),
                SERVE_ARG.into(),
                socket.as_os_str().to_owned(),
                idle.as_secs().to_string().into(),
            ];
            let _ = sys::detach_and_exec(exe, &args);
            exit::RUNNER_ERROR
        },
    )?;
    // Our child, not yet reaped: the pid is its own.
    let ns = std::fs::File::open(format!("/proc/{}/ns/user", child.pid().as_raw()))
        .map_err(|e| RunError::sys("cannot open the holder's namespace", e))?;
    child.start()?;
    child.release();
    Ok(ns.into())
}

/// `unshare-run --serve-as-holder SOCKET IDLE_SECONDS`, which unshare-run runs in the holder.
pub fn command() -> clap::Command {
    clap::Command::new(SERVE_ARG)
        .about(
            "Serve warm starts: keep this user namespace until IDLE_SECONDS pass without a start",
        )
        .arg(
            clap::Arg::new("socket")
                .required(true)
                .value_parser(clap::value_parser!(PathBuf)),
        )
        .arg(
            clap::Arg::new("idle")
                .required(true)
                .value_parser(clap::value_parser!(u64)),
        )
}

pub fn main(args: &clap::ArgMatches) -> Result<u8, RunError> {
    let (Some(socket), Some(&idle)) = (args.get_one::<PathBuf>("socket"), args.get_one("idle"))
    else {
        return Err(RunError::new("the holder needs SOCKET and IDLE_SECONDS"));
    };
    serve(socket, idle)
}

fn listen_at(socket: &Path) -> Result<OwnedFd, RunError> {
    let fail =
        |e: nix::errno::Errno| RunError::sys(format!("cannot listen at {}", socket.display()), e);
    let address = UnixAddr::new(socket).map_err(fail)?;
    let listener = seqpacket_socket()?;
    bind(listener.as_fd().as_raw_fd(), &address).map_err(fail)?;
    listen(&listener, nix::sys::socket::Backlog::new(64).map_err(fail)?).map_err(fail)?;
    Ok(listener)
}

/// The holder itself: serves until `idle` seconds pass without a container.
fn serve(socket: &Path, idle: u64) -> Result<u8, RunError> {
    let listener = match listen_at(socket) {
        Ok(listener) => listener,
        Err(e) if e.errno == Some(nix::errno::Errno::EADDRINUSE) => {
            // Another holder answers there: it is enough. A dead one's socket is replaced.
            if connect_to(socket)?.is_some() {
                return Ok(0);
            }
            let _ = std::fs::remove_file(socket);
            listen_at(socket)?
        }
        Err(e) => return Err(e),
    };
    let bound = std::fs::metadata(socket).map(|m| m.ino()).ok();
    let idle_ms = idle.saturating_mul(1000).min(i32::MAX as u64) as i32;
    let mut clients: Vec<Channel> = Vec::new();
    let mut network: Option<SharedNetwork> = None;
    let mut overlays = lent::Kept::default();
    // Children that end (pasta): read through a signalfd among the sockets.
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&chld), None)
        .map_err(|e| RunError::sys("sigprocmask", e))?;
    let children = SignalFd::with_flags(&chld, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| RunError::sys("signalfd", e))?;
    loop {
        // The idle time runs only while no container is connected.
        let timeout = match clients.is_empty() {
            true => PollTimeout::try_from(idle_ms).unwrap_or(PollTimeout::MAX),
            false => PollTimeout::NONE,
        };
        let mut fds: Vec<PollFd> = [listener.as_fd(), children.as_fd()]
            .into_iter()
            .chain(clients.iter().map(|c| c.as_fd()))
            .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
            .collect();
        match poll(&mut fds, timeout) {
            Ok(0) => break,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready[1] {
            while let Ok(Some(_)) = children.read_signal() {}
            // The private network's pasta has ended: the network reaches nothing any more, and this
            // holder is in it for good. The next start makes a new holder.
            if network
                .as_mut()
                .is_some_and(|n| !matches!(n.pasta.try_wait(), Ok(None)))
            {
                break;
            }
        }
        for index in (0..clients.len()).rev() {
            if !ready[index + 2] {
                continue;
            }
            match clients[index].receive_request() {
                Some((bytes, _)) if bytes[0] == WANT_NETWORK => {
                    lend_network(&clients[index], &mut network)
                }
                Some((bytes, dirs)) if bytes[0] == WANT_OVERLAY => {
                    lend_overlay(&clients[index], &mut overlays, &bytes[1..], dirs)
                }
                Some((bytes, _)) if bytes[0] == FORGET_OVERLAYS => overlays.forget_removed(),
                Some(_) => {}
                // Its container has ended.
                None => {
                    clients.swap_remove(index);
                }
            }
        }
        if ready[0]
            && let Ok(client) = accept4(listener.as_fd(), SockFlag::SOCK_CLOEXEC)
        {
            clients.push(Channel::from(client));
        }
    }
    // Only our own socket: a newer holder may have replaced it.
    if bound.is_some() && std::fs::metadata(socket).map(|m| m.ino()).ok() == bound {
        let _ = std::fs::remove_file(socket);
    }
    Ok(0)
}

/// Sends `client` a copy of the overlay it asks for (`lent_overlay`), or that there is none, or why
/// it cannot be had.
fn lend_overlay(client: &Channel, overlays: &mut lent::Kept, request: &[u8], dirs: Vec<OwnedFd>) {
    let Some(request) = lent::Request::from_message(request, dirs) else {
        let _ = client.send_overlay(None);
        return;
    };
    match overlays.lend(request) {
        Ok(overlay) => {
            let _ = client.send_overlay(overlay.as_ref().map(|o| o.as_fd()));
        }
        Err(e) => {
            client.fail(e);
        }
    }
}

/// Tells the caller's holder for `plan`, if one runs, to let go of the overlays it keeps of removed
/// images (their files' space comes back only once no overlay holds them).
pub fn forget_overlays(plan: &MapPlan) {
    let uid = nix::unistd::getuid().as_raw();
    let Some(socket) = socket_path(uid, plan) else {
        return;
    };
    if let Ok(Some(stream)) = connect_to(&socket) {
        let _ = Channel::from(stream).send_byte(FORGET_OVERLAYS);
    }
}

/// Sends `client` the private network's namespace, which this holder makes and joins first if it
/// has none; or why it cannot be had (a later request tries again: pasta may have been installed).
fn lend_network(client: &Channel, network: &mut Option<SharedNetwork>) {
    if network.is_none() {
        match SharedNetwork::make_and_join() {
            Ok(made) => *network = Some(made),
            Err(e) => {
                client.fail(e);
                return;
            }
        }
    }
    match std::fs::File::open("/proc/self/ns/net") {
        Ok(namespace) => {
            let _ = client.send_network(namespace.as_fd());
        }
        Err(e) => {
            client.fail(RunError::sys(
                "cannot open the private network's namespace",
                e,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use unshare_run_helpers::idmap::IdMapping;

    fn plan(outside: u32) -> MapPlan {
        let lines = vec![
            IdMapping {
                inside: 0,
                outside: 1000,
                count: 1,
            },
            IdMapping {
                inside: 1,
                outside,
                count: 65536,
            },
        ];
        MapPlan::Full {
            uid: lines.clone(),
            gid: lines,
            caller_inside: (0, 0),
            helpers: crate::runner::mapping::Helpers {
                newuidmap: "/x/newuidmap".into(),
                newgidmap: "/x/newgidmap".into(),
            },
        }
    }

    #[test]
    fn the_map_text_is_what_the_kernel_shows_without_padding() {
        let (uid_map, _) = plan(100_000).full_map_texts().unwrap();
        assert_eq!(uid_map, "0 1000 1\n1 100000 65536\n");
        let kernel = "         0       1000          1\n         1     100000      65536\n";
        assert_eq!(normalise_map(kernel), normalise_map(&uid_map));
    }

    #[test]
    fn single_id_maps_have_no_holder() {
        let single = MapPlan::Single {
            inside_uid: 0,
            inside_gid: 0,
        };
        assert!(single.full_map_texts().is_none());
        assert!(socket_path(1000, &single).is_none());
    }

    #[test]
    fn each_map_names_its_own_socket() {
        // The published FNV-1a test vectors, then: another range, another socket.
        assert_eq!(fnv1a64(&[b""]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(&[b"foo", b"bar"]), fnv1a64(&[b"foobar"]));
        let digest = |outside| {
            let (uid_map, gid_map) = plan(outside).full_map_texts().unwrap();
            fnv1a64(&[uid_map.as_bytes(), b"--\n", gid_map.as_bytes()])
        };
        assert_ne!(digest(100_000), digest(200_000));
    }
}
