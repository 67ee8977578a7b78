//! The runner's command table, as `applets` is the binary's: the first argument picks a verb
//! (`doctor`, `images`, `login`, `logout`, `ps`, `rm`, `exec`, `logs`, `stop`, `kill`, `start`, the
//! monitor's and the holder's hidden ones), anything else is a container
//! run. Each entry's clap definition parses its arguments and also makes its man page and the
//! shell completions, so the three cannot drift apart. A new verb (exec, ps, stop ...) is one more
//! entry.
//!
//! A host command that has a verb's name runs after `--` (`unshare-run -- doctor`).

use std::ffi::OsString;

use clap::CommandFactory;

use super::error::RunError;
use super::{cli, containers, doctor, exit, holder, image, run};

pub struct Verb {
    /// The first argument that selects it.
    pub name: &'static str,
    /// Not in man pages or completions: an interface between unshare-run's own processes. (Read by
    /// the tests that generate them.)
    #[cfg_attr(not(test), allow(dead_code))]
    pub hidden: bool,
    /// Its arguments, help text, man page and completions.
    pub definition: fn() -> clap::Command,
    /// Runs it with its parsed arguments (and the arguments as given, which a named container keeps
    /// to start again); the exit status, or the error to print.
    pub run: fn(&clap::ArgMatches, &[OsString]) -> Result<u8, RunError>,
}

/// The container run: what unshare-run does without a verb. A static, not a const: `dispatch` tells
/// it from the verbs by its address, which a const does not have.
pub static CONTAINER_RUN: Verb = Verb {
    name: "unshare-run",
    hidden: false,
    definition: cli::Cli::command,
    run: run::main,
};

pub const VERBS: &[Verb] = &[
    Verb {
        name: "doctor",
        hidden: false,
        definition: doctor::command,
        run: |m, _| doctor::main(m),
    },
    Verb {
        name: "images",
        hidden: false,
        definition: image::commands::ImagesCli::command,
        run: |m, _| image::commands::main(m),
    },
    Verb {
        name: "login",
        hidden: false,
        definition: image::login::LoginCli::command,
        run: |m, _| image::login::login_main(m),
    },
    Verb {
        name: "logout",
        hidden: false,
        definition: image::login::LogoutCli::command,
        run: |m, _| image::login::logout_main(m),
    },
    Verb {
        name: "ps",
        hidden: false,
        definition: containers::PsCli::command,
        run: |m, _| containers::ps_main(m),
    },
    Verb {
        name: "rm",
        hidden: false,
        definition: containers::RmCli::command,
        run: |m, _| containers::rm_main(m),
    },
    Verb {
        name: "exec",
        hidden: false,
        definition: containers::exec::ExecCli::command,
        run: |m, _| containers::exec::main(m),
    },
    Verb {
        name: "logs",
        hidden: false,
        definition: containers::control::LogsCli::command,
        run: |m, _| containers::control::logs_main(m),
    },
    Verb {
        name: "stop",
        hidden: false,
        definition: containers::control::StopCli::command,
        run: |m, _| containers::control::stop_main(m),
    },
    Verb {
        name: "kill",
        hidden: false,
        definition: containers::control::KillCli::command,
        run: |m, _| containers::control::kill_main(m),
    },
    Verb {
        name: "start",
        hidden: false,
        definition: containers::control::StartCli::command,
        run: |m, _| containers::control::start_main(m),
    },
    Verb {
        name: containers::monitor::SERVE_ARG,
        hidden: true,
        definition: containers::monitor::command,
        run: |m, _| containers::monitor::main(m),
    },
    Verb {
        name: holder::SERVE_ARG,
        hidden: true,
        definition: holder::command,
        run: |m, _| holder::main(m),
    },
];

/// The verb that `args` (after argv[0]) selects, and the arguments it gets.
pub fn select(args: &[OsString]) -> (&'static Verb, &[OsString]) {
    match args
        .first()
        .and_then(|first| VERBS.iter().find(|v| first == v.name))
    {
        Some(verb) => (verb, &args[1..]),
        None => (&CONTAINER_RUN, args),
    }
}

/// Runs the unshare-run applet with the arguments after argv[0]; returns the exit status. Every
/// error of every verb is printed here, once.
pub fn dispatch(args: &[OsString]) -> u8 {
    start_debug_log();
    let (verb, rest) = select(args);
    let is_run = std::ptr::eq(verb, &CONTAINER_RUN);
    // What usage lines and errors call it.
    let program = if is_run {
        OsString::from(verb.name)
    } else {
        OsString::from(format!("unshare-run {}", verb.name))
    };
    let argv = std::iter::once(program).chain(rest.iter().cloned());
    let matches = match (verb.definition)().try_get_matches_from(argv) {
        Ok(matches) => matches,
        Err(e) => {
            let _ = e.print();
            let status = exit::of_parse_error(&e);
            if status != 0 && !is_run {
                eprintln!(
                    "(a host command named {} runs with: unshare-run -- {} ...)",
                    verb.name, verb.name
                );
            }
            return status;
        }
    };
    match (verb.run)(&matches, rest) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("unshare-run: {e}");
            e.status
        }
    }
}

/// UNSHARE_RUN_LOG (env_logger's syntax, e.g. `debug`) turns on the trace of what unshare-run does,
/// on stderr, each line with the process's pid (1 for the container's init). Unset: nothing is set up.
/// Not RUST_LOG: in host mode the command inherits the environment, and a Rust program run in the
/// container would take RUST_LOG as its own.
const LOG_VARIABLE: &str = "UNSHARE_RUN_LOG";

fn start_debug_log() {
    use std::io::Write;
    if std::env::var_os(LOG_VARIABLE).is_none() {
        return;
    }
    let _ = env_logger::Builder::from_env(LOG_VARIABLE)
        .format(|out, record| {
            writeln!(
                out,
                "unshare-run[{}]: {}: {}",
                std::process::id(),
                record.level().as_str().to_ascii_lowercase(),
                record.args()
            )
        })
        .try_init();
}

/// The whole command line for the shell completions: the run's options, and the visible verbs as
/// subcommands. (The completions are generated by a test, which keeps completions/ current.)
#[cfg(test)]
fn completion_definition() -> clap::Command {
    VERBS
        .iter()
        .filter(|v| !v.hidden)
        .fold((CONTAINER_RUN.definition)(), |command, verb| {
            command.subcommand((verb.definition)().name(verb.name))
        })
        .args_conflicts_with_subcommands(true)
        .disable_help_subcommand(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn check_current(path: &Path, fresh: &[u8], update: &str) {
        if std::env::var_os(update).is_some() {
            std::fs::write(path, fresh).unwrap();
        }
        assert!(
            std::fs::read(path).unwrap_or_default() == fresh,
            "{} is stale: run {update}=1 cargo test commands",
            path.display()
        );
    }

    /// man/ has a page for the run and for each visible verb and its subcommands, generated from the
    /// table: `UPDATE_MAN=1 cargo test commands` rewrites them.
    #[test]
    fn man_pages_are_current() {
        let man_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
        let mut page = Vec::new();
        clap_mangen::Man::new((CONTAINER_RUN.definition)())
            .render(&mut page)
            .unwrap();
        check_current(&man_dir.join("unshare-run.1"), &page, "UPDATE_MAN");
        let generated = std::env::temp_dir().join(format!("urt-man-{}", std::process::id()));
        for verb in VERBS.iter().filter(|v| !v.hidden) {
            let _ = std::fs::remove_dir_all(&generated);
            std::fs::create_dir_all(&generated).unwrap();
            let page_name: &'static str = format!("unshare-run-{}", verb.name).leak();
            let named = (verb.definition)().name(page_name);
            clap_mangen::generate_to(named, &generated).unwrap();
            for page in std::fs::read_dir(&generated).unwrap() {
                let page = page.unwrap();
                let fresh = std::fs::read(page.path()).unwrap();
                check_current(&man_dir.join(page.file_name()), &fresh, "UPDATE_MAN");
            }
        }
        std::fs::remove_dir_all(&generated).unwrap();
    }

    /// completions/ is generated from the table: `UPDATE_COMPLETIONS=1 cargo test commands`.
    #[test]
    fn completions_are_current() {
        use clap_complete::Shell;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
        for (shell, file) in [
            (Shell::Bash, "unshare-run.bash"),
            (Shell::Zsh, "_unshare-run"),
            (Shell::Fish, "unshare-run.fish"),
        ] {
            let mut script = Vec::new();
            clap_complete::generate(
                shell,
                &mut completion_definition(),
                "unshare-run",
                &mut script,
            );
            check_current(&dir.join(file), &script, "UPDATE_COMPLETIONS");
        }
    }

    #[test]
    fn definitions_are_consistent() {
        (CONTAINER_RUN.definition)().debug_assert();
        for verb in VERBS {
            (verb.definition)().debug_assert();
        }
        completion_definition().debug_assert();
    }

    #[test]
    fn the_first_argument_selects_a_verb_and_anything_else_is_a_run() {
        let args = |list: &[&str]| list.iter().map(OsString::from).collect::<Vec<_>>();
        let images = args(&["images", "rm", "x"]);
        let (verb, rest) = select(&images);
        assert_eq!((verb.name, rest.len()), ("images", 2));
        assert_eq!(select(&args(&["doctor"])).0.name, "doctor");
        assert_eq!(select(&args(&["login", "quay.io"])).0.name, "login");
        assert_eq!(select(&args(&["logout", "--all"])).0.name, "logout");
        for run in [
            &["--", "doctor"][..],
            &["--", "login"],
            &["--rootfs", "images"],
            &["ls"],
            &[],
        ] {
            let run_args = args(run);
            let (verb, rest) = select(&run_args);
            assert_eq!((verb.name, rest.len()), ("unshare-run", run.len()));
        }
    }
}
