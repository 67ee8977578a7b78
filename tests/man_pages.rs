//! The man pages render without a single groff warning. (The runner's pages are generated from the
//! verb table and kept current by a unit test in src/runner/commands.rs; the helpers' and getsubids'
//! pages are written by hand.)

use std::process::Command;

#[test]
fn man_pages_render_without_warnings() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/man");
    let mut pages: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".1"))
        .collect();
    pages.sort();
    // Every page there is, the generated ones (one per verb) among them.
    for required in ["unshare-run.1", "unshare-run-images-pull.1", "getsubids.1"] {
        assert!(pages.iter().any(|p| p == required), "{required} missing");
    }
    for page in &pages {
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

/// getsubids(1) documents its interface and says, case by case, where it follows shadow and where it
/// differs (each difference with its reason).
#[test]
fn getsubids_page_lists_each_case() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/man/getsubids.1")).unwrap();
    for needle in [
        ".SH SYNOPSIS",
        ".SH EXIT STATUS",
        ".SH FILES",
        ".SH SECURITY",
        ".SH COMPATIBILITY",
        ".SS As shadow",
        ".SS Differs",
        "/etc/subuid",
        "/etc/subgid",
        "Error fetching ranges",
        "kubelet",
    ] {
        assert!(text.contains(needle), "getsubids.1 lacks {needle:?}");
    }
    let differs = text.split(".SS Differs").nth(1).unwrap();
    let differs = differs.split(".SH ").next().unwrap();
    let items = differs.split(".IP \\(bu 2").skip(1).collect::<Vec<_>>();
    // One item per deliberate difference (tests/getsubids.rs has a test for each).
    assert_eq!(items.len(), 6, "{differs}");
    for item in &items {
        assert!(
            item.contains("Why:"),
            "a difference without its reason: {item}"
        );
    }
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
        "auto\nfull\nkeep-id\nroot\ncurrent\n"
    );
    // podman's name for it.
    assert_eq!(
        complete("unshare-run --userns k", 2, "k", "--userns"),
        "keep-id\n"
    );
    assert_eq!(
        complete("unshare-run --net ''", 2, "", "--net"),
        "private\nhost\nnone\npasta\n"
    );
}
