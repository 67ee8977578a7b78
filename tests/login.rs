//! `unshare-run login` and `logout` against a real registry on 127.0.0.1 (tests/support's
//! LocalRegistry: TLS with a test CA in the user's certs.d, distribution's token authentication or
//! htpasswd, repositories under `private/` that need credentials). The test user has a home and a
//! runtime directory of its own, so that the default login file,
//! $XDG_RUNTIME_DIR/containers/auth.json, is the one under test.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::{Output, Stdio};

use unshare_run_test_support::oci;
use unshare_run_test_support::registry::*;
use unshare_run_test_support::*;

/// alice with a home and a runtime directory of her own, and a registry with a private image.
struct LoginUser {
    home: TempDir,
    runtime: TempDir,
    sandbox: Sandbox,
    registry: LocalRegistry,
    /// `private/app:1` at the registry.
    private_image: String,
}

impl LoginUser {
    fn new(options: RegistryOptions) -> LoginUser {
        let home = user_dir(alice(), "login-home");
        let runtime = user_dir(alice(), "login-run");
        // As systemd makes it: the user's own, 0700.
        fs::set_permissions(runtime.path(), fs::Permissions::from_mode(0o700)).unwrap();
        let registry = LocalRegistry::start(options);
        registry.trust_for(home.path(), alice());
        let images = TempDir::new("login-image");
        let small = oci::small_image(&images);
        registry.push(&small.path, "private/app:1", Compression::Gzip);
        let private_image = registry.reference("private/app:1");
        let mut sandbox = Sandbox::both(&[&format!("{}:100000:65536", alice().name)]);
        let h = home.path().to_str().unwrap().to_string();
        sandbox.env.extend([
            ("HOME".to_string(), h.clone()),
            ("XDG_DATA_HOME".to_string(), format!("{h}/data")),
            ("XDG_CONFIG_HOME".to_string(), format!("{h}/.config")),
            (
                "XDG_RUNTIME_DIR".to_string(),
                runtime.path().to_str().unwrap().to_string(),
            ),
            // No holder outlives the test in its runtime directory.
            ("UNSHARE_RUN_HOLDER_IDLE".to_string(), "0".to_string()),
        ]);
        LoginUser {
            home,
            runtime,
            sandbox,
            registry,
            private_image,
        }
    }

    fn with_token_auth() -> LoginUser {
        LoginUser::new(RegistryOptions {
            token_auth: true,
            ..RegistryOptions::default()
        })
    }

    fn auth_file(&self) -> PathBuf {
        self.runtime.path().join("containers/auth.json")
    }

    /// unshare-run ARGS as alice, with `stdin` on its standard input.
    fn run(&self, args: &[&str], stdin: &str) -> Output {
        let runner = install().runner();
        let mut argv = vec![runner.as_str()];
        argv.extend_from_slice(args);
        self.command(&argv, stdin)
    }

    fn command(&self, argv: &[&str], stdin: &str) -> Output {
        let dir = TempDir::new("login-sandbox");
        let mut child = self
            .sandbox
            .command_as(alice(), argv, &dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(stdin.as_bytes()).unwrap();
        drop(pipe);
        child.wait_with_output().unwrap()
    }

    fn login(&self, password: &str) -> Output {
        let (user, _) = self.registry.credentials();
        let address = self.registry.address();
        self.run(
            &["login", "--username", user, "--password-stdin", &address],
            &format!("{password}\n"),
        )
    }
}

fn text(out: &Output) -> String {
    format!("{}{}", out.stdout_text(), out.stderr_text())
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn login_lets_a_private_pull_through_and_logout_takes_it_back() {
    require_root();
    let u = LoginUser::with_token_auth();
    let (user, password) = u.registry.credentials();
    let address = u.registry.address();
    // Not logged in: the private image is refused, and the hint says how to log in.
    let out = u.run(&["images", "pull", &u.private_image], "");
    out.assert_code(125);
    assert!(
        out.stderr_text()
            .contains(&format!("unshare-run login {address}")),
        "{}",
        text(&out)
    );

    let out = u.login(password);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "Login Succeeded!\n", "{}", text(&out));
    // The token server saw the credentials, and a login asks for no repository.
    let log = u.registry.token_log();
    let checked = log.last().unwrap();
    assert_eq!(
        (checked.account.as_deref(), checked.status),
        (Some(user), 200)
    );
    assert!(checked.scopes.is_empty(), "{checked:?}");
    // podman's default file, alice's, 0600 in a 0700 directory, holding exactly the login.
    let file = u.auth_file();
    let meta = fs::metadata(&file).unwrap();
    assert_eq!(
        (meta.uid(), meta.mode() & 0o7777),
        (alice().uid, 0o600),
        "{}",
        file.display()
    );
    let dir = fs::metadata(file.parent().unwrap()).unwrap();
    assert_eq!((dir.uid(), dir.mode() & 0o7777), (alice().uid, 0o700));
    let saved: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert_eq!(
        saved,
        serde_json::json!({"auths": {address.clone(): {"auth": base64_of(&format!("{user}:{password}"))}}})
    );

    let out = u.run(&["images", "pull", &u.private_image], "");
    out.assert_code(0);
    let out = u.run(&["login", "--get-login", &address], "");
    out.assert_code(0);
    assert_eq!(out.stdout_text(), format!("{user}\n"));
    // Another tool of podman's family reads the same file: skopeo, as alice.
    let out = u.command(
        &[
            "skopeo",
            "inspect",
            "--raw",
            &format!("docker://{}", u.private_image),
        ],
        "",
    );
    out.assert_code(0);

    let out = u.run(&["logout", &address], "");
    out.assert_code(0);
    assert_eq!(
        out.stdout_text(),
        format!("Removed login credentials for {address}\n")
    );
    let saved: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved, serde_json::json!({"auths": {}}));
    // Logged out: the pull is refused again (the stored copy removed first, so that it asks).
    u.run(&["images", "rm", &u.private_image], "")
        .assert_code(0);
    let out = u.run(&["images", "pull", &u.private_image], "");
    out.assert_code(125);
    assert!(out.stderr_text().contains("refused"), "{}", text(&out));
    let out = u.run(&["logout", &address], "");
    out.assert_code(125);
    assert!(
        out.stderr_text()
            .contains(&format!("not logged into {address}")),
        "{}",
        text(&out)
    );
    let out = u.run(&["login", "--get-login", &address], "");
    out.assert_code(125);
    assert!(
        out.stderr_text()
            .contains(&format!("not logged into {address}")),
        "{}",
        text(&out)
    );
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_wrong_password_exits_125_and_writes_nothing() {
    require_root();
    let u = LoginUser::with_token_auth();
    let address = u.registry.address();
    let out = u.login("not-the-password");
    out.assert_code(125);
    assert!(
        out.stderr_text().contains(&format!(
            "logging into {address}: invalid username or password"
        )),
        "{}",
        text(&out)
    );
    assert_eq!(out.stdout_text(), "");
    assert_eq!(u.registry.token_log().last().unwrap().status, 401);
    assert!(
        !u.runtime.path().join("containers").exists(),
        "no file and no directory"
    );
    // Nor does an existing file change.
    let before = r#"{"auths": {"other.example": {"auth": "dTpw"}}, "x-other-tool": 1}"#;
    let dir = u.runtime.path().join("containers");
    fs::create_dir(&dir).unwrap();
    give_to(alice(), &dir);
    fs::write(u.auth_file(), before).unwrap();
    give_to(alice(), &u.auth_file());
    u.login("not-the-password").assert_code(125);
    assert_eq!(fs::read_to_string(u.auth_file()).unwrap(), before);
    // The right one is added beside what was there.
    let (_, password) = u.registry.credentials();
    u.login(password).assert_code(0);
    let saved: serde_json::Value =
        serde_json::from_slice(&fs::read(u.auth_file()).unwrap()).unwrap();
    assert_eq!(saved["x-other-tool"], 1);
    assert_eq!(saved["auths"]["other.example"]["auth"], "dTpw");
    assert!(saved["auths"][&address]["auth"].is_string(), "{saved}");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_basic_auth_registry_and_a_named_file() {
    require_root();
    let u = LoginUser::new(RegistryOptions {
        basic_auth: true,
        ..RegistryOptions::default()
    });
    let (user, password) = u.registry.credentials();
    let address = u.registry.address();
    let named = u.home.path().join("ci-auth.json");
    let named_arg = named.to_str().unwrap();
    let out = u.run(
        &[
            "login",
            "--authfile",
            named_arg,
            "-u",
            user,
            "-p",
            "wrong",
            &address,
        ],
        "",
    );
    out.assert_code(125);
    assert!(
        out.stderr_text().contains("invalid username or password"),
        "{}",
        text(&out)
    );
    assert!(!named.exists());
    let out = u.run(
        &[
            "login",
            "--authfile",
            named_arg,
            "-u",
            user,
            "-p",
            password,
            &address,
        ],
        "",
    );
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "Login Succeeded!\n");
    assert_eq!(fs::metadata(&named).unwrap().mode() & 0o7777, 0o600);
    assert!(
        !u.auth_file().exists(),
        "--authfile replaces the default file"
    );
    u.run(
        &["images", "pull", "--authfile", named_arg, &u.private_image],
        "",
    )
    .assert_code(0);
    let out = u.run(&["logout", "--authfile", named_arg, "--all"], "");
    out.assert_code(0);
    assert_eq!(
        out.stdout_text(),
        "Removed login credentials for all registries\n"
    );
}
