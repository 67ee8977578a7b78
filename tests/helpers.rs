//! newuidmap/newgidmap installed setuid-root and with file capabilities, run by an unprivileged test
//! user against real user namespaces. Each test fails if the check it names is removed.

use unshare_run_test_support::*;

/// Both supported installs of a helper applet.
fn installs(applet: &str) -> [(&'static str, String); 2] {
    let i = install();
    [("setuid", i.setuid(applet)), ("fcaps", i.fcaps(applet))]
}

fn alice_range() -> String {
    format!("{}:100000:65536", alice().name)
}

fn standard() -> Sandbox {
    Sandbox::both(&[&format!("{}:300000:65536", bob().name), &alice_range()])
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn full_range_is_written_by_both_installs() {
    require_root();
    for (install, uidmap) in installs("newuidmap") {
        let t = Target::spawn(alice());
        let p = t.pid_arg();
        let a = alice().uid.to_string();
        standard()
            .run_as(
                alice(),
                &[&uidmap, &p, "0", &a, "1", "1", "100000", "65536"],
            )
            .assert_code(0);
        assert_eq!(t.uid_map(), format!("0 {a} 1\n1 100000 65536"), "{install}");
    }
    for (install, gidmap) in installs("newgidmap") {
        let t = Target::spawn(alice());
        let p = t.pid_arg();
        let g = alice().gid.to_string();
        standard()
            .run_as(
                alice(),
                &[&gidmap, &p, "0", &g, "1", "1", "100000", "65536"],
            )
            .assert_code(0);
        assert_eq!(t.gid_map(), format!("0 {g} 1\n1 100000 65536"), "{install}");
        assert_eq!(t.setgroups(), "allow", "{install}");
    }
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn bad_pids_are_refused() {
    require_root();
    let helper = install().setuid("newuidmap");
    for pid in ["0", "-5", "abc", "12x", "", " 1", "99999999999"] {
        standard()
            .run_as(alice(), &[&helper, pid, "0", "100000", "1"])
            .assert_code(1)
            .assert_stderr_contains("newuidmap: ");
    }
    // A pid that does not exist (pid_max is at most 2^22).
    standard()
        .run_as(alice(), &[&helper, "2147483647", "0", "100000", "1"])
        .assert_code(1)
        .assert_stderr_contains("Could not open proc directory for target 2147483647");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn argument_count_must_be_target_plus_triplets() {
    require_root();
    let t = Target::spawn(alice());
    let p = t.pid_arg();
    let helper = install().setuid("newuidmap");
    for args in [
        &[][..],
        &[p.as_str()],
        &[&p, "0", "100000"],
        &[&p, "0", "100000", "1", "1"],
    ] {
        let mut argv = vec![helper.as_str()];
        argv.extend_from_slice(args);
        standard()
            .run_as(alice(), &argv)
            .assert_code(1)
            .assert_stderr_contains("usage: newuidmap <pid|fd:<pidfd>>");
    }
    assert_eq!(t.uid_map(), "");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn target_of_another_user_is_refused() {
    require_root();
    let t = Target::spawn(bob());
    standard()
        .run_as(
            alice(),
            &[
                &install().setuid("newuidmap"),
                &t.pid_arg(),
                "0",
                "100000",
                "1",
            ],
        )
        .assert_code(1)
        .assert_stderr_contains("is owned by a different user");
    assert_eq!(t.uid_map(), "");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn target_with_another_gid_is_refused() {
    require_root();
    // The target runs with bob's group as its gid; the caller is plain alice.
    let t = Target::spawn_with_gid(alice(), bob().gid);
    standard()
        .run_as(
            alice(),
            &[
                &install().setuid("newuidmap"),
                &t.pid_arg(),
                "0",
                "100000",
                "1",
            ],
        )
        .assert_code(1)
        .assert_stderr_contains("is owned by a different user");
    assert_eq!(t.uid_map(), "");
    // Caller and target both with a real gid that is not alice's primary group.
    let mut sandbox = standard();
    sandbox.gid_override = Some(bob().gid);
    sandbox
        .run_as(
            alice(),
            &[
                &install().setuid("newuidmap"),
                &t.pid_arg(),
                "0",
                "100000",
                "1",
            ],
        )
        .assert_code(1)
        .assert_stderr_contains("is owned by a different user");
    assert_eq!(t.uid_map(), "");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn malformed_numbers_are_refused() {
    require_root();
    let helper = install().setuid("newuidmap");
    let t = Target::spawn(alice());
    let p = t.pid_arg();
    let big = Sandbox::both(&[&format!("{}:4294000000:967295", alice().name)]);
    for (triplet, message) in [
        (["0", "100000", "0"], "count of 0"),
        (["0", "-1", "1"], "invalid id or count"),
        (["0", "4294967296", "1"], "invalid id or count"),
        (["0", "1e5", "1"], "invalid id or count"),
        (["0", "4294967294", "2"], "overflow"),
        (["4294967295", "100000", "1"], "overflow"),
        (["0", "4294967295", "1"], "overflow"),
    ] {
        let mut argv = vec![helper.as_str(), &p];
        argv.extend_from_slice(&triplet);
        big.run_as(alice(), &argv)
            .assert_code(1)
            .assert_stderr_contains(message);
    }
    assert_eq!(t.uid_map(), "");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn range_must_lie_within_an_entry() {
    require_root();
    let helper = install().setuid("newuidmap");
    let t = Target::spawn(alice());
    standard()
        .run_as(alice(), &[&helper, &t.pid_arg(), "0", "100000", "65537"])
        .assert_code(1)
        .assert_stderr_contains("uid range [0-65537) -> [100000-165537) not allowed");
    let t2 = Target::spawn(alice());
    standard()
        .run_as(alice(), &[&helper, &t2.pid_arg(), "0", "99999", "2"])
        .assert_code(1)
        .assert_stderr_contains("not allowed");
    assert_eq!(t.uid_map(), "");
    assert_eq!(t2.uid_map(), "");
    let t3 = Target::spawn(alice());
    standard()
        .run_as(alice(), &[&helper, &t3.pid_arg(), "0", "100000", "65536"])
        .assert_code(0);
    assert_eq!(t3.uid_map(), "0 100000 65536");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn adjacent_entries_combine_and_numeric_uids_count() {
    require_root();
    let a = alice();
    let sandbox = Sandbox::both(&[
        &format!("{}:100000:1000", a.name),
        &format!("{}:101000:500", bob().name),
        &format!("{}:101000:1000", a.uid),
    ]);
    let t = Target::spawn(a);
    sandbox
        .run_as(
            a,
            &[
                &install().setuid("newuidmap"),
                &t.pid_arg(),
                "0",
                "100000",
                "2000",
            ],
        )
        .assert_code(0);
    assert_eq!(t.uid_map(), "0 100000 2000");
    let t = Target::spawn(a);
    sandbox
        .run_as(
            a,
            &[
                &install().setuid("newuidmap"),
                &t.pid_arg(),
                "0",
                "101000",
                "1000",
            ],
        )
        .assert_code(0);
    assert_eq!(t.uid_map(), "0 101000 1000");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn another_users_entry_grants_nothing() {
    require_root();
    let t = Target::spawn(alice());
    standard()
        .run_as(
            alice(),
            &[
                &install().setuid("newuidmap"),
                &t.pid_arg(),
                "0",
                "300000",
                "10",
            ],
        )
        .assert_code(1)
        .assert_stderr_contains("not allowed");
    assert_eq!(t.uid_map(), "");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn count_zero_entry_grants_nothing() {
    require_root();
    // shadow <= 4.19 treated `user:0:0` as covering every id, root included.
    let sandbox = Sandbox::both(&[&format!("{}:0:0", alice().name)]);
    for request in [["0", "0", "1"], ["0", "100000", "65536"]] {
        let t = Target::spawn(alice());
        sandbox
            .run_as(
                alice(),
                &[
                    &install().setuid("newuidmap"),
                    &t.pid_arg(),
                    request[0],
                    request[1],
                    request[2],
                ],
            )
            .assert_code(1)
            .assert_stderr_contains("not allowed");
        assert_eq!(t.uid_map(), "");
    }
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn malformed_lines_around_a_valid_one_are_skipped() {
    require_root();
    let n = alice().name;
    let sandbox = Sandbox::new(
        Fixture::Content(format!(
            "# comment\n\n{n}:1:\n{n}:x:5\n+{n}:0:4294967295\n{n}:100000:65536\n{n}:1:2:3\n{n} :0:9999999\n{}\n",
            "x".repeat(2000)
        )),
        Fixture::Missing,
    );
    let t = Target::spawn(alice());
    sandbox
        .run_as(
            alice(),
            &[
                &install().setuid("newuidmap"),
                &t.pid_arg(),
                "0",
                "100000",
                "65536",
            ],
        )
        .assert_code(0);
    assert_eq!(t.uid_map(), "0 100000 65536");
    let t = Target::spawn(alice());
    sandbox
        .run_as(
            alice(),
            &[&install().setuid("newuidmap"), &t.pid_arg(), "0", "1", "1"],
        )
        .assert_code(1);
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn symlinked_or_untrusted_subuid_is_refused() {
    require_root();
    let line = format!("{}\n", alice_range());
    let cases = [
        (
            Fixture::Symlink(line.clone()),
            "/etc/subuid is a symbolic link",
        ),
        (
            Fixture::WithMode {
                content: line.clone(),
                mode: 0o666,
                owner: "root".into(),
            },
            "must be owned by root",
        ),
        (
            Fixture::WithMode {
                content: line.clone(),
                mode: 0o644,
                owner: alice().name.into(),
            },
            "must be owned by root",
        ),
    ];
    for (fixture, message) in cases {
        let t = Target::spawn(alice());
        Sandbox::new(fixture, Fixture::Missing)
            .run_as(
                alice(),
                &[
                    &install().setuid("newuidmap"),
                    &t.pid_arg(),
                    "0",
                    "100000",
                    "65536",
                ],
            )
            .assert_code(1)
            .assert_stderr_contains(message);
        assert_eq!(t.uid_map(), "");
    }
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn missing_subuid_allows_only_own_ids() {
    require_root();
    let sandbox = Sandbox::new(Fixture::Missing, Fixture::Missing);
    let t = Target::spawn(alice());
    sandbox
        .run_as(
            alice(),
            &[
                &install().setuid("newuidmap"),
                &t.pid_arg(),
                "0",
                "100000",
                "1",
            ],
        )
        .assert_code(1)
        .assert_stderr_contains("not allowed");
    let a = alice().uid.to_string();
    sandbox
        .run_as(
            alice(),
            &[&install().setuid("newuidmap"), &t.pid_arg(), "0", &a, "1"],
        )
        .assert_code(0);
    assert_eq!(t.uid_map(), format!("0 {a} 1"));
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn own_gid_map_denies_setgroups_and_subgid_map_keeps_it() {
    require_root();
    let g = alice().gid.to_string();
    for (install, gidmap) in installs("newgidmap") {
        let own = Target::spawn(alice());
        Sandbox::new(Fixture::Missing, Fixture::Missing)
            .run_as(alice(), &[&gidmap, &own.pid_arg(), "0", &g, "1"])
            .assert_code(0);
        assert_eq!(own.gid_map(), format!("0 {g} 1"), "{install}");
        assert_eq!(own.setgroups(), "deny", "{install}: CVE-2018-7169");

        let sub = Target::spawn(alice());
        standard()
            .run_as(
                alice(),
                &[
                    &gidmap,
                    &sub.pid_arg(),
                    "0",
                    &g,
                    "1",
                    "1",
                    "100000",
                    "65536",
                ],
            )
            .assert_code(0);
        assert_eq!(sub.setgroups(), "allow", "{install}");
    }
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn own_uid_map_needs_no_subuid_entry() {
    require_root();
    let a = alice().uid.to_string();
    for (install, uidmap) in installs("newuidmap") {
        let t = Target::spawn(alice());
        Sandbox::new(Fixture::lines(&["garbage"]), Fixture::Missing)
            .run_as(alice(), &[&uidmap, &t.pid_arg(), "0", &a, "1"])
            .assert_code(0);
        assert_eq!(t.uid_map(), format!("0 {a} 1"), "{install}");
        // Own uid, but more than one id: not allowed without an entry.
        let t = Target::spawn(alice());
        Sandbox::new(Fixture::lines(&["garbage"]), Fixture::Missing)
            .run_as(alice(), &[&uidmap, &t.pid_arg(), "0", &a, "2"])
            .assert_code(1);
    }
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn second_write_gets_the_kernels_error() {
    require_root();
    for (install, uidmap) in installs("newuidmap") {
        let t = Target::spawn(alice());
        let p = t.pid_arg();
        standard()
            .run_as(alice(), &[&uidmap, &p, "0", "100000", "10"])
            .assert_code(0);
        standard()
            .run_as(alice(), &[&uidmap, &p, "0", "100010", "10"])
            .assert_code(1)
            .assert_stderr_contains("write to uid_map failed: Operation not permitted");
        assert_eq!(t.uid_map(), "0 100000 10", "{install}");
    }
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn overlapping_triplets_are_refused() {
    require_root();
    let t = Target::spawn(alice());
    let p = t.pid_arg();
    let helper = install().setuid("newuidmap");
    for args in [
        ["0", "100000", "10", "5", "100020", "10"],
        ["0", "100000", "10", "20", "100005", "10"],
    ] {
        let mut argv = vec![helper.as_str(), &p];
        argv.extend_from_slice(&args);
        standard()
            .run_as(alice(), &argv)
            .assert_code(1)
            .assert_stderr_contains("overlap");
    }
    assert_eq!(t.uid_map(), "");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn fd_target_accepts_proc_dir_and_pidfd_and_refuses_others() {
    require_root();
    let helper = install().setuid("newuidmap");
    // A /proc/<pid> directory descriptor, opened by the caller's shell.
    let t = Target::spawn(alice());
    let script = format!("exec 3</proc/{}; exec {helper} fd:3 0 100000 65536", t.pid);
    standard()
        .run_as(alice(), &["sh", "-c", &script])
        .assert_code(0);
    assert_eq!(t.uid_map(), "0 100000 65536");

    // A real pidfd, inherited as an open descriptor.
    let t = Target::spawn(alice());
    let pidfd = unshare_run_helpers::pidfd_open(t.pid).unwrap();
    let fd = {
        use std::os::fd::AsRawFd;
        nix::fcntl::fcntl(
            &pidfd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        )
        .unwrap();
        pidfd.as_raw_fd()
    };
    standard()
        .run_as(
            alice(),
            &[&helper, &format!("fd:{fd}"), "0", "100000", "65536"],
        )
        .assert_code(0);
    drop(pidfd);
    assert_eq!(t.uid_map(), "0 100000 65536");

    // Anything else.
    let t = Target::spawn(alice());
    for script in [
        format!("exec 3</dev/null; exec {helper} fd:3 0 100000 65536"),
        format!("exec 3</proc; exec {helper} fd:3 0 100000 65536"),
        format!("exec 3<&-; exec {helper} fd:3 0 100000 65536"),
    ] {
        standard()
            .run_as(alice(), &["sh", "-c", &script])
            .assert_code(1)
            .assert_stderr_contains("not a /proc/<pid> directory or pidfd");
    }
    assert_eq!(t.uid_map(), "");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn closed_standard_fds_are_opened() {
    require_root();
    // A helper (setuid, so glibc also does this for it: /dev/full for stdin, /dev/null for the others).
    let script = format!("exec {} --help 0<&- 2>&-", install().setuid("newuidmap"));
    let (_, _, fds) = inspect_blocked_process(&script, "newuidmap");
    assert!(
        ["/dev/null", "/dev/full"].contains(&fds[0].as_str()),
        "{fds:?}"
    );
    assert_eq!(fds[2], "/dev/null");
    // --help and --version with stdout closed: a quiet success, not an abort.
    for flag in ["--help", "--version"] {
        let script = format!("exec {} {flag} >&-", install().setuid("newuidmap"));
        standard()
            .run_as(alice(), &["sh", "-c", &script])
            .assert_code(0);
    }
    // unshare-run, unprivileged: nothing but our start-up opens them (Rust's runtime is skipped).
    let script = format!("exec {} --help 0<&- 2>&-", install().runner());
    let (_, _, fds) = inspect_blocked_process(&script, "unshare-run");
    assert_eq!(
        (fds[0].as_str(), fds[2].as_str()),
        ("/dev/null", "/dev/null")
    );
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn closed_standard_fds_cannot_receive_the_map() {
    require_root();
    let helper = install().setuid("newuidmap");
    let t = Target::spawn(alice());
    let script = format!("exec {helper} {} 0 100000 65536 0<&- 1>&- 2>&-", t.pid);
    standard()
        .run_as(alice(), &["sh", "-c", &script])
        .assert_code(0);
    assert_eq!(t.uid_map(), "0 100000 65536");
    // A refused request with fd 2 closed: the message must go nowhere, and nothing is written.
    let t = Target::spawn(alice());
    let script = format!("exec {helper} {} 0 100000 65537 0<&- 1>&- 2>&-", t.pid);
    standard()
        .run_as(alice(), &["sh", "-c", &script])
        .assert_code(1);
    assert_eq!(t.uid_map(), "");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn environment_changes_nothing() {
    require_root();
    let dir = TempDir::new("preload");
    let marker = dir.path().join("preload-ran");
    let so = dir.path().join("evil.so");
    let src = write_file(
        &dir,
        "evil.c",
        format!(
            "#include <fcntl.h>\n__attribute__((constructor)) static void f(void) {{ close(open(\"{}\", O_CREAT|O_WRONLY, 0666)); }}\n",
            marker.display()
        )
        .as_bytes(),
    );
    run_ok(
        std::process::Command::new("cc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(&so)
            .arg(&src),
    );
    std::fs::set_permissions(&dir.0, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let hostile = [
        ("RUST_LOG", "trace"),
        ("RUST_BACKTRACE", "full"),
        ("LANG", "de_DE.UTF-8"),
        ("LC_ALL", "de_DE.UTF-8"),
        ("LANGUAGE", "de"),
        ("LD_PRELOAD", so.to_str().unwrap()),
        ("LD_LIBRARY_PATH", dir.path().to_str().unwrap()),
    ];
    // Set only at the final exec (by env(1), as the test user), so the wrappers stay clean.
    let with_env = |argv: &[&str]| -> Vec<String> {
        let mut v = vec!["env".to_string()];
        v.extend(hostile.iter().map(|(k, val)| format!("{k}={val}")));
        v.extend(argv.iter().map(|a| a.to_string()));
        v
    };
    // The library works: an ordinary program run by the same user loads it.
    let probe = with_env(&["/bin/true"]);
    standard().run_as(alice(), &as_strs(&probe)).assert_code(0);
    assert!(
        marker.exists(),
        "the test's LD_PRELOAD library did not load into /bin/true"
    );
    std::fs::remove_file(&marker).unwrap();

    let helper = install().setuid("newuidmap");
    for request in [["0", "100000", "65536"], ["0", "100000", "65537"]] {
        let clean_target = Target::spawn(alice());
        let clean = standard().run_as(
            alice(),
            &[
                &helper,
                &clean_target.pid_arg(),
                request[0],
                request[1],
                request[2],
            ],
        );
        let t = Target::spawn(alice());
        let p = t.pid_arg();
        let argv = with_env(&[&helper, &p, request[0], request[1], request[2]]);
        let out = standard().run_as(alice(), &as_strs(&argv));
        assert_eq!(out.code(), clean.code());
        assert_eq!(out.stdout, clean.stdout);
        assert_eq!(
            out.stderr_text().replace(&p, "PID"),
            clean.stderr_text().replace(&clean_target.pid_arg(), "PID")
        );
        assert_eq!(t.uid_map(), clean_target.uid_map());
        assert!(
            !marker.exists(),
            "LD_PRELOAD was honoured by the setuid helper"
        );
    }
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Runs `script` (sh) as alice with stdout on a full pipe, waits until the process named `name` blocks
/// writing to it, and returns its /proc/<pid>/status and /proc/<pid>/limits and where fds 0-2 point.
fn inspect_blocked_process(script: &str, name: &str) -> (String, String, Vec<String>) {
    let a = alice();
    let as_alice = [
        format!("--reuid={}", a.uid),
        format!("--regid={}", a.gid),
        "--clear-groups".to_string(),
    ];
    inspect_blocked_process_with(&as_strs(&as_alice), script, name)
}

/// `inspect_blocked_process`, with `setpriv_args` saying who runs `script`.
fn inspect_blocked_process_with(
    setpriv_args: &[&str],
    script: &str,
    name: &str,
) -> (String, String, Vec<String>) {
    use std::io::Write;
    use std::os::fd::AsFd;
    let (reader, mut writer) = std::io::pipe().unwrap();
    // Fill the pipe so that the first write blocks and the process stays alive for inspection.
    let set_nonblocking = |w: &std::io::PipeWriter, on: bool| {
        let flags = if on {
            nix::fcntl::OFlag::O_NONBLOCK
        } else {
            nix::fcntl::OFlag::empty()
        };
        nix::fcntl::fcntl(w.as_fd(), nix::fcntl::FcntlArg::F_SETFL(flags)).unwrap();
    };
    set_nonblocking(&writer, true);
    while writer.write(&[b'x'; 4096]).is_ok() {}
    set_nonblocking(&writer, false);
    let mut child = std::process::Command::new("setpriv")
        .args(setpriv_args)
        .args(["--", "sh", "-c", script])
        .stdout(writer)
        .spawn()
        .unwrap();
    let proc_file = |f: &str| std::fs::read_to_string(format!("/proc/{}/{f}", child.id()));
    let blocked = wait_for(std::time::Duration::from_secs(10), || {
        proc_file("wchan").is_ok_and(|w| w.contains("pipe"))
            && proc_file("status").is_ok_and(|s| s.contains(&format!("Name:\t{name}\n")))
    });
    let status = proc_file("status").unwrap();
    let limits = proc_file("limits").unwrap();
    let fds: Vec<String> = (0..=2)
        .map(|fd| {
            std::fs::read_link(format!("/proc/{}/fd/{fd}", child.id()))
                .map(|p| p.display().to_string())
                .unwrap_or_else(|e| format!("closed ({e})"))
        })
        .collect();
    drop(reader);
    let _ = child.kill();
    let _ = child.wait();
    assert!(blocked, "{name} never blocked on its output: {status}");
    (status, limits, fds)
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn helper_disables_core_dumps_and_ignores_the_callers_file_size_limit() {
    require_root();
    let script = format!(
        "ulimit -S -c 1000; ulimit -S -f 1; exec {} --help",
        install().setuid("newuidmap")
    );
    let (_, limits, _) = inspect_blocked_process(&script, "newuidmap");
    let limit = |name: &str| {
        limits
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing: {limits}"))
            .split_whitespace()
            .skip(name.split_whitespace().count())
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(limit("Max core file size"), "0 0");
    let fsize = limit("Max file size");
    let (soft, hard) = fsize.split_once(' ').unwrap();
    assert_eq!(soft, hard, "file size soft limit not raised: {fsize}");
}

/// alice's setuid newuidmap writes "0 100000 65536" for a target of hers under strace (run by root, so
/// the setuid exec keeps its privilege), tracing `syscalls`; returns the target and what the helper
/// did from its exec on.
fn trace_a_map_write(syscalls: &str) -> (Target, Vec<String>) {
    let a = alice();
    let t = Target::spawn(a);
    let dir = TempDir::new("strace");
    let log = dir.path().join("trace");
    let inner = standard().command_as(
        a,
        &[
            &install().setuid("newuidmap"),
            &t.pid_arg(),
            "0",
            "100000",
            "65536",
        ],
        &dir,
    );
    let out = std::process::Command::new("strace")
        .args(["-f", "-qq", "-o"])
        .arg(&log)
        .args(["-e", &format!("trace={syscalls}")])
        .arg(inner.get_program())
        .args(inner.get_args())
        .output()
        .unwrap();
    out.assert_code(0);
    assert_eq!(t.uid_map(), "0 100000 65536");
    let trace = std::fs::read_to_string(&log).unwrap();
    let exec_line = trace
        .lines()
        .rfind(|l| l.contains("execve(") && l.contains("newuidmap\""))
        .unwrap_or_else(|| panic!("no exec of the helper:\n{trace}"));
    // The exec chain unshare -> sh -> setpriv -> helper keeps one pid; keep what the helper did.
    let pid = exec_line.split_whitespace().next().unwrap();
    let helper = trace
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(pid))
        .skip_while(|l| !(l.contains("execve(") && l.contains("newuidmap\"")))
        .map(String::from)
        .collect();
    (t, helper)
}

/// Before a helper parses an argument (`--help` is one) it has narrowed its privilege: files are
/// opened with the caller's ids (the filesystem ids, the last field of Uid and Gid) and only what the
/// write may need is left: CAP_SETUID and CAP_SETFCAP for newuidmap, CAP_SETGID for newgidmap (as far
/// as the installation grants them).
#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_helper_narrows_its_privilege_before_it_reads_an_argument() {
    require_root();
    let i = install();
    let a = alice();
    const SETUID_SETFCAP: &str = "0000000080000080";
    for (program, name, euid, caps) in [
        (i.setuid("newuidmap"), "newuidmap", 0, SETUID_SETFCAP),
        (i.setuid("newgidmap"), "newgidmap", 0, "0000000000000040"),
        (i.fcaps("newuidmap"), "newuidmap", a.uid, "0000000000000080"),
        (i.fcaps("newgidmap"), "newgidmap", a.uid, "0000000000000040"),
    ] {
        let (status, _, _) = inspect_blocked_process(&format!("exec {program} --help"), name);
        let field = |name: &str| status_field(&status, name);
        assert_eq!(
            field("Uid"),
            format!("{0} {euid} {euid} {0}", a.uid),
            "{program}: the filesystem uid is the caller's"
        );
        assert_eq!(field("Gid"), format!("{0} {0} {0} {0}", a.gid), "{program}");
        for set in ["CapPrm", "CapEff"] {
            assert_eq!(field(set), caps, "{program}: {set}");
        }
        for set in ["CapInh", "CapAmb"] {
            assert_eq!(field(set), "0000000000000000", "{program}: {set}");
        }
    }
}

/// The caller lookup (getpwuid: NSS modules, /etc/passwd) and the target's /proc entry are opened
/// only after the helper switched its filesystem ids to the caller's.
#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_helper_looks_up_its_caller_only_after_narrowing() {
    require_root();
    let a = alice();
    let (t, helper) = trace_a_map_write("execve,setfsuid,capset,openat");
    let index = |needle: &str| {
        helper
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle} in {helper:#?}"))
    };
    let narrowed = index(&format!("setfsuid({})", a.uid));
    let capset = index("capset(");
    assert!(
        helper[capset].contains("effective=1<<CAP_SETUID|1<<CAP_SETFCAP"),
        "{}",
        helper[capset]
    );
    for opened in ["/etc/passwd", &format!("/proc/{}", t.pid), "/etc/subuid"] {
        let at = index(opened);
        assert!(
            capset < narrowed && narrowed < at,
            "{opened} opened before the narrowing: {helper:#?}"
        );
    }
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn spoofed_argv0_leaves_no_privilege() {
    require_root();
    let i = install();
    let a = alice();
    // The newuidmap copies, run under the name unshare-run: the setuid copy and the cap_setuid=ep copy.
    for program in [i.setuid("unshare-run"), i.fcaps("unshare-run")] {
        let (status, _, _) =
            inspect_blocked_process(&format!("exec {program} --help"), "unshare-run");
        let field = |name: &str| status_field(&status, name);
        assert_eq!(field("Uid"), format!("{0} {0} {0} {0}", a.uid), "{program}");
        assert_eq!(field("Gid"), format!("{0} {0} {0} {0}", a.gid), "{program}");
        for caps in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
            assert_eq!(field(caps), "0000000000000000", "{program}: {caps}");
        }
    }
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_callers_ambient_capabilities_do_not_reach_the_runner() {
    require_root();
    let i = install();
    let a = alice();
    // An unprivileged caller whose ambient set holds a capability passes it to every program it
    // runs (the plain runner is no exception to the kernel); the runner's first step drops it.
    let ambient = [
        format!("--reuid={}", a.uid),
        format!("--regid={}", a.gid),
        "--clear-groups".to_string(),
        "--inh-caps=+net_bind_service".to_string(),
        "--ambient-caps=+net_bind_service".to_string(),
    ];
    let (shell, _, _) = inspect_blocked_process_with(
        &as_strs(&ambient),
        &format!("exec {} cat /dev/zero", busybox()),
        "busybox",
    );
    assert_eq!(status_field(&shell, "CapAmb"), "0000000000000400");
    let (status, _, _) = inspect_blocked_process_with(
        &as_strs(&ambient),
        &format!("exec {} --help", i.runner()),
        "unshare-run",
    );
    for caps in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert_eq!(status_field(&status, caps), "0000000000000000", "{caps}");
    }
}

/// A field of /proc/<pid>/status, its words joined by single spaces.
fn status_field(status: &str, name: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:\t")))
        .unwrap_or_else(|| panic!("{name} missing in {status}"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_real_root_caller_keeps_its_capabilities_unless_root_is_unprivileged() {
    require_root();
    let i = install();
    // Root's own capabilities were not granted by our setuid bit or file capabilities: kept, whichever
    // copy root runs (mapping uid 0 into a user namespace needs CAP_SETFCAP).
    let as_root = ["--reuid=0", "--regid=0", "--clear-groups"];
    for program in [i.runner(), i.setuid("unshare-run"), i.fcaps("unshare-run")] {
        let (status, _, _) = inspect_blocked_process_with(
            &as_root,
            &format!("exec {program} --help"),
            "unshare-run",
        );
        let bounding = status_field(&status, "CapBnd");
        assert_ne!(bounding, "0000000000000000");
        assert_eq!(status_field(&status, "Uid"), "0 0 0 0", "{program}");
        for caps in ["CapPrm", "CapEff"] {
            assert_eq!(status_field(&status, caps), bounding, "{program}: {caps}");
        }
    }
    // Under SECBIT_NOROOT uid 0 gets nothing at exec, so what the process has came from the file
    // capabilities (cap_setuid here): dropped.
    let noroot = [
        "--reuid=0",
        "--regid=0",
        "--clear-groups",
        "--securebits=+noroot",
    ];
    let (status, _, _) = inspect_blocked_process_with(
        &noroot,
        &format!("exec {} --help", i.fcaps("unshare-run")),
        "unshare-run",
    );
    for caps in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert_eq!(status_field(&status, caps), "0000000000000000", "{caps}");
    }
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn unknown_applet_names_exit_2() {
    require_root();
    let dir = TempDir::new("names");
    let link = dir.path().join("newuidmap2");
    std::os::unix::fs::symlink(install().setuid("newuidmap"), &link).unwrap();
    standard()
        .run_as(alice(), &[link.to_str().unwrap()])
        .assert_code(2)
        .assert_stderr_contains("unshare-run, newuidmap, newgidmap");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn decisions_are_logged_to_syslog_and_missing_syslog_changes_nothing() {
    require_root();
    use std::os::unix::net::UnixDatagram;
    let dir = TempDir::new("syslog");
    let sock_path = dir.path().join("log.sock");
    let server = UnixDatagram::bind(&sock_path).unwrap();
    std::fs::set_permissions(
        &sock_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .unwrap();
    server
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut logged = standard();
    logged.syslog_socket = Some(sock_path.clone());
    let helper = install().setuid("newuidmap");
    let a = alice();

    let t = Target::spawn(a);
    logged
        .run_as(a, &[&helper, &t.pid_arg(), "0", "100000", "65536"])
        .assert_code(0);
    let mut buf = [0u8; 4096];
    let n = server.recv(&mut buf).unwrap();
    let granted = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(granted.starts_with("<85>newuidmap["), "{granted}");
    assert!(
        granted.contains(&format!(
            "granted uid={}({}) target={} map=[0 100000 65536]",
            a.uid, a.name, t.pid
        )),
        "{granted}"
    );

    let t2 = Target::spawn(a);
    logged
        .run_as(a, &[&helper, &t2.pid_arg(), "0", "100000", "65537"])
        .assert_code(1);
    let n = server.recv(&mut buf).unwrap();
    let denied = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(denied.starts_with("<84>newuidmap["), "{denied}");
    assert!(
        denied.contains(&format!(
            "denied uid={}({}) target={}",
            a.uid, a.name, t2.pid
        )),
        "{denied}"
    );
    assert!(
        denied.contains("reason=\"uid range [0-65537) -> [100000-165537) not allowed\""),
        "{denied}"
    );

    // Without a syslog socket the same requests have the same outcomes.
    let t3 = Target::spawn(a);
    standard()
        .run_as(a, &[&helper, &t3.pid_arg(), "0", "100000", "65536"])
        .assert_code(0);
    assert_eq!(t3.uid_map(), t.uid_map());
    standard()
        .run_as(a, &[&helper, &t3.pid_arg(), "0", "100000", "65537"])
        .assert_code(1);
}

/// The write happens after the switch to the caller's uid, with CAP_SETUID as the only capability:
/// watched from outside with strace (run by root, so the setuid exec keeps its privilege).
#[test]
#[ignore = "needs root: sudo tests/run"]
fn map_is_written_as_the_caller_with_one_capability() {
    require_root();
    let a = alice();
    let (_, helper) = trace_a_map_write("execve,setresuid,capset,openat,write");
    let index = |needle: &str| helper.iter().position(|l| l.contains(needle));
    let switch = index(&format!("setresuid({0}, {0}, {0})", a.uid))
        .filter(|&i| helper[i].trim_end().ends_with("= 0"))
        .unwrap_or_else(|| panic!("no setresuid to the caller: {helper:#?}"));
    let open = index("\"uid_map\"").unwrap();
    let write = index("write(")
        .filter(|&w| helper[w].contains("0 100000 65536\\n"))
        .expect("no map write");
    assert!(switch < open && open < write, "order: {helper:#?}");
    let last_capset = helper[..open]
        .iter()
        .rev()
        .find(|l| l.contains("capset("))
        .expect("no capset");
    assert!(
        last_capset.contains("effective=1<<CAP_SETUID, permitted=1<<CAP_SETUID, inheritable=0"),
        "{last_capset}"
    );
    assert_eq!(
        helper
            .iter()
            .filter(|l| l.contains("write(") && l.contains("100000"))
            .count(),
        1
    );
}
