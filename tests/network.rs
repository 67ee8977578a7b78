//! --net pasta: a network of the container's own that reaches the outside (DNS through pasta),
//! published TCP and UDP ports, no pasta left behind; apt in a Debian root filesystem through it.
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

fn pasta_running_for(user: &TestUser) -> bool {
    // By command line: pasta re-executes itself as passt.avx2 where the CPU allows.
    processes_of(user, "^pasta ")
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
        &[
            "--net",
            "pasta",
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
fn publish_needs_pasta() {
    require_root();
    sandbox()
        .run_as(
            alice(),
            &[&install().runner(), "-p", "8080:80", "--", "true"],
        )
        .assert_code(125)
        .assert_stderr_contains("--publish needs --net pasta");
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn apt_update_through_pasta_in_a_debian_rootfs() {
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
            "--net",
            "pasta",
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
        .assert_stderr_contains("cannot run pasta")
        .assert_stderr_contains("apt-get install passt");
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
