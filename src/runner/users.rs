//! passwd and group files: the caller's name in the host's /etc/passwd, the home and shell of the
//! command's user inside, and the ids that `--user` or an image's `User` names in a root filesystem.

use std::fs;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// passwd and group files larger than this are not read (LDAP-sized files are a few MiB).
const MAX_ACCOUNT_FILE: u64 = 64 * 1024 * 1024;

/// The text of an account file of a root filesystem, which an image controls: only a regular file
/// (its /etc/passwd may be a link to /dev/zero or a FIFO, which would never end), and at most
/// MAX_ACCOUNT_FILE bytes. Empty when it cannot be read.
pub fn read_account_file(path: &Path) -> String {
    let mut text = String::new();
    let opened = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path);
    if let Ok(file) = opened
        && let Ok(meta) = file.metadata()
        && meta.is_file()
    {
        // Sized from the start: read_to_string through `take` has no size hint and would read a
        // small file in eight growing reads.
        text.reserve(meta.len().min(MAX_ACCOUNT_FILE) as usize + 1);
        let _ = file.take(MAX_ACCOUNT_FILE).read_to_string(&mut text);
    }
    text
}

/// One well-formed line of a passwd file.
#[derive(Debug, PartialEq, Eq)]
pub struct PasswdEntry<'a> {
    pub name: &'a str,
    pub uid: u32,
    pub gid: u32,
    pub home: &'a str,
    pub shell: &'a str,
}

/// The lines of a passwd file that have seven fields and numeric ids, in file order.
pub fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        let [name, _, uid, gid, _, home, shell] = fields[..] else {
            return None;
        };
        Some(PasswdEntry {
            name,
            uid: uid.parse().ok()?,
            gid: gid.parse().ok()?,
            home,
            shell,
        })
    })
}

/// The gid of the group `name` in a group file.
fn group_gid(text: &str, name: &str) -> Option<u32> {
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 3 && fields[0] == name)
            .then(|| fields[2].parse().ok())
            .flatten()
    })
}

/// What the gid is when a user is given without a group and has no passwd entry to take it from.
#[derive(Clone, Copy, Debug)]
pub enum GidWithoutEntry {
    /// 0, as docker and podman do for an image's `User`.
    Zero,
    /// The uid: `--user 1000` is 1000:1000.
    SameAsUid,
}

/// The ids that `spec` ("uid", "uid:gid", "name" or "name:group") means in the root filesystem `root`:
/// names are looked up in its /etc/passwd and /etc/group. Without a group, the gid is the user's
/// primary group from /etc/passwd, else as `fallback` says.
pub fn ids_in(root: &Path, spec: &str, fallback: GidWithoutEntry) -> Result<(u32, u32), String> {
    let (user, group) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    let passwd_path = root.join("etc/passwd");
    let passwd = read_account_file(&passwd_path);
    let numeric_uid = user.parse::<u32>().ok();
    let entry = passwd_entries(&passwd)
        .find(|e| numeric_uid.map_or(e.name == user, |uid| e.uid == uid))
        .map(|e| (e.uid, e.gid));
    let uid = match (numeric_uid, entry) {
        (Some(uid), _) => uid,
        (None, Some((uid, _))) => uid,
        (None, None) => {
            return Err(format!("user `{user}` is not in {}", passwd_path.display()));
        }
    };
    let gid = match group {
        None => entry.map_or(
            match fallback {
                GidWithoutEntry::Zero => 0,
                GidWithoutEntry::SameAsUid => uid,
            },
            |(_, gid)| gid,
        ),
        Some(group) => match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                let group_path = root.join("etc/group");
                let groups = read_account_file(&group_path);
                group_gid(&groups, group)
                    .ok_or_else(|| format!("group `{group}` is not in {}", group_path.display()))?
            }
        },
    };
    Ok((uid, gid))
}

/// What a passwd lookup is keyed by.
#[derive(Clone, Copy, Debug)]
enum Account<'a> {
    Uid(u32),
    Name(&'a str),
}

/// The name and uid of a passwd entry, looked up as the runner looks up users (for the caller's name,
/// and for doctor's `kubelet`). In order:
/// - the host's /etc/passwd, read directly: the first NSS lookup of a process costs more than a
///   tenth of a warm start (nscd probes, nsswitch.conf);
/// - the C library's lookup (NSS with glibc; with musl only /etc/passwd and nscd);
/// - `getent passwd KEY`, glibc's NSS in its own process: the packaged unshare-run is the musl build
///   (README, "Why the runner is linked against musl"), and users that only LDAP, sssd or
///   systemd-userdb know must still be found. Runs only for an account that neither lookup knows.
fn lookup(account: Account<'_>) -> Option<(String, u32)> {
    entry_in_passwd(&read_account_file(Path::new("/etc/passwd")), account)
        .or_else(|| {
            let user = match account {
                Account::Uid(uid) => nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)),
                Account::Name(name) => nix::unistd::User::from_name(name),
            };
            user.ok()
                .flatten()
                .filter(|u| matches(account, &u.name, u.uid.as_raw()))
                .map(|u| (u.name, u.uid.as_raw()))
        })
        .or_else(|| entry_from_getent(account))
}

/// The caller's name, to pick its lines of /etc/subuid and /etc/subgid to ask the helpers for; the
/// runner decides nothing privileged with it (the helpers look the caller up themselves).
pub fn caller_name(uid: u32) -> Option<String> {
    lookup(Account::Uid(uid)).map(|(name, _)| name)
}

/// The uid of the user `name` (doctor: whether a user `kubelet` exists, and which numeric owner of
/// /etc/subuid lines is also its), found as `caller_name` finds the caller.
pub fn uid_of(name: &str) -> Option<u32> {
    lookup(Account::Name(name)).map(|(_, uid)| uid)
}

fn entry_from_getent(account: Account<'_>) -> Option<(String, u32)> {
    let key = match account {
        Account::Uid(uid) => uid.to_string(),
        // getent takes an all-digit key for a uid; no such name is looked up this way.
        Account::Name(name) if name.is_empty() || name.bytes().all(|b| b.is_ascii_digit()) => {
            return None;
        }
        Account::Name(name) => name.to_string(),
    };
    let out = std::process::Command::new("getent")
        .args(["passwd", &key])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    entry_in_passwd(std::str::from_utf8(&out.stdout).ok()?, account)
}

fn matches(account: Account<'_>, name: &str, uid: u32) -> bool {
    !name.is_empty()
        && match account {
            Account::Uid(want) => uid == want,
            Account::Name(want) => name == want,
        }
}

/// The first well-formed passwd line of the account, as (name, uid).
fn entry_in_passwd(passwd: &str, account: Account<'_>) -> Option<(String, u32)> {
    passwd_entries(passwd)
        .find(|e| matches(account, e.name, e.uid))
        .map(|e| (e.name.to_string(), e.uid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_in_passwd(passwd: &str, uid: u32) -> Option<String> {
        entry_in_passwd(passwd, Account::Uid(uid)).map(|(name, _)| name)
    }

    #[test]
    fn the_first_passwd_line_with_the_uid_names_the_caller() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      broken\n\
                      short:x:1000:1000\n\
                      :x:1000:1000::/:/bin/sh\n\
                      alice:x:1000:1000::/home/alice:/bin/sh\n\
                      alias:x:1000:1000::/home/alice:/bin/sh\n";
        assert_eq!(name_in_passwd(passwd, 1000).as_deref(), Some("alice"));
        assert_eq!(name_in_passwd(passwd, 0).as_deref(), Some("root"));
        // Not there: the caller falls back to NSS.
        assert_eq!(name_in_passwd(passwd, 1001), None);
        assert_eq!(name_in_passwd("bob:x:10010:1::/:/bin/sh\n", 1001), None);
    }

    #[test]
    fn the_first_passwd_line_with_the_name_gives_the_uid() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      kubelet:x:x:1::/:/bin/sh\n\
                      kubelet:x:4322:4322::/:/usr/sbin/nologin\n\
                      kubelet:x:4400:4400::/:/bin/sh\n";
        let uid = |name| entry_in_passwd(passwd, Account::Name(name)).map(|(_, uid)| uid);
        assert_eq!(uid("kubelet"), Some(4322));
        assert_eq!(uid("root"), Some(0));
        assert_eq!(uid("kube"), None);
        assert_eq!(uid(""), None);
        // Not there: the lookup falls back to NSS (here the machine's, which has no such user).
        assert_eq!(uid_of("urt-no-such-user"), None);
        assert_eq!(uid_of("root"), Some(0));
    }

    #[test]
    fn passwd_lines_need_seven_fields_and_numeric_ids() {
        let passwd = "app:x:1000:1001:App:/srv:/bin/sh\nbad:x:x:1::/:/bin/sh\nsix:x:1:1::/\n";
        let entries: Vec<_> = passwd_entries(passwd).collect();
        assert_eq!(
            entries,
            [PasswdEntry {
                name: "app",
                uid: 1000,
                gid: 1001,
                home: "/srv",
                shell: "/bin/sh"
            }]
        );
    }

    #[test]
    fn users_and_groups_are_resolved_in_the_root_filesystem() {
        let root = std::env::temp_dir().join(format!("urt-users-{}", std::process::id()));
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(
            root.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/srv:/bin/sh\n",
        )
        .unwrap();
        fs::write(root.join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        let image = |spec| ids_in(&root, spec, GidWithoutEntry::Zero);
        assert_eq!(image("app"), Ok((1000, 1001)));
        assert_eq!(image("1000"), Ok((1000, 1001)));
        assert_eq!(image("2000"), Ok((2000, 0)));
        assert_eq!(image("app:staff"), Ok((1000, 50)));
        assert_eq!(image("7:8"), Ok((7, 8)));
        assert_eq!(image("app:0"), Ok((1000, 0)));
        assert_eq!(
            ids_in(&root, "2000", GidWithoutEntry::SameAsUid),
            Ok((2000, 2000))
        );
        assert_eq!(
            ids_in(&root, "1000", GidWithoutEntry::SameAsUid),
            Ok((1000, 1001))
        );
        let missing_user = image("nobody").unwrap_err();
        assert!(
            missing_user.contains("user `nobody` is not in")
                && missing_user.ends_with("etc/passwd"),
            "{missing_user}"
        );
        // An image's /etc/group that never ends, or blocks: read as empty, at once.
        fs::remove_file(root.join("etc/group")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", root.join("etc/group")).unwrap();
        assert!(image("app:staff").is_err());
        fs::remove_file(root.join("etc/group")).unwrap();
        nix::unistd::mkfifo(&root.join("etc/group"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(image("app:staff").is_err());
        let missing_group = image("app:wheel").unwrap_err();
        assert!(
            missing_group.contains("group `wheel` is not in")
                && missing_group.ends_with("etc/group"),
            "{missing_group}"
        );
        fs::remove_dir_all(&root).unwrap();
    }
}
