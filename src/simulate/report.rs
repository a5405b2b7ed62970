//! What a simulation measured and what the bot decided, for a terminal or as JSON.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use serde::Serialize;

/// What a simulation measured.
#[derive(Debug, Clone, Serialize)]
pub struct SimReport {
    /// When the last run ended.
    pub makespan_secs: f64,
    /// `max(critical path, total work / agents)`: no schedule can be faster.
    pub lower_bound_secs: f64,
    /// `makespan / lower bound`.
    pub ratio: f64,
    /// Busy agent time (failed attempts included) over available agent time.
    pub utilisation: f64,
    /// Every launch in order, retries included.
    pub launches: Vec<SimLaunch>,
    /// Tasks whose issue was closed as completed.
    pub completed: usize,
    /// Runs that failed.
    pub failed_runs: usize,
    /// Launches that retried a failed run.
    pub retries: usize,
    /// Tasks whose last run failed with no retry left.
    pub gave_up: Vec<String>,
    /// Tasks never launched (behind a task given up on, or never discovered).
    pub never_started: Vec<String>,
    /// How many tasks appeared while runs went on (left out when none did).
    #[serde(skip_serializing_if = "is_zero")]
    pub discovered: usize,
    /// Those tasks, as they appeared (left out when none did).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub discoveries: Vec<SimFound>,
    /// What the bot would have done: its decisions by kind (`launch`, `publish_status`,
    /// the reads it asked for ...), as its logs and metrics name them.
    pub decisions: BTreeMap<String, usize>,
}

/// One run of a task.
#[derive(Debug, Clone, Serialize)]
pub struct SimLaunch {
    /// The task.
    pub id: String,
    /// When it started.
    pub start_secs: f64,
    /// When it ended.
    pub end_secs: f64,
    /// Which attempt (shown from the second).
    #[serde(skip_serializing_if = "is_first")]
    pub attempt: u32,
    /// It failed.
    #[serde(skip_serializing_if = "is_false")]
    pub failed: bool,
    /// It was cancelled before it ended.
    #[serde(skip_serializing_if = "is_false")]
    pub cancelled: bool,
}

/// A task that appeared while its discoverer ran.
#[derive(Debug, Clone, Serialize)]
pub struct SimFound {
    /// The task discovered.
    pub id: String,
    /// The task whose run discovered it.
    pub by: String,
    /// When it appeared (its issue was opened and labelled).
    pub at_secs: f64,
}

fn is_zero(count: &usize) -> bool {
    *count == 0
}

fn is_first(attempt: &u32) -> bool {
    *attempt <= 1
}

fn is_false(flag: &bool) -> bool {
    !flag
}

impl SimReport {
    /// The report for a terminal, durations as `16h 6m` (the JSON keeps seconds).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "makespan:     {}", human_duration(self.makespan_secs));
        let included = if self.discovered > 0 {
            ", discovered tasks included"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "lower bound:  {} (max of critical path and work / agents{included})",
            human_duration(self.lower_bound_secs)
        );
        let _ = writeln!(out, "ratio:        {:.4}", self.ratio);
        let _ = writeln!(out, "utilisation:  {:.1} %", self.utilisation * 100.0);
        let appeared: HashMap<&str, f64> = self
            .discoveries
            .iter()
            .map(|found| (found.id.as_str(), found.at_secs))
            .collect();
        let _ = writeln!(out, "launch order:");
        for (n, launch) in self.launches.iter().enumerate() {
            let mut line = format!(
                "  {:>4}. {:<12} {:>8} -> {:>8}",
                n + 1,
                launch.id,
                human_duration(launch.start_secs),
                human_duration(launch.end_secs)
            );
            if launch.attempt > 1 {
                let _ = write!(line, "  attempt {}", launch.attempt);
            }
            if launch.failed {
                line.push_str("  failed");
            }
            if launch.cancelled {
                line.push_str("  cancelled");
            }
            if let Some(at) = appeared.get(launch.id.as_str()) {
                let _ = write!(line, "  discovered at {}", human_duration(*at));
            }
            let _ = writeln!(out, "{line}");
        }
        let tasks = self.completed + self.gave_up.len() + self.never_started.len();
        let _ = writeln!(out, "completed:    {} of {tasks} tasks", self.completed);
        if self.discovered > 0 {
            let _ = writeln!(
                out,
                "discovered:   {} {} while running",
                self.discovered,
                plural(self.discovered, "task", "tasks")
            );
        }
        if self.failed_runs > 0 {
            let _ = writeln!(
                out,
                "failures:     {} failed {}, {} {}",
                self.failed_runs,
                plural(self.failed_runs, "run", "runs"),
                self.retries,
                plural(self.retries, "retry", "retries")
            );
        }
        if !self.gave_up.is_empty() {
            let _ = writeln!(out, "gave up on:   {}", self.gave_up.join(", "));
        }
        if !self.never_started.is_empty() {
            let _ = writeln!(out, "not started:  {}", self.never_started.join(", "));
        }
        let _ = writeln!(out, "what the bot would have done:");
        for (kind, count) in &self.decisions {
            let _ = write!(out, "  {kind:<22} {count:>6}");
            if kind == "launch" && self.retries > 0 {
                let _ = write!(
                    out,
                    " ({} {})",
                    self.retries,
                    plural(self.retries, "retry", "retries")
                );
            }
            out.push('\n');
        }
        out
    }
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// A duration as people say it, to the two largest units: `45s`, `20m 30s`, `16h 6m`,
/// `2d 3h`; under ten seconds with a tenth (`2.5s`). Whole units that are zero are left
/// out (`2h`, not `2h 0m`).
pub fn human_duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return format!("{secs}s");
    }
    if secs < 10.0 {
        let tenths = (secs * 10.0).round() / 10.0;
        return if tenths.fract() == 0.0 {
            format!("{tenths:.0}s")
        } else {
            format!("{tenths:.1}s")
        };
    }
    let total = secs.round() as u64;
    let units = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let Some(first) = units.iter().position(|(size, _)| total >= *size) else {
        return "0s".to_owned();
    };
    let (big, big_name) = units[first];
    let mut text = format!("{}{big_name}", total / big);
    if let Some(&(small, small_name)) = units.get(first + 1) {
        let rest = total % big / small;
        if rest > 0 {
            let _ = write!(text, " {rest}{small_name}");
        }
    }
    text
}
