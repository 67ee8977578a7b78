//! Which of the caller's descriptors reach the container. With `--rootfs`: 0, 1 and 2, then 3..3+N-1
//! with `--preserve-fds N`, or the sockets of systemd's socket activation (LISTEN_FDS, when
//! LISTEN_PID names unshare-run), as podman passes them; nothing else, so that no directory or socket
//! of the host leaks in (runc's CVE-2024-21626). Host mode passes every descriptor on, as util-linux
//! unshare and bwrap do: it shares the host's files anyway, and the caller chose what it holds.

use std::ffi::OsString;
use std::os::fd::RawFd;

use super::super::error::RunError;
use crate::sys;

/// The first descriptor after the standard ones.
const FIRST: RawFd = 3;

/// The command's pid inside the container (PID 1's first child), which LISTEN_PID must name.
const COMMAND_PID: &str = "2";

/// The caller's descriptors 3.. that the container gets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Passed {
    /// 3..3+count-1 are passed.
    pub count: u32,
    /// LISTEN_FDS and LISTEN_FDNAMES, for the command's environment, with socket activation.
    pub activation: Option<Activation>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Activation {
    pub fds: u32,
    pub names: Option<OsString>,
}

/// What passes, from --preserve-fds and the activation variables (`env`: LISTEN_PID, LISTEN_FDS,
/// LISTEN_FDNAMES), for unshare-run's pid `own_pid`. Variables meant for another process (LISTEN_PID
/// is not ours) are not: those descriptors are not for us.
pub fn passed(
    preserve_fds: u32,
    env: impl Fn(&str) -> Option<OsString>,
    own_pid: u32,
) -> Result<Passed, RunError> {
    let ours = env("LISTEN_PID")
        .and_then(|p| p.to_str()?.parse::<u32>().ok())
        .is_some_and(|p| p == own_pid);
    let activation = match env("LISTEN_FDS").filter(|_| ours) {
        Some(fds) => {
            let fds = fds
                .to_str()
                .and_then(|f| f.parse::<u32>().ok())
                .ok_or_else(|| {
                    RunError::new(format!("LISTEN_FDS={fds:?} is not a number of descriptors"))
                        .with_hint(
                            "socket activation sets LISTEN_FDS to how many sockets it passes",
                        )
                })?;
            Some(Activation {
                fds,
                names: env("LISTEN_FDNAMES"),
            })
        }
        None => None,
    };
    let count = preserve_fds.max(activation.as_ref().map_or(0, |a| a.fds));
    Ok(Passed { count, activation })
}

/// Checks that 3..3+count-1 are the caller's: open and inherited (not close-on-exec, which every
/// descriptor of unshare-run's own is). Run before unshare-run holds anything open for the container,
/// so none of its own can be passed in.
pub fn check_open(passed: &Passed) -> Result<(), RunError> {
    for fd in FIRST..FIRST + passed.count as RawFd {
        if !sys::is_inheritable(fd) {
            return Err(RunError::new(format!(
                "--preserve-fds {}: descriptor {fd} is not open",
                passed.count
            ))
            .with_hint(format!(
                "open descriptors 3 to {} before starting unshare-run (e.g. `3<file`), or pass fewer",
                FIRST + passed.count as RawFd - 1
            )));
        }
    }
    Ok(())
}

/// In PID 1 of a --rootfs container, once it is set up: closes every descriptor above 2 but the
/// passed ones and `channel` (to unshare-run, close-on-exec). What PID 1 opens afterwards is
/// close-on-exec, so the command starts with exactly 0, 1, 2 and the passed ones.
pub fn close_unpassed(passed: &Passed, channel: RawFd) -> Result<(), RunError> {
    let mut keep: Vec<RawFd> = (FIRST..FIRST + passed.count as RawFd).collect();
    keep.push(channel);
    sys::close_from_except(FIRST, &keep)
        .map_err(|e| RunError::sys("closing the descriptors the container must not get", e))
}

/// The activation variables for the command: LISTEN_FDS and LISTEN_FDNAMES as given, LISTEN_PID the
/// command's pid inside.
pub fn environment(passed: &Passed) -> Vec<(OsString, OsString)> {
    let Some(activation) = &passed.activation else {
        return Vec::new();
    };
    let mut env = vec![
        ("LISTEN_FDS".into(), activation.fds.to_string().into()),
        ("LISTEN_PID".into(), COMMAND_PID.into()),
    ];
    if let Some(names) = &activation.names {
        env.push(("LISTEN_FDNAMES".into(), names.clone()));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |key| vars.iter().find(|(k, _)| *k == key).map(|(_, v)| v.into())
    }

    #[test]
    fn socket_activation_for_this_process_passes_its_sockets() {
        let vars = [
            ("LISTEN_PID", "77"),
            ("LISTEN_FDS", "2"),
            ("LISTEN_FDNAMES", "a:b"),
        ];
        let passed = passed(0, env(&vars), 77).unwrap();
        assert_eq!(passed.count, 2);
        assert_eq!(
            environment(&passed),
            [
                ("LISTEN_FDS".into(), "2".into()),
                ("LISTEN_PID".into(), "2".into()),
                ("LISTEN_FDNAMES".into(), "a:b".into())
            ]
        );
        // --preserve-fds counts from 3 too: the larger wins.
        assert_eq!(super::passed(5, env(&vars), 77).unwrap().count, 5);
    }

    #[test]
    fn activation_meant_for_another_process_passes_nothing() {
        let vars = [("LISTEN_PID", "76"), ("LISTEN_FDS", "2")];
        assert_eq!(passed(0, env(&vars), 77).unwrap(), Passed::default());
        assert_eq!(
            passed(0, env(&[("LISTEN_FDS", "2")]), 77).unwrap(),
            Passed::default()
        );
        assert!(environment(&Passed::default()).is_empty());
    }

    #[test]
    fn a_bad_listen_fds_is_an_error() {
        let vars = [("LISTEN_PID", "77"), ("LISTEN_FDS", "two")];
        let error = passed(0, env(&vars), 77).unwrap_err();
        assert!(error.to_string().contains("LISTEN_FDS"), "{error}");
    }

    #[test]
    fn only_open_inherited_descriptors_can_be_passed() {
        // The test harness's descriptors above 2 are its own (close-on-exec) or closed.
        let error = check_open(&Passed {
            count: 64,
            activation: None,
        })
        .unwrap_err();
        assert!(error.to_string().contains("is not open"), "{error}");
        check_open(&Passed::default()).unwrap();
    }
}
