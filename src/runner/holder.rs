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
//! (SO_PEERCRED, checked to be the caller's uid) and opens /proc/PID/ns/user while the holder waits
//! for it to hang up, so the pid cannot be reused meanwhile. Only the same user can join, and that user
//! could make the same namespace with the helpers anyway.

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::CloneFlags;
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};

use super::error::RunError;
use super::exit;
use super::mapping::MapPlan;
use super::userns::{self, ChildIds, Lifetime, UserNamespace};
use crate::sys;

/// The argument that makes unshare-run a holder (not a documented interface).
pub const SERVE_ARG: &str = "--serve-as-holder";

/// How long a client may take to open the namespace before the holder hangs up.
const CLIENT_GRACE: Duration = Duration::from_secs(1);

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
    Some(runtime_dir(uid)?.join(format!("holder-v1-{digest:016x}.sock")))
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

/// The user namespace of a live holder at `socket` whose map is `plan`'s, or None (no holder, not
/// the caller's, or another map).
pub fn join(socket: &Path, uid: u32, plan: &MapPlan) -> Option<OwnedFd> {
    let (uid_map, gid_map) = plan.full_map_texts()?;
    let stream = UnixStream::connect(socket).ok()?;
    let peer = getsockopt(&stream, PeerCredentials).ok()?;
    if peer.uid() != uid || peer.pid() <= 0 {
        return None;
    }
    // The holder keeps its end open until we hang up, so the pid is still the holder's; and the
    // namespace must have exactly the planned map (so a pid reused after a holder was killed between
    // connect and open can never lend us another namespace).
    let proc = format!("/proc/{}", peer.pid());
    let ns = std::fs::File::open(format!("{proc}/ns/user")).ok()?;
    let same = |file: &str, want: &str| {
        read_map_file(&format!("{proc}/{file}"))
            .is_ok_and(|have| normalise_map(&have) == normalise_map(want))
    };
    if !(same("uid_map", &uid_map) && same("gid_map", &gid_map)) {
        return None;
    }
    drop(stream);
    Some(ns.into())
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
        CloneFlags::empty(),
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

/// The holder itself: serves until `idle` seconds pass without a client.
fn serve(socket: &Path, idle: u64) -> Result<u8, RunError> {
    let listener = match UnixListener::bind(socket) {
        Ok(listener) => listener,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            // Another holder answers there: it is enough. A dead one's socket is replaced.
            if UnixStream::connect(socket).is_ok() {
                return Ok(0);
            }
            let _ = std::fs::remove_file(socket);
            UnixListener::bind(socket)
                .map_err(|e| RunError::sys(format!("cannot listen at {}", socket.display()), e))?
        }
        Err(e) => {
            return Err(RunError::sys(
                format!("cannot listen at {}", socket.display()),
                e,
            ));
        }
    };
    let bound = std::fs::metadata(socket).map(|m| m.ino()).ok();
    let idle_ms = idle.saturating_mul(1000).min(i32::MAX as u64) as i32;
    loop {
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(idle_ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) => break,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
        let Ok((client, _)) = listener.accept() else {
            continue;
        };
        // Wait for the client to hang up (it opened our namespace by then), or give up.
        let mut fds = [PollFd::new(client.as_fd(), PollFlags::POLLIN)];
        let _ = poll(
            &mut fds,
            PollTimeout::try_from(CLIENT_GRACE.as_millis() as i32).unwrap_or(PollTimeout::MAX),
        );
    }
    // Only our own socket: a newer holder may have replaced it.
    if bound.is_some() && std::fs::metadata(socket).map(|m| m.ino()).ok() == bound {
        let _ = std::fs::remove_file(socket);
    }
    Ok(0)
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
