//! Terminals: the interactive shell gets a controlling terminal and job control; ^C reaches the
//! foreground command once; the terminal is given back when the container ends. Driven through tmux.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use unshare_run_test_support::*;

/// A private tmux server with one session running `command`; killed on drop. Its socket is in the
/// scratch directory, which tests/run removes (tmux's own socket directory would keep it).
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(command: &str) -> Tmux {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let socket = scratch_root()
            .join(format!("tmux-{n}"))
            .to_string_lossy()
            .into_owned();
        run_ok(Command::new("tmux").args([
            "-S",
            &socket,
            "new-session",
            "-d",
            "-x",
            "160",
            "-y",
            "50",
            command,
        ]));
        Tmux { socket }
    }

    fn send(&self, keys: &[&str]) {
        run_ok(
            Command::new("tmux")
                .args(["-S", &self.socket, "send-keys"])
                .args(keys),
        );
    }

    fn resize(&self, columns: &str, rows: &str) {
        run_ok(Command::new("tmux").args([
            "-S",
            &self.socket,
            "resize-window",
            "-x",
            columns,
            "-y",
            rows,
        ]));
    }

    fn screen(&self) -> String {
        let out = run_ok(Command::new("tmux").args(["-S", &self.socket, "capture-pane", "-p"]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen contains `text` (ten seconds at most).
    fn expect(&self, text: &str) {
        let found = wait_for(Duration::from_secs(10), || self.screen().contains(text));
        assert!(found, "screen lacks {text:?}:\n{}", self.screen());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-S", &self.socket, "kill-server"])
            .status();
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `argv` run as alice in `sandbox`, as one shell string.
fn command_line(sandbox: &Sandbox, argv: &[&str], dir: &TempDir) -> String {
    let cmd = sandbox.command_as(alice(), argv, dir);
    let mut line = String::from("env");
    for (key, value) in cmd.get_envs() {
        let value = value.map(|v| v.to_str().unwrap()).unwrap_or_default();
        line.push_str(&format!(
            " {}",
            shell_quote(&format!("{}={value}", key.to_str().unwrap()))
        ));
    }
    line.push(' ');
    line.push_str(&shell_quote(cmd.get_program().to_str().unwrap()));
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&shell_quote(arg.to_str().unwrap()));
    }
    line
}

/// The sandboxed runner command line as one shell string, followed by a report of its exit status.
fn runner_command_line(sandbox: &Sandbox, args: &[&str], dir: &TempDir) -> String {
    let mut argv = vec![install().runner()];
    argv.extend(args.iter().map(|s| s.to_string()));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    format!(
        "{}; echo EXITED=$?; sleep 60",
        command_line(sandbox, &argv, dir)
    )
}

fn sandbox() -> Sandbox {
    let mut s = Sandbox::both(&[&format!("{}:100000:65536", alice().name)]);
    // The default command is the caller's shell; no rc files, so the prompt is bash's own.
    s.env.extend([
        ("SHELL".into(), "/bin/bash".into()),
        ("HOME".into(), "/nonexistent".into()),
    ]);
    s
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn interactive_shell_has_a_tty_and_job_control() {
    require_root();
    let dir = TempDir::new("tmux-shell");
    let tmux = Tmux::start(&runner_command_line(&sandbox(), &[], &dir));
    // bash's prompt for root ends in "#" (tmux drops the trailing space).
    tmux.expect("#");
    tmux.send(&["tty; echo uid=$(id -u)", "Enter"]);
    tmux.expect("uid=0");
    assert!(tmux.screen().contains("/dev/pts/"), "{}", tmux.screen());
    assert!(
        !tmux.screen().contains("no job control"),
        "{}",
        tmux.screen()
    );
    tmux.send(&["sleep 100 &", "Enter"]);
    tmux.expect("[1] ");
    tmux.send(&["jobs", "Enter"]);
    tmux.expect("Running");
    tmux.send(&["fg", "Enter"]);
    tmux.expect("sleep 100\n");
    std::thread::sleep(Duration::from_millis(300));
    tmux.send(&["C-c"]);
    tmux.send(&["echo after=$?", "Enter"]);
    tmux.expect("after=130");
    tmux.send(&["exit 4", "Enter"]);
    tmux.expect("EXITED=4");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn ctrl_c_stops_a_foreground_command_once() {
    require_root();
    let dir = TempDir::new("tmux-ctrl-c");
    // The trap counts INTs: a signal forwarded on top of the terminal's would be counted twice.
    let script = "n=0; trap 'n=$((n+1))' INT; echo ready; sleep 1; echo ints=$n";
    let tmux = Tmux::start(&runner_command_line(
        &sandbox(),
        &["--", "bash", "-c", script],
        &dir,
    ));
    tmux.expect("ready");
    tmux.send(&["C-c"]);
    tmux.expect("EXITED=");
    let screen = tmux.screen();
    assert!(screen.contains("ints=1"), "{screen}");
    assert!(screen.contains("EXITED=0"), "{screen}");
}

// With --rootfs the container never holds the caller's terminal: a terminal of its own when
// interactive, no controlling terminal otherwise.

/// The TIOCSTI probe: pushes its argument, or a command whose output no command line here contains
/// (`INJECTED-42`), into the terminal on stdin, and says whether the kernel let it.
const TIOCSTI_PROBE: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
int main(int argc, char **argv) {
    const char *text = argc > 1 ? argv[1] : "echo INJECTED-$((6*7))\n";
    for (const char *c = text; *c; c++) {
        if (ioctl(0, TIOCSTI, c) < 0) {
            printf("TIOCSTI failed: %s\n", strerror(errno));
            return 1;
        }
    }
    printf("TIOCSTI pushed %zu bytes\n", strlen(text));
    return 0;
}
"#;

/// alice's busybox root filesystem with the static TIOCSTI probe in /bin and a 300-line file.
fn rootfs_with_probe() -> TempDir {
    let root = busybox_rootfs(alice());
    compile_into(&root, alice(), "tiocsti", TIOCSTI_PROBE);
    let lines: String = (1..=300)
        .map(|n| format!("line {n} of the file\n"))
        .collect();
    std::fs::write(root.path().join("data/lines"), lines).unwrap();
    give_to(alice(), &root.path().join("data/lines"));
    root
}

/// tmux running an interactive bash as alice in the sandbox: the host shell that injected input
/// would reach.
fn host_shell(dir: &TempDir) -> Tmux {
    host_shell_in(sandbox(), dir)
}

fn host_shell_in(mut sandbox: Sandbox, dir: &TempDir) -> Tmux {
    sandbox.env.push(("PS1".into(), "host$ ".into()));
    let tmux = Tmux::start(&command_line(
        &sandbox,
        &["bash", "--norc", "--noprofile", "-i"],
        dir,
    ));
    tmux.expect("host$");
    tmux
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn tiocsti_in_a_rootfs_container_never_reaches_the_host_shell() {
    require_root();
    let dir = TempDir::new("tmux-tiocsti");
    let root = rootfs_with_probe();
    let tmux = host_shell(&dir);
    let runner = format!(
        "{} --rootfs {} --",
        install().runner(),
        root.path().display()
    );
    // Interactive: the probe's terminal is the container's own, whatever it pushes stays there.
    tmux.send(&[&format!("{runner} tiocsti; echo first=$?"), "Enter"]);
    tmux.expect("first=0");
    assert!(
        tmux.screen().contains("TIOCSTI pushed"),
        "{}",
        tmux.screen()
    );
    // Piped: no terminal of its own, and no controlling terminal: the kernel refuses.
    tmux.send(&[&format!("{runner} tiocsti | cat; echo second=$?"), "Enter"]);
    tmux.expect("second=0");
    assert!(
        tmux.screen()
            .contains("TIOCSTI failed: Operation not permitted"),
        "{}",
        tmux.screen()
    );
    // Nor can it open the caller's terminal as its controlling terminal, /dev/tty.
    tmux.send(&[
        &format!(
            "{runner} sh -c 'echo VIA-TTY-$((4+5)) > /dev/tty || echo no-tty-$((2+3))' | cat; echo third=$?"
        ),
        "Enter",
    ]);
    tmux.expect("third=0");
    assert!(tmux.screen().contains("no-tty-5"), "{}", tmux.screen());
    assert!(!tmux.screen().contains("VIA-TTY-9"), "{}", tmux.screen());
    tmux.send(&["echo alive-$((1+1)); history", "Enter"]);
    tmux.expect("alive-2");
    std::thread::sleep(Duration::from_millis(300));
    let screen = tmux.screen();
    assert!(!screen.contains("INJECTED-42"), "{screen}");
    assert!(
        !screen.lines().any(|l| {
            let entry = l.trim_start();
            entry.starts_with(|c: char| c.is_ascii_digit())
                && entry
                    .trim_start_matches(|c: char| c.is_ascii_digit())
                    .trim()
                    == "echo INJECTED-$((6*7))"
        }),
        "the host shell's history has the injected command:\n{screen}"
    );
    // The probe works where nothing protects the terminal (host mode shares it on purpose): proof
    // that the test would see an injection.
    tmux.send(&[
        &format!(
            "{} -- {}/bin/tiocsti | cat",
            install().runner(),
            root.path().display()
        ),
        "Enter",
    ]);
    tmux.expect("INJECTED-42");
}

/// The runner on `root` running `command`, as alice in the sandbox, as one shell string.
fn rootfs_runner_line(dir: &TempDir, root: &TempDir, command: &[&str]) -> String {
    let mut argv = vec![
        install().runner(),
        "--rootfs".into(),
        root.path().to_str().unwrap().into(),
        "--".into(),
    ];
    argv.extend(command.iter().map(|s| s.to_string()));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    command_line(&sandbox(), &argv, dir)
}

/// tmux running the runner on `root` with `command`, the terminal's settings saved before and after
/// it (`stty -a`); the files of both.
fn runner_between_stty(
    dir: &TempDir,
    root: &TempDir,
    command: &[&str],
) -> (Tmux, PathBuf, PathBuf) {
    let before = dir.path().join("stty.before");
    let after = dir.path().join("stty.after");
    let line = format!(
        "stty -a > {}; {}; echo EXITED=$?; stty -a > {}; sleep 60",
        before.display(),
        rootfs_runner_line(dir, root, command),
        after.display()
    );
    (Tmux::start(&line), before, after)
}

/// The terminal's settings once the runner has ended are those it had before.
fn assert_same_settings(before: &Path, after: &Path) {
    assert!(wait_for(Duration::from_secs(5), || after.exists()));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        std::fs::read_to_string(before).unwrap(),
        std::fs::read_to_string(after).unwrap(),
        "the terminal's settings changed"
    );
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_rootfs_shell_has_a_terminal_of_its_own_with_job_control() {
    require_root();
    let dir = TempDir::new("tmux-rootfs-shell");
    let root = busybox_rootfs(alice());
    let (tmux, before, after) = runner_between_stty(&dir, &root, &["sh"]);
    tmux.expect("#");
    tmux.send(&["tty; test -t 0 && echo stdin-is-a-tty; stty size", "Enter"]);
    tmux.expect("stdin-is-a-tty\n50 160\n");
    assert!(tmux.screen().contains("/dev/pts/0\n"), "{}", tmux.screen());
    // Job control: a background job, fg, ^Z stops it, fg again, ^C ends it.
    tmux.send(&["sleep 100 &", "Enter"]);
    tmux.send(&["jobs", "Enter"]);
    tmux.expect("Running");
    tmux.send(&["fg", "Enter"]);
    tmux.expect("sleep 100\n");
    std::thread::sleep(Duration::from_millis(300));
    tmux.send(&["C-z"]);
    tmux.expect("Stopped");
    tmux.send(&["fg", "Enter"]);
    std::thread::sleep(Duration::from_millis(300));
    tmux.send(&["C-c"]);
    tmux.send(&["echo after=$?", "Enter"]);
    tmux.expect("after=130");
    // The size follows the terminal's.
    for (columns, rows) in [("100", "30"), ("160", "50")] {
        tmux.resize(columns, rows);
        // The resize reaches unshare-run as SIGWINCH, while the keys below may come first: ask until
        // the container sees it.
        let size = format!("{rows} {columns}\n");
        let seen = wait_for(Duration::from_secs(10), || {
            tmux.send(&["clear; stty size", "Enter"]);
            std::thread::sleep(Duration::from_millis(200));
            tmux.screen().contains(&size)
        });
        assert!(
            seen,
            "the container's size is not {size}:\n{}",
            tmux.screen()
        );
    }
    tmux.send(&["exit 3", "Enter"]);
    tmux.expect("EXITED=3");
    assert_same_settings(&before, &after);
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_full_screen_program_draws_and_quits_through_the_relay() {
    require_root();
    let dir = TempDir::new("tmux-less");
    let root = rootfs_with_probe();
    let tmux = Tmux::start(&runner_command_line(
        &sandbox(),
        &[
            "--rootfs",
            root.path().to_str().unwrap(),
            "--",
            "less",
            "/data/lines",
        ],
        &dir,
    ));
    tmux.expect("line 49 of the file");
    assert!(!tmux.screen().contains("line 51 of"), "{}", tmux.screen());
    // A page down, then quit.
    tmux.send(&["Space"]);
    tmux.expect("line 97 of the file");
    tmux.send(&["q"]);
    tmux.expect("EXITED=0");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_signal_that_ends_unshare_run_gives_the_terminal_back_first() {
    require_root();
    let dir = TempDir::new("tmux-alarm");
    let root = busybox_rootfs(alice());
    let (tmux, before, after) = runner_between_stty(&dir, &root, &["sleep", "1000"]);
    // This test's runner alone (the other tests' run at the same time).
    let pattern = format!(
        "^{} --rootfs {} -- sleep 1000",
        install().runner(),
        root.path().display()
    );
    assert!(wait_for(Duration::from_secs(10), || processes_of(
        alice(),
        &pattern
    )));
    std::thread::sleep(Duration::from_millis(300));
    run_ok(Command::new("pkill").args(["-ALRM", "-u", &alice().uid.to_string(), "-f", &pattern]));
    // 128 + SIGALRM (14).
    tmux.expect("EXITED=142");
    assert_same_settings(&before, &after);
    // And the container went with it.
    let container = "^sleep 1000$";
    assert!(wait_for(Duration::from_secs(5), || !processes_of(
        alice(),
        container
    )));
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn ctrl_c_reaches_a_rootfs_command_without_a_terminal_once() {
    require_root();
    let dir = TempDir::new("tmux-rootfs-ctrl-c");
    let root = busybox_rootfs(alice());
    // stdout piped: no terminal of its own, so the command is out of the terminal's foreground
    // group, and unshare-run passes the ^C on.
    let script = "n=0; trap 'n=$((n+1))' INT; echo ready; sleep 1; sleep 1; echo ints=$n";
    let runner = rootfs_runner_line(&dir, &root, &["sh", "-c", script]);
    let out = dir.path().join("out");
    let tmux = Tmux::start(&format!(
        "{runner} > {out}; echo EXITED=$?; cat {out}; sleep 60",
        out = out.display()
    ));
    assert!(wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&out).is_ok_and(|t| t.contains("ready"))
    }));
    tmux.send(&["C-c"]);
    tmux.expect("ints=");
    let screen = tmux.screen();
    assert!(screen.contains("ints=1"), "{screen}");
    assert!(screen.contains("EXITED=0"), "{screen}");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn piped_output_is_byte_exact_and_piped_input_arrives_whole() {
    require_root();
    let root = busybox_rootfs(alice());
    let work = user_dir(alice(), "pipes");
    let script = format!(
        "set -e; cd {work}; head -c 50000000 /dev/urandom > stream; sha256sum < stream; \
         {runner} --rootfs {root} -- sha256sum < stream; \
         {runner} --rootfs {root} -- printf 'a\\nb\\n' | od -c",
        work = work.path().display(),
        runner = install().runner(),
        root = root.path().display(),
    );
    let out = sandbox().run_as(alice(), &["sh", "-c", &script]);
    out.assert_code(0);
    let text = out.stdout_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], lines[1], "{text}");
    assert!(lines[2].contains("a  \\n   b  \\n"), "{text}");
    assert!(!text.contains("\\r"), "{text}");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_stderr_redirected_to_a_file_stays_out_of_the_terminal() {
    require_root();
    let dir = TempDir::new("tmux-stderr");
    let root = busybox_rootfs(alice());
    let log = user_dir(alice(), "stderr-log");
    let errors = log.path().join("errors");
    let runner = rootfs_runner_line(
        &dir,
        &root,
        &[
            "sh",
            "-c",
            "tty; echo to-stdout; echo to-stderr >&2; test -t 2 || echo stderr-is-no-tty",
        ],
    );
    let tmux = Tmux::start(&format!(
        "{runner} 2> {}; echo EXITED=$?; sleep 60",
        errors.display()
    ));
    tmux.expect("EXITED=0");
    let screen = tmux.screen();
    assert!(screen.contains("/dev/pts/0\nto-stdout\n"), "{screen}");
    assert!(screen.contains("stderr-is-no-tty"), "{screen}");
    assert!(!screen.contains("to-stderr"), "{screen}");
    assert_eq!(std::fs::read_to_string(&errors).unwrap(), "to-stderr\n");
}

/// `exec -it NAME sh` beside a detached container: a terminal of the container's own with job
/// control, its size, and the exit status back.
#[test]
#[ignore = "needs root: sudo tests/run"]
fn exec_it_gets_a_terminal_of_the_container_with_job_control() {
    require_root();
    let data = user_dir(alice(), "tmux-exec-data");
    let mut sandbox = sandbox();
    sandbox
        .env
        .push(("XDG_DATA_HOME".into(), data.path().to_str().unwrap().into()));
    let root = busybox_rootfs(alice());
    let runner = install().runner();
    let root_arg = root.path().to_str().unwrap();
    sandbox
        .run_as(
            alice(),
            &[
                &runner, "-d", "--name", "beside", "--rootfs", root_arg, "--", "sleep", "120",
            ],
        )
        .assert_code(0);
    let dir = TempDir::new("tmux-exec");
    let tmux = Tmux::start(&runner_command_line(
        &sandbox,
        &["exec", "-it", "beside", "sh"],
        &dir,
    ));
    tmux.expect("#");
    tmux.send(&["tty; test -t 0 && echo stdin-is-a-tty; stty size", "Enter"]);
    tmux.expect("stdin-is-a-tty\n50 160\n");
    assert!(tmux.screen().contains("/dev/pts/0\n"), "{}", tmux.screen());
    tmux.send(&["sleep 100 &", "Enter"]);
    tmux.send(&["jobs", "Enter"]);
    tmux.expect("Running");
    tmux.send(&["fg", "Enter"]);
    tmux.expect("sleep 100\n");
    std::thread::sleep(Duration::from_millis(300));
    tmux.send(&["C-z"]);
    tmux.expect("Stopped");
    tmux.send(&["fg", "Enter"]);
    std::thread::sleep(Duration::from_millis(300));
    tmux.send(&["C-c"]);
    tmux.send(&["echo after=$?", "Enter"]);
    tmux.expect("after=130");
    tmux.send(&["exit 3", "Enter"]);
    tmux.expect("EXITED=3");
    drop(tmux);
    sandbox
        .run_as(alice(), &[&runner, "rm", "-f", "beside"])
        .assert_code(0);
}

/// What exec starts cannot push input into the caller's terminal either: with -i and without -t it
/// has no controlling terminal (the kernel refuses TIOCSTI), with -t only the container's own.
#[test]
#[ignore = "needs root: sudo tests/run"]
fn tiocsti_through_exec_never_reaches_the_host_shell() {
    require_root();
    let data = user_dir(alice(), "tmux-exec-tiocsti");
    let with_data = || {
        let mut sandbox = sandbox();
        sandbox
            .env
            .push(("XDG_DATA_HOME".into(), data.path().to_str().unwrap().into()));
        sandbox
    };
    let sandbox = with_data();
    let root = rootfs_with_probe();
    let runner = install().runner();
    let root_arg = root.path().to_str().unwrap();
    sandbox
        .run_as(
            alice(),
            &[
                &runner, "-d", "--name", "probe", "--rootfs", root_arg, "--", "sleep", "120",
            ],
        )
        .assert_code(0);
    let dir = TempDir::new("tmux-exec-tiocsti");
    let tmux = host_shell_in(with_data(), &dir);
    tmux.send(&[
        &format!("{runner} exec -i probe tiocsti | cat; echo first=$?"),
        "Enter",
    ]);
    tmux.expect("first=0");
    assert!(
        tmux.screen()
            .contains("TIOCSTI failed: Operation not permitted"),
        "{}",
        tmux.screen()
    );
    tmux.send(&[
        &format!("{runner} exec -it probe tiocsti; echo second=$?"),
        "Enter",
    ]);
    tmux.expect("second=0");
    assert!(
        tmux.screen().contains("TIOCSTI pushed"),
        "{}",
        tmux.screen()
    );
    tmux.send(&["echo alive-$((1+1))", "Enter"]);
    tmux.expect("alive-2");
    std::thread::sleep(Duration::from_millis(300));
    let screen = tmux.screen();
    assert!(!screen.contains("INJECTED-42"), "{screen}");
    drop(tmux);
    sandbox
        .run_as(alice(), &[&runner, "rm", "-f", "probe"])
        .assert_code(0);
}

/// A detached container outlives the terminal it was started from: its monitor is in a session of
/// its own, so the terminal's hang-up never reaches it.
#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_detached_container_survives_its_terminal() {
    require_root();
    let data = user_dir(alice(), "tmux-detach-data");
    let mut sandbox = sandbox();
    sandbox
        .env
        .push(("XDG_DATA_HOME".into(), data.path().to_str().unwrap().into()));
    let root = busybox_rootfs(alice());
    let runner = install().runner();
    let root_arg = root.path().to_str().unwrap();
    let dir = TempDir::new("tmux-detach");
    let tmux = Tmux::start(&runner_command_line(
        &sandbox,
        &[
            "-d", "--name", "lasting", "--rootfs", root_arg, "--", "sleep", "120",
        ],
        &dir,
    ));
    tmux.expect("EXITED=0");
    // The terminal goes: every process of its session gets SIGHUP.
    drop(tmux);
    std::thread::sleep(Duration::from_millis(500));
    let out = sandbox.run_as(alice(), &[&runner, "ps"]);
    assert!(
        out.stdout_text()
            .lines()
            .any(|l| l.starts_with("lasting ") && l.contains(" Up ")),
        "{}",
        out.stdout_text()
    );
    sandbox
        .run_as(alice(), &[&runner, "rm", "-f", "lasting"])
        .assert_code(0);
}
