//! One unit of work: a config × a repeat. Start the server (retrying
//! transient failures), run the battery, tear down. This is what every
//! executor's worker does, where the GPUs are; it reports through the
//! [`RunContext`] and returns its end, and the orchestrator alone turns
//! ends into results.

use grid_bench::BatteryError;
use grid_container::{GpuSlot, LaunchFailure};
use grid_plan::PlannedConfig;

use crate::SearchError;
use crate::store::{ConfigTiming, FailureRecord, RepeatResult};

use crate::search::context::RunContext;
use crate::search::deadline::Deadline;
use crate::search::launch::{LaunchLog, Launched, launch_with_retry};
use crate::search::repeat::{RepeatEnd, run_repeat};

/// Which unit: the config, its repeat, and the repeat's battery seed.
pub(crate) struct Unit<'a> {
    pub config: &'a PlannedConfig,
    pub repeat: u32,
    pub seed: u64,
    /// The config's rendered server command.
    pub command: &'a [String],
    /// The GPU slot it runs on; `None`: the profile as written.
    pub slot: Option<&'a GpuSlot>,
}

/// How a unit ended.
pub(crate) enum UnitEnd {
    Measured(RepeatResult),
    /// A verdict: the server does not start (after retries).
    LaunchFailed(FailureRecord),
    /// A verdict: the server died during the battery; `measured` when the
    /// battery still finished.
    Died {
        measured: Option<RepeatResult>,
        failure: FailureRecord,
    },
    /// The deadline or the user's cancel fired.
    CutShort,
    /// Not the config's fault: the server cannot start here.
    LaunchUnavailable(Box<LaunchFailure>),
    /// Not the config's fault: the battery could not run.
    BatteryUnavailable(Box<BatteryError>),
    /// Not the config's fault, reported by a remote executor: the record
    /// to write (`not_measured`) and the error that stops the run.
    Unavailable {
        record: FailureRecord,
        error: Box<SearchError>,
    },
}

/// What a unit spent, beside its end: failed launch attempts and time.
#[derive(Default)]
pub(crate) struct UnitLog {
    pub failed_attempts: Vec<FailureRecord>,
    pub timing: ConfigTiming,
}

pub(crate) async fn run_unit(
    ctx: &RunContext<'_>,
    unit: &Unit<'_>,
    deadline: &Deadline,
    log: &mut UnitLog,
) -> Result<UnitEnd, SearchError> {
    let launch_log = LaunchLog {
        failed_attempts: &mut log.failed_attempts,
        timing: &mut log.timing,
    };
    let server = match launch_with_retry(
        ctx,
        unit.config,
        unit.repeat,
        unit.command,
        unit.slot,
        deadline,
        launch_log,
    )
    .await?
    {
        Launched::Ready(server) => *server,
        Launched::CutShort => return Ok(UnitEnd::CutShort),
        Launched::Failed(record) => return Ok(UnitEnd::LaunchFailed(record)),
        Launched::Stop(failure) => return Ok(UnitEnd::LaunchUnavailable(failure)),
    };
    let end = run_repeat(
        ctx,
        unit.config,
        unit.repeat,
        unit.seed,
        server,
        deadline,
        &mut log.timing,
    )
    .await?;
    Ok(match end {
        RepeatEnd::Measured(result) => UnitEnd::Measured(result),
        RepeatEnd::Died { measured, failure } => UnitEnd::Died { measured, failure },
        RepeatEnd::CutShort => UnitEnd::CutShort,
        RepeatEnd::NotMeasured(error) => UnitEnd::BatteryUnavailable(error),
    })
}
