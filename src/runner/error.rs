//! The runner's own failures: a message, what to do about it, and exit status 125.

use std::fmt;

#[derive(Debug)]
pub struct RunError {
    pub message: String,
    pub hint: Option<String>,
    /// The message was printed already (by a child process that did the work).
    pub reported: bool,
}

impl RunError {
    pub fn new(message: impl Into<String>) -> RunError {
        RunError {
            message: message.into(),
            hint: None,
            reported: false,
        }
    }

    /// A failure whose message a child process printed.
    pub fn reported() -> RunError {
        RunError {
            message: String::new(),
            hint: None,
            reported: true,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> RunError {
        self.hint = Some(hint.into());
        self
    }

    /// `context: error` for system call failures.
    pub fn sys(context: impl fmt::Display, error: impl fmt::Display) -> RunError {
        RunError::new(format!("{context}: {error}"))
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
