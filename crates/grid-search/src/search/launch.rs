//! Starting a config's server, retrying transient failures with the plan's
//! backoff.

use std::time::Instant;

use grid_container::{FailureClass, GpuSlot, LaunchFailure, LaunchSpec, RunningServer};
use grid_plan::PlannedConfig;

use crate::SearchError;
use crate::blame::{Blame, launch_blame};
use crate::progress::{Phase, SearchEvent};
use crate::store::{ConfigTiming, FailureRecord, JournalEvent};

use super::context::RunContext;
use super::deadline::{Deadline, sleep_unless};
use super::failure::failure_record;

/// How a launch ended.
pub(crate) enum Launched {
    Ready(Box<RunningServer>),
    /// The deadline or the user's cancel fired.
    CutShort,
    /// A verdict: the config's server does not start (after retries).
    Failed(FailureRecord),
    /// Not the config's fault (see [`crate::blame`]): the run stops.
    Stop(Box<LaunchFailure>),
}

/// What one config's launches accumulate over its repeats.
pub(crate) struct LaunchLog<'a> {
    pub failed_attempts: &'a mut Vec<FailureRecord>,
    pub timing: &'a mut ConfigTiming,
}

pub(crate) async fn launch_with_retry(
    ctx: &RunContext<'_>,
    config: &PlannedConfig,
    repeat: u32,
    command: &[String],
    slot: Option<&GpuSlot>,
    deadline: &Deadline,
    log: LaunchLog<'_>,
) -> Result<Launched, SearchError> {
    let limits = &ctx.setup.plan.limits;
    let token = deadline.token();
    let mut attempt = 0;
    loop {
        attempt += 1;
        ctx.journal(JournalEvent::ConfigStarted {
            config_id: config.id.clone(),
            name: config.name.clone(),
            repeat,
            attempt,
        })?;
        ctx.event(&SearchEvent::ConfigStarted {
            config: config.name.clone(),
            repeat,
            attempt,
        });
        ctx.phase(config, Phase::StartingServer);
        let mut spec = LaunchSpec::new(
            &ctx.setup.run_id,
            config.id.0.clone(),
            &config.name,
            command.to_vec(),
            ctx.store.config_dir(config),
        );
        spec.ready_timeout = limits.health_timeout;
        spec.grace_period = ctx.options.grace_period;
        spec.replace_foreign = ctx.options.replace_foreign;
        spec.variables = ctx.options.variables.clone();
        spec.slot = slot.cloned();
        let launch_started = Instant::now();
        let launched = ctx.backend.launch(&ctx.setup.profile, &spec, token).await;
        log.timing.server_start_s += launch_started.elapsed().as_secs_f64();
        let failure = match launched {
            Ok(server) => return Ok(Launched::Ready(Box::new(server))),
            Err(failure) => failure,
        };
        if token.is_cancelled() || failure.class == FailureClass::Cancelled {
            return Ok(Launched::CutShort);
        }
        let record = failure_record(&failure);
        tracing::info!(
            config = %config.name,
            class = %failure.class,
            attempt,
            error = &failure as &dyn std::error::Error,
            "server did not start"
        );
        ctx.journal(JournalEvent::LaunchFailed {
            config_id: config.id.clone(),
            class: record.class.clone(),
            transient: failure.transient,
            attempt,
        })?;
        if failure.transient && attempt <= limits.transient_retries.get() {
            let backoff = limits.retry_backoff_after(attempt);
            ctx.phase(
                config,
                Phase::RetryingLaunch {
                    class: failure.class.clone(),
                    backoff,
                },
            );
            log.failed_attempts.push(record);
            let slept = Instant::now();
            let completed = sleep_unless(token, backoff).await;
            log.timing.backoff_s += slept.elapsed().as_secs_f64();
            if !completed {
                return Ok(Launched::CutShort);
            }
            continue;
        }
        return Ok(match launch_blame(&failure.class) {
            Blame::Config => Launched::Failed(record),
            Blame::Environment | Blame::BadInput | Blame::Internal => {
                Launched::Stop(Box::new(failure))
            }
        });
    }
}
