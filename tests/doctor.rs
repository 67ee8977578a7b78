//! `unshare-run doctor` as an unprivileged test user: a healthy set-up, and each failing check that
//! can be arranged without changing the machine (the sysctl and AppArmor gates are unit-tested in
//! src/runner/doctor.rs).

use unshare_run_test_support::*;

fn doctor(sandbox: &Sandbox, runner: &str) -> std::process::Output {
    sandbox.run_as(alice(), &[runner, "doctor"])
}

fn with_lines(lines: &[String]) -> Sandbox {
    Sandbox::both(&lines.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn healthy_set_up_passes() {
    require_root();
    let a = alice();
    let out = doctor(
        &with_lines(&[format!("{}:100000:65536", a.name)]),
        &install().runner(),
    );
    out.assert_code(0);
    let text = out.stdout_text();
    for line in [
        "[ ok ] unprivileged user namespaces work",
        "[ ok ] newuidmap is ",
        "unshare-run's, setuid root",
        &format!(
            "[ ok ] {} has 65536 ids in /etc/subuid: 100000-165535",
            a.name
        ),
        &format!(
            "[ ok ] {} has 65536 ids in /etc/subgid: 100000-165535",
            a.name
        ),
        "[ ok ] no_new_privs is not set",
        "A container with your full id map can start.",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(!text.contains("[FAIL]"), "{text}");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn range_problems_fail_with_the_fix() {
    require_root();
    let a = alice();
    let cases = [
        (
            vec![],
            format!("{} has no ranges in /etc/subuid", a.name),
            "usermod --add-subuids".to_string(),
        ),
        (
            vec![format!("{}:100000:1000", a.name)],
            format!("{} has 1000 ids in /etc/subuid", a.name),
            "a range of 65536".to_string(),
        ),
        (
            vec![format!("{}:{}:65536", a.name, a.uid - 10)],
            format!("contains {}'s own id {}", a.name, a.uid),
            "move".to_string(),
        ),
        (
            vec![
                format!("{}:100000:65536", a.name),
                format!("{}:165000:65536", bob().name),
            ],
            format!("overlaps {}'s [165000-230536)", bob().name),
            "do not overlap".to_string(),
        ),
    ];
    for (lines, what, fix) in cases {
        let out = doctor(&with_lines(&lines), &install().runner());
        out.assert_code(1);
        let text = out.stdout_text();
        assert!(text.contains(&what), "missing {what:?} in:\n{text}");
        assert!(
            text.contains("fix: ") && text.contains(&fix),
            "missing fix {fix:?} in:\n{text}"
        );
    }
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn unprivileged_or_nosuid_helpers_fail() {
    require_root();
    let a = alice();
    let ranges = [format!("{}:100000:65536", a.name)];
    // Helpers without their setuid bit next to the runner.
    let dir = TempDir::new("doctor-plain");
    for applet in ["unshare-run", "newuidmap", "newgidmap"] {
        let dest = dir.path().join(applet);
        std::fs::copy(built_binary(), &dest).unwrap();
        std::fs::set_permissions(&dest, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    let out = doctor(
        &with_lines(&ranges),
        dir.path().join("unshare-run").to_str().unwrap(),
    );
    out.assert_code(1);
    assert!(
        out.stdout_text()
            .contains("is neither setuid root nor has the file capability it needs")
    );
    assert!(out.stdout_text().contains("chmod 4755"));
    // A file capability, but the wrong one (newuidmap needs CAP_SETUID).
    run_ok(
        std::process::Command::new("setcap")
            .arg("cap_setgid=ep")
            .arg(dir.path().join("newuidmap")),
    );
    let out = doctor(
        &with_lines(&ranges),
        dir.path().join("unshare-run").to_str().unwrap(),
    );
    out.assert_code(1);
    assert!(
        out.stdout_text()
            .contains("newuidmap is neither setuid root nor has the file capability it needs"),
        "{}",
        out.stdout_text()
    );
    // The right ones pass.
    run_ok(
        std::process::Command::new("setcap")
            .arg("cap_setuid=ep")
            .arg(dir.path().join("newuidmap")),
    );
    run_ok(
        std::process::Command::new("setcap")
            .arg("cap_setgid=ep")
            .arg(dir.path().join("newgidmap")),
    );
    let out = doctor(
        &with_lines(&ranges),
        dir.path().join("unshare-run").to_str().unwrap(),
    );
    assert!(
        out.stdout_text().contains("newuidmap is "),
        "{}",
        out.stdout_text()
    );
    assert!(
        out.stdout_text().contains("file capability"),
        "{}",
        out.stdout_text()
    );
    out.assert_code(0);
    // Properly installed helpers on a nosuid mount.
    let mnt = TempDir::new("doctor-nosuid");
    let mut sandbox = with_lines(&ranges);
    sandbox.setup = format!(
        "mount -t tmpfs -o nosuid,mode=755 tmpfs {m}\n\
         install -m 0755 {bin} {m}/unshare-run\ninstall -m 4755 {bin} {m}/newuidmap\nln -s newuidmap {m}/newgidmap\n",
        m = mnt.path().display(),
        bin = built_binary().display(),
    );
    let out = doctor(&sandbox, mnt.path().join("unshare-run").to_str().unwrap());
    out.assert_code(1);
    assert!(
        out.stdout_text().contains("is on a nosuid mount"),
        "{}",
        out.stdout_text()
    );
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn no_new_privs_fails_and_tun_only_warns() {
    require_root();
    let a = alice();
    let mut sandbox = with_lines(&[format!("{}:100000:65536", a.name)]);
    sandbox.no_new_privs = true;
    let out = doctor(&sandbox, &install().runner());
    out.assert_code(1);
    assert!(
        out.stdout_text().contains("[FAIL] no_new_privs is set"),
        "{}",
        out.stdout_text()
    );
    // /dev/net/tun only matters for --net pasta: without access it is a warning, never a failure.
    let out = doctor(
        &with_lines(&[format!("{}:100000:65536", a.name)]),
        &install().runner(),
    );
    out.assert_code(0);
    let text = out.stdout_text();
    let usable_by_others = std::fs::metadata("/dev/net/tun")
        .is_ok_and(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o006 == 0o006);
    if usable_by_others {
        assert!(text.contains("[ ok ] /dev/net/tun is usable"), "{text}");
    } else {
        assert!(text.contains("[warn] /dev/net/tun is not usable"), "{text}");
        assert!(
            text.contains("fix: as root: chmod 0666 /dev/net/tun"),
            "{text}"
        );
    }
}
