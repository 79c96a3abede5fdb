//! Reports: `report.md`, `report.json` and two SVG charts, rendered from the
//! manifest and the result files alone (so `vllm-grid report` can re-render
//! them at any time).

mod markdown;
mod prediction;
mod slots;
mod svg;

use std::path::PathBuf;

use grid_core::Estimate;
use grid_plan::ConfigId;
use serde::{Deserialize, Serialize};

pub use markdown::render_markdown;
pub use prediction::{PredictionSummary, ReportPrediction, prediction_summary};
pub use svg::{acceleration_svg, ttft_svg};

use crate::SearchError;
use crate::rank::{ConfigStatus, Incomplete, Ranking, rank};
use crate::store::{Manifest, RunStore, now_unix_ms, write_atomic, write_json_atomic};

/// Format version of `report.json`.
pub const REPORT_FORMAT_VERSION: u32 = 1;

pub const SIMULATED_BANNER: &str = "SIMULATED NUMBERS: this run used vllm-sim (`--dry-run`), not a real vLLM server. Every latency, throughput and acceleration below comes from the simulator's model and says nothing about real hardware.";

/// One config in `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportConfig {
    pub name: String,
    pub id: ConfigId,
    /// `valid`, `rejected` or `failed`.
    pub status: ConfigStatus,
    pub rank: Option<usize>,
    /// Median over repeats; null when not measured.
    pub kv_cache_acceleration: Option<f64>,
    /// `[low, high]` of the 95 % interval; null when not measured.
    pub kv_cache_acceleration_ci95: Option<[f64; 2]>,
    /// Why the config is not valid (all reasons joined).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_class: Option<String>,
    pub settings: String,
    pub secondary: crate::rank::Secondary,
    pub repeats: usize,
    /// The pressured workload's acceleration; null when it did not run.
    #[serde(default)]
    pub kv_cache_pressure_acceleration: Option<Estimate>,
    /// The smallest KV capacity (tokens) the config's servers reported.
    #[serde(default)]
    pub kv_capacity_tokens: Option<u64>,
    /// Median share of the pressured workload's warm-turn prompt tokens
    /// served from the cache.
    #[serde(default)]
    pub pressure_warm_hit_rate: Option<f64>,
    /// Most preemptions in any repeat of the pressured workload.
    #[serde(default)]
    pub pressure_preemptions: Option<u64>,
    /// Benchmarks the noise guard marked, with both TTFTs.
    #[serde(default)]
    pub disturbed: Vec<crate::store::Disturbance>,
    /// Equivalent to the champion on the criterion (the champion itself:
    /// false).
    #[serde(default)]
    pub equivalent_to_champion: bool,
    /// Each repeat's median of the criterion's figure.
    #[serde(default)]
    pub per_repeat_medians: Vec<f64>,
    /// The cache-effect verdict on the criterion's figure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_evidence: Option<crate::rank::CacheEvidence>,
    /// Why a valid config is ranked after others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank_note: Option<String>,
    /// Gates not applied to a disturbed figure, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gate_notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportChampion {
    pub name: String,
    pub id: ConfigId,
    /// The `kv_cache` figure; null when only the pressured one was measured.
    pub kv_cache_acceleration: Option<f64>,
    pub kv_cache_acceleration_ci95: Option<[f64; 2]>,
    /// The figure it was chosen on (`decision.criterion`).
    pub criterion_acceleration: Estimate,
}

/// `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportJson {
    pub format_version: u32,
    pub run_id: String,
    pub simulated: bool,
    pub tool_version: String,
    pub backend: String,
    pub generated_unix_ms: u64,
    pub champion: Option<ReportChampion>,
    /// How the champion was chosen: criterion, equivalents with their
    /// ratios, the tie-break steps, significance, noise, disturbance.
    pub decision: Option<crate::rank::Decision>,
    pub configs: Vec<ReportConfig>,
    pub recommendations: Vec<crate::rank::Recommendation>,
    pub tradeoffs: Vec<String>,
    pub gates: grid_plan::RankingGates,
    pub charts: Vec<String>,
    /// Why the run is not complete (no champion while configs are not
    /// measured for reasons outside them); absent when it is complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<Incomplete>,
    /// The memory prediction: counts, skips, whether each held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predictions: Option<PredictionSummary>,
}

/// Where a rendered report went.
#[derive(Debug, Clone)]
pub struct ReportFiles {
    pub markdown: PathBuf,
    pub json: PathBuf,
    pub charts: Vec<PathBuf>,
    pub report: ReportJson,
    pub ranking: Ranking,
}

pub const ACCELERATION_CHART: &str = "acceleration.svg";
pub const TTFT_CHART: &str = "ttft.svg";

/// Rank and render everything into the run directory.
pub fn write_report(store: &RunStore) -> Result<ReportFiles, SearchError> {
    let manifest = store.read_manifest()?;
    let results = store.read_results()?;
    let ranking = rank(&manifest.plan, &results);
    let mut report = report_json(&manifest, &ranking);
    report.predictions = prediction_summary(&manifest.plan, &results);
    let markdown = render_markdown(&manifest, &results, &ranking);
    let md_path = store.dir.join("report.md");
    let json_path = store.dir.join("report.json");
    write_atomic(&md_path, markdown.as_bytes())?;
    write_json_atomic(&json_path, &report)?;
    let accel = store.dir.join(ACCELERATION_CHART);
    let ttft = store.dir.join(TTFT_CHART);
    write_atomic(
        &accel,
        acceleration_svg(&ranking, manifest.simulated).as_bytes(),
    )?;
    write_atomic(&ttft, ttft_svg(&ranking, manifest.simulated).as_bytes())?;
    Ok(ReportFiles {
        markdown: md_path,
        json: json_path,
        charts: vec![accel, ttft],
        report,
        ranking,
    })
}

pub fn report_json(manifest: &Manifest, ranking: &Ranking) -> ReportJson {
    let champion = ranking.champion.as_ref().and_then(|c| {
        let ranked = ranking.get(&c.id)?;
        let a = ranked.kv_cache_acceleration;
        Some(ReportChampion {
            name: c.name.clone(),
            id: c.id.clone(),
            kv_cache_acceleration: a.map(|a| a.median),
            kv_cache_acceleration_ci95: a.map(|a| [a.ci95_low, a.ci95_high]),
            criterion_acceleration: ranked.criterion_acceleration()?,
        })
    });
    ReportJson {
        format_version: REPORT_FORMAT_VERSION,
        run_id: manifest.run_id.clone(),
        simulated: manifest.simulated,
        tool_version: manifest.tool_version.clone(),
        backend: manifest.backend.clone(),
        generated_unix_ms: now_unix_ms(),
        champion,
        decision: ranking.decision.clone(),
        configs: ranking
            .configs
            .iter()
            .map(|c| ReportConfig {
                name: c.name.clone(),
                id: c.id.clone(),
                status: c.status,
                rank: c.rank,
                kv_cache_acceleration: c.kv_cache_acceleration.map(|a| a.median),
                kv_cache_acceleration_ci95: c
                    .kv_cache_acceleration
                    .map(|a| [a.ci95_low, a.ci95_high]),
                reason: (c.status != ConfigStatus::Valid).then(|| c.reasons.join("; ")),
                failure_class: c.failure_class.clone(),
                settings: c.settings.clone(),
                secondary: c.secondary.clone(),
                repeats: c.repeats_done,
                kv_cache_pressure_acceleration: c.kv_cache_pressure_acceleration,
                kv_capacity_tokens: c.pressure.as_ref().and_then(|p| p.kv_capacity_tokens),
                pressure_warm_hit_rate: c.pressure.as_ref().and_then(|p| p.warm_hit_rate),
                pressure_preemptions: c.pressure.as_ref().and_then(|p| p.preemptions),
                disturbed: c.disturbed.clone(),
                equivalent_to_champion: c.equivalent_to_champion,
                per_repeat_medians: c.per_repeat_medians.clone(),
                cache_evidence: c.cache_evidence.clone(),
                rank_note: c.rank_note.clone(),
                gate_notes: c.gate_notes.clone(),
            })
            .collect(),
        recommendations: ranking.recommendations.clone(),
        tradeoffs: ranking.tradeoffs.clone(),
        gates: ranking.gates.clone(),
        charts: vec![ACCELERATION_CHART.to_string(), TTFT_CHART.to_string()],
        incomplete: ranking.incomplete.clone(),
        predictions: None,
    }
}
