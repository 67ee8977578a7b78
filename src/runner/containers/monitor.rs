//! A detached container's monitor (podman's conmon, without a daemon): `start` forks a process that
//! leaves the caller's session and descriptors and execs `unshare-run --serve-as-monitor NAME`, with
//! the container's log as stdout and stderr and a channel to its starter as descriptor 3. The
//! monitor holds the record's `running` lock for its whole life, launches the container from the
//! record's arguments, says on the channel when the command runs (or why it does not), supervises
//! PID 1 as a foreground unshare-run does (signals sent to the monitor are passed on), and writes
//! how the container ended. PID 1 dies with it.

use std::fs::OpenOptions;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use clap::Parser;
use nix::sched::CloneFlags;
use nix::unistd::Pid;

use super::record::{self, Record};
use super::{exec, record_end, record_running, remove};
use crate::runner::channel::{self, Channel};
use crate::runner::cli::{Cli, PullPolicy};
use crate::runner::error::RunError;
use crate::runner::launch::{self, Built, Watch};
use crate::runner::{exit, mapping};
use crate::sys::{self, Forked};

/// The hidden verb the monitor runs as.
pub const SERVE_ARG: &str = "--serve-as-monitor";

/// Starts the container of `record` under a monitor of its own; returns once its command runs, or
/// with the error that kept it from running (its status is the run's: 125, 126, 127).
pub fn start(record: &Record) -> Result<(), RunError> {
    let log = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(record.log())
        .map_err(|e| RunError::sys(format!("cannot open {}", record.log().display()), e))?;
    let (starter, monitor) = channel::pair()?;
    let args = ["unshare-run".into(), SERVE_ARG.into(), record.name().into()];
    match sys::clone_into(CloneFlags::empty()).map_err(|e| RunError::sys("fork", e))? {
        Forked::Child => {
            drop(starter);
            let exe = Path::new("/proc/self/exe");
            let error =
                sys::detach_and_exec_with(exe, &args, Some(log.as_fd()), Some(monitor.as_fd()));
            eprintln!("unshare-run: cannot run the monitor: {error}");
            sys::exit_now(i32::from(exit::RUNNER_ERROR))
        }
        Forked::Parent(pid) => {
            drop(monitor);
            drop(log);
            let result = starter.await_running();
            // A monitor that failed has exited (or is about to): reap it rather than leave a zombie
            // for as long as this process lives.
            if result.is_err() {
                let _ = nix::sys::wait::waitpid(pid, None);
            }
            result.map_err(|e| match e.hint {
                Some(_) => e,
                None => e.with_hint(format!(
                    "`unshare-run logs {}` shows what the container said",
                    record.name()
                )),
            })
        }
    }
}

/// `unshare-run --serve-as-monitor NAME`.
pub fn command() -> clap::Command {
    clap::Command::new(SERVE_ARG)
        .about("Run the named container NAME and record how it ends (unshare-run's own use)")
        .arg(clap::Arg::new("name").required(true))
}

pub fn main(args: &clap::ArgMatches) -> Result<u8, RunError> {
    let channel = sys::take_inherited(3).map(Channel::from);
    let Some(name) = args.get_one::<String>("name") else {
        return Err(RunError::new("the monitor needs NAME"));
    };
    let record = Record::of(&record::containers_dir()?, name);
    let mut monitored = Monitored {
        record,
        channel,
        said_running: false,
        entry: None,
    };
    let result = monitored.run();
    if !monitored.said_running
        && let Some(channel) = &monitored.channel
    {
        let error = match &result {
            Ok(status) => RunError::new(format!(
                "the container ended before its command ran (status {status})"
            )),
            Err(e) => e.clone(),
        };
        channel.fail(error);
    }
    result
}

struct Monitored {
    record: Record,
    /// To the process that started the monitor, until the command runs.
    channel: Option<Channel>,
    said_running: bool,
    /// How exec enters it, once it is built.
    entry: Option<record::Entry>,
}

impl Monitored {
    fn run(&mut self) -> Result<u8, RunError> {
        let name = self.record.name();
        let lock = match self.record.start_running() {
            Ok(lock) => lock,
            // Another monitor runs it: for `start`, that is what was asked.
            Err(_) if self.record.locked_since().is_some() => {
                self.tell_running();
                return Ok(0);
            }
            Err(e) => return Err(e),
        };
        let Some(config) = self.record.config() else {
            return Err(RunError::new(format!("container `{name}` has no record")));
        };
        let Some(start) = config.start.clone() else {
            return Err(RunError::new(format!(
                "container `{name}` was recorded by an older unshare-run and cannot be started"
            ))
            .with_hint(format!(
                "remove it (unshare-run rm {name}) and run it again"
            )));
        };
        // Relative paths in the arguments are as they were given.
        if std::env::set_current_dir(&start.cwd).is_err() {
            let _ = std::env::set_current_dir("/");
        }
        let cli = saved_run(&start)?;
        let plan = mapping::plan_for_caller(cli.map)?;
        let result = launch::launch(cli, &plan, Some(self));
        let status = match &result {
            Ok(status) => *status,
            Err(e) => e.status,
        };
        if config.auto_remove {
            drop(lock);
            if let Err(e) = remove(&self.record, config.image.as_deref()) {
                eprintln!("unshare-run: {e}");
            }
        } else {
            record_end(&self.record, status);
            drop(lock);
        }
        result
    }

    fn tell_running(&mut self) {
        if let Some(channel) = self.channel.take() {
            let _ = channel.send_running();
        }
        self.said_running = true;
    }
}

impl Watch for Monitored {
    fn built(&mut self, built: &Built<'_>) -> Result<(), RunError> {
        self.entry = built.spec.map(|spec| exec::entry_of(spec, built.plan));
        Ok(())
    }

    fn running(&mut self, pid1: Pid) {
        record_running(&self.record, pid1, self.entry.take());
        self.tell_running();
    }

    fn layer(&self) -> (std::path::PathBuf, String) {
        (self.record.layer(), self.record.name())
    }
}

/// The run a record keeps, as it first ran: its arguments, with --rootfs naming what it was resolved
/// to (never pulled again) and the options that only the first run acts on taken out.
pub fn saved_run(start: &record::Start) -> Result<Cli, RunError> {
    let argv = std::iter::once("unshare-run").chain(start.args.iter().map(String::as_str));
    let mut cli = Cli::try_parse_from(argv)
        .map_err(|e| RunError::new(format!("the container's arguments no longer parse: {e}")))?;
    cli.rootfs = Some(start.rootfs.clone().into());
    cli.pull.pull = PullPolicy::Never;
    cli.pull.quiet = true;
    cli.name = None;
    cli.detach = false;
    cli.rm = false;
    Ok(cli)
}
