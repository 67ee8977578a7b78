//! Images from registries (issue 16): pulled from a real registry on 127.0.0.1 (tests/support's
//! LocalRegistry: TLS with a test CA in the user's certs.d, token authentication, blobs redirected to
//! a server that refuses Authorization), run, shared layers, private repositories, platforms,
//! resumed and concurrent pulls, removal. The test user has the full map and a home of its own.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use unshare_run_test_support::oci::{self, LAYERED_FILE, LAYERED_FILE_CONTENT, LAYERED_WHITEOUT};
use unshare_run_test_support::registry::*;
use unshare_run_test_support::*;

const APT_HELLO: &str = "apt-get update -q && apt-get install -y -q hello && hello";

/// alice with a home of her own (store, certs.d, auth files, registries.conf) and a registry.
struct Puller {
    home: TempDir,
    sandbox: Sandbox,
    registry: LocalRegistry,
}

impl Puller {
    fn new(options: RegistryOptions) -> Puller {
        let home = user_dir(alice(), "pull-home");
        let registry = LocalRegistry::start(options);
        registry.trust_for(home.path(), alice());
        let mut sandbox = Sandbox::both(&[&format!("{}:100000:65536", alice().name)]);
        let h = home.path().to_str().unwrap().to_string();
        sandbox.env.extend([
            ("HOME".to_string(), h.clone()),
            ("XDG_DATA_HOME".to_string(), format!("{h}/data")),
            ("XDG_CONFIG_HOME".to_string(), format!("{h}/.config")),
        ]);
        Puller {
            home,
            sandbox,
            registry,
        }
    }

    fn public() -> Puller {
        Puller::new(RegistryOptions {
            token_auth: true,
            redirect_blobs: true,
            ..RegistryOptions::default()
        })
    }

    fn store(&self) -> PathBuf {
        self.home.path().join("data/unshare-run")
    }

    fn run(&self, args: &[&str]) -> Output {
        let runner = install().runner();
        let mut argv = vec![runner.as_str()];
        argv.extend_from_slice(args);
        self.sandbox.run_as(alice(), &argv)
    }

    fn command(&self, args: &[&str], dir: &TempDir) -> Command {
        let runner = install().runner();
        let mut argv = vec![runner.as_str()];
        argv.extend_from_slice(args);
        self.sandbox.command_as(alice(), &argv, dir)
    }

    /// The names in one of the store's directories.
    fn entries(&self, dir: &str) -> Vec<String> {
        let mut found: Vec<String> = fs::read_dir(self.store().join(dir))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        found
    }

    /// The small image pushed as small:1: its reference, and where its own upper layer will be.
    fn small_image_and_its_upper_layer(&self) -> (String, PathBuf) {
        let dir = TempDir::new("pull-small");
        let small = oci::small_image(&dir);
        self.pushed_and_its_upper_layer(&small.path, "small:1")
    }

    /// The image archive `path` pushed as `tag`: its reference, and where its own upper layer will
    /// be.
    fn pushed_and_its_upper_layer(&self, path: &Path, tag: &str) -> (String, PathBuf) {
        let pushed = self.registry.push(path, tag, Compression::Gzip);
        let upper = self
            .store()
            .join("images")
            .join(hex(&pushed.config.digest))
            .join("upper");
        (self.registry.reference(tag), upper)
    }

    /// A file of alice's home, written as hers.
    fn write_home_file(&self, relative: &str, content: &str) {
        let path = self.home.path().join(relative);
        let mut dir = self.home.path().to_path_buf();
        for part in Path::new(relative).parent().unwrap().components() {
            dir.push(part);
            if !dir.exists() {
                fs::create_dir(&dir).unwrap();
                give_to(alice(), &dir);
            }
        }
        fs::write(&path, content).unwrap();
        give_to(alice(), &path);
    }
}

fn text(out: &Output) -> String {
    format!("{}{}", out.stdout_text(), out.stderr_text())
}

/// The Range header of each GET of the blob `digest` the blob server saw (None: the whole blob).
fn gets_of(registry: &LocalRegistry, digest: &str) -> Vec<Option<String>> {
    registry
        .blob_log()
        .into_iter()
        .filter(|r| r.method == "GET" && r.digest.as_deref() == Some(digest))
        .map(|r| r.range)
        .collect()
}

fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap()
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_debian_image_is_pulled_once_and_runs_apt() {
    require_root();
    let p = Puller::public();
    let image = oci::debian_image();
    let pushed = p
        .registry
        .push(&image.path, "debian:bookworm", Compression::Gzip);
    let reference = p.registry.reference("debian:bookworm");
    let out = p.run(&["--rootfs", &reference, "--", "sh", "-c", APT_HELLO]);
    out.assert_code(0);
    assert!(
        out.stdout_text().ends_with("Hello, world!\n"),
        "{}",
        text(&out)
    );
    // One line per stored layer also without a terminal.
    assert!(out.stderr_text().contains("stored"), "{}", text(&out));
    // The layer keeps every owner and set-id bit: root inside is alice, shadow's group 42 is 100041.
    let layer = p.store().join("layers").join(hex(&image.diff_ids[0]));
    let passwd = fs::metadata(layer.join("usr/bin/passwd")).unwrap();
    assert_eq!(
        (passwd.uid(), passwd.mode() & 0o7777),
        (alice().uid, 0o4755)
    );
    assert_eq!(
        fs::metadata(layer.join("etc/shadow")).unwrap().gid(),
        100_041
    );
    // apt's writes went to the image's own layer, never into the shared one.
    let digest = hex(&pushed.config.digest);
    let upper = p.store().join("images").join(digest).join("upper");
    assert!(upper.join("usr/bin/hello").exists());
    assert!(!layer.join("usr/bin/hello").exists());
    // The second run uses the stored image without asking the registry (--pull missing).
    p.registry.reset_counts();
    let out = p.run(&["--rootfs", &reference, "--", "hello"]);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "Hello, world!\n");
    assert_eq!(p.registry.blob_requests_total(), 0);
    assert_eq!(p.registry.token_requests(), 0);
    // _apt's files (uid 42 inside, 100041 outside) stay its own.
    let out = p.run(&[
        "--rootfs",
        &reference,
        "--",
        "stat",
        "-c",
        "%U",
        "/var/cache/apt/archives/partial",
    ]);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "_apt\n");
    let listing = p.run(&["images"]);
    listing.assert_code(0);
    assert!(
        listing.stdout_text().contains(&reference),
        "{}",
        text(&listing)
    );
    assert!(p.entries("tmp").is_empty(), "{:?}", p.entries("tmp"));
    assert!(
        p.entries("partial").is_empty(),
        "{:?}",
        p.entries("partial")
    );
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn an_image_on_the_same_base_fetches_and_stores_only_its_own_layer() {
    require_root();
    let p = Puller::public();
    let base = p.registry.push(
        &oci::debian_image().path,
        "debian:bookworm",
        Compression::Gzip,
    );
    let layered = p.registry.push(
        &oci::debian_layered_image().path,
        "layered:1",
        Compression::Gzip,
    );
    assert_eq!(base.layers[0].digest, layered.layers[0].digest);
    p.registry.reset_counts();
    p.run(&["images", "pull", &p.registry.reference("debian:bookworm")])
        .assert_code(0);
    let out = p.run(&["images", "pull", &p.registry.reference("layered:1")]);
    out.assert_code(0);
    assert_eq!(p.registry.blob_requests(&base.layers[0].digest), 1);
    assert_eq!(p.registry.blob_requests(&layered.layers[1].digest), 1);
    assert_eq!(p.entries("layers").len(), 2, "{:?}", p.entries("layers"));
    // The top layer's file, its whiteout of /etc/motd, its Env, WorkingDir and Cmd.
    let layered_ref = p.registry.reference("layered:1");
    let out = p.run(&["--rootfs", &layered_ref]);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), LAYERED_FILE_CONTENT);
    let script =
        format!("test ! -e {LAYERED_WHITEOUT} && echo $URT_LAYERED $(pwd) && cat {LAYERED_FILE}");
    let out = p.run(&["--rootfs", &layered_ref, "--", "sh", "-c", &script]);
    out.assert_code(0);
    assert_eq!(
        out.stdout_text(),
        format!("yes /opt/urt\n{LAYERED_FILE_CONTENT}")
    );
    // The base still has its /etc/motd.
    let out = p.run(&[
        "--rootfs",
        &p.registry.reference("debian:bookworm"),
        "--",
        "test",
        "-e",
        LAYERED_WHITEOUT,
    ]);
    out.assert_code(0);
    // Removing the layered image removes its own layer only; the last image takes the base along.
    p.run(&["images", "rm", &layered_ref]).assert_code(0);
    assert_eq!(p.entries("layers").len(), 1, "{:?}", p.entries("layers"));
    p.run(&["images", "rm", &p.registry.reference("debian:bookworm")])
        .assert_code(0);
    assert!(p.entries("layers").is_empty(), "{:?}", p.entries("layers"));
    assert!(p.entries("images").is_empty(), "{:?}", p.entries("images"));
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_private_repository_needs_credentials_from_the_usual_files() {
    require_root();
    let mut p = Puller::public();
    // podman's runtime auth.json (/run/containers/UID without XDG_RUNTIME_DIR) is out of reach when
    // root's podman has made /run/containers 0700: a place searched, not a file named, so skipped.
    p.sandbox.setup =
        "mkdir -p /run/containers && mount -t tmpfs -o mode=0700 tmpfs /run/containers".into();
    let dir = TempDir::new("pull-small");
    let small = oci::small_image(&dir);
    p.registry
        .push(&small.path, "private/app:1", Compression::Gzip);
    let reference = p.registry.reference("private/app:1");
    let out = p.run(&["images", "pull", &reference]);
    out.assert_code(125);
    let said = out.stderr_text();
    assert!(said.contains("auth.json"), "{said}");
    assert!(said.contains("login"), "{said}");

    let (user, password) = p.registry.credentials();
    let auth = base64_of(&format!("{user}:{password}"));
    let entry = format!(
        r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#,
        p.registry.address()
    );
    // podman's file.
    p.write_home_file(".config/containers/auth.json", &entry);
    p.run(&["images", "pull", &reference]).assert_code(0);
    let out = p.run(&["--rootfs", &reference]);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "amd64\n");
    p.run(&["images", "rm", &reference]).assert_code(0);
    // A file named by --authfile must be readable.
    let out = p.run(&[
        "images",
        "pull",
        "--authfile",
        "/run/containers/auth.json",
        &reference,
    ]);
    out.assert_code(125);
    assert!(
        out.stderr_text()
            .contains("cannot read /run/containers/auth.json"),
        "{}",
        text(&out)
    );
    // Docker's file, when podman's has nothing.
    fs::remove_file(p.home.path().join(".config/containers/auth.json")).unwrap();
    p.write_home_file(".docker/config.json", &entry);
    p.run(&["images", "pull", &reference]).assert_code(0);
}

fn base64_of(text: &str) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn an_index_gives_this_machines_platform_or_the_one_asked_for() {
    require_root();
    let p = Puller::public();
    p.registry
        .push_index("multi:1", &oci::multi_arch_images(), Compression::Zstd);
    let reference = p.registry.reference("multi:1");
    let out = p.run(&["--rootfs", &reference]);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "amd64\n");
    // Another platform is stored as asked (not run: this machine cannot).
    let out = p.run(&["images", "pull", "--platform", "linux/arm64", &reference]);
    out.assert_code(0);
    assert_eq!(p.entries("images").len(), 2, "{}", text(&out));
    // The reference now names the arm64 image; a run here takes this machine's again.
    let out = p.run(&["--rootfs", &reference]);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "amd64\n");
    // None that fits: the error lists those there are.
    let out = p.run(&["images", "pull", "--platform", "linux/s390x", &reference]);
    out.assert_code(125);
    let said = out.stderr_text();
    assert!(
        said.contains("linux/amd64") && said.contains("linux/arm64"),
        "{said}"
    );
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn zstd_layers_and_references_by_digest_work() {
    require_root();
    let mut p = Puller::public();
    let dir = TempDir::new("pull-zstd");
    let small = oci::small_image(&dir);
    let pushed = p
        .registry
        .push(&small.path, "small:zstd", Compression::Zstd);
    let by_digest = format!("docker://{}/small@{}", p.registry.address(), pushed.digest);
    p.sandbox
        .env
        .push(("UNSHARE_RUN_LOG".to_string(), "debug".to_string()));
    let out = p.run(&["--rootfs", &by_digest]);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "amd64\n");
    // Each layer was extracted as it arrived, not read back after the download.
    let said = out.stderr_text();
    assert_eq!(
        said.matches("extracted while it downloaded").count(),
        2,
        "{said}"
    );
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_short_name_uses_registries_conf_and_its_docker_io_mirror() {
    require_root();
    let p = Puller::public();
    let dir = TempDir::new("pull-mirror");
    let small = oci::small_image(&dir);
    p.registry
        .push(&small.path, "library/busybox:latest", Compression::Gzip);
    p.write_home_file(
        ".config/containers/registries.conf",
        &format!(
            "[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n\
             [[registry.mirror]]\nlocation = \"{}\"\n",
            p.registry.address()
        ),
    );
    let out = p.run(&["--rootfs", "busybox"]);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "amd64\n", "{}", text(&out));
    let listing = p.run(&["images"]).stdout_text();
    assert!(
        listing.contains("docker.io/library/busybox:latest"),
        "{listing}"
    );
    // The stored image is found by its short name without asking the registry.
    p.registry.reset_counts();
    p.run(&["--rootfs", "busybox"]).assert_code(0);
    assert_eq!(p.registry.blob_requests_total(), 0);
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_pull_continues_what_an_interrupted_one_downloaded() {
    require_root();
    let p = Puller::public();
    let image = oci::debian_image();
    let pushed = p
        .registry
        .push(&image.path, "debian:bookworm", Compression::Gzip);
    let blob = &pushed.layers[0];
    // A connection dropped mid-blob: the same pull continues with a Range request.
    p.registry.interrupt_next_get(&blob.digest, blob.size / 3);
    let reference = p.registry.reference("debian:bookworm");
    let out = p.run(&["images", "pull", &reference]);
    out.assert_code(0);
    let ranges: Vec<String> = gets_of(&p.registry, &blob.digest)
        .into_iter()
        .flatten()
        .collect();
    assert!(
        ranges
            .iter()
            .any(|r| r.starts_with("bytes=") && !r.starts_with("bytes=0-")),
        "{ranges:?}: {}",
        text(&out)
    );
    p.run(&["images", "rm", &reference]).assert_code(0);

    // What a killed pull leaves (a part of the blob in partial/): the next pull asks only for the rest.
    let partial = p.store().join("partial").join(hex(&blob.digest));
    let whole = fs::read(p.registry.blob_path(&blob.digest)).unwrap();
    let kept = whole.len() / 2;
    fs::write(&partial, &whole[..kept]).unwrap();
    give_to(alice(), &partial);
    p.registry.reset_counts();
    let out = p.run(&["images", "pull", &reference]);
    out.assert_code(0);
    let ranges = gets_of(&p.registry, &blob.digest);
    assert_eq!(ranges, [Some(format!("bytes={kept}-"))], "{}", text(&out));
    let out = p.run(&["--rootfs", &reference, "--", "cat", "/etc/debian_version"]);
    out.assert_code(0);
    assert!(out.stdout_text().starts_with("12."), "{}", text(&out));
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn killed_pulls_leave_nothing_that_a_later_run_uses() {
    require_root();
    let p = Puller::public();
    let pushed = p.registry.push(
        &oci::debian_image().path,
        "debian:bookworm",
        Compression::Gzip,
    );
    let reference = p.registry.reference("debian:bookworm");
    for delay_ms in [50, 150, 300, 600, 1000] {
        let dir = TempDir::new("pull-kill");
        let mut child = p
            .command(&["images", "pull", "--quiet", &reference], &dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = child.wait();
        // Either nothing is stored yet, or all of it: never an image without its layers.
        for image in p.entries("images") {
            let record = p.store().join("images").join(&image).join("image.json");
            assert!(record.exists(), "{image} appeared without its record");
        }
    }
    // A download that a kill cut short is continued where it stopped.
    let blob = hex(&pushed.layers[0].digest).to_string();
    let kept = fs::metadata(p.store().join("partial").join(&blob)).map_or(0, |m| m.len());
    p.registry.reset_counts();
    let out = p.run(&["--rootfs", &reference, "--", "cat", "/etc/debian_version"]);
    out.assert_code(0);
    assert!(out.stdout_text().starts_with("12."), "{}", text(&out));
    let size = pushed.layers[0].size;
    if kept > 0 {
        let ranges = gets_of(&p.registry, &format!("sha256:{blob}"));
        // All of it downloaded (the kill came during the extraction): nothing is asked again.
        let expected = match kept < size {
            true => vec![Some(format!("bytes={kept}-"))],
            false => Vec::new(),
        };
        assert_eq!(ranges, expected, "{kept} of {size} bytes were kept");
    }
    // What the killed pulls left in tmp/ is removed by the later ones.
    assert!(
        !processes_of(alice(), "unshare-run images pull"),
        "a killed pull lives on"
    );
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn concurrent_pulls_of_one_image_fetch_each_blob_once() {
    require_root();
    let p = Puller::public();
    let pushed = p.registry.push(
        &oci::debian_layered_image().path,
        "layered:1",
        Compression::Gzip,
    );
    let reference = p.registry.reference("layered:1");
    p.registry.reset_counts();
    let dirs: Vec<TempDir> = (0..3).map(|_| TempDir::new("pull-concurrent")).collect();
    let children: Vec<_> = dirs
        .iter()
        .map(|dir| {
            p.command(&["images", "pull", "--quiet", &reference], dir)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        out.assert_code(0);
    }
    for layer in &pushed.layers {
        assert_eq!(
            p.registry.blob_requests(&layer.digest),
            1,
            "{}",
            layer.digest
        );
    }
    assert_eq!(p.entries("images").len(), 1);
    assert_eq!(p.entries("layers").len(), 2);
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn bad_references_and_unreachable_registries_are_said_clearly() {
    require_root();
    let p = Puller::public();
    // Nothing listens on port 9 of loopback.
    let out = p.run(&["images", "pull", "127.0.0.1:9/none:1"]);
    out.assert_code(125);
    assert!(out.stderr_text().contains("127.0.0.1:9"), "{}", text(&out));
    // A name that no resolver knows (.invalid is reserved, RFC 2606): named with its port, within
    // the connect timeout (15 s), whether the resolver answers or not.
    let started = std::time::Instant::now();
    let out = p.run(&["images", "pull", "no-such-host.invalid:5000/none:1"]);
    out.assert_code(125);
    assert!(
        out.stderr_text()
            .contains("cannot find registry host no-such-host.invalid:5000"),
        "{}",
        text(&out)
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let out = p.run(&["images", "pull", "127.0.0.1:5000/UPPER:case"]);
    out.assert_code(125);
    assert!(
        out.stderr_text().contains("not an image reference"),
        "{}",
        text(&out)
    );
    let out = p.run(&["images", "pull", &p.registry.reference("missing:1")]);
    out.assert_code(125);
    assert!(out.stderr_text().contains("missing"), "{}", text(&out));
    let out = p.run(&[
        "--pull",
        "never",
        "--rootfs",
        &p.registry.reference("missing:1"),
    ]);
    out.assert_code(125);
    assert!(out.stderr_text().contains("--pull never"), "{}", text(&out));
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_blob_that_does_not_match_its_digest_fails_the_pull_and_nothing_is_kept() {
    require_root();
    let p = Puller::public();
    let dir = TempDir::new("pull-damaged");
    let small = oci::small_image(&dir);
    let pushed = p.registry.push(&small.path, "small:1", Compression::Gzip);
    // The registry's copy of the big layer changes after the push: it serves other bytes.
    let layer = pushed.layers.iter().max_by_key(|l| l.size).unwrap();
    let stored = p.registry.blob_path(&layer.digest);
    let mut bytes = fs::read(&stored).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&stored, &bytes).unwrap();
    let out = p.run(&["images", "pull", &p.registry.reference("small:1")]);
    out.assert_code(125);
    assert!(
        out.stderr_text().contains(hex(&layer.digest)),
        "the error names the digest: {}",
        text(&out)
    );
    assert!(p.entries("images").is_empty(), "{:?}", p.entries("images"));
    assert!(
        p.entries("partial").is_empty(),
        "{:?}",
        p.entries("partial")
    );
    assert!(
        !p.entries("layers")
            .iter()
            .any(|l| l.starts_with(&hex(&layer.digest)[..12])),
        "{:?}",
        p.entries("layers")
    );
    assert!(p.entries("tmp").iter().all(|e| e.ends_with(".lock")) || p.entries("tmp").is_empty());
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn ephemeral_and_overlay_runs_of_a_pulled_image_leave_its_layers_as_they_were() {
    require_root();
    let p = Puller::public();
    let (reference, upper) = p.small_image_and_its_upper_layer();
    let out = p.run(&[
        "--rootfs",
        &reference,
        "--ephemeral",
        "--",
        "sh",
        "-c",
        "echo x > /etc/urt-written",
    ]);
    out.assert_code(0);
    assert!(!upper.join("etc/urt-written").exists());
    let writes = user_dir(alice(), "pull-overlay");
    let overlay = writes.path().to_str().unwrap();
    let out = p.run(&[
        "--rootfs",
        &reference,
        "--overlay",
        overlay,
        "--",
        "sh",
        "-c",
        "echo y > /etc/urt-written",
    ]);
    out.assert_code(0);
    assert!(!upper.join("etc/urt-written").exists());
    assert!(writes.path().join("upper/etc/urt-written").exists());
    let out = p.run(&[
        "--rootfs",
        &reference,
        "--read-only",
        "--",
        "sh",
        "-c",
        "echo z > /etc/urt-written",
    ]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    // A plain run writes the image's own layer, which the next run sees.
    p.run(&[
        "--rootfs",
        &reference,
        "--",
        "sh",
        "-c",
        "echo w > /etc/urt-written",
    ])
    .assert_code(0);
    assert!(upper.join("etc/urt-written").exists());
    let out = p.run(&["--rootfs", &reference, "--", "cat", "/etc/urt-written"]);
    assert_eq!(out.stdout_text(), "w\n");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_full_disk_fails_the_pull_with_what_to_do_and_stores_nothing_half_made() {
    require_root();
    let mut p = Puller::public();
    p.registry.push(
        &oci::debian_image().path,
        "debian:bookworm",
        Compression::Gzip,
    );
    // A store on a filesystem of 40 MiB: the layer (91 MiB compressed) does not fit.
    let data = p.home.path().join("data");
    fs::create_dir(&data).unwrap();
    p.sandbox.setup = format!(
        "mount -t tmpfs -o size=40m,uid={},gid={},mode=0700 tmpfs {}",
        alice().uid,
        alice().gid,
        data.display()
    );
    let store = data.join("unshare-run");
    let probe = format!(
        "{} images pull {} ; echo status=$?; echo images=$(ls -A {s}/images | wc -l) \
         layers=$(ls -A {s}/layers | wc -l)",
        install().runner(),
        p.registry.reference("debian:bookworm"),
        s = store.display()
    );
    let out = p.sandbox.run_as(alice(), &["sh", "-c", &probe]);
    let said = text(&out);
    assert!(said.contains("status=125"), "{said}");
    assert!(said.contains("is full"), "{said}");
    assert!(said.contains("images rm"), "{said}");
    // Inside the sandbox, where the tmpfs is: no image and no layer, half-made or not.
    assert!(said.contains("images=0 layers=0"), "{said}");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_second_container_of_a_pulled_image_writes_to_a_layer_of_its_own() {
    require_root();
    let p = Puller::public();
    let (reference, upper) = p.small_image_and_its_upper_layer();
    p.run(&["images", "pull", "--quiet", &reference])
        .assert_code(0);
    let first_dir = TempDir::new("pull-first");
    let mut first = p
        .command(
            &[
                "--rootfs",
                &reference,
                "--",
                "sh",
                "-c",
                "echo 1 > /etc/first; sleep 30",
            ],
            &first_dir,
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || upper.join("etc/first").exists()),
        "the first container did not start"
    );
    let out = p.run(&[
        "--rootfs",
        &reference,
        "--",
        "sh",
        "-c",
        "echo 2 > /etc/second; cat /etc/first",
    ]);
    out.assert_code(0);
    assert!(
        out.stderr_text()
            .contains("another container uses this image's layer"),
        "{}",
        text(&out)
    );
    // It saw the image as the first container left it so far, and its own write went elsewhere.
    assert_eq!(out.stdout_text(), "1\n");
    assert!(!upper.join("etc/second").exists());
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(first.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = first.wait();
    // With the first one gone, the next run writes the image's layer again.
    assert!(wait_for(Duration::from_secs(5), || {
        let out = p.run(&[
            "--rootfs",
            &reference,
            "--",
            "sh",
            "-c",
            "echo 3 > /etc/third",
        ]);
        out.status.code() == Some(0) && upper.join("etc/third").exists()
    }));
}

/// Named containers of one pulled image keep their writes in layers of their own, side by side
/// (podman's containers): `start` brings a layer back, `rm` removes it, the image's own layer holds
/// none of it; an unnamed run beside them writes a temporary layer, and a named start beside an
/// unnamed writer is refused. With and without a holder (the holder's overlay, or one of its own).
#[test]
#[ignore = "needs root: sudo tests/run"]
fn named_containers_of_a_pulled_image_keep_their_writes_in_layers_of_their_own() {
    require_root();
    let p = Puller::public();
    let (reference, upper) = p.small_image_and_its_upper_layer();
    p.run(&["images", "pull", "--quiet", &reference])
        .assert_code(0);
    let containers = p.home.path().join("data/unshare-run/containers");
    for (name, holder) in [("a", "10"), ("b", "10"), ("c", "0")] {
        let script = format!("echo {name} > /x; exec sleep 60");
        p.run(&[
            "-d",
            "--name",
            name,
            "--holder-idle",
            holder,
            "--rootfs",
            &reference,
            "--",
            "sh",
            "-c",
            &script,
        ])
        .assert_code(0);
    }
    for name in ["a", "b", "c"] {
        let mut seen = String::new();
        let mine = wait_for(Duration::from_secs(5), || {
            seen = p.run(&["exec", name, "cat", "/x"]).stdout_text();
            seen == format!("{name}\n")
        });
        assert!(mine, "{name} reads {seen:?}");
        assert!(
            containers.join(name).join("layer/upper/x").exists(),
            "{name}"
        );
    }
    assert!(
        !upper.join("x").exists(),
        "the image's own layer was written"
    );
    // An unnamed run beside them: a temporary layer, and the image as it was.
    let out = p.run(&[
        "--rootfs",
        &reference,
        "--",
        "sh",
        "-c",
        "cat /x 2>/dev/null || echo none",
    ]);
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "none\n");
    assert!(
        out.stderr_text()
            .contains("another container uses this image's layer"),
        "{}",
        text(&out)
    );
    // start brings the layer back; rm removes it, with nothing of it left mounted.
    p.run(&["stop", "-t", "0", "a"]).assert_code(0);
    p.run(&["start", "a"]).assert_code(0);
    assert_eq!(p.run(&["exec", "a", "cat", "/x"]).stdout_text(), "a\n");
    p.run(&["rm", "-f", "a", "c"]).assert_code(0);
    assert!(!containers.join("a").exists() && !containers.join("c").exists());
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(containers.to_str().unwrap()), "{mounts}");
    // The image stays while a stopped container is built on it.
    p.run(&["stop", "-t", "0", "b"]).assert_code(0);
    p.run(&["images", "rm", &reference]).assert_code(125);
    // A named start beside an unnamed run that writes the image's layer: refused, the name free.
    let writer_dir = TempDir::new("pull-writer");
    let mut writer = p
        .command(
            &[
                "--rootfs",
                &reference,
                "--",
                "sh",
                "-c",
                "echo w > /w; sleep 30",
            ],
            &writer_dir,
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    assert!(wait_for(Duration::from_secs(10), || upper
        .join("w")
        .exists()));
    let out = p.run(&["--name", "late", "--rootfs", &reference, "--", "true"]);
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(writer.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = writer.wait();
    out.assert_code(125)
        .assert_stderr_contains("a run without --name writes this image's layer");
    assert!(!containers.join("late").exists());
    p.run(&["rm", "b"]).assert_code(0);
    p.run(&["images", "rm", &reference]).assert_code(0);
}

/// What the holder of alice's containers keeps open of the store at `store`: the targets of its
/// descriptors that lie there (every holder of hers, since tests share them).
fn held_by_holders(store: &Path) -> Vec<String> {
    let store = store.to_string_lossy().into_owned();
    let mut held = Vec::new();
    for process in fs::read_dir("/proc").unwrap().flatten() {
        let dir = process.path();
        let is_holder = fs::read(dir.join("cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains("--serve-as-holder"));
        if !is_holder || fs::metadata(&dir).map(|m| m.uid()).ok() != Some(alice().uid) {
            continue;
        }
        for fd in fs::read_dir(dir.join("fd")).into_iter().flatten().flatten() {
            if let Ok(target) = fs::read_link(fd.path()) {
                let target = target.to_string_lossy().into_owned();
                if target.starts_with(&store) {
                    held.push(target);
                }
            }
        }
    }
    held
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_pulled_image_runs_on_the_overlay_its_holder_keeps_and_never_on_a_stale_one() {
    require_root();
    let p = Puller::public();
    let (reference, upper) = p.small_image_and_its_upper_layer();
    let runner = install().runner();
    let logged = |args: &[&str]| {
        let mut argv = vec!["env", "UNSHARE_RUN_LOG=debug", runner.as_str()];
        argv.extend_from_slice(args);
        p.sandbox.run_as(alice(), &argv)
    };
    const LENT: &str = "the holder's overlay of the image";
    // Each start is lent the holder's overlay; what it writes is on the disk when it returns.
    let out = logged(&[
        "--rootfs",
        &reference,
        "--",
        "sh",
        "-c",
        "echo one > /etc/urt-lent",
    ]);
    out.assert_code(0);
    assert!(out.stderr_text().contains(LENT), "{}", text(&out));
    assert_eq!(
        fs::read_to_string(upper.join("etc/urt-lent")).unwrap(),
        "one\n"
    );
    let script = "cat /etc/urt-lent && echo two > /etc/urt-b";
    let out = logged(&["--rootfs", &reference, "--", "sh", "-c", script]);
    out.assert_code(0);
    assert!(out.stderr_text().contains(LENT), "{}", text(&out));
    assert_eq!(out.stdout_text(), "one\n");
    assert_eq!(
        fs::read_to_string(upper.join("etc/urt-b")).unwrap(),
        "two\n"
    );
    // A start without a holder mounts its own overlay and changes the layer under the kept one ...
    let script = "rm /etc/urt-lent && echo three > /etc/urt-b";
    let out = p.run(&[
        "--holder-idle",
        "0",
        "--rootfs",
        &reference,
        "--",
        "sh",
        "-c",
        script,
    ]);
    out.assert_code(0);
    // ... which is then not lent any more: a new overlay shows the layer as it is.
    let script = "cat /etc/urt-b; test ! -e /etc/urt-lent";
    let out = logged(&["--rootfs", &reference, "--", "sh", "-c", script]);
    out.assert_code(0);
    assert!(out.stderr_text().contains(LENT), "{}", text(&out));
    assert_eq!(out.stdout_text(), "three\n");

    // A second container beside one that writes the image's layer writes a temporary layer of its
    // own, over the holder's overlay: it sees the first one's writes as they happen.
    let dir = TempDir::new("pull-lent-beside");
    let script = "echo first > /etc/urt-first && sleep 60";
    let mut first = p
        .command(&["--rootfs", &reference, "--", "sh", "-c", script], &dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !upper.join("etc/urt-first").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = logged(&[
        "--rootfs",
        &reference,
        "--",
        "sh",
        "-c",
        "cat /etc/urt-first; echo x > /etc/urt-second",
    ]);
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(first.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = first.wait();
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "first\n", "{}", text(&out));
    assert!(
        out.stderr_text().contains("writes go to a temporary layer"),
        "{}",
        text(&out)
    );
    assert!(out.stderr_text().contains("lower [Lent]"), "{}", text(&out));
    assert!(!upper.join("etc/urt-second").exists());

    // Removing the image lets the holder's overlay of it go: nothing of it is held open.
    assert!(
        !held_by_holders(&p.store()).is_empty(),
        "the holder keeps the image's upper layer"
    );
    p.run(&["images", "rm", &reference]).assert_code(0);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !held_by_holders(&p.store()).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(held_by_holders(&p.store()), Vec::<String>::new());
}

/// The token that the holder stamped on an image's upper layer when it made the overlay it keeps
/// (src/runner/lent_overlay.rs): a new one means a new overlay.
fn overlay_token(upper: &Path) -> String {
    let read = "import os, sys; print(os.getxattr(sys.argv[1], 'user.unshare-run.overlay').hex())";
    let out = Command::new("python3")
        .args(["-c", read])
        .arg(upper)
        .output()
        .unwrap();
    out.assert_code(0);
    out.stdout_text().trim().to_string()
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn removing_an_image_lets_only_its_own_kept_overlay_go() {
    require_root();
    let p = Puller::public();
    let (removed, removed_upper) = p.small_image_and_its_upper_layer();
    let dir = TempDir::new("pull-second");
    let second = oci::multi_arch_images().remove(0).env("URT_SECOND=1");
    let second = oci::write_archive(&dir.path().join("second.oci.tar"), &second);
    let (kept, kept_upper) = p.pushed_and_its_upper_layer(&second.path, "second:1");
    for reference in [&removed, &kept] {
        p.run(&["--rootfs", reference, "--", "sh", "-c", "exit 0"])
            .assert_code(0);
    }
    let token = overlay_token(&kept_upper);
    let shown = |path: &Path| path.to_string_lossy().into_owned();
    let held = held_by_holders(&p.store());
    assert!(held.contains(&shown(&removed_upper)), "{held:?}");
    assert!(held.contains(&shown(&kept_upper)), "{held:?}");

    p.run(&["images", "rm", &removed]).assert_code(0);
    // The removed image's layer, deleted, is let go; the other image's overlay stays kept ...
    wait_for(Duration::from_secs(5), || {
        held_by_holders(&p.store()).len() <= 1
    });
    assert_eq!(held_by_holders(&p.store()), vec![shown(&kept_upper)]);
    // ... and lent as it was: the holder made no new one.
    p.run(&["--rootfs", &kept, "--", "sh", "-c", "exit 0"])
        .assert_code(0);
    assert_eq!(overlay_token(&kept_upper), token);
    p.run(&["images", "rm", &kept]).assert_code(0);
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_registry_that_asks_for_a_client_certificate_gets_the_one_in_certs_d() {
    require_root();
    let p = Puller::new(RegistryOptions {
        client_certificates: true,
        ..RegistryOptions::default()
    });
    let (reference, _) = p.small_image_and_its_upper_layer();
    let out = p.run(&["images", "pull", &reference]);
    out.assert_code(125);
    assert!(
        out.stderr_text().contains("client certificate"),
        "the hint says what is missing: {}",
        text(&out)
    );
    p.registry.client_pair_for(p.home.path(), alice());
    let out = p.run(&["images", "pull", &reference]);
    out.assert_code(0);
    let out = p.run(&["--rootfs", &reference, "--", "sh", "-c", "exit 0"]);
    out.assert_code(0);
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn images_that_buildah_pushes_pull_and_run() {
    require_root();
    let p = Puller::public();
    let root = busybox_rootfs(alice());
    let (user, password) = p.registry.credentials();
    let local = format!("localhost/urt-buildah-{}", std::process::id());
    // Built from scratch and pushed as buildah pushes by default (OCI) and as Docker schema 2.
    let script = format!(
        "set -e\n\
         ctr=$(buildah from -q scratch)\n\
         mnt=$(buildah mount $ctr)\n\
         cp -a {root}/. $mnt/\n\
         buildah umount $ctr >/dev/null\n\
         buildah config --env URT_BUILDAH=yes --cmd '[\"sh\",\"-c\",\"echo from-buildah $URT_BUILDAH\"]' $ctr\n\
         buildah commit -q $ctr {local} >/dev/null\n\
         buildah rm $ctr >/dev/null\n\
         for format in oci v2s2; do\n\
           buildah push -q --format $format --cert-dir {certs} --creds {user}:{password} {local} \
             docker://{registry}/buildah:$format\n\
         done\n\
         buildah rmi -f {local} >/dev/null\n",
        root = root.path().display(),
        certs = p.registry.cert_dir().display(),
        registry = p.registry.address(),
    );
    run_ok(Command::new("sh").args(["-c", &script]));
    for format in ["oci", "v2s2"] {
        let reference = p.registry.reference(&format!("buildah:{format}"));
        let out = p.run(&["--rootfs", &reference]);
        out.assert_code(0);
        assert_eq!(
            out.stdout_text(),
            "from-buildah yes\n",
            "{format}: {}",
            text(&out)
        );
    }
}
