//! The order of the work: every config without a kept result, in plan
//! order, one at a time, each with all its repeats. (A race over repeats,
//! or configs side by side on GPU slots, is another file beside this one.)

use std::collections::BTreeMap;

use grid_plan::ConfigId;
use tokio_util::sync::CancellationToken;

use crate::SearchError;
use crate::store::ConfigResult;

use super::config::run_config;
use super::context::RunContext;
use super::deadline::Deadline;
use super::record::{Recorded, record, record_skipped};

/// How the loop ended, when it did not stop the run.
pub(crate) struct LoopEnd {
    pub configs_run: usize,
    pub interrupted: bool,
}

pub(crate) async fn run_all(
    ctx: &RunContext<'_>,
    kept: &BTreeMap<ConfigId, ConfigResult>,
    cancel: &CancellationToken,
    search: &Deadline,
) -> Result<LoopEnd, SearchError> {
    let mut end = LoopEnd {
        configs_run: 0,
        interrupted: false,
    };
    let mut first = true;
    for config in &ctx.setup.plan.configs {
        if kept.contains_key(&config.id) {
            continue;
        }
        if cancel.is_cancelled() {
            end.interrupted = true;
            break;
        }
        if !first {
            crate::failpoint::hit("between-configs");
        }
        first = false;
        if search.is_cancelled() {
            record_skipped(ctx, config)?;
            continue;
        }
        let run = run_config(ctx, config, cancel, search).await?;
        match record(ctx, config, run)? {
            Recorded::Result => end.configs_run += 1,
            Recorded::Interrupted => {
                end.interrupted = true;
                break;
            }
            Recorded::Stopped(error) => return Err(error),
        }
    }
    Ok(end)
}
