//! The default filter, with the semantics of Docker's (moby's) default profile, which podman users
//! know: every system call of this program's tables is allowed except those below; a call the tables
//! lack (a kernel newer than them, an obsolete one) answers ENOSYS, so that a C library falls back to
//! an older call; an explicit refusal answers EPERM, never a kill. What the kernel would let any
//! process of a user namespace do but a container should not (make namespaces and so gain every
//! capability in them, mount, use the keyrings, io_uring, unusual personalities) is refused unless
//! the capability that podman ties to it is added.

use super::bpf::{self, Action, Condition, Op};
use super::{I386, Table, X86_64};
use crate::runner::confinement::capabilities::{self, CapabilitySet};

/// What the default does with a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Allowed,
    /// EPERM whatever the capabilities.
    Refused,
    /// Obsolete or never implemented: not allowed, so ENOSYS, as the kernel mostly answers anyway.
    Obsolete,
    /// Allowed only with this capability (its name in capabilities.h), else EPERM.
    WithCapability(&'static str),
    /// clone: threads and processes always, new namespaces only with CAP_SYS_ADMIN.
    Clone,
    /// clone3, whose flags are in memory out of the filter's sight: ENOSYS without CAP_SYS_ADMIN,
    /// so that the C library falls back to clone.
    Clone3,
    /// Only the personalities that programs ask for.
    Personality,
}

use Class::*;

/// Every call that the default does not simply allow, sorted by name (a test checks it). Refused: the
/// keyrings are shared with the host's session (issue 20 gives the container its own); io_uring is
/// a second system call interface that the filter cannot see into; kexec replaces the kernel;
/// modify_ldt is old attack surface. The calls tied to a capability are podman's.
const SPECIAL: [(&str, Class); 84] = [
    ("_sysctl", Obsolete),
    ("acct", WithCapability("SYS_PACCT")),
    ("add_key", Refused),
    ("afs_syscall", Obsolete),
    ("bdflush", Obsolete),
    ("bpf", WithCapability("BPF")),
    ("break", Obsolete),
    ("clock_adjtime", WithCapability("SYS_TIME")),
    ("clock_adjtime64", WithCapability("SYS_TIME")),
    ("clock_settime", WithCapability("SYS_TIME")),
    ("clock_settime64", WithCapability("SYS_TIME")),
    ("clone", Clone),
    ("clone3", Clone3),
    ("create_module", Obsolete),
    ("delete_module", WithCapability("SYS_MODULE")),
    ("epoll_ctl_old", Obsolete),
    ("epoll_wait_old", Obsolete),
    ("fanotify_init", WithCapability("SYS_ADMIN")),
    ("finit_module", WithCapability("SYS_MODULE")),
    ("fsconfig", WithCapability("SYS_ADMIN")),
    ("fsmount", WithCapability("SYS_ADMIN")),
    ("fsopen", WithCapability("SYS_ADMIN")),
    ("fspick", WithCapability("SYS_ADMIN")),
    ("ftime", Obsolete),
    ("get_kernel_syms", Obsolete),
    ("get_mempolicy", WithCapability("SYS_NICE")),
    ("getpmsg", Obsolete),
    ("gtty", Obsolete),
    ("idle", Obsolete),
    ("init_module", WithCapability("SYS_MODULE")),
    ("io_uring_enter", Refused),
    ("io_uring_register", Refused),
    ("io_uring_setup", Refused),
    ("ioperm", WithCapability("SYS_RAWIO")),
    ("iopl", WithCapability("SYS_RAWIO")),
    ("kexec_file_load", Refused),
    ("kexec_load", Refused),
    ("keyctl", Refused),
    ("lock", Obsolete),
    ("lookup_dcookie", WithCapability("SYS_ADMIN")),
    ("mbind", WithCapability("SYS_NICE")),
    ("modify_ldt", Refused),
    ("mount", WithCapability("SYS_ADMIN")),
    ("mount_setattr", WithCapability("SYS_ADMIN")),
    ("move_mount", WithCapability("SYS_ADMIN")),
    ("mpx", Obsolete),
    ("nfsservctl", Obsolete),
    ("open_by_handle_at", WithCapability("DAC_READ_SEARCH")),
    ("open_tree", WithCapability("SYS_ADMIN")),
    ("open_tree_attr", WithCapability("SYS_ADMIN")),
    ("perf_event_open", WithCapability("PERFMON")),
    ("personality", Personality),
    ("pivot_root", WithCapability("SYS_ADMIN")),
    ("prof", Obsolete),
    ("profil", Obsolete),
    ("putpmsg", Obsolete),
    ("query_module", Obsolete),
    ("quotactl", WithCapability("SYS_ADMIN")),
    ("quotactl_fd", WithCapability("SYS_ADMIN")),
    ("reboot", WithCapability("SYS_BOOT")),
    ("request_key", Refused),
    ("security", Obsolete),
    ("set_mempolicy", WithCapability("SYS_NICE")),
    ("set_mempolicy_home_node", WithCapability("SYS_NICE")),
    ("setns", WithCapability("SYS_ADMIN")),
    ("settimeofday", WithCapability("SYS_TIME")),
    ("stime", WithCapability("SYS_TIME")),
    ("stty", Obsolete),
    ("swapoff", WithCapability("SYS_ADMIN")),
    ("swapon", WithCapability("SYS_ADMIN")),
    ("sysfs", Obsolete),
    ("syslog", WithCapability("SYSLOG")),
    ("tuxcall", Obsolete),
    ("ulimit", Obsolete),
    ("umount", WithCapability("SYS_ADMIN")),
    ("umount2", WithCapability("SYS_ADMIN")),
    ("unshare", WithCapability("SYS_ADMIN")),
    ("uselib", Obsolete),
    ("userfaultfd", WithCapability("SYS_PTRACE")),
    ("ustat", Obsolete),
    ("vhangup", WithCapability("SYS_TTY_CONFIG")),
    ("vm86", Obsolete),
    ("vm86old", Obsolete),
    ("vserver", Obsolete),
];

/// CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
/// CLONE_NEWNET: the flags that make namespaces.
const NAMESPACE_FLAGS: u64 = 0x7e02_0000;

/// The personalities programs ask for: Linux, UNAME26 and READ_IMPLIES_EXEC forms, and the query.
const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

const EPERM: u16 = 1;
const ENOSYS: u16 = 38;

fn has(capabilities: CapabilitySet, name: &str) -> bool {
    capabilities::number_of(name).is_some_and(|cap| capabilities.contains(cap))
}

fn plain(action: Action) -> bpf::Syscall {
    bpf::Syscall {
        rules: Vec::new(),
        otherwise: action,
    }
}

/// What the call gets with `capabilities`; None: the filter's default (ENOSYS).
fn decision(class: Class, capabilities: CapabilitySet) -> Option<bpf::Syscall> {
    let admin = || has(capabilities, "SYS_ADMIN");
    let allowed_with = |yes: bool| match yes {
        true => Action::Allow,
        false => Action::Errno(EPERM),
    };
    Some(match class {
        Class::Allowed => plain(Action::Allow),
        Class::Refused => plain(Action::Errno(EPERM)),
        Class::Obsolete => return None,
        Class::WithCapability(cap) => plain(allowed_with(has(capabilities, cap))),
        Class::Clone if admin() => plain(Action::Allow),
        Class::Clone => bpf::Syscall {
            rules: vec![bpf::Rule {
                conditions: vec![Condition {
                    arg: 0,
                    op: Op::MaskedEq(NAMESPACE_FLAGS),
                    value: 0,
                }],
                action: Action::Allow,
            }],
            otherwise: Action::Errno(EPERM),
        },
        Class::Clone3 if admin() => plain(Action::Allow),
        Class::Clone3 => plain(Action::Errno(ENOSYS)),
        Class::Personality => bpf::Syscall {
            rules: PERSONALITIES
                .iter()
                .map(|&value| bpf::Rule {
                    conditions: vec![Condition {
                        arg: 0,
                        op: Op::Eq,
                        value,
                    }],
                    action: Action::Allow,
                })
                .collect(),
            otherwise: Action::Errno(EPERM),
        },
    })
}

/// The default filter for a command with `capabilities`, straight from the tables: resolving the
/// same as a profile (`profile`, which a test checks against this) costs a start far more. Only the
/// special calls are looked up by name; every other call of a table is allowed.
pub fn filter(capabilities: CapabilitySet) -> bpf::Filter {
    let arch = |table: &Table| {
        let mut special: Vec<(u32, Class)> = SPECIAL
            .iter()
            .filter_map(|(name, class)| Some((table.number(name)?, *class)))
            .collect();
        special.sort_unstable_by_key(|(nr, _)| *nr);
        let mut special = special.into_iter().peekable();
        let mut syscalls = Vec::with_capacity(table.calls.len());
        for &(_, nr) in table.calls {
            let class = match special.next_if(|(s, _)| *s == nr) {
                Some((_, class)) => class,
                None => Allowed,
            };
            if let Some(decided) = decision(class, capabilities) {
                syscalls.push((nr, decided));
            }
        }
        bpf::Arch {
            audit_arch: table.audit_arch,
            syscalls,
        }
    };
    bpf::Filter {
        arches: vec![arch(&X86_64), arch(&I386)],
        default: Action::Errno(ENOSYS),
        other_arch: Action::Errno(EPERM),
    }
}

#[cfg(test)]
mod tests {
    use super::super::profile::{ArchMap, Arg, Entry, Machine, Profile, When, resolve};
    use super::*;
    use std::borrow::Cow;

    /// What the default does with `name`.
    fn class(name: &str) -> Class {
        match SPECIAL.binary_search_by(|(n, _)| (*n).cmp(name)) {
            Ok(i) => SPECIAL[i].1,
            Err(_) => Allowed,
        }
    }

    fn entry(names: Vec<&'static str>, action: &'static str) -> Entry {
        Entry {
            names: names.into_iter().map(Cow::Borrowed).collect(),
            action: Cow::Borrowed(action),
            ..Entry::default()
        }
    }

    fn when_cap(cap: &str) -> Option<When> {
        Some(When {
            caps: vec![format!("CAP_{cap}")],
            ..When::default()
        })
    }

    fn condition(value: u64, op: &str, index: u8) -> Option<Vec<Arg>> {
        Some(vec![Arg {
            index,
            value,
            value_two: 0,
            op: op.into(),
        }])
    }

    /// The default as a profile in Docker's format (what `--security-opt seccomp=FILE` would need to
    /// say the same), for the test that resolving it gives `filter`.
    fn profile() -> Profile {
        let names: Vec<&'static str> = X86_64
            .calls
            .iter()
            .chain(I386.calls.iter())
            .map(|(name, _)| *name)
            .collect();
        let of = |wanted: Class| -> Vec<&'static str> {
            let mut found: Vec<&'static str> = names
                .iter()
                .copied()
                .filter(|n| class(n) == wanted)
                .collect();
            found.sort_unstable();
            found.dedup();
            found
        };
        let mut entries = vec![
            entry(of(Class::Allowed), "SCMP_ACT_ALLOW"),
            entry(of(Class::Refused), "SCMP_ACT_ERRNO"),
        ];
        let mut caps: Vec<&'static str> = names
            .iter()
            .filter_map(|n| match class(n) {
                Class::WithCapability(cap) => Some(cap),
                _ => None,
            })
            .collect();
        caps.sort_unstable();
        caps.dedup();
        for cap in caps {
            let names = of(Class::WithCapability(cap));
            entries.push(Entry {
                includes: when_cap(cap),
                ..entry(names.clone(), "SCMP_ACT_ALLOW")
            });
            entries.push(Entry {
                excludes: when_cap(cap),
                ..entry(names, "SCMP_ACT_ERRNO")
            });
        }
        entries.push(Entry {
            args: condition(NAMESPACE_FLAGS, "SCMP_CMP_MASKED_EQ", 0),
            excludes: when_cap("SYS_ADMIN"),
            ..entry(vec!["clone"], "SCMP_ACT_ALLOW")
        });
        entries.push(Entry {
            excludes: when_cap("SYS_ADMIN"),
            ..entry(vec!["clone"], "SCMP_ACT_ERRNO")
        });
        for name in ["clone", "clone3"] {
            entries.push(Entry {
                includes: when_cap("SYS_ADMIN"),
                ..entry(vec![name], "SCMP_ACT_ALLOW")
            });
        }
        entries.push(Entry {
            excludes: when_cap("SYS_ADMIN"),
            errno_ret: Some(super::ENOSYS),
            ..entry(vec!["clone3"], "SCMP_ACT_ERRNO")
        });
        for personality in PERSONALITIES {
            entries.push(Entry {
                args: condition(personality, "SCMP_CMP_EQ", 0),
                ..entry(vec!["personality"], "SCMP_ACT_ALLOW")
            });
        }
        entries.push(entry(vec!["personality"], "SCMP_ACT_ERRNO"));
        Profile {
            default_action: "SCMP_ACT_ERRNO".into(),
            default_errno_ret: Some(super::ENOSYS),
            arch_map: vec![ArchMap {
                architecture: "SCMP_ARCH_X86_64".into(),
                sub_architectures: vec!["SCMP_ARCH_X86".into()],
            }],
            syscalls: entries,
            ..Profile::default()
        }
    }

    const SYS_ADMIN: u64 = 1 << 21;

    fn program(extra_caps: u64) -> Vec<bpf::Insn> {
        bpf::compile(&filter(CapabilitySet(
            CapabilitySet::podman_default().0 | extra_caps,
        )))
    }

    #[test]
    fn the_special_calls_are_sorted_by_name_and_named_in_a_table() {
        for pair in SPECIAL.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].0, pair[1].0);
        }
        for (name, _) in &SPECIAL {
            let known = |t: &[(&str, u32)]| t.iter().any(|(n, _)| n == name);
            assert!(known(X86_64.calls) || known(I386.calls), "{name}");
        }
        // The tables are by number, their index finds each name.
        for table in [&X86_64, &I386] {
            assert!(table.calls.windows(2).all(|p| p[0].1 < p[1].1));
            for (name, nr) in table.calls {
                assert_eq!(table.number(name), Some(*nr), "{name}");
            }
            assert_eq!(table.number("no_such_call"), None);
        }
    }

    #[test]
    fn the_default_is_the_default_profile_resolved() {
        for caps in [
            CapabilitySet::EMPTY,
            CapabilitySet::podman_default(),
            CapabilitySet(CapabilitySet::podman_default().0 | SYS_ADMIN),
            CapabilitySet::all(),
        ] {
            let machine = Machine {
                capabilities: caps,
                kernel: (6, 18),
            };
            assert_eq!(
                filter(caps),
                resolve(&profile(), &machine).unwrap(),
                "{caps}"
            );
        }
    }

    fn x86_64(program: &[bpf::Insn], name: &str, arg0: u64) -> u32 {
        let nr = X86_64.number(name).unwrap();
        bpf::run(program, bpf::AUDIT_ARCH_X86_64, nr, [arg0, 0, 0, 0, 0, 0])
    }

    const ALLOW: u32 = 0x7fff_0000;
    const EPERM: u32 = 0x0005_0001;
    const ENOSYS: u32 = 0x0005_0026;

    #[test]
    fn the_default_allows_ordinary_calls_and_refuses_namespaces_mounts_and_keyrings() {
        let p = program(0);
        // Ranges of numbers with one action: a few hundred instructions, not thousands.
        assert!(p.len() < 300, "{}", p.len());
        for name in [
            "read",
            "openat",
            "execve",
            "setresuid",
            "capset",
            "chroot",
            "ptrace",
            "wait4",
        ] {
            assert_eq!(x86_64(&p, name, 0), ALLOW, "{name}");
        }
        for name in [
            "unshare",
            "setns",
            "mount",
            "keyctl",
            "add_key",
            "io_uring_setup",
            "bpf",
        ] {
            assert_eq!(x86_64(&p, name, 0), EPERM, "{name}");
        }
        // A thread, a process, and a process in a new user namespace.
        assert_eq!(x86_64(&p, "clone", 0x003d_0f00), ALLOW);
        assert_eq!(x86_64(&p, "clone", 0x11), ALLOW);
        assert_eq!(x86_64(&p, "clone", 0x1000_0011), EPERM);
        assert_eq!(x86_64(&p, "clone3", 0), ENOSYS);
        assert_eq!(x86_64(&p, "uselib", 0), ENOSYS);
        assert_eq!(bpf::run(&p, bpf::AUDIT_ARCH_X86_64, 1000, [0; 6]), ENOSYS);
        assert_eq!(x86_64(&p, "personality", 0xffff_ffff), ALLOW);
        assert_eq!(x86_64(&p, "personality", 0x0040_0000), EPERM);
    }

    #[test]
    fn capabilities_open_what_podman_ties_to_them() {
        let p = program(SYS_ADMIN);
        for name in ["unshare", "setns", "mount", "clone3"] {
            assert_eq!(x86_64(&p, name, 0), ALLOW, "{name}");
        }
        assert_eq!(x86_64(&p, "clone", 0x1000_0011), ALLOW);
        // Not the keyrings.
        assert_eq!(x86_64(&p, "keyctl", 0), EPERM);
    }

    #[test]
    fn i386_calls_get_the_same_decisions_and_x32_calls_none() {
        let p = program(0);
        let i386 = |name: &str| {
            let nr = I386.number(name).unwrap();
            bpf::run(&p, bpf::AUDIT_ARCH_I386, nr, [0; 6])
        };
        assert_eq!(i386("read"), ALLOW);
        assert_eq!(i386("socketcall"), ALLOW);
        assert_eq!(i386("unshare"), EPERM);
        assert_eq!(i386("keyctl"), EPERM);
        assert_eq!(i386("vm86"), ENOSYS);
        let unshare = X86_64.number("unshare").unwrap();
        let x32 = bpf::run(
            &p,
            bpf::AUDIT_ARCH_X86_64,
            unshare | bpf::X32_SYSCALL_BIT,
            [0; 6],
        );
        assert_eq!(x32, Action::Errno(1).value());
    }
}
