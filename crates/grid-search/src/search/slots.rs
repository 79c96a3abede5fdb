//! Who ran beside whom: the orchestrator's board of which config holds
//! each GPU slot, so each repeat's result can name the configs that ran on
//! other slots while it ran (they shared the host's CPU, PCIe and memory
//! bandwidth, which can shift its numbers).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

#[derive(Default)]
pub(crate) struct SlotBoard {
    state: Mutex<BoardState>,
}

#[derive(Default)]
struct BoardState {
    /// Slot → the config on it now.
    running: BTreeMap<u32, String>,
    /// Slot → the configs seen on other slots since its unit began.
    watching: BTreeMap<u32, BTreeSet<String>>,
}

impl SlotBoard {
    fn state(&self) -> MutexGuard<'_, BoardState> {
        // Every update leaves the maps whole; a panic elsewhere is no reason
        // to lose them.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `config` takes `slot`: every unit running on another slot has it as
    /// a neighbour from now.
    pub(crate) fn enter(&self, slot: u32, config: &str) {
        let mut state = self.state();
        state.running.insert(slot, config.to_string());
        for (other, seen) in &mut state.watching {
            if *other != slot {
                seen.insert(config.to_string());
            }
        }
    }

    pub(crate) fn leave(&self, slot: u32) {
        self.state().running.remove(&slot);
    }

    /// A unit begins on `slot`: its neighbours so far are the configs on
    /// the other slots.
    pub(crate) fn begin_unit(&self, slot: u32) {
        let mut state = self.state();
        let now: BTreeSet<String> = state
            .running
            .iter()
            .filter(|(other, _)| **other != slot)
            .map(|(_, config)| config.clone())
            .collect();
        state.watching.insert(slot, now);
    }

    /// The unit on `slot` ended: the configs that ran beside it, by name.
    pub(crate) fn end_unit(&self, slot: u32) -> Vec<String> {
        self.state()
            .watching
            .remove(&slot)
            .map(|seen| seen.into_iter().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::SlotBoard;

    #[test]
    fn a_unit_names_every_config_that_ran_beside_it() {
        let board = SlotBoard::default();
        board.enter(0, "a");
        board.begin_unit(0);
        board.enter(1, "b");
        board.begin_unit(1);
        board.leave(1);
        assert_eq!(board.end_unit(1), vec!["a".to_string()]);
        board.enter(1, "c");
        board.begin_unit(1);
        assert_eq!(board.end_unit(0), vec!["b".to_string(), "c".to_string()]);
        board.leave(0);
        assert_eq!(board.end_unit(1), vec!["a".to_string()]);
        // Alone: no neighbours.
        board.begin_unit(1);
        assert_eq!(board.end_unit(1), Vec::<String>::new());
    }
}
