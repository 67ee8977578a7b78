//! Terminals: the interactive shell gets a controlling terminal and job control; ^C reaches the
//! foreground command once; the terminal is given back when the container ends. Driven through tmux.

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

/// The sandboxed runner command line as one shell string, followed by a report of its exit status.
fn runner_command_line(sandbox: &Sandbox, args: &[&str], dir: &TempDir) -> String {
    let mut argv = vec![install().runner()];
    argv.extend(args.iter().map(|s| s.to_string()));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let cmd = sandbox.command_as(alice(), &argv, dir);
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
    format!("{line}; echo EXITED=$?; sleep 60")
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
