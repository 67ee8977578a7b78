//! Where the configuration podman users already have lives: the process's environment and home, as
//! one value so that tests can point every lookup at fixture directories instead of the real home.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub(crate) struct Environment {
    pub home: Option<PathBuf>,
    /// $XDG_CONFIG_HOME, else ~/.config.
    pub config_home: Option<PathBuf>,
    /// $XDG_RUNTIME_DIR.
    pub runtime_dir: Option<PathBuf>,
    /// $REGISTRY_AUTH_FILE.
    pub registry_auth_file: Option<PathBuf>,
    /// $DOCKER_CONFIG (a directory holding config.json).
    pub docker_config: Option<PathBuf>,
    /// $CONTAINERS_REGISTRIES_CONF: one registries.conf instead of the usual ones.
    pub registries_conf: Option<PathBuf>,
    /// $PATH, for credential helpers.
    pub path: Option<OsString>,
    pub uid: u32,
    /// The root under which etc/containers, etc/docker and run/containers are: `/`.
    pub system: PathBuf,
}

impl Environment {
    pub fn of_process() -> Environment {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let home = var("HOME");
        Environment {
            config_home: var("XDG_CONFIG_HOME")
                .or_else(|| home.as_ref().map(|h| h.join(".config"))),
            runtime_dir: var("XDG_RUNTIME_DIR"),
            registry_auth_file: var("REGISTRY_AUTH_FILE"),
            docker_config: var("DOCKER_CONFIG"),
            registries_conf: var("CONTAINERS_REGISTRIES_CONF"),
            path: std::env::var_os("PATH"),
            uid: nix::unistd::getuid().as_raw(),
            system: PathBuf::from("/"),
            home,
        }
    }

    /// A path under the system root: `etc/containers/registries.conf`.
    pub fn system_path(&self, relative: &str) -> PathBuf {
        self.system.join(relative)
    }

    /// A path under the user's configuration directory (`containers/auth.json`), if there is one.
    pub fn user_config(&self, relative: &str) -> Option<PathBuf> {
        self.config_home.as_deref().map(|c| c.join(relative))
    }

    /// An executable named `name` in $PATH.
    pub fn find_program(&self, name: &str) -> Option<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.path.as_ref()?;
        std::env::split_paths(path)
            .filter(|dir| dir.is_absolute())
            .map(|dir| dir.join(name))
            .find(|candidate| {
                Path::new(candidate)
                    .metadata()
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
    }
}
