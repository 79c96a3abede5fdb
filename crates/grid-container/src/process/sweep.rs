//! The sweep of servers left by a vllm-grid that died (SIGKILL): every pid
//! record of a dead owner is followed to its server, by pid and by launch
//! ID, and stale temporaries of cut-short writes are removed.

use std::time::Duration;

use grid_sys::{hostname, process_matches};

use super::ProcessBackend;
use super::record::{
    PidRecord, STALE_TEMP_AGE, is_temporary, older_than, processes_with_launch_ids,
};
use super::server::{stop_group, stop_processes};
use crate::backend::{SweepError, SweepOptions, SweepReport, SweptItem};

/// How long a swept server gets between SIGTERM and SIGKILL.
const SWEEP_GRACE: Duration = Duration::from_secs(5);

impl ProcessBackend {
    /// Stops servers whose owner died (their pid records remain), removes
    /// their records and stale temporaries.
    pub async fn sweep_leftovers(&self, options: &SweepOptions) -> Result<SweepReport, SweepError> {
        let mut report = SweepReport::default();
        let directory = &self.config.state_dir;
        let entries = match std::fs::read_dir(directory) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(report),
            Err(source) => {
                return Err(SweepError::StateDir {
                    path: directory.clone(),
                    source,
                });
            }
        };
        let this_host = hostname();
        let mut to_stop = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| SweepError::StateDir {
                path: directory.clone(),
                source,
            })?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if is_temporary(&name) {
                if older_than(&path, STALE_TEMP_AGE) && std::fs::remove_file(&path).is_ok() {
                    report.stale_files.push(path);
                }
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("pid") {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let Ok(record) = serde_json::from_str::<PidRecord>(&text) else {
                tracing::warn!(path = %path.display(), "ignoring an unreadable pid file");
                continue;
            };
            let item = SweptItem {
                id: match (record.pid, &record.launch_id) {
                    (Some(pid), _) => format!("pid {pid}"),
                    (None, Some(launch)) => format!("launch {launch}"),
                    (None, None) => "unknown".to_string(),
                },
                run_id: record.run_id.clone(),
                config_id: record.config_id.clone(),
                owner_pid: Some(record.owner.pid),
            };
            if record.owner.host != this_host {
                report.skipped_other_host.push(item);
                continue;
            }
            if record.owner.is_alive() && !options.include_live_owners {
                report.skipped_live_owner.push(item);
                continue;
            }
            to_stop.push((path, record, item));
        }

        // One pass over /proc for every launch ID to follow.
        let ids: Vec<String> = to_stop
            .iter()
            .filter_map(|(_, record, _)| record.launch_id.clone())
            .collect();
        let carriers = processes_with_launch_ids(&ids);
        for (path, record, mut item) in to_stop {
            // Only a process that is provably the one we started is signalled:
            // the recorded pid with its start time, or one carrying the ID.
            if let (Some(pid), Some(pgid)) = (record.pid, record.pgid)
                && process_matches(pid, record.start_ticks)
            {
                stop_group(pgid, SWEEP_GRACE).await;
            }
            let found: Vec<u32> = carriers
                .iter()
                .filter(|(id, _)| Some(id) == record.launch_id.as_ref())
                .flat_map(|(_, pids)| pids.iter().copied())
                .collect();
            if !found.is_empty() {
                if record.pid.is_none()
                    && let Some(first) = found.iter().min()
                {
                    item.id = format!("pid {first}");
                }
                stop_processes(&found, SWEEP_GRACE).await;
            }
            let _ = std::fs::remove_file(&path);
            report.removed.push(item);
        }
        Ok(report)
    }
}
