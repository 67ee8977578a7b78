//! The verbs that act on a named container by its name: `logs`, `stop`, `kill`, `start`. Signals go
//! through pidfds of the processes its state names (`liveness`), never to a bare pid from a file.

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::{Duration, Instant};

use clap::{FromArgMatches, Parser};
use nix::sys::signal::Signal;

use super::monitor;
use super::record::{self, Record, State, Status};
use crate::runner::cli::signal_by_name;
use crate::runner::error::RunError;
use crate::runner::signals;

/// How long `stop` and `rm -f` wait, after SIGKILL, for the container's end to be written.
const END_WRITTEN: Duration = Duration::from_secs(5);

/// The record of the caller's container `name`; 125 if there is none.
pub fn existing(name: &str) -> Result<Record, RunError> {
    let record = Record::of(&record::containers_dir()?, name);
    match record.config() {
        Some(_) => Ok(record),
        None => Err(RunError::new(format!("no container `{name}`"))
            .with_hint("`unshare-run ps -a` lists your containers")),
    }
}

pub fn not_running(name: &str) -> RunError {
    RunError::new(format!("container `{name}` is not running"))
        .with_hint(format!("`unshare-run start {name}` starts it again"))
}

/// Sends `signal` to the running container of `state`: SIGKILL and the signals PID 1 passes on go to
/// PID 1 (SIGKILL ends the whole pid namespace), any other to the command, which PID 1 would not pass
/// it to. False if the processes are gone.
fn deliver(state: &State, signal: Signal) -> Result<bool, RunError> {
    let to_pid1 = signal == Signal::SIGKILL || signals::FORWARDED.contains(&signal);
    let target = match (to_pid1, state.command.and_then(|c| c.open())) {
        (false, Some(command)) => command,
        _ => match state.pid1.open() {
            Some(pid1) => pid1,
            None => return Ok(false),
        },
    };
    target.signal(signal)?;
    Ok(true)
}

/// Kills the running container of `record` (all of its pid namespace) and waits until its end is
/// written, at most a few seconds.
pub fn kill_and_wait(record: &Record, state: &State) -> Result<(), RunError> {
    if let Some(pid1) = state.pid1.open() {
        pid1.signal(Signal::SIGKILL)?;
        pid1.wait_exit(END_WRITTEN);
    }
    wait_until_ended(record);
    Ok(())
}

/// Until the process that ran the container let go of its lock (its end is written by then).
fn wait_until_ended(record: &Record) {
    let deadline = Instant::now() + END_WRITTEN;
    while record.locked_since().is_some() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `unshare-run stop`.
#[derive(Parser, Debug)]
#[command(
    name = "unshare-run stop",
    about = "Stop running containers: their stop signal, then SIGKILL after a timeout",
    long_about = "Stop running containers, as podman stop does: the container's stop signal (its \
--stop-signal, else its image's StopSignal, else SIGTERM) goes to its command; if the container has \
not ended after the timeout, SIGKILL ends every process in it. Prints each name once it has ended. A \
container that is not running is not an error. Its files stay: `unshare-run start NAME` runs it again."
)]
pub struct StopCli {
    /// Seconds to wait before SIGKILL (0: SIGKILL at once).
    #[arg(
        short = 't',
        long = "time",
        value_name = "SECONDS",
        default_value_t = 10
    )]
    pub time: u64,
    /// The containers' names.
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,
}

pub fn stop_main(matches: &clap::ArgMatches) -> Result<u8, RunError> {
    let cli = StopCli::from_arg_matches(matches).map_err(|e| RunError::new(e.to_string()))?;
    for name in &cli.names {
        let record = existing(name)?;
        if let Some(state) = record.running() {
            let config = record.config();
            let signal = match config.and_then(|c| c.stop_signal) {
                Some(name) => signal_by_name(&name).map_err(RunError::new)?,
                None => Signal::SIGTERM,
            };
            stop(&record, &state, signal, Duration::from_secs(cli.time))?;
        }
        println!("{name}");
    }
    Ok(0)
}

fn stop(record: &Record, state: &State, signal: Signal, grace: Duration) -> Result<(), RunError> {
    let Some(pid1) = state.pid1.open() else {
        return Ok(());
    };
    if !grace.is_zero() {
        deliver(state, signal)?;
        if pid1.wait_exit(grace) {
            wait_until_ended(record);
            return Ok(());
        }
    }
    kill_and_wait(record, state)
}

/// `unshare-run kill`.
#[derive(Parser, Debug)]
#[command(
    name = "unshare-run kill",
    about = "Send a signal to running containers (default SIGKILL)",
    long_about = "Send a signal to running containers, as podman kill does (default SIGKILL, which \
ends every process in the container). TERM, INT, HUP, QUIT, USR1, USR2 and WINCH reach the command \
through the container's init; other signals go to the command itself."
)]
pub struct KillCli {
    /// The signal: a name (KILL, SIGTERM, any case) or a number.
    #[arg(short = 's', long, value_name = "SIGNAL", default_value = "KILL", value_parser = signal_by_name)]
    pub signal: Signal,
    /// The containers' names.
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,
}

pub fn kill_main(matches: &clap::ArgMatches) -> Result<u8, RunError> {
    let cli = KillCli::from_arg_matches(matches).map_err(|e| RunError::new(e.to_string()))?;
    for name in &cli.names {
        let record = existing(name)?;
        let Some(state) = record.running() else {
            return Err(not_running(name));
        };
        if !deliver(&state, cli.signal)? {
            return Err(not_running(name));
        }
        println!("{name}");
    }
    Ok(0)
}

/// `unshare-run start`.
#[derive(Parser, Debug)]
#[command(
    name = "unshare-run start",
    about = "Start containers again, in the background",
    long_about = "Start named containers that ended, as podman start does: each runs again with the \
options it was created with, in the background (its output goes to `unshare-run logs NAME`), on its \
root filesystem as it was left. Prints each name once its command runs; one that runs already is \
not an error. With --attach, follows the container's output until it ends and exits with its status."
)]
pub struct StartCli {
    /// Follow the container's output until it ends; unshare-run's exit status is then its status
    /// (one container only; stdin is not passed on).
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// The containers' names.
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,
}

pub fn start_main(matches: &clap::ArgMatches) -> Result<u8, RunError> {
    let cli = StartCli::from_arg_matches(matches).map_err(|e| RunError::new(e.to_string()))?;
    if cli.attach && cli.names.len() > 1 {
        return Err(RunError::new("start --attach takes one container"));
    }
    for name in &cli.names {
        let record = existing(name)?;
        let offset = std::fs::metadata(record.log()).map_or(0, |m| m.len());
        if record.running().is_none() {
            monitor::start(&record)?;
        }
        if cli.attach {
            return follow(&record, offset).map(|()| match record.status() {
                Status::Exited(Some(ended)) => ended.status,
                _ => 0,
            });
        }
        println!("{name}");
    }
    Ok(0)
}

/// `unshare-run logs`.
#[derive(Parser, Debug)]
#[command(
    name = "unshare-run logs",
    about = "Show a detached container's output",
    long_about = "Show what a detached container (--detach, or started with `unshare-run start`) wrote \
on stdout and stderr, as podman logs does; with --follow, go on showing it until the container ends. \
A container run in the foreground wrote to your terminal instead, so its log has nothing of that run. \
The log grows with each start until `unshare-run rm NAME`."
)]
pub struct LogsCli {
    /// Go on showing new output until the container ends.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// The container's name.
    #[arg(value_name = "NAME")]
    pub name: String,
}

pub fn logs_main(matches: &clap::ArgMatches) -> Result<u8, RunError> {
    let cli = LogsCli::from_arg_matches(matches).map_err(|e| RunError::new(e.to_string()))?;
    let record = existing(&cli.name)?;
    match cli.follow {
        true => follow(&record, 0)?,
        false => {
            copy_from(&record, 0)?;
        }
    }
    Ok(0)
}

/// Copies the log from `offset` on to stdout until the container has ended.
fn follow(record: &Record, mut offset: u64) -> Result<(), RunError> {
    loop {
        let running = record.locked_since().is_some();
        offset = copy_from(record, offset)?;
        if !running {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Copies the log from `offset` to its end onto stdout; the new end.
fn copy_from(record: &Record, offset: u64) -> Result<u64, RunError> {
    let path = record.log();
    let mut file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(offset),
        Err(e) => return Err(RunError::sys(format!("cannot read {}", path.display()), e)),
    };
    let fail = |e: std::io::Error| RunError::sys(format!("cannot read {}", path.display()), e);
    file.seek(SeekFrom::Start(offset)).map_err(fail)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(fail)?;
    let mut out = std::io::stdout().lock();
    // A reader that went away (logs | head) is not an error of ours.
    let _ = out.write_all(&bytes).and_then(|()| out.flush());
    Ok(offset + bytes.len() as u64)
}
