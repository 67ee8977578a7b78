//! unshare-run's exit statuses, in one place. They follow podman's and env's conventions, so that
//! scripts can tell unshare-run's own failures from the command's.

use nix::sys::wait::WaitStatus;

/// unshare-run itself failed: a bad option, a set-up failure (the message says what to fix).
pub const RUNNER_ERROR: u8 = 125;
/// The command was found but cannot be executed.
pub const CANNOT_EXECUTE: u8 = 126;
/// The command was not found.
pub const NOT_FOUND: u8 = 127;

/// A shell's status for a finished process: its exit code, or 128 + the number of the signal that
/// killed it. None while it runs or is stopped.
pub fn of_process(status: WaitStatus) -> Option<u8> {
    match status {
        WaitStatus::Exited(_, code) => Some(code as u8),
        WaitStatus::Signaled(_, signal, _) => Some(128u8.wrapping_add(signal as u8)),
        _ => None,
    }
}

/// The status for a command-line error (clap's): 0 for --help and --version, which clap reports as
/// errors too, else RUNNER_ERROR.
pub fn of_parse_error(error: &clap::Error) -> u8 {
    if error.use_stderr() { RUNNER_ERROR } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;
    use nix::unistd::Pid;

    #[test]
    fn a_killed_process_has_128_plus_the_signal() {
        let pid = Pid::from_raw(2);
        assert_eq!(of_process(WaitStatus::Exited(pid, 3)), Some(3));
        assert_eq!(
            of_process(WaitStatus::Signaled(pid, Signal::SIGKILL, false)),
            Some(137)
        );
        assert_eq!(of_process(WaitStatus::StillAlive), None);
    }
}
