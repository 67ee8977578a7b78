//! Named containers (`--name`): their records (`record`), `unshare-run ps` and `unshare-run rm`. A
//! named container's record outlives its run, as in podman, so that `ps -a` shows how it ended; the
//! lifecycle around it (detach, exec, stop, start) is planned in docs/lifecycle-plan.md.

mod record;

use std::fs::File;

use clap::{FromArgMatches, Parser};
use nix::fcntl::Flock;

use super::error::RunError;
use super::image::commands::format_table;
use super::image::store::Store;
use record::{Config, Ended, Record, Status};

/// A named container being run in the foreground: claimed before its root filesystem is resolved
/// (a taken name is refused before any pull), recorded once it starts, its end written when it
/// ends. Dropped before it started, it gives the name back.
pub struct Named {
    record: Record,
    remove_at_end: bool,
    image: Option<String>,
    running: Option<Flock<File>>,
    /// Started or forgotten: dropping it has nothing to give back.
    settled: bool,
}

/// Claims `name` for a run (`--name`); with `remove_at_end` (`--rm`) its record goes when it ends.
pub fn claim(name: &str, remove_at_end: bool) -> Result<Named, RunError> {
    let record = Record::claim(&record::containers_dir()?, name)?;
    Ok(Named {
        record,
        remove_at_end,
        image: None,
        running: None,
        settled: false,
    })
}

impl Named {
    /// Records the container as started: built on the stored image `image` (if any) from `rootfs`
    /// as given, running `command`.
    pub fn start(
        &mut self,
        rootfs: &str,
        image: Option<&str>,
        command: &[std::ffi::OsString],
    ) -> Result<(), RunError> {
        let name = self.name();
        if let Some(digest) = image {
            open_store()?.mark_used(digest, &name).map_err(|e| {
                RunError::sys(format!("cannot mark the image as used by {name}"), e)
            })?;
            self.image = Some(digest.to_string());
        }
        self.record.write_config(&Config {
            version: 1,
            name,
            created: record::now(),
            rootfs: rootfs.to_string(),
            image: image.map(String::from),
            command: command
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
        })?;
        self.running = Some(self.record.start_running()?);
        self.settled = true;
        Ok(())
    }

    /// Records how the run ended (unshare-run's exit status for it), or removes the record (`--rm`).
    pub fn end(mut self, status: u8) {
        self.running = None;
        if self.remove_at_end {
            self.forget();
            return;
        }
        let ended = Ended {
            status,
            finished: record::now(),
        };
        if let Err(e) = self.record.write_ended(ended) {
            eprintln!("unshare-run: {e}");
        }
    }

    fn name(&self) -> String {
        self.record
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn forget(&mut self) {
        if let (Some(digest), Ok(store)) = (&self.image, open_store()) {
            store.unmark_used(digest, &self.name());
        }
        let _ = self.record.remove();
        self.settled = true;
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        if !self.settled {
            self.forget();
        }
    }
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
    about = "Remove containers that ended",
    long_about = "Remove named containers that ended, with their records, as podman rm does. A stored \
image that a container was built on stays (`unshare-run images rm` removes it once no container uses \
it)."
)]
pub struct RmCli {
    /// The containers' names.
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,
}

pub fn rm_main(matches: &clap::ArgMatches) -> Result<u8, RunError> {
    let cli = RmCli::from_arg_matches(matches).map_err(|e| RunError::new(e.to_string()))?;
    let dir = record::containers_dir()?;
    for name in &cli.names {
        let record = Record::of(&dir, name);
        let Some(config) = record.config() else {
            return Err(RunError::new(format!("no container `{name}`"))
                .with_hint("`unshare-run ps -a` lists your containers"));
        };
        if let Status::Up(_) = record.status() {
            return Err(RunError::new(format!("container `{name}` is running"))
                .with_hint("it is removed once its command has ended"));
        }
        if let (Some(digest), Ok(store)) = (&config.image, open_store()) {
            store.unmark_used(digest, name);
        }
        record.remove()?;
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
