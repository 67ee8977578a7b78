//! The Debian package: built with dpkg-buildpackage (packaging/build-deb.sh), clean under lintian,
//! installed into a fresh Debian root filesystem, where a new user runs a container with the full map
//! using only the installed files, and the installed getsubids lists that user's ranges.

use std::process::Command;

use unshare_run_test_support::*;

#[test]
#[ignore = "needs root: sudo tests/run"]
fn deb_is_lintian_clean_and_works_in_a_fresh_debian() {
    require_root();
    let out = TempDir::new("deb-out");
    let deb = build_package("build-deb.sh", &out, |name| {
        name.starts_with("unshare-run_") && name.ends_with(".deb")
    });

    // lintian: no error and no warning (explained overrides are in packaging/debian).
    // Its temporary files (mldbm-elf-*) go to a directory of ours, which is removed.
    let lint_tmp = TempDir::new("lintian-tmp");
    let lint = Command::new("lintian")
        .args(["--pedantic"])
        .arg(&deb)
        .env("TMPDIR", lint_tmp.path())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&lint.stdout).into_owned();
    assert!(
        !report
            .lines()
            .any(|l| l.starts_with("E:") || l.starts_with("W:")),
        "lintian:\n{report}"
    );

    // The .deb's getsubids: a file of its own, 0755, root's (not setuid, not a link to newuidmap).
    let contents = run_ok(Command::new("dpkg-deb").arg("-c").arg(&deb));
    let contents = String::from_utf8_lossy(&contents.stdout).into_owned();
    let getsubids = contents
        .lines()
        .find(|l| l.ends_with(" ./usr/bin/getsubids"))
        .unwrap_or_else(|| panic!("no /usr/bin/getsubids in:\n{contents}"));
    assert!(
        getsubids.starts_with("-rwxr-xr-x root/root "),
        "{getsubids}"
    );

    // A fresh Debian root filesystem, extracted by root (owners as in the tarball).
    let root = TempDir::new("deb-root");
    run_ok(
        Command::new("tar")
            .args(["-xpf"])
            .arg(bookworm_tarball())
            .args(["--numeric-owner", "-C"])
            .arg(root.path()),
    );
    std::fs::copy(&deb, root.path().join("root/unshare-run.deb")).unwrap();
    // pivot_root into it in private mount and pid namespaces: unlike a chroot, this lets the new user
    // create user namespaces. Inside: install, add a user (useradd gives it ranges in this root's own
    // /etc/subuid), and run a container as that user.
    let inside = "set -e; \
        dpkg -i /root/unshare-run.deb >/dev/null; \
        useradd -m -s /bin/sh debuser; \
        su -s /bin/sh debuser -c 'unshare-run --map full --holder-idle 0 -- cat /proc/self/uid_map /proc/self/gid_map'; \
        echo ==; stat -c '%a %U' /usr/bin/getsubids; \
        su -s /bin/sh debuser -c 'getsubids debuser; getsubids -g debuser'";
    let enter = format!(
        "set -e; R={root}; mount --bind $R $R; mount -t proc proc $R/proc; mount --rbind /dev $R/dev; \
         mount -t tmpfs tmpfs $R/tmp; cd $R; mkdir -p oldroot; pivot_root . oldroot; umount -l /oldroot; \
         cd /; exec /bin/sh -c \"{inside}\"",
        root = root.path().display(),
        inside = inside.replace('"', "\\\""),
    );
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--pid",
            "--fork",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            &enter,
        ])
        .output()
        .unwrap();
    out.assert_code(0);
    let stdout = out.stdout_text();
    let (maps, getsubids) = stdout.split_once("==\n").unwrap_or((&stdout, ""));
    assert_eq!(
        normalise_map(maps),
        "0 1000 1\n1 100000 65536\n0 1000 1\n1 100000 65536",
        "{}",
        out.stderr_text()
    );
    // The installed getsubids (0755, root's, no file capabilities) answers for the new user.
    assert_eq!(
        getsubids,
        "755 root\n0: debuser 100000 65536\n0: debuser 100000 65536\n",
        "{}",
        out.stderr_text()
    );
    let caps = run_ok(Command::new("getcap").arg(root.path().join("usr/bin/getsubids")));
    assert_eq!(String::from_utf8_lossy(&caps.stdout), "");
}
