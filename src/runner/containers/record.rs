//! A named container's record: `containers/NAME/` in the data directory (`dirs::data_dir`), made by
//! one mkdir(2) so that a name is claimed once, with
//! - `config.json`: what it is (written once, by rename);
//! - `running`: a file that the process running it holds locked (flock) while it runs, and whose
//!   modification time is when it started: a lock dies with its holder, also on SIGKILL and at a
//!   reboot, so a container whose process is gone never shows as running;
//! - `exit.json`: how it last ended (by rename).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::runner::dirs;
use crate::runner::error::RunError;

const CONFIG: &str = "config.json";
const RUNNING: &str = "running";
const EXIT: &str = "exit.json";

/// What a container is, as `ps` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub version: u32,
    pub name: String,
    /// Seconds since the epoch.
    pub created: u64,
    /// The root filesystem as given (an image's name or reference, a directory).
    pub rootfs: String,
    /// The stored image it is built on, if any.
    #[serde(default)]
    pub image: Option<String>,
    /// The command as it runs (entrypoint and arguments).
    pub command: Vec<String>,
}

/// How the container last ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ended {
    /// unshare-run's exit status for the run (the command's, 125, 126, 127, 128+N).
    pub status: u8,
    pub finished: u64,
}

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Running since (seconds since the epoch).
    Up(u64),
    Exited(Option<Ended>),
}

/// The containers' directory of the caller.
pub fn containers_dir() -> Result<PathBuf, RunError> {
    dirs::containers_dir()
        .map_err(|e| RunError::new(format!("cannot find the containers' directory: {e}")))
}

/// A name podman would take: a letter or digit, then letters, digits, `_`, `.` and `-`.
pub fn check_name(name: &str) -> Result<(), RunError> {
    let mut chars = name.chars();
    let valid = name.len() <= 128
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    match valid {
        true => Ok(()),
        false => Err(RunError::new(format!("invalid container name `{name}`")).with_hint(
            "a name starts with a letter or digit and holds letters, digits, `_`, `.` and `-` (at most 128)",
        )),
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A container's record.
#[derive(Debug)]
pub struct Record {
    pub dir: PathBuf,
}

impl Record {
    pub fn of(containers: &Path, name: &str) -> Record {
        Record {
            dir: containers.join(name),
        }
    }

    /// Claims `name`: its directory is made now, or the name is taken.
    pub fn claim(containers: &Path, name: &str) -> Result<Record, RunError> {
        check_name(name)?;
        fs::create_dir_all(containers)
            .map_err(|e| RunError::sys(format!("cannot make {}", containers.display()), e))?;
        let record = Record::of(containers, name);
        match fs::create_dir(&record.dir) {
            Ok(()) => Ok(record),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(RunError::new(format!(
                "the name `{name}` is in use by a container"
            ))
            .with_hint(format!(
                "`unshare-run ps -a` lists containers; remove it (unshare-run rm {name}) or choose another name"
            ))),
            Err(e) => Err(RunError::sys(format!("cannot make {}", record.dir.display()), e)),
        }
    }

    pub fn write_config(&self, config: &Config) -> Result<(), RunError> {
        self.write(
            CONFIG,
            &serde_json::to_vec_pretty(config).expect("a config serialises"),
        )
    }

    pub fn config(&self) -> Option<Config> {
        serde_json::from_slice(&fs::read(self.dir.join(CONFIG)).ok()?).ok()
    }

    /// Marks the container as running until the returned lock is dropped (or its process ends).
    pub fn start_running(&self) -> Result<Flock<File>, RunError> {
        let path = self.dir.join(RUNNING);
        let fail = |e: io::Error| RunError::sys(format!("cannot write {}", path.display()), e);
        // A new file each time: its modification time is the start.
        let _ = fs::remove_file(&path);
        let file = File::create(&path).map_err(fail)?;
        Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| fail(e.into()))
    }

    pub fn write_ended(&self, ended: Ended) -> Result<(), RunError> {
        self.write(
            EXIT,
            &serde_json::to_vec(&ended).expect("a status serialises"),
        )
    }

    pub fn status(&self) -> Status {
        let path = self.dir.join(RUNNING);
        if let Ok(file) = File::open(&path) {
            let started = file
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            if let Err((_, nix::errno::Errno::EWOULDBLOCK)) =
                Flock::lock(file, FlockArg::LockSharedNonblock)
            {
                return Status::Up(started);
            }
        }
        let ended = fs::read(self.dir.join(EXIT))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        Status::Exited(ended)
    }

    /// Removes the record (its files are the caller's own).
    pub fn remove(&self) -> Result<(), RunError> {
        fs::remove_dir_all(&self.dir)
            .map_err(|e| RunError::sys(format!("cannot remove {}", self.dir.display()), e))
    }

    /// Writes `name` whole by rename, so that a reader never sees half of it.
    fn write(&self, name: &str, bytes: &[u8]) -> Result<(), RunError> {
        let path = self.dir.join(name);
        let temporary = self.dir.join(format!(".{name}.{}", std::process::id()));
        let fail = |e: io::Error| RunError::sys(format!("cannot write {}", path.display()), e);
        let mut file = File::create(&temporary).map_err(fail)?;
        file.write_all(bytes).map_err(fail)?;
        drop(file);
        fs::rename(&temporary, &path).map_err(fail)
    }
}

/// The names of the caller's containers, sorted.
pub fn names(containers: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(containers)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join(CONFIG).is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("urt-record-{label}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_name_is_claimed_once_and_free_again_after_removal() {
        let dir = scratch("claim");
        let record = Record::claim(&dir, "box").unwrap();
        let again = Record::claim(&dir, "box").unwrap_err();
        assert!(again.message.contains("in use"), "{}", again.message);
        assert!(again.hint.unwrap().contains("unshare-run rm box"));
        record.remove().unwrap();
        Record::claim(&dir, "box").unwrap();
        for bad in ["", "-x", "a/b", "a b", "..", &"x".repeat(129)] {
            assert!(Record::claim(&dir, bad).is_err(), "{bad:?}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn running_while_the_lock_is_held_then_exited_with_the_status() {
        let dir = scratch("status");
        let record = Record::claim(&dir, "c").unwrap();
        let config = Config {
            version: 1,
            name: "c".into(),
            created: 1,
            rootfs: "/r".into(),
            image: None,
            command: vec!["true".into()],
        };
        record.write_config(&config).unwrap();
        assert_eq!(record.config(), Some(config));
        assert_eq!(names(&dir), ["c"]);
        assert_eq!(record.status(), Status::Exited(None));
        let lock = record.start_running().unwrap();
        assert!(matches!(record.status(), Status::Up(started) if started > 0));
        let ended = Ended {
            status: 3,
            finished: now(),
        };
        record.write_ended(ended).unwrap();
        drop(lock);
        assert_eq!(record.status(), Status::Exited(Some(ended)));
        fs::remove_dir_all(&dir).unwrap();
    }
}
