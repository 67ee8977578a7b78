//! etc/apparmor.d/unshare-run: grants the `userns` rule (what Ubuntu 23.10+ requires for unprivileged
//! user namespaces) and is otherwise a valid profile. Debian 12's apparmor_parser (3.0) predates the
//! rule and AppArmor 4.0's abi, so the profile is parsed without those two lines.

use std::process::Command;

const PROFILE: &str = include_str!("../etc/apparmor.d/unshare-run");

#[test]
fn profile_grants_userns_to_unshare_run() {
    let rules: Vec<&str> = PROFILE
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    assert!(rules.contains(&"userns,"), "the userns rule is missing");
    assert!(
        rules.contains(&"abi <abi/4.0>,"),
        "the userns rule needs the 4.0 abi"
    );
    assert!(
        rules
            .iter()
            .any(|l| l.starts_with("profile unshare-run /usr/{,local/}bin/unshare-run")),
        "the profile must attach to the installed unshare-run"
    );
}

#[test]
fn profile_parses_without_the_apparmor_4_lines() {
    let older: String = PROFILE
        .lines()
        .filter(|l| !matches!(l.trim(), "userns," | "abi <abi/4.0>,"))
        .map(|l| format!("{l}\n"))
        .collect();
    let dir = std::env::temp_dir().join(format!("apparmor-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("unshare-run");
    std::fs::write(&path, older).unwrap();
    let parser = ["/usr/sbin/apparmor_parser", "/sbin/apparmor_parser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("apparmor_parser missing: apt-get install apparmor");
    // -Q: parse and compile only, load nothing; -K: do not use or write the cache.
    let out = Command::new(parser)
        .args(["-Q", "-K"])
        .arg(&path)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        out.status.success(),
        "apparmor_parser refused the profile: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
