//! `--gpu-slots`: the words parsed at the boundary, `auto` resolved from
//! `nvidia-smi` (or, in a dry run, from simulated GPUs), and every slot
//! checked against the GPUs a config needs (TP × PP), before anything
//! starts.

use grid_container::{GpuSlot, Profile, SlotRequest, list_gpus, slots_from_devices};
use grid_plan::Plan;

use crate::dry_run;
use crate::error::AppError;

/// The GPUs each config's server uses (TP × PP).
fn gpus_needed(profile: &Profile, plan: &Plan) -> Vec<(String, usize)> {
    plan.configs
        .iter()
        .map(|config| {
            let needed = grid_search::search::config_gpus(profile, config);
            (
                config.name.clone(),
                usize::try_from(needed).unwrap_or(usize::MAX),
            )
        })
        .collect()
}

/// The slots `--gpu-slots WORDS` asks for, else the plan's `slots` (none:
/// one slot, the profile as written).
pub fn resolve(
    words: &[String],
    plan: &Plan,
    profile: &Profile,
    dry_run: bool,
) -> Result<Vec<GpuSlot>, AppError> {
    let words = if words.is_empty() {
        plan.slots.as_slice()
    } else {
        words
    };
    if words.is_empty() {
        return Ok(Vec::new());
    }
    let request = SlotRequest::parse(words).map_err(|source| AppError::GpuSlots { source })?;
    let needed = gpus_needed(profile, plan);
    let per_slot = needed.iter().map(|(_, n)| *n).max().unwrap_or(1);
    let slots = match request {
        SlotRequest::Given(slots) => slots,
        SlotRequest::Auto if dry_run => dry_run::simulated_slots(per_slot),
        SlotRequest::Auto => {
            let devices = list_gpus().map_err(|source| AppError::ListGpus { source })?;
            slots_from_devices(&devices, per_slot)
                .map_err(|source| AppError::GpuSlots { source })?
        }
    };
    for slot in &slots {
        if let Some((config, needed)) = needed.iter().find(|(_, n)| *n > slot.devices.len()) {
            return Err(AppError::SlotTooSmall {
                slot: slot.index,
                gpus: slot.devices.len(),
                config: config.clone(),
                needed: *needed,
            });
        }
    }
    for slot in &slots {
        tracing::info!("GPU {slot}");
    }
    Ok(slots)
}
