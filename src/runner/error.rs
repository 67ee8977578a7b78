//! The runner's own failures: a message, what to do about it, the errno of the system call that
//! failed (when one did), and the exit status (125, or 126/127 when the command cannot be run).
//! A child of a start sends its failure to the parent (`channel`), which prints it once.

use std::fmt;

use nix::errno::Errno;

use super::exit;

#[derive(Debug, Clone)]
pub struct RunError {
    pub message: String,
    pub hint: Option<String>,
    pub errno: Option<Errno>,
    pub status: u8,
}

/// An error of a system call: it says what happened and carries its errno.
pub trait SysError: fmt::Display {
    fn errno(&self) -> Option<Errno>;
}

impl SysError for Errno {
    fn errno(&self) -> Option<Errno> {
        Some(*self)
    }
}

impl SysError for std::io::Error {
    fn errno(&self) -> Option<Errno> {
        self.raw_os_error().map(Errno::from_raw)
    }
}

impl RunError {
    pub fn new(message: impl Into<String>) -> RunError {
        RunError {
            message: message.into(),
            hint: None,
            errno: None,
            status: exit::RUNNER_ERROR,
        }
    }

    /// `context: error` for a failed system call, keeping its errno.
    pub fn sys(context: impl fmt::Display, error: impl SysError) -> RunError {
        RunError {
            errno: error.errno(),
            ..RunError::new(format!("{context}: {error}"))
        }
    }

    /// A failed system call that says enough by itself, keeping its errno.
    pub fn of(error: impl SysError) -> RunError {
        RunError {
            errno: error.errno(),
            ..RunError::new(error.to_string())
        }
    }

    /// The same error, said of `context` ("context: message").
    pub fn context(mut self, context: impl fmt::Display) -> RunError {
        self.message = format!("{context}: {}", self.message);
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> RunError {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_status(mut self, status: u8) -> RunError {
        self.status = status;
        self
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}
