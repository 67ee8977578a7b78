//! Differential tests: our helpers and shadow's (Debian's `uidmap`, /usr/bin/newuidmap) on the same
//! fixtures and requests must reach the same decision and leave the same uid_map/gid_map/setgroups,
//! except in the documented cases where ours is deliberately stricter or accepts more.

use unshare_run_test_support::*;

const SHADOW_NEWUIDMAP: &str = "/usr/bin/newuidmap";
const SHADOW_NEWGIDMAP: &str = "/usr/bin/newgidmap";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    /// Same decision and same resulting files.
    Same,
    /// Ours refuses what shadow 4.13 allows (a fixed shadow bug or a stricter rule).
    OursStricter,
}

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    granted: bool,
    map: String,
    setgroups: String,
}

struct Case {
    name: &'static str,
    gid: bool,
    subid: Fixture,
    /// Arguments after the pid; `{uid}`/`{gid}` are replaced by alice's ids.
    request: &'static str,
    /// Map already written to the target before the helper runs (second-write case).
    prewrite: Option<&'static str>,
    expect: Expect,
}

fn case(
    name: &'static str,
    gid: bool,
    lines: &[&str],
    request: &'static str,
    expect: Expect,
) -> Case {
    let n = alice().name;
    let lines: Vec<String> = lines
        .iter()
        .map(|l| {
            l.replace("{name}", n)
                .replace("{uid}", &alice().uid.to_string())
        })
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    Case {
        name,
        gid,
        subid: Fixture::lines(&refs),
        request,
        prewrite: None,
        expect,
    }
}

fn run_case(helper: &str, c: &Case) -> Outcome {
    let a = alice();
    let target = Target::spawn(a);
    let pid = target.pid_arg();
    let request = c
        .request
        .replace("{uid}", &a.uid.to_string())
        .replace("{gid}", &a.gid.to_string());
    let sandbox = Sandbox::new(c.subid.clone(), c.subid.clone());
    if let Some(first) = c.prewrite {
        let mut argv = vec![helper, pid.as_str()];
        argv.extend(first.split_whitespace());
        sandbox.run_as(a, &argv).assert_code(0);
    }
    let mut argv = vec![helper, pid.as_str()];
    argv.extend(request.split_whitespace());
    let out = sandbox.run_as(a, &argv);
    assert!(
        out.code() == 0 || out.code() == 1,
        "{helper} {}: exit {} {}",
        c.name,
        out.code(),
        out.stderr_text()
    );
    Outcome {
        granted: out.code() == 0,
        map: if c.gid {
            target.gid_map()
        } else {
            target.uid_map()
        },
        setgroups: target.setgroups(),
    }
}

fn cases() -> Vec<Case> {
    use Expect::*;
    let mut v = vec![
        case(
            "exact range",
            false,
            &["{name}:100000:65536"],
            "0 100000 65536",
            Same,
        ),
        case(
            "own uid and range",
            false,
            &["{name}:100000:65536"],
            "0 {uid} 1 1 100000 65536",
            Same,
        ),
        case(
            "exceeds by one",
            false,
            &["{name}:100000:65536"],
            "0 100000 65537",
            Same,
        ),
        case(
            "starts one early",
            false,
            &["{name}:100000:65536"],
            "0 99999 2",
            Same,
        ),
        case(
            "sub-range",
            false,
            &["{name}:100000:65536"],
            "0 100005 10",
            Same,
        ),
        case(
            "adjacent entries combine",
            false,
            &["{name}:100000:10", "{name}:100010:10"],
            "0 100000 20",
            Same,
        ),
        case(
            "gap between entries",
            false,
            &["{name}:100000:10", "{name}:100011:10"],
            "0 100000 21",
            Same,
        ),
        case(
            "numeric uid entry",
            false,
            &["{uid}:200000:100"],
            "0 200000 100",
            Same,
        ),
        case(
            "other user's entry",
            false,
            &["urt-bob:300000:65536", "{name}:100000:10"],
            "0 300000 10",
            Same,
        ),
        case(
            "prefix of another name",
            false,
            &["{name}x:300000:65536"],
            "0 300000 10",
            Same,
        ),
        case(
            "malformed lines around",
            false,
            &[
                "garbage",
                "",
                "{name}:x:1",
                "{name}:100000:65536",
                "{name}:1:2:3",
            ],
            "0 100000 65536",
            Same,
        ),
        case("own uid only", false, &[], "0 {uid} 1", Same),
        case("own uid, count 2", false, &[], "0 {uid} 2", Same),
        case(
            "hex and octal arguments",
            false,
            &["{name}:100000:65536"],
            "0 0x186a0 010",
            Same,
        ),
        case(
            "zero count",
            false,
            &["{name}:100000:65536"],
            "0 100000 0",
            Same,
        ),
        case(
            "wrapping range",
            false,
            &["{name}:100000:65536"],
            "0 4294967295 1",
            Same,
        ),
        case(
            "overlapping triplets",
            false,
            &["{name}:100000:65536"],
            "0 100000 10 5 100020 10",
            Same,
        ),
        case(
            "not a number",
            false,
            &["{name}:100000:65536"],
            "0 100000 1x",
            Same,
        ),
        case("own gid only: setgroups deny", true, &[], "0 {gid} 1", Same),
        case(
            "subgid range: setgroups allow",
            true,
            &["{name}:100000:65536"],
            "0 {gid} 1 1 100000 65536",
            Same,
        ),
        case(
            "gid exceeds by one",
            true,
            &["{name}:100000:65536"],
            "0 100000 65537",
            Same,
        ),
        // shadow <= 4.19: a count-0 entry covers every id (fixed in 4.20).
        case(
            "user:0:0 maps root",
            false,
            &["{name}:0:0"],
            "0 0 1",
            OursStricter,
        ),
        case(
            "user:0:0 maps a range",
            false,
            &["{name}:0:0"],
            "0 100000 65536",
            OursStricter,
        ),
        // shadow 4.13 reads `user:1:2:x` as `user:1:2`; ours takes a line of four fields as invalid
        // (one reader decides what newuidmap grants and what getsubids lists).
        case(
            "a fourth field",
            false,
            &["{name}:100000:65536:extra"],
            "0 100000 65536",
            OursStricter,
        ),
    ];
    let mut second = case(
        "second write",
        false,
        &["{name}:100000:65536"],
        "0 100010 10",
        Same,
    );
    second.prewrite = Some("0 100000 10");
    v.push(second);
    v
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn same_decisions_and_maps_as_shadow() {
    require_root();
    assert!(
        std::path::Path::new(SHADOW_NEWUIDMAP).exists(),
        "shadow's helpers are missing: apt-get install uidmap"
    );
    let ours_uid = install().setuid("newuidmap");
    let ours_gid = install().setuid("newgidmap");
    let mut failures = Vec::new();
    for c in cases() {
        let (ours, theirs) = if c.gid {
            (run_case(&ours_gid, &c), run_case(SHADOW_NEWGIDMAP, &c))
        } else {
            (run_case(&ours_uid, &c), run_case(SHADOW_NEWUIDMAP, &c))
        };
        let ok = match c.expect {
            Expect::Same => ours == theirs,
            Expect::OursStricter => !ours.granted && theirs.granted,
        };
        if !ok {
            failures.push(format!(
                "{} ({:?}): ours {ours:?}, shadow {theirs:?}",
                c.name, c.expect
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "differences from shadow:\n{}",
        failures.join("\n")
    );
}

/// A symlinked /etc/subuid is refused by both; a world-writable or user-owned one only by ours.
#[test]
#[ignore = "needs root: sudo tests/run"]
fn untrusted_subuid_files() {
    require_root();
    let line = format!("{}:100000:65536\n", alice().name);
    for (fixture, shadow_grants) in [
        (Fixture::Symlink(line.clone()), false),
        (
            Fixture::WithMode {
                content: line.clone(),
                mode: 0o666,
                owner: "root".into(),
            },
            true,
        ),
        (
            Fixture::WithMode {
                content: line.clone(),
                mode: 0o644,
                owner: alice().name.into(),
            },
            true,
        ),
    ] {
        let c = Case {
            name: "untrusted file",
            gid: false,
            subid: fixture,
            request: "0 100000 65536",
            prewrite: None,
            expect: Expect::OursStricter,
        };
        let ours = run_case(&install().setuid("newuidmap"), &c);
        let theirs = run_case(SHADOW_NEWUIDMAP, &c);
        assert!(!ours.granted, "{ours:?} {:?}", c.subid);
        assert_eq!(theirs.granted, shadow_grants, "{theirs:?} {:?}", c.subid);
    }
}

/// A real pidfd: shadow cannot take one, ours can.
#[test]
#[ignore = "needs root: sudo tests/run"]
fn ours_accepts_a_pidfd_that_shadow_refuses() {
    require_root();
    use std::os::fd::AsRawFd;
    let sandbox = Sandbox::both(&[&format!("{}:100000:65536", alice().name)]);
    for (helper, should_work) in [
        (install().setuid("newuidmap"), true),
        (SHADOW_NEWUIDMAP.to_string(), false),
    ] {
        let t = Target::spawn(alice());
        let pidfd = unshare_run_helpers::pidfd_open(t.pid).unwrap();
        nix::fcntl::fcntl(
            &pidfd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        )
        .unwrap();
        let out = sandbox.run_as(
            alice(),
            &[
                &helper,
                &format!("fd:{}", pidfd.as_raw_fd()),
                "0",
                "100000",
                "65536",
            ],
        );
        drop(pidfd);
        assert_eq!(
            out.code() == 0,
            should_work,
            "{helper}: {}",
            out.stderr_text()
        );
        assert_eq!(t.uid_map().is_empty(), !should_work, "{helper}");
    }
}
