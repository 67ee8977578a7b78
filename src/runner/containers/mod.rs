//! Named containers (`--name`, `--detach`): their records (`record`), the processes they name
//! (`liveness`), a detached container's monitor (`monitor`), and the verbs on them: `ps`, `rm` here,
//! `logs`, `stop`, `kill`, `start` in `control`. A named container's record outlives its run, as in
//! podman, so that `ps -a` shows how it ended and `start` runs it again; docs/lifecycle-plan.md has
//! the plan and what is left.

pub mod control;
pub mod exec;
mod liveness;
pub mod monitor;
mod record;

use std::ffi::OsString;
use std::fs::File;

use clap::{FromArgMatches, Parser};
use nix::fcntl::Flock;
use nix::unistd::Pid;

use super::cli::Cli;
use super::error::RunError;
use super::image::commands::format_table;
use super::image::store::Store;
use super::launch::{self, Built, Watch};
use super::mapping::{self, MapMode, MapPlan};
use super::{image, spec, userns};
use liveness::ProcessId;
use record::{Config, Ended, Record, Start, State, Status};

/// A named container run in the foreground: claimed before its root filesystem is resolved (a taken
/// name is refused before any pull), recorded once it is built, its processes once its command
/// runs, its end when it ends. Dropped before it was built, it gives the name back.
pub struct Named {
    record: Record,
    remove_at_end: bool,
    start: Start,
    stop_signal: Option<String>,
    image: Option<String>,
    running: Option<Flock<File>>,
    /// The name's claim, until the config is written.
    claim: Option<Flock<File>>,
    /// How exec enters it, once it is built.
    entry: Option<record::Entry>,
    /// Built or forgotten: dropping it has nothing to give back.
    settled: bool,
}

/// `unshare-run --name NAME ...` in the foreground: unshare-run runs it, as it runs an unnamed one.
pub fn foreground(cli: Cli, plan: &MapPlan, args: &[OsString]) -> Result<u8, RunError> {
    let name = cli.name.clone().unwrap_or_default();
    let mut named = Named::claim(&name, &cli, args)?;
    let result = launch::launch(cli, plan, Some(&mut named));
    let status = match &result {
        Ok(status) => *status,
        Err(e) => e.status,
    };
    if named.settled {
        named.end(status);
    }
    result
}

/// `unshare-run --detach ...`: the container is built here (an image is pulled or imported with
/// its progress on the caller's terminal), then run by a monitor of its own (`monitor`) that outlives
/// this process; returns once its command runs, having printed its name.
pub fn detach(cli: Cli, plan: &MapPlan, args: &[OsString]) -> Result<u8, RunError> {
    let containers = record::containers_dir()?;
    let name = match &cli.name {
        Some(name) => name.clone(),
        None => record::generated_name(&containers),
    };
    let mut named = Named::claim(&name, &cli, args)?;
    let Some(rootfs) = &cli.rootfs else {
        return Err(RunError::new("--detach needs --rootfs"));
    };
    let pulling = image::pull::Pulling::from_args(&cli.pull)?;
    let resolved = image::resolve(rootfs, None, plan, image::ROOTFS_HINT, Some(&pulling))?;
    let command = spec::image_command(&resolved.config, cli.entrypoint, cli.command);
    spec::refuse_systemd(cli.systemd, &command)?;
    let pinned = match &resolved.digest {
        Some(digest) => digest.into(),
        None => resolved.rootfs.clone(),
    };
    named.record_built(&Built {
        given: rootfs,
        digest: resolved.digest.as_deref(),
        pinned: &pinned,
        command: &command,
        stop_signal: resolved.config.stop_signal.as_deref(),
        spec: None,
        plan,
    })?;
    // The monitor resolves the image again, by its digest, and claims its layer for itself.
    drop(resolved);
    monitor::start(&named.record)?;
    println!("{name}");
    Ok(0)
}

impl Named {
    /// Claims `name` for the run that `cli` (given as `args`) asks for.
    fn claim(name: &str, cli: &Cli, args: &[OsString]) -> Result<Named, RunError> {
        let start = Start {
            args: utf8_arguments(args)?,
            cwd: std::env::current_dir()
                .ok()
                .and_then(|d| d.to_str().map(String::from))
                .unwrap_or_else(|| "/".into()),
            rootfs: String::new(),
        };
        let (record, claim) = Record::claim(&record::containers_dir()?, name)?;
        Ok(Named {
            record,
            claim: Some(claim),
            remove_at_end: cli.rm,
            start,
            stop_signal: cli.stop_signal.clone(),
            image: None,
            running: None,
            entry: None,
            settled: false,
        })
    }

    /// Writes the container's config and marks the stored image it is built on as used.
    fn record_built(&mut self, built: &Built<'_>) -> Result<(), RunError> {
        let name = self.record.name();
        let utf8 = |path: &std::path::Path| {
            path.to_str().map(String::from).ok_or_else(|| {
                RunError::new(format!(
                    "the root filesystem {} of a named container must be named in UTF-8",
                    path.display()
                ))
            })
        };
        self.start.rootfs = utf8(built.pinned)?;
        if self.stop_signal.is_none() {
            self.stop_signal = built.stop_signal.map(String::from);
        }
        if let Some(digest) = built.digest {
            open_store()?.mark_used(digest, &name).map_err(|e| {
                RunError::sys(format!("cannot mark the image as used by {name}"), e)
            })?;
            self.image = Some(digest.to_string());
        }
        self.record.write_config(&Config {
            version: 1,
            name,
            created: record::now(),
            rootfs: built.given.to_string_lossy().into_owned(),
            image: built.digest.map(String::from),
            command: built
                .command
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            start: Some(self.start.clone()),
            auto_remove: self.remove_at_end,
            stop_signal: self.stop_signal.clone(),
        })?;
        self.claim = None;
        self.settled = true;
        Ok(())
    }

    /// Records how the run ended (unshare-run's exit status for it), or removes the record (`--rm`).
    fn end(mut self, status: u8) {
        if self.remove_at_end {
            self.running = None;
            self.forget();
            return;
        }
        record_end(&self.record, status);
        self.running = None;
    }

    fn forget(&mut self) {
        if let Err(e) = remove(&self.record, self.image.as_deref()) {
            eprintln!("unshare-run: {e}");
        }
        self.settled = true;
    }
}

impl Watch for Named {
    fn built(&mut self, built: &Built<'_>) -> Result<(), RunError> {
        self.record_built(built)?;
        self.entry = built.spec.map(|spec| exec::entry_of(spec, built.plan));
        self.running = Some(self.record.start_running()?);
        Ok(())
    }

    fn running(&mut self, pid1: Pid) {
        record_running(&self.record, pid1, self.entry.take());
    }

    fn layer(&self) -> (std::path::PathBuf, String) {
        (self.record.layer(), self.record.name())
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        if !self.settled {
            self.forget();
        }
    }
}

/// Removes a container that does not run: its layer (in a user namespace with its map, as its files
/// belong to its ids), its mark on the stored image `image`, its record.
fn remove(record: &Record, image: Option<&str>) -> Result<(), RunError> {
    let layer = record.layer();
    if layer.exists() {
        let map = record
            .config()
            .and_then(|c| c.start)
            .and_then(|start| monitor::saved_run(&start).ok())
            .map_or(MapMode::Auto, |cli| cli.map);
        let plan = mapping::plan_for_caller(map)?;
        userns::run_job(&plan, || {
            image::store::remove_path(&layer)
                .map_err(|e| RunError::sys(format!("cannot remove {}", layer.display()), e))
        })?;
    }
    if let (Some(digest), Ok(store)) = (image, open_store()) {
        store.unmark_used(digest, &record.name());
    }
    record.remove()
}

/// Once its command runs: the container's processes, for `stop`, `kill` and `exec`.
fn record_running(record: &Record, pid1: Pid, entry: Option<record::Entry>) {
    let Some(pid1) = ProcessId::of(pid1) else {
        return;
    };
    let state = State {
        boot_id: liveness::boot_id(),
        runner: ProcessId::of(Pid::this()).unwrap_or(pid1),
        pid1,
        command: command_of(pid1),
        entry,
    };
    if let Err(e) = record.write_state(&state) {
        eprintln!("unshare-run: {e}");
    }
}

/// The command that PID 1 runs: its only child when the command has just started.
fn command_of(pid1: ProcessId) -> Option<ProcessId> {
    let children =
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", pid1.pid)).ok()?;
    let pid: i32 = children.split_ascii_whitespace().next()?.parse().ok()?;
    ProcessId::of(Pid::from_raw(pid))
}

/// Writes how the container ended, before the lock that says it runs goes.
fn record_end(record: &Record, status: u8) {
    let ended = Ended {
        status,
        finished: record::now(),
    };
    if let Err(e) = record.write_ended(ended) {
        eprintln!("unshare-run: {e}");
    }
}

/// A named container's arguments are kept as text (its config is JSON).
fn utf8_arguments(args: &[OsString]) -> Result<Vec<String>, RunError> {
    args.iter()
        .map(|a| {
            a.to_str().map(String::from).ok_or_else(|| {
                RunError::new(format!(
                    "the argument {a:?} is not UTF-8, which a named container's arguments must be"
                ))
            })
        })
        .collect()
}

fn open_store() -> Result<Store, RunError> {
    Store::for_caller().map_err(|e| RunError::new(format!("cannot find the image store: {e}")))
}

/// `unshare-run ps`.
#[derive(Parser, Debug)]
#[command(
    name = "unshare-run ps",
    about = "List your containers: the running ones, or with -a also those that ended",
    long_about = "List your containers, as podman ps does: the running ones, or with -a also the named \
containers that ended (a run with --name keeps its record until `unshare-run rm NAME`).\n\n\
Columns: NAME, IMAGE (the root filesystem as given to --rootfs), COMMAND, CREATED, and STATUS (Up \
for how long, or Exited (STATUS) and when)."
)]
pub struct PsCli {
    /// Also the containers that are not running.
    #[arg(short = 'a', long)]
    pub all: bool,
}

pub fn ps_main(matches: &clap::ArgMatches) -> Result<u8, RunError> {
    let cli = PsCli::from_arg_matches(matches).map_err(|e| RunError::new(e.to_string()))?;
    let dir = record::containers_dir()?;
    let now = record::now();
    let rows: Vec<[String; 5]> = record::names(&dir)
        .into_iter()
        .filter_map(|name| {
            let record = Record::of(&dir, &name);
            let config = record.config()?;
            let status = record.status();
            (cli.all || matches!(status, Status::Up(_))).then(|| {
                [
                    name,
                    config.rootfs,
                    config.command.join(" "),
                    format!("{} ago", since(now, config.created)),
                    match status {
                        Status::Up(started) => format!("Up {}", since(now, started)),
                        Status::Exited(Some(ended)) => format!(
                            "Exited ({}) {} ago",
                            ended.status,
                            since(now, ended.finished)
                        ),
                        Status::Exited(None) if record.state().is_none() => "Created".to_string(),
                        Status::Exited(None) => "Exited".to_string(),
                    },
                ]
            })
        })
        .collect();
    print!(
        "{}",
        format_table(&["NAME", "IMAGE", "COMMAND", "CREATED", "STATUS"], &rows)
    );
    Ok(0)
}

/// `unshare-run rm`.
#[derive(Parser, Debug)]
#[command(
    name = "unshare-run rm",
    about = "Remove containers (running ones with --force)",
    long_about = "Remove named containers, with their records and logs, as podman rm does: ended ones, \
and with --force running ones too, which are killed first (every process in them; nothing of them \
stays mounted). A running container without --force is refused with exit status 125 (podman: 2). A \
stored image that a container was built on stays (`unshare-run images rm` removes it once no \
container uses it)."
)]
pub struct RmCli {
    /// Kill running containers first.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// The containers' names.
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,
}

pub fn rm_main(matches: &clap::ArgMatches) -> Result<u8, RunError> {
    let cli = RmCli::from_arg_matches(matches).map_err(|e| RunError::new(e.to_string()))?;
    for name in &cli.names {
        let record = control::existing(name)?;
        if let Status::Up(_) = record.status() {
            match (cli.force, record.running()) {
                (true, Some(state)) => control::kill_and_wait(&record, &state)?,
                (true, None) => {
                    return Err(RunError::new(format!("container `{name}` is starting"))
                        .with_hint("try again in a moment"));
                }
                (false, _) => {
                    return Err(
                        RunError::new(format!("container `{name}` is running")).with_hint(format!(
                            "stop it first (unshare-run stop {name}), or remove it running with \
                             unshare-run rm -f {name}"
                        )),
                    );
                }
            }
        }
        let image = record.config().and_then(|c| c.image);
        remove(&record, image.as_deref())?;
        println!("{name}");
    }
    Ok(0)
}

/// "5 seconds", "3 minutes", "2 hours", "4 days": from `then` to `now`.
fn since(now: u64, then: u64) -> String {
    let seconds = now.saturating_sub(then);
    let (count, unit) = match seconds {
        0..120 => (seconds, "second"),
        120..7_200 => (seconds / 60, "minute"),
        7_200..172_800 => (seconds / 3_600, "hour"),
        _ => (seconds / 86_400, "day"),
    };
    format!("{count} {unit}{}", if count == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::since;

    #[test]
    fn times_are_said_as_podman_says_them() {
        assert_eq!(since(100, 99), "1 second");
        assert_eq!(since(100, 100), "0 seconds");
        assert_eq!(since(1_000, 700), "5 minutes");
        assert_eq!(since(10_000, 0), "2 hours");
        assert_eq!(since(900_000, 0), "10 days");
        assert_eq!(since(0, 5), "0 seconds");
    }
}
