//! Root filesystem images (issue "Root filesystem images"): tarballs compressed or not, OCI and Docker
//! archives and layouts imported once into the test user's store, --ephemeral and --overlay, the
//! `images` command, crafted archives that try to write outside the store, and a killed import.
//! The test user has the full map; each test has its own store (XDG_DATA_HOME).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use unshare_run_test_support::*;

const APT_HELLO: &str = "apt-get update -q && apt-get install -y -q hello && hello";

/// A store of alice's and the sandbox that uses it.
struct Store {
    dir: TempDir,
    sandbox: Sandbox,
}

impl Store {
    fn new() -> Store {
        let dir = user_dir(alice(), "store");
        let mut sandbox = Sandbox::both(&[&format!("{}:100000:65536", alice().name)]);
        sandbox
            .env
            .push(("XDG_DATA_HOME".into(), dir.path().to_str().unwrap().into()));
        // A name that is not stored is then tried as a registry's (docker.io's): blocked here, so
        // that no test sends anything off the machine.
        let config = dir.path().join("config");
        fs::create_dir_all(config.join("containers")).unwrap();
        fs::write(
            config.join("containers/registries.conf"),
            "unqualified-search-registries = []\n[[registry]]\nlocation = \"docker.io\"\nblocked = true\n",
        )
        .unwrap();
        for path in [config.clone(), config.join("containers")] {
            give_to(alice(), &path);
        }
        sandbox
            .env
            .push(("XDG_CONFIG_HOME".into(), config.to_str().unwrap().into()));
        Store { dir, sandbox }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("unshare-run")
    }

    fn run(&self, args: &[&str]) -> Output {
        let runner = install().runner();
        let mut argv = vec![runner.as_str()];
        argv.extend_from_slice(args);
        self.sandbox.run_as(alice(), &argv)
    }

    /// The digests in images/.
    fn images(&self) -> Vec<String> {
        let mut found: Vec<String> = fs::read_dir(self.root().join("images"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        found
    }

    /// The only stored image's root filesystem.
    fn only_rootfs(&self) -> PathBuf {
        let images = self.images();
        assert_eq!(images.len(), 1, "{images:?}");
        self.root().join("images").join(&images[0]).join("rootfs")
    }

    /// Exactly one image is stored and nothing is left in tmp/.
    fn assert_one_image_and_nothing_left(&self) {
        assert_eq!(self.images().len(), 1, "{:?}", self.images());
        assert!(self.temporary().is_empty(), "{:?}", self.temporary());
    }

    /// What tmp/ holds (nothing once imports are over).
    fn temporary(&self) -> Vec<String> {
        fs::read_dir(self.root().join("tmp"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn text(out: &Output) -> String {
    format!("{}{}", out.stdout_text(), out.stderr_text())
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_tarball_is_imported_once_and_runs_apt() {
    require_root();
    let store = Store::new();
    let tarball = bookworm_tarball();
    let tarball = tarball.to_str().unwrap();
    let out = store.run(&["--rootfs", tarball, "--", "sh", "-c", APT_HELLO]);
    out.assert_code(0);
    assert!(
        out.stdout_text().ends_with("Hello, world!\n"),
        "{}",
        text(&out)
    );
    // Owners and set-id bits survived the import: root inside is alice outside, and shadow's group
    // 42 is 100041 (inside 1.. are 100000..).
    let rootfs = store.only_rootfs();
    let passwd = fs::metadata(rootfs.join("usr/bin/passwd")).unwrap();
    assert_eq!(
        (passwd.uid(), passwd.mode() & 0o7777),
        (alice().uid, 0o4755)
    );
    assert_eq!(
        fs::metadata(rootfs.join("etc/shadow")).unwrap().gid(),
        100_041
    );
    let expiry = fs::metadata(rootfs.join("usr/bin/expiry")).unwrap();
    assert_eq!((expiry.gid(), expiry.mode() & 0o7777), (100_041, 0o2755));

    // The second run uses the stored image (hello is still installed) without importing again.
    let image_dir = rootfs.parent().unwrap().to_path_buf();
    let inode = fs::metadata(&image_dir).unwrap().ino();
    let out = store.run(&["--rootfs", tarball, "--", "hello"]);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "Hello, world!\n");
    assert_eq!(fs::metadata(&image_dir).unwrap().ino(), inode);
    store.assert_one_image_and_nothing_left();
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn ephemeral_runs_leave_the_stored_image_unchanged() {
    require_root();
    let store = Store::new();
    let tarball = bookworm_tarball_compressed("zstd");
    let tarball = tarball.to_str().unwrap();
    let out = store.run(&[
        "--rootfs",
        tarball,
        "--ephemeral",
        "--",
        "sh",
        "-c",
        APT_HELLO,
    ]);
    out.assert_code(0);
    assert!(
        out.stdout_text().ends_with("Hello, world!\n"),
        "{}",
        text(&out)
    );
    assert!(!store.only_rootfs().join("usr/bin/hello").exists());
    let out = store.run(&[
        "--rootfs",
        tarball,
        "--",
        "sh",
        "-c",
        "test -e /usr/bin/hello",
    ]);
    out.assert_code(1);
    let record = fs::read_to_string(store.only_rootfs().with_file_name("image.json")).unwrap();
    assert!(record.contains("tarball (zstd)"), "{record}");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn an_overlay_directory_keeps_the_writes_for_later_runs() {
    require_root();
    let store = Store::new();
    let overlay = user_dir(alice(), "overlay");
    let overlay_arg = overlay.path().to_str().unwrap();
    let tarball = bookworm_tarball_compressed("xz");
    let tarball = tarball.to_str().unwrap();
    let out = store.run(&[
        "--rootfs",
        tarball,
        "--overlay",
        overlay_arg,
        "--",
        "sh",
        "-c",
        APT_HELLO,
    ]);
    out.assert_code(0);
    assert!(
        out.stdout_text().ends_with("Hello, world!\n"),
        "{}",
        text(&out)
    );
    assert!(overlay.path().join("upper/usr/bin/hello").exists());
    assert!(!store.only_rootfs().join("usr/bin/hello").exists());
    let out = store.run(&["--rootfs", tarball, "--overlay", overlay_arg, "--", "hello"]);
    out.assert_code(0);
    let out = store.run(&[
        "--rootfs",
        tarball,
        "--",
        "sh",
        "-c",
        "test -e /usr/bin/hello",
    ]);
    out.assert_code(1);
}

/// An image made offline from the bookworm tarball: a second layer deletes /etc/motd, replaces
/// /var/cache/apt (an opaque directory) and adds /opt/added; its config sets Env, WorkingDir and Cmd.
/// Saved as an OCI archive, a Docker archive and an OCI layout directory.
struct BuiltImage {
    dir: TempDir,
}

impl BuiltImage {
    fn build() -> BuiltImage {
        let dir = TempDir::new("oci");
        let d = dir.path().display();
        let tag = format!("localhost/urt-layered-{}", std::process::id());
        let base = format!("{tag}-base");
        let script = format!(
            "set -e\n\
             podman import -q {tarball} {base} >/dev/null\n\
             ctr=$(buildah from -q {base})\n\
             mnt=$(buildah mount $ctr)\n\
             rm $mnt/etc/motd\n\
             rm -rf $mnt/var/cache/apt && mkdir $mnt/var/cache/apt && echo new > $mnt/var/cache/apt/new\n\
             echo added > $mnt/opt/added\n\
             buildah umount $ctr >/dev/null\n\
             buildah config --env URT_LAYERED=yes --workingdir /opt --user daemon --cmd '[\"sh\",\"-c\",\"echo from-cmd\"]' $ctr\n\
             buildah commit -q $ctr {tag} >/dev/null\n\
             buildah rm $ctr >/dev/null\n\
             podman save -q --format oci-archive -o {d}/image.oci.tar {tag}\n\
             podman save -q --format docker-archive -o {d}/image.docker.tar {tag}\n\
             podman save -q --format oci-dir -o {d}/layout {tag}\n\
             podman rmi -f {tag} {base} >/dev/null\n\
             chmod -R a+rX {d}\n",
            tarball = bookworm_tarball().display(),
        );
        run_ok(Command::new("sh").args(["-c", &script]));
        BuiltImage { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn oci_and_docker_images_apply_their_layers_and_config() {
    require_root();
    let image = BuiltImage::build();
    let check = "pwd; echo $URT_LAYERED; test ! -e /etc/motd && echo motd-gone; ls /var/cache/apt; \
                 cat /opt/added; test -x /usr/bin/apt-get && echo base-layer; id -u; id -g";
    for (file, kind) in [
        ("image.oci.tar", "OCI image"),
        ("image.docker.tar", "Docker image"),
        ("layout", "OCI layout"),
    ] {
        let store = Store::new();
        let out = store.run(&["--rootfs", &image.path(file), "--", "sh", "-c", check]);
        out.assert_code(0);
        assert_eq!(
            out.stdout_text(),
            // User "daemon": uid and gid 1 from the image's own /etc/passwd.
            "/opt\nyes\nmotd-gone\nnew\nadded\nbase-layer\n1\n1\n",
            "{file}: {}",
            out.stderr_text()
        );
        // Without a command: the image's Cmd.
        let out = store.run(&["--rootfs", &image.path(file)]);
        out.assert_code(0);
        assert_eq!(out.stdout_text(), "from-cmd\n", "{file}");
        // --env and --workdir override the image's.
        let out = store.run(&[
            "--rootfs",
            &image.path(file),
            "-e",
            "URT_LAYERED=no",
            "-w",
            "/tmp",
            "--user",
            "0",
            "--",
            "sh",
            "-c",
            "pwd; echo $URT_LAYERED; id -u",
        ]);
        assert_eq!(out.stdout_text(), "/tmp\nno\n0\n", "{file}");
        let listing = store.run(&["images"]);
        assert!(
            listing.stdout_text().contains(kind),
            "{}",
            listing.stdout_text()
        );
    }
}

/// A tar stream built entry by entry, for archives no tar tool would write.
mod raw {
    pub struct Entry<'a> {
        pub name: &'a str,
        pub kind: u8,
        pub link: &'a str,
        pub data: &'a [u8],
        pub uid: u32,
    }

    impl Entry<'_> {
        pub fn owned_by(self, uid: u32) -> Self {
            Entry { uid, ..self }
        }
    }

    fn entry<'a>(name: &'a str, kind: u8, link: &'a str, data: &'a [u8]) -> Entry<'a> {
        Entry {
            name,
            kind,
            link,
            data,
            uid: 0,
        }
    }
    pub fn file<'a>(name: &'a str, data: &'a [u8]) -> Entry<'a> {
        entry(name, b'0', "", data)
    }
    pub fn symlink<'a>(name: &'a str, target: &'a str) -> Entry<'a> {
        entry(name, b'2', target, b"")
    }
    pub fn hard_link<'a>(name: &'a str, target: &'a str) -> Entry<'a> {
        entry(name, b'1', target, b"")
    }
    pub fn char_device(name: &str) -> Entry<'_> {
        entry(name, b'3', "", b"")
    }

    fn octal(field: &mut [u8], value: u64) {
        let text = format!("{:0width$o}\0", value, width = field.len() - 1);
        field.copy_from_slice(text.as_bytes());
    }

    pub fn archive(entries: &[Entry<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for e in entries {
            let mut h = [0u8; 512];
            h[..e.name.len()].copy_from_slice(e.name.as_bytes());
            octal(&mut h[100..108], if e.kind == b'2' { 0o777 } else { 0o644 });
            octal(&mut h[108..116], u64::from(e.uid));
            octal(&mut h[116..124], 0);
            octal(&mut h[124..136], e.data.len() as u64);
            octal(&mut h[136..148], 1_600_000_000);
            h[156] = e.kind;
            h[157..157 + e.link.len()].copy_from_slice(e.link.as_bytes());
            h[257..263].copy_from_slice(b"ustar\0");
            h[263..265].copy_from_slice(b"00");
            h[148..156].copy_from_slice(b"        ");
            let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
            octal(&mut h[148..155], u64::from(sum));
            out.extend_from_slice(&h);
            out.extend_from_slice(e.data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.resize(out.len() + 1024, 0);
        out
    }
}

/// An OCI layout directory holding one layer.
fn oci_layout(dir: &Path, layer: &[u8]) {
    use sha2::{Digest, Sha256};
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let blob = |content: &[u8]| {
        let hex: String = Sha256::digest(content)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        fs::write(blobs.join(&hex), content).unwrap();
        format!("sha256:{hex}")
    };
    let config = blob(br#"{"config":{}}"#);
    let layer = blob(layer);
    let manifest = blob(
        format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{config}","size":1}},"layers":[{{"digest":"{layer}","size":1}}]}}"#
        )
        .as_bytes(),
    );
    fs::write(
        dir.join("index.json"),
        format!(r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest}"}}]}}"#),
    )
    .unwrap();
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn crafted_archives_fail_and_write_nothing_outside_the_store() {
    require_root();
    use raw::*;
    let work = user_dir(alice(), "crafted");
    // What the archives aim at: a directory of alice's next to the store.
    let victim = work.path().join("victim");
    fs::create_dir(&victim).unwrap();
    fs::write(victim.join("secret"), "untouched").unwrap();
    let chown =
        |p: &Path| std::os::unix::fs::chown(p, Some(alice().uid), Some(alice().gid)).unwrap();
    chown(&victim);
    chown(&victim.join("secret"));
    let v = victim.to_str().unwrap();
    let secret = format!("{v}/secret");
    let store = Store::new();
    let depth = "../".repeat(12);
    let climbing = format!("{depth}{}/planted", v.trim_start_matches('/'));
    let hard_climbing = format!("{depth}{}", secret.trim_start_matches('/'));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "dot-dot",
            archive(&[file("etc/", b""), file(&climbing, b"x")]),
        ),
        ("absolute", archive(&[file(&format!("{v}/planted"), b"x")])),
        (
            "symlink then write",
            archive(&[symlink("escape", v), file("escape/planted", b"x")]),
        ),
        (
            "symlink then overwrite",
            archive(&[symlink("escape", v), file("escape/secret", b"x")]),
        ),
        (
            "relative symlink then write",
            archive(&[
                symlink("up", &depth),
                file(&format!("up/{}", climbing.trim_start_matches(&depth)), b"x"),
            ]),
        ),
        (
            "hard link out (absolute)",
            archive(&[hard_link("h", &secret)]),
        ),
        (
            "hard link out (dot-dot)",
            archive(&[hard_link("h", &hard_climbing)]),
        ),
        (
            "hard link through a symlink",
            archive(&[symlink("escape", v), hard_link("h", "escape/secret")]),
        ),
    ];
    let mut inputs: Vec<(String, PathBuf)> = Vec::new();
    for (label, bytes) in cases {
        let path = work.path().join(format!("{}.tar", label.replace(' ', "-")));
        fs::write(&path, bytes).unwrap();
        inputs.push((label.to_string(), path));
    }
    for (label, layer) in [
        (
            "whiteout climbing out",
            archive(&[file(&format!("{depth}.wh.secret"), b"")]),
        ),
        (
            "whiteout through a symlink",
            archive(&[symlink("escape", v), file("escape/.wh.secret", b"")]),
        ),
        (
            "opaque through a symlink",
            archive(&[symlink("escape", v), file("escape/.wh..wh..opq", b"")]),
        ),
    ] {
        let dir = work.path().join(label.replace(' ', "-"));
        oci_layout(&dir, &layer);
        inputs.push((label.to_string(), dir));
    }
    run_ok(Command::new("chmod").args(["-R", "a+rX"]).arg(work.path()));
    for (label, input) in inputs {
        let out = store.run(&["--rootfs", input.to_str().unwrap(), "--", "true"]);
        out.assert_code(125);
        assert!(
            out.stderr_text().contains("refusing archive entry"),
            "{label}: {}",
            out.stderr_text()
        );
        let entries: Vec<_> = fs::read_dir(&victim)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(entries, ["secret"], "{label}");
        assert_eq!(
            fs::read_to_string(victim.join("secret")).unwrap(),
            "untouched",
            "{label}"
        );
        assert_eq!(
            fs::metadata(victim.join("secret")).unwrap().nlink(),
            1,
            "{label}"
        );
        assert!(store.images().is_empty(), "{label}: an image was stored");
        assert!(
            store.temporary().is_empty(),
            "{label}: {:?}",
            store.temporary()
        );
    }
    // Nothing appeared anywhere else in the scratch tree either.
    let planted = Command::new("find")
        .arg(scratch_root())
        .args(["-name", "planted"])
        .output()
        .unwrap();
    assert_eq!(planted.stdout_text(), "");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_killed_import_leaves_nothing_that_a_later_run_uses() {
    require_root();
    let store = Store::new();
    // A name of its own, so that its processes are told from other tests' (pgrep -f).
    let scratch = TempDir::new("killed");
    let tarball = scratch
        .path()
        .join(format!("killed-import-{}.tar", std::process::id()));
    std::os::unix::fs::symlink(bookworm_tarball(), &tarball).unwrap();
    let runner = install().runner();
    let argv = [
        runner.as_str(),
        "--rootfs",
        tarball.to_str().unwrap(),
        "--",
        "true",
    ];
    let mut child = store
        .sandbox
        .command_as(alice(), &argv, &scratch)
        .spawn()
        .unwrap();
    // Wait until the import is well under way, then kill unshare-run.
    let tmp = store.root().join("tmp");
    let under_way = wait_for(Duration::from_secs(60), || {
        fs::read_dir(&tmp)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.path().join("rootfs/usr/share").exists())
    });
    assert!(under_way, "the import did not start");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        wait_for(Duration::from_secs(2), || !processes_of(
            alice(),
            "killed-import-"
        )),
        "the importing process outlived unshare-run"
    );
    // The killed importer is gone for good once its lock is free (its files are closed then).
    let locks_free = || {
        store
            .temporary()
            .iter()
            .filter(|n| n.ends_with(".lock"))
            .all(|n| {
                let file = fs::File::open(store.root().join("tmp").join(n)).unwrap();
                nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).is_ok()
            })
    };
    assert!(
        wait_for(Duration::from_secs(10), locks_free),
        "the import's lock is still held"
    );
    assert!(store.images().is_empty(), "a half image was stored");
    assert!(!store.temporary().is_empty(), "the test killed nothing");
    let out = store.run(&[
        "--rootfs",
        tarball.to_str().unwrap(),
        "--",
        "cat",
        "/etc/debian_version",
    ]);
    out.assert_code(0);
    assert!(out.stdout_text().starts_with("12."), "{}", text(&out));
    store.assert_one_image_and_nothing_left();
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn images_are_named_listed_and_removed() {
    require_root();
    use raw::*;
    let work = TempDir::new("small-image");
    let small = work.path().join("small.tar");
    let busybox = busybox_rootfs(alice());
    run_ok(
        Command::new("tar")
            .args(["--numeric-owner", "--owner=0", "--group=0", "-cf"])
            .arg(&small)
            .arg("-C")
            .arg(busybox.path())
            .arg("."),
    );
    fs::set_permissions(&small, fs::Permissions::from_mode(0o644)).unwrap();
    // A second image with device nodes and a file of uid 1000.
    let with_devices = work.path().join("devices.tar");
    let bytes = archive(&[
        char_device("dev/null"),
        char_device("dev/zero"),
        file("home/data", b"mine").owned_by(1000),
    ]);
    fs::write(&with_devices, bytes).unwrap();
    fs::set_permissions(&with_devices, fs::Permissions::from_mode(0o644)).unwrap();

    let store = Store::new();
    store
        .run(&[
            "images",
            "import",
            small.to_str().unwrap(),
            "--name",
            "tiny",
        ])
        .assert_code(0);
    let out = store.run(&["--rootfs", "tiny", "--", "echo", "hi"]);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "hi\n");
    let out = store.run(&[
        "images",
        "import",
        with_devices.to_str().unwrap(),
        "--name",
        "devs",
    ]);
    out.assert_code(0);
    let stderr = out.stderr_text();
    let skipped: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("device node"))
        .collect();
    assert_eq!(
        skipped,
        ["unshare-run: skipped 2 device node(s): containers get their own /dev"]
    );
    let devs_digest = out.stdout_text().trim().to_string();
    assert_eq!(devs_digest.len(), 64, "{}", text(&out));
    let data = store
        .root()
        .join("images")
        .join(&devs_digest)
        .join("rootfs/home/data");
    // Inside 0 is alice, inside 1.. are 100000..: inside 1000 is 100999.
    assert_eq!(fs::metadata(&data).unwrap().uid(), 100_999);

    let listing = store.run(&["images"]);
    listing.assert_code(0);
    let lines: Vec<String> = listing.stdout_text().lines().map(String::from).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with("DIGEST"), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" tiny ") && l.contains("small.tar (tarball)")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&devs_digest[..12]) && l.contains(" devs ")),
        "{lines:?}"
    );

    // By name, by digest prefix.
    let by_name = store.run(&["--rootfs", "tiny", "--", "cat", "/etc/passwd"]);
    by_name.assert_code(0);
    assert!(
        by_name.stdout_text().starts_with("root:"),
        "{}",
        text(&by_name)
    );
    let tiny_line = lines.iter().find(|l| l.contains(" tiny ")).unwrap();
    let by_digest = store.run(&["--rootfs", &tiny_line[..10], "--", "cat", "/etc/passwd"]);
    assert_eq!(by_digest.stdout_text(), by_name.stdout_text());

    // An image a container runs in is not removed.
    let busy = TempDir::new("busy");
    let (running, _) = start_runner(
        &store.sandbox,
        &[
            "--rootfs",
            "tiny",
            "--",
            "sh",
            "-c",
            "echo ready; exec sleep 100",
        ],
        &busy,
    );
    let out = store.run(&["images", "rm", "tiny"]);
    out.assert_code(125);
    assert!(
        out.stderr_text()
            .contains("is in use by a running container"),
        "{}",
        text(&out)
    );
    assert_eq!(store.images().len(), 2);
    drop(running);
    // PID 1 holds the lock too (it was forked with it) until it has died with unshare-run.
    let record = store.root().join("names/tiny/image.json");
    let free = || {
        let file = fs::File::open(&record).unwrap();
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).is_ok()
    };
    assert!(
        wait_for(Duration::from_secs(2), free),
        "the container did not end"
    );

    let out = store.run(&["images", "rm", "tiny", &devs_digest[..8]]);
    out.assert_code(0);
    assert!(out.stdout_text().contains("(tiny)"), "{}", text(&out));
    assert!(store.images().is_empty(), "{:?}", store.images());
    assert!(store.temporary().is_empty(), "{:?}", store.temporary());
    let out = store.run(&["--rootfs", "tiny", "--", "true"]);
    out.assert_code(125);
    assert!(
        out.stderr_text()
            .contains("no such file, directory or stored image"),
        "{}",
        text(&out)
    );
    let out = store.run(&["images", "rm", "tiny"]);
    out.assert_code(125);
    assert!(
        out.stderr_text().contains("no stored image `tiny`"),
        "{}",
        text(&out)
    );
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn progress_is_shown_on_a_terminal_only() {
    require_root();
    let tarball = bookworm_tarball_compressed("zstd");
    let runner = install().runner();
    let command = format!("{runner} --rootfs {} -- true", tarball.display());
    let store = Store::new();
    let out = store
        .sandbox
        .run_as(alice(), &["script", "-qec", &command, "/dev/null"]);
    out.assert_code(0);
    let shown = out.stdout_text();
    assert!(
        shown.contains("importing bookworm-minbase.tar.zst [")
            && shown.contains("MiB/s")
            && shown.contains(" left"),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("[{}]", "#".repeat(24))),
        "the finished bar: {shown}"
    );
    let quiet = Store::new();
    let out = quiet.run(&["--rootfs", tarball.to_str().unwrap(), "--", "true"]);
    out.assert_code(0);
    assert_eq!(out.stderr_text(), "");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn files_that_are_not_root_filesystems_are_refused_clearly() {
    require_root();
    let work = TempDir::new("not-images");
    let store = Store::new();
    for (name, content, expected) in [
        ("notes.txt", &b"hello"[..], "neither a tar archive"),
        ("x.tar.bz2", &b"BZh91AY&SY"[..], "bzip2"),
    ] {
        let path = work.path().join(name);
        fs::write(&path, content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let out = store.run(&["--rootfs", path.to_str().unwrap(), "--", "true"]);
        out.assert_code(125).assert_stderr_contains(expected);
        // `images import` says what it takes, not what --rootfs takes.
        store
            .run(&["images", "import", path.to_str().unwrap()])
            .assert_code(125)
            .assert_stderr_contains(expected)
            .assert_stderr_contains("hint: images import takes");
    }
    let out = store.run(&["images", "import", "/nonexistent/image.tar"]);
    out.assert_code(125);
    assert!(
        out.stderr_text().starts_with(
            "unshare-run: cannot import /nonexistent/image.tar: No such file or directory"
        ),
        "{}",
        out.stderr_text()
    );
    let out = store.run(&["--rootfs", "/nonexistent/image.tar", "--", "true"]);
    out.assert_code(125);
    assert!(
        out.stderr_text()
            .contains("no such file, directory or stored image"),
        "{}",
        out.stderr_text()
    );
    let out = store.run(&[
        "images",
        "import",
        &work.path().display().to_string(),
        "--name",
        "x",
    ]);
    out.assert_code(125).assert_stderr_contains("used in place");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn concurrent_imports_of_one_file_store_one_image() {
    require_root();
    let store = Store::new();
    let tarball = bookworm_tarball_compressed("zstd");
    let runner = install().runner();
    let argv = [
        runner.as_str(),
        "--rootfs",
        tarball.to_str().unwrap(),
        "--",
        "cat",
        "/etc/debian_version",
    ];
    let scratch: Vec<TempDir> = (0..2).map(|_| TempDir::new("concurrent")).collect();
    let children: Vec<_> = scratch
        .iter()
        .map(|dir| {
            store
                .sandbox
                .command_as(alice(), &argv, dir)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        out.assert_code(0);
        assert!(out.stdout_text().starts_with("12."), "{}", text(&out));
    }
    store.assert_one_image_and_nothing_left();
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn without_subordinate_ids_an_import_keeps_what_it_can_and_says_so() {
    require_root();
    use raw::*;
    let work = TempDir::new("single-map-import");
    let archive_path = work.path().join("owned.tar");
    let bytes = archive(&[
        file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
        file("home/data", b"mine").owned_by(1000),
    ]);
    fs::write(&archive_path, bytes).unwrap();
    fs::set_permissions(&archive_path, fs::Permissions::from_mode(0o644)).unwrap();

    let dir = user_dir(alice(), "store-single");
    let mut sandbox = Sandbox::both(&[]);
    sandbox
        .env
        .push(("XDG_DATA_HOME".into(), dir.path().to_str().unwrap().into()));
    let out = sandbox.run_as(
        alice(),
        &[
            &install().runner(),
            "images",
            "import",
            archive_path.to_str().unwrap(),
        ],
    );
    out.assert_code(0);
    let stderr = out.stderr_text();
    assert!(stderr.contains("only your own id is mapped"), "{stderr}");
    assert!(
        stderr.contains("entries owned by ids outside your id map were given to root inside: 1;"),
        "{stderr}"
    );
    let digest = out.stdout_text().trim().to_string();
    let data = dir
        .path()
        .join("unshare-run/images")
        .join(&digest)
        .join("rootfs/home/data");
    assert_eq!(fs::read_to_string(&data).unwrap(), "mine");
    assert_eq!(fs::metadata(&data).unwrap().uid(), alice().uid);
}
