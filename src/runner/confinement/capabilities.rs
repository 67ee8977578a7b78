//! The capabilities a `--rootfs` container's command gets: podman's default set unless --cap-add,
//! --cap-drop or --privileged say otherwise, in the bounding, permitted and effective sets of a
//! command that runs as uid 0 inside; a command run as another user starts with none effective (the
//! kernel clears them when the uid changes) and can gain, through a file's capabilities or a setuid
//! program, only what the bounding set holds. The inheritable and ambient sets are empty, as in
//! podman and Docker since CVE-2022-24769.

use std::fmt;

use super::super::error::RunError;
use crate::sys::capabilities as caps;

/// The kernel's names, by number (capability.h; CAP_CHECKPOINT_RESTORE, 40, is the last of 6.x).
const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// podman's default (containers.conf `default_capabilities`): what apt, dpkg, su and useradd need.
const PODMAN_DEFAULT: [&str; 11] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// A set of capabilities: bit N is capability N.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapabilitySet(pub u64);

impl CapabilitySet {
    pub const EMPTY: CapabilitySet = CapabilitySet(0);

    /// Every capability this program knows.
    pub fn all() -> CapabilitySet {
        CapabilitySet((1u64 << NAMES.len()) - 1)
    }

    pub fn podman_default() -> CapabilitySet {
        let mut set = CapabilitySet::EMPTY;
        for name in PODMAN_DEFAULT {
            set.insert(number_of(name).expect("a known name"));
        }
        set
    }

    pub fn contains(self, cap: u32) -> bool {
        cap < 64 && self.0 & (1 << cap) != 0
    }

    fn insert(&mut self, cap: u32) {
        self.0 |= 1 << cap;
    }

    fn remove(&mut self, cap: u32) {
        self.0 &= !(1 << cap);
    }
}

impl fmt::Display for CapabilitySet {
    /// The names, as /proc/PID/status would decode them (capsh --decode): "CAP_CHOWN,CAP_KILL".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = (0..NAMES.len() as u32)
            .filter(|&c| self.contains(c))
            .map(|c| format!("CAP_{}", NAMES[c as usize]))
            .collect();
        match names.is_empty() {
            true => f.write_str("none"),
            false => f.write_str(&names.join(",")),
        }
    }
}

/// The number of the capability with this exact name (without CAP_, upper case).
pub fn number_of(name: &str) -> Option<u32> {
    NAMES.iter().position(|n| *n == name).map(|n| n as u32)
}

/// What --cap-add and --cap-drop name: one capability, or all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Named {
    One(u32),
    All,
}

/// A capability as podman takes it: any case, with or without CAP_, or ALL.
pub fn parse(name: &str) -> Result<Named, String> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    if bare == "ALL" {
        return Ok(Named::All);
    }
    number_of(bare).map(Named::One).ok_or_else(|| {
        format!("{name:?} is not a capability (e.g. NET_ADMIN, CAP_SYS_PTRACE or ALL)")
    })
}

/// The command's set from podman's default, `add` and `drop`, as podman merges them: dropping ALL
/// starts from none, adding ALL from all, and a capability both added and dropped is an error.
pub fn merge(add: &[Named], drop: &[Named]) -> Result<CapabilitySet, RunError> {
    let add_all = add.contains(&Named::All);
    let drop_all = drop.contains(&Named::All);
    if add_all && drop_all {
        return Err(
            RunError::new("--cap-add ALL and --cap-drop ALL contradict each other")
                .with_hint("keep one of them, and name single capabilities with the other"),
        );
    }
    for named in add {
        if let Named::One(cap) = named
            && drop.contains(named)
        {
            return Err(RunError::new(format!(
                "CAP_{} is both added and dropped",
                NAMES[*cap as usize]
            ))
            .with_hint("remove it from --cap-add or from --cap-drop"));
        }
    }
    let mut set = match (add_all, drop_all) {
        (true, _) => CapabilitySet::all(),
        (_, true) => CapabilitySet::EMPTY,
        _ => CapabilitySet::podman_default(),
    };
    for named in drop {
        if let Named::One(cap) = named {
            set.remove(*cap);
        }
    }
    for named in add {
        if let Named::One(cap) = named {
            set.insert(*cap);
        }
    }
    Ok(set)
}

/// In the command's process, as root inside and before the switch to the command's user: takes
/// everything outside `set` out of the bounding set, also what only a newer kernel than this program
/// knows (up to the first number the kernel refuses), and empties the ambient set.
pub fn limit_bounding_set(set: CapabilitySet) -> Result<(), RunError> {
    for cap in (0..64).filter(|&c| !set.contains(c)) {
        match caps::drop_from_bounding_set(cap) {
            Ok(()) => {}
            // Past the kernel's last capability.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
            Err(e) => {
                return Err(RunError::sys(
                    format!("cannot drop capability {cap} from the bounding set"),
                    e,
                ));
            }
        }
    }
    caps::clear_ambient_set().map_err(|e| RunError::sys("cannot clear the ambient capabilities", e))
}

/// After the switch to the command's user: `set` effective and permitted for uid 0 (the kernel gives
/// root the bounding set again at exec); nothing for another user, whose sets the kernel emptied.
pub fn set_for_command(set: CapabilitySet, uid: u32) -> Result<(), RunError> {
    let set = if uid == 0 { set.0 } else { 0 };
    caps::set_capabilities(set, set, 0)
        .map_err(|e| RunError::sys("cannot set the command's capabilities", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podmans_default_is_the_set_podman_containers_show() {
        // CapEff of a rootless podman container running as root.
        assert_eq!(CapabilitySet::podman_default().0, 0x0000_0000_8004_05fb);
        assert_eq!(
            CapabilitySet::podman_default().to_string(),
            "CAP_CHOWN,CAP_DAC_OVERRIDE,CAP_FOWNER,CAP_FSETID,CAP_KILL,CAP_SETGID,CAP_SETUID,\
             CAP_SETPCAP,CAP_NET_BIND_SERVICE,CAP_SYS_CHROOT,CAP_SETFCAP"
        );
        assert_eq!(CapabilitySet::all().0, 0x1ff_ffff_ffff);
    }

    #[test]
    fn names_parse_in_any_case_with_or_without_the_prefix() {
        assert_eq!(parse("NET_ADMIN"), Ok(Named::One(12)));
        assert_eq!(parse("cap_net_admin"), Ok(Named::One(12)));
        assert_eq!(parse("Cap_Sys_Admin"), Ok(Named::One(21)));
        assert_eq!(parse("all"), Ok(Named::All));
        assert_eq!(parse("CAP_ALL"), Ok(Named::All));
        assert!(
            parse("NET_ADMINS")
                .unwrap_err()
                .contains("not a capability")
        );
        assert!(parse("").is_err());
    }

    #[test]
    fn add_and_drop_merge_as_podman_merges_them() {
        let one = |n: &str| parse(n).unwrap();
        let default = CapabilitySet::podman_default();
        assert_eq!(merge(&[], &[]).unwrap(), default);
        let with_admin = merge(&[one("SYS_ADMIN")], &[]).unwrap();
        assert!(with_admin.contains(21) && with_admin.0 & default.0 == default.0);
        let without_chown = merge(&[], &[one("CHOWN")]).unwrap();
        assert_eq!(without_chown.0, default.0 & !1);
        assert_eq!(merge(&[], &[Named::All]).unwrap(), CapabilitySet::EMPTY);
        assert_eq!(
            merge(&[one("KILL")], &[Named::All]).unwrap(),
            CapabilitySet(1 << 5)
        );
        assert_eq!(merge(&[Named::All], &[]).unwrap(), CapabilitySet::all());
        assert!(
            !merge(&[Named::All], &[one("SYS_ADMIN")])
                .unwrap()
                .contains(21)
        );
        assert!(merge(&[Named::All], &[Named::All]).is_err());
        let both = merge(&[one("NET_RAW")], &[one("cap_net_raw")]).unwrap_err();
        assert!(
            both.to_string()
                .contains("CAP_NET_RAW is both added and dropped"),
            "{both}"
        );
    }
}
