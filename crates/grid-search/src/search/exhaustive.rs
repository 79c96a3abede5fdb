//! The order of the work: every config without a kept result, in plan
//! order, each with all its repeats; one config per GPU slot at a time,
//! the slots side by side (one slot, the default: one config after the
//! other). Each slot is a lane that takes the next config when its own is
//! recorded; the lanes share this task, so the orchestrator's recording
//! stays one writer. (A race over repeats is another file beside this one.)

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use grid_container::GpuSlot;
use grid_plan::{ConfigId, PlannedConfig};
use tokio_util::sync::CancellationToken;

use crate::SearchError;
use crate::store::ConfigResult;

use super::config::{Lane, run_config};
use super::context::RunContext;
use super::deadline::Deadline;
use super::executor::Executor;
use super::record::{Recorded, record, record_skipped};
use super::slots::SlotBoard;

/// How the loop ended, when it did not stop the run.
pub(crate) struct LoopEnd {
    pub configs_run: usize,
    pub interrupted: bool,
}

/// What the lanes share.
struct Shared<'a> {
    queue: VecDeque<&'a PlannedConfig>,
    started_one: bool,
    end: LoopEnd,
    /// The error that stops the run (the first one; the other lanes are
    /// halted and leave their configs to resume).
    stopped: Option<SearchError>,
}

struct Loop<'a, 'c, E> {
    ctx: &'c RunContext<'c>,
    executor: &'c E,
    shared: Mutex<Shared<'a>>,
    board: SlotBoard,
    /// The user's cancel, or a lane's stop: every lane ends, its config
    /// rerun on resume.
    halt: &'c CancellationToken,
    search: &'c Deadline,
}

impl<'a, E: Executor> Loop<'a, '_, E> {
    fn shared(&self) -> MutexGuard<'_, Shared<'a>> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next config for a lane, or `None` when the lane is done.
    fn next(&self) -> Option<&'a PlannedConfig> {
        let mut shared = self.shared();
        if shared.stopped.is_some() || shared.end.interrupted {
            return None;
        }
        let config = shared.queue.pop_front()?;
        if self.halt.is_cancelled() {
            shared.end.interrupted = true;
            return None;
        }
        if shared.started_one {
            crate::failpoint::hit("between-configs");
        }
        shared.started_one = true;
        Some(config)
    }

    fn stop(&self, error: SearchError) {
        let mut shared = self.shared();
        if shared.stopped.is_none() {
            shared.stopped = Some(error);
        }
        self.halt.cancel();
    }

    async fn lane(&self, index: u32, slot: Option<&GpuSlot>) {
        let lane = Lane {
            index,
            slot,
            board: &self.board,
        };
        while let Some(config) = self.next() {
            if self.search.is_cancelled() {
                if let Err(error) = record_skipped(self.ctx, config) {
                    self.stop(error);
                }
                continue;
            }
            self.board.enter(lane.key(), &config.name);
            let run = run_config(
                self.ctx,
                self.executor,
                &lane,
                config,
                self.halt,
                self.search,
            )
            .await;
            self.board.leave(lane.key());
            match run.and_then(|run| record(self.ctx, config, run)) {
                Ok(Recorded::Result) => self.shared().end.configs_run += 1,
                Ok(Recorded::Interrupted) => {
                    self.shared().end.interrupted = true;
                    return;
                }
                Ok(Recorded::Stopped(error)) | Err(error) => {
                    self.stop(error);
                    return;
                }
            }
        }
    }
}

/// Runs every config without a kept result on the executor, one per slot
/// at a time (`slots` empty: `lanes` lanes without a slot, the profile as
/// written: one locally, as many as a cluster's GPUs hold on Ray). `halt` is
/// the user's cancel; a config that stops the run fires it too, so the
/// other slots' configs end unrecorded and run again on resume.
pub(crate) async fn run_all(
    ctx: &RunContext<'_>,
    executor: &impl Executor,
    slots: &[GpuSlot],
    lanes: usize,
    kept: &BTreeMap<ConfigId, ConfigResult>,
    halt: &CancellationToken,
    search: &Deadline,
) -> Result<LoopEnd, SearchError> {
    let queue = ctx
        .setup
        .plan
        .configs
        .iter()
        .filter(|c| !kept.contains_key(&c.id))
        .collect();
    let work = Loop {
        ctx,
        executor,
        shared: Mutex::new(Shared {
            queue,
            started_one: false,
            end: LoopEnd {
                configs_run: 0,
                interrupted: false,
            },
            stopped: None,
        }),
        board: SlotBoard::default(),
        halt,
        search,
    };
    if slots.is_empty() {
        let lanes = u32::try_from(lanes.max(1)).unwrap_or(u32::MAX);
        futures_util::future::join_all((0..lanes).map(|index| work.lane(index, None))).await;
    } else {
        futures_util::future::join_all(slots.iter().map(|slot| work.lane(slot.index, Some(slot))))
            .await;
    }
    let shared = work
        .shared
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    match shared.stopped {
        Some(error) => Err(error),
        None => Ok(shared.end),
    }
}
