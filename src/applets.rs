//! The applet table. argv[0] is chosen by whoever execs us (anyone can run the setuid file as
//! "unshare-run"), so each applet carries a privilege class, enforced before its code, argument
//! parsing or logging runs (busybox's SUID_REQUIRE / SUID_DROP idea).

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use unshare_run_helpers::getsubids;
use unshare_run_helpers::newidmap::{self, IdKind};
use unshare_run_helpers::privilege;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrivilegeClass {
    /// Keeps setuid/file-capability privilege, after hardening the process: the id-map helpers.
    Helper,
    /// Drops every id and capability that setuid or file capabilities granted, and verifies it.
    Unprivileged,
}

pub struct Applet {
    pub name: &'static str,
    pub privilege: PrivilegeClass,
    /// Runs with the arguments after argv[0]; returns the exit status.
    pub run: fn(&[OsString]) -> u8,
}

pub const APPLETS: &[Applet] = &[
    Applet {
        name: "unshare-run",
        privilege: PrivilegeClass::Unprivileged,
        run: crate::runner::main,
    },
    Applet {
        name: "newuidmap",
        privilege: PrivilegeClass::Helper,
        run: |args| newidmap::main(IdKind::Uid, args),
    },
    Applet {
        name: "newgidmap",
        privilege: PrivilegeClass::Helper,
        run: |args| newidmap::main(IdKind::Gid, args),
    },
    Applet {
        name: "getsubids",
        privilege: PrivilegeClass::Unprivileged,
        run: getsubids::main,
    },
];

/// Exit status when an unknown name is used.
const EXIT_UNKNOWN_APPLET: u8 = 2;
/// Exit status when privilege cannot be dropped (the runner's "own error" status).
const EXIT_PRIVILEGE_DROP_FAILED: u8 = crate::runner::RUNNER_ERROR;
/// Exit status of a helper that cannot harden itself (the helpers' only failure status).
const EXIT_HELPER_FAILED: u8 = 1;

/// The exact basename of argv[0]: the part after the last '/'.
pub fn applet_name(argv0: &[u8]) -> &[u8] {
    argv0.rsplit(|&b| b == b'/').next().unwrap_or(argv0)
}

pub fn find_applet(argv0: &[u8]) -> Option<&'static Applet> {
    let name = applet_name(argv0);
    APPLETS.iter().find(|a| a.name.as_bytes() == name)
}

/// Runs the applet named by argv[0]; returns the exit status.
pub fn dispatch(argv: Vec<OsString>) -> u8 {
    let applet = argv.first().and_then(|a| find_applet(a.as_bytes()));
    // An unknown name gets no privilege either.
    let class = applet.map_or(PrivilegeClass::Unprivileged, |a| a.privilege);
    match class {
        PrivilegeClass::Helper => {
            if let Err(e) = privilege::harden_privileged_start() {
                eprintln!("unshare-run: cannot secure the helper process: {e}");
                return EXIT_HELPER_FAILED;
            }
        }
        PrivilegeClass::Unprivileged => {
            if let Err(e) = privilege::drop_all_privilege() {
                eprintln!("unshare-run: cannot drop privileges, refusing to run: {e}");
                return EXIT_PRIVILEGE_DROP_FAILED;
            }
        }
    }
    let Some(applet) = applet else {
        let called = argv
            .first()
            .map(|a| String::from_utf8_lossy(applet_name(a.as_bytes())).into_owned())
            .unwrap_or_default();
        let names: Vec<&str> = APPLETS.iter().map(|a| a.name).collect();
        eprintln!(
            "unshare-run: unknown applet name {called:?}; this program runs as one of: {}\n\
             (install it or a link to it under one of these names)",
            names.join(", ")
        );
        return EXIT_UNKNOWN_APPLET;
    };
    (applet.run)(&argv[1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_basename_selects_the_applet() {
        assert_eq!(
            find_applet(b"/usr/bin/newuidmap").unwrap().name,
            "newuidmap"
        );
        assert_eq!(find_applet(b"newgidmap").unwrap().name, "newgidmap");
        assert_eq!(find_applet(b"./unshare-run").unwrap().name, "unshare-run");
        assert_eq!(
            find_applet(b"/usr/bin/getsubids").unwrap().name,
            "getsubids"
        );
        for name in [
            &b""[..],
            b"/",
            b"newuidmap/",
            b"xnewuidmap",
            b"newuidmap2",
            b"NEWUIDMAP",
            b"unshare",
            b"getsubid",
            b"getsubids.",
        ] {
            assert!(
                find_applet(name).is_none(),
                "{:?}",
                String::from_utf8_lossy(name)
            );
        }
    }

    #[test]
    fn only_the_helpers_keep_privilege() {
        for applet in APPLETS {
            let expected = if applet.name.starts_with("new") {
                PrivilegeClass::Helper
            } else {
                PrivilegeClass::Unprivileged
            };
            assert_eq!(applet.privilege, expected, "{}", applet.name);
        }
        // Named, so that a renamed or added helper cannot take getsubids along.
        assert_eq!(
            find_applet(b"getsubids").unwrap().privilege,
            PrivilegeClass::Unprivileged
        );
    }
}
