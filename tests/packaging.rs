//! packaging/stage.sh, the one file list both packages use: layouts, owners and modes; and a container
//! started from a staged RPM layout finds its helpers in /usr/libexec/unshare-run.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use unshare_run_test_support::*;

fn stage(layout: &str, dest: &Path) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/stage.sh");
    run_ok(
        Command::new(script)
            .arg(layout)
            .arg(dest)
            .arg(built_binary()),
    );
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// `shadow_pages`: the prefix of the pages of the applets that shadow's packages also have ("" in the
/// Debian layout, which replaces uidmap; "unshare-run-" in the RPM layout, beside shadow-utils).
fn assert_docs(root: &Path, zsh_dir: &str, shadow_pages: &str) {
    for file in [
        "usr/share/man/man1/unshare-run.1.gz",
        "usr/share/man/man1/unshare-run-images.1.gz",
        "usr/share/man/man1/unshare-run-doctor.1.gz",
        "usr/share/man/man1/unshare-run-login.1.gz",
        "usr/share/man/man1/unshare-run-logout.1.gz",
        "usr/share/man/man1/unshare-run-ps.1.gz",
        "usr/share/man/man1/unshare-run-rm.1.gz",
        "usr/share/man/man1/unshare-run-exec.1.gz",
        "usr/share/man/man1/unshare-run-logs.1.gz",
        "usr/share/man/man1/unshare-run-stop.1.gz",
        "usr/share/man/man1/unshare-run-kill.1.gz",
        "usr/share/man/man1/unshare-run-start.1.gz",
        &format!("usr/share/man/man1/{shadow_pages}newuidmap.1.gz"),
        &format!("usr/share/man/man1/{shadow_pages}newgidmap.1.gz"),
        &format!("usr/share/man/man1/{shadow_pages}getsubids.1.gz"),
        "usr/share/bash-completion/completions/unshare-run",
        &format!("usr/share/zsh/{zsh_dir}/_unshare-run"),
        "usr/share/fish/vendor_completions.d/unshare-run.fish",
    ] {
        assert_eq!(mode(&root.join(file)), 0o644, "{file}");
    }
}

/// getsubids is an ordinary executable of its own: a regular file (not a link, hard or symbolic, to the
/// setuid helper), root's, mode 0755, no file capabilities; and it answers as getsubids.
fn assert_plain_getsubids(path: &Path) {
    let meta = std::fs::symlink_metadata(path).unwrap();
    assert!(meta.file_type().is_file(), "{path:?} is not a regular file");
    assert_eq!(meta.mode() & 0o7777, 0o755, "{path:?}");
    assert_eq!(meta.uid(), 0, "{path:?}");
    assert_eq!(meta.nlink(), 1, "{path:?} has other names");
    let caps = run_ok(Command::new("getcap").arg(path));
    assert_eq!(String::from_utf8_lossy(&caps.stdout), "", "{path:?}");
    let a = alice();
    let out = Sandbox::both(&[&format!("{}:100000:65536", a.name)])
        .run_as(a, &[path.to_str().unwrap(), a.name]);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), format!("0: {} 100000 65536\n", a.name));
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn debian_layout() {
    require_root();
    let dir = TempDir::new("stage-debian");
    stage("debian", dir.path());
    let bin = dir.path().join("usr/bin");
    assert_eq!(mode(&bin.join("unshare-run")), 0o755);
    assert_eq!(mode(&bin.join("newuidmap")), 0o4755);
    assert_eq!(std::fs::metadata(bin.join("newuidmap")).unwrap().uid(), 0);
    assert_eq!(
        std::fs::read_link(bin.join("newgidmap")).unwrap(),
        Path::new("newuidmap")
    );
    assert!(!dir.path().join("usr/libexec").exists());
    assert_eq!(mode(&dir.path().join("etc/apparmor.d/unshare-run")), 0o644);
    assert_docs(dir.path(), "vendor-completions", "");
    for d in ["usr", "usr/bin"] {
        std::fs::set_permissions(dir.path().join(d), std::fs::Permissions::from_mode(0o755))
            .unwrap();
    }
    assert_plain_getsubids(&bin.join("getsubids"));
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn rpm_layout_runs_a_full_map_container() {
    require_root();
    let dir = TempDir::new("stage-rpm");
    stage("rpm", dir.path());
    let libexec = dir.path().join("usr/libexec/unshare-run");
    for helper in ["newuidmap", "newgidmap"] {
        let path = libexec.join(helper);
        assert!(
            !std::fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_symlink(),
            "{helper}"
        );
        assert_eq!(mode(&path), 0o755, "{helper}");
    }
    assert!(!dir.path().join("usr/bin/newuidmap").exists());
    // shadow-utils owns the helpers' pages on Fedora, shadow-utils-subid /usr/bin/getsubids and its page.
    assert!(!dir.path().join("usr/bin/getsubids").exists());
    for page in ["newuidmap", "newgidmap", "getsubids"] {
        let path = format!("usr/share/man/man1/{page}.1.gz");
        assert!(!dir.path().join(&path).exists(), "{path}");
    }
    assert_docs(dir.path(), "site-functions", "unshare-run-");
    // What the spec's %caps(cap_setuid=ep) / %caps(cap_setgid=ep) do at install time.
    run_ok(
        Command::new("setcap")
            .arg("cap_setuid=ep")
            .arg(libexec.join("newuidmap")),
    );
    run_ok(
        Command::new("setcap")
            .arg("cap_setgid=ep")
            .arg(libexec.join("newgidmap")),
    );
    for d in ["usr", "usr/bin", "usr/libexec", "usr/libexec/unshare-run"] {
        std::fs::set_permissions(dir.path().join(d), std::fs::Permissions::from_mode(0o755))
            .unwrap();
    }
    assert_plain_getsubids(&libexec.join("getsubids"));
    let a = alice();
    let runner = dir.path().join("usr/bin/unshare-run");
    let out = Sandbox::both(&[&format!("{}:100000:65536", a.name)]).run_as(
        a,
        &[
            runner.to_str().unwrap(),
            "--map",
            "full",
            "--",
            "cat",
            "/proc/self/uid_map",
        ],
    );
    out.assert_code(0);
    assert_eq!(
        normalise_map(&out.stdout_text()),
        format!("0 {} 1\n1 100000 65536", a.uid)
    );
}
