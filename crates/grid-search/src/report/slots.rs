//! GPU slots in the report: where each repeat ran and which configs ran
//! beside it (they shared the host's CPU, PCIe and memory bandwidth, so a
//! config's numbers can differ from a run alone). Nothing when every
//! repeat ran on the one unnamed slot.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use grid_plan::ConfigId;

use crate::store::ConfigResult;

/// The "GPU slots" section of `report.md`, in plan order.
pub fn markdown_section(md: &mut String, results: &BTreeMap<ConfigId, ConfigResult>) {
    let mut rows = Vec::new();
    for result in results.values() {
        for repeat in &result.repeats {
            let Some(slot) = &repeat.slot else {
                continue;
            };
            let neighbours = if repeat.neighbours.is_empty() {
                "none".to_string()
            } else {
                repeat.neighbours.join(", ")
            };
            rows.push((
                result.started_unix_ms,
                format!(
                    "| {} | {} | slot{} | {} | {} |",
                    result.config.name.replace('|', "\\|"),
                    repeat.repeat,
                    slot.index,
                    slot.visible_devices(),
                    neighbours.replace('|', "\\|")
                ),
            ));
        }
    }
    if rows.is_empty() {
        return;
    }
    rows.sort_by_key(|(started, _)| *started);
    let _ = writeln!(md, "## GPU slots\n");
    let _ = writeln!(
        md,
        "Configs ran side by side, one per slot. Neighbours share the host's CPU, PCIe and memory bandwidth: compare a config with its neighbours in mind.\n"
    );
    let _ = writeln!(md, "| config | repeat | slot | GPUs | ran beside |");
    let _ = writeln!(md, "|---|---|---|---|---|");
    for (_, row) in rows {
        let _ = writeln!(md, "{row}");
    }
    let _ = writeln!(md);
}
