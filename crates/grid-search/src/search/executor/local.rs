//! The local executor: the unit runs in this process, its server on this
//! host's Docker engine or as a local process, on the slot it was given.

use crate::SearchError;
use crate::search::context::RunContext;
use crate::search::deadline::Deadline;

use super::Executor;
use super::unit::{Unit, UnitEnd, UnitLog, run_unit};

pub(crate) struct LocalExecutor;

impl Executor for LocalExecutor {
    async fn run_unit(
        &self,
        ctx: &RunContext<'_>,
        unit: &Unit<'_>,
        deadline: &Deadline,
        log: &mut UnitLog,
    ) -> Result<UnitEnd, SearchError> {
        run_unit(ctx, unit, deadline, log).await
    }
}
