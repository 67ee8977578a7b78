//! The man pages render without a single groff warning. (The runner's pages are generated from the
//! verb table and kept current by a unit test in src/runner/commands.rs; the helpers' pages are written
//! by hand.)

use std::process::Command;

#[test]
fn man_pages_render_without_warnings() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/man");
    for page in [
        "unshare-run.1",
        "unshare-run-images.1",
        "unshare-run-images-list.1",
        "unshare-run-images-import.1",
        "unshare-run-images-rm.1",
        "unshare-run-doctor.1",
        "newuidmap.1",
        "newgidmap.1",
    ] {
        let path = format!("{dir}/{page}");
        let out = Command::new("groff")
            .args(["-ww", "-man", "-Tutf8", "-z"])
            .arg(&path)
            .output()
            .expect("groff missing: apt-get install groff-base");
        assert!(out.status.success(), "{page}: groff failed");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "",
            "{page}: groff warnings"
        );
    }
}

#[test]
fn helper_pages_document_the_interface() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/man");
    for (page, file, capability) in [
        ("newuidmap.1", "/etc/subuid", "CAP_SETUID"),
        ("newgidmap.1", "/etc/subgid", "CAP_SETGID"),
    ] {
        let text = std::fs::read_to_string(format!("{dir}/{page}")).unwrap();
        for needle in [
            ".SH SYNOPSIS",
            ".SH EXIT STATUS",
            ".SH FILES",
            ".SH SECURITY",
            file,
            capability,
            "fd:",
        ] {
            assert!(text.contains(needle), "{page} lacks {needle:?}");
        }
    }
    let gid = std::fs::read_to_string(format!("{dir}/newgidmap.1")).unwrap();
    assert!(gid.contains("setgroups") && gid.contains("CVE\\-2018\\-7169"));
}

/// The generated bash completion completes option names and their values.
#[test]
fn bash_completion_completes_options_and_values() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/completions/unshare-run.bash");
    let complete = |words: &str, cword: usize, cur: &str, prev: &str| {
        let shell = format!(
            "source {script}; COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE=\"{words}\"; \
             COMP_POINT=${{#COMP_LINE}}; _unshare__run unshare-run '{cur}' '{prev}'; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\""
        );
        let out = Command::new("bash").arg("-c").arg(shell).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        complete("unshare-run --ma", 1, "--ma", "unshare-run"),
        "--map\n"
    );
    assert_eq!(
        complete("unshare-run --map ''", 2, "", "--map"),
        "auto\nfull\nroot\ncurrent\n"
    );
    assert_eq!(
        complete("unshare-run --net ''", 2, "", "--net"),
        "host\nnone\npasta\n"
    );
}
