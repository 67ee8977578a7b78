//! Named containers (issue 17): `--name` claims a name, `ps` and `ps -a` show the container running
//! and then how it ended, `rm` removes its record, `--rm` leaves none, and `images rm` refuses an
//! image a named container is built on; `--detach` runs it under a monitor of its own, with `logs`,
//! `stop`, `kill`, `start` and `rm -f`, and a record that names processes that are gone (or of
//! another boot) never shows as running. The test user has the full map and a data directory of its
//! own (XDG_DATA_HOME): the store and the containers' records. Each test's Drop kills, as root and by
//! pid and start time, every process its records name.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use unshare_run_test_support::serde_json::{self, Value};
use unshare_run_test_support::*;

struct Containers {
    data: TempDir,
    sandbox: Sandbox,
    rootfs: TempDir,
}

impl Containers {
    fn new() -> Containers {
        let data = user_dir(alice(), "containers-data");
        let mut sandbox = Sandbox::both(&[&format!("{}:100000:65536", alice().name)]);
        sandbox
            .env
            .push(("XDG_DATA_HOME".into(), data.path().to_str().unwrap().into()));
        Containers {
            data,
            sandbox,
            rootfs: busybox_rootfs(alice()),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let runner = install().runner();
        let mut argv = vec![runner.as_str()];
        argv.extend_from_slice(args);
        self.sandbox.run_as(alice(), &argv)
    }

    fn root(&self) -> &str {
        self.rootfs.path().to_str().unwrap()
    }

    /// unshare-run with `args`, as alice, in the background in a process group of its own (which
    /// the caller kills), its output discarded.
    fn background(&self, args: &[&str], dir: &TempDir) -> std::process::Child {
        let runner = install().runner();
        let mut argv = vec![runner.as_str()];
        argv.extend_from_slice(args);
        self.sandbox
            .command_as(alice(), &argv, dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap()
    }

    fn record(&self, name: &str) -> PathBuf {
        self.data.path().join("unshare-run/containers").join(name)
    }

    /// The processes the running container `name` is recorded with (state.json).
    fn state(&self, name: &str) -> Value {
        let path = self.record(name).join("state.json");
        let mut text = String::new();
        wait_for(Duration::from_secs(5), || {
            text = fs::read_to_string(&path).unwrap_or_default();
            !text.is_empty()
        });
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text:?}", path.display()))
    }

    /// The pid of the process `role` (runner, pid1, command) of the running container `name`.
    fn pid(&self, name: &str, role: &str) -> i32 {
        self.state(name)[role]["pid"].as_i64().unwrap() as i32
    }

    /// `ps -a`'s row of `name`.
    fn row(&self, name: &str) -> String {
        self.ps(true)
            .into_iter()
            .find(|r| r.starts_with(&format!("{name} ")))
            .unwrap_or_default()
    }

    /// Waits until `ps -a` says `name` exited (`Exited (STATUS)` when given).
    fn wait_exited(&self, name: &str, status: Option<u8>) -> bool {
        let wanted = match status {
            Some(status) => format!("Exited ({status})"),
            None => "Exited".to_string(),
        };
        wait_for(Duration::from_secs(5), || self.row(name).contains(&wanted))
    }

    /// `ps` (or `ps -a`): its rows, header left out, each split into its columns' words.
    fn ps(&self, all: bool) -> Vec<String> {
        let args: &[&str] = if all { &["ps", "-a"] } else { &["ps"] };
        let out = self.run(args);
        out.assert_code(0);
        let text = out.stdout_text();
        let mut lines = text.lines();
        let header = lines.next().unwrap_or_default();
        assert!(header.starts_with("NAME"), "{text}");
        lines.map(str::to_string).collect()
    }
}

impl Drop for Containers {
    /// Kills every process a record names that still runs (the container's monitor, whose death takes
    /// PID 1 and the pid namespace with it), checked by its start time.
    fn drop(&mut self) {
        let Ok(records) = fs::read_dir(self.data.path().join("unshare-run/containers")) else {
            return;
        };
        for record in records.flatten() {
            let Ok(text) = fs::read_to_string(record.path().join("state.json")) else {
                continue;
            };
            let Ok(state) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            for role in ["runner", "pid1"] {
                let (Some(pid), Some(start)) =
                    (state[role]["pid"].as_i64(), state[role]["start"].as_u64())
                else {
                    continue;
                };
                if start_time(pid as i32) == Some(start) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
    }
}

/// Whether process `pid` is gone or a zombie.
fn has_ended(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

/// Field 22 of /proc/PID/stat, after the command's name in parentheses.
fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_ascii_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_named_container_is_listed_with_how_it_ended_until_it_is_removed() {
    require_root();
    let c = Containers::new();
    let out = c.run(&[
        "--name",
        "box",
        "--rootfs",
        c.root(),
        "--",
        "sh",
        "-c",
        "exit 3",
    ]);
    out.assert_code(3);
    assert!(c.ps(false).is_empty(), "{:?}", c.ps(false));
    let rows = c.ps(true);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert!(row.starts_with("box "), "{row}");
    assert!(row.contains(c.root()), "{row}");
    assert!(row.contains("sh -c exit 3"), "{row}");
    assert!(row.contains(" ago"), "{row}");
    assert!(
        row.contains("Exited (3) ") && row.ends_with(" ago"),
        "{row}"
    );
    // The name is taken until the record goes.
    let out = c.run(&["--name", "box", "--rootfs", c.root(), "--", "true"]);
    out.assert_code(125)
        .assert_stderr_contains("the name `box` is in use by a container")
        .assert_stderr_contains("unshare-run rm box");
    // A command that cannot run is recorded with its status too.
    c.run(&[
        "--name",
        "missing",
        "--rootfs",
        c.root(),
        "--",
        "no-such-command",
    ])
    .assert_code(127);
    assert!(
        c.ps(true)
            .iter()
            .any(|r| r.starts_with("missing ") && r.contains("Exited (127)"))
    );
    let out = c.run(&["rm", "box", "missing"]);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "box\nmissing\n");
    assert!(c.ps(true).is_empty(), "{:?}", c.ps(true));
    assert_eq!(
        fs::read_dir(c.data.path().join("unshare-run/containers"))
            .unwrap()
            .count(),
        0
    );
    c.run(&["--name", "box", "--rootfs", c.root(), "--", "true"])
        .assert_code(0);
    c.run(&["rm", "box"]).assert_code(0);
    c.run(&["rm", "box"])
        .assert_code(125)
        .assert_stderr_contains("no container `box`");
    // A name podman would refuse is refused, before anything runs.
    c.run(&["--name", "-x", "--rootfs", c.root(), "--", "true"])
        .assert_code(125);
    c.run(&["--name", "a/b", "--rootfs", c.root(), "--", "true"])
        .assert_code(125)
        .assert_stderr_contains("invalid container name");
    // --rm: nothing is left.
    c.run(&["--rm", "--name", "gone", "--rootfs", c.root(), "--", "true"])
        .assert_code(0);
    assert!(c.ps(true).is_empty(), "{:?}", c.ps(true));
    // A run killed while it resolves its root filesystem (a FIFO nobody writes: its open waits)
    // holds the name until then, and leaves nothing that keeps it.
    let fifo = c.data.path().join("fifo");
    run_ok(std::process::Command::new("mkfifo").arg(&fifo));
    give_to(alice(), &fifo);
    let dir = TempDir::new("lifecycle-fifo");
    let fifo_arg = fifo.to_str().unwrap();
    let mut stuck = c.background(
        &["--name", "ghost", "--rootfs", fifo_arg, "--", "true"],
        &dir,
    );
    assert!(wait_for(Duration::from_secs(5), || c
        .record("ghost")
        .exists()));
    c.run(&["--name", "ghost", "--rootfs", c.root(), "--", "true"])
        .assert_code(125)
        .assert_stderr_contains("in use");
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(stuck.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = stuck.wait();
    assert!(c.ps(true).is_empty(), "{:?}", c.ps(true));
    c.run(&["--name", "ghost", "--rootfs", c.root(), "--", "true"])
        .assert_code(0);
    c.run(&["rm", "ghost"]).assert_code(0);
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_running_container_is_up_and_shows_exited_once_its_process_is_killed() {
    require_root();
    let c = Containers::new();
    let dir = TempDir::new("lifecycle-running");
    let mut running = c.background(
        &["--name", "long", "--rootfs", c.root(), "--", "sleep", "60"],
        &dir,
    );
    let up = wait_for(Duration::from_secs(10), || {
        c.ps(false)
            .iter()
            .any(|r| r.starts_with("long ") && r.contains(" Up "))
    });
    let refused = c.run(&["rm", "long"]);
    // SIGKILL to unshare-run (and the sandbox around it): no end is written, and it is not Up.
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(running.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = running.wait();
    assert!(up, "{:?}", c.ps(true));
    refused
        .assert_code(125)
        .assert_stderr_contains("container `long` is running");
    assert!(
        wait_for(Duration::from_secs(5), || c.ps(false).is_empty()),
        "{:?}",
        c.ps(false)
    );
    let rows = c.ps(true);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].ends_with("Exited"), "{rows:?}");
    c.run(&["rm", "long"]).assert_code(0);
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn an_image_that_a_named_container_is_built_on_is_kept_until_the_container_is_removed() {
    require_root();
    let c = Containers::new();
    let tarball = c.data.path().join("small.tar");
    run_ok(
        std::process::Command::new("tar")
            .args(["--owner=0", "--group=0", "--numeric-owner", "-cf"])
            .arg(&tarball)
            .arg("-C")
            .arg(c.rootfs.path())
            .arg("."),
    );
    give_to(alice(), &tarball);
    let tarball = tarball.to_str().unwrap();
    c.run(&["images", "import", tarball, "--name", "small"])
        .assert_code(0);
    // Its writes go to a layer of its own, which rm removes; the stored image stays as it was.
    c.run(&[
        "--name",
        "user",
        "--rootfs",
        "small",
        "--",
        "sh",
        "-c",
        "echo mine > /written",
    ])
    .assert_code(0);
    assert!(c.record("user").join("layer/upper/written").exists());
    c.run(&["--rootfs", "small", "--", "sh", "-c", "test ! -e /written"])
        .assert_code(0);
    assert!(
        c.ps(true)[0].starts_with("user  small "),
        "{:?}",
        c.ps(true)
    );
    c.run(&["images", "rm", "small"])
        .assert_code(125)
        .assert_stderr_contains("image `small` is used by the container(s) user")
        .assert_stderr_contains("unshare-run rm user");
    c.run(&["rm", "user"]).assert_code(0);
    assert!(!c.record("user").exists());
    c.run(&["images", "rm", "small"]).assert_code(0);
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_detached_container_runs_under_its_monitor_with_a_log_and_none_of_the_callers_descriptors() {
    require_root();
    let c = Containers::new();
    let started = Instant::now();
    // output() waits until stdout and stderr are closed by every process that has them: it returns
    // only if the monitor and the container kept none of the caller's pipes.
    let out = c.run(&[
        "-d",
        "--name",
        "s",
        "--rootfs",
        c.root(),
        "--",
        "sh",
        "-c",
        "echo hi; echo err >&2; exec sleep 60",
    ]);
    let took = started.elapsed();
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "s\n");
    assert!(took < Duration::from_secs(3), "{took:?}");
    let row = c.row("s");
    assert!(row.contains(" Up "), "{row}");
    assert!(
        wait_for(Duration::from_secs(5), || {
            c.run(&["logs", "s"]).stdout_text() == "hi\nerr\n"
        }),
        "{:?}",
        c.run(&["logs", "s"])
    );
    // The monitor: /dev/null, its log, and its own (the lock, sockets, a signalfd, namespaces).
    let monitor = c.pid("s", "runner");
    let log = c.record("s").join("log");
    let mut descriptors = Vec::new();
    for entry in fs::read_dir(format!("/proc/{monitor}/fd"))
        .unwrap()
        .flatten()
    {
        let fd: u32 = entry.file_name().to_str().unwrap().parse().unwrap();
        let target = fs::read_link(entry.path()).unwrap();
        descriptors.push((fd, target));
    }
    descriptors.sort();
    assert_eq!(
        descriptors[0],
        (0, PathBuf::from("/dev/null")),
        "{descriptors:?}"
    );
    assert_eq!(descriptors[1], (1, log.clone()), "{descriptors:?}");
    assert_eq!(descriptors[2], (2, log.clone()), "{descriptors:?}");
    for (fd, target) in &descriptors[3..] {
        let text = target.to_string_lossy();
        let own = text.starts_with("socket:")
            || text.starts_with("anon_inode:")
            || text.ends_with("]") && !text.starts_with("pipe:")
            || target.starts_with(c.record("s"))
            || target.starts_with(c.data.path());
        assert!(own, "fd {fd} of the monitor is {text}: {descriptors:?}");
    }
    // The same name is refused while it runs, and rm without -f refuses it.
    c.run(&["-d", "--name", "s", "--rootfs", c.root(), "--", "true"])
        .assert_code(125)
        .assert_stderr_contains("in use");
    c.run(&["rm", "s"])
        .assert_code(125)
        .assert_stderr_contains("rm -f s");
    // A command that cannot run: the start says so with its status, and ps -a shows it.
    let out = c.run(&[
        "-d",
        "--name",
        "bad",
        "--rootfs",
        c.root(),
        "--",
        "no-such-command",
    ]);
    out.assert_code(127);
    assert!(c.row("bad").contains("Exited (127)"), "{}", c.row("bad"));
    // -t: a terminal of its own, which the monitor drains into the log.
    c.run(&[
        "-d",
        "-t",
        "--name",
        "tty",
        "--rootfs",
        c.root(),
        "--",
        "sh",
        "-c",
        "tty; exec sleep 60",
    ])
    .assert_code(0);
    assert!(
        wait_for(Duration::from_secs(5), || {
            c.run(&["logs", "tty"]).stdout_text().replace('\r', "") == "/dev/pts/0\n"
        }),
        "{:?}",
        c.run(&["logs", "tty"])
    );
    c.run(&["rm", "-f", "tty"]).assert_code(0);
    // Without --name: a generated name, printed.
    let out = c.run(&["-d", "--rm", "--rootfs", c.root(), "--", "true"]);
    out.assert_code(0);
    let generated = out.stdout_text().trim().to_string();
    assert!(generated.contains('_'), "{generated:?}");
    // --rm: its record goes when it ends.
    assert!(
        wait_for(Duration::from_secs(5), || !c.record(&generated).exists()),
        "{:?}",
        c.ps(true)
    );
    // rm -f: killed, and nothing of it is left: no process in its pid namespace, no record.
    let pid1 = c.pid("s", "pid1");
    // Held open, so that their numbers cannot be given to other tests' new namespaces meanwhile: a
    // process that shows them is in these. Its mounts exist only in its mount namespace, which goes
    // with its last process.
    let _held: Vec<fs::File> = ["pid", "mnt"]
        .iter()
        .map(|ns| fs::File::open(format!("/proc/{pid1}/ns/{ns}")).unwrap())
        .collect();
    let namespace = fs::read_link(format!("/proc/{pid1}/ns/pid")).unwrap();
    let mounts = fs::read_link(format!("/proc/{pid1}/ns/mnt")).unwrap();
    let out = c.run(&["rm", "-f", "s", "bad"]);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "s\nbad\n");
    assert!(!c.record("s").exists());
    let left: Vec<_> = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|p| fs::read_link(p.path().join("ns/pid")).is_ok_and(|ns| ns == namespace))
        .map(|p| p.file_name())
        .collect();
    assert!(
        left.is_empty(),
        "still in the container's pid namespace: {left:?}"
    );
    let in_its_mounts: Vec<_> = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|p| fs::read_link(p.path().join("ns/mnt")).is_ok_and(|ns| ns == mounts))
        .map(|p| p.file_name())
        .collect();
    assert!(
        in_its_mounts.is_empty(),
        "its mount namespace is held by {in_its_mounts:?}"
    );
    let stray = fs::read_dir("/proc").unwrap().flatten().any(|p| {
        fs::read_to_string(p.path().join("mountinfo")).is_ok_and(|m| m.contains(c.root()))
    });
    assert!(
        !stray,
        "a mount namespace still has the root filesystem mounted"
    );
    assert!(
        wait_for(Duration::from_secs(2), || has_ended(monitor)),
        "the monitor {monitor} still runs"
    );
    assert!(c.ps(true).is_empty(), "{:?}", c.ps(true));
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_container_whose_command_init_or_monitor_is_killed_shows_as_exited() {
    require_root();
    let c = Containers::new();
    for (name, role, status) in [
        ("command", "command", Some(137)),
        ("init", "pid1", Some(137)),
        ("monitor", "runner", None),
    ] {
        c.run(&[
            "-d",
            "--name",
            name,
            "--rootfs",
            c.root(),
            "--",
            "sleep",
            "60",
        ])
        .assert_code(0);
        assert!(c.row(name).contains(" Up "), "{}", c.row(name));
        let pid = c.pid(name, role);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        assert!(c.wait_exited(name, status), "{role}: {}", c.row(name));
        if status.is_none() {
            // The monitor died without writing an end: exited, with no status.
            assert!(c.row(name).ends_with("Exited"), "{}", c.row(name));
        }
    }
    assert!(c.ps(false).is_empty(), "{:?}", c.ps(false));
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn stop_kill_and_start_act_on_the_container_and_its_files_stay() {
    require_root();
    let c = Containers::new();
    let root = busybox_rootfs(alice());
    let root = root.path().to_str().unwrap();
    // A command that ignores SIGTERM: SIGKILL after the timeout.
    c.run(&[
        "-d",
        "--name",
        "deaf",
        "--rootfs",
        root,
        "--",
        "sh",
        "-c",
        "trap '' TERM; echo run >> /runs; while :; do sleep 0.1; done",
    ])
    .assert_code(0);
    let started = Instant::now();
    let out = c.run(&["stop", "-t", "2", "deaf"]);
    let took = started.elapsed();
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "deaf\n");
    assert!(
        took >= Duration::from_millis(1800) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(c.row("deaf").contains("Exited (137)"), "{}", c.row("deaf"));
    // stop of a container that is not running: nothing to do.
    c.run(&["stop", "deaf"]).assert_code(0);
    // start: the same command again, on the root filesystem as it was left.
    let out = c.run(&["start", "deaf"]);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "deaf\n");
    assert!(c.row("deaf").contains(" Up "), "{}", c.row("deaf"));
    assert!(
        wait_for(Duration::from_secs(5), || {
            fs::read_to_string(format!("{root}/runs")).unwrap_or_default() == "run\nrun\n"
        }),
        "{:?}",
        fs::read_to_string(format!("{root}/runs"))
    );
    // start of a running container is not an error, and starts nothing more.
    let pid1 = c.pid("deaf", "pid1");
    c.run(&["start", "deaf"]).assert_code(0);
    assert_eq!(c.pid("deaf", "pid1"), pid1);
    // -t 0: SIGKILL at once.
    let started = Instant::now();
    c.run(&["stop", "-t", "0", "deaf"]).assert_code(0);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(c.row("deaf").contains("Exited (137)"), "{}", c.row("deaf"));

    // A command that exits on SIGTERM with its own status; its USR1 trap hears `kill -s USR1`.
    c.run(&[
        "-d",
        "--name",
        "polite",
        "--rootfs",
        root,
        "--",
        "sh",
        "-c",
        "trap 'exit 3' TERM; trap 'echo usr1' USR1; echo ready; while :; do sleep 0.1; done",
    ])
    .assert_code(0);
    assert!(wait_for(Duration::from_secs(5), || c
        .run(&["logs", "polite"])
        .stdout_text()
        == "ready\n"));
    c.run(&["kill", "-s", "USR1", "polite"]).assert_code(0);
    assert!(
        wait_for(Duration::from_secs(5), || {
            c.run(&["logs", "polite"]).stdout_text() == "ready\nusr1\n"
        }),
        "{:?}",
        c.run(&["logs", "polite"])
    );
    let started = Instant::now();
    c.run(&["stop", "polite"]).assert_code(0);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        c.row("polite").contains("Exited (3)"),
        "{}",
        c.row("polite")
    );
    // kill of a stopped container, and of an unknown one: 125.
    c.run(&["kill", "polite"])
        .assert_code(125)
        .assert_stderr_contains("container `polite` is not running");
    c.run(&["stop", "nobody"])
        .assert_code(125)
        .assert_stderr_contains("no container `nobody`");
    c.run(&["kill", "-s", "NOSUCH", "polite"]).assert_code(125);
    // --stop-signal: what stop sends first.
    c.run(&[
        "-d",
        "--name",
        "usr1",
        "--stop-signal",
        "usr1",
        "--rootfs",
        root,
        "--",
        "sh",
        "-c",
        "trap 'exit 5' USR1; while :; do sleep 0.1; done",
    ])
    .assert_code(0);
    c.run(&["stop", "-t", "5", "usr1"]).assert_code(0);
    assert!(c.row("usr1").contains("Exited (5)"), "{}", c.row("usr1"));
    c.run(&[
        "--name",
        "x",
        "--stop-signal",
        "NOSUCH",
        "--rootfs",
        root,
        "--",
        "true",
    ])
    .assert_code(125)
    .assert_stderr_contains("is not a signal");
    // start --attach: the output of this run, then its status.
    c.run(&[
        "-d",
        "--name",
        "once",
        "--rootfs",
        root,
        "--",
        "sh",
        "-c",
        "echo attached; exit 4",
    ])
    .assert_code(0);
    assert!(c.wait_exited("once", Some(4)), "{}", c.row("once"));
    let out = c.run(&["start", "--attach", "once"]);
    out.assert_code(4);
    assert_eq!(out.stdout_text(), "attached\n");
    c.run(&["rm", "-f", "deaf", "polite", "once"])
        .assert_code(0);
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_record_of_another_boot_or_of_a_reused_pid_is_not_running_and_nothing_is_signalled() {
    require_root();
    let c = Containers::new();
    c.run(&[
        "-d",
        "--name",
        "old",
        "--rootfs",
        c.root(),
        "--",
        "sleep",
        "60",
    ])
    .assert_code(0);
    let path = c.record("old").join("state.json");
    let state = c.state("old");
    let pid1 = c.pid("old", "pid1");
    // "Before a reboot": the same processes, of another boot.
    let mut rebooted = state.clone();
    rebooted["boot_id"] = Value::from("00000000-0000-0000-0000-000000000000");
    fs::write(&path, rebooted.to_string()).unwrap();
    assert!(c.row("old").ends_with("Exited"), "{}", c.row("old"));
    c.run(&["stop", "-t", "0", "old"]).assert_code(0);
    c.run(&["kill", "old"]).assert_code(125);
    assert_eq!(start_time(pid1), state["pid1"]["start"].as_u64());
    // A pid that names another process now (a sleep of alice's with another start time).
    let mut sleeper = std::process::Command::new("setpriv")
        .arg(format!("--reuid={}", alice().uid))
        .arg(format!("--regid={}", alice().gid))
        .args(["--clear-groups", "sleep", "60"])
        .spawn()
        .unwrap();
    let sleeper_pid = wait_for_child_named(sleeper.id() as i32, "sleep");
    let mut reused = state.clone();
    reused["pid1"] = serde_json::json!({ "pid": sleeper_pid, "start": 1 });
    reused["command"] = serde_json::json!({ "pid": sleeper_pid, "start": 1 });
    fs::write(&path, reused.to_string()).unwrap();
    assert!(c.row("old").ends_with("Exited"), "{}", c.row("old"));
    c.run(&["stop", "-t", "0", "old"]).assert_code(0);
    c.run(&["rm", "-f", "old"]).assert_code(0);
    assert!(start_time(sleeper_pid).is_some(), "the sleep was killed");
    assert_eq!(start_time(pid1), state["pid1"]["start"].as_u64());
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    // The real processes: killed by their pids, the record being gone.
    for role in ["runner", "pid1"] {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(state[role]["pid"].as_i64().unwrap() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// `pid`, once it runs `comm` (setpriv execs the command: the same pid).
fn wait_for_child_named(pid: i32, comm: &str) -> i32 {
    let found = wait_for(Duration::from_secs(5), || {
        fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
    });
    assert!(found, "{pid} never became {comm}");
    pid
}

/// `exec` runs in the container: its files, hostname, pid namespace and map, as its user in its
/// working directory, with none of the caller's descriptors, and exits as a start does.
#[test]
#[ignore = "needs root: sudo tests/run"]
fn exec_runs_a_command_inside_the_running_container_with_its_defaults() {
    require_root();
    let c = Containers::new();
    c.run(&[
        "-d",
        "--name",
        "e",
        "--hostname",
        "box",
        "-w",
        "/tmp",
        "-e",
        "FROM=run",
        "--rootfs",
        c.root(),
        "--",
        "sh",
        "-c",
        "echo there > /tmp/mark; exec sleep 60",
    ])
    .assert_code(0);
    let exec = |args: &[&str]| {
        let mut argv = vec!["exec"];
        argv.extend_from_slice(args);
        c.run(&argv)
    };
    assert!(
        wait_for(Duration::from_secs(5), || exec(&["e", "cat", "/tmp/mark"])
            .stdout_text()
            == "there\n"),
        "{:?}",
        exec(&["e", "cat", "/tmp/mark"])
    );
    let out = exec(&["e", "hostname"]);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "box\n");
    // The container's pid namespace and map: those of its command.
    let command = c.pid("e", "command");
    let out = exec(&["e", "readlink", "/proc/self/ns/pid"]);
    assert_eq!(
        out.stdout_text().trim(),
        fs::read_link(format!("/proc/{command}/ns/pid"))
            .unwrap()
            .to_str()
            .unwrap()
    );
    for map in ["uid_map", "gid_map"] {
        let out = exec(&["e", "cat", &format!("/proc/self/{map}")]);
        assert_eq!(
            out.stdout_text(),
            fs::read_to_string(format!("/proc/{command}/{map}")).unwrap(),
            "{map}"
        );
    }
    // In its /proc: its init, its command and the exec'd one; neither unshare-run exec nor the
    // process that entered.
    let out = exec(&["e", "ls", "/proc"]);
    let pids: Vec<&str> = out
        .stdout_text()
        .leak()
        .split_whitespace()
        .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    assert_eq!(pids.len(), 3, "{pids:?}");
    // Its working directory, root, user and environment; -u, -w and -e over them.
    let out = exec(&[
        "e",
        "sh",
        "-c",
        "readlink /proc/self/cwd; readlink /proc/self/root; id -u; echo $FROM",
    ]);
    assert_eq!(out.stdout_text(), "/tmp\n/\n0\nrun\n");
    let out = exec(&[
        "-u",
        "1000",
        "-w",
        "/",
        "-e",
        "FROM=exec",
        "e",
        "sh",
        "-c",
        "id -u; id -g; pwd; echo $FROM",
    ]);
    assert_eq!(out.stdout_text(), "1000\n1000\n/\nexec\n");
    let out = exec(&["-u", "user", "e", "id", "-un"]);
    assert_eq!(out.stdout_text(), "user\n");
    exec(&["-w", "/no/such/dir", "e", "true"]).assert_code(125);
    // Only 0, 1 and 2 of the caller's descriptors (ls's own directory is 3).
    let runner = install().runner();
    let out = c.sandbox.run_as(
        alice(),
        &[
            "sh",
            "-c",
            "exec 4</dev/null 5</dev/null; exec \"$@\"",
            "sh",
            &runner,
            "exec",
            "e",
            "ls",
            "/proc/self/fd",
        ],
    );
    assert_eq!(
        out.stdout_text().split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3"]
    );
    // Without -i the command's stdin is /dev/null; with it, the caller's.
    assert_eq!(
        exec(&["e", "readlink", "/proc/self/fd/0"]).stdout_text(),
        "/dev/null\n"
    );
    // Exit statuses as for a start.
    exec(&["e", "true"]).assert_code(0);
    exec(&["e", "sh", "-c", "exit 7"]).assert_code(7);
    exec(&["e", "/etc"]).assert_code(126);
    exec(&["e", "no-such-command"])
        .assert_code(127)
        .assert_stderr_contains("command not found");
    exec(&["nobody", "true"])
        .assert_code(125)
        .assert_stderr_contains("no container `nobody`");
    c.run(&["stop", "-t", "0", "e"]).assert_code(0);
    exec(&["e", "true"])
        .assert_code(125)
        .assert_stderr_contains("container `e` is not running");
    c.run(&["rm", "e"]).assert_code(0);
    // keep-id, without a holder: exec becomes root inside to set up, then the container's user (the
    // caller's own uid), or root with -u 0.
    c.run(&[
        "-d",
        "--name",
        "k",
        "--map",
        "keep-id",
        "--holder-idle",
        "0",
        "--rootfs",
        c.root(),
        "--",
        "sleep",
        "60",
    ])
    .assert_code(0);
    assert_eq!(
        exec(&["k", "id", "-u"]).stdout_text(),
        format!("{}\n", alice().uid)
    );
    assert_eq!(exec(&["-u", "0", "k", "id", "-u"]).stdout_text(), "0\n");
    c.run(&["rm", "-f", "k"]).assert_code(0);
    // Each network: the host's (not joined: it cannot be from inside), none, and pasta's.
    for net in ["host", "none", "pasta"] {
        c.run(&[
            "-d",
            "--name",
            net,
            "--net",
            net,
            "--rootfs",
            c.root(),
            "--",
            "sleep",
            "60",
        ])
        .assert_code(0);
        let command = c.pid(net, "command");
        let out = exec(&[net, "readlink", "/proc/self/ns/net"]);
        out.assert_code(0);
        assert_eq!(
            out.stdout_text().trim(),
            fs::read_link(format!("/proc/{command}/ns/net"))
                .unwrap()
                .to_str()
                .unwrap(),
            "{net}"
        );
        c.run(&["rm", "-f", net]).assert_code(0);
    }
}

/// What exec's command gets of capabilities, no_new_privs and the filter is what the container's
/// own command got, whatever the confinement options.
#[test]
#[ignore = "needs root: sudo tests/run"]
fn exec_gets_exactly_the_containers_confinement() {
    require_root();
    let c = Containers::new();
    let probe = "grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status";
    for (name, options) in [
        ("default", &[][..]),
        (
            "caps",
            &["--cap-add", "SYS_ADMIN", "--cap-drop", "CHOWN"][..],
        ),
        ("privileged", &["--privileged"][..]),
        ("nnp", &["--security-opt", "no-new-privileges"][..]),
        ("unconfined", &["--security-opt", "seccomp=unconfined"][..]),
    ] {
        let mut args = vec!["-d", "--name", name];
        args.extend_from_slice(options);
        let script = format!("{probe} > /tmp/status; exec sleep 60");
        args.extend_from_slice(&["--rootfs", c.root(), "--", "sh", "-c", &script]);
        c.run(&args).assert_code(0);
        let mut own = String::new();
        assert!(wait_for(Duration::from_secs(5), || {
            own = c.run(&["exec", name, "cat", "/tmp/status"]).stdout_text();
            own.contains("Seccomp")
        }));
        let out = c.run(&["exec", name, "sh", "-c", probe]);
        out.assert_code(0);
        assert_eq!(out.stdout_text(), own, "{name}");
        c.run(&["rm", "-f", name]).assert_code(0);
    }
    // A profile file edited after the start changes nothing: exec gets the filter as installed.
    let dir = user_dir(alice(), "lifecycle-profile");
    let profile = write_file(
        &dir,
        "deny-mkdir.json",
        br#"{"defaultAction": "SCMP_ACT_ALLOW",
             "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}"#,
    );
    let option = format!("seccomp={}", profile.display());
    c.run(&[
        "-d",
        "--name",
        "profiled",
        "--security-opt",
        &option,
        "--rootfs",
        c.root(),
        "--",
        "sleep",
        "60",
    ])
    .assert_code(0);
    fs::write(&profile, br#"{"defaultAction": "SCMP_ACT_ALLOW"}"#).unwrap();
    let script = "mkdir /tmp/d 2>/dev/null && echo made || echo refused";
    assert_eq!(
        c.run(&["exec", "profiled", "sh", "-c", script])
            .stdout_text(),
        "refused\n"
    );
    c.run(&["rm", "-f", "profiled"]).assert_code(0);
}

/// exec joins the container's own session keyring (what the container planted there it reads), never
/// the caller's; a container with `keyring=host` has none to join.
#[test]
#[ignore = "needs root: sudo tests/run"]
fn exec_joins_the_containers_session_keyring_and_not_the_callers() {
    require_root();
    let c = Containers::new();
    compile_into(&c.rootfs, alice(), "keyring-probe", KEYRING_PROBE);
    c.run(&[
        "-d",
        "--name",
        "keys",
        "--security-opt",
        "seccomp=unconfined",
        "--rootfs",
        c.root(),
        "--",
        "sh",
        "-c",
        "keyring-probe plant > /tmp/planted; exec sleep 60",
    ])
    .assert_code(0);
    assert!(wait_for(Duration::from_secs(5), || {
        c.run(&["exec", "keys", "cat", "/tmp/planted"])
            .stdout_text()
            == "plant=mine\n"
    }));
    let out = c.run(&["exec", "keys", "keyring-probe", "read-planted"]);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "read-planted=mine\n");
    // The caller's secret stays out, and what exec plants is the container's.
    let probe = c.rootfs.path().join("bin/keyring-probe");
    let runner = install().runner();
    let out = c.sandbox.run_as(
        alice(),
        &[
            probe.to_str().unwrap(),
            "host",
            "hush-42",
            "--",
            &runner,
            "exec",
            "keys",
            "keyring-probe",
            "read",
        ],
    );
    assert_eq!(
        out.stdout_text(),
        "read=ENOKEY\nhost-sees-planted=no\n",
        "{out:?}"
    );
    // Under the default filter exec's command cannot use the keyring at all, as the container's.
    c.run(&[
        "-d",
        "--name",
        "filtered",
        "--rootfs",
        c.root(),
        "--",
        "sleep",
        "60",
    ])
    .assert_code(0);
    let out = c.run(&["exec", "filtered", "keyring-probe", "read-planted"]);
    assert_eq!(out.stdout_text(), "read-planted=EPERM\n");
    c.run(&["rm", "-f", "keys", "filtered"]).assert_code(0);
}

/// exec -i passes stdin on byte for byte; exec -t gives the command a terminal of the container's
/// own also when the caller has none (no raw mode then).
#[test]
#[ignore = "needs root: sudo tests/run"]
fn exec_passes_stdin_with_i_and_gives_a_terminal_with_t() {
    require_root();
    let c = Containers::new();
    c.run(&[
        "-d",
        "--name",
        "io",
        "--rootfs",
        c.root(),
        "--",
        "sleep",
        "60",
    ])
    .assert_code(0);
    let input: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let file = c.data.path().join("input");
    fs::write(&file, &input).unwrap();
    let runner = install().runner();
    let script = format!("exec {runner} exec -i io cat < {}", file.display());
    let out = c.sandbox.run_as(alice(), &["sh", "-c", &script]);
    out.assert_code(0);
    assert!(
        out.stdout == input,
        "{} bytes back of {}",
        out.stdout.len(),
        input.len()
    );
    // Without -i, nothing of stdin reaches it.
    let script = format!("exec {runner} exec io cat < {}", file.display());
    let out = c.sandbox.run_as(alice(), &["sh", "-c", &script]);
    out.assert_code(0);
    assert!(out.stdout.is_empty());
    // -t: a terminal of the container's devpts, its controlling one; without -t, none.
    let out = c.run(&[
        "exec",
        "-t",
        "io",
        "sh",
        "-c",
        "tty; test -t 0 && echo tty-on-stdin",
    ]);
    out.assert_code(0);
    assert_eq!(
        out.stdout_text().replace('\r', ""),
        "/dev/pts/0\ntty-on-stdin\n"
    );
    let out = c.run(&["exec", "io", "tty"]);
    out.assert_code(1);
    assert_eq!(out.stdout_text(), "not a tty\n");
    c.run(&["exec", "-t", "io", "sh", "-c", "exit 5"])
        .assert_code(5);
    c.run(&["rm", "-f", "io"]).assert_code(0);
}

/// systemd as init needs a delegated cgroup v2 subtree, which unshare-run does not set up: asked for,
/// it is refused with 125 and a message that says so (--help says it too).
#[test]
#[ignore = "needs root: sudo tests/run"]
fn systemd_as_init_is_refused_with_what_it_needs() {
    require_root();
    let c = Containers::new();
    for args in [
        &["--rootfs", c.root(), "--", "/sbin/init"][..],
        &["--systemd", "always", "--rootfs", c.root(), "--", "true"][..],
        &[
            "-d",
            "--name",
            "sd",
            "--rootfs",
            c.root(),
            "--",
            "/usr/lib/systemd/systemd",
        ][..],
    ] {
        c.run(args)
            .assert_code(125)
            .assert_stderr_contains("needs a cgroup v2 subtree delegated to you");
    }
    assert!(c.ps(true).is_empty(), "{:?}", c.ps(true));
    // --systemd=false: any other command (busybox has no /sbin/init).
    c.run(&[
        "--systemd",
        "false",
        "--rootfs",
        c.root(),
        "--",
        "/sbin/init",
    ])
    .assert_code(127);
    let help = c.run(&["--help"]);
    assert!(
        help.stdout_text().contains("cgroup v2 subtree delegated"),
        "{}",
        help.stdout_text()
    );
}
