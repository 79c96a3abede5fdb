//! One config: its units (one per repeat) under the config's own deadline,
//! and the result their ends make.

use std::time::Instant;

use grid_container::GpuSlot;
use grid_plan::PlannedConfig;
use tokio_util::sync::CancellationToken;

use crate::SearchError;
use crate::store::{
    ConfigResult, ConfigTiming, FailureRecord, RepeatResult, RunOutcome, STORE_FORMAT_VERSION,
    derive_seed, now_unix_ms,
};

use super::context::RunContext;
use super::deadline::Deadline;
use super::executor::Executor;
use super::executor::unit::{Unit, UnitEnd, UnitLog};
use super::failure::{chain_text, failure_record, plain_failure};
use super::slots::SlotBoard;

/// Where a config runs: its GPU slot (`None`: the profile as written, one
/// slot) and the board that says who runs beside it.
pub(crate) struct Lane<'a> {
    /// The lane's key on the board: its slot's index, or its number.
    pub index: u32,
    pub slot: Option<&'a GpuSlot>,
    pub board: &'a SlotBoard,
}

impl Lane<'_> {
    /// The lane's key on the board.
    pub(crate) fn key(&self) -> u32 {
        self.index
    }

    /// A repeat's result says where it ran and beside whom.
    fn place(&self, result: &mut RepeatResult, neighbours: &[String]) {
        result.slot = self.slot.cloned();
        result.neighbours = neighbours.to_vec();
    }
}

pub(crate) enum ConfigRun {
    /// A result to record: a verdict, or what a deadline cut short.
    Done(Box<ConfigResult>),
    /// The user's cancel fired: no result, the config reruns on resume.
    Interrupted,
    /// Not measured for a reason outside the config: record `result`
    /// (`not_measured`) and stop the run with `error`.
    Stop {
        result: Box<ConfigResult>,
        error: SearchError,
    },
}

/// What a config's repeats have gathered so far.
struct Gathered<'a> {
    config: &'a PlannedConfig,
    command: Vec<String>,
    started: Instant,
    started_unix_ms: u64,
    repeats: Vec<RepeatResult>,
    /// Failed launch attempts and time, over every unit so far.
    log: UnitLog,
}

impl Gathered<'_> {
    fn finish(mut self, outcome: RunOutcome, failure: Option<FailureRecord>) -> Box<ConfigResult> {
        let mut timing = std::mem::take(&mut self.log.timing);
        timing.wall_s = self.started.elapsed().as_secs_f64();
        timing.overhead_s = (timing.wall_s
            - timing.server_start_s
            - timing.battery_s
            - timing.teardown_s
            - timing.backoff_s)
            .max(0.0);
        Box::new(ConfigResult {
            format_version: STORE_FORMAT_VERSION,
            config: self.config.clone(),
            outcome,
            command: self.command,
            failed_attempts: self.log.failed_attempts,
            repeats: self.repeats,
            failure,
            timing,
            started_unix_ms: self.started_unix_ms,
            finished_unix_ms: now_unix_ms(),
            prediction: None,
        })
    }
}

pub(crate) async fn run_config(
    ctx: &RunContext<'_>,
    executor: &impl Executor,
    lane: &Lane<'_>,
    config: &PlannedConfig,
    user_cancel: &CancellationToken,
    search: &Deadline,
) -> Result<ConfigRun, SearchError> {
    let plan = &ctx.setup.plan;
    let mut gathered = Gathered {
        config,
        command: grid_container::render_command(&ctx.setup.profile.command, &config.flags()),
        started: Instant::now(),
        started_unix_ms: now_unix_ms(),
        repeats: Vec::new(),
        log: UnitLog::default(),
    };
    let deadline = Deadline::start(search.token(), plan.limits.per_config_timeout);
    // The deadline's token fired: record why. A user's cancel records
    // nothing, so the config reruns on resume.
    let cut_short = |gathered: Gathered<'_>| {
        if user_cancel.is_cancelled() {
            return ConfigRun::Interrupted;
        }
        let record = if deadline.passed() {
            plain_failure(
                "config_deadline",
                format!(
                    "the config ran past its deadline ({} s, limits.per_config_timeout_s)",
                    plan.limits.per_config_timeout.as_secs_f64()
                ),
                false,
            )
        } else {
            plain_failure(
                "search_deadline",
                format!(
                    "the search deadline ({} s, limits.search_timeout_s) passed while this config ran",
                    plan.limits.search_timeout.as_secs_f64()
                ),
                false,
            )
        };
        ConfigRun::Done(gathered.finish(RunOutcome::Failed, Some(record)))
    };

    for repeat in 0..plan.repeats.get() {
        let command = gathered.command.clone();
        let unit = Unit {
            config,
            repeat,
            seed: derive_seed(plan.seed, &config.id, repeat),
            command: &command,
            slot: lane.slot,
        };
        lane.board.begin_unit(lane.key());
        let end = executor
            .run_unit(ctx, &unit, &deadline, &mut gathered.log)
            .await;
        let neighbours = lane.board.end_unit(lane.key());
        let (record, error) = match end? {
            UnitEnd::Measured(mut result) => {
                lane.place(&mut result, &neighbours);
                gathered.repeats.push(result);
                continue;
            }
            UnitEnd::LaunchFailed(record) => {
                return Ok(ConfigRun::Done(
                    gathered.finish(RunOutcome::LaunchFailed, Some(record)),
                ));
            }
            UnitEnd::Died {
                mut measured,
                failure,
            } => {
                if let Some(result) = &mut measured {
                    lane.place(result, &neighbours);
                }
                gathered.repeats.extend(measured);
                return Ok(ConfigRun::Done(
                    gathered.finish(RunOutcome::Failed, Some(failure)),
                ));
            }
            UnitEnd::CutShort => return Ok(cut_short(gathered)),
            UnitEnd::LaunchUnavailable(failure) => (
                failure_record(&failure),
                SearchError::Launch {
                    run_id: ctx.setup.run_id.clone(),
                    config: config.name.clone(),
                    failure,
                },
            ),
            UnitEnd::Unavailable { record, error } => (record, *error),
            UnitEnd::BatteryUnavailable(source) => (
                plain_failure("battery_error", chain_text(&source), false),
                SearchError::Battery {
                    run_id: ctx.setup.run_id.clone(),
                    config: config.name.clone(),
                    source,
                },
            ),
        };
        // Not the config's fault: recorded as not measured, and the run stops.
        return Ok(ConfigRun::Stop {
            result: gathered.finish(RunOutcome::NotMeasured, Some(record)),
            error,
        });
    }
    Ok(ConfigRun::Done(
        gathered.finish(RunOutcome::Completed, None),
    ))
}

/// The result of a config the search deadline left no time for.
pub(crate) fn skipped(ctx: &RunContext<'_>, config: &PlannedConfig) -> ConfigResult {
    let now = now_unix_ms();
    ConfigResult {
        format_version: STORE_FORMAT_VERSION,
        config: config.clone(),
        outcome: RunOutcome::Skipped,
        command: grid_container::render_command(&ctx.setup.profile.command, &config.flags()),
        failed_attempts: Vec::new(),
        repeats: Vec::new(),
        failure: Some(plain_failure(
            "search_deadline",
            format!(
                "the search deadline ({} s, limits.search_timeout_s) passed before this config started",
                ctx.setup.plan.limits.search_timeout.as_secs_f64()
            ),
            false,
        )),
        timing: ConfigTiming::default(),
        started_unix_ms: now,
        finished_unix_ms: now,
        prediction: None,
    }
}
