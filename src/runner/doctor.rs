//! `unshare-run doctor`: can this user start a container with the full id map here, and if not, what
//! exactly to fix. Each check prints one line with a mark; a failed check also prints the fix. Exit 0
//! when a full-map container can start, 1 otherwise. Whether the ranges leave room for keep-id
//! (`check_keep_id`) is a warning, and so are the kubelet's demands on its subid ranges when a user
//! `kubelet` exists (`check_kubelet`): they do not decide whether a container can start. The output
//! ends with when to use which map (`WHICH_MAP`).
//!
//! Every decision is a pure function of what was read (unit-tested); `main` only gathers the inputs.

use std::path::{Path, PathBuf};

use unshare_run_helpers::getsubids;
use unshare_run_helpers::subid::{self, IdInterval, SubidFileError, SubidOwner};

use super::error::RunError;
use super::mapping::{self, Caller, HelperPrivilege};
use super::users;

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

/// How many subordinate ids of the caller's a subid file lists (each id once).
fn caller_total(caller: &Caller, content: &[u8]) -> u64 {
    let who = caller
        .name
        .clone()
        .unwrap_or_else(|| caller.uid.to_string());
    let owner = SubidOwner::new(who.as_bytes(), caller.uid);
    let mut ranges = subid::owner_ranges(content, &owner);
    ranges.sort_by_key(|r| r.start);
    let mut total = 0;
    let mut covered_to = 0;
    for r in ranges {
        let start = r.start.max(covered_to);
        if r.end > start {
            total += r.end - start;
        }
        covered_to = covered_to.max(r.end);
    }
    total
}

/// Whether --map keep-id can keep the caller's own uid and gid inside: the subordinate ids must fill
/// every inside id below them, so it needs as many as the uid (and the gid) is. (`uids` and `gids`:
/// how many the caller has.) A warning: the full map does not need it.
pub fn check_keep_id(caller: &Caller, uids: u64, gids: u64) -> Vec<Finding> {
    let who = caller
        .name
        .clone()
        .unwrap_or_else(|| caller.uid.to_string());
    let short: Vec<Finding> = [
        ("uid", caller.uid, uids, "subuids"),
        ("gid", caller.gid, gids, "subgids"),
    ]
    .into_iter()
    .filter(|(_, id, have, _)| *have < u64::from(*id))
    .map(|(kind, id, have, flag)| {
        warn(
            format!(
                "--map keep-id cannot keep your {kind} {id} inside: it needs {id} subordinate \
                 {kind}s to fill the ids below it, and {who} has {have}"
            ),
            format!(
                "as root: usermod --add-{flag} START-END {who} (a free range of {} ids or more); \
                 until then, use the full map",
                u64::from(id) - have
            ),
        )
    })
    .collect();
    if !short.is_empty() {
        return short;
    }
    vec![ok(format!(
        "--map keep-id can keep your uid {} and gid {} inside (it needs {} and {} subordinate ids \
         below them; you have {uids} and {gids})",
        caller.uid, caller.gid, caller.uid, caller.gid
    ))]
}

/// What doctor says last: when to use which map.
pub const WHICH_MAP: &str = "\
Which map: --map full (the default): you are uid 0 inside, with all your subordinate ids: a system
  of its own (apt, su, chown, several users).
  --map keep-id: your own uid and gid inside, your subordinate ids around them: to work on your
  files (what you bind in stays yours, the command runs as you, --user 0 is root inside for apt).
  --map root or current: only your own id, without the helpers (apt, su and chown to others fail).";

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

/// What the private network of a --rootfs container (its default) and --net pasta stop at without
/// pasta or /dev/net/tun: the container does not start, and nothing falls back to the host's network.
const WITHOUT_PASTA: &str = "--rootfs containers with their default private network and --net pasta \
     cannot start (exit 125); --net host (the host's network) and --net none can";

pub fn check_pasta(found: Option<PathBuf>) -> Finding {
    match found {
        Some(path) => ok(format!(
            "pasta is {} (the private network of --rootfs containers, --net pasta)",
            path.display()
        )),
        None => warn(
            format!("pasta (package passt) is not in PATH: {WITHOUT_PASTA}"),
            "as root: apt-get install passt (or dnf install passt)",
        ),
    }
}

pub fn check_tun(result: Result<(), String>) -> Finding {
    match result {
        Ok(()) => ok("/dev/net/tun is usable (for pasta)"),
        Err(e) => warn(
            format!("/dev/net/tun is not usable: {e}: {WITHOUT_PASTA}"),
            "as root: chmod 0666 /dev/net/tun (the mode distributions ship)",
        ),
    }
}

/// The kubelet's user: when a user of this name exists, the kubelet (Kubernetes user namespaces)
/// takes the ranges for its pods from `getsubids kubelet` and `getsubids -g kubelet`.
pub const KUBELET: &str = "kubelet";
/// The kubelet's default `idsPerPod`: every pod gets one block of this many ids.
const IDS_PER_POD: u64 = 65536;
/// The kubelet's default `maxPods`: its range must hold this many blocks.
const MAX_PODS: u64 = 110;
/// The ids a range for the kubelet needs at least: 7,208,960.
const KUBELET_IDS: u64 = IDS_PER_POD * MAX_PODS;
/// One past the largest id a user namespace map can hold (4294967295 is `(uid_t) -1`).
const ID_LIMIT: u64 = u32::MAX as u64;

/// What was read for the kubelet check, when a user `kubelet` exists: its uid (numeric owners of
/// subid lines that are its uid are its lines too), the `getsubids` the kubelet would find in PATH,
/// and /etc/subuid and /etc/subgid as getsubids opens them (`subid::open_trusted`: `Ok(None)` when
/// missing; the bytes otherwise).
#[derive(Debug)]
pub struct KubeletState {
    pub uid: u32,
    pub getsubids: Option<PathBuf>,
    pub subuid: Result<Option<Vec<u8>>, SubidFileError>,
    pub subgid: Result<Option<Vec<u8>>, SubidFileError>,
}

/// One subid file as the kubelet check sees it.
struct KubeletFile<'a> {
    path: &'static str,
    /// usermod's option for this file: "subuids" or "subgids".
    flag: &'static str,
    /// What the kubelet runs to read it.
    command: &'static str,
    missing: bool,
    /// What getsubids prints for kubelet: the bytes the kubelet compares.
    listing: Vec<u8>,
    /// kubelet's lines in file order, as getsubids lists them: (owner field, range).
    lines: Vec<(&'a [u8], IdInterval)>,
    /// Every other owner's granting range (owner name, range).
    others: Vec<(&'a [u8], IdInterval)>,
}

impl<'a> KubeletFile<'a> {
    fn read(
        path: &'static str,
        flag: &'static str,
        command: &'static str,
        content: Option<&'a [u8]>,
        uid: u32,
    ) -> KubeletFile<'a> {
        let missing = content.is_none();
        let content = content.unwrap_or_default();
        let owner = SubidOwner::named(KUBELET.as_bytes(), Some(uid));
        let mut lines = Vec::new();
        subid::for_each_owner_line(content, &owner, |entry| {
            lines.push((entry.owner, entry.range));
            std::ops::ControlFlow::Continue(())
        });
        let uid_key = uid.to_string();
        let others = content
            .split(|&b| b == b'\n')
            .filter_map(subid::parse_line)
            .filter(|e| {
                e.owner != KUBELET.as_bytes()
                    && e.owner != uid_key.as_bytes()
                    && !e.range.is_empty()
            })
            .map(|e| (e.owner, e.range))
            .collect();
        KubeletFile {
            path,
            flag,
            command,
            missing,
            listing: getsubids::list_ranges(content, KUBELET.as_bytes(), Some(uid)),
            lines,
            others,
        }
    }

    /// The one range getsubids prints, if it prints exactly one.
    fn single(&self) -> Option<IdInterval> {
        match self.lines[..] {
            [(_, range)] => Some(range),
            _ => None,
        }
    }
}

fn span(r: IdInterval) -> String {
    if r.is_empty() {
        format!("{} (count 0)", r.start)
    } else {
        format!("{}-{}", r.start, r.end - 1)
    }
}

/// What is wrong with `range` for the kubelet (its own rules, then overlaps with other users' ranges
/// in `files`, the files the range is in: uids and gids are separate), each as a sentence; `place`
/// says where the range is.
fn kubelet_range_problems(
    range: IdInterval,
    place: &str,
    files: &[&KubeletFile<'_>],
) -> Vec<String> {
    let mut problems = Vec::new();
    let (start, count) = (range.start, range.count());
    let of = format!("user {KUBELET}'s range {} in {place}", span(range));
    if start % IDS_PER_POD != 0 {
        problems.push(format!(
            "{of} starts at {start}, not a multiple of {IDS_PER_POD}"
        ));
    }
    if start < IDS_PER_POD {
        problems.push(format!(
            "{of} starts below {IDS_PER_POD} (the kubelet keeps ids 0-65535 for the host)"
        ));
    }
    if count % IDS_PER_POD != 0 {
        problems.push(format!(
            "{of} has {count} ids, not a multiple of {IDS_PER_POD}"
        ));
    }
    if count < KUBELET_IDS {
        problems.push(format!(
            "{of} has {count} ids, fewer than {IDS_PER_POD} x {MAX_PODS} = {KUBELET_IDS} (a block \
             of {IDS_PER_POD} per pod, for the kubelet's default maxPods of {MAX_PODS})"
        ));
    }
    if range.end > ID_LIMIT {
        problems.push(format!(
            "{of} runs past {}, the largest id a map can hold",
            ID_LIMIT - 1
        ));
    }
    // Another user's range that overlaps, with the files it is in (the same line is usually in both).
    let mut overlapping: Vec<(&[u8], IdInterval, Vec<&str>)> = Vec::new();
    for file in files {
        for &(name, other) in &file.others {
            if !overlaps(range, other) {
                continue;
            }
            match overlapping
                .iter_mut()
                .find(|(n, r, _)| *n == name && *r == other)
            {
                Some((_, _, paths)) => paths.push(file.path),
                None => overlapping.push((name, other, vec![file.path])),
            }
        }
    }
    for (name, other, paths) in overlapping {
        let name = String::from_utf8_lossy(name);
        problems.push(format!(
            "{of} overlaps {name}'s {} in {}: pods would get ids that {name} has",
            span(other),
            paths.join(" and ")
        ));
    }
    problems
}

/// The lowest range of KUBELET_IDS ids on a block boundary, from 65536 on, that no other user has in
/// any of `files`.
fn free_kubelet_range(files: &[&KubeletFile<'_>]) -> Option<IdInterval> {
    let mut taken: Vec<IdInterval> = files
        .iter()
        .flat_map(|f| f.others.iter().map(|(_, r)| *r))
        .collect();
    taken.sort_by_key(|r| r.start);
    let mut start = IDS_PER_POD;
    for r in &taken {
        if r.end <= start {
            continue;
        }
        if r.start >= start.saturating_add(KUBELET_IDS) {
            break;
        }
        start = r.end.div_ceil(IDS_PER_POD).checked_mul(IDS_PER_POD)?;
    }
    IdInterval::from_start_count(start, KUBELET_IDS).filter(|r| r.end <= ID_LIMIT)
}

/// The commands that leave `target` as the only line of user kubelet in every file.
fn kubelet_fix(target: Option<IdInterval>, files: &[&KubeletFile<'_>]) -> String {
    let Some(target) = target else {
        return format!(
            "no block of {KUBELET_IDS} ids from {IDS_PER_POD} on is free of other users' ranges \
             below {ID_LIMIT}: free one, then as root: usermod --add-subuids START-END \
             --add-subgids START-END {KUBELET}"
        );
    };
    let mut deletions = Vec::new();
    let mut additions = Vec::new();
    let mut by_hand = Vec::new();
    for file in files {
        if file.lines.len() == 1 && file.lines[0].1 == target {
            continue;
        }
        // usermod removes a range from the lines named kubelet (cutting any that overlap it), never
        // lines owned by the uid, and cannot name a count-0 line.
        let removable =
            |(owner, r): &(&[u8], IdInterval)| owner == &KUBELET.as_bytes() && !r.is_empty();
        let kept = file
            .lines
            .iter()
            .position(|line| removable(line) && line.1 == target);
        let keep = kept.is_some_and(|k| {
            file.lines
                .iter()
                .enumerate()
                .all(|(i, line)| i == k || !removable(line) || !overlaps(line.1, target))
        });
        let mut removed: Vec<IdInterval> = Vec::new();
        for (i, line) in file.lines.iter().enumerate() {
            if keep && Some(i) == kept {
                continue;
            }
            if removable(line) {
                if !removed.contains(&line.1) {
                    removed.push(line.1);
                    deletions.push(format!("--del-{} {}", file.flag, span(line.1)));
                }
            } else {
                by_hand.push(format!(
                    "`{}:{}:{}` of {}",
                    String::from_utf8_lossy(line.0),
                    line.1.start,
                    line.1.count(),
                    file.path
                ));
            }
        }
        if !keep {
            additions.push(format!("--add-{} {}", file.flag, span(target)));
        }
    }
    let missing: Vec<&str> = files.iter().filter(|f| f.missing).map(|f| f.path).collect();
    let mut fix = String::from("as root: ");
    if !missing.is_empty() {
        // usermod refuses --add-subuids when /etc/subuid does not exist.
        let paths = missing.join(" ");
        fix.push_str(&format!("touch {paths} && chmod 0644 {paths} && "));
    }
    if !deletions.is_empty() || !additions.is_empty() {
        deletions.extend(additions);
        fix.push_str(&format!("usermod {} {KUBELET}", deletions.join(" ")));
    }
    if !by_hand.is_empty() {
        if !fix.ends_with("as root: ") {
            fix.push_str("; then ");
        }
        fix.push_str(&format!(
            "delete the line{} {} by hand (usermod removes only lines named {KUBELET} with a count)",
            if by_hand.len() == 1 { "" } else { "s" },
            by_hand.join(", ")
        ));
    }
    fix
}

fn refused_fix(path: &str, e: &SubidFileError) -> String {
    match e {
        SubidFileError::Symlink => format!(
            "as root: replace the symbolic link by the file it names: cp --remove-destination \
             \"$(readlink -f {path})\" {path}"
        ),
        SubidFileError::NotRegular => {
            format!("as root: make {path} a regular file owned by root, mode 0644")
        }
        SubidFileError::Untrusted { .. } | SubidFileError::Io(_) => {
            format!("as root: chown root:root {path} && chmod 0644 {path}")
        }
    }
}

/// The kubelet's demands (DESIGN 8; kubelet_pods.go getKubeletMappings and pkg/kubelet/userns), when
/// a user `kubelet` exists: `getsubids` in PATH; `getsubids kubelet` and `getsubids -g kubelet`
/// printing byte-identical output of exactly one range, whose start and count are multiples of
/// 65536, start >= 65536 and count >= 65536 x 110 pods; and, ours on top, a range below 2^32 - 1 that
/// no other user has. Judged on what our getsubids prints (the helpers' reader). Every failure is a
/// warning, with one fix for all the range problems: the `usermod` line (concrete numbers: the range
/// kubelet already has when it passes, else the lowest free one) and the lines to delete by hand.
///
/// Warnings, not failures: doctor's exit status says whether a full-map container can start here,
/// and a kubelet misconfiguration does not stop that; it stops the kubelet (or, without getsubids,
/// makes some kubelet versions ignore the ranges).
pub fn check_kubelet(k: &KubeletState) -> Vec<Finding> {
    let mut findings = vec![match &k.getsubids {
        Some(path) => ok(format!(
            "getsubids is {} (the kubelet runs it: a user {KUBELET} exists)",
            path.display()
        )),
        None => warn(
            format!(
                "a user {KUBELET} exists but getsubids is not in PATH: the kubelet cannot read its \
                 ranges (it fails to start, or ignores them)"
            ),
            "install this project's Debian package (/usr/bin/getsubids), or with its RPM: ln -s \
             /usr/libexec/unshare-run/getsubids /usr/local/bin/getsubids",
        ),
    }];
    let mut readable = Vec::new();
    for (path, flag, command, read) in [
        ("/etc/subuid", "subuids", "getsubids kubelet", &k.subuid),
        ("/etc/subgid", "subgids", "getsubids -g kubelet", &k.subgid),
    ] {
        match read {
            Ok(content) => readable.push(KubeletFile::read(
                path,
                flag,
                command,
                content.as_deref(),
                k.uid,
            )),
            // The kubelet runs getsubids as root, which may read what this user cannot.
            Err(SubidFileError::Io(e)) => findings.push(warn(
                format!("cannot read {path} ({e}): the kubelet's ranges in it are not checked"),
                format!("run unshare-run doctor as root, or as root: chmod 0644 {path}"),
            )),
            Err(e) => findings.push(warn(
                format!("{path} {e}: `{command}` fails, and the kubelet with it"),
                refused_fix(path, e),
            )),
        }
    }
    let [uids, gids] = &readable[..] else {
        return findings;
    };
    let files = [uids, gids];
    let mut problems = Vec::new();
    for file in files {
        match file.lines.len() {
            0 => problems.push(format!(
                "user {KUBELET} has no ranges in {}{}: `{}` fails (Error fetching ranges), and \
                 the kubelet with it",
                file.path,
                if file.missing { " (no such file)" } else { "" },
                file.command
            )),
            1 => {}
            n => problems.push(format!(
                "user {KUBELET} has {n} ranges in {} ({}): `{}` prints {n} lines, the kubelet \
                 takes exactly one",
                file.path,
                file.lines
                    .iter()
                    .map(|(_, r)| span(*r))
                    .collect::<Vec<_>>()
                    .join(", "),
                file.command
            )),
        }
    }
    let printed =
        |f: &KubeletFile<'_>| String::from_utf8_lossy(f.listing.trim_ascii_end()).into_owned();
    match (uids.single(), gids.single()) {
        (Some(u), Some(g)) if uids.listing == gids.listing => {
            debug_assert_eq!(u, g);
            problems.extend(kubelet_range_problems(
                u,
                "/etc/subuid and /etc/subgid",
                &files,
            ));
        }
        (u, g) => {
            if u.is_some() && g.is_some() {
                problems.push(format!(
                    "`getsubids kubelet` prints `{}` but `getsubids -g kubelet` prints `{}`: the \
                     kubelet needs both identical",
                    printed(uids),
                    printed(gids)
                ));
            }
            if let Some(u) = u {
                problems.extend(kubelet_range_problems(u, uids.path, &[uids]));
            }
            if let Some(g) = g {
                problems.extend(kubelet_range_problems(g, gids.path, &[gids]));
            }
        }
    }
    if problems.is_empty() {
        findings.push(ok(format!(
            "`getsubids kubelet` and `getsubids -g kubelet` both print `{}`: ids for {MAX_PODS} pods, \
             as the kubelet needs",
            printed(uids)
        )));
        return findings;
    }
    // The range kubelet has already, where it passes every rule in both files; else the lowest one
    // free in both.
    let target = [uids.single(), gids.single()]
        .into_iter()
        .flatten()
        .find(|r| kubelet_range_problems(*r, "", &files).is_empty())
        .or_else(|| free_kubelet_range(&files));
    let fix = kubelet_fix(target, &files);
    let last = problems.len() - 1;
    for (i, what) in problems.into_iter().enumerate() {
        findings.push(Finding {
            mark: Mark::Warn,
            what,
            fix: (i == last).then(|| fix.clone()),
        });
    }
    findings
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

/// A subid file as getsubids opens it.
fn read_as_getsubids(path: &str) -> Result<Option<Vec<u8>>, SubidFileError> {
    subid::open_trusted(Path::new(path)).map(|file| file.map(|f| f.as_ref().to_vec()))
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
             pasta in PATH with /dev/net/tun usable (the private network that --rootfs containers get \
             by default, and --net pasta; without them such containers do not start, and nothing \
             falls back to the host's network). When a user named kubelet exists, also what the \
             kubelet (Kubernetes user namespaces) demands of the ranges it reads with getsubids: \
             getsubids in PATH, and 'getsubids kubelet' and 'getsubids -g kubelet' printing the same \
             single range, its start and count multiples of 65536, the start at least 65536, at least \
             65536 x 110 ids (the default 110 pods), below 2^32 and overlapping no other user's range. \
             Each check prints one line; a failed one also prints the exact fix (for the kubelet's \
             ranges: the usermod line with concrete numbers, and lines to delete by hand). Kubelet \
             problems are warnings: they stop the kubelet, not a container. So is having fewer \
             subordinate ids than your uid (or gid) is: --map keep-id, which keeps it inside, needs \
             that many to fill the ids below it.\n\n\
             Last, which map to use: the full map (the default) makes you uid 0 inside with all your \
             subordinate ids, a system of its own where apt, su and chown work; --map keep-id keeps \
             your own uid and gid inside with the subordinate ids around them, to work on your files \
             (a directory bound in stays yours, the command runs as you, --user 0 is root inside); \
             --map root and current map only your own id, without the helpers.",
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
    let mut totals = [0, 0];
    for (i, (path, flag)) in [("/etc/subuid", "subuids"), ("/etc/subgid", "subgids")]
        .into_iter()
        .enumerate()
    {
        let content = std::fs::read(path).ok();
        findings.extend(check_ranges(path, flag, &caller, content.as_deref()));
        totals[i] = content.map_or(0, |c| caller_total(&caller, &c));
    }
    // Without ranges the line above already says what to do.
    if totals.iter().all(|&total| total > 0) {
        findings.extend(check_keep_id(&caller, totals[0], totals[1]));
    }
    findings.push(check_no_new_privs(
        nix::sys::prctl::get_no_new_privs().unwrap_or(false),
    ));
    findings.push(check_pasta(mapping::in_path(
        "pasta",
        std::env::var_os("PATH"),
    )));
    findings.push(check_tun(
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .map(drop)
            .map_err(|e| e.to_string()),
    ));
    // No user kubelet: the kubelet does not read subid ranges, and nothing is printed.
    if let Some(uid) = users::uid_of(KUBELET) {
        findings.extend(check_kubelet(&KubeletState {
            uid,
            getsubids: mapping::in_path("getsubids", std::env::var_os("PATH")),
            subuid: read_as_getsubids("/etc/subuid"),
            subgid: read_as_getsubids("/etc/subgid"),
        }));
    }
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
    } else {
        println!("A container with your full id map can start.");
    }
    println!("{WHICH_MAP}");
    Ok(u8::from(failed))
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

    fn kubelet(subuid: &str, subgid: &str) -> KubeletState {
        KubeletState {
            uid: 4322,
            getsubids: Some("/usr/bin/getsubids".into()),
            subuid: Ok(Some(subuid.as_bytes().to_vec())),
            subgid: Ok(Some(subgid.as_bytes().to_vec())),
        }
    }

    /// The warnings (what) and the fixes printed, in order.
    fn kubelet_warnings(k: &KubeletState) -> (Vec<String>, Vec<String>) {
        let findings = check_kubelet(k);
        assert!(
            findings.iter().all(|f| f.mark != Mark::Fail),
            "a kubelet problem is never a failure: {findings:?}"
        );
        let warned: Vec<&Finding> = findings.iter().filter(|f| f.mark == Mark::Warn).collect();
        assert!(
            warned.is_empty() || warned.last().unwrap().fix.is_some(),
            "{findings:?}"
        );
        (
            warned.iter().map(|f| f.what.clone()).collect(),
            warned.iter().filter_map(|f| f.fix.clone()).collect(),
        )
    }

    /// One failing fixture per rule: exactly that warning, and the one fix for it.
    fn assert_kubelet_warns(k: &KubeletState, what: &str, fix: &str) {
        let (warned, fixes) = kubelet_warnings(k);
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert!(warned[0].contains(what), "{warned:?} lacks {what:?}");
        assert_eq!(fixes, [fix], "{warned:?}");
    }

    const ALICE: &str = "alice:100000:65536\n";

    #[test]
    fn kubelet_passes_with_one_identical_block_aligned_range_for_110_pods() {
        let file = format!("{ALICE}kubelet:196608:7208960\n");
        let findings = check_kubelet(&kubelet(&file, &file));
        assert_eq!(marks(&findings), [Mark::Ok, Mark::Ok], "{findings:?}");
        assert!(findings[0].what.contains("getsubids is /usr/bin/getsubids"));
        assert!(
            findings[1]
                .what
                .contains("both print `0: kubelet 196608 7208960`"),
            "{findings:?}"
        );
        // Its uid's lines are its lines: getsubids prints them under the name, byte-identical.
        let numeric = check_kubelet(&kubelet("4322:196608:7208960\n", &file));
        assert_eq!(marks(&numeric), [Mark::Ok, Mark::Ok], "{numeric:?}");
        // The Kubernetes documentation's example, on a machine where nobody else has ranges there.
        let docs = kubelet("kubelet:65536:7208960\n", "kubelet:65536:7208960\n");
        assert_eq!(marks(&check_kubelet(&docs)), [Mark::Ok, Mark::Ok]);
    }

    #[test]
    fn kubelet_without_getsubids_in_path_warns() {
        let file = format!("{ALICE}kubelet:196608:7208960\n");
        let k = KubeletState {
            getsubids: None,
            ..kubelet(&file, &file)
        };
        assert_kubelet_warns(
            &k,
            "getsubids is not in PATH",
            "install this project's Debian package (/usr/bin/getsubids), or with its RPM: ln -s \
             /usr/libexec/unshare-run/getsubids /usr/local/bin/getsubids",
        );
    }

    #[test]
    fn kubelet_rule_ranges_in_both_files() {
        let good = format!("{ALICE}kubelet:196608:7208960\n");
        assert_kubelet_warns(
            &kubelet(&good, ALICE),
            "user kubelet has no ranges in /etc/subgid: `getsubids -g kubelet` fails",
            "as root: usermod --add-subgids 196608-7405567 kubelet",
        );
        let missing = KubeletState {
            subuid: Ok(None),
            ..kubelet("", &good)
        };
        assert_kubelet_warns(
            &missing,
            "no ranges in /etc/subuid (no such file)",
            "as root: touch /etc/subuid && chmod 0644 /etc/subuid && usermod --add-subuids \
             196608-7405567 kubelet",
        );
    }

    #[test]
    fn kubelet_rule_exactly_one_range() {
        let good = format!("{ALICE}kubelet:196608:7208960\n");
        assert_kubelet_warns(
            &kubelet(&format!("{good}kubelet:8000000:65536\n"), &good),
            "user kubelet has 2 ranges in /etc/subuid (196608-7405567, 8000000-8065535): \
             `getsubids kubelet` prints 2 lines",
            "as root: usermod --del-subuids 8000000-8065535 kubelet",
        );
        // Lines usermod cannot remove: owned by the uid, or of count 0.
        assert_kubelet_warns(
            &kubelet(&good, &format!("{good}4322:196608:7208960\nkubelet:5:0\n")),
            "user kubelet has 3 ranges in /etc/subgid",
            "as root: delete the lines `4322:196608:7208960` of /etc/subgid, `kubelet:5:0` of \
             /etc/subgid by hand (usermod removes only lines named kubelet with a count)",
        );
        // A duplicate of the range: usermod removes both copies, so the range is added again.
        assert_kubelet_warns(
            &kubelet(&format!("{good}kubelet:196608:7208960\n"), &good),
            "has 2 ranges in /etc/subuid",
            "as root: usermod --del-subuids 196608-7405567 --add-subuids 196608-7405567 kubelet",
        );
    }

    #[test]
    fn kubelet_rule_identical_output() {
        let uids = format!("{ALICE}kubelet:196608:7208960\n");
        let gids = format!("{ALICE}kubelet:7405568:7208960\n");
        assert_kubelet_warns(
            &kubelet(&uids, &gids),
            "`getsubids kubelet` prints `0: kubelet 196608 7208960` but `getsubids -g kubelet` \
             prints `0: kubelet 7405568 7208960`",
            "as root: usermod --del-subgids 7405568-14614527 --add-subgids 196608-7405567 kubelet",
        );
    }

    #[test]
    fn kubelet_rules_on_the_range() {
        let both = |line: &str| {
            let file = format!("{ALICE}{line}\n");
            kubelet(&file, &file)
        };
        // The fix moves kubelet to the lowest free block-aligned range: 196608, after alice's.
        let moved = |old: &str| {
            format!(
                "as root: usermod --del-subuids {old} --del-subgids {old} --add-subuids \
                 196608-7405567 --add-subgids 196608-7405567 kubelet"
            )
        };
        assert_kubelet_warns(
            &both("kubelet:262144:7208961"),
            "user kubelet's range 262144-7471104 in /etc/subuid and /etc/subgid has 7208961 ids, \
             not a multiple of 65536",
            &moved("262144-7471104"),
        );
        assert_kubelet_warns(
            &both("kubelet:200000:7208960"),
            "starts at 200000, not a multiple of 65536",
            &moved("200000-7408959"),
        );
        assert_kubelet_warns(
            &both("kubelet:196608:65536"),
            "has 65536 ids, fewer than 65536 x 110 = 7208960",
            &moved("196608-262143"),
        );
        assert_kubelet_warns(
            &both("kubelet:4294901760:7208960"),
            "runs past 4294967294, the largest id a map can hold",
            &moved("4294901760-4302110719"),
        );
        assert_kubelet_warns(
            &both("kubelet:65536:7208960"),
            "overlaps alice's 100000-165535 in /etc/subuid and /etc/subgid: pods would get ids that \
             alice has",
            &moved("65536-7274495"),
        );
        // Below 65536: alone in the files, so that the overlap with alice does not show too.
        assert_kubelet_warns(
            &kubelet("kubelet:0:7208960\n", "kubelet:0:7208960\n"),
            "starts below 65536",
            "as root: usermod --del-subuids 0-7208959 --del-subgids 0-7208959 --add-subuids \
             65536-7274495 --add-subgids 65536-7274495 kubelet",
        );
    }

    #[test]
    fn kubelet_problems_together_get_one_fix() {
        let (warned, fixes) = kubelet_warnings(&kubelet(
            &format!("{ALICE}kubelet:1000:1000\nkubelet:196608:7208960\n"),
            &format!("{ALICE}kubelet:1000:1000\n"),
        ));
        // Two ranges in /etc/subuid; four rules broken by the one in /etc/subgid.
        assert_eq!(warned.len(), 5, "{warned:?}");
        assert_eq!(
            fixes,
            [
                "as root: usermod --del-subuids 1000-1999 --del-subgids 1000-1999 --add-subgids \
              196608-7405567 kubelet"
            ]
        );
        // Nowhere free below 2^32: the fix says so.
        let everything = "alice:0:4294967295\nkubelet:0:1\n";
        let (_, fixes) = kubelet_warnings(&kubelet(everything, everything));
        assert!(fixes[0].starts_with("no block of 7208960 ids"), "{fixes:?}");
    }

    #[test]
    fn kubelet_files_getsubids_refuses() {
        let good = format!("{ALICE}kubelet:196608:7208960\n");
        let untrusted = KubeletState {
            subgid: Err(SubidFileError::Untrusted {
                uid: 1000,
                mode: 0o664,
            }),
            ..kubelet(&good, &good)
        };
        assert_kubelet_warns(
            &untrusted,
            "/etc/subgid must be owned by root and not writable by others (owner 1000, mode 0664): \
             `getsubids -g kubelet` fails",
            "as root: chown root:root /etc/subgid && chmod 0644 /etc/subgid",
        );
        let symlink = KubeletState {
            subuid: Err(SubidFileError::Symlink),
            ..kubelet(&good, &good)
        };
        let (warned, fixes) = kubelet_warnings(&symlink);
        assert!(warned[0].contains("symbolic link"), "{warned:?}");
        assert!(fixes[0].contains("readlink -f /etc/subuid"), "{fixes:?}");
        // Unreadable by the caller: root's kubelet may still read it, so doctor cannot tell.
        let unreadable = KubeletState {
            subuid: Err(SubidFileError::Io(std::io::Error::from_raw_os_error(
                libc::EACCES,
            ))),
            ..kubelet(&good, &good)
        };
        assert_kubelet_warns(
            &unreadable,
            "cannot read /etc/subuid (Permission denied (os error 13)): the kubelet's ranges in \
             it are not checked",
            "run unshare-run doctor as root, or as root: chmod 0644 /etc/subuid",
        );
        // Ranges up in the far corner of the id space: the search for a free range stops there
        // without overflowing.
        let corner = "alice:0:18446744073709000000\nbob:18446744073709100000:1\nkubelet:1:1\n";
        let (_, fixes) = kubelet_warnings(&kubelet(corner, corner));
        assert!(fixes[0].starts_with("no block of 7208960 ids"), "{fixes:?}");
    }

    #[test]
    fn the_kubelet_finds_getsubids_as_an_executable_file_in_path() {
        let dir = std::env::temp_dir().join(format!("urt-doctor-path-{}", std::process::id()));
        let (plain, exe) = (dir.join("plain"), dir.join("exe"));
        std::fs::create_dir_all(&plain).unwrap();
        std::fs::create_dir_all(&exe).unwrap();
        std::fs::write(plain.join("getsubids"), "").unwrap();
        std::fs::write(exe.join("getsubids"), "").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            exe.join("getsubids"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let path = std::env::join_paths([&plain, &exe]).unwrap();
        assert_eq!(
            mapping::in_path("getsubids", Some(path)),
            Some(exe.join("getsubids"))
        );
        let path = std::env::join_paths([&plain]).unwrap();
        assert_eq!(mapping::in_path("getsubids", Some(path)), None);
        assert_eq!(mapping::in_path("getsubids", None), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn keep_id_needs_as_many_subordinate_ids_as_the_callers_uid_and_gid() {
        let findings = check_keep_id(&alice(), 65536, 65536);
        assert_eq!(marks(&findings), [Mark::Ok]);
        assert!(findings[0].what.contains("keep your uid 1000 and gid 1000"));
        assert_eq!(marks(&check_keep_id(&alice(), 1000, 1000)), [Mark::Ok]);
        let findings = check_keep_id(&alice(), 999, 10);
        assert_eq!(marks(&findings), [Mark::Warn, Mark::Warn]);
        assert_eq!(
            findings[0].what,
            "--map keep-id cannot keep your uid 1000 inside: it needs 1000 subordinate uids to fill \
             the ids below it, and alice has 999"
        );
        assert_eq!(
            findings[1].fix.as_deref(),
            Some(
                "as root: usermod --add-subgids START-END alice (a free range of 990 ids or more); \
                 until then, use the full map"
            )
        );
        // Each id once, as the runner maps them: overlapping and repeated lines count once.
        let content = b"alice:100000:600\nalice:100500:600\nalice:100000:10\nbob:1:5000\n";
        assert_eq!(caller_total(&alice(), content), 1100);
    }

    #[test]
    fn no_new_privs_and_tun() {
        assert_eq!(check_no_new_privs(true).mark, Mark::Fail);
        assert_eq!(check_no_new_privs(false).mark, Mark::Ok);
        assert_eq!(check_tun(Err("Permission denied".into())).mark, Mark::Warn);
        assert_eq!(check_tun(Ok(())).mark, Mark::Ok);
        let missing = check_pasta(None);
        assert_eq!(missing.mark, Mark::Warn);
        assert!(
            missing.what.contains("cannot start (exit 125)"),
            "{}",
            missing.what
        );
        assert_eq!(
            missing.fix.as_deref(),
            Some("as root: apt-get install passt (or dnf install passt)")
        );
        assert_eq!(check_pasta(Some("/usr/bin/pasta".into())).mark, Mark::Ok);
    }
}
