//! Warm starts through the holder (src/runner/holder.rs): the first full-map container runs the
//! helpers and leaves a holder; the next ones join its user namespace and run no helper (the helpers
//! log every decision to syslog, which the sandbox captures); a different map gets a holder of its
//! own; an idle holder exits; `--holder-idle 0` turns holders off. Each test uses a range of its own,
//! so that holders of other tests never serve it.

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use unshare_run_test_support::*;

/// A sandbox with `range` for alice and the helpers' syslog captured.
struct Logged {
    user: &'static TestUser,
    sandbox: Sandbox,
    syslog: UnixDatagram,
    _dir: TempDir,
}

impl Logged {
    fn new(range: &str) -> Logged {
        Logged::for_user(alice(), range)
    }

    fn for_user(user: &'static TestUser, range: &str) -> Logged {
        let dir = TempDir::new("holder-syslog");
        let socket = dir.path().join("log.sock");
        let syslog = UnixDatagram::bind(&socket).unwrap();
        std::fs::set_permissions(&socket, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .unwrap();
        syslog
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut sandbox = Sandbox::both(&[&format!("{}:{range}", user.name)]);
        sandbox.syslog_socket = Some(socket);
        Logged {
            user,
            sandbox,
            syslog,
            _dir: dir,
        }
    }

    /// Runs the runner with `args` then `-- cat /proc/self/uid_map`; returns the map and the helper
    /// decisions logged meanwhile.
    fn uid_map(&self, args: &[&str]) -> (String, Vec<String>) {
        let runner = install().runner();
        let mut argv = vec![runner.as_str()];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["--", "cat", "/proc/self/uid_map"]);
        let out = self.sandbox.run_as(self.user, &argv);
        out.assert_code(0);
        let mut lines = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.syslog.recv(&mut buf) {
            lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        (normalise_map(&out.stdout_text()), lines)
    }
}

/// Holders of alice's started with this idle time (the last argument of their command line): pids.
fn holders_with_idle(idle: &str) -> Vec<(u32, String)> {
    let out = Command::new("pgrep")
        .args([
            "-a",
            "-u",
            &alice().uid.to_string(),
            "-f",
            "serve-as-holder",
        ])
        .output()
        .unwrap();
    out.stdout_text()
        .lines()
        .filter(|l| l.ends_with(&format!(" {idle}")))
        .filter_map(|l| {
            let (pid, cmd) = l.split_once(' ')?;
            Some((pid.parse().ok()?, cmd.to_string()))
        })
        .collect()
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn later_containers_join_the_holder_and_run_no_helper() {
    require_root();
    let first = Logged::new("300000:65536");
    let full = normalise_map(&format!("0 {} 1\n1 300000 65536\n", alice().uid));
    let (map, logged) = first.uid_map(&["--holder-idle", "37"]);
    assert_eq!(map, full);
    assert_eq!(logged.len(), 2, "newuidmap and newgidmap: {logged:?}");
    let (map, logged) = first.uid_map(&["--holder-idle", "37"]);
    assert_eq!(map, full);
    assert!(logged.is_empty(), "a warm start ran a helper: {logged:?}");

    // The holder is a daemon with a command line of its own and nothing of its caller's open.
    let holders = holders_with_idle("37");
    assert_eq!(holders.len(), 1, "{holders:?}");
    let (pid, cmdline) = &holders[0];
    assert!(
        cmdline.starts_with("unshare-run --serve-as-holder /tmp/unshare-run-"),
        "{cmdline}"
    );
    let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .map(|e| {
            let target = std::fs::read_link(e.path()).unwrap();
            format!("{} {}", e.file_name().to_string_lossy(), target.display())
        })
        .collect();
    fds.sort();
    assert_eq!(fds[..3], ["0 /dev/null", "1 /dev/null", "2 /dev/null"]);
    // Its socket, and the signalfd on which it learns that its private network's pasta ended.
    let mut kinds: Vec<&str> = fds[3..]
        .iter()
        .map(|fd| fd.split_once(' ').unwrap().1.split(':').next().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["anon_inode", "socket"], "{fds:?}");
    assert!(
        fds.iter().any(|fd| fd.ends_with("anon_inode:[signalfd]")),
        "{fds:?}"
    );

    // Another range (an edited /etc/subuid) is another map: never the old holder's.
    let second = Logged::new("400000:65536");
    let (map, logged) = second.uid_map(&["--holder-idle", "37"]);
    assert_eq!(
        map,
        normalise_map(&format!("0 {} 1\n1 400000 65536\n", alice().uid))
    );
    assert_eq!(logged.len(), 2, "{logged:?}");
    let holders = holders_with_idle("37");
    assert_eq!(holders.len(), 2);

    // A socket that answers with another map's namespace is never joined: put the first holder's
    // socket where the second range's holder is looked for.
    let socket_of = |range: &str| {
        holders
            .iter()
            .find(|(pid, _)| {
                std::fs::read_to_string(format!("/proc/{pid}/uid_map"))
                    .unwrap()
                    .contains(range)
            })
            .map(|(_, cmdline)| cmdline.split(' ').nth(2).unwrap().to_string())
            .unwrap()
    };
    std::fs::rename(socket_of("300000"), socket_of("400000")).unwrap();
    let (map, logged) = second.uid_map(&["--holder-idle", "37"]);
    assert_eq!(
        map,
        normalise_map(&format!("0 {} 1\n1 400000 65536\n", alice().uid))
    );
    assert_eq!(logged.len(), 2, "the wrong holder was joined: {logged:?}");
    for (pid, _) in holders_with_idle("37") {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn an_idle_holder_exits_and_removes_its_socket() {
    require_root();
    let logged = Logged::new("500000:65536");
    logged.uid_map(&["--holder-idle", "1"]);
    // A host-mode start does not wait for the holder it made to exec (its command line is then
    // unshare-run's own): give it a moment.
    wait_for(Duration::from_millis(900), || {
        holders_with_idle("1").len() == 1
    });
    let holders = holders_with_idle("1");
    assert_eq!(holders.len(), 1, "{holders:?}");
    let socket = holders[0].1.split(' ').nth(2).unwrap().to_string();
    assert!(std::path::Path::new(&socket).exists());
    assert!(
        wait_for(Duration::from_secs(5), || holders_with_idle("1").is_empty()),
        "the holder outlived its idle time"
    );
    assert!(!std::path::Path::new(&socket).exists(), "{socket} was left");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn holders_can_be_turned_off() {
    require_root();
    let logged = Logged::new("600000:65536");
    for _ in 0..2 {
        let (map, helpers) = logged.uid_map(&["--holder-idle", "0"]);
        assert!(map.contains("600000"), "{map}");
        assert_eq!(helpers.len(), 2, "{helpers:?}");
    }
    let mut by_environment = Logged::new("610000:65536");
    by_environment
        .sandbox
        .env
        .push(("UNSHARE_RUN_HOLDER_IDLE".into(), "0".into()));
    for _ in 0..2 {
        let (_, helpers) = by_environment.uid_map(&[]);
        assert_eq!(helpers.len(), 2, "{helpers:?}");
    }
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_runtime_directory_that_others_can_write_is_not_used() {
    require_root();
    // bob's holder directory made by someone else, writable by everyone: every start runs the helpers.
    let b = bob();
    let dir = std::path::PathBuf::from(format!("/tmp/unshare-run-{}", b.uid));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o1777)).unwrap();
    let logged = Logged::for_user(b, "620000:65536");
    for _ in 0..2 {
        let (map, helpers) = logged.uid_map(&[]);
        assert!(map.contains("620000"), "{map}");
        assert_eq!(helpers.len(), 2, "{helpers:?}");
    }
    let entries: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    assert!(
        entries.is_empty(),
        "a socket was made in an unsafe directory"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// One user namespace per map: a keep-id start never joins the full map's holder, nor the other way
/// round; each map's later starts join their own holder.
#[test]
#[ignore = "needs root: sudo tests/run"]
fn keep_id_and_the_full_map_each_get_a_holder_of_their_own() {
    require_root();
    let uid = alice().uid;
    let logged = Logged::new("700000:65536");
    let full = normalise_map(&format!("0 {uid} 1\n1 700000 65536\n"));
    let keep_id = normalise_map(&format!(
        "0 700000 {uid}\n{uid} {uid} 1\n{} {} {}\n",
        uid + 1,
        700000 + uid,
        65536 - uid
    ));
    for (map, args, helpers) in [
        (&full, &["--map", "full"][..], 2),
        (&keep_id, &["--map", "keep-id"], 2),
        (&keep_id, &["--userns=keep-id"], 0),
        (&full, &[], 0),
    ] {
        let mut argv = vec!["--holder-idle", "43"];
        argv.extend_from_slice(args);
        let (got, logged) = logged.uid_map(&argv);
        assert_eq!(&got, map, "{args:?}");
        assert_eq!(logged.len(), helpers, "{args:?}: {logged:?}");
    }
    let holders = holders_with_idle("43");
    assert_eq!(holders.len(), 2, "{holders:?}");
    for (pid, _) in holders {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}
