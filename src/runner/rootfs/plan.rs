//! The container's mounts as a list of steps, made from the spec and a few facts about the host: pure,
//! so that their order and options are unit-tested without root. `apply` carries them out.

use std::path::{Path, PathBuf};

use crate::runner::cli::NetMode;
use crate::runner::confinement::paths::Kind;
use crate::runner::spec::ContainerSpec;
use crate::runner::users::Account;

/// One step of the set-up, carried out in order inside the root filesystem (the host's "/" in host
/// mode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Mounts the first of `sources` that works on `target` (inside the container), made as `make`
    /// says when it is missing.
    Mount {
        target: PathBuf,
        make: MountPoint,
        sources: Vec<Source>,
    },
    /// Entries made in `dir`, a filesystem this set-up has just mounted: it is empty and nothing is
    /// mounted in it yet, so nothing can be in the way, and `dir` is resolved once for all of them.
    Populate { dir: PathBuf, entries: Vec<Entry> },
    /// The command's user (the caller's own uid inside), added where the root filesystem's
    /// /etc/passwd or /etc/group lacks it: the file with its line appended is written to `dir` and
    /// bound read-only over the root filesystem's, which stays unchanged. What the container sees is
    /// read at this step (after the overlay and the user's mounts). When its passwd line is added
    /// and its home directory does not exist, `home` is mounted there.
    Account {
        account: Account,
        dir: PathBuf,
        home: Source,
    },
    /// Kernel files below `under`, a kernel filesystem this set-up has just mounted or bound (/proc,
    /// /sys), covered in order where this kernel has them (nothing is made). `under` is resolved once
    /// in the root; `paths` are relative to it, the kernel's own names, looked up from there.
    Cover {
        under: PathBuf,
        paths: Vec<(&'static str, Covering)>,
    },
}

/// How `Step::Cover` covers a kernel file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Covering {
    /// Hidden: an empty read-only tmpfs over a directory, the host's /dev/null (read-only) over a
    /// file. One of each is mounted; the other masks are binds of it.
    Mask(Kind),
    /// Bound read-only over itself (with what is mounted below it).
    ReadOnly,
}

/// What `Step::Populate` makes in its directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// `name`, made as `make` says (a directory or a file), with the first of `sources` that works
    /// mounted on it.
    Mount {
        name: &'static str,
        make: MountPoint,
        sources: Vec<Source>,
    },
    /// A symbolic link `name` -> `to`.
    Symlink {
        name: &'static str,
        to: &'static str,
    },
}

/// What a missing mount point is made as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MountPoint {
    /// A directory of this mode (missing parents: 0755).
    Dir(u32),
    /// An empty file.
    File,
    /// An empty file, but only in a directory that exists and where no dangling link is in the way;
    /// otherwise the step is left out (e.g. /etc/resolv.conf linking to systemd-resolved's stub, which
    /// the image lacks: the container keeps what it has).
    OptionalFile,
}

/// What is mounted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A new filesystem of this type, with its options (each "key=value" or a flag) and these
    /// mount attributes.
    Fs {
        fstype: &'static str,
        options: Vec<String>,
        attrs: Attrs,
    },
    /// The host's mount at `host` (and the mounts below it when `recursive`), as a bind mount.
    Bind {
        host: PathBuf,
        recursive: bool,
        read_only: bool,
    },
}

/// Mount attributes of a new filesystem.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attrs {
    pub read_only: bool,
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
}

impl std::fmt::Display for Attrs {
    /// As mount(8) lists them: "ro,nosuid,nodev,noexec".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = [
            (self.read_only, "ro"),
            (self.nosuid, "nosuid"),
            (self.nodev, "nodev"),
            (self.noexec, "noexec"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        f.write_str(&names.join(","))
    }
}

/// nosuid, nodev, noexec: a filesystem of the kernel's (proc) or the container's own data.
const NOTHING_RUNS: Attrs = Attrs {
    read_only: false,
    nosuid: true,
    nodev: true,
    noexec: true,
};
/// nosuid, nodev: a scratch filesystem (/tmp, /dev/shm, --tmpfs), where programs may run.
const SCRATCH: Attrs = Attrs {
    read_only: false,
    nosuid: true,
    nodev: true,
    noexec: false,
};
/// nosuid, noexec: /dev and its devpts, where device nodes must work.
const DEVICES: Attrs = Attrs {
    read_only: false,
    nosuid: true,
    nodev: false,
    noexec: true,
};

/// Host devices bound into the container's /dev (mknod is impossible in a user namespace).
pub const HOST_DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// What the plan needs to know about the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// The HOST_DEVICES that exist on the host.
    pub devices: Vec<&'static str>,
    /// /etc/resolv.conf and /etc/hosts are files on the host.
    pub resolv_conf: bool,
    pub hosts: bool,
}

impl Host {
    pub fn probe() -> Host {
        Host {
            devices: HOST_DEVICES
                .into_iter()
                .filter(|name| Path::new("/dev").join(name).exists())
                .collect(),
            resolv_conf: Path::new("/etc/resolv.conf").is_file(),
            hosts: Path::new("/etc/hosts").is_file(),
        }
    }
}

fn fs(fstype: &'static str, options: &str, attrs: Attrs) -> Source {
    Source::Fs {
        fstype,
        options: options
            .split(',')
            .filter(|o| !o.is_empty())
            .map(String::from)
            .collect(),
        attrs,
    }
}

fn mount(target: &str, make: MountPoint, sources: Vec<Source>) -> Step {
    Step::Mount {
        target: PathBuf::from(target),
        make,
        sources,
    }
}

/// The steps for `spec`, in order: with a root filesystem a fresh /proc, /dev, /sys and /tmp; in host
/// mode only /proc; then the resolver files and the user's mounts.
pub fn plan(spec: &ContainerSpec, host: &Host) -> Vec<Step> {
    let mut steps = vec![mount(
        "/proc",
        MountPoint::Dir(0o555),
        vec![fs("proc", "", NOTHING_RUNS)],
    )];
    if spec.rootfs.is_some() {
        steps.extend(dev(spec, host));
        steps.push(mount("/sys", MountPoint::Dir(0o555), sys(spec.net)));
        steps.push(mount(
            "/tmp",
            MountPoint::Dir(0o1777),
            vec![fs("tmpfs", "mode=1777", SCRATCH)],
        ));
    }
    steps.extend(covered_paths(spec));
    steps.extend(network_files(spec, host));
    steps.extend(user_mounts(spec));
    steps.extend(account(spec));
    steps
}

/// The command's user where a root filesystem lacks it, last: the user's mounts may put another
/// /etc/passwd or a home directory there. Its home, if missing, is a tmpfs of its own (0700).
fn account(spec: &ContainerSpec) -> Option<Step> {
    let (Some(_), Some(account), Some(generated)) = (&spec.rootfs, &spec.account, &spec.generated)
    else {
        return None;
    };
    let options = format!("mode=0700,uid={},gid={}", account.uid, account.gid);
    Some(Step::Account {
        account: account.clone(),
        dir: generated.dir.clone(),
        home: fs("tmpfs", &options, SCRATCH),
    })
}

/// The kernel's files that the confinement masks or makes read-only: a step for each kernel
/// filesystem they are in, /proc and /sys, in the order of the lists (masked first).
fn covered_paths(spec: &ContainerSpec) -> Vec<Step> {
    let covered = &spec.confinement.covered;
    let masked = covered
        .masked
        .iter()
        .map(|&(path, kind)| (path, Covering::Mask(kind)));
    let read_only = covered
        .read_only
        .iter()
        .map(|&path| (path, Covering::ReadOnly));
    let mut groups: Vec<(PathBuf, Vec<(&'static str, Covering)>)> = Vec::new();
    for (path, covering) in masked.chain(read_only) {
        let relative = path.trim_start_matches('/');
        let (top, below) = relative.split_once('/').unwrap_or((relative, ""));
        let under = Path::new("/").join(top);
        match groups.iter_mut().find(|(u, _)| *u == under) {
            Some((_, paths)) => paths.push((below, covering)),
            None => groups.push((under, vec![(below, covering)])),
        }
    }
    groups
        .into_iter()
        .map(|(under, paths)| Step::Cover { under, paths })
        .collect()
}

/// A tmpfs /dev with the host's devices bound in, its own devpts (gid=5 is valid only when gid 5 is
/// mapped, i.e. with the full map), the usual links and a /dev/shm.
fn dev(spec: &ContainerSpec, host: &Host) -> Vec<Step> {
    let mut entries: Vec<Entry> = host
        .devices
        .iter()
        .map(|name| Entry::Mount {
            name,
            make: MountPoint::File,
            sources: vec![Source::Bind {
                host: Path::new("/dev").join(name),
                recursive: false,
                read_only: false,
            }],
        })
        .collect();
    let plain = "newinstance,ptmxmode=0666,mode=0620";
    let mut devpts = Vec::new();
    if spec.setgroups_allowed {
        devpts.push(fs("devpts", &format!("{plain},gid=5"), DEVICES));
    }
    devpts.push(fs("devpts", plain, DEVICES));
    entries.push(Entry::Mount {
        name: "pts",
        make: MountPoint::Dir(0o755),
        sources: devpts,
    });
    for (name, to) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        entries.push(Entry::Symlink { name, to });
    }
    entries.push(Entry::Mount {
        name: "shm",
        make: MountPoint::Dir(0o1777),
        sources: vec![fs("tmpfs", "mode=1777", SCRATCH)],
    });
    vec![
        mount(
            "/dev",
            MountPoint::Dir(0o755),
            vec![fs("tmpfs", "mode=0755", DEVICES)],
        ),
        Step::Populate {
            dir: PathBuf::from("/dev"),
            entries,
        },
    ]
}

/// sysfs may be mounted only by the owner of the current network namespace: with --net none, a
/// sysfs of its own; else (and if that fails) the host's /sys, read-only.
fn sys(net: NetMode) -> Vec<Source> {
    let host = Source::Bind {
        host: PathBuf::from("/sys"),
        recursive: true,
        read_only: true,
    };
    if net == NetMode::None {
        let own = Attrs {
            read_only: true,
            ..NOTHING_RUNS
        };
        vec![fs("sysfs", "", own), host]
    } else {
        vec![host]
    }
}

/// /etc/resolv.conf and /etc/hosts, read-only: the files generated for this container (pasta's DNS,
/// the container's hostname), else, with the host's network, the host's own.
fn network_files(spec: &ContainerSpec, host: &Host) -> Vec<Step> {
    let generated = spec.generated.as_ref();
    let host_network = spec.net == NetMode::Host;
    [
        (
            "/etc/resolv.conf",
            generated.and_then(|g| g.resolv_conf.clone()),
            host.resolv_conf,
        ),
        (
            "/etc/hosts",
            generated.and_then(|g| g.hosts.clone()),
            host.hosts,
        ),
    ]
    .into_iter()
    .filter_map(|(name, made, on_host)| {
        let source = made.or_else(|| (host_network && on_host).then(|| PathBuf::from(name)))?;
        Some(mount(
            name,
            MountPoint::OptionalFile,
            vec![Source::Bind {
                host: source,
                recursive: false,
                read_only: true,
            }],
        ))
    })
    .collect()
}

/// --bind, --ro-bind, then --tmpfs. A tmpfs gets its mode from the mount itself: nothing is changed
/// after the mount (a --bind at the same place would pass a chmod on to the host's directory).
fn user_mounts(spec: &ContainerSpec) -> Vec<Step> {
    let binds = spec.binds.iter().map(|b| Step::Mount {
        target: b.target.clone(),
        make: if b.source_is_dir {
            MountPoint::Dir(0o755)
        } else {
            MountPoint::File
        },
        sources: vec![Source::Bind {
            host: b.source.clone(),
            recursive: true,
            read_only: b.read_only,
        }],
    });
    let tmpfs = spec.tmpfs.iter().map(|dir| {
        let mode = if dir == Path::new("/tmp") {
            "mode=1777"
        } else {
            "mode=0755"
        };
        Step::Mount {
            target: dir.clone(),
            make: MountPoint::Dir(0o755),
            sources: vec![fs("tmpfs", mode, SCRATCH)],
        }
    });
    binds.chain(tmpfs).collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::runner::network::Generated;
    use crate::runner::spec::Bind;

    pub(in crate::runner::rootfs) fn spec(rootfs: bool) -> ContainerSpec {
        ContainerSpec {
            rootfs: rootfs.then(|| PathBuf::from("/images/r")),
            net: NetMode::Host,
            hostname: None,
            uid: 0,
            gid: 0,
            workdir: None,
            env: Vec::new(),
            binds: Vec::new(),
            tmpfs: Vec::new(),
            command: Vec::new(),
            setgroups_allowed: true,
            publish: Vec::new(),
            pasta_options: Vec::new(),
            holder_idle: std::time::Duration::ZERO,
            overlay: None,
            layered: None,
            upper_claimed: false,
            read_only_root: false,
            session: crate::runner::terminal::Session::Own,
            generated: None,
            account: None,
            passed_fds: Default::default(),
            confinement: Default::default(),
        }
    }

    fn host() -> Host {
        Host {
            devices: HOST_DEVICES.to_vec(),
            resolv_conf: true,
            hosts: true,
        }
    }

    /// Each mount's target and each link, in order, with the entries of a directory flattened.
    fn flat(steps: &[Step]) -> Vec<(String, Option<&[Source]>)> {
        steps
            .iter()
            .flat_map(|s| match s {
                Step::Mount {
                    target, sources, ..
                } => vec![(target.display().to_string(), Some(sources.as_slice()))],
                Step::Cover { under, paths } => paths
                    .iter()
                    .map(|(name, _)| (under.join(name).display().to_string(), None))
                    .collect(),
                Step::Account { dir, .. } => vec![(format!("account in {}", dir.display()), None)],
                Step::Populate { dir, entries } => entries
                    .iter()
                    .map(|e| match e {
                        Entry::Mount { name, sources, .. } => (
                            dir.join(name).display().to_string(),
                            Some(sources.as_slice()),
                        ),
                        Entry::Symlink { name, to } => {
                            (format!("{} -> {to}", dir.join(name).display()), None)
                        }
                    })
                    .collect(),
            })
            .collect()
    }

    fn targets(steps: &[Step]) -> Vec<String> {
        flat(steps).into_iter().map(|(t, _)| t).collect()
    }

    fn sources<'a>(steps: &'a [Step], target: &str) -> &'a [Source] {
        flat(steps)
            .into_iter()
            .find_map(|(t, sources)| (t == target).then_some(sources).flatten())
            .unwrap_or_else(|| panic!("no mount on {target}"))
    }

    #[test]
    fn covered_kernel_files_come_after_proc_and_sys_and_before_the_users_mounts() {
        let mut confined = spec(true);
        confined.confinement.covered = crate::runner::confinement::paths::covered(&[]);
        confined.tmpfs = vec![PathBuf::from("/proc/acpi")];
        let steps = plan(&confined, &host());
        let all = targets(&steps);
        let at = |t: &str| all.iter().position(|x| x == t).unwrap();
        assert!(at("/sys") < at("/proc/kcore") && at("/tmp") < at("/proc/kcore"));
        assert!(at("/proc/sysrq-trigger") < at("/etc/resolv.conf"));
        // A user's mount on a masked path goes over the mask: what the user asked for is seen.
        assert_eq!(
            all.iter().rposition(|x| x == "/proc/acpi"),
            Some(all.len() - 1)
        );
        let covering = |target: &str| {
            steps.iter().find_map(|s| match s {
                Step::Cover { under, paths } => paths
                    .iter()
                    .find(|(name, _)| under.join(name) == Path::new(target))
                    .map(|(_, c)| *c),
                _ => None,
            })
        };
        assert_eq!(covering("/proc/kcore"), Some(Covering::Mask(Kind::File)));
        assert_eq!(
            covering("/proc/acpi"),
            Some(Covering::Mask(Kind::Directory))
        );
        assert_eq!(
            covering("/sys/fs/selinux"),
            Some(Covering::Mask(Kind::Directory))
        );
        assert_eq!(covering("/proc/sys"), Some(Covering::ReadOnly));
        // One step for each kernel filesystem, each resolved once.
        let unders: Vec<&Path> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Cover { under, .. } => Some(under.as_path()),
                _ => None,
            })
            .collect();
        assert_eq!(unders, [Path::new("/proc"), Path::new("/sys")]);
        // Nothing is covered without a confinement that says so (host mode, --privileged).
        assert!(!targets(&plan(&spec(true), &host())).contains(&"/proc/kcore".to_string()));
    }

    #[test]
    fn a_root_filesystem_gets_proc_dev_sys_tmp_in_that_order_then_the_resolver_files() {
        let steps = plan(&spec(true), &host());
        assert_eq!(
            targets(&steps),
            [
                "/proc",
                "/dev",
                "/dev/null",
                "/dev/zero",
                "/dev/full",
                "/dev/random",
                "/dev/urandom",
                "/dev/tty",
                "/dev/pts",
                "/dev/ptmx -> pts/ptmx",
                "/dev/fd -> /proc/self/fd",
                "/dev/stdin -> /proc/self/fd/0",
                "/dev/stdout -> /proc/self/fd/1",
                "/dev/stderr -> /proc/self/fd/2",
                "/dev/shm",
                "/sys",
                "/tmp",
                "/etc/resolv.conf",
                "/etc/hosts",
            ]
        );
        assert_eq!(
            sources(&steps, "/proc"),
            [fs("proc", "", NOTHING_RUNS)],
            "proc: nosuid, nodev, noexec"
        );
        assert_eq!(
            sources(&steps, "/tmp"),
            [Source::Fs {
                fstype: "tmpfs",
                options: vec!["mode=1777".into()],
                attrs: SCRATCH
            }]
        );
        // /dev must keep device nodes working.
        assert!(matches!(
            &sources(&steps, "/dev")[0],
            Source::Fs { attrs, .. } if !attrs.nodev && attrs.noexec && attrs.nosuid
        ));
        assert_eq!(
            sources(&steps, "/etc/hosts"),
            [Source::Bind {
                host: "/etc/hosts".into(),
                recursive: false,
                read_only: true
            }]
        );
    }

    #[test]
    fn host_mode_mounts_only_proc_and_keeps_the_hosts_resolver_files() {
        let steps = plan(&spec(false), &host());
        assert_eq!(targets(&steps), ["/proc", "/etc/resolv.conf", "/etc/hosts"]);
        let missing = Host {
            devices: Vec::new(),
            resolv_conf: false,
            hosts: true,
        };
        assert_eq!(
            targets(&plan(&spec(false), &missing)),
            ["/proc", "/etc/hosts"]
        );
    }

    #[test]
    fn devpts_tries_the_tty_group_only_when_it_is_mapped() {
        let full = plan(&spec(true), &host());
        let options = |steps: &[Step]| -> Vec<Vec<String>> {
            sources(steps, "/dev/pts")
                .iter()
                .map(|s| match s {
                    Source::Fs { options, .. } => options.clone(),
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        assert_eq!(
            options(&full),
            [
                vec!["newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
                vec!["newinstance", "ptmxmode=0666", "mode=0620"]
            ]
        );
        let single = ContainerSpec {
            setgroups_allowed: false,
            ..spec(true)
        };
        assert_eq!(
            options(&plan(&single, &host())),
            [vec!["newinstance", "ptmxmode=0666", "mode=0620"]]
        );
        // Devices missing on the host are not bound.
        let few = Host {
            devices: vec!["null"],
            ..host()
        };
        let steps = plan(&spec(true), &few);
        assert!(targets(&steps).contains(&"/dev/null".to_string()));
        assert!(!targets(&steps).contains(&"/dev/tty".to_string()));
    }

    #[test]
    fn sysfs_of_its_own_only_in_a_network_namespace_of_its_own() {
        let host_sys = Source::Bind {
            host: "/sys".into(),
            recursive: true,
            read_only: true,
        };
        assert_eq!(sys(NetMode::Host), std::slice::from_ref(&host_sys));
        assert_eq!(sys(NetMode::Pasta), std::slice::from_ref(&host_sys));
        let none = sys(NetMode::None);
        assert!(matches!(&none[0], Source::Fs { fstype: "sysfs", attrs, .. } if attrs.read_only));
        assert_eq!(none[1], host_sys);
    }

    #[test]
    fn generated_resolver_files_replace_the_hosts() {
        let generated = Generated {
            dir: "/run/x".into(),
            resolv_conf: Some("/run/x/resolv.conf".into()),
            hosts: Some("/run/x/hosts".into()),
        };
        let pasta = ContainerSpec {
            net: NetMode::Pasta,
            generated: Some(generated.clone()),
            ..spec(true)
        };
        let steps = plan(&pasta, &host());
        assert!(matches!(
            sources(&steps, "/etc/resolv.conf"),
            [Source::Bind { host, read_only: true, .. }] if host == Path::new("/run/x/resolv.conf")
        ));
        // --net none without --hostname: no resolver, but the hosts file with the hostname.
        let none = ContainerSpec {
            net: NetMode::None,
            generated: Some(Generated {
                resolv_conf: None,
                ..generated
            }),
            ..spec(true)
        };
        let steps = plan(&none, &host());
        assert!(!targets(&steps).contains(&"/etc/resolv.conf".to_string()));
        assert!(matches!(
            sources(&steps, "/etc/hosts"),
            [Source::Bind { host, .. }] if host == Path::new("/run/x/hosts")
        ));
    }

    #[test]
    fn the_account_comes_after_the_users_mounts_with_a_home_of_its_own() {
        let account = Account {
            name: "alice".into(),
            uid: 1000,
            gid: 1001,
            group: "staff".into(),
            gecos: "Alice".into(),
            home: "/home/alice".into(),
            shell: "/bin/bash".into(),
        };
        let generated = Generated {
            dir: "/run/x".into(),
            resolv_conf: None,
            hosts: None,
        };
        let with_account = ContainerSpec {
            account: Some(account.clone()),
            generated: Some(generated.clone()),
            binds: vec![Bind {
                source: "/home/alice".into(),
                target: "/home/alice".into(),
                read_only: false,
                source_is_dir: true,
            }],
            tmpfs: vec!["/cache".into()],
            ..spec(true)
        };
        let steps = plan(&with_account, &host());
        let names = targets(&steps);
        assert_eq!(
            names[names.len() - 3..],
            ["/home/alice", "/cache", "account in /run/x"]
        );
        assert_eq!(
            steps.last(),
            Some(&Step::Account {
                account: account.clone(),
                dir: "/run/x".into(),
                home: Source::Fs {
                    fstype: "tmpfs",
                    options: vec!["mode=0700".into(), "uid=1000".into(), "gid=1001".into()],
                    attrs: SCRATCH
                }
            })
        );
        // Generated files without an account (a hostname): none; nor in host mode.
        let no_account = ContainerSpec {
            generated: Some(generated.clone()),
            ..spec(true)
        };
        assert!(
            !plan(&no_account, &host())
                .iter()
                .any(|s| matches!(s, Step::Account { .. }))
        );
        let host_mode = ContainerSpec {
            rootfs: None,
            ..with_account
        };
        assert!(
            !plan(&host_mode, &host())
                .iter()
                .any(|s| matches!(s, Step::Account { .. }))
        );
    }

    #[test]
    fn user_mounts_come_last_binds_before_tmpfs() {
        let with_mounts = ContainerSpec {
            binds: vec![
                Bind {
                    source: "/home/me/src".into(),
                    target: "/src".into(),
                    read_only: false,
                    source_is_dir: true,
                },
                Bind {
                    source: "/home/me/.gitconfig".into(),
                    target: "/root/.gitconfig".into(),
                    read_only: true,
                    source_is_dir: false,
                },
            ],
            tmpfs: vec!["/tmp".into(), "/cache".into()],
            ..spec(true)
        };
        let steps = plan(&with_mounts, &host());
        let names = targets(&steps);
        assert_eq!(
            names[names.len() - 4..],
            ["/src", "/root/.gitconfig", "/tmp", "/cache"]
        );
        let last = &steps[steps.len() - 4..];
        assert!(matches!(
            &last[0],
            Step::Mount { make: MountPoint::Dir(0o755), sources, .. }
                if sources == &[Source::Bind { host: "/home/me/src".into(), recursive: true, read_only: false }]
        ));
        assert!(matches!(
            &last[1],
            Step::Mount { make: MountPoint::File, sources, .. }
                if matches!(sources[..], [Source::Bind { read_only: true, .. }])
        ));
        let mode = |step: &Step| match step {
            Step::Mount { sources, .. } => match &sources[0] {
                Source::Fs { options, .. } => options.clone(),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        };
        assert_eq!(mode(&last[2]), ["mode=1777"]);
        assert_eq!(mode(&last[3]), ["mode=0755"]);
    }
}
