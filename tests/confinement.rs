//! What a --rootfs container keeps of the host (issue 15): the caller's descriptors, PID 1's.

use std::io::BufRead;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use unshare_run_test_support::*;

fn sandbox() -> Sandbox {
    Sandbox::both(&[&format!("{}:100000:65536", alice().name)])
}

/// Files in `dir` that alice may read, named after and holding "content-N".
fn numbered_files(dir: &TempDir, numbers: &[u32]) -> Vec<String> {
    numbers
        .iter()
        .map(|n| {
            let path = write_file(
                dir,
                &format!("file{n}"),
                format!("content-{n}\n").as_bytes(),
            );
            give_to(alice(), &path);
            path.to_str().unwrap().to_string()
        })
        .collect()
}

/// Runs, as alice, a shell that opens descriptor N on `files[i]` for each N of `numbers`, then `exec`s
/// `runner_line` (a shell word list; the runner's path is prepended).
fn with_descriptors(
    numbers: &[u32],
    runner_line: &str,
    env: &str,
) -> (std::process::Output, TempDir) {
    let dir = user_dir(alice(), "confinement-fds");
    let files = numbered_files(&dir, numbers);
    let redirections: Vec<String> = numbers
        .iter()
        .zip(&files)
        .map(|(n, f)| format!("{n}<{f}"))
        .collect();
    let script = format!(
        "exec {}; {env} exec {} {runner_line}",
        redirections.join(" "),
        install().runner()
    );
    let out = sandbox().run_as(alice(), &["sh", "-c", &script]);
    (out, dir)
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn listed(out: &std::process::Output) -> Vec<String> {
    stdout(out).split_whitespace().map(String::from).collect()
}

/// `unshare-run --rootfs R OPTIONS -- COMMAND` as alice in `sandbox`, R a fresh busybox root
/// filesystem.
fn rootfs_run_in(sandbox: &Sandbox, options: &[&str], command: &[&str]) -> std::process::Output {
    let root = busybox_rootfs(alice());
    let runner = install().runner();
    let mut argv = vec![runner.as_str(), "--rootfs", root.path().to_str().unwrap()];
    argv.extend_from_slice(options);
    argv.push("--");
    argv.extend_from_slice(command);
    sandbox.run_as(alice(), &argv)
}

fn rootfs_run(options: &[&str], command: &[&str]) -> std::process::Output {
    rootfs_run_in(&sandbox(), options, command)
}

/// Runs `script` with sh in a --rootfs container started with `options`; its stdout.
fn in_container(options: &[&str], script: &str) -> String {
    let out = rootfs_run(options, &["sh", "-c", script]);
    assert!(out.status.success(), "{options:?}: {out:?}");
    stdout(&out)
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn only_the_standard_descriptors_reach_a_rootfs_container() {
    require_root();
    let root = busybox_rootfs(alice());
    let line = format!("--rootfs {} -- ls /proc/self/fd", root.path().display());
    let (out, _dir) = with_descriptors(&[4, 5, 9], &line, "");
    assert!(out.status.success(), "{out:?}");
    // 3 is ls's own (the directory it reads).
    assert_eq!(listed(&out), ["0", "1", "2", "3"], "{out:?}");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn preserve_fds_passes_exactly_the_first_n() {
    require_root();
    let root = busybox_rootfs(alice());
    let line = format!(
        "--rootfs {} --preserve-fds 2 -- sh -c 'cat <&3; cat <&4; cat <&5 || echo no-5; ls /proc/self/fd'",
        root.path().display()
    );
    let (out, _dir) = with_descriptors(&[3, 4, 5], &line, "");
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.starts_with("content-3\ncontent-4\nno-5\n"), "{out:?}");
    // ls's own directory is 5, the first free number once 3 and 4 are passed.
    assert!(text.ends_with("0\n1\n2\n3\n4\n5\n"), "{out:?}");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn preserve_fds_of_a_closed_descriptor_is_an_error() {
    require_root();
    let root = busybox_rootfs(alice());
    let line = format!(
        "--rootfs {} --preserve-fds 2 -- true",
        root.path().display()
    );
    let (out, _dir) = with_descriptors(&[3], &line, "");
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--preserve-fds 2: descriptor 4 is not open"),
        "{stderr}"
    );
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn socket_activation_for_unshare_run_passes_its_sockets() {
    require_root();
    let root = busybox_rootfs(alice());
    let inner = "echo $LISTEN_PID $LISTEN_FDS $LISTEN_FDNAMES; cat <&3; ls /proc/self/fd";
    let line = format!("--rootfs {} -- sh -c '{inner}'", root.path().display());
    // $$ is the shell's pid, which exec hands on to unshare-run.
    let (out, _dir) = with_descriptors(
        &[3, 4],
        &line,
        "LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=web",
    );
    assert!(out.status.success(), "{out:?}");
    // The command is pid 2 inside; 4 was not among the sockets; ls's own is 4.
    assert_eq!(
        stdout(&out),
        "2 1 web\ncontent-3\n0\n1\n2\n3\n4\n",
        "{out:?}"
    );
    // Variables meant for another process pass nothing.
    let (out, _dir) = with_descriptors(&[3], &line, "LISTEN_PID=1 LISTEN_FDS=1");
    assert_eq!(stdout(&out), "\n0\n1\n2\n3\n", "{out:?}");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn host_mode_passes_every_descriptor() {
    require_root();
    let (out, _dir) = with_descriptors(&[5, 9], "-- sh -c 'cat <&5; cat <&9'", "");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "content-5\ncontent-9\n", "{out:?}");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn pid_1_cannot_be_reached_through_proc() {
    require_root();
    let probes = [
        "readlink /proc/1/exe",
        "ls /proc/1/fd",
        "ls /proc/1/root/",
        "ls /proc/1/cwd/",
        "cat /proc/1/environ",
    ];
    let mut script = String::new();
    for (n, probe) in probes.iter().enumerate() {
        script.push_str(&format!("{probe} >/dev/null 2>&1 && echo reached-{n}; "));
    }
    // The command's own /proc entries stay usable: the probes above fail for PID 1 only.
    script.push_str("readlink /proc/self/exe");
    // --privileged: the command has every capability PID 1 has, so only PID 1's being
    // non-dumpable keeps it out.
    for options in [&[][..], &["--privileged"]] {
        assert_eq!(
            in_container(options, &script),
            "/bin/busybox\n",
            "{options:?}"
        );
    }
}

/// PID 1 of a running container, seen from the host: its descriptors, root and working directory.
#[test]
#[ignore = "needs root: sudo tests/run"]
fn pid_1_holds_nothing_of_the_host() {
    require_root();
    let root = busybox_rootfs(alice());
    let dir = user_dir(alice(), "confinement-pid1");
    let files = numbered_files(&dir, &[6]);
    let script = format!(
        "exec 6<{}; exec {} --rootfs {} -- sh -c 'echo ready; exec sleep 30'",
        files[0],
        install().runner(),
        root.path().display()
    );
    let mut child = sandbox()
        .command_as(alice(), &["sh", "-c", &script], &dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let running = Running(child);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let runner_pid = running.0.id();
    let pid1 = children_of_tree(runner_pid)
        .into_iter()
        .find(|p| is_container_init(*p))
        .expect("no PID 1 under the runner");
    let proc = Path::new("/proc").join(pid1.to_string());
    let descriptors = || {
        let mut fds: Vec<(String, String)> = std::fs::read_dir(proc.join("fd"))
            .unwrap()
            .flatten()
            .filter_map(|e| {
                // A descriptor closed between the listing and the readlink is gone: skip it.
                let target = std::fs::read_link(e.path()).ok()?;
                Some((
                    e.file_name().to_string_lossy().into_owned(),
                    target.to_string_lossy().into_owned(),
                ))
            })
            .collect();
        fds.sort_by_key(|(n, _)| n.parse::<u32>().unwrap());
        fds
    };
    let above_2 = |fds: &[(String, String)]| -> Vec<String> {
        fds.iter()
            .filter(|(n, _)| n.parse::<u32>().unwrap() > 2)
            .map(|(_, t)| t.clone())
            .collect()
    };
    // PID 1 closes its channel to unshare-run right after the command's exec, which may be a moment
    // after the command printed "ready": wait for that, but not for ever.
    wait_for(Duration::from_secs(5), || {
        above_2(&descriptors()) == ["anon_inode:[signalfd]"]
    });
    let fds = descriptors();
    assert_eq!(above_2(&fds), ["anon_inode:[signalfd]"], "{fds:?}");
    // Its root and working directory are the container's root: the root filesystem's directory.
    let identity = |p: &Path| {
        let m = std::fs::metadata(p).unwrap();
        (m.dev(), m.ino())
    };
    assert_eq!(
        identity(&proc.join("root")),
        identity(root.path()),
        "PID 1's root"
    );
    assert_eq!(
        identity(&proc.join("cwd")),
        identity(root.path()),
        "PID 1's cwd"
    );
    drop(running);
}

/// Every process below `pid` (children, grandchildren, ...).
fn children_of_tree(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut stack = vec![pid];
    while let Some(p) = stack.pop() {
        for task in std::fs::read_dir(format!("/proc/{p}/task"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                found.push(c);
                stack.push(c);
            }
        }
    }
    found
}

/// Whether `pid` is the init of a pid namespace of its own (NSpid ends in 1).
fn is_container_init(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .is_some_and(|ids| {
            ids.split_whitespace().last() == Some("1") && ids.split_whitespace().count() > 1
        })
}

/// The capability lines (and NoNewPrivs, Seccomp) of the command's /proc/self/status, as "Key value" pairs,
/// in a --rootfs container started with `options`.
fn capability_status(options: &[&str]) -> Vec<(String, String)> {
    in_container(
        options,
        "grep -E '^(Cap[A-Za-z]+|NoNewPrivs|Seccomp):' /proc/self/status",
    )
    .lines()
    .filter_map(|l| l.split_once(':'))
    .map(|(k, v)| (k.to_string(), v.trim().to_string()))
    .collect()
}

fn status_value(status: &[(String, String)], key: &str) -> String {
    status
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no {key} in {status:?}"))
}

/// podman's default set, as /proc/PID/status shows it.
const PODMAN_CAPS: &str = "00000000800405fb";

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_rootfs_container_has_podmans_capabilities() {
    require_root();
    let status = capability_status(&[]);
    for key in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(status_value(&status, key), PODMAN_CAPS, "{key}: {status:?}");
    }
    for key in ["CapInh", "CapAmb", "NoNewPrivs"] {
        assert_eq!(
            status_value(&status, key).trim_start_matches('0'),
            "",
            "{key}: {status:?}"
        );
    }
    // Another user starts with none effective or permitted, and the same bounding set.
    let status = capability_status(&["--user", "1000"]);
    assert_eq!(status_value(&status, "CapEff"), "0000000000000000");
    assert_eq!(status_value(&status, "CapPrm"), "0000000000000000");
    assert_eq!(status_value(&status, "CapBnd"), PODMAN_CAPS);
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn cap_add_cap_drop_privileged_and_no_new_privileges_show_their_effect() {
    require_root();
    let eff = |options: &[&str]| status_value(&capability_status(options), "CapEff");
    // SYS_ADMIN is 21.
    assert_eq!(eff(&["--cap-add", "SYS_ADMIN"]), "00000000802405fb");
    assert_eq!(
        eff(&["--cap-add", "cap_sys_admin,net_raw"]),
        "00000000802425fb"
    );
    // CHOWN is 0, KILL 5.
    assert_eq!(
        eff(&["--cap-drop", "CHOWN", "--cap-drop", "kill"]),
        "00000000800405da"
    );
    assert_eq!(eff(&["--cap-drop", "ALL"]), "0000000000000000");
    assert_eq!(
        eff(&["--cap-drop", "ALL", "--cap-add", "KILL"]),
        "0000000000000020"
    );
    let all = format!("{:016x}", (1u64 << (last_cap() + 1)) - 1);
    assert_eq!(eff(&["--privileged"]), all);
    assert_eq!(eff(&["--cap-add", "ALL"]), all);
    let status = capability_status(&["--security-opt", "no-new-privileges"]);
    assert_eq!(status_value(&status, "NoNewPrivs"), "1");
}

fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn mounting_inside_needs_sys_admin() {
    require_root();
    let mount = |options: &[&str]| rootfs_run(options, &["mount", "-t", "tmpfs", "none", "/tmp"]);
    let refused = mount(&[]);
    assert!(!refused.status.success(), "{refused:?}");
    // busybox's words for EPERM.
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("permission denied"),
        "{refused:?}"
    );
    for options in [&["--cap-add", "SYS_ADMIN"][..], &["--privileged"]] {
        let out = mount(options);
        assert!(out.status.success(), "{options:?}: {out:?}");
    }
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn bad_capability_options_say_what_to_fix() {
    require_root();
    let cases: [(&[&str], &str); 5] = [
        (&["--cap-add", "SYS_ADMN"], "is not a capability"),
        (
            &["--cap-add", "NET_RAW", "--cap-drop", "net_raw"],
            "both added and dropped",
        ),
        (&["--cap-add", "ALL", "--cap-drop", "ALL"], "contradict"),
        (
            &["--security-opt", "apparmor=x"],
            "not an option unshare-run knows",
        ),
        (
            &["--privileged", "--cap-drop", "KILL"],
            "cannot be used with",
        ),
    ];
    for (options, expected) in cases {
        let out = rootfs_run(options, &["true"]);
        assert_eq!(out.status.code(), Some(125), "{options:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{options:?}: {stderr}");
    }
    // Host mode keeps every capability: the options need a root filesystem.
    let runner = install().runner();
    let out = sandbox().run_as(alice(), &[&runner, "--cap-drop", "ALL", "--", "true"]);
    assert_eq!(out.status.code(), Some(125), "{out:?}");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn debug_log_shows_the_capabilities_and_the_filter() {
    require_root();
    let mut sandbox = sandbox();
    sandbox.env.push(("UNSHARE_RUN_LOG".into(), "debug".into()));
    let out = rootfs_run_in(&sandbox, &[], &["true"]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("confinement: capabilities CAP_CHOWN,CAP_DAC_OVERRIDE,"),
        "{stderr}"
    );
    assert!(stderr.contains("seccomp the default filter ("), "{stderr}");
}

/// podman's masked and read-only paths.
const COVERED: [&str; 17] = [
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/fs/selinux",
    "/sys/dev/block",
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// What the container sees: each covered path that has a mount of its own, with that mount's
/// read-only flag ("/proc/keys ro"), then the bytes of /proc/keys and the entries of /sys/firmware.
fn covered_in_container(options: &[&str]) -> (Vec<String>, String) {
    let paths = COVERED.join(" ");
    let script = format!(
        "for p in {paths}; do grep \" $p \" /proc/self/mountinfo | cut -d' ' -f5,6 | cut -d, -f1; done; \
         echo keys=$(wc -c < /proc/keys) firmware=$(ls -A /sys/firmware | wc -l)"
    );
    let out = in_container(options, &script);
    let mut lines: Vec<String> = out.lines().map(String::from).collect();
    let last = lines.pop().unwrap_or_default();
    (lines, last)
}

/// The covered paths this kernel has, except `unmasked`, as the container's mountinfo lists them.
fn expected_mounts(unmasked: &[&str]) -> Vec<String> {
    COVERED
        .iter()
        .filter(|p| Path::new(p).exists() && !unmasked.contains(p))
        .map(|p| format!("{p} ro"))
        .collect()
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn kernel_files_are_masked_or_read_only_unless_privileged() {
    require_root();
    let (mounts, seen) = covered_in_container(&[]);
    assert_eq!(mounts, expected_mounts(&[]));
    assert_eq!(seen, "keys=0 firmware=0");
    // The host has firmware tables to show: the mask hides something.
    assert!(std::fs::read_dir("/sys/firmware").unwrap().next().is_some());
    for options in [&["--privileged"][..], &["--security-opt", "unmask=ALL"]] {
        let (mounts, seen) = covered_in_container(options);
        assert!(mounts.is_empty(), "{options:?}: {mounts:?}");
        assert!(!seen.ends_with("firmware=0"), "{options:?}: {seen}");
    }
    let unmasked = ["/proc/keys", "/proc/sys"];
    let (mounts, _) =
        covered_in_container(&["--security-opt", &format!("unmask={}", unmasked.join(":"))]);
    assert_eq!(mounts, expected_mounts(&unmasked));
}

/// Makes the system call its argument names and prints `NAME=ok` or `NAME=ERRNO`: the keyrings,
/// clone3, a new user namespace, and the same through the i386 (int 0x80) and x32 entries, which a
/// filter for x86_64 alone would let through.
const SYSCALL_PROBE: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "";
    long rc;
    if (!strcmp(what, "i386_unshare")) {
        /* i386's unshare is 310; CLONE_NEWUSER. */
        __asm__ volatile ("int $0x80" : "=a"(rc) : "a"(310), "b"(0x10000000) : "memory");
        if (rc < 0) { errno = -rc; rc = -1; }
    } else if (!strcmp(what, "x32_unshare")) {
        rc = syscall(SYS_unshare | 0x40000000, 0x10000000);
    } else if (!strcmp(what, "unshare")) {
        rc = syscall(SYS_unshare, 0x10000000);
    } else if (!strcmp(what, "keyctl")) {
        /* KEYCTL_GET_KEYRING_ID of the session keyring. */
        rc = syscall(SYS_keyctl, 0, -3, 0);
    } else if (!strcmp(what, "clone3")) {
        rc = syscall(SYS_clone3, NULL, 0);
    } else {
        return 2;
    }
    printf("%s=%s\n", what, rc < 0 ? strerrorname_np(errno) : "ok");
    return 0;
}
"#;

/// The probe's answers for each call, in a --rootfs container started with `options`.
fn syscall_answers(options: &[&str]) -> String {
    let root = busybox_rootfs(alice());
    compile_into(&root, alice(), "syscall-probe", SYSCALL_PROBE);
    let runner = install().runner();
    let mut answers = String::new();
    for call in ["unshare", "i386_unshare", "x32_unshare", "keyctl", "clone3"] {
        let mut argv = vec![runner.as_str(), "--rootfs", root.path().to_str().unwrap()];
        argv.extend_from_slice(options);
        argv.extend_from_slice(&["--", "syscall-probe", call]);
        let out = sandbox().run_as(alice(), &argv);
        assert!(out.status.success(), "{options:?} {call}: {out:?}");
        answers.push_str(&stdout(&out));
    }
    answers
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn the_default_filter_refuses_namespaces_and_keyrings_on_every_entry() {
    require_root();
    assert_eq!(
        syscall_answers(&[]),
        "unshare=EPERM\ni386_unshare=EPERM\nx32_unshare=EPERM\nkeyctl=EPERM\nclone3=ENOSYS\n"
    );
    // Without a filter, each of them reaches the kernel: a new user namespace is made, x32 is not
    // built into this kernel, clone3 refuses a null argument.
    let unfiltered = "unshare=ok\ni386_unshare=ok\nx32_unshare=ENOSYS\nkeyctl=ok\nclone3=EINVAL\n";
    assert_eq!(syscall_answers(&["--privileged"]), unfiltered);
    assert_eq!(
        syscall_answers(&["--security-opt", "seccomp=unconfined"]),
        unfiltered
    );
    // SYS_ADMIN opens namespaces (and the mounts in them), not the keyrings.
    assert_eq!(
        syscall_answers(&["--cap-add", "SYS_ADMIN"]),
        "unshare=ok\ni386_unshare=ok\nx32_unshare=EPERM\nkeyctl=EPERM\nclone3=EINVAL\n"
    );
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn status_shows_the_filter_and_a_profile_file_replaces_it() {
    require_root();
    let seccomp = |options: &[&str]| status_value(&capability_status(options), "Seccomp");
    assert_eq!(seccomp(&[]), "2");
    assert_eq!(seccomp(&["--privileged"]), "0");
    assert_eq!(seccomp(&["--security-opt", "seccomp=unconfined"]), "0");
    let dir = user_dir(alice(), "confinement-profile");
    let profile = write_file(
        &dir,
        "deny-mkdir.json",
        br#"{"defaultAction": "SCMP_ACT_ALLOW",
             "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}"#,
    );
    let option = format!("seccomp={}", profile.display());
    let script = "mkdir /tmp/d 2>&1 || echo refused; touch /tmp/f && echo touched";
    let out = in_container(&["--security-opt", &option], script);
    assert!(
        out.contains("Operation not permitted") && out.contains("refused"),
        "{out}"
    );
    assert!(out.ends_with("touched\n"), "{out}");
    // Without it, mkdir works: the profile is what refused it.
    assert_eq!(in_container(&[], script), "touched\n");
    // podman's own profile file (containers-common) is read as well.
    let podmans = "seccomp=/usr/share/containers/seccomp.json";
    assert_eq!(seccomp(&["--security-opt", podmans]), "2");
    // A file that is not a profile: exit 125, saying so.
    let bad = write_file(&dir, "bad.json", b"{\"defaultAction\": 1}");
    let out = rootfs_run(
        &["--security-opt", &format!("seccomp={}", bad.display())],
        &["true"],
    );
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a seccomp profile"),
        "{out:?}"
    );
}

/// SIGKILL of unshare-run at many moments of a start: before, during and after the set-up of the
/// container, the generated /etc/hosts and the ephemeral overlay. Nothing may be left: no process of
/// the container, no mount in the host's namespace, no generated directory (the next start removes
/// those of killed ones).
#[test]
#[ignore = "needs root: sudo tests/run"]
fn sigkill_at_any_moment_of_a_start_leaves_nothing_behind() {
    require_root();
    let host_mounts = || std::fs::read_to_string("/proc/1/mountinfo").unwrap();
    let before = host_mounts();
    let root = busybox_rootfs(alice());
    let dir = user_dir(alice(), "confinement-killed");
    let runner = install().runner();
    let argv = [
        runner.as_str(),
        "--rootfs",
        root.path().to_str().unwrap(),
        "--ephemeral",
        "--hostname",
        "urt-killed-start",
        "--",
        "sh",
        "-c",
        "touch /made; exec sleep 4261",
    ];
    let mut killed = Vec::new();
    for round in 0..40u64 {
        let mut child = sandbox().command_as(alice(), &argv, &dir).spawn().unwrap();
        // Spread over 0 .. 300 ms, in an order that is not monotonic.
        std::thread::sleep(Duration::from_millis(round * 97 % 300));
        killed.push(child.id());
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert!(
        wait_for(Duration::from_secs(3), || !processes_of(
            alice(),
            "sleep 4261"
        ) && !processes_of(
            alice(),
            "urt-killed-start"
        )),
        "a process of a killed start is left"
    );
    assert_eq!(
        host_mounts(),
        before,
        "a killed start left a mount on the host"
    );
    // The ephemeral layer was the container's: the root filesystem is unchanged.
    assert!(!root.path().join("made").exists());
    // One more start removes what the killed ones could not.
    let mut again = argv[..argv.len() - 3].to_vec();
    again.push("true");
    let out = sandbox().run_as(alice(), &again);
    assert!(out.status.success(), "{out:?}");
    // Where unshare-run puts them (network.rs).
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(std::path::PathBuf::from)
        .filter(|d| d.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let left: Vec<String> = std::fs::read_dir(&base)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            killed
                .iter()
                .any(|pid| n.starts_with(&format!("unshare-run.{pid}.")))
        })
        .collect();
    assert!(
        left.is_empty(),
        "generated directories of killed starts: {left:?}"
    );
    // A running container's own are gone once PID 1 has bound them.
    let (running, _out) = start_runner(
        &sandbox(),
        &[
            "--rootfs",
            root.path().to_str().unwrap(),
            "--hostname",
            "urt-killed-start",
            "--",
            "sh",
            "-c",
            "echo ready; exec sleep 4262",
        ],
        &dir,
    );
    let own = format!("unshare-run.{}.", running.0.id());
    let mine = std::fs::read_dir(&base)
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with(&own));
    drop(running);
    assert!(
        !mine,
        "the running container's generated files are still on the host"
    );
}

/// What the probe reports for a container started with `options`, with a secret in the caller's
/// session keyring.
fn keyring_answers(options: &[&str]) -> String {
    let root = busybox_rootfs(alice());
    compile_into(&root, alice(), "keyring-probe", KEYRING_PROBE);
    let host_probe = root.path().join("bin/keyring-probe");
    let runner = install().runner();
    let mut argv = vec![
        host_probe.to_str().unwrap(),
        "host",
        "hush-42",
        "--",
        runner.as_str(),
        "--rootfs",
        root.path().to_str().unwrap(),
    ];
    argv.extend_from_slice(options);
    argv.extend_from_slice(&["--", "sh", "-c", "keyring-probe read; keyring-probe plant"]);
    let out = sandbox().run_as(alice(), &argv);
    assert!(out.status.success(), "{options:?}: {out:?}");
    stdout(&out)
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_container_has_a_session_keyring_of_its_own() {
    require_root();
    // The default filter refuses the keyring calls.
    assert_eq!(
        keyring_answers(&[]),
        "read=EPERM\nplant=EPERM\nhost-sees-planted=no\n"
    );
    // Without a filter the container's own keyring works, and is not the caller's.
    let own = "read=ENOKEY\nplant=mine\nhost-sees-planted=no\n";
    assert_eq!(keyring_answers(&["--privileged"]), own);
    assert_eq!(
        keyring_answers(&["--security-opt", "seccomp=unconfined"]),
        own
    );
    // The opt-out: the caller's keyring, both ways.
    assert_eq!(
        keyring_answers(&[
            "--security-opt",
            "seccomp=unconfined",
            "--security-opt",
            "keyring=host"
        ]),
        "read=hush-42\nplant=mine\nhost-sees-planted=yes\n"
    );
}
