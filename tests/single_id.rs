//! The tier that needs no root: unshare-run run as whoever runs the tests, with single-id maps only
//! (`--map root`, `--map current`: unshare-run writes those itself, without the helpers or
//! /etc/subuid). Its root filesystem is a directory whose bin, sbin, lib and lib64 link into usr/,
//! where each start binds the host's /usr read-only, with an /etc/passwd and /etc/group of its own:
//! nothing beyond what a Debian machine with Rust has. Every test passes both as a normal user
//! (`cargo test`) and as root (tests/run).

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use unshare_run_test_support::*;

/// `unshare-run ARGS...` (the build under test) as the caller of the tests.
fn unshare_run_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(runner_binary());
    cmd.args(args)
        // The caller's trace setting must not add to the stderr the tests read.
        .env_remove("UNSHARE_RUN_LOG")
        .stdin(Stdio::null());
    cmd
}

fn unshare_run(args: &[&str]) -> Output {
    let mut cmd = unshare_run_command(args);
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// The caller's real uid and gid, which a single-id map maps.
fn caller() -> (u32, u32) {
    (
        nix::unistd::getuid().as_raw(),
        nix::unistd::getgid().as_raw(),
    )
}

/// What /proc/1/comm says in the container: PID 1 is unshare-run itself, named after its file.
fn init_comm() -> String {
    let name = runner_binary()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    name.chars().take(15).collect()
}

/// The home directory the root filesystem's /etc/passwd gives root (not the host's /root, nor the
/// runner's default for uid 0).
const ROOT_HOME: &str = "/home/admin";

/// A root filesystem made of the host's /usr (see the top of the file), owned by the caller; removed
/// when dropped.
struct UsrRoot(TempDir);

impl UsrRoot {
    fn new() -> UsrRoot {
        let dir = TempDir::new("usr-root");
        let root = dir.path();
        for sub in ["usr", "etc"] {
            fs::create_dir(root.join(sub)).unwrap();
        }
        for link in ["bin", "sbin", "lib", "lib64"] {
            std::os::unix::fs::symlink(format!("usr/{link}"), root.join(link)).unwrap();
        }
        fs::write(
            root.join("etc/passwd"),
            format!("root:x:0:0:root:{ROOT_HOME}:/bin/sh\n"),
        )
        .unwrap();
        fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
        UsrRoot(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    /// `unshare-run --map root --rootfs ROOT --ro-bind /usr:/usr OPTIONS -- COMMAND`.
    fn command(&self, options: &[&str], command: &[&str]) -> Command {
        let root = self.path().to_str().unwrap();
        let mut args = vec!["--map", "root", "--rootfs", root, "--ro-bind", "/usr:/usr"];
        args.extend_from_slice(options);
        args.push("--");
        args.extend_from_slice(command);
        unshare_run_command(&args)
    }

    fn run(&self, options: &[&str], command: &[&str]) -> Output {
        let mut cmd = self.command(options, command);
        cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
    }
}

#[test]
fn host_mode_maps_only_the_caller_and_denies_setgroups() {
    let (uid, gid) = caller();
    for (map, uid_inside, gid_inside) in [("root", 0, 0), ("current", uid, gid)] {
        let out = unshare_run(&[
            "--map",
            map,
            "--",
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; id -u; id -g",
        ]);
        out.assert_code(0);
        assert_eq!(
            normalise_map(&out.stdout_text()),
            format!("{uid_inside} {uid} 1\n{gid_inside} {gid} 1\ndeny\n{uid_inside}\n{gid_inside}"),
            "--map {map}"
        );
        // Asked for, a single-id map is no fallback: nothing to warn about.
        assert_eq!(out.stderr_text(), "", "--map {map}");
    }
}

#[test]
fn exit_statuses_are_the_commands_or_say_what_failed() {
    for (command, code, stderr) in [
        (&["true"][..], 0, ""),
        (&["sh", "-c", "exit 7"], 7, ""),
        (
            &["/etc/passwd"],
            126,
            "unshare-run: /etc/passwd: cannot execute: Permission denied\n",
        ),
        (
            &["no-such-command-xyz"],
            127,
            "unshare-run: no-such-command-xyz: command not found\n",
        ),
        // 128 + the signal that killed the command: SIGTERM 15, SIGKILL 9.
        (&["sh", "-c", "kill -TERM $$"], 143, ""),
        (&["sh", "-c", "kill -KILL $$"], 137, ""),
    ] {
        let mut args = vec!["--map", "root", "--"];
        args.extend_from_slice(command);
        let out = unshare_run(&args);
        out.assert_code(code);
        assert_eq!(out.stderr_text(), stderr, "{command:?}");
    }
    // unshare-run's own failures: 125, with a hint.
    unshare_run(&["--map", "root", "--rootfs", "/nonexistent", "--", "true"])
        .assert_code(125)
        .assert_stderr_contains(
            "unshare-run: root filesystem /nonexistent: no such file, directory or stored image\n  \
             hint: --rootfs takes a directory",
        );
    unshare_run(&["--map", "root", "--rootfs", "/", "--", "true"])
        .assert_code(125)
        .assert_stderr_contains(
            "  hint: leave out --rootfs to run on the host's filesystem (host mode)",
        );
    for map in ["root", "current"] {
        unshare_run(&["--map", map, "--user", "5", "--", "true"])
            .assert_code(125)
            .assert_stderr_contains(
                "unshare-run: uid 5 is not mapped in the container\n  \
                 hint: with a single-id map only your own id exists inside; use --map full",
            );
    }
    // Usage errors (an unknown option, a bad value, a missing one): 125 and clap's pointer to --help.
    // A misspelt option of the run is one too, not a command named after it.
    for (args, error) in [
        (
            &["images", "--bogus"][..],
            "error: unexpected argument '--bogus' found",
        ),
        (
            &["--hostnme", "x", "--", "true"],
            "error: unexpected argument '--hostnme' found",
        ),
        (
            &["--map", "half", "--", "true"],
            "error: invalid value 'half' for '--map <MODE>'",
        ),
        (
            &["--map", "root", "--user"],
            "error: a value is required for '--user <USER[:GROUP]>' but none was supplied",
        ),
    ] {
        unshare_run(args)
            .assert_code(125)
            .assert_stderr_contains(error)
            .assert_stderr_contains("For more information, try '--help'.");
    }
    let help = unshare_run(&["--help"]);
    help.assert_code(0);
    assert_eq!(help.stderr_text(), "");
    let text = help.stdout_text();
    assert!(
        text.contains("Usage: unshare-run [OPTIONS] [COMMAND]...") && text.contains("--map <MODE>"),
        "{text}"
    );
}

#[test]
fn proc_is_fresh_and_lists_only_the_container() {
    // The shell is PID 2 after unshare-run's init, and its glob (no process of its own) lists exactly
    // the two of them, in host mode as in a root filesystem.
    let script = ["sh", "-c", "echo $$; echo /proc/[0-9]*; cat /proc/1/comm"];
    let expected = format!("2\n/proc/1 /proc/2\n{}\n", init_comm());
    let mut host = vec!["--map", "root", "--"];
    host.extend_from_slice(&script);
    let out = unshare_run(&host);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), expected, "host mode");
    let root = UsrRoot::new();
    let out = root.run(&[], &script);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), expected, "root filesystem");
}

#[test]
fn hostname_and_net_none_with_only_loopback_up() {
    let root = UsrRoot::new();
    // /sys is the container's own sysfs with --net none; flags 0x9 = IFF_UP | IFF_LOOPBACK.
    let script = "uname -n; cat /proc/sys/kernel/hostname; \
        for i in /sys/class/net/*; do echo ${i##*/} $(cat $i/flags); done; \
        sed 1,2d /proc/net/dev | cut -d: -f1 | tr -d ' '";
    let out = root.run(
        &["--hostname", "box", "--net", "none"],
        &["sh", "-c", script],
    );
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "box\nbox\nlo 0x9\nlo\n");
}

#[test]
fn the_environment_starts_clean_in_a_root_filesystem_and_is_inherited_on_the_host() {
    let root = UsrRoot::new();
    let sorted_env = |out: &Output| {
        out.assert_code(0);
        let mut lines: Vec<String> = out.stdout_text().lines().map(String::from).collect();
        lines.sort();
        lines
    };
    let mut cmd = root.command(&["-e", "FOO=bar"], &["env"]);
    let out = cmd
        .env("TERM", "xterm-test")
        .env("LEAKED", "yes")
        .output()
        .unwrap();
    assert_eq!(
        sorted_env(&out),
        [
            "FOO=bar",
            &format!("HOME={ROOT_HOME}")[..],
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "TERM=xterm-test",
            "container=unshare-run",
        ]
    );
    // TERM only when the caller has one; -e replaces a variable.
    let mut cmd = root.command(&["-e", "PATH=/usr/bin"], &["env"]);
    let out = cmd.env_remove("TERM").output().unwrap();
    assert_eq!(
        sorted_env(&out),
        [
            &format!("HOME={ROOT_HOME}")[..],
            "PATH=/usr/bin",
            "container=unshare-run",
        ]
    );
    let mut cmd = unshare_run_command(&["--map", "root", "-e", "FOO=bar", "--", "env"]);
    let host = sorted_env(&cmd.env("LEAKED", "yes").output().unwrap());
    assert!(
        host.iter().any(|l| l == "LEAKED=yes") && host.iter().any(|l| l == "FOO=bar"),
        "{host:?}"
    );
}

#[test]
fn a_missing_working_directory_is_made_in_the_root_filesystem() {
    let root = UsrRoot::new();
    let out = root.run(&["-w", "/new/deep"], &["pwd"]);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "/new/deep\n");
    assert!(root.path().join("new/deep").is_dir());
    let out = root.run(&["-w", "/etc"], &["pwd"]);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "/etc\n");
}

#[test]
fn tmpfs_bind_and_ro_bind() {
    let root = UsrRoot::new();
    let rw = TempDir::new("bind-rw");
    let ro = TempDir::new("bind-ro");
    fs::write(ro.path().join("file"), "read-only content\n").unwrap();
    let bind_rw = format!("{}:/mnt/rw", rw.path().display());
    let bind_ro = format!("{}:/mnt/ro", ro.path().display());
    // The first mount option of /usr and /mnt/ro as the container's mountinfo lists them: read-only.
    // (No awk: Debian's is a link in /etc/alternatives, which this root filesystem lacks.)
    let script = "stat -f -c %T /scratch; touch /scratch/a && echo tmpfs-ok; \
        echo hi > /mnt/rw/f && echo rw-ok; cat /mnt/ro/file; \
        touch /mnt/ro/new 2>&1 || echo ro-refused; \
        cut -d ' ' -f 5,6 /proc/self/mountinfo | grep -E '^/(usr|mnt/ro) ' | sed 's/,.*//'";
    let out = root.run(
        &[
            "--tmpfs",
            "/scratch",
            "--bind",
            &bind_rw,
            "--ro-bind",
            &bind_ro,
        ],
        &["sh", "-c", script],
    );
    out.assert_code(0);
    assert_eq!(
        out.stdout_text(),
        "tmpfs\ntmpfs-ok\nrw-ok\nread-only content\n\
         touch: cannot touch '/mnt/ro/new': Read-only file system\nro-refused\n/usr ro\n/mnt/ro ro\n"
    );
    assert_eq!(fs::read_to_string(rw.path().join("f")).unwrap(), "hi\n");
    assert!(!ro.path().join("new").exists());
    // The tmpfs's mount point was made in the root filesystem; what was written went to the tmpfs.
    let scratch: Vec<_> = fs::read_dir(root.path().join("scratch")).unwrap().collect();
    assert!(scratch.is_empty(), "{scratch:?}");
}

#[test]
fn read_only_keeps_the_root_filesystem_unchanged_but_tmp_writable() {
    let root = UsrRoot::new();
    let out = root.run(
        &["--read-only"],
        &["sh", "-c", "touch /new 2>&1; touch /tmp/t && echo tmp-ok"],
    );
    out.assert_code(0);
    assert_eq!(
        out.stdout_text(),
        "touch: cannot touch '/new': Read-only file system\ntmp-ok\n"
    );
    assert!(!root.path().join("new").exists());
}

#[test]
fn a_mount_point_that_is_a_dangling_link_is_a_set_up_error() {
    let root = UsrRoot::new();
    std::os::unix::fs::symlink("nowhere", root.path().join("proc")).unwrap();
    let out = root.run(&[], &["true"]);
    out.assert_code(125);
    assert_eq!(
        out.stderr_text(),
        format!(
            "unshare-run: cannot make the mount point /proc: {}/proc is a symbolic link to nothing \
             in the root filesystem\n",
            root.path().display()
        )
    );
    assert!(!root.path().join("nowhere").exists());
}
