//! What a `--rootfs` container keeps of the host beyond the files it is given, and how little: the
//! descriptors it inherits (`descriptors`), its capabilities (`capabilities`) and the kernel's files
//! it does not see (`paths`), with podman's options and defaults. Decided while the spec is built, applied by PID 1 and by the command's
//! process before exec. Host mode, the `podman unshare` analogue, keeps the host's descriptors and
//! every capability of the user namespace.

pub mod capabilities;
pub mod descriptors;
pub mod paths;

use capabilities::{CapabilitySet, Named};

use super::error::RunError;

/// How the command is confined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confinement {
    /// None: every capability of the user namespace (host mode, --privileged).
    pub capabilities: Option<CapabilitySet>,
    /// --security-opt no-new-privileges: no exec gains privileges (setuid, file capabilities).
    pub no_new_privileges: bool,
    /// The kernel's files masked or made read-only (none in host mode and with --privileged).
    pub covered: paths::Covered,
}

impl Default for Confinement {
    /// Host mode's: nothing taken away.
    fn default() -> Confinement {
        Confinement {
            capabilities: None,
            no_new_privileges: false,
            covered: paths::Covered::default(),
        }
    }
}

/// The options that decide it, from the command line.
pub struct Options<'a> {
    pub rootfs: bool,
    pub privileged: bool,
    pub cap_add: &'a [Named],
    pub cap_drop: &'a [Named],
    pub security_opt: &'a [String],
}

const SECURITY_OPT_HINT: &str = "unshare-run knows --security-opt no-new-privileges[=true|false], \
     unmask=ALL|PATH[:PATH...], seccomp=unconfined and label=disable";

pub fn decide(options: &Options<'_>) -> Result<Confinement, RunError> {
    let mut no_new_privileges = false;
    let mut unmask = Vec::new();
    for opt in options.security_opt {
        match security_opt(opt)? {
            SecurityOpt::NoNewPrivileges(on) => no_new_privileges = on,
            SecurityOpt::Unmask(paths) => unmask.push(paths),
            SecurityOpt::Nothing => {}
        }
    }
    let confined = options.rootfs && !options.privileged;
    let confinement = Confinement {
        capabilities: match confined {
            true => Some(capabilities::merge(options.cap_add, options.cap_drop)?),
            false => None,
        },
        no_new_privileges,
        covered: match confined {
            true => paths::covered(&unmask),
            false => paths::Covered::default(),
        },
    };
    log::debug!(
        "confinement: capabilities {}, no_new_privs {}, masked {:?}, read-only {:?}",
        confinement
            .capabilities
            .map_or("all of the user namespace".into(), |c| c.to_string()),
        confinement.no_new_privileges,
        confinement.covered.masked,
        confinement.covered.read_only
    );
    Ok(confinement)
}

enum SecurityOpt {
    NoNewPrivileges(bool),
    /// Paths to leave uncovered: ALL, or a colon-separated list.
    Unmask(String),
    /// Accepted for podman's habits, with nothing to do here.
    Nothing,
}

/// One --security-opt, in podman's spelling (`key=value`; Docker's `key:value` too).
fn security_opt(opt: &str) -> Result<SecurityOpt, RunError> {
    let (key, value) = match opt.split_once(['=', ':']) {
        Some((k, v)) => (k, Some(v)),
        None => (opt, None),
    };
    let bad = || {
        RunError::new(format!(
            "--security-opt {opt}: not an option unshare-run knows"
        ))
        .with_hint(SECURITY_OPT_HINT)
    };
    match (key, value) {
        ("no-new-privileges", None | Some("true")) => Ok(SecurityOpt::NoNewPrivileges(true)),
        ("no-new-privileges", Some("false")) => Ok(SecurityOpt::NoNewPrivileges(false)),
        // No system-call filter is installed yet: unconfined is what a container has.
        ("seccomp", Some("unconfined")) => Ok(SecurityOpt::Nothing),
        ("seccomp", Some(_)) => Err(RunError::new(format!(
            "--security-opt {opt}: unshare-run does not read seccomp profiles yet"
        ))
        .with_hint("leave the option out (containers have no system-call filter yet)")),
        ("unmask", Some(paths)) if !paths.is_empty() => Ok(SecurityOpt::Unmask(paths.into())),
        // No SELinux labels are set.
        ("label", Some("disable")) => Ok(SecurityOpt::Nothing),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decided(rootfs: bool, privileged: bool, opts: &[&str]) -> Result<Confinement, RunError> {
        let security_opt: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
        decide(&Options {
            rootfs,
            privileged,
            cap_add: &[],
            cap_drop: &[],
            security_opt: &security_opt,
        })
    }

    #[test]
    fn a_rootfs_container_gets_podmans_capabilities_unless_privileged() {
        let default = decided(true, false, &[]).unwrap();
        assert_eq!(default.capabilities, Some(CapabilitySet::podman_default()));
        assert!(!default.no_new_privileges);
        assert!(!default.covered.masked.is_empty());
        let privileged = decided(true, true, &[]).unwrap();
        assert_eq!(privileged.capabilities, None);
        assert_eq!(privileged.covered, paths::Covered::default());
        let unmasked = decided(true, false, &["unmask=ALL"]).unwrap();
        assert_eq!(unmasked.covered, paths::Covered::default());
        assert_eq!(decided(false, false, &[]).unwrap(), Confinement::default());
    }

    #[test]
    fn security_opts_in_podmans_and_dockers_spellings() {
        for on in [
            "no-new-privileges",
            "no-new-privileges=true",
            "no-new-privileges:true",
        ] {
            assert!(
                decided(true, false, &[on]).unwrap().no_new_privileges,
                "{on}"
            );
        }
        let off = decided(
            true,
            false,
            &["no-new-privileges", "no-new-privileges=false"],
        );
        assert!(!off.unwrap().no_new_privileges);
        decided(true, false, &["seccomp=unconfined", "label=disable"]).unwrap();
        for bad in [
            "no-new-privileges=maybe",
            "apparmor=x",
            "label=type:x",
            "nonsense",
        ] {
            let error = decided(true, false, &[bad]).unwrap_err();
            assert!(
                error.to_string().contains("not an option"),
                "{bad}: {error}"
            );
        }
        let profile = decided(true, false, &["seccomp=/etc/profile.json"]).unwrap_err();
        assert!(
            profile.to_string().contains("seccomp profiles"),
            "{profile}"
        );
    }
}
