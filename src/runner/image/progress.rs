//! One line of progress on a terminal: a bar, bytes, rate and time left. Quiet when stderr is not a
//! terminal (logs and pipes get no carriage-return noise). Small enough not to need indicatif.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Redraws at most this often.
const REDRAW_EVERY: Duration = Duration::from_millis(150);
const BAR_WIDTH: usize = 24;

pub struct Progress {
    label: String,
    total: u64,
    done: AtomicU64,
    /// Parts counted on their own as well (a pull's layers): a name, bytes done, bytes in all.
    parts: Vec<(String, AtomicU64, u64)>,
    started: Instant,
    /// Milliseconds after `started` of the last redraw.
    drawn_at: AtomicU64,
    visible: bool,
}

impl Progress {
    /// Progress over `total` bytes, shown when stderr is a terminal.
    pub fn on_terminal(label: impl Into<String>, total: u64) -> Progress {
        let visible = nix::unistd::isatty(std::io::stderr()).unwrap_or(false);
        Progress::new(label.into(), total, visible)
    }

    #[cfg(test)]
    pub fn hidden(total: u64) -> Progress {
        Progress::new(String::new(), total, false)
    }

    /// Progress that is never shown (where another one counts the same bytes).
    pub fn silent() -> Progress {
        Progress::new(String::new(), 0, false)
    }

    /// Prints `line` on a line of its own, above the bar where one is drawn: one line per finished
    /// step, also where there is no terminal.
    pub fn note(&self, line: &str) {
        let mut err = std::io::stderr().lock();
        match self.visible {
            true => {
                let _ = writeln!(err, "\r\x1b[K{line}");
                let done = self.done.load(Ordering::Relaxed);
                let _ = write!(err, "{}", self.line(done, self.started.elapsed()));
            }
            false => {
                let _ = writeln!(err, "{line}");
            }
        }
        let _ = err.flush();
    }

    /// Progress over parts (name, bytes) whose sum is the total; the line shows the unfinished ones.
    pub fn of_parts_on_terminal(label: impl Into<String>, parts: Vec<(String, u64)>) -> Progress {
        let total = parts.iter().map(|(_, n)| n).sum();
        let mut progress = Progress::on_terminal(label, total);
        progress.parts = parts
            .into_iter()
            .map(|(name, total)| (name, AtomicU64::new(0), total))
            .collect();
        progress
    }

    /// `bytes` more of part `part` (and of the total).
    pub fn advance_part(&self, part: usize, bytes: u64) {
        if let Some((_, done, _)) = self.parts.get(part) {
            done.fetch_add(bytes, Ordering::Relaxed);
        }
        self.advance(bytes);
    }

    fn new(label: String, total: u64, visible: bool) -> Progress {
        Progress {
            label,
            total,
            parts: Vec::new(),
            done: AtomicU64::new(0),
            started: Instant::now(),
            drawn_at: AtomicU64::new(0),
            visible,
        }
    }

    pub fn advance(&self, bytes: u64) {
        let done = self.done.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if !self.visible {
            return;
        }
        let now = self.started.elapsed().as_millis() as u64;
        let last = self.drawn_at.load(Ordering::Relaxed);
        if now.saturating_sub(last) < REDRAW_EVERY.as_millis() as u64 {
            return;
        }
        if self
            .drawn_at
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.draw(done, self.started.elapsed());
        }
    }

    /// The total's line, then each part under way as `name NN%`.
    fn line(&self, done: u64, elapsed: Duration) -> String {
        let mut line = render(&self.label, done, self.total, elapsed);
        for (name, part_done, part_total) in &self.parts {
            let part_done = part_done.load(Ordering::Relaxed);
            if part_done > 0 && part_done < *part_total {
                line.push_str(&format!("  {name} {}%", part_done * 100 / part_total));
            }
        }
        line
    }

    fn draw(&self, done: u64, elapsed: Duration) {
        let line = self.line(done, elapsed);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K{line}");
        let _ = err.flush();
    }

    /// Ends the line (only if one was drawn).
    pub fn finish(&self) {
        if self.visible {
            self.draw(self.done.load(Ordering::Relaxed), self.started.elapsed());
            eprintln!();
        }
    }
}

/// Bytes as people read them: 512 B, 1.5 KiB, 150.0 MiB.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// `label [#####-----] 45.2/120.0 MiB  88.1 MiB/s  0:02 left`
pub fn render(label: &str, done: u64, total: u64, elapsed: Duration) -> String {
    let fraction = if total == 0 {
        1.0
    } else {
        (done as f64 / total as f64).min(1.0)
    };
    let filled = (fraction * BAR_WIDTH as f64).round() as usize;
    let bar = format!("{}{}", "#".repeat(filled), "-".repeat(BAR_WIDTH - filled));
    let seconds = elapsed.as_secs_f64();
    let rate = if seconds > 0.0 {
        done as f64 / seconds
    } else {
        0.0
    };
    let left = if rate > 0.0 && done < total {
        let secs = ((total - done) as f64 / rate).ceil() as u64;
        format!("{}:{:02} left", secs / 60, secs % 60)
    } else {
        "0:00 left".to_string()
    };
    format!(
        "{label} [{bar}] {:.1}/{:.1} MiB  {:.1} MiB/s  {left}",
        mib(done),
        mib(total),
        mib(rate as u64)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_human() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(150 * 1024 * 1024), "150.0 MiB");
    }

    #[test]
    fn the_line_shows_bytes_rate_and_time_left() {
        let line = render("importing x", 50 << 20, 100 << 20, Duration::from_secs(2));
        assert_eq!(
            line,
            "importing x [############------------] 50.0/100.0 MiB  25.0 MiB/s  0:02 left"
        );
    }

    #[test]
    fn the_parts_under_way_follow_the_total() {
        let mut progress = Progress::hidden(0);
        progress.total = 300;
        progress.parts = ["a1b2", "c3d4", "e5f6"]
            .map(|n| (n.to_string(), AtomicU64::new(0), 100))
            .into();
        progress.advance_part(0, 100);
        progress.advance_part(1, 25);
        progress.advance_part(7, 1);
        assert_eq!(progress.done.load(Ordering::Relaxed), 126);
        let line = progress.line(126, Duration::from_secs(1));
        assert!(line.ends_with("left  c3d4 25%"), "{line}");
    }

    #[test]
    fn a_finished_or_empty_import_is_full() {
        let line = render("x", 0, 0, Duration::ZERO);
        assert!(line.contains(&"#".repeat(BAR_WIDTH)), "{line}");
        assert!(line.ends_with("0:00 left"));
    }
}
