//! getsubids against shadow's (/usr/bin/getsubids, Debian's uidmap 4.13): on the same fixtures and
//! command lines, run as a test user in a private mount namespace, the same standard output, standard
//! error and exit status (`same_output_as_shadow`). Each deliberate difference (man/getsubids.1,
//! COMPATIBILITY) has a test of its own that shows what shadow does and what ours does instead. Also:
//! the kubelet's contract, the privilege drop, and that the environment changes nothing.

use std::os::unix::fs::PermissionsExt;
use std::process::Output;
use std::sync::OnceLock;

use unshare_run_test_support::*;

const SHADOW: &str = "/usr/bin/getsubids";

/// Ours as the Debian package installs it: a 0755 copy of the built binary named getsubids.
fn ours() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = scratch_root().join("getsubids-bin");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let dest = dir.join("getsubids");
        std::fs::copy(built_binary(), &dest).unwrap();
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755)).unwrap();
        dest.to_str().unwrap().to_string()
    })
}

fn require_shadow() {
    assert!(
        std::path::Path::new(SHADOW).exists(),
        "shadow's getsubids is missing: apt-get install uidmap"
    );
}

/// `{alice}`, `{alice_uid}`, `{bob}`, `{bob_uid}` replaced by the test users'.
fn subst(text: &str) -> String {
    text.replace("{alice_uid}", &alice().uid.to_string())
        .replace("{bob_uid}", &bob().uid.to_string())
        .replace("{alice}", alice().name)
        .replace("{bob}", bob().name)
}

fn lines(lines: &[&str]) -> Fixture {
    let text: Vec<String> = lines.iter().map(|l| subst(l)).collect();
    Fixture::lines(&text.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Passwd and group entries that exist only inside a sandbox (its /etc is an overlay).
fn sandbox_user(name: &str, uid: u32, gid: u32) -> String {
    format!(
        "echo '{name}:x:{uid}:{gid}::/nonexistent:/bin/false' >> /etc/passwd\n\
         echo '{name}:x:{gid}:' >> /etc/group\n"
    )
}

struct Case {
    name: &'static str,
    subuid: Fixture,
    subgid: Fixture,
    /// Root shell commands in the sandbox before the run (users only the sandbox knows, odd files).
    setup: String,
    /// The arguments; `{...}` as in `subst`.
    args: Vec<String>,
    /// Instead of the arguments: a shell command that runs the program as "$0" (redirections, bytes
    /// that are not UTF-8).
    shell: Option<String>,
}

impl Case {
    fn new(name: &'static str, subuid: Fixture, args: &[&str]) -> Case {
        Case {
            name,
            subgid: subuid.clone(),
            subuid,
            setup: String::new(),
            args: args.iter().map(|a| subst(a)).collect(),
            shell: None,
        }
    }
    fn subgid(mut self, subgid: Fixture) -> Case {
        self.subgid = subgid;
        self
    }
    fn setup(mut self, setup: &str) -> Case {
        self.setup.push_str(&subst(setup));
        self
    }
    fn shell(mut self, shell: &str) -> Case {
        self.shell = Some(subst(shell));
        self
    }

    fn run(&self, program: &str) -> Output {
        let mut sandbox = Sandbox::new(self.subuid.clone(), self.subgid.clone());
        sandbox.setup = self.setup.clone();
        let mut argv: Vec<&str> = Vec::new();
        match &self.shell {
            Some(shell) => argv.extend(["sh", "-c", shell.as_str(), program]),
            None => {
                argv.push(program);
                argv.extend(self.args.iter().map(String::as_str));
            }
        }
        sandbox.run_as(alice(), &argv)
    }
}

/// Exit status, stdout and stderr, for comparing and for messages.
fn outcome(out: &Output) -> (i32, String, String) {
    (out.code(), out.stdout_text(), out.stderr_text())
}

fn usage() -> String {
    "Usage: getsubids [-g] user\n    list subuid ranges for user\n    pass -g to list subgid ranges\n"
        .to_string()
}

/// Every case in which ours must answer as shadow does, byte for byte.
fn same_cases() -> Vec<Case> {
    let one = || lines(&["{alice}:100000:65536"]);
    let both_users = || {
        lines(&[
            "{bob}:400000:65536",
            "{alice}:100000:65536",
            "{alice_uid}:200000:1000",
            "{bob_uid}:500000:10",
            "{alice}:300000:10",
        ])
    };
    let mut long_1023 = subst("{alice}:");
    long_1023.push_str(&"0".repeat(1023 - long_1023.len() - "7:7".len()));
    long_1023.push_str("7:7");
    let long_1024 = format!("{}0{}", &long_1023[..long_1023.len() - 3], "8:8");
    let mut big: String = (1..100_000u64)
        .map(|i| format!("user{i}:{}:65536\n", 200_000 + 65_536 * i))
        .collect();
    big.push_str(&subst("{alice}:100000:65536\n"));
    let subgid_only = lines(&["{alice}:700000:65536", "{alice_uid}:800000:10"]);
    vec![
        // Entries.
        Case::new("a name entry", one(), &["{alice}"]),
        Case::new(
            "name and uid entries in file order",
            both_users(),
            &["{alice}"],
        ),
        Case::new("another user's ranges", both_users(), &["{bob}"]),
        Case::new(
            "adjacent ranges stay separate lines",
            lines(&["{alice}:100000:10", "{alice}:100010:10", "{alice}:100020:5"]),
            &["{alice}"],
        ),
        Case::new(
            "overlapping and repeated ranges",
            lines(&[
                "{alice}:100000:100",
                "{alice}:100050:100",
                "{alice}:100000:100",
            ]),
            &["{alice}"],
        ),
        Case::new(
            "a numeric argument matches numeric lines only",
            both_users(),
            &["{alice_uid}"],
        ),
        Case::new(
            "a numeric owner with a leading zero is not the uid",
            lines(&["0{alice_uid}:100000:10"]),
            &["{alice}"],
        ),
        Case::new(
            "count-0 entries are listed",
            lines(&[
                "{alice}:100000:0",
                "{alice}:200000:65536",
                "{alice_uid}:0:0",
            ]),
            &["{alice}"],
        ),
        Case::new(
            "only a count-0 entry",
            lines(&["{alice}:0:0"]),
            &["{alice}"],
        ),
        Case::new(
            "hex and octal numbers are printed in decimal",
            lines(&["{alice}:0x186a0:0200000", "{alice}:0X10:00"]),
            &["{alice}"],
        ),
        Case::new(
            "ids past 2^32 are printed as read",
            lines(&["{alice}:4294967296:65536", "{alice}:4294967295:1"]),
            &["{alice}"],
        ),
        Case::new(
            "comments, blanks, NIS and malformed lines are skipped",
            lines(&[
                "# {alice}:1:1",
                "#{alice}:1:1",
                "",
                "+{alice}:2:2",
                "-{alice}:3:3",
                "{alice}:x:1",
                "{alice}:1",
                "{alice}",
                " {alice}:5:5",
                "{alice} :6:6",
                "{alice}:7:7\r",
                "{alice}:08:1",
                "{alice}:0x:1",
                ":9:9",
                "{alice}:100000:65536",
                "{alice}x:10:10",
                "x{alice}:11:11",
            ]),
            &["{alice}"],
        ),
        Case::new(
            "a line of 1023 bytes is read, one of 1024 is not",
            Fixture::lines(&[&long_1023, &long_1024]),
            &["{alice}"],
        ),
        Case::new(
            "a last line without newline is read",
            Fixture::Content(subst("{bob}:1:1\n{alice}:100000:65536")),
            &["{alice}"],
        ),
        Case::new(
            "100,000 lines, the user's last",
            Fixture::Content(big),
            &["{alice}"],
        ),
        // Users.
        Case::new(
            "a user without a passwd entry: name lines only",
            lines(&["urt-ghost:300000:65536", "4321:1:1", "{alice}:100000:65536"]),
            &["urt-ghost"],
        ),
        Case::new("a user without lines", both_users(), &["urt-ghost"]),
        Case::new(
            "a user whose name is its uid in digits: each line twice",
            lines(&["4403:100000:65536", "4403:200000:10"]),
            &["4403"],
        )
        .setup(&sandbox_user("4403", 4403, 4403)),
        Case::new(
            "a name that is not UTF-8: its name and uid lines",
            Fixture::Missing,
            &[],
        )
        .setup(
            "printf '\\377:x:4404:4404::/nonexistent:/bin/false\\n' >> /etc/passwd\n\
             printf '\\377:100000:65536\\n4404:200000:10\\n1:1:1\\n' > /etc/subuid",
        )
        .shell("exec \"$0\" \"$(printf '\\377')\""),
        // Files.
        Case::new(
            "an empty file",
            Fixture::Content(String::new()),
            &["{alice}"],
        ),
        Case::new("a missing file", Fixture::Missing, &["{alice}"]),
        Case::new(
            "a symlinked file",
            Fixture::Symlink(subst("{alice}:100000:65536\n")),
            &["{alice}"],
        ),
        Case::new(
            "an unreadable file",
            Fixture::WithMode {
                content: subst("{alice}:100000:65536\n"),
                mode: 0o600,
                owner: "root".into(),
            },
            &["{alice}"],
        ),
        Case::new("a directory", Fixture::Missing, &["{alice}"]).setup("mkdir /etc/subuid"),
        // -g and /etc/subgid.
        Case::new("-g reads /etc/subgid", both_users(), &["-g", "{alice}"])
            .subgid(subgid_only.clone()),
        Case::new("without -g, /etc/subuid", both_users(), &["{alice}"])
            .subgid(subgid_only.clone()),
        Case::new(
            "-g with /etc/subgid missing",
            both_users(),
            &["-g", "{alice}"],
        )
        .subgid(Fixture::Missing),
        Case::new(
            "-g: numeric lines of a user whose group has its uid",
            lines(&["urt-gs-same:1:1"]),
            &["-g", "urt-gs-same"],
        )
        .subgid(lines(&["4410:100000:65536", "urt-gs-same:200000:10"]))
        .setup(&sandbox_user("urt-gs-same", 4410, 4410)),
        // Command lines.
        Case::new("no argument", one(), &[]),
        Case::new("-h", one(), &["-h"]),
        Case::new("-g alone is a user named -g", one(), &["-g"]),
        Case::new("--help is a user named --help", one(), &["--help"]),
        Case::new("--version", one(), &["--version"]),
        Case::new("an empty user name", one(), &[""]),
        Case::new("-h and a user", one(), &["-h", "{alice}"]),
        Case::new("-g after the user", one(), &["{alice}", "-g"]),
        Case::new("a second user is ignored", one(), &["{alice}", "{bob}"]),
        Case::new("-g and two users", one(), &["-g", "{alice}", "{bob}"]),
        Case::new("--", one(), &["--", "{alice}"]),
        Case::new("-G", one(), &["-G", "{alice}"]),
        Case::new("-g -h", one(), &["-g", "-h"]),
        Case::new("-g -g", one(), &["-g", "-g"]),
        // Output.
        Case::new("standard output closed", one(), &[]).shell("exec \"$0\" {alice} >&-"),
    ]
}

#[test]
#[ignore = "needs root: sudo tests/run"]
fn same_output_as_shadow() {
    require_root();
    require_shadow();
    let mut failures = Vec::new();
    let cases = same_cases();
    for c in &cases {
        let (ours, theirs) = (outcome(&c.run(ours())), outcome(&c.run(SHADOW)));
        if ours != theirs {
            failures.push(format!(
                "{}:\n  ours   {ours:?}\n  shadow {theirs:?}",
                c.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from shadow:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The expected answers of a few cases, so that the comparison above is not of two equal mistakes.
#[test]
#[ignore = "needs root: sudo tests/run"]
fn known_answers() {
    require_root();
    let a = alice();
    let c = Case::new(
        "",
        lines(&[
            "{bob}:400000:65536",
            "{alice}:100000:65536",
            "{alice_uid}:200000:1000",
            "{alice}:300000:0",
        ]),
        &["{alice}"],
    );
    assert_eq!(
        outcome(&c.run(ours())),
        (
            0,
            format!(
                "0: {n} 100000 65536\n1: {n} 200000 1000\n2: {n} 300000 0\n",
                n = a.name
            ),
            String::new()
        )
    );
    let none = Case::new("", lines(&["{bob}:400000:65536"]), &["{alice}"]);
    assert_eq!(
        outcome(&none.run(ours())),
        (1, String::new(), "Error fetching ranges\n".into())
    );
    let usage_case = Case::new("", lines(&[]), &[]);
    assert_eq!(
        outcome(&usage_case.run(ours())),
        (1, String::new(), usage())
    );
}

/// The kubelet (KEP-127, pkg/kubelet getKubeletMappings) runs `getsubids kubelet` and `getsubids -g
/// kubelet`: the outputs must be byte-identical, one line of four fields, field 3 the start and
/// field 4 the count, both multiples of 65536, start >= 65536 and count >= 65536 x 110 pods.
#[test]
#[ignore = "needs root: sudo tests/run"]
fn kubelet_contract() {
    require_root();
    require_shadow();
    let c = |args: &[&str]| {
        Case::new("kubelet", lines(&["kubelet:65536:7208960"]), args)
            .setup(&sandbox_user("kubelet", 4450, 4450))
    };
    let uid = c(&["kubelet"]).run(ours());
    let gid = c(&["-g", "kubelet"]).run(ours());
    uid.assert_code(0);
    gid.assert_code(0);
    assert_eq!(uid.stdout, gid.stdout, "uid and gid answers differ");
    let text = uid.stdout_text();
    assert_eq!(text.lines().count(), 1, "{text:?}");
    let fields: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(fields.len(), 4, "{text:?}");
    assert_eq!((fields[2], fields[3]), ("65536", "7208960"));
    let (start, count): (u64, u64) = (fields[2].parse().unwrap(), fields[3].parse().unwrap());
    assert!(start % 65536 == 0 && count % 65536 == 0 && start >= 65536 && count / 65536 >= 110);
    assert_eq!(uid.stdout, c(&["kubelet"]).run(SHADOW).stdout);
    assert_eq!(gid.stdout, c(&["-g", "kubelet"]).run(SHADOW).stdout);
}

// ---------------------------------------------------------------------------------------------------
// The deliberate differences, one test each (man/getsubids.1, COMPATIBILITY)
// ---------------------------------------------------------------------------------------------------

/// shadow's `-g USER` takes the numeric subgid lines of the gid of the *group* named USER, which can
/// be another user's uid: here bob's range. Ours takes USER's uid, as newgidmap does, and shadow's
/// own newgidmap agrees with ours: it refuses the range shadow's getsubids listed.
#[test]
#[ignore = "needs root: sudo tests/run"]
fn minus_g_matches_the_users_uid_not_a_groups_gid() {
    require_root();
    require_shadow();
    let b = bob();
    // urt-gs-odd (uid 4401) has a group of its name whose gid is bob's uid.
    let setup = format!(
        "echo 'urt-gs-odd:x:4401:4401::/nonexistent:/bin/false' >> /etc/passwd\n\
         echo 'urt-gs-odd:x:{}:' >> /etc/group\n",
        b.uid
    );
    let subgid = lines(&["4401:100000:65536", "{bob_uid}:300000:65536"]);
    let c = Case::new("odd group", lines(&[]), &["-g", "urt-gs-odd"])
        .subgid(subgid.clone())
        .setup(&setup);
    assert_eq!(
        outcome(&c.run(SHADOW)).1,
        "0: urt-gs-odd 300000 65536\n",
        "shadow lists bob's range"
    );
    assert_eq!(
        outcome(&c.run(ours())),
        (0, "0: urt-gs-odd 100000 65536\n".into(), String::new())
    );
    // What shadow's newgidmap grants urt-gs-odd: the range by uid, not the one its getsubids listed.
    let odd = TestUser {
        name: "urt-gs-odd",
        uid: 4401,
        gid: 4401,
    };
    let mut sandbox = Sandbox::new(Fixture::Missing, subgid);
    sandbox.setup = setup;
    for (range, granted) in [("300000", false), ("100000", true)] {
        let target = Target::spawn(&odd);
        let out = sandbox.run_as(
            &odd,
            &["/usr/bin/newgidmap", &target.pid_arg(), "0", range, "65536"],
        );
        assert_eq!(out.code() == 0, granted, "{range}: {}", out.stderr_text());
    }
}

/// Lines the helpers' reader refuses are not listed (one reader decides both). shadow's strtoul reads
/// "-1" as 2^64-1 and skips white space, its field split ignores a fourth field, and it does not
/// check that start + count fits: it lists all of these. A consumer adding start and count would wrap
/// around to low ids (root's) with the first and the fourth.
#[test]
#[ignore = "needs root: sudo tests/run"]
fn lines_the_helpers_refuse_are_not_listed() {
    require_root();
    require_shadow();
    let c = Case::new(
        "refused lines",
        lines(&[
            "{alice}:-1:5",
            "{alice}: 9:9",
            "{alice}:100000:65536:x",
            "{alice}:200000:65536:",
            "{alice}:18446744073709551615:2",
            "{alice}:300000:10",
        ]),
        &["{alice}"],
    );
    let n = alice().name;
    assert_eq!(
        outcome(&c.run(SHADOW)).1,
        format!(
            "0: {n} 18446744073709551615 5\n1: {n} 9 9\n2: {n} 100000 65536\n\
             3: {n} 200000 65536\n4: {n} 18446744073709551615 2\n5: {n} 300000 10\n"
        )
    );
    assert_eq!(
        outcome(&c.run(ours())),
        (0, format!("0: {n} 300000 10\n"), String::new())
    );
    // And our newuidmap does not grant the range of the line with a fourth field either.
    let target = Target::spawn(alice());
    let mut sandbox = Sandbox::new(c.subuid.clone(), c.subgid.clone());
    sandbox.setup = c.setup.clone();
    let helper = install().setuid("newuidmap");
    sandbox
        .run_as(
            alice(),
            &[&helper, &target.pid_arg(), "0", "100000", "65536"],
        )
        .assert_code(1);
    assert_eq!(target.uid_map(), "");
}

/// A NUL byte damages one line: shadow's fgets/strlen reading glues the next line onto it and loses
/// both; ours skips only the damaged line.
#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_nul_byte_damages_only_its_line() {
    require_root();
    require_shadow();
    let c = Case::new(
        "NUL",
        Fixture::Content(subst(
            "{alice}:1:1\0junk\n{alice}:100000:65536\n{alice}:300000:10\n",
        )),
        &["{alice}"],
    );
    let n = alice().name;
    assert_eq!(outcome(&c.run(SHADOW)).1, format!("0: {n} 300000 10\n"));
    assert_eq!(
        outcome(&c.run(ours())).1,
        format!("0: {n} 100000 65536\n1: {n} 300000 10\n")
    );
}

/// A subid file that someone other than root could have written is refused (as the helpers refuse
/// it): otherwise its writer would choose the ranges that root's kubelet maps. shadow lists it.
#[test]
#[ignore = "needs root: sudo tests/run"]
fn untrusted_subid_files_are_refused() {
    require_root();
    require_shadow();
    let a = alice();
    let content = subst("{alice}:100000:65536\n");
    for (mode, owner, args) in [
        (0o666, "root", vec!["{alice}"]),
        (0o664, "root", vec!["{alice}"]),
        (0o644, a.name, vec!["{alice}"]),
        (0o666, "root", vec!["-g", "{alice}"]),
    ] {
        let file = Fixture::WithMode {
            content: content.clone(),
            mode,
            owner: owner.into(),
        };
        let c = Case::new("untrusted", file, &args);
        let path = if args[0] == "-g" {
            "/etc/subgid"
        } else {
            "/etc/subuid"
        };
        let uid = if owner == "root" { 0 } else { a.uid };
        assert_eq!(
            outcome(&c.run(SHADOW)),
            (0, format!("0: {} 100000 65536\n", a.name), String::new()),
            "{mode:o} {owner}"
        );
        assert_eq!(
            outcome(&c.run(ours())),
            (
                1,
                String::new(),
                format!(
                    "getsubids: {path} must be owned by root and not writable by others (owner \
                     {uid}, mode {mode:04o})\n"
                )
            ),
            "{mode:o} {owner}"
        );
    }
}

/// A failed write to standard output: shadow exits 0 with its answer lost; ours exits 1 and says so.
#[test]
#[ignore = "needs root: sudo tests/run"]
fn a_failed_write_is_an_error() {
    require_root();
    require_shadow();
    let c = Case::new("full", lines(&["{alice}:100000:65536"]), &[])
        .shell("exec \"$0\" {alice} > /dev/full");
    assert_eq!(outcome(&c.run(SHADOW)), (0, String::new(), String::new()));
    assert_eq!(
        outcome(&c.run(ours())),
        (
            1,
            String::new(),
            "getsubids: write error: No space left on device (os error 28)\n".into()
        )
    );
}

/// shadow's libsubid reads the `subid:` line of /etc/nsswitch.conf and asks that module (sss, for
/// FreeIPA) instead of the files; ours reads the files only, as our helpers do. With a module that
/// does not exist, shadow says so on stderr and falls back to the files.
#[test]
#[ignore = "needs root: sudo tests/run"]
fn nsswitch_subid_modules_are_not_consulted() {
    require_root();
    require_shadow();
    let c = Case::new("nss", lines(&["{alice}:100000:65536"]), &["{alice}"])
        .setup("echo 'subid: urtnosuchmodule' >> /etc/nsswitch.conf");
    let (ours_out, shadow_out) = (outcome(&c.run(ours())), outcome(&c.run(SHADOW)));
    assert!(
        shadow_out
            .2
            .contains("Error opening libsubid_urtnosuchmodule.so"),
        "{shadow_out:?}"
    );
    assert_eq!((ours_out.0, &ours_out.1), (shadow_out.0, &shadow_out.1));
    assert_eq!(ours_out.2, "");
}

// ---------------------------------------------------------------------------------------------------
// Privilege and environment
// ---------------------------------------------------------------------------------------------------

/// The setuid-root file run under the name getsubids (a link, as anyone can make) drops root before
/// reading: a file only root may read stays unread.
#[test]
#[ignore = "needs root: sudo tests/run"]
fn the_setuid_file_as_getsubids_has_no_privilege() {
    require_root();
    let dir = TempDir::new("getsubids-link");
    let link = dir.path().join("getsubids");
    std::os::unix::fs::symlink(install().setuid("newuidmap"), &link).unwrap();
    let file = |mode| Fixture::WithMode {
        content: subst("{alice}:100000:65536\n"),
        mode,
        owner: "root".into(),
    };
    let link = link.to_str().unwrap();
    let readable = Case::new("0644", file(0o644), &["{alice}"]).run(link);
    assert_eq!(
        outcome(&readable),
        (
            0,
            format!("0: {} 100000 65536\n", alice().name),
            String::new()
        ),
        "the link does not run getsubids"
    );
    let unreadable = Case::new("0600", file(0o600), &["{alice}"]).run(link);
    assert_eq!(
        outcome(&unreadable),
        (1, String::new(), "Error fetching ranges\n".into())
    );
}

/// Nothing from the environment changes the answer (shadow's reads none either: its only other input
/// is /etc/nsswitch.conf, above).
#[test]
#[ignore = "needs root: sudo tests/run"]
fn the_environment_changes_nothing() {
    require_root();
    let fixture = lines(&["{alice}:100000:65536", "{alice_uid}:200000:10"]);
    for args in [
        vec!["{alice}"],
        vec!["-g", "{alice}"],
        vec![],
        vec!["urt-ghost"],
    ] {
        let c = Case::new("env", fixture.clone(), &args);
        let plain = outcome(&c.run(ours()));
        let mut sandbox = Sandbox::new(c.subuid.clone(), c.subgid.clone());
        sandbox.env.extend(
            [
                ("LANG", "de_DE.UTF-8"),
                ("LC_ALL", "fr_FR.UTF-8"),
                ("LANGUAGE", "de"),
                ("RUST_LOG", "trace"),
                ("RUST_BACKTRACE", "full"),
                ("UNSHARE_RUN_LOG", "debug"),
                ("POSIXLY_CORRECT", "1"),
                ("HOME", "/nonexistent"),
                ("XDG_RUNTIME_DIR", "/nonexistent"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let mut argv = vec![ours()];
        argv.extend(c.args.iter().map(String::as_str));
        let noisy = outcome(&sandbox.run_as(alice(), &argv));
        assert_eq!(noisy, plain, "{args:?}");
    }
}
