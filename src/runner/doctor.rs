//! `unshare-run doctor`: can this user start a container with the full id map here, and if not, what
//! exactly to fix. Each check prints one line with a mark; a failed check also prints the fix. Exit 0
//! when a full-map container can start, 1 otherwise.
//!
//! Every decision is a pure function of what was read (unit-tested); `main` only gathers the inputs.

use std::path::{Path, PathBuf};

use unshare_run_helpers::subid::{self, IdInterval, SubidOwner};

use super::error::RunError;
use super::mapping::{self, Caller, HelperPrivilege};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    Ok,
    /// Not needed for a full-map container, but for some feature.
    Warn,
    Fail,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub mark: Mark,
    pub what: String,
    pub fix: Option<String>,
}

fn ok(what: impl Into<String>) -> Finding {
    Finding {
        mark: Mark::Ok,
        what: what.into(),
        fix: None,
    }
}

fn fail(what: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding {
        mark: Mark::Fail,
        what: what.into(),
        fix: Some(fix.into()),
    }
}

fn warn(what: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding {
        mark: Mark::Warn,
        what: what.into(),
        fix: Some(fix.into()),
    }
}

/// The sysctls that gate unprivileged user namespaces (`None`: not present on this kernel), and whether
/// creating one actually worked.
#[derive(Clone, Debug)]
pub struct UsernsState {
    pub max_user_namespaces: Option<u64>,
    pub unprivileged_userns_clone: Option<u64>,
    pub apparmor_restrict: Option<u64>,
    pub apparmor_profile_loaded: bool,
    pub probe: Result<(), String>,
}

pub fn check_user_namespaces(s: &UsernsState) -> Vec<Finding> {
    let mut findings = Vec::new();
    if s.max_user_namespaces == Some(0) {
        findings.push(fail(
            "user namespaces are disabled (user.max_user_namespaces = 0)",
            "as root: sysctl -w user.max_user_namespaces=15000 (and set it in /etc/sysctl.d/)",
        ));
    }
    if s.unprivileged_userns_clone == Some(0) {
        findings.push(fail(
            "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)",
            "as root: sysctl -w kernel.unprivileged_userns_clone=1 (and set it in /etc/sysctl.d/)",
        ));
    }
    if s.apparmor_restrict.is_some_and(|v| v != 0) && !s.apparmor_profile_loaded {
        findings.push(fail(
            "AppArmor restricts unprivileged user namespaces and no profile for unshare-run is loaded",
            "install the package's profile: apparmor_parser -r /etc/apparmor.d/unshare-run \
             (or as root: sysctl -w kernel.apparmor_restrict_unprivileged_userns=0)",
        ));
    }
    match &s.probe {
        Ok(()) if findings.is_empty() => findings.push(ok("unprivileged user namespaces work")),
        Ok(()) => {}
        Err(e) => findings.push(fail(
            format!("creating a user namespace failed: {e}"),
            "check the sysctls above, and that no seccomp filter or container forbids unshare(2)",
        )),
    }
    findings
}

/// What was found about one helper.
#[derive(Clone, Debug)]
pub struct HelperState {
    pub name: &'static str,
    pub path: Option<PathBuf>,
    pub privilege: Result<HelperPrivilege, (String, String)>,
    /// `--version` output, to tell which implementation it is.
    pub version: Option<String>,
}

pub fn check_helper(h: &HelperState) -> Finding {
    let Some(path) = &h.path else {
        return fail(
            format!("{} was not found next to unshare-run or in PATH", h.name),
            "install the helpers (this project's package, or apt-get install uidmap)",
        );
    };
    let implementation = match &h.version {
        Some(v) if v.contains("(unshare-run)") => "unshare-run's",
        _ => "another implementation (shadow-utils?)",
    };
    match &h.privilege {
        Ok(p) => {
            let how = match p {
                HelperPrivilege::SetuidRoot => "setuid root",
                HelperPrivilege::FileCapabilities => "file capability",
            };
            ok(format!(
                "{} is {}: {implementation}, {how}",
                h.name,
                path.display()
            ))
        }
        Err((reason, fix)) => fail(reason.clone(), fix.clone()),
    }
}

/// The caller's entries in one subid file, against the rest of the file.
pub fn check_ranges(
    path: &str,
    flag: &str,
    caller: &Caller,
    content: Option<&[u8]>,
) -> Vec<Finding> {
    let who = caller
        .name
        .clone()
        .unwrap_or_else(|| caller.uid.to_string());
    let add =
        format!("as root: usermod --add-{flag} 100000-165535 {who} (pick a free range of 65536)");
    let Some(content) = content else {
        return vec![fail(format!("{path} does not exist"), add)];
    };
    let owner = SubidOwner::new(who.as_bytes(), caller.uid);
    let mine = subid::owner_ranges(content, &owner);
    if mine.is_empty() {
        return vec![fail(format!("{who} has no ranges in {path}"), add)];
    }
    let mut findings = Vec::new();
    let total: u64 = mine.iter().map(IdInterval::count).sum();
    if total < 65536 {
        findings.push(fail(
            format!("{who} has {total} ids in {path}; distributions need 65536"),
            format!("as root: usermod --add-{flag} with a range of 65536 for {who}"),
        ));
    }
    let own = IdInterval {
        start: u64::from(caller.uid),
        end: u64::from(caller.uid) + 1,
    };
    if mine.iter().any(|r| overlaps(*r, own)) {
        findings.push(fail(
            format!(
                "a range of {who} in {path} contains {who}'s own id {}",
                caller.uid
            ),
            format!(
                "as root: move {who}'s range in {path} away from {}",
                caller.uid
            ),
        ));
    }
    let others = content
        .split(|&b| b == b'\n')
        .filter_map(subid::parse_line)
        .filter(|e| e.owner != who.as_bytes() && e.owner != caller.uid.to_string().as_bytes());
    for other in others {
        if mine.iter().any(|r| overlaps(*r, other.range)) {
            let name = String::from_utf8_lossy(other.owner);
            findings.push(fail(
                format!(
                    "{who}'s range in {path} overlaps {name}'s [{}-{})",
                    other.range.start, other.range.end
                ),
                format!("as root: give {who} and {name} ranges that do not overlap in {path}"),
            ));
        }
    }
    if findings.is_empty() {
        let list: Vec<String> = mine
            .iter()
            .map(|r| format!("{}-{}", r.start, r.end - 1))
            .collect();
        findings.push(ok(format!(
            "{who} has {total} ids in {path}: {}",
            list.join(", ")
        )));
    }
    findings
}

fn overlaps(a: IdInterval, b: IdInterval) -> bool {
    a.start < b.end && b.start < a.end
}

pub fn check_no_new_privs(set: bool) -> Finding {
    if set {
        fail(
            "no_new_privs is set for this process: the setuid helpers cannot gain privilege",
            "run unshare-run from a shell that is not started with no_new_privs \
             (e.g. outside a sandbox, or without systemd's NoNewPrivileges=yes)",
        )
    } else {
        ok("no_new_privs is not set")
    }
}

pub fn check_tun(result: Result<(), String>) -> Finding {
    match result {
        Ok(()) => ok("/dev/net/tun is usable (for --net pasta)"),
        Err(e) => warn(
            format!("/dev/net/tun is not usable: {e} (needed only for --net pasta)"),
            "as root: chmod 0666 /dev/net/tun (the mode distributions ship)",
        ),
    }
}

fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn probe_user_namespace() -> Result<(), String> {
    use nix::sched::CloneFlags;
    use nix::sys::wait::{WaitStatus, waitpid};
    match crate::sys::clone_into(CloneFlags::CLONE_NEWUSER).map_err(|e| e.to_string())? {
        crate::sys::Forked::Child => crate::sys::exit_now(0),
        crate::sys::Forked::Parent(pid) => match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, 0)) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    }
}

fn gather_helper(name: &'static str) -> HelperState {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let path = mapping::locate_helper(name, exe_dir.as_deref(), std::env::var_os("PATH"));
    let privilege = match &path {
        Some(p) => mapping::check_helper_privileged(p).map_err(|e| (e.reason, e.fix)),
        None => Err((String::new(), String::new())),
    };
    let version = path.as_ref().and_then(|p| {
        let out = std::process::Command::new(p)
            .arg("--version")
            .output()
            .ok()?;
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    });
    HelperState {
        name,
        path,
        privilege,
        version,
    }
}

/// `unshare-run doctor`'s command line: no arguments.
pub fn command() -> clap::Command {
    clap::Command::new("unshare-run doctor")
        .about("Check that you can start containers with your full id map here, and say what to fix")
        .long_about(
            "Check everything a container with your full subordinate id map needs: user namespaces \
             enabled, newuidmap and newgidmap found and privileged (setuid root or a file capability, \
             not on a nosuid mount), your ranges in /etc/subuid and /etc/subgid (present, 65536 ids or \
             more, not containing your own id, not overlapping other users'), no_new_privs not set, and \
             /dev/net/tun usable for --net pasta. Each check prints one line; a failed one also prints \
             the exact fix.",
        )
        .after_help(
            "Exit status: 0 when a full-map container can start, 1 otherwise.\n\
             A host command named doctor runs with: unshare-run -- doctor",
        )
}

/// Runs the checks and prints the findings; exit status 0 when a full-map container can start.
pub fn main(_: &clap::ArgMatches) -> Result<u8, RunError> {
    let caller = mapping::current_caller();
    let mut findings = check_user_namespaces(&UsernsState {
        max_user_namespaces: read_number("/proc/sys/user/max_user_namespaces"),
        unprivileged_userns_clone: read_number("/proc/sys/kernel/unprivileged_userns_clone"),
        apparmor_restrict: read_number("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"),
        apparmor_profile_loaded: std::fs::read_to_string("/sys/kernel/security/apparmor/profiles")
            .is_ok_and(|p| p.lines().any(|l| l.starts_with("unshare-run"))),
        probe: probe_user_namespace(),
    });
    for name in ["newuidmap", "newgidmap"] {
        findings.push(check_helper(&gather_helper(name)));
    }
    for (path, flag) in [("/etc/subuid", "subuids"), ("/etc/subgid", "subgids")] {
        let content = std::fs::read(path).ok();
        findings.extend(check_ranges(path, flag, &caller, content.as_deref()));
    }
    findings.push(check_no_new_privs(
        nix::sys::prctl::get_no_new_privs().unwrap_or(false),
    ));
    findings.push(check_tun(
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .map(drop)
            .map_err(|e| e.to_string()),
    ));
    for f in &findings {
        let mark = match f.mark {
            Mark::Ok => "[ ok ]",
            Mark::Warn => "[warn]",
            Mark::Fail => "[FAIL]",
        };
        println!("{mark} {}", f.what);
        if let Some(fix) = &f.fix {
            println!("       fix: {fix}");
        }
    }
    let failed = findings.iter().any(|f| f.mark == Mark::Fail);
    if failed {
        println!(
            "A container would run with a single-id map (or not at all): fix the lines marked FAIL."
        );
        Ok(1)
    } else {
        println!("A container with your full id map can start.");
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Caller {
        Caller {
            uid: 1000,
            gid: 1000,
            name: Some("alice".into()),
        }
    }

    fn marks(findings: &[Finding]) -> Vec<Mark> {
        findings.iter().map(|f| f.mark).collect()
    }

    #[test]
    fn user_namespace_gates() {
        let good = UsernsState {
            max_user_namespaces: Some(100),
            unprivileged_userns_clone: None,
            apparmor_restrict: None,
            apparmor_profile_loaded: false,
            probe: Ok(()),
        };
        assert_eq!(marks(&check_user_namespaces(&good)), [Mark::Ok]);
        let zero = UsernsState {
            max_user_namespaces: Some(0),
            probe: Err("EPERM".into()),
            ..good.clone()
        };
        let f = check_user_namespaces(&zero);
        assert_eq!(marks(&f), [Mark::Fail, Mark::Fail]);
        assert!(
            f[0].fix
                .as_deref()
                .unwrap()
                .contains("sysctl -w user.max_user_namespaces")
        );
        let debian_old = UsernsState {
            unprivileged_userns_clone: Some(0),
            ..good.clone()
        };
        assert!(
            check_user_namespaces(&debian_old)[0]
                .fix
                .as_deref()
                .unwrap()
                .contains("unprivileged_userns_clone=1")
        );
        let ubuntu = UsernsState {
            apparmor_restrict: Some(1),
            ..good.clone()
        };
        assert!(
            check_user_namespaces(&ubuntu)[0]
                .fix
                .as_deref()
                .unwrap()
                .contains("apparmor_parser")
        );
        let ubuntu_with_profile = UsernsState {
            apparmor_profile_loaded: true,
            ..ubuntu
        };
        assert_eq!(
            marks(&check_user_namespaces(&ubuntu_with_profile)),
            [Mark::Ok]
        );
    }

    #[test]
    fn ranges_missing_small_overlapping_or_containing_own_id() {
        let check =
            |content: &[u8]| check_ranges("/etc/subuid", "subuids", &alice(), Some(content));
        assert_eq!(marks(&check(b"alice:100000:65536\n")), [Mark::Ok]);
        assert_eq!(marks(&check(b"1000:100000:65536\n")), [Mark::Ok]);
        let none = check(b"bob:100000:65536\n");
        assert!(
            none[0]
                .fix
                .as_deref()
                .unwrap()
                .contains("usermod --add-subuids"),
            "{none:?}"
        );
        assert!(check(b"alice:100000:1000\n")[0].what.contains("1000 ids"));
        let own = check(b"alice:999:65536\n");
        assert!(
            own.iter().any(|f| f.what.contains("own id 1000")),
            "{own:?}"
        );
        let overlap = check(b"alice:100000:65536\nbob:165000:65536\n");
        assert!(
            overlap.iter().any(|f| f.what.contains("overlaps bob's")),
            "{overlap:?}"
        );
        let missing = check_ranges("/etc/subuid", "subuids", &alice(), None);
        assert_eq!(marks(&missing), [Mark::Fail]);
    }

    #[test]
    fn helpers_missing_or_unprivileged() {
        let missing = HelperState {
            name: "newuidmap",
            path: None,
            privilege: Err((String::new(), String::new())),
            version: None,
        };
        assert_eq!(check_helper(&missing).mark, Mark::Fail);
        let unprivileged = HelperState {
            path: Some("/x/newuidmap".into()),
            privilege: Err(("not setuid".into(), "chmod 4755".into())),
            ..missing.clone()
        };
        assert_eq!(
            check_helper(&unprivileged).fix.as_deref(),
            Some("chmod 4755")
        );
        let ours = HelperState {
            privilege: Ok(HelperPrivilege::SetuidRoot),
            version: Some("newuidmap (unshare-run) 0.1.0\n".into()),
            ..unprivileged.clone()
        };
        assert!(
            check_helper(&ours)
                .what
                .contains("unshare-run's, setuid root")
        );
        let shadow = HelperState {
            privilege: Ok(HelperPrivilege::FileCapabilities),
            version: None,
            ..ours
        };
        assert!(
            check_helper(&shadow)
                .what
                .contains("another implementation")
        );
    }

    #[test]
    fn no_new_privs_and_tun() {
        assert_eq!(check_no_new_privs(true).mark, Mark::Fail);
        assert_eq!(check_no_new_privs(false).mark, Mark::Ok);
        assert_eq!(check_tun(Err("Permission denied".into())).mark, Mark::Warn);
        assert_eq!(check_tun(Ok(())).mark, Mark::Ok);
    }
}
