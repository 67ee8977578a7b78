//! getsubids [-g] USER: a user's subordinate id ranges, one line each, as shadow-utils' getsubids
//! prints them (the kubelet and rootlesskit run it). An unprivileged applet: applets.rs has dropped
//! whatever a setuid bit or file capability granted before `main` runs.
//!
//! The command line, the output ("N: USER START COUNT"), the messages and the exit statuses are
//! shadow's (4.13, Debian 12's). The ranges are read by the helpers' own reader (`subid`): the lines,
//! owners and numbers that newuidmap and newgidmap decide with, so a consumer is never told of a range
//! that they would refuse for that reason. The deliberate differences from shadow, each with its
//! reason in man/getsubids.1 (COMPATIBILITY) and a test in tests/getsubids.rs:
//! - `-g` matches numeric /etc/subgid owners against the user's uid, as newgidmap does (shadow takes
//!   the gid of the group named USER, which can be another user's uid);
//! - lines the reader refuses (signs, white space, a fourth field, a start + count past 2^64) are not
//!   listed, and a NUL byte costs only its own line;
//! - a subid file that is not root's or is writable by others is refused with a message;
//! - the `subid:` NSS line of /etc/nsswitch.conf is not consulted (the helpers do not consult it);
//! - a failed write to standard output is exit status 1, not 0.

use std::ffi::{CString, OsString};
use std::io::{self, Write};
use std::ops::ControlFlow;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::newidmap::IdKind;
use crate::subid::{self, SubidFileError, SubidOwner};
use crate::sys;

/// shadow's usage text, on standard error.
pub const USAGE: &str = "Usage: getsubids [-g] user\n    list subuid ranges for user\n    pass -g to list subgid ranges\n";
/// shadow's message when nothing can be listed: no line of the user, or no readable file.
pub const NO_RANGES: &str = "Error fetching ranges\n";

const EXIT_OK: u8 = 0;
/// shadow exits 1 (EXIT_FAILURE) on every failure, the usage included.
const EXIT_FAILURE: u8 = 1;

/// What a command line asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    Usage,
    List { kind: IdKind, user: &'a [u8] },
}

/// shadow's rules, exactly: no argument or the single argument `-h` is the usage; `-g USER` (two
/// arguments) lists subgid ranges; anything else lists the subuid ranges of the first argument and
/// ignores the rest (so `-g` alone is a user named "-g", `--help` a user named "--help").
pub fn parse_args<'a>(args: &[&'a [u8]]) -> Request<'a> {
    match *args {
        [] => Request::Usage,
        [only] if only == b"-h" => Request::Usage,
        [flag, user] if flag == b"-g" => Request::List {
            kind: IdKind::Gid,
            user,
        },
        [user, ..] => Request::List {
            kind: IdKind::Uid,
            user,
        },
    }
}

/// The output for `user` (uid `uid` when the name has a passwd entry) from a whole subid file:
/// "INDEX: USER START COUNT\n" for every line of the user in file order, numbered from 0, with USER
/// as given. As in shadow: adjacent ranges stay separate lines, count-0 lines are listed, and a line
/// is listed once for matching the name and once more for matching the uid (both only for a user
/// whose name is its own uid in digits). Empty when the user has no line.
pub fn list_ranges(file: &[u8], user: &[u8], uid: Option<u32>) -> Vec<u8> {
    let owner = SubidOwner::named(user, uid);
    let uid_key = uid.map(|uid| uid.to_string());
    let uid_key = uid_key.as_ref().map(String::as_bytes);
    let mut out = Vec::new();
    let mut index = 0u64;
    subid::for_each_owner_line(file, &owner, |entry| {
        let matches = usize::from(entry.owner == user) + usize::from(uid_key == Some(entry.owner));
        for _ in 0..matches {
            // Writing into a Vec cannot fail.
            let _ = write!(out, "{index}: ");
            out.extend_from_slice(user);
            let _ = writeln!(out, " {} {}", entry.range.start, entry.range.count());
            index += 1;
        }
        ControlFlow::Continue(())
    });
    out
}

/// The applet: returns the exit status.
pub fn main(args: &[OsString]) -> u8 {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    let (kind, user) = match parse_args(&args) {
        Request::Usage => return fail(USAGE),
        Request::List { kind, user } => (kind, user),
    };
    let path = kind.subid_path();
    let listing = match subid::open_trusted(Path::new(path)) {
        Ok(Some(file)) => list_ranges(file.as_ref(), user, passwd_uid(user)),
        // A file that anybody but root can write would let them choose what root's kubelet maps; the
        // helpers refuse it too. shadow lists it.
        Err(e @ SubidFileError::Untrusted { .. }) => {
            return fail(&format!("getsubids: {path} {e}\n"));
        }
        // Missing, a symlink, not a regular file, unreadable: shadow fails the same way for each.
        Ok(None) | Err(_) => Vec::new(),
    };
    if listing.is_empty() {
        return fail(NO_RANGES);
    }
    match write_stdout(&listing) {
        Ok(()) => EXIT_OK,
        // shadow exits 0 with its output lost; a consumer must not take a lost answer for an empty
        // or a complete one.
        Err(e) => fail(&format!("getsubids: write error: {e}\n")),
    }
}

/// The uid of the passwd entry (any NSS source) named `user`, as shadow's getpwnam. None when there
/// is none or the lookup fails: shadow then matches the name alone.
fn passwd_uid(user: &[u8]) -> Option<u32> {
    // Arguments cannot contain NUL.
    let name = CString::new(user).ok()?;
    sys::passwd_uid_by_name(&name).ok().flatten()
}

fn write_stdout(bytes: &[u8]) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()
}

/// `message` on standard error (not eprint!, which panics when that write fails), then the status.
fn fail(message: &str) -> u8 {
    let _ = io::stderr().write_all(message.as_bytes());
    EXIT_FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(args: &[&'static str]) -> Request<'static> {
        let args: Vec<&'static [u8]> = args.iter().map(|a| a.as_bytes()).collect();
        parse_args(&args)
    }

    fn uid(user: &'static str) -> Request<'static> {
        Request::List {
            kind: IdKind::Uid,
            user: user.as_bytes(),
        }
    }

    #[test]
    fn command_lines_as_shadow_reads_them() {
        assert_eq!(request(&[]), Request::Usage);
        assert_eq!(request(&["-h"]), Request::Usage);
        assert_eq!(request(&["alice"]), uid("alice"));
        assert_eq!(
            request(&["-g", "alice"]),
            Request::List {
                kind: IdKind::Gid,
                user: b"alice"
            }
        );
        // Everything else is the subuid ranges of the first argument.
        assert_eq!(request(&["-g"]), uid("-g"));
        assert_eq!(request(&["--help"]), uid("--help"));
        assert_eq!(request(&["-h", "alice"]), uid("-h"));
        assert_eq!(request(&["alice", "-g"]), uid("alice"));
        assert_eq!(request(&["alice", "bob"]), uid("alice"));
        assert_eq!(request(&["-g", "alice", "bob"]), uid("-g"));
        assert_eq!(request(&["--", "alice"]), uid("--"));
        assert_eq!(request(&[""]), uid(""));
    }

    fn listed(file: &str, user: &str, uid: Option<u32>) -> String {
        String::from_utf8(list_ranges(file.as_bytes(), user.as_bytes(), uid)).unwrap()
    }

    #[test]
    fn lists_name_and_uid_lines_in_file_order() {
        let file = "bob:1:1\n1001:300000:10\nalice:100000:65536\nalice:165536:100\n";
        assert_eq!(
            listed(file, "alice", Some(1001)),
            "0: alice 300000 10\n1: alice 100000 65536\n2: alice 165536 100\n"
        );
        // The argument is printed as given, also for numeric lines.
        assert_eq!(listed(file, "1001", None), "0: 1001 300000 10\n");
        assert_eq!(listed(file, "carol", Some(1003)), "");
    }

    #[test]
    fn count_zero_and_unusual_numbers_as_shadow_prints_them() {
        let file = "alice:0:0\nalice:0x10:010\nalice:4294967296:1\nalice:5:0\n";
        assert_eq!(
            listed(file, "alice", Some(1001)),
            "0: alice 0 0\n1: alice 16 8\n2: alice 4294967296 1\n3: alice 5 0\n"
        );
    }

    #[test]
    fn lines_the_helpers_refuse_are_not_listed() {
        let file = "alice:-1:5\nalice: 9:9\nalice:1:1:1\nalice:18446744073709551615:2\n\
                    # alice:1:1\n+alice:3:3\nalice:1:1\r\n alice:7:7\nalice:8:8";
        assert_eq!(listed(file, "alice", Some(1001)), "0: alice 8 8\n");
    }

    #[test]
    fn a_name_that_is_its_own_uid_is_listed_twice_per_line() {
        assert_eq!(
            listed("4403:5:5\n", "4403", Some(4403)),
            "0: 4403 5 5\n1: 4403 5 5\n"
        );
    }

    #[test]
    fn uids_come_from_the_passwd_database() {
        assert_eq!(passwd_uid(b"root"), Some(0));
        assert_eq!(passwd_uid(b"urt-no-such-user"), None);
        assert_eq!(passwd_uid(b"\xffurt"), None);
        assert_eq!(passwd_uid(b""), None);
    }

    #[test]
    fn names_that_cannot_own_lines_list_nothing() {
        let file = "alice:1:1\n:2:2\n-g:3:3\n";
        for user in ["", "-g", "alice:1", "alice\nalice", "al"] {
            assert_eq!(listed(file, user, None), "", "{user:?}");
        }
    }
}
