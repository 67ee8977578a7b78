//! Where unshare-run keeps a user's files that outlive one command: under `$XDG_DATA_HOME/unshare-run`
//! (else `~/.local/share/unshare-run`): the image store and the named containers' records.

use std::path::PathBuf;

/// `$XDG_DATA_HOME/unshare-run`, or `~/.local/share/unshare-run` (HOME, else the passwd entry's
/// home); not created here.
pub fn data_dir() -> Result<PathBuf, String> {
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let data_home = match data_home {
        Some(dir) => dir,
        None => {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .or_else(|| {
                    nix::unistd::User::from_uid(nix::unistd::getuid())
                        .ok()
                        .flatten()
                        .map(|u| u.dir)
                })
                .ok_or("neither XDG_DATA_HOME nor HOME is set")?;
            home.join(".local/share")
        }
    };
    Ok(data_home.join("unshare-run"))
}

/// Where the named containers' records are (`containers::record`): one directory per name.
pub fn containers_dir() -> Result<PathBuf, String> {
    data_dir().map(|d| d.join("containers"))
}
