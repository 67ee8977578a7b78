//! A named container's record: `containers/NAME/` in the data directory (`dirs::data_dir`), made by
//! one mkdir(2) so that a name is claimed once, with
//! - `config.json`: what it is (written once, by rename);
//! - `running`: a file that the process running it holds locked (flock) while it runs, and whose
//!   modification time is when it started: a lock dies with its holder, also on SIGKILL and at a
//!   reboot, so a container whose process is gone never shows as running;
//! - `state.json`: its processes while it runs (`liveness`: pid and start time of PID 1, of the
//!   process that runs it, and of the command), with the boot they belong to;
//! - `exit.json`: how it last ended (by rename);
//! - `log`: a detached container's output;
//! - `layer/`: the writes of a container on a stored image (its files belong to its ids, so it is
//!   removed in a user namespace).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::liveness::{self, ProcessId};
use crate::runner::dirs;
use crate::runner::error::RunError;

const CONFIG: &str = "config.json";
const RUNNING: &str = "running";
const EXIT: &str = "exit.json";
const STATE: &str = "state.json";
const LOG: &str = "log";
const LAYER: &str = "layer";
/// Held locked by the process that claimed the name until the config is written.
const CLAIM: &str = "claim";

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
    /// How it is started again (`start`, a detached container's monitor): the run's arguments as
    /// given, the directory they were given in, and what --rootfs then names (the stored image's
    /// digest, or the directory's canonical path). None in records of the first named containers.
    #[serde(default)]
    pub start: Option<Start>,
    /// Removed when it ends (--rm).
    #[serde(default)]
    pub auto_remove: bool,
    /// What `stop` sends first: --stop-signal, else the image's StopSignal (None: SIGTERM).
    #[serde(default)]
    pub stop_signal: Option<String>,
}

/// How a named container is started again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Start {
    pub args: Vec<String>,
    pub cwd: String,
    pub rootfs: String,
}

/// A running container's processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Which boot they belong to: after a reboot the pids name other processes.
    pub boot_id: Option<String>,
    /// The process that runs it: a detached container's monitor, or the foreground unshare-run.
    pub runner: ProcessId,
    pub pid1: ProcessId,
    /// None if it could not be found when the container started.
    pub command: Option<ProcessId>,
    /// How `exec` enters it.
    #[serde(default)]
    pub entry: Option<Entry>,
}

/// How `exec` enters a running container: what its command gets by default, the namespaces to join,
/// and the container's confinement exactly as it was when the container started (a seccomp profile
/// edited since, or another build's default filter, changes nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub uid: u32,
    pub gid: u32,
    pub workdir: Option<String>,
    pub env: Vec<(String, String)>,
    /// The command's capability set (None: every capability of the user namespace).
    pub capabilities: Option<u64>,
    pub no_new_privileges: bool,
    /// The system-call filter as installed: 16 hex digits per instruction (code, jt, jf, k).
    pub seccomp: Option<String>,
    /// The name of its own session keyring (None: it has the caller's).
    pub keyring: Option<String>,
    /// setgroups(2) is allowed in its user namespace (the full map).
    pub setgroups: bool,
    /// It has a network namespace other than the host's (joining the host's is not allowed from
    /// inside its user namespace).
    pub own_network: bool,
    /// The caller is not root inside (keep-id): the entering process becomes uid 0 first.
    pub setup_as_root: bool,
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

/// A name for a detached container run without --name, as podman makes one (adjective_surname),
/// not yet taken in `containers`.
pub fn generated_name(containers: &Path) -> String {
    const ADJECTIVES: [&str; 16] = [
        "brave", "calm", "eager", "fond", "gentle", "happy", "keen", "lucid", "merry", "nimble",
        "proud", "quiet", "sharp", "steady", "vivid", "witty",
    ];
    const NAMES: [&str; 16] = [
        "bohr", "curie", "dirac", "euler", "fermi", "gauss", "hopper", "knuth", "lovelace",
        "meitner", "noether", "pascal", "ritchie", "shannon", "turing", "wirth",
    ];
    let mut seed = [0u8; 8];
    let _ =
        fs::File::open("/dev/urandom").and_then(|mut f| io::Read::read_exact(&mut f, &mut seed));
    let mut n = u64::from_le_bytes(seed);
    for attempt in 0.. {
        let name = format!(
            "{}_{}",
            ADJECTIVES[(n % 16) as usize],
            NAMES[((n >> 4) % 16) as usize]
        );
        let name = match attempt {
            0..8 => name,
            _ => format!("{name}_{attempt}"),
        };
        if !containers.join(&name).exists() {
            return name;
        }
        n = n.rotate_right(8) ^ (attempt + 1);
    }
    unreachable!("the loop returns")
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

    /// Claims `name`: its directory appears now, holding the claim (`CLAIM`, locked until the returned
    /// lock is dropped: keep it until the config is written), or the name is taken. The directory is
    /// made under a temporary name and renamed into place, so it is never seen without its claim; one
    /// left without a config by a run that was killed before it wrote one is taken over.
    pub fn claim(containers: &Path, name: &str) -> Result<(Record, Flock<File>), RunError> {
        check_name(name)?;
        fs::create_dir_all(containers)
            .map_err(|e| RunError::sys(format!("cannot make {}", containers.display()), e))?;
        let record = Record::of(containers, name);
        let making = containers.join(format!(".{name}.claim.{}", std::process::id()));
        let fail = |e: io::Error| RunError::sys(format!("cannot make {}", record.dir.display()), e);
        let _ = fs::remove_dir_all(&making);
        fs::create_dir(&making).map_err(fail)?;
        let claim = File::create(making.join(CLAIM)).map_err(fail)?;
        let claim =
            Flock::lock(claim, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| fail(e.into()))?;
        for attempt in 0..2 {
            match fs::rename(&making, &record.dir) {
                Ok(()) => return Ok((record, claim)),
                Err(e) if is_taken(&e) && attempt == 0 && record.is_abandoned() => {
                    log::debug!("taking over the abandoned claim {}", record.dir.display());
                    let _ = fs::remove_dir_all(&record.dir);
                }
                Err(e) if is_taken(&e) => break,
                Err(e) => {
                    let _ = fs::remove_dir_all(&making);
                    return Err(fail(e));
                }
            }
        }
        let _ = fs::remove_dir_all(&making);
        Err(
            RunError::new(format!("the name `{name}` is in use by a container")).with_hint(format!(
                "`unshare-run ps -a` lists containers; remove it (unshare-run rm {name}) or choose another name"
            )),
        )
    }

    /// A claimed directory without a config whose claim nobody holds: its run was killed before it
    /// got that far.
    fn is_abandoned(&self) -> bool {
        if self.dir.join(CONFIG).exists() {
            return false;
        }
        match File::open(self.dir.join(CLAIM)) {
            Ok(claim) => Flock::lock(claim, FlockArg::LockExclusiveNonblock).is_ok(),
            Err(_) => false,
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

    /// Marks the container as running until the returned lock is dropped (or its process ends). The
    /// file stays the same (a second process that made a new one would lock that one, while the
    /// first still runs the container); its modification time becomes the start.
    pub fn start_running(&self) -> Result<Flock<File>, RunError> {
        let path = self.dir.join(RUNNING);
        let fail = |e: io::Error| RunError::sys(format!("cannot lock {}", path.display()), e);
        let file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(fail)?;
        let lock =
            Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| fail(e.into()))?;
        lock.set_modified(SystemTime::now()).map_err(fail)?;
        Ok(lock)
    }

    pub fn write_ended(&self, ended: Ended) -> Result<(), RunError> {
        self.write(
            EXIT,
            &serde_json::to_vec(&ended).expect("a status serialises"),
        )
    }

    /// Running while the process that runs it holds `running` locked and its PID 1 is the one its
    /// state names (in this boot); else how it last ended.
    pub fn status(&self) -> Status {
        if let Some(started) = self.locked_since()
            && self.state().is_none_or(|state| state.is_current())
        {
            return Status::Up(started);
        }
        Status::Exited(self.ended())
    }

    /// The state of a container that runs (see `status`).
    pub fn running(&self) -> Option<State> {
        self.locked_since()?;
        self.state().filter(State::is_current)
    }

    /// When the process that holds `running` locked started it; None when nobody holds it.
    pub fn locked_since(&self) -> Option<u64> {
        let file = File::open(self.dir.join(RUNNING)).ok()?;
        let started = file
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        match Flock::lock(file, FlockArg::LockSharedNonblock) {
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Some(started),
            _ => None,
        }
    }

    pub fn ended(&self) -> Option<Ended> {
        let bytes = fs::read(self.dir.join(EXIT)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn write_state(&self, state: &State) -> Result<(), RunError> {
        self.write(
            STATE,
            &serde_json::to_vec(state).expect("a state serialises"),
        )
    }

    pub fn state(&self) -> Option<State> {
        serde_json::from_slice(&fs::read(self.dir.join(STATE)).ok()?).ok()
    }

    /// A detached container's output.
    pub fn log(&self) -> PathBuf {
        self.dir.join(LOG)
    }

    /// A container on a stored image keeps its writes here (overlayfs's upper and work directories).
    pub fn layer(&self) -> PathBuf {
        self.dir.join(LAYER)
    }

    pub fn name(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Removes the record; its layer must be gone already (`containers::remove`).
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

impl State {
    /// Whether the processes it names are this boot's and PID 1 is the one it names.
    pub fn is_current(&self) -> bool {
        self.boot_id.is_some() && self.boot_id == liveness::boot_id() && self.pid1.is_alive()
    }
}

/// rename(2) onto a directory that exists and is not empty.
fn is_taken(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOTEMPTY) | Some(libc::EEXIST))
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
        let (record, claim) = Record::claim(&dir, "box").unwrap();
        let again = Record::claim(&dir, "box").unwrap_err();
        assert!(again.message.contains("in use"), "{}", again.message);
        assert!(again.hint.unwrap().contains("unshare-run rm box"));
        // Its claim let go without a config (a killed run): the next claim takes it over.
        drop(claim);
        let (record_again, _claim) = Record::claim(&dir, "box").unwrap();
        record_again.write_config(&config("box")).unwrap();
        let taken = Record::claim(&dir, "box").unwrap_err();
        assert!(taken.message.contains("in use"), "{}", taken.message);
        record.remove().unwrap();
        Record::claim(&dir, "box").unwrap();
        // Nothing is left of the claims' temporary directories.
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["box"]);
        for bad in ["", "-x", "a/b", "a b", "..", &"x".repeat(129)] {
            assert!(Record::claim(&dir, bad).is_err(), "{bad:?}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    fn config(name: &str) -> Config {
        Config {
            version: 1,
            name: name.into(),
            created: 1,
            rootfs: "/r".into(),
            image: None,
            command: vec!["true".into()],
            start: None,
            auto_remove: false,
            stop_signal: None,
        }
    }

    #[test]
    fn running_while_the_lock_is_held_then_exited_with_the_status() {
        let dir = scratch("status");
        let (record, _claim) = Record::claim(&dir, "c").unwrap();
        let config = config("c");
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

    #[test]
    fn a_state_of_another_boot_or_naming_another_process_is_not_running() {
        let dir = scratch("state");
        let (record, _claim) = Record::claim(&dir, "c").unwrap();
        let _lock = record.start_running().unwrap();
        let me = ProcessId::of(nix::unistd::Pid::this()).unwrap();
        let state = State {
            boot_id: liveness::boot_id(),
            runner: me,
            pid1: me,
            command: None,
            entry: None,
        };
        record.write_state(&state).unwrap();
        assert!(matches!(record.status(), Status::Up(_)));
        assert_eq!(record.running(), Some(state.clone()));
        let rebooted = State {
            boot_id: Some("00000000-0000-0000-0000-000000000000".into()),
            ..state.clone()
        };
        record.write_state(&rebooted).unwrap();
        assert_eq!(record.status(), Status::Exited(None));
        assert_eq!(record.running(), None);
        let reused = State {
            pid1: ProcessId {
                start: me.start + 1,
                ..me
            },
            ..state
        };
        record.write_state(&reused).unwrap();
        assert_eq!(record.status(), Status::Exited(None));
        assert_eq!(record.running(), None);
        fs::remove_dir_all(&dir).unwrap();
    }
}
