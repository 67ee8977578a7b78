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
        &format!(
            "[ ok ] --map keep-id can keep your uid {0} and gid {1} inside (it needs {0} and {1} \
             subordinate ids below them; you have 65536 and 65536)",
            a.uid, a.gid
        ),
        "A container with your full id map can start.\nWhich map: --map full (the default)",
        "  --map keep-id: your own uid and gid inside",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(!text.contains("[FAIL]"), "{text}");
    // Fewer subordinate uids than the caller's uid: keep-id cannot keep it (a warning of its own,
    // besides the range's failure); the gids suffice.
    let few = Sandbox::new(
        Fixture::lines(&[&format!("{}:100000:700", a.name)]),
        Fixture::lines(&[&format!("{}:100000:65536", a.name)]),
    );
    let out = doctor(&few, &install().runner());
    out.assert_code(1);
    let text = out.stdout_text();
    assert!(
        text.contains(&format!(
            "[warn] --map keep-id cannot keep your uid {0} inside: it needs {0} subordinate uids \
             to fill the ids below it, and {1} has 700\n       fix: as root: usermod --add-subuids \
             START-END {1} (a free range of {2} ids or more); until then, use the full map",
            a.uid,
            a.name,
            a.uid - 700
        )),
        "{text}"
    );
    assert!(!text.contains("keep your gid"), "{text}");
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

/// A sandbox in which a user `kubelet` (uid 4322) exists, known only to NSS (libnss-extrausers,
/// configured only in the sandbox's /etc overlay, as tests/runner.rs provides its NSS-only user: no
/// real user is made), with our getsubids bound over /usr/bin/getsubids and PATH without /usr/local (`getsubids: false` hides it
/// instead). alice has a range far from every kubelet fixture, so that only the kubelet check
/// speaks.
fn with_kubelet(subuid: &[&str], subgid: &[&str], getsubids: bool, ours: &TempDir) -> Sandbox {
    let alice_range = format!("{}:4000000000:65536", alice().name);
    let lines = |kubelet: &[&str]| {
        let mut lines = vec![alice_range.as_str()];
        lines.extend_from_slice(kubelet);
        Fixture::lines(&lines)
    };
    let mut sandbox = Sandbox::new(lines(subuid), lines(subgid));
    // Without /usr/local: a machine on which the README's set-up ran has our getsubids there too.
    sandbox
        .env
        .push(("PATH".into(), "/usr/sbin:/usr/bin:/sbin:/bin".into()));
    let getsubids = if getsubids {
        format!(
            "mount --bind {} /usr/bin/getsubids",
            ours.path().join("getsubids").display()
        )
    } else {
        "mount --bind /dev/null /usr/bin/getsubids".into()
    };
    sandbox.setup = format!(
        "grep -q '^kubelet:' /etc/passwd && exit 99\n\
         mount -t tmpfs -o mode=755 tmpfs /var/lib/extrausers\n\
         echo 'kubelet:x:4322:4322::/nonexistent:/usr/sbin/nologin' > /var/lib/extrausers/passwd\n\
         echo 'kubelet:x:4322:' > /var/lib/extrausers/group\n\
         sed -i 's/^passwd:.*/passwd: files extrausers/; s/^group:.*/group: files extrausers/' \
         /etc/nsswitch.conf\n\
         {getsubids}"
    );
    sandbox
}

/// doctor's kubelet check with a user `kubelet` that only NSS knows (the packaged, musl-linked
/// runner finds it through getent): a passing fixture, then one failing fixture per rule, each
/// with its warning and the fix with concrete numbers. Beside doctor, the getsubids the kubelet
/// would run prints what doctor judged. A kubelet problem is a warning: exit status 0 throughout.
#[test]
#[ignore = "needs root: sudo tests/run"]
fn kubelet_check_passes_and_warns_with_the_fix_for_each_rule() {
    require_root();
    let ours = TempDir::new("doctor-getsubids");
    let dest = ours.path().join("getsubids");
    std::fs::copy(built_binary(), &dest).unwrap();
    std::fs::set_permissions(&dest, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let run = |subuid: &[&str], subgid: &[&str], getsubids: bool| {
        let sandbox = with_kubelet(subuid, subgid, getsubids, &ours);
        let script = format!(
            "{} doctor; echo \"doctor exit $?\"; echo ---; getsubids kubelet; getsubids -g kubelet",
            install().runner()
        );
        let out = sandbox.run_as(alice(), &["sh", "-c", &script]);
        let text = out.stdout_text();
        let (doctor, listed) = text.split_once("---\n").expect("both parts ran");
        assert!(doctor.contains("doctor exit 0\n"), "{text}");
        assert!(!doctor.contains("[FAIL]"), "{text}");
        (doctor.to_string(), listed.to_string())
    };

    let good = "kubelet:65536:7208960";
    let (doctor, listed) = run(&[good], &[good], true);
    assert_eq!(
        listed,
        "0: kubelet 65536 7208960\n0: kubelet 65536 7208960\n"
    );
    for line in [
        "[ ok ] getsubids is /usr/bin/getsubids (the kubelet runs it: a user kubelet exists)",
        "[ ok ] `getsubids kubelet` and `getsubids -g kubelet` both print `0: kubelet 65536 \
         7208960`: ids for 110 pods, as the kubelet needs",
        "A container with your full id map can start.",
    ] {
        assert!(doctor.contains(line), "missing {line:?} in:\n{doctor}");
    }
    assert!(!doctor.contains("[warn] user kubelet"), "{doctor}");
    // The uid's own line is kubelet's too.
    let (doctor, _) = run(&["4322:65536:7208960"], &[good], true);
    assert!(
        doctor.contains("both print `0: kubelet 65536 7208960`"),
        "{doctor}"
    );

    let moved = |old: &str| {
        format!(
            "fix: as root: usermod --del-subuids {old} --del-subgids {old} --add-subuids \
             65536-7274495 --add-subgids 65536-7274495 kubelet\n"
        )
    };
    let bob_line = format!("{}:100000:65536", bob().name);
    // (subuid lines, subgid lines, getsubids in PATH, the warning, the fix)
    type Case<'a> = (Vec<&'a str>, Vec<&'a str>, bool, String, String);
    let cases: Vec<Case> = vec![
        (
            vec![good],
            vec![good],
            false,
            "[warn] a user kubelet exists but getsubids is not in PATH".into(),
            "fix: install this project's Debian package (/usr/bin/getsubids)".into(),
        ),
        (
            vec![good],
            vec![],
            true,
            "[warn] user kubelet has no ranges in /etc/subgid: `getsubids -g kubelet` fails".into(),
            "fix: as root: usermod --add-subgids 65536-7274495 kubelet\n".into(),
        ),
        (
            vec![good, "kubelet:8000000:65536"],
            vec![good],
            true,
            "[warn] user kubelet has 2 ranges in /etc/subuid (65536-7274495, 8000000-8065535): \
             `getsubids kubelet` prints 2 lines, the kubelet takes exactly one"
                .into(),
            "fix: as root: usermod --del-subuids 8000000-8065535 kubelet\n".into(),
        ),
        (
            vec![good],
            vec!["kubelet:7274496:7208960"],
            true,
            "[warn] `getsubids kubelet` prints `0: kubelet 65536 7208960` but `getsubids -g \
             kubelet` prints `0: kubelet 7274496 7208960`: the kubelet needs both identical"
                .into(),
            "fix: as root: usermod --del-subgids 7274496-14483455 --add-subgids 65536-7274495 \
             kubelet\n"
                .into(),
        ),
        (
            vec!["kubelet:100000:7208960"],
            vec!["kubelet:100000:7208960"],
            true,
            "starts at 100000, not a multiple of 65536".into(),
            moved("100000-7308959"),
        ),
        (
            vec!["kubelet:0:7208960"],
            vec!["kubelet:0:7208960"],
            true,
            "starts below 65536 (the kubelet keeps ids 0-65535 for the host)".into(),
            moved("0-7208959"),
        ),
        (
            vec!["kubelet:65536:7208961"],
            vec!["kubelet:65536:7208961"],
            true,
            "has 7208961 ids, not a multiple of 65536".into(),
            moved("65536-7274496"),
        ),
        (
            vec!["kubelet:65536:65536"],
            vec!["kubelet:65536:65536"],
            true,
            "has 65536 ids, fewer than 65536 x 110 = 7208960".into(),
            moved("65536-131071"),
        ),
        (
            vec!["kubelet:4294901760:7208960"],
            vec!["kubelet:4294901760:7208960"],
            true,
            "runs past 4294967294, the largest id a map can hold".into(),
            moved("4294901760-4302110719"),
        ),
        (
            vec![&bob_line, good],
            vec![&bob_line, good],
            true,
            format!(
                "[warn] user kubelet's range 65536-7274495 in /etc/subuid and /etc/subgid overlaps \
                 {b}'s 100000-165535 in /etc/subuid and /etc/subgid: pods would get ids that {b} has",
                b = bob().name
            ),
            "fix: as root: usermod --del-subuids 65536-7274495 --del-subgids 65536-7274495 \
             --add-subuids 196608-7405567 --add-subgids 196608-7405567 kubelet\n"
                .into(),
        ),
    ];
    for (subuid, subgid, getsubids, what, fix) in cases {
        let (doctor, _) = run(&subuid, &subgid, getsubids);
        assert!(doctor.contains(&what), "missing {what:?} in:\n{doctor}");
        assert!(doctor.contains(&fix), "missing {fix:?} in:\n{doctor}");
        assert_eq!(
            doctor.matches("[warn]").count() - doctor.matches("[warn] /dev/net/tun").count(),
            1,
            "one warning for one broken rule:\n{doctor}"
        );
    }
}

/// Without a user `kubelet`, doctor says nothing about it.
#[test]
#[ignore = "needs root: sudo tests/run"]
fn no_kubelet_user_no_kubelet_line() {
    require_root();
    let out = doctor(
        &with_lines(&[format!("{}:100000:65536", alice().name)]),
        &install().runner(),
    );
    out.assert_code(0);
    assert!(
        !out.stdout_text().contains("kubelet"),
        "{}",
        out.stdout_text()
    );
    assert!(
        !out.stdout_text().contains("getsubids"),
        "{}",
        out.stdout_text()
    );
}
