//! Acceptance with a real distribution: a Debian bookworm minbase root filesystem (debootstrap, cached
//! between runs) is extracted by the test user through unshare-run, and apt, su and dpkg work in it
//! with the full map, and fail with a single-id map in the ways DESIGN.md section 5 describes.
//! Needs the Debian mirror (apt sources of this machine) and root for debootstrap.

use unshare_run_test_support::*;

fn ranges_for(user: &TestUser) -> Sandbox {
    Sandbox::both(&[&format!("{}:100000:65536", user.name)])
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn apt_su_and_dpkg_work_in_a_debian_rootfs() {
    require_root();
    let a = alice();
    let dir = TempDir::new("debian");
    let (tar, rootfs) = extract_bookworm(a, "auto", &dir);
    tar.assert_code(0);
    assert!(
        !tar.stderr_text().contains("Cannot change ownership"),
        "{}",
        tar.stderr_text()
    );
    let run = |script: &str| {
        ranges_for(a).run_as(
            a,
            &[
                &install().runner(),
                "--rootfs",
                &rootfs,
                "--",
                "sh",
                "-c",
                script,
            ],
        )
    };

    let out = run("apt-get update -q && apt-get install -y -q hello && hello");
    out.assert_code(0);
    assert!(
        out.stdout_text().ends_with("Hello, world!\n"),
        "{}",
        out.stdout_text()
    );

    let out = run("su -s /bin/sh nobody -c id");
    out.assert_code(0);
    assert!(
        out.stdout_text()
            .starts_with("uid=65534(nobody) gid=65534(nogroup)"),
        "{}",
        out.stdout_text()
    );

    run("apt-get install -y -q --reinstall passwd").assert_code(0);
    // Files kept their owners: _apt's lists directory, set up by apt itself.
    let out = run("stat -c %U /var/lib/apt/lists/partial");
    assert_eq!(out.stdout_text(), "_apt\n");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_single_id_map_breaks_tar_and_apt() {
    require_root();
    let a = alice();
    let dir = TempDir::new("debian-single");
    // tar cannot give files to any id but 0.
    let (tar, _) = extract_bookworm(a, "root", &dir);
    assert_ne!(tar.code(), 0);
    assert!(
        tar.stderr_text()
            .contains("Cannot change ownership to uid 0, gid 42: Invalid argument"),
        "{}",
        tar.stderr_text()
    );
    // apt, in a tree extracted with the full map, cannot drop to _apt.
    let full = TempDir::new("debian-full");
    let (tar, rootfs) = extract_bookworm(a, "auto", &full);
    tar.assert_code(0);
    let out = ranges_for(a).run_as(
        a,
        &[
            &install().runner(),
            "--map",
            "root",
            "--rootfs",
            &rootfs,
            "--",
            "apt-get",
            "update",
        ],
    );
    assert_ne!(out.code(), 0);
    let all = out.stdout_text() + &out.stderr_text();
    assert!(
        all.contains("setgroups 65534 failed") || all.contains("seteuid 42 failed"),
        "apt did not fail the documented way:\n{all}"
    );
}
