//! `vllm-grid status <run-id>`: a live or stopped run's progress, read from
//! its files only (the lock, the journal, the results).

use std::fmt::Write as _;

use serde::Serialize;

use crate::SearchError;
use crate::store::{JournalEvent, LockOwner, RunLock, RunOutcome, RunStore, now_unix_ms};

#[derive(Debug, Clone, Serialize)]
pub struct ConfigLine {
    pub name: String,
    pub id: String,
    /// `completed`, `launch_failed`, `failed`, `skipped`, `not_measured`
    /// (run again by `resume`), `running`, `interrupted`, `pending`.
    pub state: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunStatus {
    pub run_id: String,
    pub simulated: bool,
    /// The live process holding the run, if any.
    pub live_owner: Option<LockOwner>,
    pub total: usize,
    pub done: usize,
    pub configs: Vec<ConfigLine>,
    /// The last journal event and how long ago it was.
    pub last_event: Option<String>,
    pub last_event_age_s: Option<f64>,
    pub finished: bool,
    pub warnings: Vec<String>,
}

pub fn run_status(store: &RunStore) -> Result<RunStatus, SearchError> {
    let manifest = store.read_manifest()?;
    let results = store.read_results()?;
    let journal = store.read_journal(false)?;
    let live_owner = RunLock::live_owner(store);
    // The config started last without a result is the one running (or the
    // one interrupted).
    let mut current: Option<(String, String)> = None;
    let mut finished = false;
    for entry in &journal.entries {
        match &entry.event {
            JournalEvent::ConfigStarted {
                config_id,
                repeat,
                attempt,
                ..
            } => {
                current = Some((
                    config_id.0.clone(),
                    format!(
                        "repeat {} attempt {attempt}: starting the server",
                        repeat + 1
                    ),
                ))
            }
            JournalEvent::ServerReady { .. } => {
                if let Some(c) = current.as_mut() {
                    c.1 = "server ready".to_string();
                }
            }
            JournalEvent::BatteryStarted { repeat, .. } => {
                if let Some(c) = current.as_mut() {
                    c.1 = format!("repeat {}: running the battery", repeat + 1);
                }
            }
            JournalEvent::ConfigFinished { .. } | JournalEvent::ConfigInterrupted { .. } => {
                current = None
            }
            JournalEvent::RunFinished { .. } => finished = true,
            JournalEvent::RunStarted { .. } => finished = false,
            _ => {}
        }
    }
    let configs = manifest
        .plan
        .configs
        .iter()
        .map(|c| {
            let (state, detail) = match results.get(&c.id) {
                Some(r) => (
                    match r.outcome {
                        _ if !r.is_final() => "not_measured",
                        RunOutcome::Completed => "completed",
                        RunOutcome::LaunchFailed => "launch_failed",
                        RunOutcome::Failed => "failed",
                        RunOutcome::Skipped => "skipped",
                        RunOutcome::NotMeasured => "not_measured",
                        RunOutcome::PredictedInfeasible => "predicted_infeasible",
                    }
                    .to_string(),
                    match (&r.failure, r.repeats.last()) {
                        (Some(f), _) => format!("{}: {}", f.class_name, f.message),
                        (None, Some(rep)) => rep
                            .measurement
                            .kv_cache_acceleration
                            .map(|a| format!("acceleration ×{:.2}", a.median))
                            .unwrap_or_else(|| "acceleration not measured".to_string()),
                        (None, None) => String::new(),
                    },
                ),
                None => match &current {
                    Some((id, phase)) if *id == c.id.0 => (
                        if live_owner.is_some() {
                            "running"
                        } else {
                            "interrupted"
                        }
                        .to_string(),
                        phase.clone(),
                    ),
                    _ => ("pending".to_string(), String::new()),
                },
            };
            ConfigLine {
                name: c.name.clone(),
                id: c.id.0.clone(),
                state,
                detail,
            }
        })
        .collect();
    let last = journal.entries.last();
    Ok(RunStatus {
        run_id: store.run_id.clone(),
        simulated: manifest.simulated,
        live_owner,
        total: manifest.plan.configs.len(),
        // A result that is no verdict is work still to do.
        done: manifest
            .plan
            .configs
            .iter()
            .filter(|c| results.get(&c.id).is_some_and(|r| r.is_final()))
            .count(),
        configs,
        last_event: last.and_then(|e| {
            serde_json::to_value(&e.event)
                .ok()
                .and_then(|v| v.get("event").and_then(|n| n.as_str().map(str::to_string)))
        }),
        last_event_age_s: last.map(|e| now_unix_ms().saturating_sub(e.unix_ms) as f64 / 1000.0),
        finished,
        warnings: journal.warnings,
    })
}

impl RunStatus {
    pub fn render(&self) -> String {
        let mut out = String::new();
        let state = match (&self.live_owner, self.finished) {
            (Some(owner), _) => format!(
                "running (pid {} on {})",
                owner.process.pid, owner.process.host
            ),
            (None, true) => "finished".to_string(),
            (None, false) => format!("stopped; continue with `vllm-grid resume {}`", self.run_id),
        };
        let _ = writeln!(
            out,
            "run {}{}: {state}",
            self.run_id,
            if self.simulated { " (simulated)" } else { "" }
        );
        let _ = writeln!(out, "configs with a result: {}/{}", self.done, self.total);
        if let (Some(event), Some(age)) = (&self.last_event, self.last_event_age_s) {
            let _ = writeln!(out, "last event: {event}, {age:.0} s ago");
        }
        let width = self.configs.iter().map(|c| c.name.len()).max().unwrap_or(6);
        for c in &self.configs {
            let _ = writeln!(
                out,
                "  {:<width$}  {}  {:<13} {}",
                c.name, c.id, c.state, c.detail
            );
        }
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        out
    }
}
