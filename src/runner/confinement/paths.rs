//! The kernel's files that a `--rootfs` container does not see, or sees read-only: podman's lists
//! (containers/common). Masked ones get an empty read-only tmpfs (a directory) or /dev/null (a file)
//! over them; read-only ones a read-only bind of themselves. `--security-opt unmask=` takes paths
//! off both lists, as in podman.

/// What the kernel reveals there: its memory (kcore), every key's description (keys), timers and
/// scheduler internals of the whole machine, firmware tables, devices.
const MASKED: [(&str, Kind); 11] = [
    ("/proc/acpi", Kind::Directory),
    ("/proc/kcore", Kind::File),
    ("/proc/keys", Kind::File),
    ("/proc/latency_stats", Kind::File),
    ("/proc/timer_list", Kind::File),
    ("/proc/timer_stats", Kind::File),
    ("/proc/sched_debug", Kind::File),
    ("/proc/scsi", Kind::Directory),
    ("/sys/firmware", Kind::Directory),
    ("/sys/fs/selinux", Kind::Directory),
    ("/sys/dev/block", Kind::Directory),
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

/// What a masked path is on the kernels podman's list was made for (a directory gets a tmpfs over
/// it, a file /dev/null); where a kernel differs, the mount says so (ENOTDIR) and the other is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Directory,
    File,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Covered {
    pub masked: Vec<(&'static str, Kind)>,
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
        masked: MASKED
            .iter()
            .filter(|(path, _)| kept(&path))
            .copied()
            .collect(),
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
        let masked = |c: &Covered, path| c.masked.iter().any(|(p, _)| *p == path);
        assert!(!masked(&some, "/proc/kcore") && !masked(&some, "/sys/firmware"));
        assert!(masked(&some, "/proc/keys"));
        assert!(!some.read_only.contains(&"/proc/sys") && some.read_only.contains(&"/proc/irq"));
        let proc = covered(&["/proc/*".into()]);
        assert_eq!(
            proc.masked.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            ["/sys/firmware", "/sys/fs/selinux", "/sys/dev/block"]
        );
        assert!(proc.read_only.is_empty());
    }
}
