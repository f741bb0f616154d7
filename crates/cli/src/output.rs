//! Where things are written: data on stdout (a table or JSON), notes and progress on
//! stderr only when it is a terminal, colours only when wanted.

use crate::cli::Format;
use crate::targets::Timeline;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, Color, ContentArrangement, Table};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::time::Duration;

pub struct Output {
    format: Format,
    /// The target the command runs against, added to every JSON document it shows.
    target: std::sync::OnceLock<String>,
    /// Whether stderr is a terminal: notes and progress go nowhere otherwise.
    interactive: bool,
    color: bool,
}

impl Output {
    pub fn new(format: Format) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
        Self {
            format,
            target: std::sync::OnceLock::new(),
            interactive: std::io::stderr().is_terminal(),
            color: !no_color && std::io::stdout().is_terminal(),
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn is_json(&self) -> bool {
        self.format == Format::Json
    }

    /// Writes data to stdout. A closed stdout (e.g. `| head`) is not an error worth
    /// reporting: the reader has what it wanted.
    pub fn print(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
    }

    /// Records the command's target (once), for the JSON documents of [`Output::show`].
    pub fn set_target(&self, target: String) {
        let _ = self.target.set(target);
    }

    /// Prints `value` as JSON, with the command's `target` added to a document that does
    /// not name one, or the table `render` makes.
    pub fn show<T: Serialize>(&self, value: &T, render: impl FnOnce(&T) -> Table) {
        if self.is_json() {
            let mut document = serde_json::to_value(value).expect("ewf's documents are plain data");
            if let (Some(target), Some(fields)) = (self.target.get(), document.as_object_mut()) {
                fields
                    .entry("target")
                    .or_insert_with(|| target.clone().into());
            }
            self.json(&document);
        } else {
            self.print(&render(value).to_string());
        }
    }

    pub fn json(&self, value: &impl Serialize) {
        self.print(&serde_json::to_string_pretty(value).expect("ewf's documents are plain data"));
    }

    /// A note that scripts must see too (e.g. which target was chosen for them): on
    /// stderr, terminal or not.
    pub fn notice(&self, text: &str) {
        eprintln!("{text}");
    }

    /// A note for the person at the terminal.
    pub fn note(&self, text: &str) {
        if self.interactive {
            eprintln!("{text}");
        }
    }

    /// A spinner on stderr while something runs; hidden when stderr is not a terminal.
    pub fn spinner(&self, message: impl Into<String>) -> Spinner {
        if !self.interactive {
            return Spinner(ProgressBar::hidden());
        }
        let bar = ProgressBar::new_spinner().with_message(message.into());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(100));
        Spinner(bar)
    }

    /// A progress bar over `total` steps; hidden when stderr is not a terminal.
    pub fn bar(&self, total: u64, message: impl Into<String>) -> ProgressBar {
        if !self.interactive {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(total).with_message(message.into());
        if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed}") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    }

    pub fn table(&self, header: &[&str]) -> Table {
        let mut table = Table::new();
        table
            .load_preset(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic);
        if !self.color {
            table.force_no_tty();
        }
        table.set_header(header.iter().copied());
        table
    }

    /// A status, green when it went well, red when it failed.
    pub fn status_cell(&self, status: &str) -> Cell {
        let cell = Cell::new(status);
        match status {
            "DELIVERED" | "DELIVERING" | "PAID" | "ok" => cell.fg(Color::Green),
            "PAYMENT_FAILED" | "ITEM_NOT_AVAILABLE" | "FAILED" | "CANCELED" | "FAIL" => {
                cell.fg(Color::Red)
            }
            _ => cell,
        }
    }
}

/// Clears itself when dropped, so an early return leaves no spinner behind.
pub struct Spinner(ProgressBar);

impl Spinner {
    pub fn set_message(&self, message: impl Into<String>) {
        self.0.set_message(message.into());
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

pub fn timeline_table(output: &Output, timeline: &Timeline) -> Table {
    let mut table = output.table(&["#", "time", "type", "source"]);
    for (index, entry) in timeline.entries.iter().enumerate() {
        table.add_row(vec![
            (index + 1).to_string(),
            entry.time.format("%H:%M:%S%.3f").to_string(),
            entry.kind.clone(),
            entry.source.clone(),
        ]);
    }
    table
}
