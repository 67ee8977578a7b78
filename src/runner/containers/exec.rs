//! `unshare-run exec NAME COMMAND`: a command in a running container, with the container's
//! namespaces, root, default user, working directory and environment, and its confinement exactly as
//! its own command got it. Three processes:
//!
//! ```text
//! unshare-run exec (host)   stays outside every namespace; waits for the command, passes signals on
//!   ├─ entering process    forked; not dumpable, none of the caller's descriptors above 2, a session
//!   │                      of its own; joins the container's namespaces through the pidfd of its
//!   │                      command (userns::enter; PID 1 is not dumpable, so not a target),
//!   │                      starts the command and exits: it never shows in the container
//!   └─ the command         started by the entering process as unshare-run's child (CLONE_PARENT),
//!                          in the container's pid namespace; its exit status is exec's
//! ```

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use clap::{FromArgMatches, Parser};
use nix::sched::CloneFlags;
use nix::sys::signal::{SigmaskHow, sigprocmask};

use super::control::{self, existing};
use super::record::Entry;
use crate::runner::channel::Channel;
use crate::runner::cli::{NetMode, parse_env, parse_user};
use crate::runner::command::{self, Invocation};
use crate::runner::confinement::capabilities::CapabilitySet;
use crate::runner::confinement::seccomp::bpf::Insn;
use crate::runner::confinement::{Confinement, keyring};
use crate::runner::container;
use crate::runner::error::RunError;
use crate::runner::mapping::MapPlan;
use crate::runner::spec::ContainerSpec;
use crate::runner::terminal::{self, CallerStdio, Relay, Session};
use crate::runner::userns::{self, ChildIds};
use crate::runner::users::{self, GidWithoutEntry};
use crate::runner::{exit, signals};

/// `unshare-run exec`.
#[derive(Parser, Debug)]
#[command(
    name = "unshare-run exec",
    about = "Run a command in a running container",
    long_about = "Run COMMAND in a running named container, as podman exec does: in its namespaces \
(pid, mount, hostname, ipc, network) with its id map, its root filesystem, as its user in its working \
directory with its environment unless -u, -w or -e say otherwise, and with exactly the container's \
capabilities, system-call filter and no_new_privs. The process that enters is not dumpable and holds \
none of your descriptors above 2, and the command has no controlling terminal: nothing in the \
container can reach your terminal or your files through it.\n\n\
Exit status: the command's; 125 when unshare-run failed, the container is unknown or not running; \
126 when the command cannot be executed; 127 when it was not found."
)]
pub struct ExecCli {
    /// Pass stdin on to the command (without it, its stdin is /dev/null).
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give the command a terminal of the container's own (a pseudo-terminal of its devpts, relayed
    /// to yours, which is in raw mode meanwhile with -i), as its controlling terminal: job control
    /// works, and nothing it does reaches your terminal but its output.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Run the command as this user inside: UID[:GID], or names from the container's /etc/passwd and
    /// /etc/group (default: the container's user).
    #[arg(short = 'u', long, value_name = "USER[:GROUP]", value_parser = parse_user)]
    pub user: Option<String>,
    /// The command's working directory inside (default: the container's); it must exist.
    #[arg(short = 'w', long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// Set an environment variable (repeatable), over the container's environment.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(OsString, OsString)>,
    /// The container's name.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, required = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// What exec needs of a container, from its spec when it starts.
pub fn entry_of(spec: &ContainerSpec, plan: &MapPlan) -> Entry {
    let activation = ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"];
    Entry {
        uid: spec.uid,
        gid: spec.gid,
        workdir: spec
            .workdir
            .as_ref()
            .map(|w| w.to_string_lossy().into_owned()),
        env: spec
            .env
            .iter()
            .filter(|(k, _)| !activation.iter().any(|a| k == a))
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .collect(),
        capabilities: spec.confinement.capabilities.map(|c| c.0),
        no_new_privileges: spec.confinement.no_new_privileges,
        seccomp: spec.confinement.seccomp.as_deref().map(encode_program),
        keyring: spec.confinement.keyring.clone(),
        setgroups: spec.setgroups_allowed,
        own_network: spec.net != NetMode::Host,
        setup_as_root: plan.is_keep_id(),
    }
}

fn encode_program(program: &[Insn]) -> String {
    program
        .iter()
        .map(|i| format!("{:04x}{:02x}{:02x}{:08x}", i.code, i.jt, i.jf, i.k))
        .collect()
}

fn decode_program(text: &str) -> Option<Vec<Insn>> {
    if !text.len().is_multiple_of(16) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(16)
        .map(|at| {
            let field =
                |from: usize, to: usize| u32::from_str_radix(&text[at + from..at + to], 16).ok();
            Some(Insn {
                code: field(0, 4)? as u16,
                jt: field(4, 6)? as u8,
                jf: field(6, 8)? as u8,
                k: field(8, 16)?,
            })
        })
        .collect()
}

/// The container's confinement, as its command got it.
fn confinement_of(entry: &Entry) -> Result<Confinement, RunError> {
    let seccomp = match &entry.seccomp {
        Some(text) => Some(decode_program(text).ok_or_else(|| {
            RunError::new("the container's record holds a damaged seccomp filter")
        })?),
        None => None,
    };
    Ok(Confinement {
        capabilities: entry.capabilities.map(CapabilitySet),
        no_new_privileges: entry.no_new_privileges,
        covered: Default::default(),
        keyring: entry.keyring.clone(),
        seccomp,
    })
}

pub fn main(matches: &clap::ArgMatches) -> Result<u8, RunError> {
    let cli = ExecCli::from_arg_matches(matches).map_err(|e| RunError::new(e.to_string()))?;
    let not_running = || control::not_running(&cli.name);
    let record = existing(&cli.name)?;
    let state = record.running().ok_or_else(not_running)?;
    let Some(entry) = state.entry.clone() else {
        return Err(RunError::new(format!(
            "container `{}` was started by an older unshare-run, which exec cannot enter",
            cli.name
        ))
        .with_hint(format!(
            "restart it: unshare-run stop {0}; unshare-run start {0}",
            cli.name
        )));
    };
    let confinement = confinement_of(&entry)?;
    // The command's namespaces, which are PID 1's: PID 1 is not dumpable, and a pidfd's setns asks
    // for ptrace access to its process. Opened, then checked: the pidfd is the command's, not a
    // process that took its number since.
    let target = state
        .command
        .and_then(|c| c.open())
        .ok_or_else(not_running)?;
    let mut flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC;
    if entry.own_network {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    let ids = match entry.setup_as_root {
        true => ChildIds::Root,
        false => ChildIds::Callers,
    };
    let session = match cli.tty {
        true => Session::OwnTerminal {
            stderr: CallerStdio::probe().stderr_tty,
        },
        false => Session::Own,
    };
    let signals = signals::supervised();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&signals), None)
        .map_err(|e| RunError::sys("sigprocmask", e))?;
    let entering = userns::enter(target.as_fd(), flags, ids, entry.setgroups, |channel| {
        match start_command(&cli, &entry, &confinement, session, &channel) {
            Ok(Started { command, failed }) => {
                // The command is unshare-run's child: it must know the pid to wait for it, also when
                // the exec failed.
                let _ = channel.send_pid(command.as_raw());
                match failed {
                    Some(error) => channel.fail(error),
                    None => 0,
                }
            }
            Err(error) => channel.fail(error),
        }
    })?;
    drop(target);
    // The terminal's master comes first; the relay restores the caller's terminal when dropped.
    let relay = match cli.tty {
        true => entering
            .terminal()
            .map(|master| Relay::start_with(master, cli.interactive))
            .transpose()?,
        false => None,
    };
    let command = entering.receive_pid();
    // The entering process ends at once; its report says why the command did not start.
    let entered = entering.wait();
    let Some(command) = command else {
        return Err(entered.err().unwrap_or_else(|| {
            RunError::new("the process entering the container ended without starting the command")
        }));
    };
    if let Err(error) = entered {
        let _ = nix::sys::wait::waitpid(command, None);
        return Err(error);
    }
    let status = container::supervise(command, &signals, session, relay)?;
    exit::of_process(status)
        .ok_or_else(|| RunError::new(format!("unexpected wait status {status:?}")))
}

struct Started {
    command: nix::unistd::Pid,
    /// Why the command's exec failed, if it did (its status is 126 or 127).
    failed: Option<RunError>,
}

/// In the entering process, inside the container: the command's process, started as it is in a
/// container (`command::exec`: bounding set, filter, ids, capabilities, no_new_privs).
fn start_command(
    cli: &ExecCli,
    entry: &Entry,
    confinement: &Confinement,
    session: Session,
    channel: &Channel,
) -> Result<Started, RunError> {
    if let Some(name) = &entry.keyring {
        // Before the filter, which refuses keyctl; the caller's keyring goes with it.
        keyring::join_existing(name)?;
    }
    let (uid, gid) = match &cli.user {
        Some(user) => users::ids_in(&[Path::new("/")], user, GidWithoutEntry::SameAsUid)
            .map_err(|e| RunError::new(format!("--user {user}: {e}")))?,
        None => (entry.uid, entry.gid),
    };
    // The container's environment, then -e: later ones win (`command::prepare`).
    let env: Vec<(OsString, OsString)> = entry
        .env
        .iter()
        .map(|(k, v)| (k.into(), v.into()))
        .chain(cli.env.iter().cloned())
        .collect();
    let workdir = cli
        .workdir
        .clone()
        .or_else(|| entry.workdir.as_ref().map(PathBuf::from));
    let prepared = command::prepare(&Invocation {
        rootfs: true,
        uid,
        gid,
        workdir: workdir.as_deref(),
        env: &env,
        command: &cli.command,
        session,
        confinement,
        make_workdir: false,
    })?;
    let terminal = match session.has_terminal() {
        true => {
            let pty = terminal::open(uid)?;
            channel.send_terminal(pty.master.as_fd())?;
            Some(pty.terminal)
        }
        false => None,
    };
    if !cli.interactive && !cli.tty {
        let null = std::fs::File::open("/dev/null")
            .map_err(|e| RunError::sys("cannot open the container's /dev/null", e))?;
        nix::unistd::dup2_stdin(null).map_err(|e| RunError::sys("dup2", e))?;
    }
    let (command, failed) =
        command::spawn(&prepared, &[], terminal.as_ref().map(|t| t.as_fd()), true)?;
    // Only the command keeps its terminal open: once it is gone, the relay reads the end.
    drop(terminal);
    Ok(Started { command, failed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_is_kept_exactly_as_installed() {
        let program = vec![
            Insn {
                code: 0x20,
                jt: 0,
                jf: 0,
                k: 4,
            },
            Insn {
                code: 0x15,
                jt: 1,
                jf: 0xff,
                k: 0xc000_003e,
            },
            Insn {
                code: 0x06,
                jt: 0,
                jf: 0,
                k: 0x7fff_0000,
            },
        ];
        let text = encode_program(&program);
        assert_eq!(text.len(), 48);
        assert_eq!(decode_program(&text), Some(program));
        assert_eq!(decode_program(&text[..47]), None);
        assert_eq!(decode_program("zz00000000000000"), None);
        assert_eq!(decode_program(""), Some(Vec::new()));
    }
}
