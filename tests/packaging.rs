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

fn assert_docs(root: &Path, zsh_dir: &str) {
    for file in [
        "usr/share/man/man1/unshare-run.1.gz",
        "usr/share/man/man1/unshare-run-images.1.gz",
        "usr/share/man/man1/newuidmap.1.gz",
        "usr/share/man/man1/newgidmap.1.gz",
        "usr/share/bash-completion/completions/unshare-run",
        &format!("usr/share/zsh/{zsh_dir}/_unshare-run"),
        "usr/share/fish/vendor_completions.d/unshare-run.fish",
    ] {
        assert_eq!(mode(&root.join(file)), 0o644, "{file}");
    }
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
    assert_docs(dir.path(), "vendor-completions");
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
    assert_docs(dir.path(), "site-functions");
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
