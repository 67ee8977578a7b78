//! The default private network of a --rootfs container (the holder's pasta, or a pasta of its own):
//! nothing of the host's own is reached, DNS and apt work, several containers at once, the holder
//! and its pasta stay while a container runs and leave nothing behind. --net pasta: a network of the
//! container's own that reaches the outside (DNS through pasta), published TCP and UDP ports, no
//! pasta left behind.
//! pasta needs /dev/net/tun usable by the user: it is 0600 on these machines, so the set-up makes it
//! 0666, the mode distributions ship.

use std::io::{BufRead, Read};
use std::time::{Duration, Instant};

use unshare_run_test_support::*;

fn tun_usable_by_users() {
    run_ok(std::process::Command::new("chmod").args(["0666", "/dev/net/tun"]));
}

fn sandbox() -> Sandbox {
    Sandbox::both(&[&format!("{}:100000:65536", alice().name)])
}

/// Whether a container's own pasta runs for `user` (not a holder's, which joins no user namespace).
fn pasta_running_for(user: &TestUser) -> bool {
    // By command line: pasta re-executes itself as passt.avx2 where the CPU allows.
    processes_of(user, "^pasta .*--userns ")
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn pasta_network_resolves_names_and_the_hostname() {
    require_root();
    tun_usable_by_users();
    let script = "ip -o link | cut -d' ' -f2; cat /etc/resolv.conf; getent hosts deb.debian.org >/dev/null && echo dns-ok; getent hosts box";
    let out = sandbox().run_as(
        alice(),
        &[
            &install().runner(),
            "--net",
            "pasta",
            "--hostname",
            "box",
            "--",
            "sh",
            "-c",
            script,
        ],
    );
    out.assert_code(0);
    let text = out.stdout_text();
    assert!(text.starts_with("lo:\n"), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.ends_with(':')).count(),
        2,
        "lo and one interface: {text}"
    );
    assert!(text.contains("nameserver 169.254.1.1\n"), "{text}");
    assert!(text.contains("dns-ok\n"), "{text}");
    assert!(
        text.contains("127.0.1.1") && text.trim_end().ends_with("box"),
        "{text}"
    );
    assert!(
        wait_for(Duration::from_secs(3), || !pasta_running_for(alice())),
        "pasta outlived the container"
    );
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn published_tcp_and_udp_ports_reach_the_container() {
    require_root();
    tun_usable_by_users();
    let server = "import socket\n\
        t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
        t.bind(('0.0.0.0', 8080)); t.listen(1)\n\
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('0.0.0.0', 8081))\n\
        print('ready', flush=True)\n\
        c, _ = t.accept(); c.sendall(b'pong over tcp\\n'); c.close()\n\
        data, _ = u.recvfrom(100); print(data.decode(), flush=True)\n";
    let dir = TempDir::new("publish");
    let (mut child, mut out) = start_runner(
        &sandbox(),
        // -p alone: the default network with the ports published (a pasta of the container's own).
        &[
            "-p",
            "127.0.0.1:18080:8080",
            "-p",
            "127.0.0.1:18081:8081/udp",
            "--",
            "/usr/bin/python3",
            "-c",
            server,
        ],
        &dir,
    );
    // TCP: pasta listens on the host port from the start; retry until the server answers.
    let deadline = Instant::now() + Duration::from_secs(10);
    let reply = loop {
        let mut text = String::new();
        if let Ok(mut s) = std::net::TcpStream::connect("127.0.0.1:18080") {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = s.read_to_string(&mut text);
        }
        if !text.is_empty() || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(reply, "pong over tcp\n");
    // UDP: datagrams can be lost, so send until the container reports one.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let sender = std::thread::spawn(move || {
        for _ in 0..50 {
            if udp.send_to(b"ping over udp", "127.0.0.1:18081").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ping over udp\n");
    assert_eq!(child.0.wait().unwrap().code(), Some(0));
    let _ = sender.join();
    assert!(
        wait_for(Duration::from_secs(3), || !pasta_running_for(alice())),
        "pasta outlived the container"
    );
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn sigkill_of_unshare_run_leaves_no_pasta() {
    require_root();
    tun_usable_by_users();
    let dir = TempDir::new("pasta-kill");
    let (mut child, _out) = start_runner(
        &sandbox(),
        &[
            "--net",
            "pasta",
            "--",
            "sh",
            "-c",
            "echo ready; exec sleep 600",
        ],
        &dir,
    );
    assert!(
        pasta_running_for(alice()),
        "no pasta process while the container runs"
    );
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    assert!(
        wait_for(Duration::from_secs(3), || !pasta_running_for(alice())),
        "pasta survived SIGKILL of unshare-run"
    );
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn publish_needs_a_network_of_the_containers_own() {
    require_root();
    sandbox()
        .run_as(
            alice(),
            &[
                &install().runner(),
                "--net",
                "host",
                "-p",
                "8080:80",
                "--",
                "true",
            ],
        )
        .assert_code(125)
        .assert_stderr_contains("--publish needs a network of the container's own, not --net host")
        .assert_stderr_contains("use --net pasta, or leave --net out");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn apt_update_in_a_debian_rootfs_with_the_default_network() {
    require_root();
    tun_usable_by_users();
    let a = alice();
    let dir = TempDir::new("pasta-debian");
    let (tar, rootfs) = extract_bookworm(a, "auto", &dir);
    tar.assert_code(0);
    let out = sandbox().run_as(
        a,
        &[
            &install().runner(),
            "--rootfs",
            &rootfs,
            "--",
            "apt-get",
            "update",
            "-q",
        ],
    );
    out.assert_code(0);
    assert!(
        out.stdout_text().contains("Reading package lists"),
        "{}",
        out.stdout_text()
    );
    // The image's own resolv.conf was not touched.
    let image_resolv =
        std::fs::read_to_string(format!("{rootfs}/etc/resolv.conf")).unwrap_or_default();
    assert!(!image_resolv.contains("169.254.1.1"), "{image_resolv}");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn missing_pasta_or_unusable_tun_say_what_to_do() {
    require_root();
    let runner = install().runner();
    // No pasta in PATH.
    sandbox()
        .run_as(
            alice(),
            &[
                "env",
                "PATH=/nonexistent",
                &runner,
                "--net",
                "pasta",
                "--",
                "/bin/true",
            ],
        )
        .assert_code(125)
        .assert_stderr_contains("pasta was not found in PATH")
        .assert_stderr_contains("apt-get install passt")
        .assert_stderr_contains("--net host");
    // /dev/net/tun not usable by the user (only inside this sandbox's mount namespace).
    let dir = TempDir::new("no-tun");
    let fake = dir.path().join("tun");
    std::fs::write(&fake, "").unwrap();
    let mut s = sandbox();
    s.setup = format!(
        "chmod 0600 {f}\nmount --bind {f} /dev/net/tun\n",
        f = fake.display()
    );
    s.run_as(alice(), &[&runner, "--net", "pasta", "--", "/bin/true"])
        .assert_code(125)
        .assert_stderr_contains("pasta could not set up the network: Failed to open tun")
        .assert_stderr_contains("chmod 0666 /dev/net/tun");
}

/// The reachability probe: for each argument `tcp:ADDRESS:PORT` (ADDRESS `gateway`: the default
/// route's gateway) or `abstract:NAME`, connects with a 1 s timeout and prints `ARGUMENT=ok` or the
/// error's name.
const REACH_PROBE: &str = r#"
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
static int finish(int fd) {
    struct pollfd p = { fd, POLLOUT, 0 };
    if (poll(&p, 1, 1000) == 0) return ETIMEDOUT;
    int error = 0; socklen_t len = sizeof error;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
    return error;
}
static int reach(const char *what) {
    char copy[256]; snprintf(copy, sizeof copy, "%s", what);
    if (!strncmp(copy, "abstract:", 9)) {
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        size_t n = strlen(copy + 9);
        memcpy(a.sun_path + 1, copy + 9, n);
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        return connect(fd, (struct sockaddr *)&a, sizeof(sa_family_t) + 1 + n) ? errno : 0;
    }
    char *host = copy + 4, *port = strrchr(copy, ':');
    *port++ = 0;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(port)) };
    if (!strcmp(host, "gateway")) {
        FILE *f = fopen("/proc/net/route", "r");
        char line[256]; unsigned dest, gw;
        while (f && fgets(line, sizeof line, f))
            if (sscanf(line, "%*s %x %x", &dest, &gw) == 2 && dest == 0) a.sin_addr.s_addr = gw;
        if (!a.sin_addr.s_addr) return ENETUNREACH;
    } else inet_pton(AF_INET, host, &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) return 0;
    return errno == EINPROGRESS ? finish(fd) : errno;
}
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        int e = reach(argv[i]);
        printf("%s=%s\n", argv[i], e ? strerrorname_np(e) : "ok");
    }
    return 0;
}
"#;

/// Runs as the test user in the sandbox's own network (the "host"): listens on 127.0.0.1:PORT and on
/// the abstract socket NAME, runs each command of the JSON list it gets, and prints for each its
/// output and how many connections the listeners took meanwhile.
const HOST_SIDE: &str = r#"
import json, socket, subprocess, sys, threading, time
port, name, commands = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
seen = {"tcp": 0, "abstract": 0}
tcp = socket.socket(); tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind(("127.0.0.1", port)); tcp.listen(16)
unix = socket.socket(socket.AF_UNIX); unix.bind("\0" + name); unix.listen(16)
def serve(listener, key):
    while True:
        conn, _ = listener.accept(); seen[key] += 1; conn.close()
for listener, key in [(tcp, "tcp"), (unix, "abstract")]:
    threading.Thread(target=serve, args=(listener, key), daemon=True).start()
for label, command in commands:
    out = subprocess.run(command, capture_output=True, text=True)
    time.sleep(0.3)
    print(f"{label}: status {out.returncode}: {' '.join(out.stdout.split())} "
          f"host-saw tcp={seen['tcp']} abstract={seen['abstract']} {out.stderr.strip()}", flush=True)
    seen["tcp"] = seen["abstract"] = 0
"#;

#[test]
#[ignore = "needs root: sudo tests/run"]
fn the_default_network_reaches_nothing_of_the_hosts_own() {
    require_root();
    tun_usable_by_users();
    let a = alice();
    let root = busybox_rootfs(a);
    compile_into(&root, a, "reach", REACH_PROBE);
    let probe = root.path().join("bin/reach");
    let probe = probe.to_str().unwrap();
    // Holders of the test's own: a holder of another test (in the machine's network) is never
    // joined.
    let (mut sandbox, _runtime) = own_holders("10");
    sandbox.own_network = true;
    let port = "18555";
    let name = format!("urt-reach-{}", std::process::id());
    let targets = [
        format!("tcp:127.0.0.1:{port}"),
        format!("tcp:gateway:{port}"),
        format!("tcp:169.254.1.1:{port}"),
        format!("abstract:{name}"),
    ];
    let runner = install().runner();
    let rootfs = root.path().to_str().unwrap();
    let command = |options: &[&str], in_rootfs: bool| {
        let mut argv: Vec<String> = vec![runner.clone()];
        argv.extend(options.iter().map(|o| o.to_string()));
        if in_rootfs {
            argv.extend([
                "--rootfs".into(),
                rootfs.into(),
                "--".into(),
                "/bin/reach".into(),
            ]);
        } else {
            argv.extend(["--".into(), probe.into()]);
        }
        argv.extend(targets.iter().cloned());
        argv
    };
    let commands = serde_json::json!([
        ["private (the holder's)", command(&[], true)],
        ["private again (joined)", command(&[], true)],
        [
            "private without a holder",
            command(&["--holder-idle", "0"], true)
        ],
        [
            "private under keep-id",
            command(&["--map", "keep-id"], true)
        ],
        ["--net host", command(&["--net", "host"], true)],
        [
            "asked for the gateway",
            command(&["--net", "pasta:--map-gw"], true)
        ],
        ["host mode", command(&[], false)],
    ]);
    let out = sandbox.run_as(
        a,
        &[
            "/usr/bin/python3",
            "-c",
            HOST_SIDE,
            port,
            &name,
            &commands.to_string(),
        ],
    );
    out.assert_code(0);
    let text = out.stdout_text();
    let line = |label: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{label}:")))
            .unwrap_or_else(|| panic!("no line for {label}: {text}"))
            .to_string()
    };
    for label in [
        "private (the holder's)",
        "private again (joined)",
        "private without a holder",
        "private under keep-id",
    ] {
        let seen = line(label);
        assert!(seen.contains("status 0:"), "{seen}");
        assert!(seen.contains("host-saw tcp=0 abstract=0"), "{seen}");
        assert!(
            seen.contains(&format!("tcp:127.0.0.1:{port}=ECONNREFUSED"))
                && seen.contains(&format!("abstract:{name}=ECONNREFUSED")),
            "{seen}"
        );
        for through_pasta in ["gateway", "169.254.1.1"] {
            assert!(
                !seen.contains(&format!("tcp:{through_pasta}:{port}=ok")),
                "{seen}"
            );
        }
    }
    // Only when asked for (podman's pasta:--map-gw), the gateway address leads to the host's own
    // services: the probe would see that mapping.
    let asked = line("asked for the gateway");
    assert!(
        asked.contains(&format!("tcp:gateway:{port}=ok"))
            && asked.contains(&format!("tcp:127.0.0.1:{port}=ECONNREFUSED"))
            && asked.contains("host-saw tcp=1 abstract=0"),
        "{asked}"
    );
    for label in ["--net host", "host mode"] {
        let seen = line(label);
        assert!(
            seen.contains(&format!("tcp:127.0.0.1:{port}=ok"))
                && seen.contains(&format!("abstract:{name}=ok")),
            "{seen}"
        );
        assert!(seen.contains("host-saw tcp=1 abstract=1"), "{seen}");
    }
}

/// A sandbox whose holders are its own (a runtime directory of the test's: another test's holder is
/// never joined), with `idle` seconds of idle time.
fn own_holders(idle: &str) -> (Sandbox, TempDir) {
    let runtime = TempDir::new("net-runtime");
    give_to(alice(), runtime.path());
    std::fs::set_permissions(
        runtime.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let mut s = sandbox();
    s.env.retain(|(k, _)| k != "UNSHARE_RUN_HOLDER_IDLE");
    s.env.push(("UNSHARE_RUN_HOLDER_IDLE".into(), idle.into()));
    s.env.push((
        "XDG_RUNTIME_DIR".into(),
        runtime.path().display().to_string(),
    ));
    (s, runtime)
}

/// `script` in a default container on `root`, as alice in `sandbox`.
fn in_container(sandbox: &Sandbox, root: &TempDir, script: &str) -> std::process::Output {
    let rootfs = root.path().to_str().unwrap();
    sandbox.run_as(
        alice(),
        &[
            &install().runner(),
            "--rootfs",
            rootfs,
            "--",
            "sh",
            "-c",
            script,
        ],
    )
}

/// The pids of the holder serving in `runtime` and of its children (its pasta, the network's keeper).
fn holder_and_children(runtime: &TempDir) -> Vec<String> {
    let pgrep = |args: &[&str]| {
        let out = std::process::Command::new("pgrep")
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let holders = pgrep(&[
        "-f",
        &format!("serve-as-holder {}", runtime.path().display()),
    ]);
    let mut all = holders.clone();
    for holder in &holders {
        all.extend(pgrep(&["-P", holder]));
    }
    all
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn three_containers_at_once_each_reach_the_outside() {
    require_root();
    tun_usable_by_users();
    let a = alice();
    let root = busybox_rootfs(a);
    let (sandbox, _runtime) = own_holders("10");
    let rootfs = root.path().to_str().unwrap();
    let script = "nslookup deb.debian.org >/dev/null && echo dns-ok; \
        wget -q -O /dev/null http://deb.debian.org/debian/dists/bookworm/Release && echo fetched";
    let dirs: Vec<TempDir> = (0..3).map(|_| TempDir::new("three")).collect();
    let runner = install().runner();
    let running: Vec<std::process::Child> = dirs
        .iter()
        .map(|dir| {
            sandbox
                .command_as(
                    a,
                    &[&runner, "--rootfs", rootfs, "--", "sh", "-c", script],
                    dir,
                )
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in running {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert_eq!(out.stdout_text(), "dns-ok\nfetched\n", "{out:?}");
    }
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn the_holders_pasta_serves_a_container_to_its_end_and_goes_with_the_holder() {
    require_root();
    tun_usable_by_users();
    let a = alice();
    let root = busybox_rootfs(a);
    // An idle time of 1 s, shorter than the container: the holder must wait for it.
    let (sandbox, runtime) = own_holders("1");
    let out = in_container(
        &sandbox,
        &root,
        "sleep 3; nslookup deb.debian.org >/dev/null && echo dns-ok",
    );
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "dns-ok\n");
    // Once idle, the holder ends, and its pasta and keeper with it.
    assert!(
        wait_for(Duration::from_secs(5), || holder_and_children(&runtime)
            .is_empty()),
        "still running: {:?}",
        holder_and_children(&runtime)
    );
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_holder_whose_pasta_was_killed_ends_and_the_next_start_gets_a_working_one() {
    require_root();
    tun_usable_by_users();
    let a = alice();
    let root = busybox_rootfs(a);
    let (sandbox, runtime) = own_holders("30");
    let resolve = || {
        in_container(
            &sandbox,
            &root,
            "nslookup deb.debian.org >/dev/null && echo dns-ok",
        )
    };
    let first = resolve();
    first.assert_code(0);
    assert_eq!(first.stdout_text(), "dns-ok\n");
    let running = holder_and_children(&runtime);
    assert_eq!(running.len(), 2, "a holder and its pasta: {running:?}");
    // pasta is the holder's child (listed after it).
    run_ok(std::process::Command::new("kill").args(["-KILL", &running[1]]));
    assert!(
        wait_for(Duration::from_secs(5), || holder_and_children(&runtime)
            .is_empty()),
        "the holder outlived its pasta: {:?}",
        holder_and_children(&runtime)
    );
    let second = resolve();
    second.assert_code(0);
    assert_eq!(second.stdout_text(), "dns-ok\n");
}
