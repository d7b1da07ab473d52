//! Rendering build events and byte counts: indicatif bars on a terminal, one plain line
//! per event for logs and CI, or nothing.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Progress;
use crate::engine::{CacheStatus, Event, StepRef, StepReporter as Reporter, TransferProgress};

/// How progress will actually be shown, once `auto` is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bars,
    Plain,
    Quiet,
}

impl Mode {
    pub fn from(progress: Progress) -> Mode {
        match progress {
            Progress::Auto if std::io::stderr().is_terminal() => Mode::Bars,
            Progress::Auto | Progress::Plain => Mode::Plain,
            Progress::Tty => Mode::Bars,
            Progress::Quiet => Mode::Quiet,
        }
    }
}

fn step_label(step: &StepRef) -> String {
    labelled(step, 100)
}

/// `[build 2/5] COPY . /app`: the step's first line, cut to `width` characters.
pub(super) fn labelled(step: &StepRef, width: usize) -> String {
    let first = step.text.lines().next().unwrap_or_default();
    let text = if first.chars().count() > width {
        format!(
            "{}...",
            first
                .chars()
                .take(width.saturating_sub(3))
                .collect::<String>()
        )
    } else {
        first.to_string()
    };
    // BuildKit counts the FROM as the first step of its stage.
    let place = format!("{}/{}", step.number + 1, step.total + 1);
    if step.shown_stage.is_empty() {
        format!("[{place}] {text}")
    } else {
        format!("[{} {place}] {text}", step.shown_stage)
    }
}

/// `COPY . /app: 2 files changed (a, b)`: a miss in one line.
fn miss_line(step: &StepRef, reason: &str) -> String {
    let text = step.text.lines().next().unwrap_or_default().trim();
    let text = if text.chars().count() > 60 {
        format!("{}...", text.chars().take(57).collect::<String>())
    } else {
        text.to_string()
    };
    format!("cache miss: {text}: {reason}")
}

/// Renders build events.
pub struct BuildProgress {
    mode: Mode,
    started: Instant,
    multi: MultiProgress,
    bars: Mutex<HashMap<(usize, usize), ProgressBar>>,
    /// Plain mode numbers steps in the order they start, as BuildKit does (`#3`).
    numbers: Mutex<HashMap<(usize, usize), usize>>,
}

impl BuildProgress {
    pub fn new(mode: Mode) -> BuildProgress {
        let multi = MultiProgress::with_draw_target(match mode {
            Mode::Bars => ProgressDrawTarget::stderr(),
            _ => ProgressDrawTarget::hidden(),
        });
        BuildProgress {
            mode,
            started: Instant::now(),
            multi,
            bars: Mutex::new(HashMap::new()),
            numbers: Mutex::new(HashMap::new()),
        }
    }

    fn number(&self, step: &StepRef) -> usize {
        let mut numbers = self.numbers.lock().unwrap_or_else(|e| e.into_inner());
        let next = numbers.len() + 1;
        *numbers.entry((step.stage, step.number)).or_insert(next)
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// A line that stays above the bars.
    pub fn line(&self, text: &str) {
        match self.mode {
            Mode::Bars => self.multi.println(text).unwrap_or(()),
            Mode::Plain => eprintln!("{text}"),
            Mode::Quiet => {}
        }
    }
}

impl Reporter for BuildProgress {
    fn report(&self, event: Event) {
        match self.mode {
            Mode::Quiet => {
                if let Event::Warning(w) = event {
                    eprintln!("warning: {w}");
                }
            }
            Mode::Plain => {
                let mut err = std::io::stderr().lock();
                let _ = match &event {
                    Event::Started { stages, steps } => {
                        writeln!(err, "building {steps} step(s) in {stages} stage(s)")
                    }
                    Event::StepStarted(step) => {
                        writeln!(err, "#{} {}", self.number(step), step_label(step))
                    }
                    Event::StepOutput { step, line } => {
                        writeln!(err, "#{} {line}", self.number(step))
                    }
                    Event::StepCache { step, status } => match status {
                        CacheStatus::Hit => writeln!(err, "#{} CACHED", self.number(step)),
                        CacheStatus::Miss(reason) => {
                            writeln!(err, "#{} {}", self.number(step), miss_line(step, reason))
                        }
                    },
                    Event::StepDone { cached: true, .. } => Ok(()),
                    Event::StepDone {
                        step,
                        elapsed,
                        layer_size,
                        ..
                    } => {
                        let layer = layer_size
                            .map(|s| format!(", layer {}", super::human_size(s)))
                            .unwrap_or_default();
                        writeln!(
                            err,
                            "#{} DONE {:.1}s{layer}",
                            self.number(step),
                            elapsed.as_secs_f64()
                        )
                    }
                    Event::Warning(w) => writeln!(err, "warning: {w}"),
                };
            }
            Mode::Bars => match event {
                Event::Started { .. } => {}
                Event::StepStarted(step) => {
                    let bar = self.multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("{spinner:.cyan} {msg} {elapsed:.dim}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_message(step_label(&step));
                    bar.enable_steady_tick(Duration::from_millis(100));
                    self.bars
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert((step.stage, step.number), bar);
                }
                Event::StepOutput { line, .. } => {
                    let _ = self.multi.println(format!("  {line}"));
                }
                Event::StepCache {
                    step,
                    status: CacheStatus::Miss(reason),
                } => {
                    let _ = self.multi.println(miss_line(&step, &reason));
                }
                Event::StepCache { .. } => {}
                Event::StepDone {
                    step,
                    elapsed,
                    layer_size,
                    cached,
                } => {
                    if let Some(bar) = self
                        .bars
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&(step.stage, step.number))
                    {
                        bar.set_style(
                            ProgressStyle::with_template("{msg}")
                                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                        );
                        let layer = layer_size
                            .map(|s| format!(" {}", super::human_size(s)))
                            .unwrap_or_default();
                        if cached {
                            bar.finish_with_message(format!("✓ {} CACHED", step_label(&step)));
                        } else {
                            bar.finish_with_message(format!(
                                "✓ {} {:.1}s{layer}",
                                step_label(&step),
                                elapsed.as_secs_f64()
                            ));
                        }
                    }
                }
                Event::Warning(w) => {
                    let _ = self.multi.println(format!("warning: {w}"));
                }
            },
        }
    }
}

/// A byte-count bar for save, load and import.
pub struct ByteProgress {
    bar: Option<ProgressBar>,
}

impl ByteProgress {
    pub fn new(mode: Mode, label: &str, total: Option<u64>) -> ByteProgress {
        if mode != Mode::Bars {
            return ByteProgress { bar: None };
        }
        let bar = match total {
            Some(total) => ProgressBar::new(total),
            None => ProgressBar::new_spinner(),
        };
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} {bar:30.cyan/dim} {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(label.to_string());
        ByteProgress { bar: Some(bar) }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl TransferProgress for ByteProgress {
    fn advance(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    fn note(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(format!("note: {text}")),
            None => eprintln!("note: {text}"),
        }
    }
}
