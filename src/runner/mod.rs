//! The unshare-run applet (the container runner). Unprivileged: `applets` has dropped every privilege
//! before this code runs. `commands` is the entry: its table picks the verb.
//!
//! Modules by concern. Each uses only modules below it in `LAYERS` (a test checks it; README, "Where
//! things are", draws it): commands (the verb table) -> run (the container run), doctor ->
//! container (the start and its supervisor) -> holder (warm starts), init (PID 1) -> command (the
//! exec), rootfs (mounts) -> spec (what a container is) -> terminal (the container's own) -> image,
//! network -> userns (children in new namespaces) -> cli (options) -> confinement (what a container
//! keeps of the host) -> mapping (which ids, the helpers), users, channel, signals, error, exit.

mod channel;
pub mod cli;
mod command;
mod commands;
mod confinement;
mod container;
mod containers;
mod dirs;
mod doctor;
mod error;
mod exit;
mod holder;
pub(crate) mod image;
mod init;
mod launch;
mod lent_overlay;
mod mapping;
mod network;
mod rootfs;
mod run;
mod signals;
mod spec;
mod terminal;
mod userns;
mod users;

pub use exit::RUNNER_ERROR;

/// The unshare-run applet: `args` are the arguments after argv[0].
pub fn main(args: &[std::ffi::OsString]) -> u8 {
    commands::dispatch(args)
}

/// The runner's modules from the top down: each may use only the modules after it.
#[cfg(test)]
const LAYERS: &[&str] = &[
    "commands",
    "run",
    "doctor",
    "containers",
    "launch",
    "container",
    "init",
    "command",
    "rootfs",
    "spec",
    "terminal",
    "image",
    "holder",
    "lent_overlay",
    "network",
    "userns",
    "cli",
    "confinement",
    "mapping",
    "users",
    "channel",
    "signals",
    "dirs",
    "error",
    "exit",
];

#[cfg(test)]
mod tests {
    use super::LAYERS;
    use std::path::Path;

    /// The runner modules that the code of `module` names (super::X, crate::runner::X), without its
    /// unit tests (which may reach anywhere) and comments.
    fn uses(module: &str) -> Vec<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/runner");
        let mut files = vec![dir.join(format!("{module}.rs"))];
        if dir.join(module).is_dir() {
            let mut stack = vec![dir.join(module)];
            while let Some(d) = stack.pop() {
                for entry in std::fs::read_dir(d).unwrap().flatten() {
                    let path = entry.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if path.extension().is_some_and(|e| e == "rs") {
                        files.push(path);
                    }
                }
            }
        }
        let mut found = Vec::new();
        for file in files.iter().filter(|f| f.exists()) {
            let text = std::fs::read_to_string(file).unwrap();
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
            // The `super::`s that lead from this file to src/runner: one from MODULE.rs or MODULE/mod.rs,
            // one more for each directory further down.
            let depth = file.strip_prefix(&dir).unwrap().components().count();
            let is_mod_rs = file.file_name().is_some_and(|n| n == "mod.rs");
            let supers = "super::".repeat(if is_mod_rs { depth - 1 } else { depth });
            for line in code.lines() {
                let line = line.split("//").next().unwrap();
                for prefix in ["crate::runner::".to_string(), supers.clone()] {
                    for (at, _) in line.match_indices(&prefix) {
                        let before = &line[..at];
                        if prefix.starts_with("super") && before.ends_with("super::") {
                            continue;
                        }
                        let rest = &line[at + prefix.len()..];
                        let names: Vec<&str> = match rest.strip_prefix('{') {
                            Some(group) => group
                                .split('}')
                                .next()
                                .unwrap()
                                .split(',')
                                .map(|n| n.trim().split("::").next().unwrap())
                                .collect(),
                            None => vec![
                                rest.split(|c: char| !c.is_alphanumeric() && c != '_')
                                    .next()
                                    .unwrap(),
                            ],
                        };
                        found.extend(
                            names
                                .into_iter()
                                .filter(|n| LAYERS.contains(n) && *n != module)
                                .map(String::from),
                        );
                    }
                }
            }
        }
        found.sort();
        found.dedup();
        found
    }

    #[test]
    fn every_module_uses_only_modules_below_it() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/runner");
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().replace(".rs", "");
            if name != "mod" {
                assert!(LAYERS.contains(&name.as_str()), "{name} is not in LAYERS");
            }
        }
        for (rank, module) in LAYERS.iter().enumerate() {
            for used in uses(module) {
                let used_rank = LAYERS.iter().position(|m| *m == used).unwrap();
                assert!(
                    used_rank > rank,
                    "{module} uses {used}, which is above it in LAYERS: imports must point down"
                );
            }
        }
        // The check sees imports: rootfs uses spec, init uses rootfs.
        assert!(uses("rootfs").contains(&"spec".to_string()));
        assert!(uses("init").contains(&"rootfs".to_string()));
    }
}
