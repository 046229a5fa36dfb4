//! The bench's output: one row per figure with ours, the baseline's and the ratio, printed as
//! it is measured and again as one Markdown table at the end.

use std::time::Duration;

/// One line of the table.
pub struct Row {
    /// What was measured.
    pub work: String,
    /// Our figure.
    pub ours: String,
    /// The baseline's figure, or the target where there is no baseline to run.
    pub baseline: String,
    /// Ours divided by the baseline (or the target): below 1 is better, except where `note`
    /// says otherwise.
    pub ratio: Option<f64>,
    /// The goal, or how to read the row.
    pub note: String,
}

impl Row {
    /// A row comparing two quantities of the same unit.
    pub fn compare(
        work: impl Into<String>,
        ours: f64,
        baseline: f64,
        unit: Unit,
        baseline_name: &str,
        note: impl Into<String>,
    ) -> Self {
        Self {
            work: work.into(),
            ours: unit.show(ours),
            baseline: format!("{baseline_name} {}", unit.show(baseline)),
            ratio: (baseline > 0.0).then(|| ours / baseline),
            note: note.into(),
        }
    }

    /// A row with no baseline: ours against a target (`target` in the same unit).
    pub fn against_target(work: impl Into<String>, ours: f64, target: f64, unit: Unit) -> Self {
        Self {
            work: work.into(),
            ours: unit.show(ours),
            baseline: format!("target {}", unit.show(target)),
            ratio: (target > 0.0).then(|| ours / target),
            note: if ours <= target {
                "on target".into()
            } else {
                "over target".into()
            },
        }
    }

    /// A row that only reports figures.
    pub fn figure(
        work: impl Into<String>,
        ours: impl Into<String>,
        note: impl Into<String>,
    ) -> Self {
        Self {
            work: work.into(),
            ours: ours.into(),
            baseline: "—".into(),
            ratio: None,
            note: note.into(),
        }
    }

    fn cells(&self) -> [String; 5] {
        [
            self.work.clone(),
            self.ours.clone(),
            self.baseline.clone(),
            self.ratio.map_or("—".into(), |r| format!("{r:.2}×")),
            self.note.clone(),
        ]
    }
}

/// How a quantity prints.
#[derive(Clone, Copy)]
pub enum Unit {
    /// Seconds.
    Seconds,
    /// MiB.
    Mib,
    /// CPU seconds per minute.
    CpuPerMinute,
    /// CPU milliseconds.
    CpuMillis,
}

impl Unit {
    /// `value` with its unit, as the table prints it.
    pub fn show(self, value: f64) -> String {
        match self {
            Unit::Seconds => format!("{value:.2} s"),
            Unit::Mib => format!("{value:.0} MiB"),
            Unit::CpuPerMinute => format!("{value:.2} CPU-s/min"),
            Unit::CpuMillis => format!("{value:.0} CPU-ms"),
        }
    }
}

/// Seconds of a duration.
pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The rows measured so far.
#[derive(Default)]
pub struct Table {
    rows: Vec<Row>,
}

impl Table {
    /// Prints `row` now and keeps it for the final table.
    pub fn push(&mut self, row: Row) {
        let [work, ours, baseline, ratio, note] = row.cells();
        println!("{work}: ours {ours}; baseline {baseline}; ratio {ratio}; {note}");
        self.rows.push(row);
    }

    /// The whole table, in Markdown.
    pub fn print(&self) {
        println!();
        println!("| work | ours | baseline | ours ÷ baseline | note |");
        println!("|---|---|---|---|---|");
        for row in &self.rows {
            println!("| {} |", row.cells().join(" | "));
        }
    }
}
