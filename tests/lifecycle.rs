//! Named containers (issue 17, first slice): `--name` claims a name, `ps` and `ps -a` show the
//! container running and then how it ended, `rm` removes its record, `--rm` leaves none, and
//! `images rm` refuses an image a named container is built on. The test user has the full map and
//! a data directory of its own (XDG_DATA_HOME): the store and the containers' records.

use std::fs;
use std::os::unix::process::CommandExt;
use std::process::{Output, Stdio};
use std::time::Duration;

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
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_running_container_is_up_and_shows_exited_once_its_process_is_killed() {
    require_root();
    let c = Containers::new();
    let dir = TempDir::new("lifecycle-running");
    let runner = install().runner();
    let mut running = c
        .sandbox
        .command_as(
            alice(),
            &[
                &runner,
                "--name",
                "long",
                "--rootfs",
                c.root(),
                "--",
                "sleep",
                "60",
            ],
            &dir,
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
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
    c.run(&["--name", "user", "--rootfs", "small", "--", "true"])
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
    c.run(&["images", "rm", "small"]).assert_code(0);
}
