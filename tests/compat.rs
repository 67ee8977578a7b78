//! Compatibility: real clients of newuidmap/newgidmap (util-linux unshare, podman) work with our helpers
//! bind-mounted over /usr/bin/newuidmap and /usr/bin/newgidmap, and see the same maps as with shadow's.

mod common;

use common::*;

fn fixture(user: &TestUser) -> Sandbox {
    let lines = [
        "urt-bob:400000:65536".to_string(),
        format!("{}:100000:65536", user.name),
        format!("{}:300000:1000", user.name),
    ];
    Sandbox::both(&lines.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Runs `argv` as `user` with shadow's helpers and with ours; returns both outputs' stdout.
fn with_both_helpers(user: &TestUser, argv: &[&str]) -> (String, String) {
    let mut ours = fixture(user);
    ours.our_helpers_in_usr_bin = true;
    let theirs = fixture(user);
    let ours_out = ours.run_as(user, argv);
    ours_out.assert_code(0);
    let theirs_out = theirs.run_as(user, argv);
    theirs_out.assert_code(0);
    (
        normalise_map(&ours_out.stdout_text()),
        normalise_map(&theirs_out.stdout_text()),
    )
}

#[test]
fn util_linux_unshare_map_auto() {
    if !privileged() {
        return;
    }
    let a = alice();
    let (ours, shadow) = with_both_helpers(
        a,
        &[
            "unshare",
            "--map-auto",
            "--map-root-user",
            "cat",
            "/proc/self/uid_map",
            "/proc/self/gid_map",
        ],
    );
    // util-linux maps root to the caller and the first subordinate block (minus its last id).
    let expected_uid = format!("0 {} 1\n1 100000 65535", a.uid);
    let expected_gid = format!("0 {} 1\n1 100000 65535", a.gid);
    assert_eq!(ours, format!("{expected_uid}\n{expected_gid}"));
    assert_eq!(ours, shadow);
}

#[test]
fn podman_unshare() {
    if !privileged() {
        return;
    }
    let c = carol();
    let runtime = TempDir::new("podman-runtime");
    run_ok(
        std::process::Command::new("chown")
            .arg(c.name)
            .arg(runtime.path()),
    );
    std::fs::set_permissions(
        runtime.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let home = format!("/home/{}", c.name);
    let env = [
        format!("HOME={home}"),
        format!("USER={}", c.name),
        format!("XDG_RUNTIME_DIR={}", runtime.path().display()),
    ];
    let mut argv: Vec<&str> = vec!["env"];
    argv.extend(env.iter().map(String::as_str));
    argv.extend([
        "podman",
        "unshare",
        "cat",
        "/proc/self/uid_map",
        "/proc/self/gid_map",
    ]);
    let cleanup = || {
        // podman keeps a pause process per user; take it and the user's storage away.
        let _ = std::process::Command::new("pkill")
            .args(["-KILL", "-u", c.name])
            .status();
        wait_for(std::time::Duration::from_secs(5), || {
            !std::process::Command::new("pgrep")
                .args(["-u", c.name])
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap()
                .success()
        });
        for dir in [
            ".local/share/containers",
            ".config/containers",
            ".cache/containers",
        ] {
            let _ = std::fs::remove_dir_all(format!("{home}/{dir}"));
        }
        let _ = std::fs::remove_dir_all(runtime.path().join("containers"));
        let _ = std::fs::remove_dir_all(runtime.path().join("libpod"));
    };
    cleanup();
    let mut ours = fixture(c);
    ours.our_helpers_in_usr_bin = true;
    let ours_out = ours.run_as(c, &argv);
    cleanup();
    let shadow_out = fixture(c).run_as(c, &argv);
    cleanup();
    ours_out.assert_code(0);
    shadow_out.assert_code(0);
    // podman maps every range of the user, after root.
    let expected_uid = format!("0 {} 1\n1 100000 65536\n65537 300000 1000", c.uid);
    let expected_gid = format!("0 {} 1\n1 100000 65536\n65537 300000 1000", c.gid);
    let ours_maps = normalise_map(&ours_out.stdout_text());
    assert_eq!(
        ours_maps,
        format!("{expected_uid}\n{expected_gid}"),
        "{}",
        ours_out.stderr_text()
    );
    assert_eq!(ours_maps, normalise_map(&shadow_out.stdout_text()));
}
