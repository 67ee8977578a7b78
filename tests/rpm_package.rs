//! The RPM (packaging/build-rpm.sh with Debian's rpmbuild): file list, modes and file capabilities, as
//! `rpm -qlvp` and `rpm -qp --filecaps` report them.

use std::process::Command;

use unshare_run_test_support::*;

#[test]
#[ignore = "needs root: sudo tests/run"]
fn rpm_file_list_modes_and_capabilities() {
    require_root();
    let out = TempDir::new("rpm-out");
    let rpm = build_package("build-rpm.sh", &out, |name| name.ends_with(".rpm"));
    let list =
        String::from_utf8(run_ok(Command::new("rpm").arg("-qlvp").arg(&rpm)).stdout).unwrap();
    let entry = |path: &str| {
        list.lines()
            .find(|l| l.ends_with(&format!(" {path}")))
            .unwrap_or_else(|| panic!("{path} missing from:\n{list}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    for (path, mode) in [
        ("/usr/bin/unshare-run", "-rwxr-xr-x"),
        ("/usr/libexec/unshare-run/newuidmap", "-rwxr-xr-x"),
        ("/usr/libexec/unshare-run/newgidmap", "-rwxr-xr-x"),
        ("/usr/libexec/unshare-run/getsubids", "-rwxr-xr-x"),
        (
            "/usr/share/man/man1/unshare-run-newuidmap.1.gz",
            "-rw-r--r--",
        ),
        ("/usr/share/man/man1/unshare-run-doctor.1.gz", "-rw-r--r--"),
        (
            "/usr/share/man/man1/unshare-run-getsubids.1.gz",
            "-rw-r--r--",
        ),
        (
            "/usr/share/bash-completion/completions/unshare-run",
            "-rw-r--r--",
        ),
        ("/usr/share/zsh/site-functions/_unshare-run", "-rw-r--r--"),
    ] {
        let e = entry(path);
        assert_eq!(e[0], mode, "{path}");
        assert_eq!((e[2], e[3]), ("root", "root"), "{path}");
    }
    // shadow-utils owns these on Fedora, shadow-utils-subid the getsubids program and page.
    for path in [
        "/usr/bin/newuidmap",
        "/usr/bin/newgidmap",
        "/usr/bin/getsubids",
        "/usr/share/man/man1/newuidmap.1",
        "/usr/share/man/man1/newgidmap.1",
        "/usr/share/man/man1/getsubids.1",
    ] {
        assert!(!list.contains(&format!(" {path}")), "{path} in:\n{list}");
    }
    let caps =
        String::from_utf8(run_ok(Command::new("rpm").args(["-qp", "--filecaps"]).arg(&rpm)).stdout)
            .unwrap();
    let cap_of = |path: &str| {
        caps.lines()
            .find(|l| l.starts_with(path))
            .map(|l| l[path.len()..].trim().to_string())
            .unwrap_or_default()
    };
    assert_eq!(
        cap_of("/usr/libexec/unshare-run/newuidmap"),
        "cap_setuid=ep"
    );
    assert_eq!(
        cap_of("/usr/libexec/unshare-run/newgidmap"),
        "cap_setgid=ep"
    );
    assert_eq!(cap_of("/usr/bin/unshare-run"), "");
    assert_eq!(cap_of("/usr/libexec/unshare-run/getsubids"), "");
}
