//! passwd and group files: the caller's name in the host's /etc/passwd, the home and shell of the
//! command's user inside, the ids that `--user` or an image's `User` names in a root filesystem, and
//! the caller's entries added to a root filesystem's files that lack them (keep-id).

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
    let opened = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path);
    opened.map(read_account).unwrap_or_default()
}

/// The text of an opened account file (opened with O_NONBLOCK), as `read_account_file` reads it.
pub fn read_account(file: fs::File) -> String {
    let mut text = String::new();
    if let Ok(meta) = file.metadata()
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
    pub gecos: &'a str,
    pub home: &'a str,
    pub shell: &'a str,
}

/// The lines of a passwd file that have seven fields and numeric ids, in file order.
pub fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        let [name, _, uid, gid, gecos, home, shell] = fields[..] else {
            return None;
        };
        Some(PasswdEntry {
            name,
            uid: uid.parse().ok()?,
            gid: gid.parse().ok()?,
            gecos,
            home,
            shell,
        })
    })
}

/// The (name, gid) of each line of a group file with a name and a numeric gid, in file order.
fn group_entries(text: &str) -> impl Iterator<Item = (&str, u32)> {
    text.lines().filter_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        let gid = fields.get(2)?.parse().ok()?;
        (fields.len() >= 3 && !fields[0].is_empty()).then_some((fields[0], gid))
    })
}

/// The gid of the group `name` in a group file.
fn group_gid(text: &str, name: &str) -> Option<u32> {
    group_entries(text).find_map(|(n, gid)| (n == name).then_some(gid))
}

/// What the gid is when a user is given without a group and has no passwd entry to take it from.
#[derive(Clone, Copy, Debug)]
pub enum GidWithoutEntry {
    /// 0, as docker and podman do for an image's `User`.
    Zero,
    /// The uid: `--user 1000` is 1000:1000.
    SameAsUid,
}

/// Where the file `relative` of a root filesystem made of `layers` (the top first; one directory for
/// a plain root filesystem) is, before the layers are mounted: the topmost layer that has it, as
/// overlayfs would show it: a whiteout (a 0:0 character device) on the path or on a directory above
/// it hides it, and so does an opaque directory (user.overlay.opaque) for the layers below.
/// None when no layer shows it.
pub fn find_in_layers(layers: &[impl AsRef<Path>], relative: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let components: Vec<&str> = relative.split('/').filter(|c| !c.is_empty()).collect();
    for layer in layers {
        let mut path = layer.as_ref().to_path_buf();
        let mut opaque_above = false;
        for (depth, component) in components.iter().enumerate() {
            path.push(component);
            let Ok(meta) = fs::symlink_metadata(&path) else {
                break;
            };
            if meta.file_type().is_char_device() && meta.rdev() == 0 {
                return None;
            }
            if depth + 1 == components.len() {
                return Some(path);
            }
            opaque_above |=
                crate::sys::read_xattr(&path, c"user.overlay.opaque").as_deref() == Some(&b"y"[..]);
        }
        if opaque_above {
            return None;
        }
    }
    None
}

/// The ids that `spec` ("uid", "uid:gid", "name" or "name:group") means in the root filesystem made
/// of `layers` (see `find_in_layers`): names are looked up in its /etc/passwd and /etc/group. Without
/// a group, the gid is the user's primary group from /etc/passwd, else as `fallback` says.
pub fn ids_in(
    layers: &[impl AsRef<Path>],
    spec: &str,
    fallback: GidWithoutEntry,
) -> Result<(u32, u32), String> {
    let shown = |relative: &str| match layers.first() {
        Some(top) if layers.len() == 1 => top.as_ref().join(relative).display().to_string(),
        _ => format!("the image's /{relative}"),
    };
    let (user, group) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    let passwd = find_in_layers(layers, "etc/passwd")
        .map(|p| read_account_file(&p))
        .unwrap_or_default();
    let numeric_uid = user.parse::<u32>().ok();
    let entry = passwd_entries(&passwd)
        .find(|e| numeric_uid.map_or(e.name == user, |uid| e.uid == uid))
        .map(|e| (e.uid, e.gid));
    let uid = match (numeric_uid, entry) {
        (Some(uid), _) => uid,
        (None, Some((uid, _))) => uid,
        (None, None) => {
            return Err(format!("user `{user}` is not in {}", shown("etc/passwd")));
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
                let groups = find_in_layers(layers, "etc/group")
                    .map(|p| read_account_file(&p))
                    .unwrap_or_default();
                group_gid(&groups, group)
                    .ok_or_else(|| format!("group `{group}` is not in {}", shown("etc/group")))?
            }
        },
    };
    Ok((uid, gid))
}

/// What a passwd lookup is keyed by.
#[derive(Clone, Copy, Debug)]
enum Key<'a> {
    Uid(u32),
    Name(&'a str),
}

/// A passwd entry of the host's, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub home: String,
    pub shell: String,
}

impl From<PasswdEntry<'_>> for HostUser {
    fn from(e: PasswdEntry<'_>) -> HostUser {
        HostUser {
            name: e.name.into(),
            uid: e.uid,
            gid: e.gid,
            gecos: e.gecos.into(),
            home: e.home.into(),
            shell: e.shell.into(),
        }
    }
}

/// A passwd entry of the host's, looked up as the runner looks up users (for the caller's name and
/// account, and for doctor's `kubelet`). In order:
/// - the host's /etc/passwd, read directly: the first NSS lookup of a process costs more than a
///   tenth of a warm start (nscd probes, nsswitch.conf);
/// - the C library's lookup (NSS with glibc; with musl only /etc/passwd and nscd);
/// - `getent passwd KEY`, glibc's NSS in its own process: the packaged unshare-run is the musl build
///   (README, "Why the runner is linked against musl"), and users that only LDAP, sssd or
///   systemd-userdb know must still be found. Runs only for an account that neither lookup knows.
fn lookup(key: Key<'_>) -> Option<HostUser> {
    entry_in_passwd(&read_account_file(Path::new("/etc/passwd")), key)
        .or_else(|| {
            let user = match key {
                Key::Uid(uid) => nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)),
                Key::Name(name) => nix::unistd::User::from_name(name),
            };
            user.ok()
                .flatten()
                .filter(|u| matches(key, &u.name, u.uid.as_raw()))
                .map(|u| HostUser {
                    name: u.name,
                    uid: u.uid.as_raw(),
                    gid: u.gid.as_raw(),
                    gecos: u.gecos.to_string_lossy().into_owned(),
                    home: u.dir.to_string_lossy().into_owned(),
                    shell: u.shell.to_string_lossy().into_owned(),
                })
        })
        .or_else(|| entry_from_getent(key))
}

/// The caller's name, to pick its lines of /etc/subuid and /etc/subgid to ask the helpers for; the
/// runner decides nothing privileged with it (the helpers look the caller up themselves).
pub fn caller_name(uid: u32) -> Option<String> {
    lookup(Key::Uid(uid)).map(|u| u.name)
}

/// The caller's passwd entry on the host, found as `caller_name` finds the name.
pub fn caller_entry(uid: u32) -> Option<HostUser> {
    lookup(Key::Uid(uid))
}

/// The name of the host's group `gid`: /etc/group, then the C library, then `getent group`.
pub fn host_group_name(gid: u32) -> Option<String> {
    let direct = group_entries(&read_account_file(Path::new("/etc/group")))
        .find_map(|(name, g)| (g == gid).then(|| name.to_string()));
    direct
        .or_else(|| {
            nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
                .ok()
                .flatten()
                .map(|g| g.name)
        })
        .or_else(|| {
            let out = std::process::Command::new("getent")
                .args(["group", &gid.to_string()])
                .stdin(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .output()
                .ok()?;
            let text = String::from_utf8(out.stdout).ok()?;
            group_entries(&text).find_map(|(name, g)| (g == gid).then(|| name.to_string()))
        })
}

/// The uid of the user `name` (doctor: whether a user `kubelet` exists, and which numeric owner of
/// /etc/subuid lines is also its), found as `caller_name` finds the caller.
pub fn uid_of(name: &str) -> Option<u32> {
    lookup(Key::Name(name)).map(|u| u.uid)
}

fn entry_from_getent(key: Key<'_>) -> Option<HostUser> {
    let text = match key {
        Key::Uid(uid) => uid.to_string(),
        // getent takes an all-digit key for a uid; no such name is looked up this way.
        Key::Name(name) if name.is_empty() || name.bytes().all(|b| b.is_ascii_digit()) => {
            return None;
        }
        Key::Name(name) => name.to_string(),
    };
    let out = std::process::Command::new("getent")
        .args(["passwd", &text])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    entry_in_passwd(std::str::from_utf8(&out.stdout).ok()?, key)
}

fn matches(key: Key<'_>, name: &str, uid: u32) -> bool {
    !name.is_empty()
        && match key {
            Key::Uid(want) => uid == want,
            Key::Name(want) => name == want,
        }
}

/// The first well-formed passwd line of the account.
fn entry_in_passwd(passwd: &str, key: Key<'_>) -> Option<HostUser> {
    passwd_entries(passwd)
        .find(|e| matches(key, e.name, e.uid))
        .map(HostUser::from)
}

/// The command's user in a root filesystem that may lack it: the caller's host account at the
/// caller's inside ids (keep-id, or a single-id map that keeps the uid).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// The name of the group `gid` (the host's name of the caller's group, else the user's name).
    pub group: String,
    pub gecos: String,
    /// Absolute.
    pub home: String,
    /// The host's shell; /bin/sh where the root filesystem lacks it.
    pub shell: String,
}

impl Account {
    /// The caller's account (`host`, its group named `group`) at the inside ids `uid` and `gid`. None
    /// when a field could not stand in a passwd line (a ':' or a newline in it, a home that is not
    /// an absolute path without "..").
    pub fn of_caller(host: HostUser, group: Option<String>, uid: u32, gid: u32) -> Option<Account> {
        let group = group.unwrap_or_else(|| host.name.clone());
        let home_ok = Path::new(&host.home).is_absolute()
            && !Path::new(&host.home)
                .components()
                .any(|c| c == std::path::Component::ParentDir);
        let fields = [&host.name, &group, &host.gecos, &host.home, &host.shell];
        let clean = fields.iter().all(|f| !f.contains([':', '\n', '\0']));
        (clean && home_ok && !host.name.is_empty() && !group.is_empty()).then_some(Account {
            name: host.name,
            uid,
            gid,
            group,
            gecos: host.gecos,
            home: host.home,
            shell: host.shell,
        })
    }
}

/// `passwd` and `group` (a root filesystem's files) with `account`'s lines added where they lack its
/// uid or its gid; None for a file that needs no line. `shell` replaces the account's where the root
/// filesystem lacks that one.
pub fn with_account(
    passwd: &str,
    group: &str,
    account: &Account,
    shell: &str,
) -> (Option<String>, Option<String>) {
    let appended = |text: &str, line: String| {
        let mut out = String::with_capacity(text.len() + line.len() + 1);
        out.push_str(text);
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&line);
        out
    };
    let has_user = passwd_entries(passwd).any(|e| e.uid == account.uid);
    let has_group = group_entries(group).any(|(_, gid)| gid == account.gid);
    let passwd = (!has_user).then(|| {
        let a = account;
        let line = format!(
            "{}:x:{}:{}:{}:{}:{shell}\n",
            a.name, a.uid, a.gid, a.gecos, a.home
        );
        appended(passwd, line)
    });
    let group =
        (!has_group).then(|| appended(group, format!("{}:x:{}:\n", account.group, account.gid)));
    (passwd, group)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_in_passwd(passwd: &str, uid: u32) -> Option<String> {
        entry_in_passwd(passwd, Key::Uid(uid)).map(|u| u.name)
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
        let uid = |name| entry_in_passwd(passwd, Key::Name(name)).map(|u| u.uid);
        assert_eq!(uid("kubelet"), Some(4322));
        assert_eq!(uid("root"), Some(0));
        assert_eq!(uid("kube"), None);
        assert_eq!(uid(""), None);
        // Not there: the lookup falls back to NSS (here the machine's, which has no such user).
        assert_eq!(uid_of("urt-no-such-user"), None);
        assert_eq!(uid_of("root"), Some(0));
    }

    fn alice() -> HostUser {
        HostUser {
            name: "alice".into(),
            uid: 1000,
            gid: 100,
            gecos: "Alice A.".into(),
            home: "/home/alice".into(),
            shell: "/bin/zsh".into(),
        }
    }

    #[test]
    fn the_account_is_added_only_where_the_files_lack_its_ids() {
        let account = Account::of_caller(alice(), Some("users".into()), 1000, 1000).unwrap();
        assert_eq!(account.group, "users");
        let passwd = "root:x:0:0:root:/root:/bin/bash\n";
        let group = "root:x:0:\nusers:x:100:";
        let (p, g) = with_account(passwd, group, &account, "/bin/sh");
        assert_eq!(
            p.as_deref(),
            Some(
                "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice A.:/home/alice:/bin/sh\n"
            )
        );
        // A last line without its newline gets one.
        assert_eq!(
            g.as_deref(),
            Some("root:x:0:\nusers:x:100:\nusers:x:1000:\n")
        );
        // The image has the ids (under any name): nothing is added.
        let theirs = "root:x:0:0::/root:/bin/sh\nubuntu:x:1000:1000::/home/ubuntu:/bin/bash\n";
        let groups = "ubuntu:x:1000:\n";
        assert_eq!(
            with_account(theirs, groups, &account, "/bin/sh"),
            (None, None)
        );
        // Empty or missing files: the account's lines alone.
        assert_eq!(
            with_account("", "", &account, "/bin/zsh"),
            (
                Some("alice:x:1000:1000:Alice A.:/home/alice:/bin/zsh\n".into()),
                Some("users:x:1000:\n".into())
            )
        );
        // Without the host's group name, the user's.
        let account = Account::of_caller(alice(), None, 1000, 1000).unwrap();
        assert_eq!(account.group, "alice");
    }

    #[test]
    fn an_account_that_cannot_stand_in_a_passwd_line_is_none() {
        let with = |change: fn(&mut HostUser)| {
            let mut user = alice();
            change(&mut user);
            Account::of_caller(user, None, 1000, 1000)
        };
        assert!(with(|_| {}).is_some());
        assert!(with(|u| u.gecos = "a:b".into()).is_none());
        assert!(with(|u| u.shell = "/bin/sh\nroot::0:0::/:/bin/sh".into()).is_none());
        assert!(with(|u| u.home = "relative".into()).is_none());
        assert!(with(|u| u.home = "/home/../etc".into()).is_none());
        assert!(with(|u| u.name = String::new()).is_none());
        assert!(Account::of_caller(alice(), Some("a:b".into()), 1, 1).is_none());
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
                gecos: "App",
                home: "/srv",
                shell: "/bin/sh"
            }]
        );
    }

    #[test]
    fn a_pulled_images_files_are_found_as_its_overlay_shows_them() {
        let base = std::env::temp_dir().join(format!("urt-layers-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let [top, middle, bottom] = ["top", "middle", "bottom"].map(|l| base.join(l));
        for layer in [&top, &middle, &bottom] {
            fs::create_dir_all(layer.join("etc")).unwrap();
        }
        fs::write(bottom.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        fs::write(middle.join("etc/passwd"), "app:x:7:7::/srv:/bin/sh\n").unwrap();
        fs::write(bottom.join("etc/group"), "staff:x:50:\n").unwrap();
        fs::write(bottom.join("etc/shadow"), "").unwrap();
        let whiteout = |path: &Path| {
            nix::sys::stat::mknod(
                path,
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::empty(),
                0,
            )
            .unwrap()
        };
        whiteout(&top.join("etc/shadow"));
        let layers = [&top, &middle, &bottom];
        assert_eq!(
            find_in_layers(&layers, "etc/passwd"),
            Some(middle.join("etc/passwd"))
        );
        assert_eq!(
            find_in_layers(&layers, "/etc/group"),
            Some(bottom.join("etc/group"))
        );
        assert_eq!(find_in_layers(&layers, "etc/shadow"), None, "whited out");
        assert_eq!(find_in_layers(&layers, "etc/missing"), None);
        assert_eq!(
            ids_in(&layers, "app:staff", GidWithoutEntry::Zero),
            Ok((7, 50))
        );
        // An opaque /etc in the top layer hides the lower layers' files.
        let dir = fs::File::open(top.join("etc")).unwrap();
        crate::sys::set_xattr(std::os::fd::AsFd::as_fd(&dir), c"user.overlay.opaque", b"y")
            .unwrap();
        assert_eq!(find_in_layers(&layers, "etc/passwd"), None);
        let err = ids_in(&layers, "app", GidWithoutEntry::Zero).unwrap_err();
        assert_eq!(err, "user `app` is not in the image's /etc/passwd");
        // A whiteout of a directory hides what is below it.
        fs::remove_dir_all(top.join("etc")).unwrap();
        whiteout(&top.join("etc"));
        assert_eq!(find_in_layers(&layers, "etc/group"), None);
        fs::remove_dir_all(&base).unwrap();
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
        let layers = [root.clone()];
        let image = |spec| ids_in(&layers, spec, GidWithoutEntry::Zero);
        assert_eq!(image("app"), Ok((1000, 1001)));
        assert_eq!(image("1000"), Ok((1000, 1001)));
        assert_eq!(image("2000"), Ok((2000, 0)));
        assert_eq!(image("app:staff"), Ok((1000, 50)));
        assert_eq!(image("7:8"), Ok((7, 8)));
        assert_eq!(image("app:0"), Ok((1000, 0)));
        assert_eq!(
            ids_in(&layers, "2000", GidWithoutEntry::SameAsUid),
            Ok((2000, 2000))
        );
        assert_eq!(
            ids_in(&layers, "1000", GidWithoutEntry::SameAsUid),
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
