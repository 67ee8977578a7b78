//! unshare-run as an unprivileged test user: maps, exit statuses, signals, init duties, fallbacks and
//! a busybox root filesystem.

use std::io::BufRead;
use std::process::Command;
use std::time::Duration;

use unshare_run_test_support::*;

fn ranges() -> Sandbox {
    let a = alice();
    Sandbox::both(&[
        &format!("{}:400000:65536", bob().name),
        &format!("{}:100000:65536", a.name),
        &format!("{}:300000:1000", a.name),
    ])
}

fn runner() -> String {
    install().runner()
}

/// `unshare-run ARGS...` as alice, with her ranges from `ranges()`.
fn as_alice(args: &[&str]) -> std::process::Output {
    let runner = runner();
    let mut argv = vec![runner.as_str()];
    argv.extend_from_slice(args);
    ranges().run_as(alice(), &argv)
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn host_mode_maps_every_range_after_the_caller() {
    require_root();
    let a = alice();
    let out = as_alice(&[
        "--",
        "cat",
        "/proc/self/uid_map",
        "/proc/self/gid_map",
        "/proc/self/setgroups",
    ]);
    out.assert_code(0);
    assert_eq!(
        normalise_map(&out.stdout_text()),
        format!(
            "0 {} 1\n1 100000 65536\n65537 300000 1000\n0 {} 1\n1 100000 65536\n65537 300000 1000\nallow",
            a.uid, a.gid
        )
    );
    assert_eq!(out.stderr_text(), "");
}

/// A user that only an NSS source knows, as with LDAP or sssd (here libnss-extrausers, configured only
/// in the sandbox's /etc): the runner must still find the ranges listed under the name. A runner
/// linked against musl finds the name only through `getent`.
#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_caller_known_only_to_nss_gets_the_ranges_listed_under_its_name() {
    require_root();
    let user = TestUser {
        name: "urt-nss-only",
        uid: 4321,
        gid: 4321,
    };
    let mut sandbox = Sandbox::both(&["urt-nss-only:500000:65536"]);
    sandbox.setup = "mount -t tmpfs -o mode=755 tmpfs /var/lib/extrausers\n\
        echo 'urt-nss-only:x:4321:4321::/tmp:/bin/sh' > /var/lib/extrausers/passwd\n\
        echo 'urt-nss-only:x:4321:' > /var/lib/extrausers/group\n\
        sed -i 's/^passwd:.*/passwd: files extrausers/; s/^group:.*/group: files extrausers/' \
        /etc/nsswitch.conf\n\
        ! grep -q '^urt-nss-only:' /etc/passwd"
        .into();
    let runner = runner();
    let out = sandbox.run_as(
        &user,
        &[
            &runner,
            "--holder-idle",
            "0",
            "--map",
            "full",
            "--",
            "cat",
            "/proc/self/uid_map",
        ],
    );
    out.assert_code(0);
    assert_eq!(
        normalise_map(&out.stdout_text()),
        "0 4321 1\n1 500000 65536"
    );
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn exit_statuses() {
    require_root();
    for (args, code, message) in [
        (&["true"][..], 0, ""),
        (&["sh", "-c", "exit 7"], 7, ""),
        (&["/etc/passwd"], 126, "/etc/passwd: cannot execute"),
        (
            &["no-such-command-xyz"],
            127,
            "no-such-command-xyz: command not found",
        ),
        (&["sh", "-c", "kill -TERM $$"], 143, ""),
        (&["sh", "-c", "kill -KILL $$"], 137, ""),
    ] {
        let mut argv = vec!["--"];
        argv.extend_from_slice(args);
        let out = as_alice(&argv);
        out.assert_code(code).assert_stderr_contains(message);
        // Only a noexec mount gets that hint (/etc/passwd is merely not executable).
        assert!(
            !out.stderr_text().contains("noexec"),
            "{}",
            out.stderr_text()
        );
    }
    as_alice(&["--rootfs", "/nonexistent", "--", "true"])
        .assert_code(125)
        .assert_stderr_contains("root filesystem /nonexistent");
    as_alice(&["--map", "half", "--", "true"]).assert_code(125);
    as_alice(&["--rootfs", "/", "--", "true"])
        .assert_code(125)
        .assert_stderr_contains("leave out --rootfs to run on the host's filesystem");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn sigterm_sent_to_unshare_run_reaches_the_command() {
    require_root();
    let dir = TempDir::new("sigterm");
    let script = "trap 'echo got TERM; exit 3' TERM; echo ready; while :; do sleep 0.05; done";
    let (mut child, mut out) = start_runner(&ranges(), &["--", "sh", "-c", script], &dir);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "got TERM\n");
    assert_eq!(child.0.wait().unwrap().code(), Some(3));
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn orphaned_grandchildren_are_reaped() {
    require_root();
    // The subshell exits at once, so its `sleep` is re-parented to PID 1, which must reap it.
    let script = "(sleep 0.2 &); sleep 1; ps -eo stat=,comm=";
    let out = as_alice(&["--", "sh", "-c", script]);
    out.assert_code(0);
    let ps = out.stdout_text();
    assert!(
        !ps.lines().any(|l| l.trim_start().starts_with('Z')),
        "zombie left:\n{ps}"
    );
    assert!(ps.contains("unshare-run"), "PID 1 missing from:\n{ps}");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn nothing_of_the_container_is_left_when_unshare_run_returns() {
    require_root();
    use std::os::fd::AsFd;
    // A process left behind keeps the caller's stdout open, and takes a while to die (512 MiB of
    // memory to free). When unshare-run returns it must be gone, and PID 1 must hold no copy of the
    // pipe either, so that the pipe's reader sees the end at once.
    let dir = TempDir::new("leftovers");
    let daemon = "import time; memory = b'x' * (512 << 20); open('/tmp/ready', 'w').write('x'); \
                  time.sleep(4244)";
    let script =
        format!("mkfifo /tmp/ready; python3 -c \"{daemon}\" & read x < /tmp/ready; exit 3");
    for _ in 0..3 {
        let runner = runner();
        let argv = [&runner, "--tmpfs", "/tmp", "--", "sh", "-c", &script];
        let mut child = ranges()
            .command_as(alice(), &argv, &dir)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        assert_eq!(child.wait().unwrap().code(), Some(3));
        let mut fds = [nix::poll::PollFd::new(
            stdout.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).unwrap();
        let hung_up = fds[0]
            .revents()
            .unwrap()
            .contains(nix::poll::PollFlags::POLLHUP);
        assert!(hung_up, "a process of the container still holds stdout");
    }
    assert!(!processes_of(alice(), "time.sleep.4244"));
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_root_filesystem_we_cannot_write_gets_its_mount_points_from_ephemeral() {
    require_root();
    // Owned by root (the test process), without /proc, /dev, /sys or /tmp: unshare-run may not
    // create them there, and says what to do.
    let dir = TempDir::new("foreign-root");
    let root = dir.path();
    std::fs::create_dir(root.join("bin")).unwrap();
    std::fs::copy(busybox(), root.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    let rootfs = root.to_str().unwrap();
    let out = as_alice(&["--rootfs", rootfs, "--", "sh", "-c", "true"]);
    out.assert_code(125);
    let err = out.stderr_text();
    assert!(
        err.contains("/proc: Permission denied") && err.contains("add --ephemeral"),
        "{err}"
    );
    let argv = [
        &runner(),
        "--rootfs",
        rootfs,
        "--ephemeral",
        "--",
        "sh",
        "-c",
        "echo ok",
    ];
    let out = ranges().run_as(alice(), &argv);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "ok\n");
    assert!(!root.join("proc").exists());
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn links_in_a_root_filesystem_cannot_lead_mount_points_out_of_it() {
    require_root();
    // An image's links to host directories that alice can write: unshare-run must neither make
    // mount points there (nor the resolver files it binds) nor mount there; inside the root
    // filesystem the same links lead to what the container sees.
    let outside = user_dir(alice(), "outside");
    let dir = user_dir(alice(), "linked-root");
    let root = dir.path();
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("data")).unwrap();
    std::fs::copy(busybox(), root.join("bin/busybox")).unwrap();
    for applet in ["sh", "ls"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::os::unix::fs::symlink(outside.path(), root.join("out")).unwrap();
    std::os::unix::fs::symlink(outside.path(), root.join("etc")).unwrap();
    std::os::unix::fs::symlink("/data", root.join("in")).unwrap();
    run_ok(
        Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", alice().uid, alice().gid))
            .arg(root),
    );
    let rootfs = root.to_str().unwrap();
    let out = as_alice(&["--rootfs", rootfs, "--tmpfs", "/out/t", "--", "true"]);
    out.assert_code(125)
        .assert_stderr_contains("is a symbolic link to nothing");
    let argv = [
        &runner(),
        "--rootfs",
        rootfs,
        "--tmpfs",
        "/in/t",
        "--bind",
        "/usr/share:/in/share",
        "--",
        "ls",
        "-d",
        "/data/t",
        "/data/share/doc",
    ];
    let out = ranges().run_as(alice(), &argv);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "/data/share/doc\n/data/t\n");
    let made: Vec<_> = std::fs::read_dir(outside.path())
        .unwrap()
        .flatten()
        .collect();
    assert!(
        made.is_empty(),
        "made outside the root filesystem: {made:?}"
    );
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn sigkill_of_unshare_run_kills_the_whole_container() {
    require_root();
    let host_mounts = || std::fs::read_to_string("/proc/1/mountinfo").unwrap();
    let before = host_mounts();
    let dir = TempDir::new("sigkill");
    let root = busybox_rootfs(alice());
    let script = "sleep 4243 & echo ready; exec sleep 4242";
    let rootfs = root.path().to_str().unwrap();
    let (mut child, _out) = start_runner(
        &ranges(),
        &[
            "--rootfs", rootfs, "--tmpfs", "/scratch", "--", "sh", "-c", script,
        ],
        &dir,
    );
    assert!(wait_for(Duration::from_secs(5), || processes_of(
        alice(),
        "sleep 4242"
    )));
    assert!(processes_of(alice(), "sleep 4243"));
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    assert!(
        wait_for(Duration::from_secs(1), || !processes_of(
            alice(),
            "sleep 424[23]"
        )),
        "container processes survived SIGKILL of unshare-run"
    );
    assert_eq!(
        host_mounts(),
        before,
        "the container left mounts in the host's mount namespace"
    );
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn without_ranges_auto_warns_and_full_explains() {
    require_root();
    let none = Sandbox::new(Fixture::Missing, Fixture::Missing);
    let a = alice();
    let out = none.run_as(a, &[&runner(), "--", "cat", "/proc/self/uid_map"]);
    out.assert_code(0)
        .assert_stderr_contains("warning: only your own id is mapped")
        .assert_stderr_contains("usermod --add-subuids");
    assert_eq!(normalise_map(&out.stdout_text()), format!("0 {} 1", a.uid));
    assert_eq!(
        out.stderr_text()
            .lines()
            .filter(|l| l.contains("warning"))
            .count(),
        1
    );
    none.run_as(a, &[&runner(), "--map", "full", "--", "true"])
        .assert_code(125)
        .assert_stderr_contains("cannot set up the full id map")
        .assert_stderr_contains(&format!(
            "{} has no subordinate ranges in /etc/subuid",
            a.name
        ));
    // Single maps on request, even with ranges.
    let out = as_alice(&[
        "--map",
        "current",
        "--",
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map",
    ]);
    out.assert_code(0);
    assert_eq!(
        normalise_map(&out.stdout_text()),
        format!("{0}\n{0} {0} 1", a.uid)
    );
    as_alice(&["--map", "root", "--user", "5", "--", "true"])
        .assert_code(125)
        .assert_stderr_contains("uid 5 is not mapped");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn root_maps_itself_and_with_ranges_gets_the_full_map() {
    require_root();
    // Mapping uid 0 needs CAP_SETFCAP (Linux 5.12 and later): the capabilities root had are kept.
    let root = TestUser {
        name: "root",
        uid: 0,
        gid: 0,
    };
    let out = Sandbox::new(Fixture::Missing, Fixture::Missing).run_as(
        &root,
        &[
            &runner(),
            "--",
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map",
        ],
    );
    out.assert_code(0)
        .assert_stderr_contains("warning: only your own id is mapped")
        .assert_stderr_contains("fix: run: usermod --add-subuids");
    assert_eq!(normalise_map(&out.stdout_text()), "0 0 1\n0 0 1");
    // With ranges of its own, root gets them through the helpers like anyone else.
    let out = Sandbox::both(&["root:200000:65536"]).run_as(
        &root,
        &[
            &runner(),
            "--holder-idle",
            "0",
            "--",
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map",
        ],
    );
    out.assert_code(0);
    assert_eq!(
        normalise_map(&out.stdout_text()),
        "0 0 1\n1 200000 65536\n0 0 1\n1 200000 65536"
    );
    assert_eq!(out.stderr_text(), "");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn helpers_without_privilege_are_reported() {
    require_root();
    // A runner whose neighbouring helpers lost their setuid bit: they are found first and refused.
    let dir = TempDir::new("unprivileged-helpers");
    for applet in ["unshare-run", "newuidmap", "newgidmap"] {
        let dest = dir.path().join(applet);
        std::fs::copy(built_binary(), &dest).unwrap();
        std::fs::set_permissions(&dest, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    let r = dir.path().join("unshare-run");
    let r = r.to_str().unwrap();
    ranges()
        .run_as(alice(), &[r, "--", "true"])
        .assert_code(0)
        .assert_stderr_contains("is neither setuid root nor has the file capability it needs")
        .assert_stderr_contains("chmod 4755");
    ranges()
        .run_as(alice(), &[r, "--map", "full", "--", "true"])
        .assert_code(125)
        .assert_stderr_contains("is neither setuid root");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn read_only_keeps_the_root_filesystem_unchanged_and_the_scratch_mounts_writable() {
    require_root();
    let a = alice();
    let root = busybox_rootfs(a);
    let rw = TempDir::new("read-only-bind");
    give_to(a, rw.path());
    let bind = format!("{}:/mnt/rw", rw.path().display());
    let script = "touch /new 2>&1; touch /data/new 2>/dev/null || echo data-refused; \
        touch /tmp/t && touch /dev/shm/s && touch /mnt/rw/f && echo scratch-ok";
    let out = as_alice(&[
        "--read-only",
        "--bind",
        &bind,
        "--rootfs",
        root.path().to_str().unwrap(),
        "--",
        "sh",
        "-c",
        script,
    ]);
    out.assert_code(0);
    assert_eq!(
        out.stdout_text(),
        "touch: /new: Read-only file system\ndata-refused\nscratch-ok\n"
    );
    assert!(!root.path().join("new").exists());
    assert!(!root.path().join("data/new").exists());
    assert!(rw.path().join("f").exists());
    // Writes either go nowhere or to a layer: not both.
    as_alice(&[
        "--read-only",
        "--ephemeral",
        "--rootfs",
        root.path().to_str().unwrap(),
        "--",
        "true",
    ])
    .assert_code(125)
    .assert_stderr_contains("'--read-only' cannot be used with '--ephemeral'");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_missing_working_directory_is_made_in_a_root_filesystem_but_not_on_the_host() {
    require_root();
    let a = alice();
    let root = busybox_rootfs(a);
    let rootfs = root.path().to_str().unwrap();
    let out = as_alice(&["-w", "/new/deep", "--rootfs", rootfs, "--", "pwd"]);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "/new/deep\n");
    assert!(root.path().join("new/deep").is_dir());
    as_alice(&[
        "--read-only",
        "-w",
        "/other",
        "--rootfs",
        rootfs,
        "--",
        "pwd",
    ])
    .assert_code(125)
    .assert_stderr_contains("cannot make the working directory /other: Read-only file system");
    let host_dir = "/urt-no-such-working-directory";
    as_alice(&["-w", host_dir, "--", "pwd"])
        .assert_code(125)
        .assert_stderr_contains("cannot change to the working directory");
    assert!(!std::path::Path::new(host_dir).exists());
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_directory_bound_at_tmp_keeps_its_mode_on_the_host() {
    require_root();
    use std::os::unix::fs::PermissionsExt;
    let a = alice();
    let root = busybox_rootfs(a);
    let private = TempDir::new("private-tmp");
    give_to(a, private.path());
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let bind = format!("{}:/tmp", private.path().display());
    let rootfs = root.path().to_str().unwrap();
    let out = as_alice(&[
        "--bind", &bind, "--rootfs", rootfs, "--", "stat", "-c", "%a", "/tmp",
    ]);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "700\n");
    let mode = std::fs::metadata(private.path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o700, "the host's directory was changed");
    // A tmpfs of the container's own at /tmp is 1777, as /tmp must be; others 0755.
    let out = as_alice(&[
        "--tmpfs", "/tmp", "--tmpfs", "/scratch", "--rootfs", rootfs, "--", "stat", "-c", "%a",
        "/tmp", "/scratch",
    ]);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "1777\n755\n");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_root_filesystem_on_a_noexec_mount_is_explained() {
    require_root();
    let a = alice();
    let root = busybox_rootfs(a);
    let mount = TempDir::new("noexec");
    // In the sandbox's private mount namespace: a noexec tmpfs holding a copy of the rootfs.
    let mut sandbox = ranges();
    sandbox.setup = format!(
        "mount -t tmpfs -o noexec,mode=0755 tmpfs {m}\ncp -a {r} {m}/root",
        m = mount.path().display(),
        r = root.path().display()
    );
    let copy = mount.path().join("root");
    sandbox
        .run_as(
            a,
            &[&runner(), "--rootfs", copy.to_str().unwrap(), "--", "true"],
        )
        .assert_code(126)
        .assert_stderr_contains("true: cannot execute: Permission denied")
        .assert_stderr_contains("hint: it is on a file system mounted noexec");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn unshare_run_log_traces_the_start_and_nothing_is_logged_without_it() {
    require_root();
    let a = alice();
    let root = busybox_rootfs(a);
    let rootfs = root.path().to_str().unwrap();
    let runner = runner();
    let argv = |log: &'static str| {
        // `env -u`: the variable of whoever runs the tests must not decide the quiet case; RUST_LOG
        // (a Rust command's own) must not turn the trace on.
        let mut argv = vec!["env", "-u", "UNSHARE_RUN_LOG", "RUST_LOG=debug"];
        if !log.is_empty() {
            argv.push(log);
        }
        argv.extend([
            runner.as_str(),
            "--rootfs",
            rootfs,
            "--",
            "sh",
            "-c",
            "exit 3",
        ]);
        argv
    };
    let quiet = ranges().run_as(a, &argv(""));
    quiet.assert_code(3);
    assert_eq!(quiet.stderr_text(), "");
    let traced = ranges().run_as(a, &argv("UNSHARE_RUN_LOG=debug"));
    traced.assert_code(3);
    let trace = traced.stderr_text();
    for expected in [
        "debug: id map: Full {",
        "debug: clone into new namespaces",
        // PID 1 says so with its own pid.
        "unshare-run[1]: debug: mount proc on ",
        "unshare-run[1]: debug: pivot_root into ",
        "unshare-run[1]: debug: command [\"sh\", \"-c\", \"exit 3\"] as uid 0 gid 0",
        "unshare-run[1]: debug: the command ended: exit status 3",
    ] {
        assert!(
            trace.contains(expected),
            "{expected:?} missing in:\n{trace}"
        );
    }
    assert!(
        trace.lines().all(|l| l.starts_with("unshare-run[")),
        "{trace}"
    );
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn busybox_rootfs_mounts_ids_and_options() {
    require_root();
    let a = alice();
    let root = busybox_rootfs(a);
    let rw = TempDir::new("bind-rw");
    let ro = TempDir::new("bind-ro");
    for d in [&rw, &ro] {
        give_to(a, d.path());
    }
    std::fs::write(ro.path().join("file"), "read-only content\n").unwrap();
    let rootfs = root.path().to_str().unwrap();
    let bind_rw = format!("{}:/mnt/rw", rw.path().display());
    let bind_ro = format!("{}:/mnt/ro", ro.path().display());
    let script = "hostname; pwd; echo FOO=$FOO; echo container=$container; echo HOME=$HOME; \
        touch /scratch/a && echo tmpfs-ok; echo hi > /mnt/rw/f && echo rw-ok; cat /mnt/ro/file; \
        touch /mnt/ro/new 2>/dev/null || echo ro-refused; stat -c %a /tmp /dev/shm; \
        test -c /dev/null && test -L /dev/ptmx && test -d /dev/pts && echo dev-ok; \
        touch /tmp/x && chown 1000:1000 /tmp/x && stat -c %u:%g /tmp/x; readlink /proc/1/exe >/dev/null; \
        echo pid=$$; test -e /old_root || echo old-root-gone";
    let out = as_alice(&[
        "--rootfs",
        rootfs,
        "--hostname",
        "box",
        "-w",
        "/data",
        "-e",
        "FOO=bar",
        "--tmpfs",
        "/scratch",
        "--bind",
        &bind_rw,
        "--ro-bind",
        &bind_ro,
        "--",
        "sh",
        "-c",
        script,
    ]);
    out.assert_code(0);
    assert_eq!(
        out.stdout_text(),
        "box\n/data\nFOO=bar\ncontainer=unshare-run\nHOME=/root\ntmpfs-ok\nrw-ok\nread-only content\n\
         ro-refused\n1777\n1777\ndev-ok\n1000:1000\npid=2\nold-root-gone\n"
    );
    assert_eq!(
        std::fs::read_to_string(rw.path().join("f")).unwrap(),
        "hi\n"
    );
    assert!(!ro.path().join("new").exists());
    // The environment starts clean: nothing of the caller's leaks in.
    let mut sandbox = ranges();
    sandbox.env.push(("LEAKED".into(), "yes".into()));
    let out = sandbox.run_as(a, &[&runner(), "--rootfs", rootfs, "--", "env"]);
    out.assert_code(0);
    assert!(
        !out.stdout_text().contains("LEAKED"),
        "{}",
        out.stdout_text()
    );
    // Host mode inherits it.
    let out = sandbox.run_as(a, &[&runner(), "--", "env"]);
    assert!(out.stdout_text().contains("LEAKED=yes"));
    // --user, with and without a group; the home directory comes from the rootfs's passwd.
    let out = as_alice(&[
        "--rootfs",
        rootfs,
        "--user",
        "1000",
        "--",
        "sh",
        "-c",
        "id -u; id -g; echo $HOME",
    ]);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "1000\n1000\n/home/user\n");
    let out = as_alice(&[
        "--rootfs",
        rootfs,
        "-u",
        "65534:5",
        "--",
        "sh",
        "-c",
        "id -u; id -g",
    ]);
    assert_eq!(out.stdout_text(), "65534\n5\n");
    // Names, from the rootfs's /etc/passwd and /etc/group (not the host's).
    let as_user = |user: &str| {
        let argv = [
            &runner(),
            "--rootfs",
            rootfs,
            "-u",
            user,
            "--",
            "sh",
            "-c",
            "id -u; id -g",
        ];
        ranges().run_as(a, &argv)
    };
    assert_eq!(as_user("user").stdout_text(), "1000\n1000\n");
    assert_eq!(as_user("nobody:root").stdout_text(), "65534\n0\n");
    let unknown = as_user("urt-no-such-user");
    unknown.assert_code(125);
    assert!(
        unknown
            .stderr_text()
            .contains("user `urt-no-such-user` is not in"),
        "{}",
        unknown.stderr_text()
    );
    // The rootfs's /bin/not-executable exists without an x bit.
    as_alice(&["--rootfs", rootfs, "--", "/bin/not-executable"]).assert_code(126);
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn net_none_has_only_loopback_up() {
    require_root();
    let root = busybox_rootfs(alice());
    let out = as_alice(&[
        "--rootfs",
        root.path().to_str().unwrap(),
        "--net",
        "none",
        "--",
        "ip",
        "-o",
        "link",
    ]);
    out.assert_code(0);
    let links = out.stdout_text();
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(links.contains("lo:") && links.contains("UP"), "{links}");
    // Nothing outside is reachable, and trying fails at once rather than timing out.
    let started = std::time::Instant::now();
    let out = as_alice(&[
        "--rootfs",
        root.path().to_str().unwrap(),
        "--net",
        "none",
        "--",
        "wget",
        "-q",
        "-T",
        "20",
        "-O",
        "/dev/null",
        "http://deb.debian.org/",
    ]);
    assert_ne!(out.code(), 0, "the mirror was reachable without a network");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn commands_get_the_callers_signal_dispositions() {
    require_root();
    // Rust's runtime ignores SIGPIPE; a command must not inherit that (yes | head would complain), nor
    // anything else the caller did not ignore, nor lose what it did: the test harness's children
    // start with glibc's internal signals 32 and 33 ignored, and a thread in unshare-run would give 33
    // a handler. Three starts: the one that makes a holder (a range of this test's own, so no holder
    // exists yet), one that joins it, one without holders.
    let r = runner();
    let check = "yes | head -1; grep SigIgn /proc/self/status";
    let script = format!(
        "grep SigIgn /proc/self/status; {r} --holder-idle 5 -- sh -c '{check}'; \
         {r} --holder-idle 5 -- sh -c '{check}'; {r} --holder-idle 0 -- sh -c '{check}'"
    );
    let out = Sandbox::both(&[&format!("{}:710000:65536", alice().name)])
        .run_as(alice(), &["sh", "-c", &script]);
    out.assert_code(0);
    let stdout = out.stdout_text();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 7, "{stdout}");
    for run in 0..3 {
        assert_eq!(lines[1 + 2 * run], "y");
        assert_eq!(
            lines[0],
            lines[2 + 2 * run],
            "signal dispositions changed in start {run}: {stdout}"
        );
    }
    assert_eq!(out.stderr_text(), "");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn signals_the_caller_ignored_stay_ignored() {
    require_root();
    // As under nohup (SIGHUP) or as a background job of a non-interactive shell (SIGINT, SIGQUIT).
    let r = runner();
    let script = format!(
        "trap '' HUP INT QUIT; grep SigIgn /proc/self/status; {r} -- grep SigIgn /proc/self/status"
    );
    let out = ranges().run_as(alice(), &["sh", "-c", &script]);
    out.assert_code(0);
    let stdout = out.stdout_text();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0], lines[1], "ignored signals were reset: {stdout}");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn without_pivot_root_the_root_is_moved_and_chrooted_into() {
    require_root();
    // pivot_root fails when the current root is not a mount point: here, a chroot into a plain
    // directory. A chrooted process may not create a user namespace, but it may join one, so a holder
    // made outside first lets the container start; PID 1 then takes the MS_MOVE + chroot way.
    let a = alice();
    let fixture = format!("{}:720000:65536", a.name);
    Sandbox::both(&[&fixture])
        .run_as(a, &[&runner(), "--holder-idle", "20", "--", "true"])
        .assert_code(0);
    let chroot = TempDir::new("chroot");
    let inner = chroot.path().join("inner");
    std::fs::create_dir(&inner).unwrap();
    let rootfs = busybox_rootfs(a);
    let mut sandbox = Sandbox::both(&[&fixture]);
    sandbox.setup = format!(
        "cd {inner}\n\
         for d in usr etc tmp proc dev sys; do mkdir -p $d; mount --rbind /$d $d; done\n\
         for l in bin lib lib64 sbin; do ln -s usr/$l $l; done\n\
         exec chroot . setpriv --reuid={uid} --regid={gid} --clear-groups -- \"$@\"",
        inner = inner.display(),
        uid = a.uid,
        gid = a.gid
    );
    let out = sandbox.run_as(
        a,
        &[
            &runner(),
            "--holder-idle",
            "20",
            "--rootfs",
            rootfs.path().to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "cat /proc/self/uid_map; test -e /usr/bin/apt-get || echo host-hidden; echo ok > /tmp/f; cat /tmp/f",
        ],
    );
    out.assert_code(0);
    assert_eq!(
        normalise_map(
            &out.stdout_text()
                .lines()
                .take(2)
                .collect::<Vec<_>>()
                .join("\n")
        ),
        normalise_map(&format!("0 {} 1\n1 720000 65536", a.uid))
    );
    assert!(
        out.stdout_text().ends_with("host-hidden\nok\n"),
        "{}",
        out.stdout_text()
    );
}
