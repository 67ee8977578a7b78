//! The audit trail: one syslog line (facility authpriv) per decision a helper makes.
//!
//! Sent as one datagram to /dev/log in the traditional format, which journald and rsyslog both read.
//! Logging is best effort: a missing or full syslog never changes a decision or delays the helper.

use std::fmt::Write;
use std::os::unix::net::UnixDatagram;
use std::path::Path;

pub const SYSLOG_SOCKET: &str = "/dev/log";

const LOG_AUTHPRIV: u8 = 10 << 3;
const LOG_WARNING: u8 = 4;
const LOG_NOTICE: u8 = 5;
/// Longest request text kept in a line; the arguments are the caller's and may be huge.
const MAX_REQUEST_CHARS: usize = 512;

/// What is known about a request so far; filled in as the checks proceed.
#[derive(Debug, Default)]
pub struct AuditRecord {
    pub caller_uid: u32,
    pub caller_name: Option<String>,
    pub target: Option<String>,
    /// The requested triplets as given on the command line.
    pub request: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision<'a> {
    Granted,
    Denied(&'a str),
}

/// The message part of the syslog line (without priority and tag).
pub fn describe(record: &AuditRecord, decision: Decision<'_>) -> String {
    let mut line = String::new();
    let verdict = match decision {
        Decision::Granted => "granted",
        Decision::Denied(_) => "denied",
    };
    let _ = write!(line, "{verdict} uid={}", record.caller_uid);
    if let Some(name) = &record.caller_name {
        let _ = write!(line, "({})", sanitize(name, 64));
    }
    let target = record.target.as_deref().unwrap_or("?");
    let _ = write!(line, " target={}", sanitize(target, 64));
    let request = record
        .request
        .chunks(3)
        .map(|t| t.join(" "))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = write!(line, " map=[{}]", sanitize(&request, MAX_REQUEST_CHARS));
    if let Decision::Denied(reason) = decision {
        let _ = write!(line, " reason=\"{}\"", sanitize(reason, MAX_REQUEST_CHARS));
    }
    line
}

/// Escapes control characters and quotes (no line injection into the log) and bounds the length.
fn sanitize(text: &str, max_chars: usize) -> String {
    let mut out: String = text
        .chars()
        .flat_map(|c| {
            if c == '"' || c == '\\' || c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .take(max_chars)
        .collect();
    if out.chars().count() == max_chars {
        out.push_str("...");
    }
    out
}

pub fn syslog_datagram(program: &str, pid: u32, decision: Decision<'_>, message: &str) -> String {
    let severity = match decision {
        Decision::Granted => LOG_NOTICE,
        Decision::Denied(_) => LOG_WARNING,
    };
    format!("<{}>{program}[{pid}]: {message}", LOG_AUTHPRIV | severity)
}

/// Sends one record to the syslog socket at `socket`; errors are ignored on purpose.
pub fn send(socket: &Path, program: &str, record: &AuditRecord, decision: Decision<'_>) {
    let message = describe(record, decision);
    let datagram = syslog_datagram(program, std::process::id(), decision, &message);
    if let Ok(sock) = UnixDatagram::unbound() {
        let _ = sock.set_nonblocking(true);
        let _ = sock.send_to(datagram.as_bytes(), socket);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> AuditRecord {
        AuditRecord {
            caller_uid: 1001,
            caller_name: Some("alice".into()),
            target: Some("4242".into()),
            request: ["0", "1001", "1", "1", "100000", "65536"]
                .map(String::from)
                .to_vec(),
        }
    }

    #[test]
    fn granted_line_names_caller_target_and_map() {
        assert_eq!(
            describe(&record(), Decision::Granted),
            "granted uid=1001(alice) target=4242 map=[0 1001 1, 1 100000 65536]"
        );
    }

    #[test]
    fn denied_line_has_reason_and_warning_priority() {
        let msg = describe(&record(), Decision::Denied("uid range not allowed"));
        assert!(msg.ends_with("reason=\"uid range not allowed\""), "{msg}");
        let d = syslog_datagram("newuidmap", 7, Decision::Denied("x"), &msg);
        assert!(
            d.starts_with("<84>newuidmap[7]: denied uid=1001(alice)"),
            "{d}"
        );
        assert!(
            syslog_datagram("newgidmap", 7, Decision::Granted, "m")
                .starts_with("<85>newgidmap[7]: ")
        );
    }

    #[test]
    fn caller_text_cannot_inject_lines_or_grow_unbounded() {
        let mut r = record();
        r.request = vec!["0\n<0>fake: granted".into(), "x".repeat(5000), "1".into()];
        let msg = describe(&r, Decision::Denied("bad \"quote\""));
        assert!(!msg.contains('\n'));
        assert!(msg.contains("0\\n<0>fake"));
        assert!(msg.contains("bad \\\"quote\\\""));
        assert!(msg.len() < 1200, "{}", msg.len());
    }

    #[test]
    fn sends_one_datagram_and_tolerates_a_missing_socket() {
        let dir = std::env::temp_dir().join(format!("audit-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        send(&path, "newuidmap", &record(), Decision::Granted);
        let mut buf = [0u8; 2048];
        let n = server.recv(&mut buf).unwrap();
        let got = String::from_utf8_lossy(&buf[..n]);
        assert!(got.starts_with("<85>newuidmap["), "{got}");
        assert!(
            got.ends_with("granted uid=1001(alice) target=4242 map=[0 1001 1, 1 100000 65536]")
        );
        send(
            &dir.join("missing"),
            "newuidmap",
            &record(),
            Decision::Granted,
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
