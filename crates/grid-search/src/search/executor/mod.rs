//! The executor seam: where a unit of work (one config × one repeat) runs.
//!
//! The orchestrator (the search loop, `search/exhaustive.rs`) decides what
//! runs next and on which GPU slot, and alone writes the journal and the
//! results; an [`Executor`] carries one unit out (start the server where
//! the GPUs are, run the battery beside it, tear down) and hands back its
//! end. Today's executor is [`LocalExecutor`]: the unit runs in this
//! process, on the local Docker engine or as a local process, on the slot
//! the orchestrator gave it.
//!
//! An executor that runs units elsewhere ships a [`UnitSpec`] (JSON, no
//! secrets) to the node, runs `vllm-grid worker --spec FILE --out FILE`
//! there (which calls [`run_unit_spec`]), and reads the [`UnitResult`]
//! back: the Ray executor submits the worker as a Ray job's entrypoint;
//! a Kubernetes one would make it a Job's command with `nvidia.com/gpu`
//! limits, a Slurm one an `sbatch --gres=gpu:N` script. The search does not
//! change for them: they implement [`Executor`] (ARCHITECTURE.md, "The
//! executor seam").
//!
//! Files: `unit` (what a unit does), `local` (the local executor), `ray`
//! and `ray_package` (the Ray executor: a job per unit, and the package of
//! the binary and the unit specs the jobs run from),
//! `unit_spec` (the worker's input and output files), `worker` (a unit run
//! from its spec).

mod local;
mod ray;
mod ray_package;
pub(crate) mod unit;
mod unit_spec;
mod worker;

pub(crate) use local::LocalExecutor;
pub(crate) use ray::RayExecutor;
pub use ray::{RESULT_LINE_PREFIX, RayTarget};
pub use unit_spec::{UNIT_FORMAT_VERSION, UnitEndRecord, UnitResult, UnitSpec, UnitSpecError};
pub use worker::run_unit_spec;

use crate::SearchError;

use super::context::RunContext;
use super::deadline::Deadline;
use unit::{Unit, UnitEnd, UnitLog};

/// Carries out one unit of work and returns how it ended. It reports
/// through `ctx` (events, and journal events the orchestrator records) and
/// adds failed launch attempts and time to `log`; it writes no result.
/// `deadline` fires at the config's deadline, the search's, or the user's
/// cancel: the unit then stops its server and ends [`UnitEnd::CutShort`].
pub(crate) trait Executor {
    async fn run_unit(
        &self,
        ctx: &RunContext<'_>,
        unit: &Unit<'_>,
        deadline: &Deadline,
        log: &mut UnitLog,
    ) -> Result<UnitEnd, SearchError>;
}
