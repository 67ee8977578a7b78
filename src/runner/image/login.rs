//! `unshare-run login` and `unshare-run logout`, as podman's: the command lines, the questions on
//! the terminal for what they do not give (the password without echo), and what is said. What
//! is checked and written is `registry::Logins`'.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use clap::{FromArgMatches, Parser};
use nix::sys::termios::{self, LocalFlags, SetArg, SpecialCharacterIndices, Termios};

use super::registry::{LoginKey, Logins, StoredLogin, Verdict};
use crate::runner::error::RunError;

/// A password on stdin is a line; more than this is not one.
const MAX_STDIN_PASSWORD: u64 = 64 << 10;
/// An answer typed on the terminal is at most this long.
const MAX_ANSWER: usize = 4096;
/// The exit status of a question interrupted by ^C: as if SIGINT had ended the process.
const INTERRUPTED: u8 = 128 + 2;

#[derive(Debug, Parser)]
#[command(
    name = "unshare-run login",
    about = "Log in to a container registry: check the credentials there and keep them for pulls (as podman login)",
    long_about = "Log in to a container registry, as podman login does. The credentials are checked with \
the registry first (its token service for registries that hand out tokens, as Docker Hub, quay.io and \
distribution's do; the registry itself for Basic authentication); only then are they stored, as \
base64 of USER:PASSWORD under the registry's key in an auth file (containers-auth.json(5)): by \
default podman's $XDG_RUNTIME_DIR/containers/auth.json (/run/containers/UID/auth.json without \
XDG_RUNTIME_DIR), the first file pulls read, so podman, skopeo and buildah use the login too. \
--authfile or REGISTRY_AUTH_FILE name another file. Everything else in the file is kept; it is \
written whole and renamed into place, mode 0600 (a new directory 0700).\n\n\
What is not given is asked for on the terminal (/dev/tty), the password without echo. Without -u \
and -p, stored credentials that the registry still accepts are kept (\"Already logged in\"). \
Refused credentials exit 125 and change nothing. Credentials that a credential helper keeps \
(credHelpers in the file, credential-helpers in registries.conf) are that helper's: login refuses \
to write around it.",
    after_help = "Examples:\n  \
unshare-run login quay.io                        asks for the username and password\n  \
unshare-run login -u me docker.io                Docker Hub (stored as docker.io)\n  \
printf %s \"$TOKEN\" | unshare-run login -u me --password-stdin ghcr.io\n  \
unshare-run login -u me quay.io/myteam           for quay.io/myteam/... only\n  \
unshare-run login --authfile ./ci-auth.json -u ci --password-stdin 127.0.0.1:5000\n  \
unshare-run login --get-login quay.io            who you are logged in as\n  \
unshare-run logout quay.io                       forget them\n\n\
Exit status: 0 when logged in, 125 when refused or failed (130 when a question is interrupted).\n\
A host command named login runs with: unshare-run -- login"
)]
pub struct LoginCli {
    /// HOST[:PORT] (docker.io for Docker Hub; a URL's host), optionally with a repository path
    /// (quay.io/NAMESPACE) for credentials of that path only. Default: the first of registries.conf's
    /// unqualified-search-registries.
    #[arg(value_name = "REGISTRY")]
    registry: Option<String>,

    /// The auth file to write (and the only one read), instead of
    /// $XDG_RUNTIME_DIR/containers/auth.json. REGISTRY_AUTH_FILE does the same.
    #[arg(long, value_name = "FILE")]
    authfile: Option<PathBuf>,

    /// The username (asked for on the terminal when not given).
    #[arg(short = 'u', long, value_name = "USER")]
    username: Option<String>,

    /// The password. Others can see it in `ps` and your shell's history: prefer --password-stdin,
    /// or the question on the terminal.
    #[arg(
        short = 'p',
        long,
        value_name = "PASSWORD",
        conflicts_with = "password_stdin"
    )]
    password: Option<String>,

    /// Read the password from stdin (its lines joined; needs --username).
    #[arg(long)]
    password_stdin: bool,

    /// --tls-verify=false accepts any certificate of the registry, and plain HTTP: only for a
    /// registry you trust on a network you trust (better: its CA in
    /// ~/.config/containers/certs.d/HOST:PORT/ca.crt).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    tls_verify: Option<bool>,

    /// Print the username stored for REGISTRY (exit 125 when there is none), and do nothing else.
    #[arg(long, conflicts_with_all = ["username", "password", "password_stdin"])]
    get_login: bool,
}

#[derive(Debug, Parser)]
#[command(
    name = "unshare-run logout",
    about = "Log out of a container registry: remove its credentials from the auth file (as podman logout)",
    long_about = "Remove the credentials for REGISTRY from the auth file that unshare-run login writes \
(podman's $XDG_RUNTIME_DIR/containers/auth.json, or --authfile or REGISTRY_AUTH_FILE), keeping \
everything else in it; --all removes every registry's. For docker.io, Docker Hub's entry goes under \
any of its names. Credentials in other files (docker's ~/.docker/config.json, \
~/.config/containers/auth.json) stay: when they are what pulls would still use, logout says where \
they are.",
    after_help = "Examples:\n  \
unshare-run logout quay.io                       \"Removed login credentials for quay.io\"\n  \
unshare-run logout --authfile ./ci-auth.json 127.0.0.1:5000\n  \
unshare-run logout --all                         every registry in the file\n\n\
Exit status: 0 when removed, 125 when not logged in there or failed.\n\
A host command named logout runs with: unshare-run -- logout"
)]
pub struct LogoutCli {
    /// HOST[:PORT], optionally with a repository path, as given to login. Default: the first of
    /// registries.conf's unqualified-search-registries.
    #[arg(value_name = "REGISTRY")]
    registry: Option<String>,

    /// The auth file to edit (it must exist), instead of $XDG_RUNTIME_DIR/containers/auth.json.
    /// REGISTRY_AUTH_FILE does the same.
    #[arg(long, value_name = "FILE")]
    authfile: Option<PathBuf>,

    /// Remove the credentials of every registry in the file.
    #[arg(short = 'a', long, conflicts_with = "registry")]
    all: bool,
}

pub fn login_main(args: &clap::ArgMatches) -> Result<u8, RunError> {
    let cli = LoginCli::from_arg_matches(args).map_err(|e| RunError::new(e.to_string()))?;
    let logins = Logins::of_process(cli.authfile.clone())?;
    let key = logins.key(cli.registry.as_deref())?;
    login(
        &logins,
        &cli,
        &key,
        &mut std::io::stdin(),
        &mut Terminal::default(),
        &mut std::io::stdout(),
    )
}

pub fn logout_main(args: &clap::ArgMatches) -> Result<u8, RunError> {
    let cli = LogoutCli::from_arg_matches(args).map_err(|e| RunError::new(e.to_string()))?;
    let logins = Logins::of_process(cli.authfile.clone())?;
    logout(&logins, &cli, &mut std::io::stdout())
}

/// Where login asks for what the command line did not give.
trait Ask {
    /// An answer typed with echo, without its line end.
    fn line(&mut self, prompt: &str) -> Result<String, RunError>;
    /// An answer typed without echo.
    fn secret(&mut self, prompt: &str) -> Result<String, RunError>;
}

fn login(
    logins: &Logins,
    cli: &LoginCli,
    key: &LoginKey,
    stdin: &mut dyn Read,
    ask: &mut dyn Ask,
    out: &mut dyn Write,
) -> Result<u8, RunError> {
    let stored = logins.stored(key)?;
    if cli.get_login {
        return match stored {
            StoredLogin::Password { username, .. } => {
                say(out, &username);
                Ok(0)
            }
            StoredLogin::IdentityToken { source } => Err(RunError::new(format!(
                "logged into {} with an identity token (from {source}), which names no user",
                key.key
            ))),
            StoredLogin::Nothing => Err(RunError::new(format!("not logged into {}", key.key))
                .with_hint(format!("unshare-run login {} logs in", key.key))),
        };
    }
    let mut password = cli.password.clone();
    if cli.password_stdin {
        if cli.username.is_none() {
            return Err(RunError::new(
                "--password-stdin needs --username: stdin holds the password",
            )
            .with_hint(format!(
                "unshare-run login -u USER --password-stdin {}",
                key.key
            )));
        }
        password = Some(password_from(stdin)?);
    }
    let (stored_username, stored_password) = match &stored {
        StoredLogin::Password {
            username, password, ..
        } => (Some(username.as_str()), Some(password.as_str())),
        _ => (None, None),
    };
    // As podman: nothing given, and the stored credentials still work: nothing to do.
    if cli.username.is_none()
        && password.is_none()
        && let (Some(username), Some(existing)) = (stored_username, stored_password)
    {
        say(
            out,
            &format!("Authenticating with existing credentials for {}", key.key),
        );
        match logins.check(key, username, existing, cli.tls_verify)? {
            Verdict::Accepted => {
                say(
                    out,
                    &format!(
                        "Existing credentials are valid. Already logged in to {}",
                        key.registry
                    ),
                );
                return Ok(0);
            }
            Verdict::Refused(_) => say(
                out,
                "Existing credentials are invalid, please enter valid username and password",
            ),
        }
    }
    let username = match &cli.username {
        Some(given) => given.trim().to_string(),
        None => {
            let prompt = match stored_username {
                Some(known) => format!("Username ({known}): "),
                None => "Username: ".to_string(),
            };
            match ask.line(&prompt)?.trim() {
                // Enter keeps the stored user (a new password for the same account).
                "" => stored_username.unwrap_or_default().to_string(),
                typed => typed.to_string(),
            }
        }
    };
    if username.is_empty() {
        return Err(RunError::new("no username given").with_hint("give it with -u USER"));
    }
    if username.contains(':') {
        return Err(RunError::new(format!(
            "the username `{username}` has a `:`, which Basic authentication cannot carry"
        )));
    }
    let password = match password {
        Some(given) => given,
        None => ask.secret("Password: ")?,
    };
    match logins.check(key, &username, &password, cli.tls_verify)? {
        Verdict::Accepted => {
            let file = logins.save(key, &username, &password)?;
            log::debug!("login: {} stored in {}", key.key, file.display());
            say(out, "Login Succeeded!");
            Ok(0)
        }
        Verdict::Refused(why) => Err(RunError::new(format!(
            "logging into {}: invalid username or password ({why})",
            key.key
        ))
        .with_hint(
            "check them (some registries want a token or an app password instead of the \
             account's password); nothing was stored",
        )),
    }
}

fn logout(logins: &Logins, cli: &LogoutCli, out: &mut dyn Write) -> Result<u8, RunError> {
    if cli.all {
        logins.remove_all()?;
        say(out, "Removed login credentials for all registries");
        return Ok(0);
    }
    let key = logins.key(cli.registry.as_deref())?;
    logins.remove(&key)?;
    say(out, &format!("Removed login credentials for {}", key.key));
    Ok(0)
}

/// A line on stdout. A closed stdout does not undo a login, so its failure is not one.
fn say(out: &mut dyn Write, line: &str) {
    let _ = writeln!(out, "{line}");
}

/// --password-stdin: all of stdin, its lines joined without their ends (as podman reads it).
fn password_from(stdin: &mut dyn Read) -> Result<String, RunError> {
    let mut bytes = Vec::new();
    stdin
        .take(MAX_STDIN_PASSWORD + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| RunError::sys("cannot read the password from stdin", e))?;
    if bytes.len() as u64 > MAX_STDIN_PASSWORD {
        return Err(RunError::new(
            "--password-stdin: stdin holds more than 64 KiB, which is no password",
        ));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| RunError::new("--password-stdin: the password is not UTF-8 text"))?;
    let password: String = text.lines().collect();
    if password.is_empty() {
        return Err(RunError::new("--password-stdin: stdin was empty")
            .with_hint("pipe the password in: printf %s \"$PASSWORD\" | unshare-run login ..."));
    }
    Ok(password)
}

/// The controlling terminal, /dev/tty, opened when the first question is asked: stdin may be a
/// pipe, and stdout a file.
#[derive(Default)]
struct Terminal {
    tty: Option<File>,
}

impl Terminal {
    #[cfg(test)]
    fn on(tty: File) -> Terminal {
        Terminal { tty: Some(tty) }
    }

    fn tty(&mut self, what: &str) -> Result<&mut File, RunError> {
        match self.tty {
            Some(ref mut tty) => Ok(tty),
            None => {
                let opened = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
                    .open("/dev/tty")
                    .map_err(|e| {
                        RunError::sys(
                            format!("no terminal to ask for the {what} on (/dev/tty)"),
                            e,
                        )
                        .with_hint("give -u USER, and the password with --password-stdin (or -p)")
                    })?;
                Ok(self.tty.insert(opened))
            }
        }
    }
}

impl Ask for Terminal {
    fn line(&mut self, prompt: &str) -> Result<String, RunError> {
        let tty = self.tty("username")?;
        write_prompt(tty, prompt)?;
        let mut line = Vec::new();
        let mut byte = [0u8];
        loop {
            match tty.read(&mut byte) {
                Ok(0) => break,
                Ok(_) if byte[0] == b'\n' => break,
                Ok(_) if line.len() < MAX_ANSWER => line.push(byte[0]),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(RunError::sys("cannot read from the terminal", e)),
            }
        }
        String::from_utf8(line).map_err(|_| RunError::new("the answer is not UTF-8 text"))
    }

    fn secret(&mut self, prompt: &str) -> Result<String, RunError> {
        let tty = self.tty("password")?;
        write_prompt(tty, prompt)?;
        let secret = read_without_echo(tty);
        // The Enter that ended it was not echoed.
        let _ = tty.write_all(b"\n");
        secret
    }
}

fn write_prompt(tty: &mut File, prompt: &str) -> Result<(), RunError> {
    tty.write_all(prompt.as_bytes())
        .and_then(|()| tty.flush())
        .map_err(|e| RunError::sys("cannot write to the terminal", e))
}

/// The terminal's settings, put back when dropped: also when reading fails.
struct Restore<'a> {
    tty: &'a File,
    saved: Termios,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.tty.as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// Reads a line with echo off. The terminal's own line editing and signals are off too (byte by
/// byte, VMIN 1), and done here: so that ^C ends the question with the terminal's settings put
/// back, instead of killing the process with echo still off. Erase (and ^H) and kill (^U) edit,
/// the interrupt and quit characters give up (exit 130), end-of-file on an empty line too.
fn read_without_echo(tty: &mut File) -> Result<String, RunError> {
    use SpecialCharacterIndices::{VEOF, VERASE, VINTR, VKILL, VMIN, VQUIT, VTIME};
    let saved = termios::tcgetattr(tty.as_fd())
        .map_err(|e| RunError::sys("cannot read the terminal's settings", e))?;
    // A special character set to 0 is switched off (_POSIX_VDISABLE), not NUL.
    let special = |index: SpecialCharacterIndices| {
        Some(saved.control_chars[index as usize]).filter(|&c| c != 0)
    };
    let (interrupt, quit, end, erase, kill) = (
        special(VINTR),
        special(VQUIT),
        special(VEOF),
        special(VERASE),
        special(VKILL),
    );
    let mut quiet = saved.clone();
    quiet.local_flags.remove(
        LocalFlags::ECHO
            | LocalFlags::ECHONL
            | LocalFlags::ICANON
            | LocalFlags::ISIG
            | LocalFlags::IEXTEN,
    );
    quiet.control_chars[VMIN as usize] = 1;
    quiet.control_chars[VTIME as usize] = 0;
    termios::tcsetattr(tty.as_fd(), SetArg::TCSANOW, &quiet)
        .map_err(|e| RunError::sys("cannot turn off the terminal's echo", e))?;
    let restore = Restore {
        tty: &*tty,
        saved: saved.clone(),
    };
    let mut secret: Vec<u8> = Vec::new();
    let mut byte = [0u8];
    loop {
        match (&*restore.tty).read(&mut byte) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(RunError::sys("cannot read from the terminal", e)),
        }
        let typed = Some(byte[0]);
        match byte[0] {
            b'\r' | b'\n' => break,
            _ if typed == interrupt || typed == quit => {
                return Err(
                    RunError::new("interrupted: nothing was stored").with_status(INTERRUPTED)
                );
            }
            _ if typed == end && secret.is_empty() => {
                return Err(RunError::new("no password given (end of input)"));
            }
            b if typed == erase || b == 0x7f || b == 0x08 => {
                // One character: the bytes of a UTF-8 sequence go together.
                while let Some(last) = secret.pop() {
                    if last & 0xc0 != 0x80 {
                        break;
                    }
                }
            }
            _ if typed == kill => secret.clear(),
            // Other control characters (^Z, ^S ...) are keys, not part of a password.
            b if b < 0x20 => {}
            b if secret.len() < MAX_ANSWER => secret.push(b),
            _ => {}
        }
    }
    drop(restore);
    String::from_utf8(secret).map_err(|_| RunError::new("the password is not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::fs;
    use std::path::Path;
    use std::sync::Arc;

    use clap::CommandFactory;

    use super::super::registry::fake::{Auth, Registry, Server, tempdir};
    use super::*;

    /// Answers from a list; records the questions.
    #[derive(Default)]
    struct Script {
        answers: VecDeque<String>,
        asked: Vec<String>,
    }

    impl Script {
        fn answering(answers: &[&str]) -> Script {
            Script {
                answers: answers.iter().map(|a| a.to_string()).collect(),
                asked: Vec::new(),
            }
        }
    }

    impl Ask for Script {
        fn line(&mut self, prompt: &str) -> Result<String, RunError> {
            self.asked.push(prompt.to_string());
            self.answers
                .pop_front()
                .ok_or_else(|| RunError::new("no terminal in this test"))
        }
        fn secret(&mut self, prompt: &str) -> Result<String, RunError> {
            self.line(prompt)
        }
    }

    struct Fixture {
        dir: PathBuf,
        server: Server,
        registry: Arc<Registry>,
    }

    impl Fixture {
        fn new(auth: Auth) -> Fixture {
            let dir = tempdir();
            let registry = Registry::new(auth);
            let server = {
                let registry = registry.clone();
                Server::start(move |request| registry.handle(request))
            };
            let conf = dir.join("home/.config/containers/registries.conf");
            fs::create_dir_all(conf.parent().unwrap()).unwrap();
            fs::write(
                &conf,
                format!(
                    "[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
                    server.authority()
                ),
            )
            .unwrap();
            Fixture {
                dir,
                server,
                registry,
            }
        }

        fn bearer() -> Fixture {
            Fixture::new(Auth::Bearer {
                login: Some(("alice".into(), "s3cret".into())),
                identity_token: None,
            })
        }

        fn logins(&self) -> Logins {
            Logins::in_fixture(&self.dir, None)
        }

        fn auth_file(&self) -> PathBuf {
            self.dir.join("run/containers/auth.json")
        }

        /// Runs login with `args` after `unshare-run login`, stdin and the terminal's answers;
        /// returns the result and what it printed.
        fn login(
            &self,
            args: &[&str],
            stdin: &str,
            terminal: &mut Script,
        ) -> (Result<u8, RunError>, String) {
            let argv = std::iter::once("unshare-run login").chain(args.iter().copied());
            let cli = LoginCli::try_parse_from(argv).unwrap();
            let logins = self.logins();
            let key = logins
                .key(Some(
                    cli.registry.as_deref().unwrap_or(&self.server.authority()),
                ))
                .unwrap();
            let mut out = Vec::new();
            let result = login(
                &logins,
                &cli,
                &key,
                &mut stdin.as_bytes(),
                terminal,
                &mut out,
            );
            (result, String::from_utf8(out).unwrap())
        }

        fn logout(&self, args: &[&str]) -> (Result<u8, RunError>, String) {
            let argv = std::iter::once("unshare-run logout").chain(args.iter().copied());
            let cli = LogoutCli::try_parse_from(argv).unwrap();
            let mut out = Vec::new();
            let result = logout(&self.logins(), &cli, &mut out);
            (result, String::from_utf8(out).unwrap())
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }

    fn stored_auth(file: &Path, key: &str) -> Option<String> {
        let root: serde_json::Value = serde_json::from_slice(&fs::read(file).ok()?).ok()?;
        root["auths"][key]["auth"].as_str().map(String::from)
    }

    fn b64(text: &str) -> String {
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, text)
    }

    #[test]
    fn the_password_on_stdin_logs_in_and_is_stored() {
        let f = Fixture::bearer();
        let registry = f.server.authority();
        let (result, said) = f.login(
            &["-u", "alice", "--password-stdin", &registry],
            "s3cret\n",
            &mut Script::default(),
        );
        assert_eq!(result.unwrap(), 0);
        assert_eq!(said, "Login Succeeded!\n");
        assert_eq!(
            stored_auth(&f.auth_file(), &registry),
            Some(b64("alice:s3cret"))
        );
        // --get-login says who.
        let (result, said) = f.login(&["--get-login", &registry], "", &mut Script::default());
        assert_eq!((result.unwrap(), said.as_str()), (0, "alice\n"));
    }

    #[test]
    fn refused_credentials_exit_125_and_store_nothing() {
        let f = Fixture::bearer();
        let registry = f.server.authority();
        let (result, said) = f.login(
            &["-u", "alice", "-p", "wrong", &registry],
            "",
            &mut Script::default(),
        );
        let err = result.unwrap_err();
        assert_eq!(err.status, 125);
        assert!(
            err.message.starts_with(&format!(
                "logging into {registry}: invalid username or password"
            )),
            "{}",
            err.message
        );
        assert!(err.hint.unwrap().contains("nothing was stored"));
        assert_eq!(said, "");
        assert!(!f.auth_file().exists());
        assert!(!f.dir.join("run/containers").exists());
        // Not logged in: --get-login says so.
        let (result, _) = f.login(&["--get-login", &registry], "", &mut Script::default());
        let err = result.unwrap_err();
        assert_eq!(
            (err.status, err.message.as_str()),
            (125, &*format!("not logged into {registry}"))
        );
    }

    #[test]
    fn what_is_not_given_is_asked_for() {
        let f = Fixture::bearer();
        let registry = f.server.authority();
        let mut terminal = Script::answering(&["  alice \n", "s3cret"]);
        let (result, said) = f.login(&[&registry], "ignored: no --password-stdin", &mut terminal);
        assert_eq!(result.unwrap(), 0);
        assert_eq!(said, "Login Succeeded!\n");
        assert_eq!(terminal.asked, ["Username: ", "Password: "]);
        assert_eq!(
            stored_auth(&f.auth_file(), &registry),
            Some(b64("alice:s3cret"))
        );

        // Logged in, nothing given: the stored credentials are checked and kept.
        let before = f.registry.tokens_issued();
        let (result, said) = f.login(&[&registry], "", &mut Script::default());
        assert_eq!(result.unwrap(), 0);
        assert_eq!(
            said,
            format!(
                "Authenticating with existing credentials for {registry}\n\
                 Existing credentials are valid. Already logged in to {registry}\n"
            )
        );
        assert_eq!(
            f.registry.tokens_issued(),
            before + 1,
            "checked, not trusted"
        );

        // Stored but no longer valid: asked again, with the stored user as the default.
        fs::write(
            f.auth_file(),
            format!(
                r#"{{"auths": {{"{registry}": {{"auth": "{}"}}}}}}"#,
                b64("alice:expired")
            ),
        )
        .unwrap();
        let mut terminal = Script::answering(&["", "s3cret"]);
        let (result, said) = f.login(&[&registry], "", &mut terminal);
        assert_eq!(result.unwrap(), 0);
        assert!(
            said.contains(
                "Existing credentials are invalid, please enter valid username and password\n"
            ),
            "{said}"
        );
        assert_eq!(terminal.asked, ["Username (alice): ", "Password: "]);
        assert_eq!(
            stored_auth(&f.auth_file(), &registry),
            Some(b64("alice:s3cret"))
        );
        // -u given: only the password is asked for.
        let mut terminal = Script::answering(&["s3cret"]);
        let (result, _) = f.login(&["-u", "alice", &registry], "", &mut terminal);
        assert_eq!(result.unwrap(), 0);
        assert_eq!(terminal.asked, ["Password: "]);
    }

    #[test]
    fn stdin_rules() {
        let f = Fixture::bearer();
        let registry = f.server.authority();
        // -p and --password-stdin together do not parse.
        let err = LoginCli::try_parse_from([
            "unshare-run login",
            "-p",
            "x",
            "--password-stdin",
            "-u",
            "a",
            &registry,
        ])
        .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        // --password-stdin without -u: stdin cannot hold both.
        let (result, _) = f.login(
            &["--password-stdin", &registry],
            "s3cret",
            &mut Script::default(),
        );
        let err = result.unwrap_err();
        assert!(err.message.contains("needs --username"), "{}", err.message);
        // Lines are joined, as podman reads them; an empty stdin is no password.
        assert_eq!(
            password_from(&mut "s3c\nret\r\n".as_bytes()).unwrap(),
            "s3cret"
        );
        assert!(password_from(&mut "".as_bytes()).is_err());
        assert!(password_from(&mut &[0xff, 0xfe][..]).is_err());
        let (result, _) = f.login(
            &["-u", "a:b", "-p", "x", &registry],
            "",
            &mut Script::default(),
        );
        assert!(result.unwrap_err().message.contains("has a `:`"));
        // No terminal to ask on: the error says how to give them instead.
        let (result, _) = f.login(&[&registry], "", &mut Script::default());
        assert!(result.is_err());
        assert!(!f.auth_file().exists());
    }

    #[test]
    fn logout_removes_the_login_and_says_so() {
        let f = Fixture::bearer();
        let registry = f.server.authority();
        let (result, _) = f.login(
            &["-u", "alice", "-p", "s3cret", &registry],
            "",
            &mut Script::default(),
        );
        assert_eq!(result.unwrap(), 0);
        fs::write(
            f.auth_file(),
            fs::read_to_string(f.auth_file()).unwrap().replacen(
                "{",
                r#"{"credHelpers": {"gcr.io": "gcloud"},"#,
                1,
            ),
        )
        .unwrap();
        let (result, said) = f.logout(&[&registry]);
        assert_eq!(result.unwrap(), 0);
        assert_eq!(said, format!("Removed login credentials for {registry}\n"));
        let left: serde_json::Value =
            serde_json::from_slice(&fs::read(f.auth_file()).unwrap()).unwrap();
        assert_eq!(
            left,
            serde_json::json!({"auths": {}, "credHelpers": {"gcr.io": "gcloud"}})
        );
        let (result, _) = f.logout(&[&registry]);
        let err = result.unwrap_err();
        assert_eq!(err.status, 125);
        assert!(
            err.message
                .starts_with(&format!("not logged into {registry}")),
            "{}",
            err.message
        );
        let (result, said) = f.logout(&["--all"]);
        assert_eq!(result.unwrap(), 0);
        assert_eq!(said, "Removed login credentials for all registries\n");
        assert!(LogoutCli::try_parse_from(["unshare-run logout", "--all", "quay.io"]).is_err());
    }

    #[test]
    fn the_password_is_read_from_a_terminal_without_echo() {
        use crate::sys::terminal::{open_master, open_peer};
        let master = File::from(open_master().unwrap());
        let peer = File::from(open_peer(master.as_fd()).unwrap());
        let before = termios::tcgetattr(peer.as_fd()).unwrap();
        assert!(before.local_flags.contains(LocalFlags::ECHO));
        let mut terminal = Terminal::on(peer.try_clone().unwrap());
        // Keys typed once the echo is off: typed before, the line discipline would echo them
        // on arrival.
        let type_quietly = |keys: &'static [u8]| {
            let master = master.try_clone().unwrap();
            std::thread::spawn(move || {
                while termios::tcgetattr(master.as_fd())
                    .unwrap()
                    .local_flags
                    .contains(LocalFlags::ECHO)
                {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                (&master).write_all(keys).unwrap();
            })
        };
        // Typed: "hunter2", a mistake erased, Enter.
        let typing = type_quietly(b"hunter2x\x7f\r");
        assert_eq!(terminal.secret("Password: ").unwrap(), "hunter2");
        typing.join().unwrap();
        let after = termios::tcgetattr(peer.as_fd()).unwrap();
        assert_eq!(after.local_flags, before.local_flags, "settings put back");
        // ^C gives up with the settings put back.
        let typing = type_quietly(b"abc\x03");
        let err = terminal.secret("Password: ").unwrap_err();
        typing.join().unwrap();
        assert_eq!(err.status, INTERRUPTED);
        assert_eq!(
            termios::tcgetattr(peer.as_fd()).unwrap().local_flags,
            before.local_flags
        );
        // The username is echoed as usual.
        (&master).write_all(b"alice\n").unwrap();
        assert_eq!(terminal.line("Username: ").unwrap(), "alice");
        // What the terminal showed: the prompts and the username, never the password.
        drop(terminal);
        drop(peer);
        let mut shown = Vec::new();
        let mut chunk = [0u8; 4096];
        nix::fcntl::fcntl(
            master.as_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .unwrap();
        while let Ok(n) = (&master).read(&mut chunk) {
            if n == 0 {
                break;
            }
            shown.extend_from_slice(&chunk[..n]);
        }
        let shown = String::from_utf8_lossy(&shown);
        assert!(shown.contains("Password: "), "{shown:?}");
        assert!(shown.contains("alice"), "{shown:?}");
        assert!(!shown.contains("hunter"), "{shown:?}");
        assert!(!shown.contains("abc"), "{shown:?}");
    }

    #[test]
    fn help_teaches_with_examples() {
        let help = LoginCli::command().render_long_help().to_string();
        assert!(help.contains("Examples:"), "{help}");
        assert!(help.contains("--password-stdin"), "{help}");
        assert!(help.contains("unshare-run -- login"), "{help}");
        let help = LogoutCli::command().render_long_help().to_string();
        assert!(help.contains("unshare-run logout --all"), "{help}");
        assert!(help.contains("unshare-run -- logout"), "{help}");
    }
}
