//! newuidmap / newgidmap: shadow-compatible, stricter where shadow had CVEs.
//!
//! `run` is the whole privileged decision, one named check per step, in shadow's order:
//! argument count, target, caller, ownership, triplets, coverage by /etc/sub[ug]id, then the least-
//! privilege switch, setgroups "deny" (gid maps granted by the caller's own gid alone), and one write.

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;
use nix::unistd::{User, getgid, getuid};

use crate::audit::{self, AuditRecord, Decision};
use crate::idmap::{IdMapping, parse_mappings, render_map};
use crate::privilege::{self, CAP_SETFCAP, CAP_SETGID, CAP_SETUID, capability_bit};
use crate::subid::{self, SubidFileError, SubidOwner};
use crate::target::{self, Target, TargetOwner};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    Uid,
    Gid,
}

impl IdKind {
    pub fn program(self) -> &'static str {
        match self {
            IdKind::Uid => "newuidmap",
            IdKind::Gid => "newgidmap",
        }
    }
    pub fn subid_path(self) -> &'static str {
        match self {
            IdKind::Uid => "/etc/subuid",
            IdKind::Gid => "/etc/subgid",
        }
    }
    fn map_file(self) -> &'static str {
        match self {
            IdKind::Uid => "uid_map",
            IdKind::Gid => "gid_map",
        }
    }
    fn word(self) -> &'static str {
        match self {
            IdKind::Uid => "uid",
            IdKind::Gid => "gid",
        }
    }
}

/// The user running the helper, from the real ids and the passwd entry of the real uid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub name: String,
    pub passwd_gid: u32,
}

impl Caller {
    fn own_id(&self, kind: IdKind) -> u32 {
        match kind {
            IdKind::Uid => self.uid,
            IdKind::Gid => self.passwd_gid,
        }
    }
}

/// What the checks granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Some range came from /etc/subgid, so setgroups may stay allowed (CVE-2018-7169).
    pub setgroups_allowed: bool,
}

/// The helper applet. The process has been through `privilege::harden_privileged_start`.
pub fn main(kind: IdKind, args: &[OsString]) -> u8 {
    let program = kind.program();
    // Before the arguments are looked at and the caller is looked up.
    if let Err(e) = privilege::narrow_to_caller(capabilities_the_run_may_need(kind)) {
        eprintln!("{program}: could not drop privileges: {e}");
        return 1;
    }
    match args {
        [flag] if flag == "--help" || flag == "-h" => {
            // Not print!: it panics when stdout is closed (glibc gives a setuid program a read-only
            // /dev/null there).
            let _ = std::io::Write::write_all(&mut std::io::stdout(), help_text(kind).as_bytes());
            return 0;
        }
        [flag] if flag == "--version" || flag == "-V" => {
            let version = format!("{program} (unshare-run) {}\n", env!("CARGO_PKG_VERSION"));
            let _ = std::io::Write::write_all(&mut std::io::stdout(), version.as_bytes());
            return 0;
        }
        _ => {}
    }
    let mut record = AuditRecord {
        caller_uid: getuid().as_raw(),
        ..AuditRecord::default()
    };
    let outcome = run(kind, args, &mut record);
    let socket = Path::new(audit::SYSLOG_SOCKET);
    match outcome {
        Ok(()) => {
            audit::send(socket, program, &record, Decision::Granted);
            0
        }
        Err(message) => {
            eprintln!("{program}: {message}");
            audit::send(socket, program, &record, Decision::Denied(&message));
            1
        }
    }
}

fn usage(kind: IdKind) -> String {
    format!(
        "usage: {} <pid|fd:<pidfd>> <{w}> <lower{w}> <count> [ <{w}> <lower{w}> <count> ] ...",
        kind.program(),
        w = kind.word()
    )
}

fn help_text(kind: IdKind) -> String {
    format!(
        "{usage}\n\n\
         Sets the {w} map of a process's user namespace, if {file} grants the caller the\n\
         outside ranges (or a range is just the caller's own {w}). The target is a pid, or fd:N\n\
         naming an inherited /proc/<pid> directory or pidfd. Exit status: 0 written, 1 refused.\n\
         See {prog}(1).\n",
        usage = usage(kind),
        w = kind.word(),
        file = kind.subid_path(),
        prog = kind.program(),
    )
}

/// The whole decision and the write. `Err` is the message for stderr and the audit log.
pub fn run(kind: IdKind, args: &[OsString], record: &mut AuditRecord) -> Result<(), String> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    check_argument_count(&args).map_err(|()| usage(kind))?;
    record.request = args[1..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let spec = target::parse_target(args[0]).map_err(|e| e.to_string())?;
    let target = target::open_target(spec).map_err(|e| e.to_string())?;
    record.target = Some(target.label.clone());
    let caller = identify_caller()?;
    record.caller_name = Some(caller.name.clone());
    let owner = target::target_owner(&target).map_err(|e| e.to_string())?;
    check_target_ownership(&caller, owner, &target.label)?;
    let mappings = parse_mappings(&args[1..]).map_err(|e| e.to_string())?;
    let grant = authorize(kind, &caller, &mappings, || {
        subid::open_trusted(Path::new(kind.subid_path()))
    })?;
    let map_text = render_map(&mappings).map_err(|e| e.to_string())?;
    privilege::switch_to_caller_keeping(
        caller.uid,
        caller.gid,
        capabilities_needed(kind, &mappings),
    )
    .map_err(|e| format!("could not drop privileges: {e}"))?;
    if kind == IdKind::Gid && !grant.setgroups_allowed {
        write_setgroups_deny(&target)?;
    }
    write_map(&target, kind, &map_text)
}

/// shadow's rule: the target and at least one triplet, and whole triplets only.
fn check_argument_count(args: &[&[u8]]) -> Result<(), ()> {
    if args.len() >= 4 && (args.len() - 1).is_multiple_of(3) {
        Ok(())
    } else {
        Err(())
    }
}

fn identify_caller() -> Result<Caller, String> {
    let uid = getuid();
    let user = User::from_uid(uid)
        .ok()
        .flatten()
        .ok_or_else(|| "Cannot determine your user name.".to_string())?;
    Ok(Caller {
        uid: uid.as_raw(),
        gid: getgid().as_raw(),
        name: user.name,
        passwd_gid: user.gid.as_raw(),
    })
}

/// The target must belong to the caller: its uid is the caller's, its gid the caller's real gid, and
/// the caller's real gid is the primary group of their passwd entry (shadow's three conditions).
/// A non-dumpable target shows as root and is refused for everybody but root.
pub fn check_target_ownership(
    caller: &Caller,
    owner: TargetOwner,
    label: &str,
) -> Result<(), String> {
    if caller.gid != caller.passwd_gid || owner.uid != caller.uid || owner.gid != caller.gid {
        return Err(format!(
            "Target process {label} is owned by a different user: uid:{} pw_uid:{} st_uid:{}, gid:{} pw_gid:{} st_gid:{}",
            caller.uid, caller.uid, owner.uid, caller.gid, caller.passwd_gid, owner.gid
        ));
    }
    Ok(())
}

/// Every triplet's outside range must be covered by the caller's entries in the subid file, or be
/// exactly the caller's own id with count 1. `open_subid` is called only when the file is needed; it
/// is generic so that the decision can be tested on in-memory files.
pub fn authorize<F: AsRef<[u8]>>(
    kind: IdKind,
    caller: &Caller,
    mappings: &[IdMapping],
    open_subid: impl FnOnce() -> Result<Option<F>, SubidFileError>,
) -> Result<Grant, String> {
    let own_id = caller.own_id(kind);
    let is_own_id = |m: &IdMapping| m.count == 1 && m.outside == own_id;
    // Own-id singletons need no file. Only when nothing else is asked for does the file still decide,
    // for gid maps, whether setgroups stays allowed (as in shadow).
    let mut consult: Vec<usize> = (0..mappings.len())
        .filter(|&i| !is_own_id(&mappings[i]))
        .collect();
    if consult.is_empty() && kind == IdKind::Gid {
        consult = (0..mappings.len()).collect();
    }
    let mut from_subid = vec![false; mappings.len()];
    let mut file_problem = None;
    if !consult.is_empty() {
        let wanted: Vec<_> = consult
            .iter()
            .map(|&i| mappings[i].outside_interval())
            .collect();
        let owner = SubidOwner::new(caller.name.as_bytes(), caller.uid);
        let covered = match open_subid() {
            Ok(Some(file)) => Ok(subid::coverage(file.as_ref(), &owner, &wanted)),
            Ok(None) => Ok(vec![false; wanted.len()]),
            Err(e) => Err(e),
        };
        match covered {
            Ok(covered) => {
                for (&i, ok) in consult.iter().zip(covered) {
                    from_subid[i] = ok;
                }
            }
            Err(e) => file_problem = Some(format!("{} {e}", kind.subid_path())),
        }
    }
    for (m, &granted) in mappings.iter().zip(&from_subid) {
        check_range_granted(kind, m, granted || is_own_id(m), file_problem.as_deref())?;
    }
    Ok(Grant {
        setgroups_allowed: from_subid.iter().any(|&g| g),
    })
}

fn check_range_granted(
    kind: IdKind,
    m: &IdMapping,
    granted: bool,
    file_problem: Option<&str>,
) -> Result<(), String> {
    if granted {
        return Ok(());
    }
    let inside = m.inside_interval();
    let outside = m.outside_interval();
    let mut message = format!(
        "{} range [{}-{}) -> [{}-{}) not allowed",
        kind.word(),
        inside.start,
        inside.end,
        outside.start,
        outside.end
    );
    if let Some(problem) = file_problem {
        message.push_str(&format!(" ({problem})"));
    }
    Err(message)
}

/// What the write may need before the map is known: CAP_SETUID and CAP_SETFCAP for a uid map,
/// CAP_SETGID for a gid map. Nothing else is needed before it (the target and the files are opened
/// with the caller's rights).
pub fn capabilities_the_run_may_need(kind: IdKind) -> u64 {
    match kind {
        IdKind::Uid => capability_bit(CAP_SETUID) | capability_bit(CAP_SETFCAP),
        IdKind::Gid => capability_bit(CAP_SETGID),
    }
}

/// CAP_SETUID or CAP_SETGID, plus CAP_SETFCAP when outside uid 0 is mapped (the kernel demands it).
pub fn capabilities_needed(kind: IdKind, mappings: &[IdMapping]) -> u64 {
    match kind {
        IdKind::Uid if mappings.iter().any(|m| m.outside == 0) => {
            capability_bit(CAP_SETUID) | capability_bit(CAP_SETFCAP)
        }
        IdKind::Uid => capability_bit(CAP_SETUID),
        IdKind::Gid => capability_bit(CAP_SETGID),
    }
}

fn write_setgroups_deny(target: &Target) -> Result<(), String> {
    write_proc_file(target, "setgroups", b"deny\n")
        .map_err(|e| format!("failed to setgroups deny policy: {e}"))
}

fn write_map(target: &Target, kind: IdKind, text: &[u8]) -> Result<(), String> {
    write_proc_file(target, kind.map_file(), text)
        .map_err(|e| format!("write to {} failed: {e}", kind.map_file()))
}

/// One single write(2) of the whole buffer: the kernel takes a map only in one piece.
fn write_proc_file(target: &Target, name: &str, text: &[u8]) -> Result<(), String> {
    let fd = openat(
        target.proc_dir.as_fd(),
        name,
        OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW | OFlag::O_NOCTTY,
        Mode::empty(),
    )
    .map_err(|e| format!("open: {}", e.desc()))?;
    match nix::unistd::write(&fd, text) {
        Ok(n) if n == text.len() => Ok(()),
        Ok(n) => Err(format!("short write ({n} of {} bytes)", text.len())),
        Err(e) => Err(e.desc().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idmap::parse_mappings;

    fn alice() -> Caller {
        Caller {
            uid: 1001,
            gid: 1001,
            name: "alice".into(),
            passwd_gid: 1001,
        }
    }

    fn maps(s: &str) -> Vec<IdMapping> {
        parse_mappings(&s.split_whitespace().collect::<Vec<_>>()).unwrap()
    }

    fn decide(kind: IdKind, file: &'static [u8], request: &str) -> Result<Grant, String> {
        authorize(kind, &alice(), &maps(request), || Ok(Some(file)))
    }

    #[test]
    fn argument_count() {
        let a: Vec<&[u8]> = vec![b"1"; 10];
        assert!(check_argument_count(&a[..4]).is_ok());
        assert!(check_argument_count(&a[..7]).is_ok());
        for n in [0, 1, 2, 3, 5, 6, 8] {
            assert!(check_argument_count(&a[..n]).is_err(), "{n}");
        }
    }

    #[test]
    fn ownership_requires_all_three_conditions() {
        let owner = TargetOwner {
            uid: 1001,
            gid: 1001,
        };
        assert!(check_target_ownership(&alice(), owner, "1").is_ok());
        let other_user = TargetOwner {
            uid: 1002,
            gid: 1001,
        };
        assert!(check_target_ownership(&alice(), other_user, "1").is_err());
        let other_group = TargetOwner {
            uid: 1001,
            gid: 1002,
        };
        assert!(check_target_ownership(&alice(), other_group, "1").is_err());
        let root_owned = TargetOwner { uid: 0, gid: 0 };
        assert!(check_target_ownership(&alice(), root_owned, "1").is_err());
        let mut not_primary = alice();
        not_primary.gid = 50;
        let owner50 = TargetOwner { uid: 1001, gid: 50 };
        assert!(check_target_ownership(&not_primary, owner50, "1").is_err());
    }

    #[test]
    fn ranges_must_be_covered() {
        let file = b"alice:100000:65536\nbob:165536:65536\n";
        assert!(decide(IdKind::Uid, file, "0 100000 65536").is_ok());
        assert!(decide(IdKind::Uid, file, "0 100000 65537").is_err());
        assert!(decide(IdKind::Uid, file, "0 99999 2").is_err());
        assert!(decide(IdKind::Uid, file, "0 165536 1").is_err());
        let err = decide(IdKind::Uid, file, "0 165536 10").unwrap_err();
        assert_eq!(err, "uid range [0-10) -> [165536-165546) not allowed");
    }

    #[test]
    fn own_id_singleton_is_always_allowed() {
        assert!(decide(IdKind::Uid, b"", "0 1001 1").is_ok());
        assert!(decide(IdKind::Uid, b"", "0 1001 2").is_err());
        assert!(decide(IdKind::Uid, b"", "0 1002 1").is_err());
        // The own-id rule uses the passwd gid for gid maps.
        let mut c = alice();
        c.passwd_gid = 2000;
        assert!(authorize(IdKind::Gid, &c, &maps("0 2000 1"), || Ok(Some(&b""[..]))).is_ok());
        assert!(authorize(IdKind::Gid, &c, &maps("0 1001 1"), || Ok(Some(&b""[..]))).is_err());
    }

    #[test]
    fn own_uid_map_does_not_read_the_file() {
        let grant = authorize::<&[u8]>(IdKind::Uid, &alice(), &maps("0 1001 1"), || {
            panic!("file opened for an own-uid map")
        });
        assert!(grant.is_ok());
    }

    #[test]
    fn setgroups_allowed_only_with_a_subgid_range() {
        let file = b"alice:100000:65536\n";
        let g = decide(IdKind::Gid, file, "0 1001 1").unwrap();
        assert!(!g.setgroups_allowed);
        let g = decide(IdKind::Gid, file, "0 1001 1 1 100000 65536").unwrap();
        assert!(g.setgroups_allowed);
        // Own gid that is also inside a subgid range: allowed, as shadow does.
        let g = decide(IdKind::Gid, b"alice:1000:10\n", "0 1001 1").unwrap();
        assert!(g.setgroups_allowed);
    }

    #[test]
    fn file_problems_deny_ranges_and_say_why() {
        let err = authorize::<&[u8]>(IdKind::Uid, &alice(), &maps("0 100000 10"), || {
            Err(SubidFileError::Symlink)
        })
        .unwrap_err();
        assert!(err.contains("/etc/subuid is a symbolic link"), "{err}");
        // The own gid alone still works; setgroups is denied.
        let g = authorize::<&[u8]>(IdKind::Gid, &alice(), &maps("0 1001 1"), || {
            Err(SubidFileError::Symlink)
        })
        .unwrap();
        assert!(!g.setgroups_allowed);
        // A missing file grants nothing.
        assert!(
            authorize::<&[u8]>(IdKind::Uid, &alice(), &maps("0 100000 1"), || Ok(None)).is_err()
        );
    }

    #[test]
    fn what_a_run_keeps_before_parsing_covers_every_map_it_may_write() {
        for (kind, map) in [
            (IdKind::Uid, "0 1001 1"),
            (IdKind::Uid, "0 0 1"),
            (IdKind::Gid, "0 0 1"),
        ] {
            let needed = capabilities_needed(kind, &maps(map));
            assert_eq!(needed & !capabilities_the_run_may_need(kind), 0, "{map}");
        }
        assert_eq!(
            capabilities_the_run_may_need(IdKind::Gid),
            capability_bit(CAP_SETGID)
        );
    }

    #[test]
    fn setfcap_only_for_outside_root() {
        assert_eq!(
            capabilities_needed(IdKind::Uid, &maps("0 1001 1")),
            capability_bit(CAP_SETUID)
        );
        assert_eq!(
            capabilities_needed(IdKind::Uid, &maps("0 0 1")),
            capability_bit(CAP_SETUID) | capability_bit(CAP_SETFCAP)
        );
        assert_eq!(
            capabilities_needed(IdKind::Gid, &maps("0 0 1")),
            capability_bit(CAP_SETGID)
        );
    }
}
