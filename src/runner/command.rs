//! The user's command: its argv, environment, ids and working directory, and the exec itself.

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
use nix::unistd::{Gid, Uid, setresgid, setresuid};

use super::confinement::{Confinement, capabilities, seccomp};
use super::error::RunError;
use super::exit;
use super::spec::ContainerSpec;
use super::terminal::{self, Session};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Everything exec needs, computed before the command's process starts: mistakes are reported as
/// set-up errors, and that process (which shares PID 1's memory) has little left to do.
pub struct Prepared {
    argv: Vec<CString>,
    env: Vec<CString>,
    /// Where exec looks for the program, in order: the program itself if it names a path, else each
    /// directory of PATH joined with it.
    candidates: Vec<CString>,
    uid: u32,
    gid: u32,
    workdir: Option<PathBuf>,
    session: Session,
    confinement: Confinement,
}

/// What the command's exec needs of its container: a start's spec (`ContainerSpec::invocation`), or
/// what `exec` reads of a running container's record.
pub struct Invocation<'a> {
    /// It has a root filesystem of its own (a clean environment), rather than the host's.
    pub rootfs: bool,
    pub uid: u32,
    pub gid: u32,
    pub workdir: Option<&'a Path>,
    pub env: &'a [(OsString, OsString)],
    /// Empty: the user's shell.
    pub command: &'a [OsString],
    pub session: Session,
    pub confinement: &'a Confinement,
    /// A missing working directory is made (a start's, as podman does); an exec's must exist.
    pub make_workdir: bool,
}

impl<'a> Invocation<'a> {
    /// A start's: its spec.
    pub fn of_spec(spec: &'a ContainerSpec) -> Invocation<'a> {
        Invocation {
            rootfs: spec.rootfs.is_some(),
            uid: spec.uid,
            gid: spec.gid,
            workdir: spec.workdir.as_deref(),
            env: &spec.env,
            command: &spec.command,
            session: spec.session,
            confinement: &spec.confinement,
            make_workdir: true,
        }
    }
}

/// A user's entry in the container's /etc/passwd: (home, shell).
fn passwd_entry(uid: u32) -> Option<(String, String)> {
    let passwd = super::users::read_account_file(Path::new("/etc/passwd"));
    super::users::passwd_entries(&passwd)
        .find(|e| e.uid == uid)
        .map(|e| (e.home.to_string(), e.shell.to_string()))
}

fn usable_shell(shell: &str) -> bool {
    !shell.is_empty()
        && !shell.ends_with("/nologin")
        && !shell.ends_with("/false")
        && Path::new(shell).exists()
}

/// In PID 1, after the switch to the root filesystem: makes a missing working directory, then works
/// out everything the exec needs (argv, environment, the paths to try), so that the command's process
/// only switches ids, changes directory and execs.
pub fn prepare(spec: &Invocation<'_>) -> Result<Prepared, RunError> {
    if spec.make_workdir {
        make_working_directory(spec)?;
    }
    let entry = passwd_entry(spec.uid);
    let mut env: Vec<(OsString, OsString)> = Vec::new();
    if spec.rootfs {
        // A root filesystem is another system: start from a clean environment.
        let home = entry
            .as_ref()
            .map(|(h, _)| h.clone())
            .filter(|h| !h.is_empty());
        let home = home.unwrap_or_else(|| {
            if spec.uid == 0 {
                "/root".into()
            } else {
                "/".into()
            }
        });
        env.push(("PATH".into(), DEFAULT_PATH.into()));
        env.push(("HOME".into(), home.into()));
        if let Some(term) = std::env::var_os("TERM") {
            env.push(("TERM".into(), term));
        }
        env.push(("container".into(), "unshare-run".into()));
    } else {
        env.extend(std::env::vars_os());
    }
    for (key, value) in spec.env {
        env.retain(|(k, _)| k != key);
        env.push((key.clone(), value.clone()));
    }
    let search_path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| DEFAULT_PATH.into());
    let argv: Vec<OsString> = if spec.command.is_empty() {
        let shell = if !spec.rootfs {
            std::env::var("SHELL").ok().filter(|s| usable_shell(s))
        } else {
            entry.map(|(_, s)| s).filter(|s| usable_shell(s))
        };
        vec![shell.unwrap_or_else(|| "/bin/sh".into()).into()]
    } else {
        spec.command.to_vec()
    };
    let to_c = |s: OsString| {
        CString::new(s.into_vec())
            .map_err(|_| RunError::new("an argument or variable contains a NUL byte"))
    };
    let program = argv[0].as_bytes();
    let candidates = if program.contains(&b'/') {
        vec![PathBuf::from(OsStr::from_bytes(program))]
    } else {
        std::env::split_paths(&search_path)
            .map(|d| d.join(OsStr::from_bytes(program)))
            .collect()
    };
    log::debug!(
        "command {argv:?} as uid {} gid {} in {}, looked for as {candidates:?}",
        spec.uid,
        spec.gid,
        spec.workdir.unwrap_or(Path::new("/")).display()
    );
    Ok(Prepared {
        candidates: candidates
            .into_iter()
            .filter_map(|c| CString::new(c.into_os_string().into_vec()).ok())
            .collect(),
        argv: argv.into_iter().map(to_c).collect::<Result<_, _>>()?,
        env: env
            .into_iter()
            .map(|(k, v)| {
                let mut kv = k;
                kv.push("=");
                kv.push(v);
                to_c(kv)
            })
            .collect::<Result<_, _>>()?,
        uid: spec.uid,
        gid: spec.gid,
        workdir: spec.workdir.map(Path::to_path_buf),
        session: spec.session,
        confinement: spec.confinement.clone(),
    })
}

/// With a root filesystem, a missing working directory is made (0755, owned by root inside), as podman
/// and docker do. This runs after the switch to the root filesystem, so nothing outside it can be
/// reached. In host mode a missing one stays an error: nothing is made on the host.
fn make_working_directory(spec: &Invocation<'_>) -> Result<(), RunError> {
    use std::os::unix::fs::DirBuilderExt;
    let (true, Some(dir)) = (spec.rootfs, spec.workdir) else {
        return Ok(());
    };
    if dir.is_dir() {
        return Ok(());
    }
    log::debug!("making the working directory {}", dir.display());
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|e| {
            RunError::sys(
                format!("cannot make the working directory {}", dir.display()),
                e,
            )
        })
}

/// Starts the command's process, which runs `exec` and shares this process's memory until it execs
/// (`sys::spawn_sharing_memory`); with `as_sibling` it is the child of this process's parent. Its
/// pid, and why its exec failed if it did (it has then exited with that error's status).
pub fn spawn(
    p: &Prepared,
    ignored: &[nix::sys::signal::Signal],
    terminal: Option<std::os::fd::BorrowedFd<'_>>,
    as_sibling: bool,
) -> Result<(nix::unistd::Pid, Option<RunError>), RunError> {
    // Where it failed is left in the shared memory.
    let mut failed = None;
    let pid = crate::sys::spawn_sharing_memory(as_sibling, &mut || {
        let error = exec(p, ignored, terminal);
        let status = error.status;
        failed = Some(error);
        libc::c_int::from(status)
    })
    .map_err(|e| RunError::sys("starting the command", e))?;
    Ok((pid, failed))
}

/// In the command's process: enter its session (on `terminal`, the container's terminal, if it has
/// one), become the requested user and exec. Returns only if that failed, with the error to report
/// (its status is 125, 126 or 127). `ignored` are the signals the caller of
/// unshare-run ignored (nohup's SIGHUP, a background job's SIGINT): PID 1's handlers for them would
/// turn into the default action at exec, so they are ignored again. The process shares PID 1's memory
/// (sys::spawn_sharing_memory) but has its own signal handlers, credentials, working directory and
/// descriptors, which are all this changes.
pub fn exec(
    p: &Prepared,
    ignored: &[nix::sys::signal::Signal],
    terminal: Option<std::os::fd::BorrowedFd<'_>>,
) -> RunError {
    for &signal in ignored {
        let _ = crate::sys::ignore(signal);
    }
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    if let Err(e) = terminal::enter_session(p.session, terminal) {
        return e;
    }
    if let Err(e) = become_user(p) {
        return e;
    }
    if let Some(dir) = &p.workdir
        && let Err(e) = std::env::set_current_dir(dir)
    {
        return RunError::sys(
            format!("cannot change to the working directory {}", dir.display()),
            e,
        );
    }
    let shown = String::from_utf8_lossy(p.argv[0].as_bytes()).into_owned();
    let mut denied = None;
    for path in &p.candidates {
        let exists = nix::sys::stat::stat(path.as_c_str()).is_ok();
        let err = nix::unistd::execve(path, &p.argv, &p.env).unwrap_err();
        match err {
            Errno::ENOENT | Errno::ENOTDIR => continue,
            // A PATH directory we may not search: the command is not there.
            Errno::EACCES if !exists => continue,
            // Like a shell: remember "found but not executable", keep searching.
            Errno::EACCES | Errno::EPERM | Errno::ENOEXEC | Errno::EISDIR => {
                denied = Some((err, on_noexec_mount(path)));
            }
            other => {
                return RunError::new(format!("{shown}: {}", other.desc()))
                    .with_status(exit::CANNOT_EXECUTE);
            }
        }
    }
    match denied {
        Some((e, noexec)) => {
            let error = RunError {
                errno: Some(e),
                ..RunError::new(format!("{shown}: cannot execute: {}", e.desc()))
            }
            .with_status(exit::CANNOT_EXECUTE);
            if noexec {
                error.with_hint(
                    "it is on a file system mounted noexec (as /tmp or /home often are): put the \
                     root filesystem, or the program, on a mount without noexec",
                )
            } else {
                error
            }
        }
        None => RunError::new(format!("{shown}: command not found")).with_status(exit::NOT_FOUND),
    }
}

/// Switches to the command's ids with its capabilities and filter: the bounding set is limited while
/// this process still has CAP_SETPCAP, the filter installed while it has CAP_SYS_ADMIN, the ids
/// change with CAP_SETUID and CAP_SETGID (whether or not the command keeps them), and only then are
/// the command's sets made.
fn become_user(p: &Prepared) -> Result<(), RunError> {
    let capabilities = p.confinement.capabilities;
    if let Some(set) = capabilities {
        capabilities::limit_bounding_set(set)?;
    }
    // Installed while CAP_SYS_ADMIN is still effective; the calls that follow pass through it.
    if let Some(program) = &p.confinement.seccomp {
        seccomp::install(program)?;
    }
    let gid = Gid::from_raw(p.gid);
    setresgid(gid, gid, gid)
        .map_err(|e| RunError::sys(format!("cannot switch to gid {}", p.gid), e))?;
    let uid = Uid::from_raw(p.uid);
    setresuid(uid, uid, uid)
        .map_err(|e| RunError::sys(format!("cannot switch to uid {}", p.uid), e))?;
    if let Some(set) = capabilities {
        capabilities::set_for_command(set, p.uid)?;
    }
    if p.confinement.no_new_privileges {
        nix::sys::prctl::set_no_new_privs().map_err(|e| RunError::sys("no_new_privs", e))?;
    }
    Ok(())
}

/// Whether `path` is on a mount with noexec (EACCES for every program on it, whatever its mode).
fn on_noexec_mount(path: &std::ffi::CStr) -> bool {
    nix::sys::statvfs::statvfs(path)
        .is_ok_and(|v| v.flags().contains(nix::sys::statvfs::FsFlags::ST_NOEXEC))
}
