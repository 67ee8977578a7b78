//! What a `--rootfs` container keeps of the host beyond the files it is given, and how little: the
//! descriptors it inherits (`descriptors`), its capabilities (`capabilities`), the kernel's files it
//! does not see (`paths`), its session keyring (`keyring`) and its system-call filter (`seccomp`),
//! with podman's options and defaults. Decided while the spec is built, applied by PID 1 and by the command's
//! process before exec. Host mode, the `podman unshare` analogue, keeps the host's descriptors and
//! every capability of the user namespace.

pub mod capabilities;
pub mod descriptors;
pub mod keyring;
pub mod paths;
pub mod seccomp;

use capabilities::{CapabilitySet, Named};

use super::error::RunError;

/// How the command is confined. The default is host mode's: nothing taken away.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Confinement {
    /// None: every capability of the user namespace (host mode, --privileged).
    pub capabilities: Option<CapabilitySet>,
    /// --security-opt no-new-privileges: no exec gains privileges (setuid, file capabilities).
    pub no_new_privileges: bool,
    /// The kernel's files masked or made read-only (none in host mode and with --privileged).
    pub covered: paths::Covered,
    /// The name of the session keyring of the container's own that PID 1 joins (`keyring`); None:
    /// the caller's.
    pub keyring: Option<String>,
    /// The system-call filter's program (none in host mode, with --privileged and with
    /// seccomp=unconfined).
    pub seccomp: Option<Vec<seccomp::bpf::Insn>>,
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
     unmask=ALL|PATH[:PATH...], seccomp=unconfined|FILE, keyring=host|private and label=disable";

/// The confinement that `options` ask for: podman's defaults for a --rootfs container, opened up
/// by --privileged, --cap-add/--cap-drop and --security-opt; without a root filesystem, host mode's:
/// nothing taken away.
pub fn decide(options: &Options<'_>) -> Result<Confinement, RunError> {
    let mut no_new_privileges = false;
    let mut unmask = Vec::new();
    let mut keyring_host = false;
    // None: unconfined.
    let mut filter = Some(seccomp::Source::Default);
    for opt in options.security_opt {
        match security_opt(opt)? {
            SecurityOpt::NoNewPrivileges(on) => no_new_privileges = on,
            SecurityOpt::Unmask(paths) => unmask.push(paths),
            SecurityOpt::KeyringHost(on) => keyring_host = on,
            SecurityOpt::Seccomp(source) => filter = source,
            SecurityOpt::Nothing => {}
        }
    }
    let confined = options.rootfs && !options.privileged;
    let capabilities = match confined {
        true => Some(capabilities::merge(options.cap_add, options.cap_drop)?),
        false => None,
    };
    // --privileged turns the default filter off, not a profile the user names.
    let filter = match (options.rootfs, confined, filter) {
        (true, true, source) | (true, false, source @ Some(seccomp::Source::File(_))) => source,
        _ => None,
    };
    let seccomp = match &filter {
        Some(source) => {
            let caps = capabilities.unwrap_or_else(CapabilitySet::all);
            seccomp::program(source, caps)?
        }
        None => None,
    };
    let confinement = Confinement {
        capabilities,
        no_new_privileges,
        covered: match confined {
            true => paths::covered(&unmask),
            false => paths::Covered::default(),
        },
        keyring: match options.rootfs && !keyring_host {
            true => Some(keyring::new_name()?),
            false => None,
        },
        seccomp,
    };
    log::debug!(
        "confinement: capabilities {}, no_new_privs {}, masked {:?}, read-only {:?}, own keyring {}, seccomp {}",
        confinement
            .capabilities
            .map_or("all of the user namespace".into(), |c| c.to_string()),
        confinement.no_new_privileges,
        confinement.covered.masked,
        confinement.covered.read_only,
        confinement.keyring.is_some(),
        match (&filter, &confinement.seccomp) {
            (Some(seccomp::Source::Default), Some(p)) =>
                format!("the default filter ({} instructions)", p.len()),
            (Some(seccomp::Source::File(path)), Some(p)) =>
                format!("{} ({} instructions)", path.display(), p.len()),
            _ => "unconfined".into(),
        }
    );
    Ok(confinement)
}

enum SecurityOpt<'a> {
    NoNewPrivileges(bool),
    /// Paths to leave uncovered: ALL, or a colon-separated list.
    Unmask(String),
    /// keyring=host: the caller's session keyring stays the container's.
    KeyringHost(bool),
    /// The filter's source; None: unconfined.
    Seccomp(Option<seccomp::Source<'a>>),
    /// Accepted for podman's habits, with nothing to do here.
    Nothing,
}

/// One --security-opt, in podman's spelling (`key=value`; Docker's `key:value` too).
fn security_opt(opt: &str) -> Result<SecurityOpt<'_>, RunError> {
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
        ("seccomp", Some("unconfined")) => Ok(SecurityOpt::Seccomp(None)),
        ("seccomp", Some(file)) if !file.is_empty() => Ok(SecurityOpt::Seccomp(Some(
            seccomp::Source::File(std::path::Path::new(file)),
        ))),
        ("unmask", Some(paths)) if !paths.is_empty() => Ok(SecurityOpt::Unmask(paths.into())),
        ("keyring", Some("host")) => Ok(SecurityOpt::KeyringHost(true)),
        ("keyring", Some("private")) => Ok(SecurityOpt::KeyringHost(false)),
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
        assert!(default.seccomp.is_some());
        assert!(default.keyring.is_some());
        assert!(decided(true, true, &[]).unwrap().keyring.is_some());
        assert!(
            decided(true, false, &["keyring=host"])
                .unwrap()
                .keyring
                .is_none()
        );
        assert!(decided(false, false, &[]).unwrap().keyring.is_none());
        assert!(!default.no_new_privileges);
        assert!(!default.covered.masked.is_empty());
        let privileged = decided(true, true, &[]).unwrap();
        assert_eq!(privileged.capabilities, None);
        assert_eq!(privileged.covered, paths::Covered::default());
        assert_eq!(privileged.seccomp, None);
        let unmasked = decided(true, false, &["unmask=ALL"]).unwrap();
        assert_eq!(unmasked.covered, paths::Covered::default());
        assert_eq!(decided(false, false, &[]).unwrap(), Confinement::default());
        assert_eq!(
            decided(false, false, &["seccomp=/nonexistent"])
                .unwrap()
                .seccomp,
            None
        );
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
        let profile = decided(true, false, &["seccomp=/nonexistent/profile.json"]).unwrap_err();
        assert!(
            profile
                .to_string()
                .contains("seccomp=/nonexistent/profile.json"),
            "{profile}"
        );
        let unconfined = decided(true, false, &["seccomp=unconfined"]).unwrap();
        assert_eq!(unconfined.seccomp, None);
    }
}
