//! A small progress line on stderr for long operations (loading, embedding, searching).
//!
//! On a terminal the line redraws itself every 2%; in a log (CI) it prints a new line every 10%.

use std::io::{IsTerminal, Write};
use std::time::Instant;

/// Prints `label: done/total (pct, rate/s)`.
pub struct Progress {
    label: String,
    total: usize,
    done: usize,
    last_pct: Option<usize>,
    step: usize,
    tty: bool,
    started: Instant,
}

impl Progress {
    /// Starts a progress line.
    pub fn new(label: &str, total: usize) -> Self {
        let tty = std::io::stderr().is_terminal();
        Progress {
            label: label.to_owned(),
            total,
            done: 0,
            last_pct: None,
            step: if tty { 2 } else { 10 },
            tty,
            started: Instant::now(),
        }
    }

    fn pct(&self) -> usize {
        (self.done * 100).checked_div(self.total).unwrap_or(100)
    }

    /// Records `n` more units done.
    pub fn add(&mut self, n: usize) {
        self.done += n;
        let pct = self.pct();
        if self.last_pct.is_none_or(|last| pct >= last + self.step) {
            self.last_pct = Some(pct);
            self.print();
        }
    }

    fn print(&self) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let mut err = std::io::stderr().lock();
        let line = format!(
            "{}: {}/{} ({}%, {:.0}/s)",
            self.label,
            self.done,
            self.total,
            self.pct(),
            self.done as f64 / secs
        );
        let _ = if self.tty {
            write!(err, "\r{line}   ")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }

    /// Prints the final line.
    pub fn finish(self) {
        if self.tty {
            self.print();
            eprintln!(" in {:.1} s", self.started.elapsed().as_secs_f64());
        } else {
            eprintln!(
                "{}: {} done in {:.1} s",
                self.label,
                self.done,
                self.started.elapsed().as_secs_f64()
            );
        }
    }
}
