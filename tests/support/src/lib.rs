//! Shared set-up of the integration tests (tests/*.rs), one library that every test binary links
//! instead of compiling a copy of it.
//!
//! Two tiers (docs/testing.md): tests that need no root (tests/single_id.rs runs unshare-run with
//! single-id maps as whoever runs the tests), and privileged tests, marked
//! `#[ignore = "needs root: sudo tests/run"]`, which `tests/run` runs as root with `--include-ignored`
//! and which start with `require_root()`. The privileged ones:
//! - create their own unprivileged users (`urt-alice`, `urt-bob`) without subordinate ranges;
//! - install copies of the built binary setuid-root and with file capabilities under /tmp;
//! - run every helper in a private mount namespace whose /etc is an overlay, so fixture subuid/subgid
//!   files (or their absence, or a symlink) are seen there and the machine's real files never change.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub mod oci;
pub mod registry;

// For the tests that read unshare-run's JSON records (tests/lifecycle.rs).
pub use serde_json;

/// Root of everything this test process creates; removed by `Cleanup` at the end of each test binary
/// run and swept at the next start if a run was killed.
const TMP_PREFIX: &str = "/tmp/unshare-run-tests.";

/// What every privileged test says: `#[ignore = "needs root: sudo tests/run"]`, so that `cargo test`
/// lists it as ignored and `tests/run` (`--include-ignored`, as root) runs it. (An attribute takes
/// only a literal; a unit test below keeps the copies equal.)
pub const NEEDS_ROOT: &str = "needs root: sudo tests/run";

/// The first statement of every privileged test (and of the set-up only they use: test users,
/// installs). Run without root anyway (`--include-ignored` as a normal user), the test fails here and
/// says why, rather than passing without having tested anything.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (it creates test users, setuid copies and mounts): run the suite with \
         sudo tests/run; without --include-ignored, cargo test lists the test as ignored"
    );
}

#[derive(Debug)]
pub struct TestUser {
    pub name: &'static str,
    pub uid: u32,
    pub gid: u32,
}

fn ensure_user(name: &'static str) -> TestUser {
    require_root();
    // Another test binary may be creating the same user right now.
    let lock = fs::File::create("/tmp/unshare-run-tests.users.lock").unwrap();
    let _guard = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).unwrap();
    if nix::unistd::User::from_name(name).unwrap().is_none() {
        // SUB_*_COUNT=0: useradd must not add ranges to the machine's real /etc/subuid.
        let status = Command::new("useradd")
            .args([
                "-m",
                "-s",
                "/bin/sh",
                "-K",
                "SUB_UID_COUNT=0",
                "-K",
                "SUB_GID_COUNT=0",
                name,
            ])
            .status()
            .unwrap();
        assert!(status.success(), "useradd {name} failed");
    }
    let user = nix::unistd::User::from_name(name).unwrap().unwrap();
    TestUser {
        name,
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
    }
}

pub fn alice() -> &'static TestUser {
    static USER: OnceLock<TestUser> = OnceLock::new();
    USER.get_or_init(|| ensure_user("urt-alice"))
}

pub fn bob() -> &'static TestUser {
    static USER: OnceLock<TestUser> = OnceLock::new();
    USER.get_or_init(|| ensure_user("urt-bob"))
}

/// A user for podman, whose pause process and storage the podman test removes afterwards.
pub fn carol() -> &'static TestUser {
    static USER: OnceLock<TestUser> = OnceLock::new();
    USER.get_or_init(|| ensure_user("urt-carol"))
}

/// This test process's scratch directory (0755, so test users can reach what is inside).
pub fn scratch_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        sweep_stale_scratch_dirs();
        let dir = PathBuf::from(format!("{TMP_PREFIX}{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        dir
    })
}

fn sweep_stale_scratch_dirs() {
    for entry in fs::read_dir("/tmp").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("unshare-run-tests.")
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// A fresh directory below the scratch root, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = scratch_root().join(format!("{label}-{n}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The built binary installed as the helpers, once per test process.
pub struct Install {
    /// newuidmap, newgidmap, unshare-run: root-owned copies, mode 4755.
    pub setuid_dir: PathBuf,
    /// newuidmap with cap_setuid=ep, newgidmap with cap_setgid=ep (separate copies), mode 0755.
    pub fcaps_dir: PathBuf,
    /// As the Debian package installs it: unshare-run 0755, newuidmap 4755, newgidmap -> newuidmap.
    pub runner_dir: PathBuf,
}

impl Install {
    pub fn setuid(&self, applet: &str) -> String {
        self.setuid_dir.join(applet).to_string_lossy().into_owned()
    }
    pub fn fcaps(&self, applet: &str) -> String {
        self.fcaps_dir.join(applet).to_string_lossy().into_owned()
    }
    pub fn runner(&self) -> String {
        self.runner_dir
            .join("unshare-run")
            .to_string_lossy()
            .into_owned()
    }
}

/// The unshare-run binary under test: the one cargo built, or the file UNSHARE_RUN_TEST_BINARY names
/// (to run the same tests against another build of the same source, e.g. the musl one:
/// docs/testing.md).
///
/// A library has no `env!("CARGO_BIN_EXE_unshare-run")` (cargo sets it only where it compiles an
/// integration test), so the build is found at run time: from `CARGO_BIN_EXE_unshare-run` in the
/// environment, which `cargo test` sets since cargo 1.94, else beside the running test executable,
/// as cargo lays them out: the test in `target/<profile>/deps/`, the package's binaries in
/// `target/<profile>/` (cargo builds them for every integration test).
pub fn built_binary() -> PathBuf {
    if let Some(file) = std::env::var_os("UNSHARE_RUN_TEST_BINARY") {
        return PathBuf::from(file);
    }
    if let Some(file) = std::env::var_os("CARGO_BIN_EXE_unshare-run") {
        return PathBuf::from(file);
    }
    let test = std::env::current_exe().expect("the test executable's path");
    let deps = test.parent().filter(|d| d.ends_with("deps"));
    let built = deps
        .and_then(Path::parent)
        .map(|dir| dir.join("unshare-run"));
    match built {
        Some(file) if file.is_file() => file,
        _ => panic!(
            "no unshare-run beside the test executable {} (cargo builds it in target/<profile>/, \
             the test in target/<profile>/deps/); run the test with cargo test, or name the build \
             with UNSHARE_RUN_TEST_BINARY=FILE",
            test.display()
        ),
    }
}

/// The repository's top directory (packaging scripts, man pages, completions). This crate is
/// tests/support in it.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .expect("tests/support lies two levels below the repository")
}

/// The build that runs as `unshare-run` in the runner tests (`install().runner()`, beside the helpers
/// of `built_binary()`): UNSHARE_RUN_TEST_RUNNER, else the same build. tests/run sets it to the musl
/// build when there is one, as the packages ship it (README, "Why the runner is linked against musl").
pub fn runner_binary() -> PathBuf {
    std::env::var_os("UNSHARE_RUN_TEST_RUNNER")
        .map(PathBuf::from)
        .unwrap_or_else(built_binary)
}

pub fn install() -> &'static Install {
    static INSTALL: OnceLock<Install> = OnceLock::new();
    INSTALL.get_or_init(|| {
        require_root();
        let built = &built_binary();
        let setuid_dir = scratch_root().join("setuid");
        let fcaps_dir = scratch_root().join("fcaps");
        let runner_dir = scratch_root().join("runner");
        for dir in [&setuid_dir, &fcaps_dir, &runner_dir] {
            fs::create_dir_all(dir).unwrap();
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
        }
        for applet in ["newuidmap", "newgidmap", "unshare-run"] {
            let dest = setuid_dir.join(applet);
            fs::copy(built, &dest).unwrap();
            fs::set_permissions(&dest, fs::Permissions::from_mode(0o4755)).unwrap();
        }
        for (applet, caps) in [
            ("newuidmap", "cap_setuid=ep"),
            ("newgidmap", "cap_setgid=ep"),
            // The spoof test runs the newuidmap copy under this name.
            ("unshare-run", "cap_setuid=ep"),
        ] {
            let dest = fcaps_dir.join(applet);
            fs::copy(built, &dest).unwrap();
            fs::set_permissions(&dest, fs::Permissions::from_mode(0o755)).unwrap();
            run_ok(Command::new("setcap").arg(caps).arg(&dest));
        }
        for (applet, mode, source) in [
            ("unshare-run", 0o755, &runner_binary()),
            ("newuidmap", 0o4755, built),
        ] {
            let dest = runner_dir.join(applet);
            fs::copy(source, &dest).unwrap();
            fs::set_permissions(&dest, fs::Permissions::from_mode(mode)).unwrap();
        }
        std::os::unix::fs::symlink("newuidmap", runner_dir.join("newgidmap")).unwrap();
        Install {
            setuid_dir,
            fcaps_dir,
            runner_dir,
        }
    })
}

pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// What /etc/subuid or /etc/subgid looks like inside a sandbox.
#[derive(Clone, Debug)]
pub enum Fixture {
    /// A regular root-owned 0644 file with this content.
    Content(String),
    /// A file with this content, mode and owner.
    WithMode {
        content: String,
        mode: u32,
        owner: String,
    },
    /// No file at all.
    Missing,
    /// A symbolic link to a root-owned file with this content.
    Symlink(String),
}

impl Fixture {
    pub fn lines(lines: &[&str]) -> Fixture {
        let mut s = lines.join("\n");
        s.push('\n');
        Fixture::Content(s)
    }
}

/// A private mount namespace with fixture subid files, in which commands run as a test user.
pub struct Sandbox {
    pub subuid: Fixture,
    pub subgid: Fixture,
    /// Bind our setuid helpers over /usr/bin/newuidmap and /usr/bin/newgidmap.
    pub our_helpers_in_usr_bin: bool,
    /// A datagram socket to bind over /dev/log (on a private tmpfs /dev).
    pub syslog_socket: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    /// Use this group as the real gid instead of the user's primary group.
    pub gid_override: Option<u32>,
    /// Shell commands run as root in the sandbox before switching to the user.
    pub setup: String,
    /// Run the user's command with no_new_privs set.
    pub no_new_privs: bool,
    /// Run in a network namespace of the sandbox's own, which stands for the host's network: loopback
    /// up, and a tap device that nothing reads as the way out (10.99.0.2/24, default route via
    /// 10.99.0.1), so that nothing sent there leaves the machine. (A tap: this kernel has no dummy
    /// interfaces.)
    pub own_network: bool,
}

impl Sandbox {
    pub fn new(subuid: Fixture, subgid: Fixture) -> Sandbox {
        Sandbox {
            subuid,
            subgid,
            our_helpers_in_usr_bin: false,
            syslog_socket: None,
            // Holders made by tests end soon after the test (tests that need longer say so).
            env: vec![("UNSHARE_RUN_HOLDER_IDLE".into(), "10".into())],
            gid_override: None,
            setup: String::new(),
            no_new_privs: false,
            own_network: false,
        }
    }

    /// Same fixture for both files.
    pub fn both(lines: &[&str]) -> Sandbox {
        Sandbox::new(Fixture::lines(lines), Fixture::lines(lines))
    }

    pub fn command_as(&self, user: &TestUser, argv: &[&str], dir: &TempDir) -> Command {
        let t = dir.path();
        let mut script = String::from("set -e\n");
        script.push_str(&format!(
            "mkdir -p {t}/etc-up {t}/etc-work\n\
             mount -t overlay -o lowerdir=/etc,upperdir={t}/etc-up,workdir={t}/etc-work overlay /etc\n",
            t = t.display()
        ));
        for (name, fixture) in [("subuid", &self.subuid), ("subgid", &self.subgid)] {
            script.push_str(&fixture_script(t, name, fixture));
        }
        if self.our_helpers_in_usr_bin {
            let i = install();
            script.push_str(&format!(
                "mount --bind {} /usr/bin/newuidmap\nmount --bind {} /usr/bin/newgidmap\n",
                i.setuid("newuidmap"),
                i.setuid("newgidmap")
            ));
        }
        if let Some(sock) = &self.syslog_socket {
            script.push_str(&format!(
                "mkdir -p {t}/realdev\nmount --rbind /dev {t}/realdev\n\
                 mount -t tmpfs -o mode=755 tmpfs /dev\n\
                 for n in null zero full random urandom tty; do touch /dev/$n; mount --bind {t}/realdev/$n /dev/$n; done\n\
                 ln -s /proc/self/fd /dev/fd\nmkdir -m 1777 /dev/shm\n\
                 mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm\n\
                 touch /dev/log\nmount --bind {sock} /dev/log\n",
                t = t.display(),
                sock = sock.display()
            ));
        }
        if self.own_network {
            script.push_str(
                "ip link set lo up\nip tuntap add urt0 mode tap\n\
                 ip addr add 10.99.0.2/24 dev urt0\nip link set urt0 up\n\
                 ip route add default via 10.99.0.1\n",
            );
        }
        script.push_str(&self.setup);
        script.push('\n');
        let gid = self.gid_override.unwrap_or(user.gid);
        let nnp = if self.no_new_privs {
            "--no-new-privs "
        } else {
            ""
        };
        script.push_str(&format!(
            "exec setpriv {nnp}--reuid={} --regid={gid} --clear-groups -- \"$@\"\n",
            user.uid
        ));
        let mut cmd = Command::new("unshare");
        if self.own_network {
            cmd.arg("--net");
        }
        cmd.args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            &script,
            "sandbox",
        ]);
        cmd.args(argv);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.stdin(Stdio::null());
        // The test user may not be able to enter the caller's directory (podman needs its cwd).
        cmd.current_dir("/");
        cmd
    }

    pub fn run_as(&self, user: &TestUser, argv: &[&str]) -> Output {
        let dir = TempDir::new("sandbox");
        let out = self.command_as(user, argv, &dir).output().unwrap();
        drop(dir);
        out
    }
}

fn fixture_script(t: &Path, name: &str, fixture: &Fixture) -> String {
    let src = t.join(format!("{name}.fixture"));
    let write = |content: &str| {
        fs::write(&src, content).unwrap();
        fs::set_permissions(&src, fs::Permissions::from_mode(0o644)).unwrap();
    };
    match fixture {
        Fixture::Content(content) => {
            write(content);
            format!(
                "rm -f /etc/{name}\ninstall -m 0644 -o root -g root {} /etc/{name}\n",
                src.display()
            )
        }
        Fixture::WithMode {
            content,
            mode,
            owner,
        } => {
            write(content);
            format!(
                "rm -f /etc/{name}\ninstall -m {mode:04o} -o {owner} -g root {} /etc/{name}\n",
                src.display()
            )
        }
        Fixture::Missing => format!("rm -f /etc/{name}\n"),
        Fixture::Symlink(content) => {
            write(content);
            format!("rm -f /etc/{name}\nln -s {} /etc/{name}\n", src.display())
        }
    }
}

/// A process of a test user that has unshared its user namespace and waits for us.
pub struct Target {
    child: Child,
    pub pid: i32,
}

impl Target {
    pub fn spawn(user: &TestUser) -> Target {
        Target::spawn_with_gid(user, user.gid)
    }

    pub fn spawn_with_gid(user: &TestUser, gid: u32) -> Target {
        let mut child = Command::new("setpriv")
            .arg(format!("--reuid={}", user.uid))
            .arg(format!("--regid={gid}"))
            .args([
                "--clear-groups",
                "--",
                "unshare",
                "--user",
                "--",
                "sh",
                "-c",
                "echo ready; exec cat",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "ready\n");
        let pid = child.id() as i32;
        Target { child, pid }
    }

    pub fn pid_arg(&self) -> String {
        self.pid.to_string()
    }

    fn read(&self, file: &str) -> String {
        fs::read_to_string(format!("/proc/{}/{file}", self.pid)).unwrap()
    }

    /// The map as "inside outside count" lines, white space normalised.
    pub fn uid_map(&self) -> String {
        normalise_map(&self.read("uid_map"))
    }
    pub fn gid_map(&self) -> String {
        normalise_map(&self.read("gid_map"))
    }
    pub fn setgroups(&self) -> String {
        self.read("setgroups").trim().to_string()
    }

    /// Writes into the namespace from inside: proves the map is usable.
    pub fn stdin(&mut self) -> &mut std::process::ChildStdin {
        self.child.stdin.as_mut().unwrap()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn normalise_map(map: &str) -> String {
    map.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Output checks with the output in the failure message.
pub trait OutputExt {
    fn code(&self) -> i32;
    fn stderr_text(&self) -> String;
    fn stdout_text(&self) -> String;
    fn assert_code(&self, code: i32) -> &Self;
    fn assert_stderr_contains(&self, needle: &str) -> &Self;
}

impl OutputExt for Output {
    fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }
    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            code,
            "exit status; stdout: {}\nstderr: {}",
            self.stdout_text(),
            self.stderr_text()
        );
        self
    }
    fn assert_stderr_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stderr_text().contains(needle),
            "stderr lacks {needle:?}: {}",
            self.stderr_text()
        );
        self
    }
}

/// A keyring probe (compile it with `compile_into`): `host SECRET -- CMD...` puts SECRET in a new
/// session keyring as `urt-secret`, runs CMD and says whether CMD planted `urt-planted` there;
/// `read` shows `urt-secret` as the session keyring gives it (or the errno), `plant` adds
/// `urt-planted`, `read-planted` shows it (tests/confinement.rs, tests/lifecycle.rs).
pub const KEYRING_PROBE: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#define SESSION -3
static long find(const char *name) {
    return syscall(SYS_keyctl, 10 /* KEYCTL_SEARCH */, SESSION, "user", name, 0);
}
static void show(const char *what, long serial) {
    char value[64] = "";
    if (serial >= 0) {
        long n = syscall(SYS_keyctl, 11 /* KEYCTL_READ */, serial, value, sizeof value - 1);
        if (n >= 0) { value[n] = 0; printf("%s=%s\n", what, value); return; }
    }
    printf("%s=%s\n", what, strerrorname_np(errno));
}
int main(int argc, char **argv) {
    if (argc > 3 && !strcmp(argv[1], "host")) {
        if (syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, NULL) < 0) return 3;
        if (syscall(SYS_add_key, "user", "urt-secret", argv[2], strlen(argv[2]), SESSION) < 0) return 4;
        pid_t pid = fork();
        if (pid == 0) { execvp(argv[4], argv + 4); _exit(127); }
        int status;
        waitpid(pid, &status, 0);
        printf("host-sees-planted=%s\n", find("urt-planted") >= 0 ? "yes" : "no");
        return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    }
    if (argc > 1 && !strcmp(argv[1], "read")) {
        show("read", find("urt-secret"));
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "read-planted")) {
        show("read-planted", find("urt-planted"));
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "plant")) {
        long serial = syscall(SYS_add_key, "user", "urt-planted", "mine", 4, SESSION);
        show("plant", serial);
        return 0;
    }
    return 2;
}
"#;

/// Waits until `cond` holds or `timeout` passes.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

/// The static busybox (package busybox-static).
pub fn busybox() -> &'static str {
    ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox missing: apt-get install busybox-static")
}

/// A tiny root filesystem made of the static busybox, owned by `user` (who is root inside), once per
/// test process. Each test that writes into it uses its own copy (`busybox_rootfs_copy`).
pub fn busybox_rootfs(user: &TestUser) -> TempDir {
    let dir = TempDir::new("busybox-root");
    let root = dir.path();
    for sub in ["bin", "etc", "root", "home/user", "data"] {
        fs::create_dir_all(root.join(sub)).unwrap();
    }
    fs::copy(busybox(), root.join("bin/busybox")).unwrap();
    for applet in [
        "sh",
        "ls",
        "cat",
        "id",
        "hostname",
        "mount",
        "ps",
        "echo",
        "touch",
        "chown",
        "stat",
        "readlink",
        "sleep",
        "env",
        "pwd",
        "kill",
        "true",
        "false",
        "test",
        "grep",
        "wc",
        "cut",
        "ip",
        "su",
        "mkdir",
        "rm",
        "tty",
        "stty",
        "less",
        "od",
        "printf",
        "sha256sum",
        "head",
        "seq",
        "nslookup",
        "wget",
    ] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    fs::write(root.join("etc/group"), "root:x:0:\nuser:x:1000:\n").unwrap();
    fs::write(root.join("bin/not-executable"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(
        root.join("bin/not-executable"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    run_ok(
        Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", user.uid, user.gid))
            .arg(root),
    );
    dir
}

/// Compiles the C program `source` statically (gcc) into `root`'s /bin/`name`, owned by `user`.
pub fn compile_into(root: &TempDir, user: &TestUser, name: &str, source: &str) {
    let file = root.path().join(format!("{name}.c"));
    fs::write(&file, source).unwrap();
    let program = root.path().join("bin").join(name);
    run_ok(
        Command::new("gcc")
            .args(["-static", "-O2", "-o"])
            .arg(&program)
            .arg(&file),
    );
    fs::remove_file(&file).unwrap();
    give_to(user, &program);
}

/// Makes `path` (not what is below it) owned by `user` and the user's group.
pub fn give_to(user: &TestUser, path: &Path) {
    run_ok(
        Command::new("chown")
            .arg(format!("{}:{}", user.uid, user.gid))
            .arg(path),
    );
}

/// Writes `content` to a fresh root-owned 0644 file in `dir`.
pub fn write_file(dir: &TempDir, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    let mut f = fs::File::create(&path).unwrap();
    f.write_all(content).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    path
}

pub(crate) const CACHE_DIR: &str = "/var/cache/unshare-run-tests";

/// The minbase tarball, made once with debootstrap and kept in CACHE_DIR. Device nodes are left out:
/// nobody can create them in a user namespace and the runner provides /dev.
pub fn bookworm_tarball() -> PathBuf {
    let tarball = Path::new(CACHE_DIR).join("bookworm-minbase.tar");
    std::fs::create_dir_all(CACHE_DIR).unwrap();
    let lock = std::fs::File::create(Path::new(CACHE_DIR).join("lock")).unwrap();
    let _guard = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).unwrap();
    if tarball.exists() {
        return tarball;
    }
    let work = Path::new(CACHE_DIR).join("bookworm.tmp");
    let _ = std::fs::remove_dir_all(&work);
    let mirror =
        std::env::var("DEBIAN_MIRROR").unwrap_or_else(|_| "http://deb.debian.org/debian".into());
    run_ok(
        Command::new("debootstrap")
            .args(["--variant=minbase", "bookworm"])
            .arg(&work)
            .arg(&mirror),
    );
    let partial = tarball.with_extension("tar.partial");
    run_ok(
        Command::new("tar")
            .args(["--numeric-owner", "--exclude=./dev/*", "-cf"])
            .arg(&partial)
            .arg("-C")
            .arg(&work)
            .arg("."),
    );
    std::fs::rename(&partial, &tarball).unwrap();
    std::fs::remove_dir_all(&work).unwrap();
    tarball
}

/// The minbase tarball compressed with `tool` ("zstd" or "xz"), made once next to it.
pub fn bookworm_tarball_compressed(tool: &str) -> PathBuf {
    let tarball = bookworm_tarball();
    let extension = match tool {
        "zstd" => "zst",
        "xz" => "xz",
        other => panic!("no compressor {other}"),
    };
    let compressed = tarball.with_extension(format!("tar.{extension}"));
    let lock = std::fs::File::create(Path::new(CACHE_DIR).join("lock")).unwrap();
    let _guard = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).unwrap();
    if compressed.exists() {
        return compressed;
    }
    let partial = compressed.with_extension(format!("{extension}.partial"));
    let out = fs::File::create(&partial).unwrap();
    let status = Command::new(tool)
        .args(["-T2", "-3", "-c"])
        .arg(&tarball)
        .stdout(out)
        .status()
        .unwrap();
    assert!(status.success(), "{tool} failed");
    fs::set_permissions(&partial, fs::Permissions::from_mode(0o644)).unwrap();
    fs::rename(&partial, &compressed).unwrap();
    compressed
}

/// A fresh directory owned by `user` (for stores and overlays the user writes).
pub fn user_dir(user: &TestUser, label: &str) -> TempDir {
    let dir = TempDir::new(label);
    std::os::unix::fs::chown(dir.path(), Some(user.uid), Some(user.gid)).unwrap();
    dir
}

/// Runs packaging/`script` with `out` as its output directory; returns the package file whose name
/// satisfies `is_package`.
pub fn build_package(script: &str, out: &TempDir, is_package: impl Fn(&str) -> bool) -> PathBuf {
    let path = repo_root().join("packaging").join(script);
    run_ok(Command::new(path).arg(out.path()));
    std::fs::read_dir(out.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| is_package(&p.file_name().unwrap().to_string_lossy()))
        .unwrap_or_else(|| panic!("{script} built no package"))
}

/// A running container, killed (with everything in it) when dropped, also when an assertion fails.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the installed runner with `args` as alice in `sandbox`; returns once the command printed
/// "ready".
pub fn start_runner(
    sandbox: &Sandbox,
    args: &[&str],
    dir: &TempDir,
) -> (Running, BufReader<std::process::ChildStdout>) {
    let runner = install().runner();
    let mut argv = vec![runner.as_str()];
    argv.extend_from_slice(args);
    let mut child = sandbox
        .command_as(alice(), &argv, dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let running = Running(child);
    assert_eq!(line, "ready\n", "the container did not start");
    (running, out)
}

/// Whether `user` has a process whose command line matches `pattern` (pgrep -f).
pub fn processes_of(user: &TestUser, pattern: &str) -> bool {
    Command::new("pgrep")
        .args(["-u", &user.uid.to_string(), "-f", pattern])
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// Extracts the bookworm tarball as `user` through unshare-run with `map` into `dir`/rootfs (owned by
/// the user); returns tar's run and the rootfs path.
pub fn extract_bookworm(user: &TestUser, map: &str, dir: &TempDir) -> (Output, String) {
    extract_bookworm_with(user, &["--map", map], dir)
}

/// `extract_bookworm` with these options of unshare-run (e.g. `--map keep-id --user 0`: under
/// keep-id the command is the caller, who cannot give files away).
pub fn extract_bookworm_with(user: &TestUser, options: &[&str], dir: &TempDir) -> (Output, String) {
    let rootfs = dir.path().join("rootfs");
    fs::create_dir(&rootfs).unwrap();
    give_to(user, &rootfs);
    let tarball = bookworm_tarball();
    let rootfs = rootfs.to_str().unwrap().to_string();
    let runner = install().runner();
    let mut argv = vec![runner.as_str()];
    argv.extend_from_slice(options);
    argv.extend_from_slice(&[
        "--",
        "tar",
        "-xpf",
        tarball.to_str().unwrap(),
        "--numeric-owner",
        "-C",
        &rootfs,
    ]);
    let out = Sandbox::both(&[&format!("{}:100000:65536", user.name)]).run_as(user, &argv);
    (out, rootfs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_root_is_the_repository_of_unshare_run() {
        let manifest = fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains("\nname = \"unshare-run\"\n"),
            "{manifest}"
        );
        assert!(repo_root().join("packaging/stage.sh").is_file());
    }

    /// Every privileged test is ignored with NEEDS_ROOT and starts with `require_root()`, and every
    /// test ignored for it is one: a test that needs root cannot pass for a normal user without being
    /// listed as ignored, and no test is ignored without saying why.
    #[test]
    fn privileged_tests_are_ignored_with_the_reason_and_check_for_root() {
        let ignore_root = format!("#[ignore = \"{NEEDS_ROOT}\"]");
        let mut privileged = 0;
        let mut files = 0;
        for entry in fs::read_dir(repo_root().join("tests")).unwrap().flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            files += 1;
            let text = fs::read_to_string(&path).unwrap();
            let lines: Vec<&str> = text.lines().map(str::trim).collect();
            for (i, line) in lines.iter().enumerate() {
                let place = format!("{}:{}", path.display(), i + 1);
                if line.starts_with("#[ignore") {
                    assert!(
                        line.starts_with("#[ignore = \""),
                        "{place}: #[ignore] without a reason"
                    );
                }
                if *line != "#[test]" {
                    continue;
                }
                let attributes: Vec<&str> = lines[i + 1..]
                    .iter()
                    .take_while(|l| l.starts_with("#["))
                    .copied()
                    .collect();
                let first_statement = lines.get(i + attributes.len() + 2).copied();
                let ignored = attributes.contains(&ignore_root.as_str());
                let checks = first_statement == Some("require_root();");
                assert_eq!(
                    ignored, checks,
                    "{place}: a test ignored with {ignore_root:?} must start with require_root(), \
                     and one that starts with it must be ignored so"
                );
                privileged += usize::from(ignored);
            }
        }
        assert!(
            files > 10 && privileged > 80,
            "{files} files, {privileged} privileged tests"
        );
    }
}
