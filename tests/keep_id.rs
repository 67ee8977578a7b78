//! `--map keep-id` (podman's `--userns=keep-id`): the caller's own uid and gid keep their numbers
//! inside and every subordinate id fills the rest, so files of the caller's bound in stay the
//! caller's, the command runs as the caller, and `--user 0` is root inside (a subordinate id).

use std::os::unix::fs::MetadataExt;

use unshare_run_test_support::*;

/// alice's ranges: two, as in tests/runner.rs, with another user's before them.
fn ranges() -> Sandbox {
    let a = alice();
    Sandbox::both(&[
        &format!("{}:400000:65536", bob().name),
        &format!("{}:100000:65536", a.name),
        &format!("{}:300000:1000", a.name),
    ])
}

/// `unshare-run ARGS...` as alice in `sandbox`.
fn run_in(sandbox: &Sandbox, args: &[&str]) -> std::process::Output {
    let runner = install().runner();
    let mut argv = vec![runner.as_str()];
    argv.extend_from_slice(args);
    sandbox.run_as(alice(), &argv)
}

fn as_alice(args: &[&str]) -> std::process::Output {
    run_in(&ranges(), args)
}

/// The keep-id map of `own` with alice's ranges, as the kernel lists it (without padding).
fn keep_id_map(own: u32) -> String {
    format!(
        "0 100000 {own}\n{own} {own} 1\n{} {} {}\n65537 300000 1000",
        own + 1,
        100000 + own,
        65536 - own
    )
}

/// The `(inside, outside, count)` lines of a map text.
fn lines(map: &str) -> Vec<(u64, u64, u64)> {
    map.lines()
        .map(|l| {
            let f: Vec<u64> = l.split_whitespace().map(|n| n.parse().unwrap()).collect();
            (f[0], f[1], f[2])
        })
        .collect()
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn the_callers_ids_map_to_themselves_and_every_subordinate_id_fills_the_rest() {
    require_root();
    let a = alice();
    let script = "cat /proc/self/uid_map; echo --; cat /proc/self/gid_map; echo --; id -u; id -g; \
                  cat /proc/self/setgroups";
    for map in [&["--map", "keep-id"][..], &["--userns=keep-id"]] {
        let mut args = map.to_vec();
        args.extend_from_slice(&["--", "sh", "-c", script]);
        let out = as_alice(&args);
        out.assert_code(0);
        assert_eq!(out.stderr_text(), "");
        let text = normalise_map(&out.stdout_text());
        let parts: Vec<&str> = text.split("\n--\n").collect();
        assert_eq!(parts[0], keep_id_map(a.uid), "{map:?}");
        assert_eq!(parts[1], keep_id_map(a.gid), "{map:?}");
        // The command runs as the caller; groups can still be set (subordinate gids are mapped).
        assert_eq!(parts[2], format!("{}\n{}\nallow", a.uid, a.gid), "{map:?}");
        for (map, own) in [(parts[0], a.uid), (parts[1], a.gid)] {
            let lines = lines(map);
            // The caller's id maps to itself with count 1 ...
            assert!(
                lines.contains(&(u64::from(own), u64::from(own), 1)),
                "{map}"
            );
            // ... and the subordinate ranges fill 0..own-1 and own+1.. exactly: in inside order,
            // contiguous from 0, nothing wasted.
            let mut next = 0;
            for (inside, _, count) in &lines {
                assert_eq!(*inside, next, "{map}");
                next += count;
            }
            let counts: u64 = lines.iter().map(|(_, _, count)| count).sum();
            assert_eq!(counts, 1 + 65536 + 1000, "{map}");
        }
    }
    // podman's keep-id:uid=,gid=: the caller at other numbers, and the command as them.
    let out = as_alice(&[
        "--map",
        "keep-id:uid=200,gid=210",
        "--",
        "sh",
        "-c",
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g",
    ]);
    out.assert_code(0);
    assert_eq!(
        normalise_map(&out.stdout_text()),
        format!(
            "0 100000 200\n200 {} 1\n201 100200 65336\n65537 300000 1000\n\
             0 100000 210\n210 {} 1\n211 100210 65326\n65537 300000 1000\n200\n210",
            a.uid, a.gid
        )
    );
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_directory_of_the_callers_bound_in_stays_theirs() {
    require_root();
    let a = alice();
    let root = busybox_rootfs(a);
    let work = TempDir::new("keep-id-work");
    give_to(a, work.path());
    let rootfs = root.path().to_str().unwrap();
    let bind = format!("{}:/work", work.path().display());
    // PID 1 sets the container up as root inside: its /dev and /tmp are root's, as with the full
    // map, though the command is the caller.
    let script =
        "stat -c %u:%g /work; touch /work/mine && echo made; stat -c %u:%g /dev /tmp; id -u";
    let out = as_alice(&[
        "--map", "keep-id", "--rootfs", rootfs, "--bind", &bind, "--", "sh", "-c", script,
    ]);
    out.assert_code(0);
    // Inside, the directory is the caller's, as on the host.
    assert_eq!(
        out.stdout_text(),
        format!("{}:{}\nmade\n0:0\n0:0\n{}\n", a.uid, a.gid, a.uid)
    );
    let owner = |name: &str| {
        let meta = std::fs::metadata(work.path().join(name)).unwrap();
        (meta.uid(), meta.gid())
    };
    // Made by the default user (the caller): the caller's on the host.
    assert_eq!(owner("mine"), (a.uid, a.gid));
    // Made as root inside: the first subordinate id.
    as_alice(&[
        "--map",
        "keep-id",
        "--rootfs",
        rootfs,
        "--bind",
        &bind,
        "--user",
        "0",
        "--",
        "touch",
        "/work/root-made",
    ])
    .assert_code(0);
    assert_eq!(owner("root-made"), (100000, 100000));
    // A terminal of the container's own, opened by PID 1 as root inside, is the command's.
    let out = as_alice(&[
        "--map",
        "keep-id",
        "--rootfs",
        rootfs,
        "-t",
        "--",
        "sh",
        "-c",
        "tty; stat -c %u $(tty)",
    ]);
    out.assert_code(0);
    assert_eq!(
        out.stdout_text().replace('\r', ""),
        format!("/dev/pts/0\n{}\n", a.uid)
    );
    // The same in host mode, on the caller's files where they are.
    let host_file = work.path().join("host-mode");
    let host_file = host_file.to_str().unwrap();
    as_alice(&["--map", "keep-id", "--", "touch", host_file]).assert_code(0);
    assert_eq!(owner("host-mode"), (a.uid, a.gid));
    let out = as_alice(&["--map", "keep-id", "--", "stat", "-c", "%u", host_file]);
    assert_eq!(out.stdout_text(), format!("{}\n", a.uid));
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn too_few_subordinate_ids_for_the_callers_uid_is_exit_125_and_no_fallback() {
    require_root();
    let a = alice();
    let few = Sandbox::both(&[&format!("{}:100000:500", a.name)]);
    let out = run_in(&few, &["--map", "keep-id", "--", "true"]);
    out.assert_code(125)
        .assert_stderr_contains(&format!(
            "cannot set up the keep-id map: keep-id needs {0} subordinate uids to fill the inside \
             uids 0 to {1} below yours ({0}), and {2} has 500 in /etc/subuid",
            a.uid,
            a.uid - 1,
            a.name
        ))
        .assert_stderr_contains(&format!(
            "usermod --add-subuids START-END {}  (a free range of {} ids or more)",
            a.name,
            a.uid - 500
        ));
    // Without ranges keep-id fails as --map full does; auto (the default) never picks keep-id and
    // still falls back with its warning.
    let none = Sandbox::new(Fixture::Missing, Fixture::Missing);
    run_in(&none, &["--map", "keep-id", "--", "true"])
        .assert_code(125)
        .assert_stderr_contains("cannot set up the keep-id map")
        .assert_stderr_contains("has no subordinate ranges in /etc/subuid");
    let out = run_in(&few, &["--", "cat", "/proc/self/uid_map"]);
    out.assert_code(0);
    assert_eq!(
        normalise_map(&out.stdout_text()),
        format!("0 {} 1\n1 100000 500", a.uid)
    );
}

/// PID 1 becomes root inside to set the container up, and the kernel forgets a process's
/// parent-death signal when its ids change: it must set it again, or it would outlive a killed
/// unshare-run (and keep the command running).
#[test]
#[ignore = "needs root: sudo tests/run"]
fn sigkill_of_unshare_run_kills_a_keep_id_container() {
    require_root();
    let dir = TempDir::new("keep-id-sigkill");
    let root = busybox_rootfs(alice());
    let rootfs = root.path().to_str().unwrap();
    let script = "echo ready; exec sleep 4252";
    for rootfs in [&["--rootfs", rootfs][..], &[]] {
        let mut args = vec!["--map", "keep-id"];
        args.extend_from_slice(rootfs);
        args.extend_from_slice(&["--", "sh", "-c", script]);
        let (mut child, _out) = start_runner(&ranges(), &args, &dir);
        assert!(wait_for(std::time::Duration::from_secs(5), || {
            processes_of(alice(), "sleep 4252")
        }));
        child.0.kill().unwrap();
        child.0.wait().unwrap();
        assert!(
            wait_for(std::time::Duration::from_secs(1), || !processes_of(
                alice(),
                "sleep 4252"
            )),
            "the keep-id container survived SIGKILL of unshare-run ({rootfs:?})"
        );
    }
}

/// What `busybox_rootfs` has in /etc/passwd: root, user (1000) and nobody, not alice.
fn passwd_of(root: &TempDir) -> String {
    std::fs::read_to_string(root.path().join("etc/passwd")).unwrap()
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_root_filesystem_without_the_caller_shows_an_entry_for_them_and_stays_unchanged() {
    require_root();
    let a = alice();
    let root = busybox_rootfs(a);
    let rootfs = root.path().to_str().unwrap();
    let before = passwd_of(&root);
    assert!(!before.contains(a.name));
    // The caller's name, group and home (a tmpfs of its own where the image has none), the host's
    // shell where the image has it; the files are bound read-only.
    let script = "id -un; id -gn; echo $HOME; stat -c %u:%g:%a $HOME; touch $HOME/.history && \
                  echo home-writable; grep \"^$(id -un):\" /etc/passwd; echo x >> /etc/passwd || \
                  echo read-only";
    let out = as_alice(&[
        "--map", "keep-id", "--rootfs", rootfs, "--", "sh", "-c", script,
    ]);
    out.assert_code(0);
    assert_eq!(
        out.stdout_text(),
        format!(
            "{name}\n{name}\n/home/{name}\n{uid}:{gid}:700\nhome-writable\n\
             {name}:x:{uid}:{gid}::/home/{name}:/bin/sh\nread-only\n",
            name = a.name,
            uid = a.uid,
            gid = a.gid
        )
    );
    // The single-id map that keeps the uid gets the same entry.
    let out = as_alice(&["--map", "current", "--rootfs", rootfs, "--", "id", "-un"]);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), format!("{}\n", a.name));
    // Nothing was written into the root filesystem's files.
    assert_eq!(passwd_of(&root), before);
    assert!(
        !std::fs::read_to_string(root.path().join("etc/group"))
            .unwrap()
            .contains(a.name)
    );
    // As root inside the image's own files are used, untouched and writable (useradd renames over
    // /etc/passwd, which a file bound there would refuse).
    let out = as_alice(&[
        "--map",
        "keep-id",
        "--rootfs",
        rootfs,
        "--user",
        "0",
        "--ephemeral",
        "--",
        "sh",
        "-c",
        "cat /etc/passwd; echo $HOME; mv /etc/passwd /etc/passwd.old && echo renamed",
    ]);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), format!("{before}/root\nrenamed\n"));
    // A user the image has at the caller's uid is the image's (here added in an overlay, which is
    // what the container sees): nothing is added.
    let overlay = user_dir(a, "keep-id-overlay");
    let overlay_dir = overlay.path().to_str().unwrap();
    let line = format!("builder:x:{}:{}::/data:/bin/sh", a.uid, a.gid);
    as_alice(&[
        "--map",
        "keep-id",
        "--rootfs",
        rootfs,
        "--overlay",
        overlay_dir,
        "--user",
        "0",
        "--",
        "sh",
        "-c",
        &format!("echo {line} >> /etc/passwd"),
    ])
    .assert_code(0);
    let out = as_alice(&[
        "--map",
        "keep-id",
        "--rootfs",
        rootfs,
        "--overlay",
        overlay_dir,
        "--",
        "sh",
        "-c",
        "id -un; echo $HOME; grep -c :x: /etc/passwd",
    ]);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "builder\n/data\n4\n");
    assert_eq!(passwd_of(&root), before);
}

/// The acceptance with a real distribution: a Debian bookworm extracted under keep-id (as root
/// inside, who owns its files then), which has no user for the caller.
#[test]
#[ignore = "needs root: sudo tests/run"]
fn debian_under_keep_id_knows_the_caller_and_apt_works_as_root_inside() {
    require_root();
    let a = alice();
    let dir = TempDir::new("keep-id-debian");
    let (tar, rootfs) = extract_bookworm_with(a, &["--map", "keep-id", "--user", "0"], &dir);
    tar.assert_code(0);
    assert!(
        !tar.stderr_text().contains("Cannot change ownership"),
        "{}",
        tar.stderr_text()
    );
    let work = user_dir(a, "keep-id-debian-work");
    std::fs::write(work.path().join("notes"), "mine\n").unwrap();
    give_to(a, &work.path().join("notes"));
    let bind = format!("{}:/work", work.path().display());
    let run = |options: &[&str], script: &str| {
        let mut args = vec!["--map", "keep-id", "--rootfs", &rootfs, "--bind", &bind];
        args.extend_from_slice(options);
        args.extend_from_slice(&["--", "sh", "-c", script]);
        as_alice(&args)
    };
    let out = run(
        &[],
        "whoami; id; echo $HOME; test -d $HOME && echo home; stat -c %U:%G / /usr/bin/su; \
         ls -l /work/notes | cut -d' ' -f3,4",
    );
    out.assert_code(0);
    assert_eq!(
        out.stdout_text(),
        format!(
            "{name}\nuid={uid}({name}) gid={gid}({name}) groups={gid}({name})\n/home/{name}\nhome\n\
             root:root\nroot:root\n{name} {name}\n",
            name = a.name,
            uid = a.uid,
            gid = a.gid
        )
    );
    let out = run(
        &["--user", "0"],
        "apt-get update -q && apt-get install -y -q hello && useradd -m keep-id-test && id -un keep-id-test",
    );
    out.assert_code(0);
    assert!(
        out.stdout_text().ends_with("keep-id-test\n"),
        "{}",
        out.stdout_text()
    );
    let out = run(&[], "hello && touch /work/made-inside");
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "Hello, world!\n");
    let made = std::fs::metadata(work.path().join("made-inside")).unwrap();
    assert_eq!((made.uid(), made.gid()), (a.uid, a.gid));
    // The image's passwd has the user useradd added, never the caller.
    let passwd = std::fs::read_to_string(format!("{rootfs}/etc/passwd")).unwrap();
    assert!(
        passwd.contains("keep-id-test:") && !passwd.contains(a.name),
        "{passwd}"
    );
}

/// The full map and keep-id give an image's files different host ids (root inside is the caller
/// with one, the first subordinate id with the other): a stored image remembers which, and runs only
/// with that map.
#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_stored_image_runs_with_the_map_it_was_imported_for() {
    require_root();
    let a = alice();
    let root = busybox_rootfs(a);
    let files = TempDir::new("keep-id-image");
    let tarball = files.path().join("busybox.tar");
    run_ok(
        std::process::Command::new("tar")
            .args(["--owner=0", "--group=0", "--numeric-owner", "-cf"])
            .arg(&tarball)
            .arg("-C")
            .arg(root.path())
            .arg("."),
    );
    let tarball = tarball.to_str().unwrap();
    let store = user_dir(a, "keep-id-store");
    let mut sandbox = ranges();
    sandbox.env.push((
        "XDG_DATA_HOME".into(),
        store.path().to_str().unwrap().into(),
    ));
    let run = |args: &[&str]| run_in(&sandbox, args);
    // Imported under keep-id, as root inside: root's files are the first subordinate id's.
    run(&[
        "images", "import", "--map", "keep-id", tarball, "--name", "kept",
    ])
    .assert_code(0);
    let out = run(&[
        "--map",
        "keep-id",
        "--rootfs",
        "kept",
        "--",
        "sh",
        "-c",
        "stat -c %u:%g / /bin/busybox; id -un",
    ]);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), format!("0:0\n0:0\n{}\n", a.name));
    let images = store.path().join("unshare-run/images");
    let image = std::fs::read_dir(&images)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let meta = std::fs::metadata(image.join("rootfs/bin/busybox")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (100000, 100000));
    let listing = run(&["images"]);
    assert!(
        listing
            .stdout_text()
            .contains(&format!("{tarball} (tarball, keep-id)")),
        "{}",
        listing.stdout_text()
    );
    // By name or as the same file again: the full map refuses it and says what to do.
    for rootfs in ["kept", tarball] {
        run(&["--rootfs", rootfs, "--", "true"])
            .assert_code(125)
            .assert_stderr_contains(&format!(
                "image kept was imported under --map keep-id, with you as {}:{} inside, and this \
                 run is with you as uid 0 inside (the full map)",
                a.uid, a.gid
            ))
            .assert_stderr_contains(&format!(
                "unshare-run images rm kept, then unshare-run images import --map full {tarball} \
                 --name kept"
            ));
    }
    run(&["--map", "keep-id", "--rootfs", "kept", "--", "true"]).assert_code(0);
    // Removed (by the full map, which maps every id keep-id does) and imported for the full map.
    run(&["images", "rm", "kept"]).assert_code(0);
    assert_eq!(std::fs::read_dir(&images).unwrap().count(), 0);
    run(&["images", "import", tarball, "--name", "plain"]).assert_code(0);
    let out = run(&["--rootfs", "plain", "--", "stat", "-c", "%u:%g", "/"]);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "0:0\n");
    run(&["--map", "keep-id", "--rootfs", "plain", "--", "true"])
        .assert_code(125)
        .assert_stderr_contains("image plain was imported with you as uid 0 inside (the full map)");
}
