//! The kernel's files that a `--rootfs` container does not see, or sees read-only: podman's lists
//! (containers/common). Masked ones get an empty read-only tmpfs (a directory) or /dev/null (a file)
//! over them; read-only ones a read-only bind of themselves. `--security-opt unmask=` takes paths
//! off both lists, as in podman.

/// What the kernel reveals there: its memory (kcore), every key's description (keys), timers and
/// scheduler internals of the whole machine, firmware tables, devices.
const MASKED: [&str; 11] = [
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/fs/selinux",
    "/sys/dev/block",
];

/// Where a write would change the machine rather than the container (sysctls, the sysrq trigger,
/// interrupt affinity), were the kernel ever to allow it from a user namespace.
const READ_ONLY: [&str; 6] = [
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Covered {
    pub masked: Vec<&'static str>,
    pub read_only: Vec<&'static str>,
}

/// podman's lists without what `unmask` names: `ALL`, or paths separated by colons, each exact or
/// ending in `*` for every path that starts with what comes before it (`/proc/*`).
pub fn covered(unmask: &[String]) -> Covered {
    let patterns: Vec<&str> = unmask.iter().flat_map(|u| u.split(':')).collect();
    let kept = |path: &&&'static str| {
        !patterns.iter().any(|p| match p.strip_suffix('*') {
            _ if *p == "ALL" => true,
            Some(prefix) => path.starts_with(prefix),
            None => p.trim_end_matches('/') == **path,
        })
    };
    Covered {
        masked: MASKED.iter().filter(&kept).copied().collect(),
        read_only: READ_ONLY.iter().filter(&kept).copied().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmask_takes_paths_off_both_lists() {
        let all = covered(&[]);
        assert_eq!(all.masked, MASKED);
        assert_eq!(all.read_only, READ_ONLY);
        assert_eq!(covered(&["ALL".into()]), Covered::default());
        let some = covered(&["/proc/kcore:/sys/firmware/".into(), "/proc/sys".into()]);
        assert!(!some.masked.contains(&"/proc/kcore") && !some.masked.contains(&"/sys/firmware"));
        assert!(some.masked.contains(&"/proc/keys"));
        assert!(!some.read_only.contains(&"/proc/sys") && some.read_only.contains(&"/proc/irq"));
        let proc = covered(&["/proc/*".into()]);
        assert_eq!(
            proc.masked,
            ["/sys/firmware", "/sys/fs/selinux", "/sys/dev/block"]
        );
        assert!(proc.read_only.is_empty());
    }
}
