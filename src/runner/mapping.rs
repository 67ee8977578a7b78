//! Which id map the container gets, and who writes it.
//!
//! The pure part (`plan_map`) turns the caller's ids and subordinate ranges into the lines of a map and is
//! unit-tested; `plan_for_caller` gathers its inputs (and warns when it falls back to a single-id map);
//! `write_maps` applies a plan to a new user namespace, through newuidmap/newgidmap for a full or
//! keep-id map, or directly for a single-id map.

use std::ffi::OsString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use unshare_run_helpers::idmap::{IdMapping, MAX_MAP_LINES, map_text};
use unshare_run_helpers::subid::{self, IdInterval, SubidOwner};

use super::error::RunError;
use super::users;

/// Which map `--map` asks for (the command line's help describes each: cli.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapMode {
    /// The full map when it is possible, else a single-id map and a warning saying why.
    Auto,
    /// You are uid 0 inside, your subordinate ids are 1.. (or exit 125).
    Full,
    /// Every subordinate id as with the full map, arranged around your own uid and gid, which keep
    /// their numbers inside (or the ones given); never falls back (exit 125).
    KeepId(KeepId),
    /// A single-id map: you are uid 0 inside.
    Root,
    /// A single-id map that keeps your uid inside.
    Current,
}

/// podman's `keep-id:uid=UID,gid=GID`: the inside ids of the caller's own (None: the same numbers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeepId {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl std::fmt::Display for MapMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MapMode::Auto => f.write_str("auto"),
            MapMode::Full => f.write_str("full"),
            MapMode::KeepId(KeepId {
                uid: None,
                gid: None,
            }) => f.write_str("keep-id"),
            MapMode::KeepId(KeepId { uid, gid }) => {
                let options: Vec<String> = [("uid", uid), ("gid", gid)]
                    .into_iter()
                    .filter_map(|(key, value)| value.map(|v| format!("{key}={v}")))
                    .collect();
                write!(f, "keep-id:{}", options.join(","))
            }
            MapMode::Root => f.write_str("root"),
            MapMode::Current => f.write_str("current"),
        }
    }
}

impl std::str::FromStr for MapMode {
    type Err = String;

    /// auto, full, keep-id (also podman's keep-id:uid=UID,gid=GID, either or both), root, current.
    fn from_str(s: &str) -> Result<MapMode, String> {
        let (mode, options) = match s.split_once(':') {
            Some((mode, options)) => (mode, Some(options)),
            None => (s, None),
        };
        let mode = match mode {
            "auto" => MapMode::Auto,
            "full" => MapMode::Full,
            "keep-id" => MapMode::KeepId(KeepId::default()),
            "root" => MapMode::Root,
            "current" => MapMode::Current,
            _ => return Err("the modes are auto, full, keep-id, root and current".into()),
        };
        let Some(options) = options else {
            return Ok(mode);
        };
        let MapMode::KeepId(mut keep) = mode else {
            return Err(format!(
                "only keep-id takes options (keep-id:uid=UID,gid=GID), not {mode}"
            ));
        };
        for option in options.split(',') {
            let (key, value) = option.split_once('=').unwrap_or((option, ""));
            // u32::MAX is no id: the kernel's (uid_t)-1.
            let id = value
                .parse::<u32>()
                .ok()
                .filter(|&id| id != u32::MAX)
                .ok_or_else(|| format!("{option:?}: the id must be a number below 4294967295"))?;
            let slot = match key {
                "uid" => &mut keep.uid,
                "gid" => &mut keep.gid,
                _ => return Err(format!("{option:?}: keep-id takes uid=UID and gid=GID")),
            };
            if slot.replace(id).is_some() {
                return Err(format!("{key} is given twice"));
            }
        }
        Ok(MapMode::KeepId(keep))
    }
}

/// The caller as the kernel and /etc/passwd see them.
#[derive(Clone, Debug)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub name: Option<String>,
}

/// The maps to write, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapPlan {
    /// Written by the helpers: the caller's own id (inside 0 for the full map, its own number for
    /// keep-id) and every subordinate range in file order around it, the lines in inside order.
    Full {
        uid: Vec<IdMapping>,
        gid: Vec<IdMapping>,
        /// The inside uid and gid of the caller's own.
        caller_inside: (u32, u32),
        helpers: Helpers,
    },
    /// Written by us (no privilege needed): one id, setgroups denied.
    Single { inside_uid: u32, inside_gid: u32 },
}

impl MapPlan {
    /// Whether setgroups(2) works inside: only where the helpers granted subordinate groups.
    pub fn allows_setgroups(&self) -> bool {
        matches!(self, MapPlan::Full { .. })
    }

    /// The ids that the caller's own ids are inside: the command's default user.
    pub fn caller_inside(&self) -> (u32, u32) {
        match self {
            MapPlan::Full { caller_inside, .. } => *caller_inside,
            MapPlan::Single {
                inside_uid,
                inside_gid,
            } => (*inside_uid, *inside_gid),
        }
    }

    /// Whether `id` (a uid, else a gid) exists inside.
    pub fn is_mapped(&self, id: u32, uid: bool) -> bool {
        match self {
            MapPlan::Full {
                uid: uids,
                gid: gids,
                ..
            } => (if uid { uids } else { gids }).iter().any(|m| {
                let inside = m.inside_interval();
                (inside.start..inside.end).contains(&u64::from(id))
            }),
            MapPlan::Single {
                inside_uid,
                inside_gid,
            } => id == if uid { *inside_uid } else { *inside_gid },
        }
    }

    /// A keep-id map: every subordinate id, with the caller's own ids at numbers other than 0, so
    /// root inside is a subordinate id. (A process that makes a user namespace has every capability
    /// in it, but what it creates is owned by its own ids: a child acting as root becomes uid 0.)
    pub fn is_keep_id(&self) -> bool {
        matches!(self, MapPlan::Full { caller_inside, .. } if *caller_inside != (0, 0))
    }

    /// The text of the uid_map and gid_map files of a namespace made with a full plan, as a process
    /// outside it reads them (without the kernel's padding).
    pub fn full_map_texts(&self) -> Option<(String, String)> {
        match self {
            MapPlan::Full { uid, gid, .. } => Some((map_text(uid), map_text(gid))),
            MapPlan::Single { .. } => None,
        }
    }
}

/// Inside `own_inside` = `own` (0 for the full map, the caller's number for keep-id); each range in order fills the inside ids from 0 up, skipping
/// `own_inside`, with no id wasted (a range that reaches it is split around it). Parts of ranges that
/// contain `own` itself are left out (the kernel refuses overlapping outside ids), a range past the
/// id space is left out, and the map is cut at the kernel's line limit and the id space. The lines
/// are in inside order.
pub fn map_around(own: u32, own_inside: u32, ranges: &[IdInterval]) -> Vec<IdMapping> {
    let limit = u64::from(u32::MAX);
    let hole = u64::from(own_inside);
    let own_id = IdInterval {
        start: u64::from(own),
        end: u64::from(own) + 1,
    };
    let mut lines = Vec::new();
    let mut next_inside: u64 = 0;
    let usable = ranges.iter().flat_map(|r| without(*r, own_id));
    'ranges: for range in usable.filter(|r| r.end <= limit) {
        let mut start = range.start;
        while start < range.end {
            if next_inside == hole {
                next_inside += 1;
            }
            // One line is kept for `own`.
            if next_inside >= limit || lines.len() + 1 == MAX_MAP_LINES {
                break 'ranges;
            }
            let room = if next_inside < hole {
                hole - next_inside
            } else {
                limit - next_inside
            };
            let count = (range.end - start).min(room);
            lines.push(IdMapping {
                inside: next_inside as u32,
                outside: start as u32,
                count: count as u32,
            });
            next_inside += count;
            start += count;
        }
    }
    let at = lines.partition_point(|l| l.inside < own_inside);
    lines.insert(
        at,
        IdMapping {
            inside: own_inside,
            outside: own,
            count: 1,
        },
    );
    lines
}

/// How many inside ids below `own_inside` a map gives.
fn mapped_below(lines: &[IdMapping], own_inside: u32) -> u64 {
    lines
        .iter()
        .filter(|l| l.inside < own_inside)
        .map(|l| u64::from(l.count))
        .sum()
}

/// `range` minus `hole`: zero, one or two intervals.
fn without(range: IdInterval, hole: IdInterval) -> impl Iterator<Item = IdInterval> {
    let left = IdInterval {
        start: range.start,
        end: range.end.min(hole.start),
    };
    let right = IdInterval {
        start: range.start.max(hole.end),
        end: range.end,
    };
    [left, right].into_iter().filter(|r| !r.is_empty())
}

/// Overlapping entries (the same range listed twice) would make the kernel refuse the map: keep the
/// first occurrence of every id.
fn without_overlaps(ranges: Vec<IdInterval>) -> Vec<IdInterval> {
    let mut kept: Vec<IdInterval> = Vec::with_capacity(ranges.len());
    for range in ranges {
        let mut pieces = vec![range];
        for k in &kept {
            pieces = pieces.into_iter().flat_map(|p| without(p, *k)).collect();
        }
        kept.extend(pieces);
    }
    kept
}

/// Why the full map is not possible, with what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoFullMap {
    pub reason: String,
    pub fix: String,
}

/// Where the helpers are, once they are known to be usable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Helpers {
    pub newuidmap: PathBuf,
    pub newgidmap: PathBuf,
}

/// The caller's ranges in file order (none when the file is missing).
fn caller_ranges(path: &str, caller: &Caller) -> Result<Vec<IdInterval>, NoFullMap> {
    let name = caller.name.as_deref().unwrap_or("");
    let owner = SubidOwner::new(name.as_bytes(), caller.uid);
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(NoFullMap {
                reason: format!("cannot read {path}: {e}"),
                fix: format!("make {path} readable (mode 0644)"),
            });
        }
    };
    let bytes = subid::map_file(&file).map_err(|e| NoFullMap {
        reason: format!("cannot read {path}: {e}"),
        fix: format!("check {path}"),
    })?;
    Ok(without_overlaps(subid::owner_ranges(
        bytes.as_ref(),
        &owner,
    )))
}

/// Decides the plan for `mode`. `find_helper` locates a helper by name (see `find_helpers`).
pub fn plan_map(
    mode: MapMode,
    caller: &Caller,
    subuid_path: &str,
    subgid_path: &str,
    find_helper: impl Fn(&str) -> Result<PathBuf, NoFullMap>,
) -> Result<MapPlan, NoFullMap> {
    let caller_inside = match mode {
        MapMode::Root => {
            return Ok(MapPlan::Single {
                inside_uid: 0,
                inside_gid: 0,
            });
        }
        MapMode::Current => {
            return Ok(MapPlan::Single {
                inside_uid: caller.uid,
                inside_gid: caller.gid,
            });
        }
        MapMode::Auto | MapMode::Full => (0, 0),
        MapMode::KeepId(keep) => (
            keep.uid.unwrap_or(caller.uid),
            keep.gid.unwrap_or(caller.gid),
        ),
    };
    let who = caller
        .name
        .clone()
        .unwrap_or_else(|| caller.uid.to_string());
    let ask = if caller.uid == 0 {
        "run"
    } else {
        "ask an administrator to run"
    };
    let uid_ranges = caller_ranges(subuid_path, caller)?;
    let gid_ranges = caller_ranges(subgid_path, caller)?;
    for (ranges, path, flag) in [
        (&uid_ranges, subuid_path, "subuids"),
        (&gid_ranges, subgid_path, "subgids"),
    ] {
        if ranges.is_empty() {
            return Err(NoFullMap {
                reason: format!("{who} has no subordinate ranges in {path}"),
                fix: format!(
                    "{ask}: usermod --add-{flag} 100000-165535 {who}  (pick a free range)"
                ),
            });
        }
    }
    let uid = map_around(caller.uid, caller_inside.0, &uid_ranges);
    let gid = map_around(caller.gid, caller_inside.1, &gid_ranges);
    for (lines, own_inside, path, kind, flag) in [
        (&uid, caller_inside.0, subuid_path, "uid", "subuids"),
        (&gid, caller_inside.1, subgid_path, "gid", "subgids"),
    ] {
        let below = mapped_below(lines, own_inside);
        if below < u64::from(own_inside) {
            let have: u64 = lines.iter().map(|l| u64::from(l.count)).sum::<u64>() - 1;
            let missing = u64::from(own_inside) - below;
            return Err(NoFullMap {
                reason: format!(
                    "keep-id needs {own_inside} subordinate {kind}s to fill the inside {kind}s 0 to {} \
                     below yours ({own_inside}), and {who} has {have} in {path}",
                    own_inside - 1
                ),
                fix: format!(
                    "{ask}: usermod --add-{flag} START-END {who}  (a free range of {missing} ids or \
                     more); or use --map full, where you are uid 0 inside"
                ),
            });
        }
    }
    let helpers = Helpers {
        newuidmap: find_helper("newuidmap")?,
        newgidmap: find_helper("newgidmap")?,
    };
    Ok(MapPlan::Full {
        uid,
        gid,
        caller_inside,
        helpers,
    })
}

/// The caller as the kernel and /etc/passwd see them.
pub fn current_caller() -> Caller {
    let uid = nix::unistd::getuid();
    Caller {
        uid: uid.as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        name: users::caller_name(uid.as_raw()),
    }
}

/// The id map for `mode` for this process's caller: with `MapMode::Auto` and no usable subordinate
/// ids, a single-id map and one warning that says why and what to fix.
pub fn plan_for_caller(mode: MapMode) -> Result<MapPlan, RunError> {
    let caller = current_caller();
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let path_var = std::env::var_os("PATH");
    let find = |name: &str| find_helper(name, exe_dir.as_deref(), path_var.clone());
    match plan_map(mode, &caller, "/etc/subuid", "/etc/subgid", find) {
        Ok(plan) => {
            log::debug!("id map: {plan:?}");
            Ok(plan)
        }
        Err(why) if mode == MapMode::Auto => {
            eprintln!(
                "unshare-run: warning: only your own id is mapped (uid 0 inside), so apt, su and chown to other \
                 ids will fail: {}\n  fix: {}",
                why.reason, why.fix
            );
            Ok(MapPlan::Single {
                inside_uid: 0,
                inside_gid: 0,
            })
        }
        Err(why) => {
            let map = match mode {
                MapMode::KeepId(_) => "keep-id",
                _ => "full id",
            };
            Err(
                RunError::new(format!("cannot set up the {map} map: {}", why.reason))
                    .with_hint(why.fix),
            )
        }
    }
}

/// A helper next to the unshare-run executable, else the first in PATH; it must be privileged
/// (setuid root, or a file capability), or the map write would fail later with a vaguer error.
pub fn find_helper(
    name: &str,
    exe_dir: Option<&Path>,
    path_var: Option<OsString>,
) -> Result<PathBuf, NoFullMap> {
    let Some(path) = locate_helper(name, exe_dir, path_var) else {
        return Err(NoFullMap {
            reason: format!("{name} was not found next to unshare-run or in PATH"),
            fix: "install the helpers: apt-get install uidmap (or this project's package)".into(),
        });
    };
    check_helper_privileged(&path)?;
    Ok(path)
}

/// Where the helper `name` is looked up: the package's libexec directory beside the executable's
/// (`/usr/bin/unshare-run` -> `/usr/libexec/unshare-run/`, where the RPM installs them because
/// shadow-utils owns `/usr/bin/newuidmap` on Fedora), then next to the executable, then in PATH.
pub fn locate_helper(
    name: &str,
    exe_dir: Option<&Path>,
    path_var: Option<OsString>,
) -> Option<PathBuf> {
    let packaged = exe_dir.map(|d| d.join("../libexec/unshare-run").join(name));
    let beside = exe_dir.map(|d| d.join(name));
    packaged
        .into_iter()
        .chain(beside)
        .find(|p| p.is_file())
        .or_else(|| {
            path_var.as_ref().and_then(|p| {
                std::env::split_paths(p)
                    .map(|d| d.join(name))
                    .find(|p| p.is_file())
            })
        })
}

/// The first executable file `name` in `path_var`, as the kubelet finds getsubids (Go's
/// exec.LookPath).
pub fn in_path(name: &str, path_var: Option<std::ffi::OsString>) -> Option<PathBuf> {
    std::env::split_paths(&path_var?)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// How a helper gets its privilege.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelperPrivilege {
    SetuidRoot,
    FileCapabilities,
}

pub fn check_helper_privileged(path: &Path) -> Result<HelperPrivilege, NoFullMap> {
    let meta = std::fs::metadata(path).map_err(|e| NoFullMap {
        reason: format!("cannot inspect {}: {e}", path.display()),
        fix: "check the installation of newuidmap/newgidmap".into(),
    })?;
    let privilege = if meta.uid() == 0 && meta.permissions().mode() & 0o4000 != 0 {
        HelperPrivilege::SetuidRoot
    } else if grants_needed_capability(path) {
        HelperPrivilege::FileCapabilities
    } else {
        return Err(NoFullMap {
            reason: format!(
                "{} is neither setuid root nor has the file capability it needs",
                path.display()
            ),
            fix: format!(
                "as root: chown root {p} && chmod 4755 {p}  (or: setcap cap_setuid=ep / cap_setgid=ep {p})",
                p = path.display()
            ),
        });
    };
    // A nosuid mount disables both setuid bits and file capabilities.
    let nosuid = nix::sys::statvfs::statvfs(path)
        .is_ok_and(|v| v.flags().contains(nix::sys::statvfs::FsFlags::ST_NOSUID));
    if nosuid {
        return Err(NoFullMap {
            reason: format!(
                "{} is on a nosuid mount, which disables its privilege",
                path.display()
            ),
            fix: "install the helpers on a filesystem mounted without nosuid (e.g. /usr/bin)"
                .into(),
        });
    }
    Ok(privilege)
}

/// Whether the file capability of `path` makes the capability its helper needs effective: CAP_SETUID
/// for newuidmap, CAP_SETGID for newgidmap. (Anyone may read the attribute.)
fn grants_needed_capability(path: &Path) -> bool {
    const CAP_SETGID: u32 = 6;
    const CAP_SETUID: u32 = 7;
    let needed = if path.file_name().is_some_and(|n| n == "newgidmap") {
        CAP_SETGID
    } else {
        CAP_SETUID
    };
    crate::sys::read_xattr(path, c"security.capability")
        .is_some_and(|value| file_capability_grants(&value, needed))
}

/// Decodes `security.capability` (struct vfs_cap_data / vfs_ns_cap_data, revisions 2 and 3): the
/// capability must be in the permitted set, with the effective flag set (the `=ep` of setcap).
pub fn file_capability_grants(value: &[u8], cap: u32) -> bool {
    const VFS_CAP_FLAGS_EFFECTIVE: u32 = 0x1;
    const REVISION_MASK: u32 = 0xFF00_0000;
    const REVISION_2: u32 = 0x0200_0000;
    const REVISION_3: u32 = 0x0300_0000;
    let word = |i: usize| {
        value
            .get(i * 4..i * 4 + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    };
    let Some(magic) = word(0) else { return false };
    if !matches!(magic & REVISION_MASK, REVISION_2 | REVISION_3)
        || magic & VFS_CAP_FLAGS_EFFECTIVE == 0
    {
        return false;
    }
    // data[0] = {permitted, inheritable} for capabilities 0..32, data[1] for 32..64.
    let permitted = if cap < 32 { word(1) } else { word(3) };
    permitted.is_some_and(|p| p & (1 << (cap % 32)) != 0)
}

/// The helper's arguments for `lines`: inside, outside and count of each line.
fn helper_arguments(lines: &[IdMapping]) -> Vec<String> {
    lines
        .iter()
        .flat_map(|m| m.fields().map(|field| field.to_string()))
        .collect()
}

/// Writes the plan's maps for process `pid` (a child in a fresh user namespace we own).
pub fn write_maps(pid: i32, plan: &MapPlan) -> Result<(), RunError> {
    match plan {
        MapPlan::Full {
            uid, gid, helpers, ..
        } => {
            let spawn = |helper: &Path, lines: &[IdMapping]| {
                let arguments = helper_arguments(lines);
                log::debug!("{} {pid} {}", helper.display(), arguments.join(" "));
                Command::new(helper)
                    .arg(pid.to_string())
                    .args(arguments)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .map_err(|e| RunError::sys(format!("cannot run {}", helper.display()), e))
            };
            let outcome = |helper: &Path, child: std::process::Child| {
                let out = child
                    .wait_with_output()
                    .map_err(|e| RunError::sys(format!("waiting for {}", helper.display()), e))?;
                if out.status.success() {
                    return Ok(());
                }
                Err(RunError::new(format!(
                    "{} refused the map: {}",
                    helper.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
                .with_hint("check your ranges in /etc/subuid and /etc/subgid, or use --map root"))
            };
            // Both at once: a spawn returns once the helper has been exec'd, and the helpers then run
            // side by side. No threads: a thread would make glibc install its handler for SIGSETXID,
            // and the container's command would lose the caller's disposition of that signal.
            let uid_child = spawn(&helpers.newuidmap, uid)?;
            let gid_child = match spawn(&helpers.newgidmap, gid) {
                Ok(child) => child,
                Err(e) => {
                    let _ = outcome(&helpers.newuidmap, uid_child);
                    return Err(e);
                }
            };
            let uid_result = outcome(&helpers.newuidmap, uid_child);
            let gid_result = outcome(&helpers.newgidmap, gid_child);
            uid_result.and(gid_result)
        }
        MapPlan::Single {
            inside_uid,
            inside_gid,
        } => {
            let own = |inside: u32, outside: u32| {
                map_text(&[IdMapping {
                    inside,
                    outside,
                    count: 1,
                }])
            };
            let proc = format!("/proc/{pid}");
            let write = |file: &str, text: String| {
                std::fs::write(format!("{proc}/{file}"), text)
                    .map_err(|e| RunError::sys(format!("cannot write {proc}/{file}"), e))
            };
            write("uid_map", own(*inside_uid, nix::unistd::getuid().as_raw()))?;
            write("setgroups", "deny\n".into())?;
            write("gid_map", own(*inside_gid, nix::unistd::getgid().as_raw()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_map(own: u32, ranges: &[IdInterval]) -> Vec<IdMapping> {
        map_around(own, 0, ranges)
    }

    fn iv(start: u64, count: u64) -> IdInterval {
        IdInterval::from_start_count(start, count).unwrap()
    }

    fn m(inside: u32, outside: u32, count: u32) -> IdMapping {
        IdMapping {
            inside,
            outside,
            count,
        }
    }

    #[test]
    fn every_range_in_file_order_without_waste() {
        assert_eq!(
            full_map(1000, &[iv(100000, 65536), iv(300000, 10), iv(200000, 5)]),
            [
                m(0, 1000, 1),
                m(1, 100000, 65536),
                m(65537, 300000, 10),
                m(65547, 200000, 5)
            ]
        );
    }

    #[test]
    fn own_id_inside_a_range_is_cut_out() {
        assert_eq!(
            full_map(1005, &[iv(1000, 10)]),
            [m(0, 1005, 1), m(1, 1000, 5), m(6, 1006, 4)]
        );
    }

    #[test]
    fn kernel_limits_are_respected() {
        let many: Vec<_> = (0..400u64).map(|i| iv(100000 + i * 10, 5)).collect();
        assert_eq!(full_map(1000, &many).len(), MAX_MAP_LINES);
        let huge = full_map(1000, &[iv(1 << 31, (1 << 31) - 1)]);
        assert!(
            huge.iter()
                .all(|l| u64::from(l.inside) + u64::from(l.count) <= u64::from(u32::MAX))
        );
    }

    #[test]
    fn duplicate_entries_do_not_overlap() {
        assert_eq!(
            without_overlaps(vec![iv(100, 10), iv(105, 10), iv(100, 10)]),
            [iv(100, 10), iv(110, 5)]
        );
    }

    /// A scratch directory for one test, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(test: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("mapping-{test}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn file(&self, name: &str, content: &str) -> String {
            let path = self.0.join(name);
            std::fs::write(&path, content).unwrap();
            path.to_string_lossy().into_owned()
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn alice() -> Caller {
        Caller {
            uid: 1000,
            gid: 1000,
            name: Some("alice".into()),
        }
    }

    #[test]
    fn plans() {
        let scratch = Scratch::new("plans");
        let sub = scratch.file("sub", "alice:100000:65536\n");
        let found = |n: &str| Ok(PathBuf::from(format!("/x/{n}")));
        let plan = plan_map(MapMode::Auto, &alice(), &sub, &sub, found).unwrap();
        assert_eq!(
            plan,
            MapPlan::Full {
                uid: vec![m(0, 1000, 1), m(1, 100000, 65536)],
                gid: vec![m(0, 1000, 1), m(1, 100000, 65536)],
                caller_inside: (0, 0),
                helpers: Helpers {
                    newuidmap: PathBuf::from("/x/newuidmap"),
                    newgidmap: PathBuf::from("/x/newgidmap"),
                },
            }
        );
        assert!(plan.allows_setgroups() && !plan.is_keep_id());
        assert_eq!(plan.caller_inside(), (0, 0));
        assert!(plan.is_mapped(65536, true) && !plan.is_mapped(65537, false));
        assert_eq!(
            plan.full_map_texts().unwrap().0,
            "0 1000 1\n1 100000 65536\n"
        );
        let plan = plan_map(MapMode::Root, &alice(), &sub, &sub, found).unwrap();
        assert_eq!(
            plan,
            MapPlan::Single {
                inside_uid: 0,
                inside_gid: 0
            }
        );
        let plan = plan_map(MapMode::Current, &alice(), &sub, &sub, found).unwrap();
        assert_eq!(
            plan,
            MapPlan::Single {
                inside_uid: 1000,
                inside_gid: 1000
            }
        );
        assert!(!plan.allows_setgroups() && plan.full_map_texts().is_none());
        assert_eq!(plan.caller_inside(), (1000, 1000));
        assert!(plan.is_mapped(1000, true) && !plan.is_mapped(0, true));
        // A single-id map that keeps the uid has no root to become.
        assert!(!plan.is_keep_id());
    }

    #[test]
    fn keep_id_puts_the_caller_at_its_own_number_among_every_subordinate_id() {
        let scratch = Scratch::new("keep-id");
        let uids = scratch.file("uids", "alice:100000:65536\nalice:300000:1000\n");
        let gids = scratch.file("gids", "alice:200000:65536\n");
        let found = |n: &str| Ok(PathBuf::from(format!("/x/{n}")));
        let keep_id = MapMode::KeepId(KeepId::default());
        let plan = plan_map(keep_id, &alice(), &uids, &gids, found).unwrap();
        let MapPlan::Full {
            uid,
            gid,
            caller_inside,
            ..
        } = &plan
        else {
            panic!("{plan:?}")
        };
        assert_eq!(
            uid,
            &[
                m(0, 100000, 1000),
                m(1000, 1000, 1),
                m(1001, 101000, 64536),
                m(65537, 300000, 1000)
            ]
        );
        assert_eq!(
            gid,
            &[m(0, 200000, 1000), m(1000, 1000, 1), m(1001, 201000, 64536)]
        );
        assert_eq!(*caller_inside, (1000, 1000));
        assert_eq!(plan.caller_inside(), (1000, 1000));
        // Root inside is the first subordinate id: a child acting as root must become it.
        assert!(plan.is_keep_id() && plan.allows_setgroups());
        assert_eq!(
            plan.full_map_texts().unwrap().0,
            "0 100000 1000\n1000 1000 1\n1001 101000 64536\n65537 300000 1000\n"
        );
        // podman's keep-id:uid=,gid=: the caller at other numbers.
        let chosen = MapMode::KeepId(KeepId {
            uid: Some(11),
            gid: None,
        });
        let plan = plan_map(chosen, &alice(), &uids, &gids, found).unwrap();
        assert_eq!(plan.caller_inside(), (11, 1000));
        assert_eq!(
            plan.full_map_texts().unwrap().0,
            "0 100000 11\n11 1000 1\n12 100011 65525\n65537 300000 1000\n"
        );
        // The caller root: keep-id is the full map.
        let root = Caller {
            uid: 0,
            gid: 0,
            name: Some("alice".into()),
        };
        assert_eq!(
            plan_map(keep_id, &root, &uids, &gids, found),
            plan_map(MapMode::Full, &root, &uids, &gids, found)
        );
    }

    #[test]
    fn keep_id_fills_every_id_below_the_caller_and_wastes_none() {
        // A range that holds the caller's own id, ranges smaller than the gap, the own id at the edge.
        let ranges = [iv(995, 10), iv(100000, 3), iv(200000, 2000)];
        let lines = map_around(1000, 1000, &ranges);
        assert_eq!(
            lines,
            [
                m(0, 995, 5),
                m(5, 1001, 4),
                m(9, 100000, 3),
                m(12, 200000, 988),
                m(1000, 1000, 1),
                m(1001, 200988, 1012)
            ]
        );
        let inside: Vec<(u32, u32)> = lines.iter().map(|l| (l.inside, l.count)).collect();
        // Contiguous from 0, no gaps, sum = 1 + every usable subordinate id.
        let mut next = 0;
        for (start, count) in &inside {
            assert_eq!(*start, next);
            next += count;
        }
        assert_eq!(next, 1 + 9 + 3 + 2000);
        assert_eq!(mapped_below(&lines, 1000), 1000);
        // Exactly enough: nothing above the caller.
        assert_eq!(
            map_around(1000, 1000, &[iv(100000, 1000)]),
            [m(0, 100000, 1000), m(1000, 1000, 1)]
        );
        // Inside 0 is the caller: the full map.
        assert_eq!(
            map_around(1000, 0, &[iv(100000, 65536)]),
            [m(0, 1000, 1), m(1, 100000, 65536)]
        );
        // The kernel's line limit holds with the caller's line and a split range.
        let many: Vec<_> = (0..400u64).map(|i| iv(100000 + i * 10, 5)).collect();
        let lines = map_around(1000, 7, &many);
        assert_eq!(lines.len(), MAX_MAP_LINES);
        assert!(lines.windows(2).all(|w| w[0].inside < w[1].inside));
        // The top of the id space.
        let top = map_around(1000, u32::MAX - 1, &[iv(1 << 31, 1 << 20)]);
        assert_eq!(top.last(), Some(&m(u32::MAX - 1, 1000, 1)));
    }

    #[test]
    fn keep_id_with_too_few_ids_says_how_many_are_needed() {
        let scratch = Scratch::new("keep-id-few");
        let few = scratch.file("few", "alice:100000:10\n");
        let enough = scratch.file("enough", "alice:100000:65536\n");
        let found = |n: &str| Ok(PathBuf::from(n));
        let keep_id = MapMode::KeepId(KeepId::default());
        let err = plan_map(keep_id, &alice(), &few, &enough, found).unwrap_err();
        assert_eq!(
            err.reason,
            format!(
                "keep-id needs 1000 subordinate uids to fill the inside uids 0 to 999 below yours \
                 (1000), and alice has 10 in {few}"
            )
        );
        assert_eq!(
            err.fix,
            "ask an administrator to run: usermod --add-subuids START-END alice  (a free range of \
             990 ids or more); or use --map full, where you are uid 0 inside"
        );
        let err = plan_map(keep_id, &alice(), &enough, &few, found).unwrap_err();
        assert!(err.reason.contains("1000 subordinate gids"), "{err:?}");
        assert!(err.fix.contains("--add-subgids"), "{err:?}");
        // A smaller number inside needs fewer.
        let small = MapMode::KeepId(KeepId {
            uid: Some(10),
            gid: Some(3),
        });
        assert!(plan_map(small, &alice(), &few, &few, found).is_ok());
        // No ranges at all: the full map's message.
        let none = scratch.file("none", "");
        let err = plan_map(keep_id, &alice(), &none, &enough, found).unwrap_err();
        assert!(err.reason.contains("has no subordinate ranges"), "{err:?}");
    }

    #[test]
    fn map_modes_parse_and_print_as_written() {
        for text in [
            "auto",
            "full",
            "keep-id",
            "root",
            "current",
            "keep-id:uid=11",
            "keep-id:gid=7",
            "keep-id:uid=200,gid=210",
        ] {
            let mode: MapMode = text.parse().unwrap();
            assert_eq!(mode.to_string(), text);
        }
        assert_eq!(
            "keep-id:gid=5,uid=6".parse::<MapMode>(),
            Ok(MapMode::KeepId(KeepId {
                uid: Some(6),
                gid: Some(5)
            }))
        );
        for bad in [
            "half",
            "",
            "keep-id:",
            "keep-id:uid",
            "keep-id:uid=",
            "keep-id:uid=-1",
            "keep-id:uid=4294967295",
            "keep-id:uid=1,uid=2",
            "keep-id:size=10",
            "full:uid=1",
            "Keep-Id",
        ] {
            assert!(bad.parse::<MapMode>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn no_ranges_or_no_helper_explain_the_fix() {
        let scratch = Scratch::new("no-ranges");
        let empty = scratch.file("empty", "bob:100000:65536\n");
        let sub = scratch.file("sub", "alice:100000:65536\n");
        let found = |n: &str| Ok(PathBuf::from(n));
        let err = plan_map(MapMode::Full, &alice(), &empty, &sub, found).unwrap_err();
        assert!(
            err.reason.contains("alice has no subordinate ranges in"),
            "{err:?}"
        );
        assert!(
            err.fix
                .starts_with("ask an administrator to run: usermod --add-subuids"),
            "{err:?}"
        );
        let err = plan_map(MapMode::Full, &alice(), &sub, &empty, found).unwrap_err();
        assert!(err.fix.contains("usermod --add-subgids"), "{err:?}");
        // Root is its own administrator.
        let root = Caller {
            uid: 0,
            gid: 0,
            name: Some("root".into()),
        };
        let err = plan_map(MapMode::Full, &root, &empty, &sub, found).unwrap_err();
        assert!(err.fix.starts_with("run: usermod --add-subuids"), "{err:?}");
        let missing = |n: &str| {
            Err(NoFullMap {
                reason: format!("{n} missing"),
                fix: String::new(),
            })
        };
        assert_eq!(
            plan_map(MapMode::Auto, &alice(), &sub, &sub, missing)
                .unwrap_err()
                .reason,
            "newuidmap missing"
        );
    }

    #[test]
    fn helpers_are_looked_up_in_libexec_then_beside_then_in_path() {
        let scratch = Scratch::new("lookup");
        let root = scratch.0.clone();
        let bin = root.join("bin");
        let libexec = root.join("libexec/unshare-run");
        let path_dir = root.join("path");
        for d in [&bin, &libexec, &path_dir] {
            std::fs::create_dir_all(d).unwrap();
        }
        let path_var = Some(OsString::from(&path_dir));
        let find = || locate_helper("newuidmap", Some(&bin), path_var.clone());
        assert_eq!(find(), None);
        std::fs::write(path_dir.join("newuidmap"), "").unwrap();
        assert_eq!(find(), Some(path_dir.join("newuidmap")));
        std::fs::write(bin.join("newuidmap"), "").unwrap();
        assert_eq!(find(), Some(bin.join("newuidmap")));
        std::fs::write(libexec.join("newuidmap"), "").unwrap();
        assert_eq!(find(), Some(bin.join("../libexec/unshare-run/newuidmap")));
    }

    #[test]
    fn file_capability_values_are_decoded() {
        // setcap cap_setuid=ep: revision 2, effective flag, permitted bit 7.
        let setuid_ep = [
            0x01, 0, 0, 0x02, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert!(file_capability_grants(&setuid_ep, 7));
        assert!(!file_capability_grants(&setuid_ep, 6));
        // cap_setuid=p: no effective flag.
        let setuid_p = [
            0x00, 0, 0, 0x02, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert!(!file_capability_grants(&setuid_p, 7));
        // Revision 3 (namespaced, with a root uid), cap_setgid=ep.
        let v3 = [
            0x01, 0, 0, 0x03, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert!(file_capability_grants(&v3, 6));
        assert!(!file_capability_grants(&[], 7));
        assert!(!file_capability_grants(&[1, 0, 0, 9, 0x80, 0, 0, 0], 7));
    }

    #[test]
    fn unprivileged_helper_is_reported_with_the_fix() {
        let scratch = Scratch::new("helper");
        let dir = scratch.0.clone();
        let helper = dir.join("newuidmap");
        std::fs::write(&helper, "").unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = find_helper("newuidmap", Some(&dir), None).unwrap_err();
        assert!(err.reason.contains("neither setuid root"), "{err:?}");
        assert!(err.fix.contains("chmod 4755"), "{err:?}");
        let err = find_helper(
            "newuidmap",
            Some(Path::new("/nonexistent")),
            Some("/nonexistent2".into()),
        )
        .unwrap_err();
        assert!(err.reason.contains("not found"), "{err:?}");
    }
}
