//! Compatibility: real clients of newuidmap/newgidmap (util-linux unshare, podman, buildah, rootlesskit,
//! lxc, mmdebstrap) work with our helpers bind-mounted over /usr/bin/newuidmap and /usr/bin/newgidmap,
//! and see the same maps as with shadow's (rootlesskit also with our getsubids over /usr/bin/getsubids).
//! Our helpers' audit records (caught on a private /dev/log) show that the client really ran ours.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use unshare_run_test_support::*;

/// A private /dev/log for a sandbox: the syslog records our helpers send there.
struct AuditLog {
    _dir: TempDir,
    path: std::path::PathBuf,
    socket: UnixDatagram,
}

impl AuditLog {
    fn new() -> AuditLog {
        let dir = TempDir::new("compat-syslog");
        let path = dir.path().join("log.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        AuditLog {
            _dir: dir,
            path,
            socket,
        }
    }

    /// Every record received so far.
    fn records(&self) -> Vec<String> {
        let mut buf = [0u8; 4096];
        let mut records = Vec::new();
        while let Ok(n) = self.socket.recv(&mut buf) {
            records.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        records
    }
}

/// Asserts that both of our helpers granted a map for `user`.
fn assert_ours_granted(records: &[String], user: &TestUser) {
    for helper in ["newuidmap", "newgidmap"] {
        assert!(
            records.iter().any(|r| r.contains(&format!("{helper}["))
                && r.contains(&format!("granted uid={}({})", user.uid, user.name))),
            "no grant by our {helper} in {records:?}"
        );
    }
}

fn fixture(user: &TestUser) -> Sandbox {
    let lines = [
        "urt-bob:400000:65536".to_string(),
        format!("{}:100000:65536", user.name),
        format!("{}:300000:1000", user.name),
    ];
    let mut sandbox = Sandbox::both(&lines.iter().map(String::as_str).collect::<Vec<_>>());
    // The clients must find the helpers at /usr/bin (ours bound there, or shadow's), not an installed
    // copy of ours in /usr/local/bin.
    sandbox
        .env
        .push(("PATH".into(), "/usr/sbin:/usr/bin:/sbin:/bin".into()));
    sandbox
}

/// Runs `argv` as `user` with our helpers, then with shadow's, `reset` before each run and after;
/// checks that ours granted the maps; returns both outputs' stdout with the maps' padding removed.
fn with_both_helpers_reset(user: &TestUser, argv: &[&str], reset: &dyn Fn()) -> (String, String) {
    let (our_log, their_log) = (AuditLog::new(), AuditLog::new());
    let mut ours = fixture(user);
    ours.our_helpers_in_usr_bin = true;
    ours.syslog_socket = Some(our_log.path.clone());
    let mut theirs = fixture(user);
    theirs.syslog_socket = Some(their_log.path.clone());
    reset();
    let ours_out = ours.run_as(user, argv);
    reset();
    let theirs_out = theirs.run_as(user, argv);
    reset();
    ours_out.assert_code(0);
    theirs_out.assert_code(0);
    assert_ours_granted(&our_log.records(), user);
    let their_records = their_log.records();
    assert!(
        !their_records.iter().any(|r| r.contains("granted uid=")),
        "our helpers ran where shadow's should have: {their_records:?}"
    );
    (
        normalise_map(&ours_out.stdout_text()),
        normalise_map(&theirs_out.stdout_text()),
    )
}

fn with_both_helpers(user: &TestUser, argv: &[&str]) -> (String, String) {
    with_both_helpers_reset(user, argv, &|| {})
}

/// `client` followed by the command that shows the maps it made.
fn showing_maps<'a>(client: &[&'a str]) -> Vec<&'a str> {
    let mut argv = client.to_vec();
    argv.extend(["cat", "/proc/self/uid_map", "/proc/self/gid_map"]);
    argv
}

/// The maps of a user with the fixture's two ranges when every range is mapped after root, as
/// podman, buildah and rootlesskit do.
fn every_range_after_root(user: &TestUser) -> String {
    format!(
        "0 {0} 1\n1 100000 65536\n65537 300000 1000\n0 {1} 1\n1 100000 65536\n65537 300000 1000",
        user.uid, user.gid
    )
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn util_linux_unshare_map_auto() {
    require_root();
    let a = alice();
    let (ours, shadow) = with_both_helpers(
        a,
        &showing_maps(&["unshare", "--map-auto", "--map-root-user"]),
    );
    // util-linux maps root to the caller and the first subordinate block (minus its last id).
    let expected_uid = format!("0 {} 1\n1 100000 65535", a.uid);
    let expected_gid = format!("0 {} 1\n1 100000 65535", a.gid);
    assert_eq!(ours, format!("{expected_uid}\n{expected_gid}"));
    assert_eq!(ours, shadow);
}

/// `TOOL unshare cat /proc/self/uid_map /proc/self/gid_map` (podman, buildah) as carol, with a
/// private runtime directory, her containers storage removed and her processes (podman's pause
/// process) killed around each run.
fn containers_unshare(tool: &str) -> (String, String) {
    let c = carol();
    let runtime = TempDir::new("containers-runtime");
    give_to(c, runtime.path());
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
    let mut client: Vec<&str> = vec!["env"];
    client.extend(env.iter().map(String::as_str));
    client.extend([tool, "unshare"]);
    let argv = showing_maps(&client);
    let reset = || {
        let _ = std::process::Command::new("pkill")
            .args(["-KILL", "-u", c.name])
            .status();
        wait_for(Duration::from_secs(5), || {
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
        for dir in ["containers", "libpod", "buildah"] {
            let _ = std::fs::remove_dir_all(runtime.path().join(dir));
        }
    };
    with_both_helpers_reset(c, &argv, &reset)
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn podman_unshare() {
    require_root();
    let (ours, shadow) = containers_unshare("podman");
    // podman maps every range of the user, after root.
    assert_eq!(ours, every_range_after_root(carol()));
    assert_eq!(ours, shadow);
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn buildah_unshare() {
    require_root();
    let (ours, shadow) = containers_unshare("buildah");
    assert_eq!(ours, every_range_after_root(carol()));
    assert_eq!(ours, shadow);
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn rootlesskit() {
    require_root();
    let a = alice();
    let state = TempDir::new("rootlesskit");
    give_to(a, state.path());
    // rootlesskit makes the state directory itself.
    let state_dir = state.path().join("state");
    let (ours, shadow) = with_both_helpers_reset(
        a,
        &showing_maps(&[
            "rootlesskit",
            "--net=host",
            "--state-dir",
            state_dir.to_str().unwrap(),
        ]),
        &|| {
            let _ = std::fs::remove_dir_all(&state_dir);
        },
    );
    assert_eq!(ours, every_range_after_root(a));
    assert_eq!(ours, shadow);
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn lxc_usernsexec() {
    require_root();
    let a = alice();
    let (ours, shadow) = with_both_helpers(a, &showing_maps(&["lxc-usernsexec", "--"]));
    // lxc maps the user's first range to root (and not the user's own id).
    assert_eq!(ours, "0 100000 65536\n0 100000 65536");
    assert_eq!(ours, shadow);
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn mmdebstrap_unshare_helper() {
    require_root();
    let a = alice();
    // mmdebstrap's unshare mode runs newuidmap and newgidmap for itself; --unshare-helper is that mode
    // without a bootstrap.
    let (ours, shadow) = with_both_helpers(a, &showing_maps(&["mmdebstrap", "--unshare-helper"]));
    assert_eq!(ours, "0 100000 65536\n0 100000 65536");
    assert_eq!(ours, shadow);
}

/// rootlesskit `--subid-source=dynamic` takes the ranges from /usr/bin/getsubids alone. With our
/// getsubids and helpers bound over /usr/bin's it gets the full map, the same as with shadow's; with
/// /bin/false bound there instead it fails, so the ranges came from our getsubids.
#[test]
#[ignore = "needs root: sudo tests/run"]
fn rootlesskit_dynamic_subid_source_with_our_getsubids() {
    require_root();
    let a = alice();
    let state = TempDir::new("rootlesskit-dynamic");
    give_to(a, state.path());
    let state_dir = state.path().join("state");
    let ours = state.path().join("getsubids");
    std::fs::copy(built_binary(), &ours).unwrap();
    let argv = showing_maps(&[
        "rootlesskit",
        "--net=host",
        "--subid-source=dynamic",
        "--state-dir",
        state_dir.to_str().unwrap(),
    ]);
    let log = AuditLog::new();
    let run = |getsubids: &str, our_helpers: bool| {
        let mut sandbox = fixture(a);
        sandbox.our_helpers_in_usr_bin = our_helpers;
        sandbox.syslog_socket = Some(log.path.clone());
        sandbox.setup = format!("mount --bind {getsubids} /usr/bin/getsubids\n");
        let _ = std::fs::remove_dir_all(&state_dir);
        let out = sandbox.run_as(a, &argv);
        let _ = std::fs::remove_dir_all(&state_dir);
        out
    };
    let with_ours = run(ours.to_str().unwrap(), true);
    with_ours.assert_code(0);
    assert_eq!(
        normalise_map(&with_ours.stdout_text()),
        every_range_after_root(a)
    );
    assert_ours_granted(&log.records(), a);
    let without = run("/bin/false", true);
    assert_ne!(without.code(), 0, "rootlesskit did not ask getsubids");
    without.assert_stderr_contains("failed to exec [/usr/bin/getsubids");
    let with_shadow = run("/usr/bin/getsubids", false);
    with_shadow.assert_code(0);
    assert_eq!(
        normalise_map(&with_shadow.stdout_text()),
        every_range_after_root(a)
    );
}
