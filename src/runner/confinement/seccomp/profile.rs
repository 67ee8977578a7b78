//! seccomp profiles in the JSON format of Docker, podman and containers-common (seccomp.json), and
//! their resolution into a filter for this machine: each entry applies or not by the container's
//! capabilities and the kernel's version (`includes`, `excludes`), its names become numbers of each
//! architecture the filter covers (x86_64 and, where the profile maps it, i386; a name that an
//! architecture lacks is left out there, as libseccomp does), and entries for the same call merge:
//! conditional rules first, in the profile's order, then the call's unconditional action.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;

use super::bpf::{self, Action, Condition, Op};
use super::{I386, X86_64};
use crate::runner::confinement::capabilities::{self, CapabilitySet, Named};

const EPERM: u16 = 1;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub default_action: String,
    #[serde(default)]
    pub default_errno_ret: Option<u16>,
    /// containers-common's errno by name ("ENOSYS").
    #[serde(default)]
    pub default_errno: Option<String>,
    #[serde(default)]
    pub architectures: Vec<String>,
    #[serde(default)]
    pub arch_map: Vec<ArchMap>,
    #[serde(default)]
    pub syscalls: Vec<Entry>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    pub architecture: String,
    #[serde(default)]
    pub sub_architectures: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    #[serde(default)]
    pub names: Vec<Cow<'static, str>>,
    /// The older format's single name.
    #[serde(default)]
    pub name: Option<Cow<'static, str>>,
    pub action: Cow<'static, str>,
    #[serde(default)]
    pub errno_ret: Option<u16>,
    #[serde(default)]
    pub errno: Option<String>,
    #[serde(default)]
    pub args: Option<Vec<Arg>>,
    #[serde(default)]
    pub includes: Option<When>,
    #[serde(default)]
    pub excludes: Option<When>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    pub index: u8,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct When {
    #[serde(default)]
    pub caps: Vec<String>,
    #[serde(default)]
    pub arches: Vec<String>,
    #[serde(default)]
    pub min_kernel: Option<String>,
}

/// What an entry is resolved against.
pub struct Machine {
    pub capabilities: CapabilitySet,
    /// (major, minor) of the running kernel.
    pub kernel: (u32, u32),
}

impl Profile {
    /// Whether an entry depends on the kernel's version.
    pub fn names_a_kernel(&self) -> bool {
        self.syscalls
            .iter()
            .any(|e| e.includes.as_ref().is_some_and(|w| w.min_kernel.is_some()))
    }
}

pub fn parse(json: &[u8]) -> Result<Profile, String> {
    serde_json::from_slice(json).map_err(|e| format!("not a seccomp profile: {e}"))
}

fn errno_named(name: &str) -> Option<u16> {
    let known = [
        ("EPERM", 1),
        ("ENOENT", 2),
        ("EINTR", 4),
        ("EIO", 5),
        ("EBADF", 9),
        ("EAGAIN", 11),
        ("ENOMEM", 12),
        ("EACCES", 13),
        ("EFAULT", 14),
        ("EBUSY", 16),
        ("EEXIST", 17),
        ("ENODEV", 19),
        ("EINVAL", 22),
        ("ENOSPC", 28),
        ("EROFS", 30),
        ("ENOSYS", 38),
        ("EOPNOTSUPP", 95),
    ];
    known.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

fn action(name: &str, errno_ret: Option<u16>, errno: Option<&str>) -> Result<Action, String> {
    let errno = match (errno_ret, errno) {
        (Some(n), _) => n,
        (None, Some(name)) => errno_named(name).ok_or_else(|| format!("unknown errno {name:?}"))?,
        (None, None) => EPERM,
    };
    Ok(match name {
        "SCMP_ACT_ALLOW" => Action::Allow,
        "SCMP_ACT_ERRNO" => Action::Errno(errno),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
        "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
        "SCMP_ACT_TRAP" => Action::Trap,
        "SCMP_ACT_LOG" => Action::Log,
        other => {
            return Err(format!(
                "action {other:?} is not supported here (ALLOW, ERRNO, KILL, KILL_PROCESS, TRAP, LOG are)"
            ));
        }
    })
}

fn condition(arg: &Arg) -> Result<Condition, String> {
    if arg.index > 5 {
        return Err(format!("argument index {} is past the sixth", arg.index));
    }
    let (op, value) = match arg.op.as_str() {
        "SCMP_CMP_EQ" => (Op::Eq, arg.value),
        "SCMP_CMP_NE" => (Op::Ne, arg.value),
        "SCMP_CMP_LT" => (Op::Lt, arg.value),
        "SCMP_CMP_LE" => (Op::Le, arg.value),
        "SCMP_CMP_GT" => (Op::Gt, arg.value),
        "SCMP_CMP_GE" => (Op::Ge, arg.value),
        // libseccomp's order: the mask first, then the value.
        "SCMP_CMP_MASKED_EQ" => (Op::MaskedEq(arg.value), arg.value_two),
        other => return Err(format!("comparison {other:?} is not one of libseccomp's")),
    };
    Ok(Condition {
        arg: arg.index,
        op,
        value,
    })
}

/// The Go name of this machine's architecture, which `arches` in entries name.
const NATIVE_ARCH: &str = "amd64";

fn kernel_at_least(kernel: (u32, u32), version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let wanted = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    kernel >= wanted
}

fn has_all(set: CapabilitySet, caps: &[String]) -> bool {
    caps.iter()
        .all(|c| matches!(capabilities::parse(c), Ok(Named::One(n)) if set.contains(n)))
}

fn has_any(set: CapabilitySet, caps: &[String]) -> bool {
    caps.iter()
        .any(|c| matches!(capabilities::parse(c), Ok(Named::One(n)) if set.contains(n)))
}

/// Whether `entry` applies on `machine`.
fn applies(entry: &Entry, machine: &Machine) -> bool {
    if let Some(when) = &entry.includes {
        let arch_ok = when.arches.is_empty() || when.arches.iter().any(|a| a == NATIVE_ARCH);
        let kernel_ok = when
            .min_kernel
            .as_deref()
            .is_none_or(|v| kernel_at_least(machine.kernel, v));
        if !arch_ok || !kernel_ok || !has_all(machine.capabilities, &when.caps) {
            return false;
        }
    }
    if let Some(when) = &entry.excludes
        && (when.arches.iter().any(|a| a == NATIVE_ARCH)
            || has_any(machine.capabilities, &when.caps))
    {
        return false;
    }
    true
}

/// The architectures the filter covers: x86_64 always (the machine's own), i386 when the profile
/// names it (as an architecture or in x86_64's arch map). x32 never: its numbers are refused.
fn covers_i386(profile: &Profile) -> bool {
    let i386 = "SCMP_ARCH_X86";
    profile.architectures.iter().any(|a| a == i386)
        || profile.arch_map.iter().any(|m| {
            m.architecture == "SCMP_ARCH_X86_64" && m.sub_architectures.iter().any(|a| a == i386)
        })
}

/// The filter `profile` makes on `machine`.
pub fn resolve(profile: &Profile, machine: &Machine) -> Result<bpf::Filter, String> {
    let default = action(
        &profile.default_action,
        profile.default_errno_ret,
        profile.default_errno.as_deref(),
    )?;
    let mut tables = vec![&X86_64];
    if covers_i386(profile) {
        tables.push(&I386);
    }
    let mut arches = Vec::new();
    for table in tables {
        let mut calls: BTreeMap<u32, (Vec<bpf::Rule>, Option<Action>)> = BTreeMap::new();
        for entry in profile.syscalls.iter().filter(|e| applies(e, machine)) {
            let act = action(&entry.action, entry.errno_ret, entry.errno.as_deref())?;
            let conditions: Vec<Condition> = entry
                .args
                .iter()
                .flatten()
                .map(condition)
                .collect::<Result<_, _>>()?;
            for name in entry.names.iter().chain(entry.name.as_ref()) {
                let Some(nr) = table.number(name) else {
                    continue;
                };
                let (rules, otherwise) = calls.entry(nr).or_default();
                match conditions.is_empty() {
                    true => {
                        otherwise.get_or_insert(act);
                    }
                    false => rules.push(bpf::Rule {
                        conditions: conditions.clone(),
                        action: act,
                    }),
                }
            }
        }
        let syscalls = calls
            .into_iter()
            .map(|(nr, (rules, otherwise))| {
                let otherwise = otherwise.unwrap_or(default);
                (nr, bpf::Syscall { rules, otherwise })
            })
            .collect();
        arches.push(bpf::Arch {
            audit_arch: table.audit_arch,
            syscalls,
        });
    }
    Ok(bpf::Filter {
        arches,
        default,
        other_arch: Action::Errno(EPERM),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(caps: CapabilitySet) -> Machine {
        Machine {
            capabilities: caps,
            kernel: (6, 18),
        }
    }

    fn nr(name: &str) -> u32 {
        X86_64.number(name).unwrap()
    }

    fn decide(filter: &bpf::Filter, name: &str, args: [u64; 6]) -> u32 {
        bpf::run(
            &bpf::compile(filter),
            bpf::AUDIT_ARCH_X86_64,
            nr(name),
            args,
        )
    }

    const PROFILE: &str = r#"{
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
        "syscalls": [
            {"names": ["read", "write", "no_such_call"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["mount"], "action": "SCMP_ACT_ERRNO", "errno": "EPERM", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}], "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
            {"names": ["kcmp"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "7.1"}},
            {"names": ["s390_pci_mmio_read"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["s390x"]}}
        ]
    }"#;

    #[test]
    fn a_docker_profile_resolves_by_capability_kernel_and_architecture() {
        let profile = parse(PROFILE.as_bytes()).unwrap();
        let allow = Action::Allow.value();
        let enosys = Action::Errno(38).value();
        let eperm = Action::Errno(1).value();
        let plain = resolve(&profile, &machine(CapabilitySet::podman_default())).unwrap();
        assert_eq!(decide(&plain, "read", [0; 6]), allow);
        assert_eq!(decide(&plain, "openat", [0; 6]), enosys);
        assert_eq!(decide(&plain, "mount", [0; 6]), eperm);
        assert_eq!(decide(&plain, "personality", [8, 0, 0, 0, 0, 0]), allow);
        assert_eq!(decide(&plain, "personality", [9, 0, 0, 0, 0, 0]), enosys);
        // CLONE_NEWUSER is refused; a plain thread is not.
        assert_eq!(decide(&plain, "clone", [0x0001_0000, 0, 0, 0, 0, 0]), allow);
        assert_eq!(
            decide(&plain, "clone", [0x1000_0000, 0, 0, 0, 0, 0]),
            enosys
        );
        assert_eq!(decide(&plain, "ptrace", [0; 6]), allow);
        assert_eq!(decide(&plain, "kcmp", [0; 6]), enosys);
        let admin = CapabilitySet(CapabilitySet::podman_default().0 | 1 << 21);
        let with_admin = resolve(&profile, &machine(admin)).unwrap();
        assert_eq!(decide(&with_admin, "mount", [0; 6]), allow);
        assert_eq!(
            decide(&with_admin, "clone", [0x1000_0000, 0, 0, 0, 0, 0]),
            enosys
        );
        // i386 is in the arch map: its own numbers (read is 3 there).
        let program = bpf::compile(&plain);
        assert_eq!(bpf::run(&program, bpf::AUDIT_ARCH_I386, 3, [0; 6]), allow);
        assert_eq!(
            bpf::run(
                &program,
                bpf::AUDIT_ARCH_X86_64,
                bpf::X32_SYSCALL_BIT, // x32's read
                [0; 6]
            ),
            eperm
        );
    }

    #[test]
    fn bad_profiles_say_what_is_wrong() {
        assert!(parse(b"{").unwrap_err().contains("not a seccomp profile"));
        let unsupported = r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#;
        let profile = parse(unsupported.as_bytes()).unwrap();
        let error = resolve(&profile, &machine(CapabilitySet::EMPTY)).unwrap_err();
        assert!(error.contains("not supported"), "{error}");
        let bad_op = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ODD"}]}]}"#;
        let profile = parse(bad_op.as_bytes()).unwrap();
        assert!(resolve(&profile, &machine(CapabilitySet::EMPTY)).is_err());
    }
}
