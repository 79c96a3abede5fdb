//! Reports: `report.md`, `report.json` and two SVG charts, rendered from the
//! manifest and the result files alone (so `vllm-grid report` can re-render
//! them at any time).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use grid_plan::ConfigId;
use serde::{Deserialize, Serialize};

use crate::SearchError;
use crate::rank::{ConfigStatus, RankedConfig, Ranking, rank};
use crate::store::{
    ConfigResult, Manifest, RunStore, now_unix_ms, write_atomic, write_json_atomic,
};

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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportChampion {
    pub name: String,
    pub id: ConfigId,
    pub kv_cache_acceleration: f64,
    pub kv_cache_acceleration_ci95: [f64; 2],
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
    pub significance: Option<crate::rank::Significance>,
    pub configs: Vec<ReportConfig>,
    pub recommendations: Vec<crate::rank::Recommendation>,
    pub tradeoffs: Vec<String>,
    pub gates: grid_plan::RankingGates,
    pub charts: Vec<String>,
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
    let report = report_json(&manifest, &ranking);
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
        let a = ranked.kv_cache_acceleration?;
        Some(ReportChampion {
            name: c.name.clone(),
            id: c.id.clone(),
            kv_cache_acceleration: a.median,
            kv_cache_acceleration_ci95: [a.ci95_low, a.ci95_high],
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
        significance: ranking.significance.clone(),
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
            })
            .collect(),
        recommendations: ranking.recommendations.clone(),
        tradeoffs: ranking.tradeoffs.clone(),
        gates: ranking.gates.clone(),
        charts: vec![ACCELERATION_CHART.to_string(), TTFT_CHART.to_string()],
    }
}

fn opt(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.decimals$}"),
        _ => "–".to_string(),
    }
}

fn opt_pct(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{:.1} %", v * 100.0),
        _ => "–".to_string(),
    }
}

fn md_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn accel_text(c: &RankedConfig) -> String {
    match c.kv_cache_acceleration {
        Some(a) => format!("×{:.2} ({:.2}–{:.2})", a.median, a.ci95_low, a.ci95_high),
        None => "–".to_string(),
    }
}

pub fn render_markdown(
    manifest: &Manifest,
    results: &BTreeMap<ConfigId, ConfigResult>,
    ranking: &Ranking,
) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# vllm-grid report: {}\n", manifest.run_id);
    if manifest.simulated {
        let _ = writeln!(md, "> **{SIMULATED_BANNER}**\n");
        if let Some(scale) = manifest.sim_time_scale {
            let _ = writeln!(
                md,
                "> The simulator ran at `--sim-time-scale {scale}`: every duration below is {scale} times the simulated server's own (divide by {scale} to read it at the simulated hardware's pace); ratios such as the KV-cache acceleration are unaffected.\n"
            );
        }
    }
    let done = results.len();
    let total = manifest.plan.configs.len();
    let _ = writeln!(
        md,
        "- Tool: vllm-grid {} · backend `{}` · {} repeat(s) per config · {done}/{total} configs with a result",
        manifest.tool_version, manifest.backend, manifest.plan.repeats
    );
    let _ = writeln!(
        md,
        "- Plan: `{}` · profile `{}` (hash `{}`) · image `{}`",
        manifest.plan_file,
        manifest.profile_file,
        manifest.profile_hash,
        manifest.image.as_deref().unwrap_or("unknown")
    );
    let _ = writeln!(
        md,
        "- Host: {} ({} {}, {} CPUs{}) · base seed {}\n",
        manifest.host.hostname,
        manifest.host.os,
        manifest.host.arch,
        manifest.host.cpus,
        manifest
            .host
            .memory_total_mib
            .map(|m| format!(", {m} MiB RAM"))
            .unwrap_or_default(),
        manifest.seeds.base
    );

    let _ = writeln!(md, "## Champion\n");
    match ranking.champion.as_ref().and_then(|c| ranking.get(&c.id)) {
        Some(champion) => {
            let valid = ranking
                .configs
                .iter()
                .filter(|c| c.status == ConfigStatus::Valid)
                .count();
            let _ = writeln!(
                md,
                "**{}** (`{}`; {}): KV-cache acceleration {}.\n",
                champion.name,
                champion.id,
                champion.settings,
                accel_text(champion)
            );
            let _ = writeln!(
                md,
                "Why: it has the highest median KV-cache acceleration (TTFT of a cold prompt over TTFT of the same conversation once cached) of the {valid} config(s) that passed every gate.\n"
            );
            if let Some(sig) = &ranking.significance {
                let _ = writeln!(md, "{}\n", sig.text);
            } else {
                let _ = writeln!(
                    md,
                    "It is the only valid config, so there is no runner-up to compare with.\n"
                );
            }
            if champion.secondary.cache_confirmed_by_server == Some(false) {
                let _ = writeln!(
                    md,
                    "Warning: the server's prefix-cache counters did not confirm the cache hits behind this acceleration.\n"
                );
            }
        }
        None => {
            let _ = writeln!(
                md,
                "**No champion**: no config passed every gate. See the rejected and failed configs below.\n"
            );
        }
    }

    let _ = writeln!(md, "## Comparison\n");
    let _ = writeln!(
        md,
        "| rank | config | id | status | KV-cache acceleration (95 % CI) | TTFT miss ms | TTFT hit ms | output tok/s | mean ITL ms | mean E2E ms | VRAM peak MiB | tool calls | errors | stability degr. | cache confirmed |"
    );
    let _ = writeln!(
        md,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for c in &ranking.configs {
        let status = match c.status {
            ConfigStatus::Valid => "valid",
            ConfigStatus::Rejected => "rejected",
            ConfigStatus::Failed => "failed",
        };
        let s = &c.secondary;
        let _ = writeln!(
            md,
            "| {} | {} | `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c.rank
                .map(|r| r.to_string())
                .unwrap_or_else(|| "–".to_string()),
            md_cell(&c.name),
            c.id,
            status,
            accel_text(c),
            opt(s.ttft_miss_ms, 1),
            opt(s.ttft_hit_ms, 1),
            opt(s.output_throughput, 1),
            opt(s.mean_itl_ms, 2),
            opt(s.mean_e2e_ms, 1),
            opt(s.vram_peak_mib, 0),
            opt_pct(s.tool_call_success_rate),
            opt_pct(s.request_error_rate),
            opt_pct(s.stability_degradation),
            match s.cache_confirmed_by_server {
                Some(true) => "yes",
                Some(false) => "no",
                None => "–",
            }
        );
    }
    let _ = writeln!(md);

    let _ = writeln!(md, "## Recommendations per use case\n");
    for r in &ranking.recommendations {
        let _ = writeln!(
            md,
            "- **{}**: {} — {}.",
            r.use_case,
            r.config
                .as_ref()
                .map(|c| format!("`{}`", c.name))
                .unwrap_or_else(|| "no recommendation".to_string()),
            r.why
        );
    }
    let _ = writeln!(md);

    let _ = writeln!(md, "## Trade-offs\n");
    if ranking.tradeoffs.is_empty() {
        let _ = writeln!(md, "- Not enough measured configs to compare.");
    }
    for t in &ranking.tradeoffs {
        let _ = writeln!(md, "- {t}");
    }
    let _ = writeln!(md);

    let _ = writeln!(md, "## Rejected and failed configs\n");
    let not_valid: Vec<&RankedConfig> = ranking
        .configs
        .iter()
        .filter(|c| c.status != ConfigStatus::Valid)
        .collect();
    if not_valid.is_empty() {
        let _ = writeln!(md, "None: every config passed every gate.\n");
    }
    for c in not_valid {
        let _ = writeln!(
            md,
            "### {} (`{}`) — {}\n",
            c.name,
            c.id,
            if c.status == ConfigStatus::Rejected {
                "rejected"
            } else {
                "failed"
            }
        );
        for reason in &c.reasons {
            let _ = writeln!(md, "- {reason}");
        }
        if !c.log_tail.is_empty() {
            let _ = writeln!(md, "\nLast lines of the server log:\n\n```text");
            for line in c.log_tail.iter().rev().take(20).rev() {
                let _ = writeln!(md, "{}", line.replace("```", "'''"));
            }
            let _ = writeln!(md, "```");
        }
        let _ = writeln!(md);
    }

    let g = &ranking.gates;
    let _ = writeln!(md, "## Gates\n");
    let _ = writeln!(md, "- the server started;");
    if g.require_all_benchmarks {
        let _ = writeln!(md, "- every benchmark completed;");
    }
    let _ = writeln!(
        md,
        "- request error rate ≤ {:.1} %;\n- stability degradation < {:.1} %;",
        g.max_request_error_rate * 100.0,
        g.max_stability_degradation * 100.0
    );
    if g.require_tool_calling {
        let _ = writeln!(
            md,
            "- tool-call success ≥ {:.1} %;",
            g.min_tool_call_success_rate * 100.0
        );
    }
    let _ = writeln!(md, "- KV-cache acceleration measured.\n");

    let _ = writeln!(md, "## Charts\n");
    let _ = writeln!(
        md,
        "![KV-cache acceleration per config]({ACCELERATION_CHART})\n\n![TTFT miss against hit]({TTFT_CHART})"
    );
    md
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A "nice" axis maximum and tick step above `value`.
fn nice_axis(value: f64) -> (f64, f64) {
    let value = if value.is_finite() && value > 0.0 {
        value
    } else {
        1.0
    };
    let raw_step = value / 5.0;
    let magnitude = 10f64.powf(raw_step.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw_step)
        .unwrap_or(10.0 * magnitude);
    ((value / step).ceil() * step, step)
}

struct Frame {
    width: f64,
    height: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl Frame {
    /// A chart with one slot per config along x, its name slanted below.
    fn per_config(count: usize) -> Frame {
        Frame {
            width: (160.0 + 60.0 * count as f64).max(480.0),
            height: 460.0,
            left: 70.0,
            right: 20.0,
            top: 40.0,
            bottom: 190.0,
        }
    }
    /// The width of one of `count` config slots.
    fn slot_w(&self, count: usize) -> f64 {
        self.plot_w() / count.max(1) as f64
    }
    /// The x of the centre of slot `index`.
    fn slot_center(&self, index: usize, count: usize) -> f64 {
        self.left + self.slot_w(count) * (index as f64 + 0.5)
    }
    fn plot_w(&self) -> f64 {
        self.width - self.left - self.right
    }
    fn plot_h(&self) -> f64 {
        self.height - self.top - self.bottom
    }
    fn y(&self, value: f64, max: f64) -> f64 {
        self.top + self.plot_h() * (1.0 - (value / max).clamp(0.0, 1.0))
    }
}

fn svg_open(frame: &Frame, title: &str, simulated: bool, out: &mut String) {
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#,
        w = frame.width,
        h = frame.height
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let title = if simulated {
        format!("{title} — SIMULATED")
    } else {
        title.to_string()
    };
    let _ = writeln!(
        out,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
        frame.width / 2.0,
        xml(&title)
    );
}

fn y_axis(frame: &Frame, max: f64, step: f64, label: &str, out: &mut String) {
    let mut tick = 0.0;
    while tick <= max + step * 0.01 {
        let y = frame.y(tick, max);
        let _ = writeln!(
            out,
            r##"<line x1="{l}" x2="{r}" y1="{y:.1}" y2="{y:.1}" stroke="#e0e0e0"/><text x="{tx}" y="{ty:.1}" text-anchor="end">{tick}</text>"##,
            l = frame.left,
            r = frame.width - frame.right,
            tx = frame.left - 6.0,
            ty = y + 4.0,
            tick = (tick * 1000.0).round() / 1000.0
        );
        tick += step;
    }
    let _ = writeln!(
        out,
        r##"<line x1="{l}" x2="{l}" y1="{t}" y2="{b}" stroke="#333"/><line x1="{l}" x2="{r}" y1="{b}" y2="{b}" stroke="#333"/>"##,
        l = frame.left,
        r = frame.width - frame.right,
        t = frame.top,
        b = frame.height - frame.bottom
    );
    let _ = writeln!(
        out,
        r#"<text transform="translate(16,{}) rotate(-90)" text-anchor="middle">{}</text>"#,
        frame.top + frame.plot_h() / 2.0,
        xml(label)
    );
}

fn x_label(frame: &Frame, x: f64, text: &str, out: &mut String) {
    let y = frame.height - frame.bottom + 12.0;
    let _ = writeln!(
        out,
        r#"<text transform="translate({x:.1},{y:.1}) rotate(-40)" text-anchor="end" font-size="11">{}</text>"#,
        xml(text)
    );
}

/// Bars of the median acceleration per config with 95 % error bars; valid
/// configs in blue (the champion in green), others grey and marked.
pub fn acceleration_svg(ranking: &Ranking, simulated: bool) -> String {
    let configs = &ranking.configs;
    let frame = Frame::per_config(configs.len());
    let top_value = configs
        .iter()
        .filter_map(|c| c.kv_cache_acceleration.map(|a| a.ci95_high.max(a.median)))
        .fold(1.0, f64::max);
    let (max, step) = nice_axis(top_value * 1.05);
    let mut out = String::new();
    svg_open(
        &frame,
        "KV-cache acceleration per config (median, 95 % interval)",
        simulated,
        &mut out,
    );
    y_axis(
        &frame,
        max,
        step,
        "acceleration (TTFT miss / TTFT hit)",
        &mut out,
    );
    // The no-effect line at ×1.
    let one = frame.y(1.0, max);
    let _ = writeln!(
        out,
        r##"<line x1="{}" x2="{}" y1="{one:.1}" y2="{one:.1}" stroke="#c00" stroke-dasharray="4 3"/>"##,
        frame.left,
        frame.width - frame.right
    );
    let champion = ranking.champion.as_ref().map(|c| &c.id);
    let bar_w = frame.slot_w(configs.len()) * 0.6;
    for (i, c) in configs.iter().enumerate() {
        let center = frame.slot_center(i, configs.len());
        match c.kv_cache_acceleration {
            Some(a) => {
                let fill = if Some(&c.id) == champion {
                    "#2e8b57"
                } else if c.status == ConfigStatus::Valid {
                    "#4682b4"
                } else {
                    "#b0b0b0"
                };
                let y = frame.y(a.median, max);
                let base = frame.height - frame.bottom;
                let _ = writeln!(
                    out,
                    r#"<rect x="{:.1}" y="{y:.1}" width="{bar_w:.1}" height="{:.1}" fill="{fill}"><title>{}: ×{:.2} ({:.2}–{:.2})</title></rect>"#,
                    center - bar_w / 2.0,
                    (base - y).max(0.0),
                    xml(&c.name),
                    a.median,
                    a.ci95_low,
                    a.ci95_high
                );
                let (lo, hi) = (frame.y(a.ci95_low, max), frame.y(a.ci95_high, max));
                let cap = bar_w / 4.0;
                let _ = writeln!(
                    out,
                    r##"<g stroke="#222" stroke-width="1.5"><line x1="{center:.1}" x2="{center:.1}" y1="{lo:.1}" y2="{hi:.1}"/><line x1="{:.1}" x2="{:.1}" y1="{lo:.1}" y2="{lo:.1}"/><line x1="{:.1}" x2="{:.1}" y1="{hi:.1}" y2="{hi:.1}"/></g>"##,
                    center - cap,
                    center + cap,
                    center - cap,
                    center + cap
                );
            }
            None => {
                let base = frame.height - frame.bottom;
                let _ = writeln!(
                    out,
                    r##"<text x="{center:.1}" y="{:.1}" text-anchor="middle" fill="#900">✗</text>"##,
                    base - 6.0
                );
            }
        }
        let label = match c.status {
            ConfigStatus::Valid => c.name.clone(),
            ConfigStatus::Rejected => format!("{} (rejected)", c.name),
            ConfigStatus::Failed => format!("{} (failed)", c.name),
        };
        x_label(&frame, center, &label, &mut out);
    }
    out.push_str("</svg>\n");
    out
}

/// Grouped bars: TTFT of a cold prompt (miss) against the cached
/// conversation (hit), per config.
pub fn ttft_svg(ranking: &Ranking, simulated: bool) -> String {
    let configs = &ranking.configs;
    let frame = Frame::per_config(configs.len());
    let top_value = configs
        .iter()
        .flat_map(|c| [c.secondary.ttft_miss_ms, c.secondary.ttft_hit_ms])
        .flatten()
        .filter(|v| v.is_finite())
        .fold(1.0, f64::max);
    let (max, step) = nice_axis(top_value * 1.05);
    let mut out = String::new();
    svg_open(
        &frame,
        "TTFT: cache miss against cache hit (median ms)",
        simulated,
        &mut out,
    );
    y_axis(&frame, max, step, "time to first token (ms)", &mut out);
    let _ = writeln!(
        out,
        r##"<rect x="{x}" y="30" width="12" height="12" fill="#e07b39"/><text x="{tx}" y="40">miss</text><rect x="{x2}" y="30" width="12" height="12" fill="#4682b4"/><text x="{tx2}" y="40">hit</text>"##,
        x = frame.width - 140.0,
        tx = frame.width - 124.0,
        x2 = frame.width - 80.0,
        tx2 = frame.width - 64.0
    );
    let base = frame.height - frame.bottom;
    let bar_w = frame.slot_w(configs.len()) * 0.3;
    for (i, c) in configs.iter().enumerate() {
        let center = frame.slot_center(i, configs.len());
        for (offset, value, fill, what) in [
            (-bar_w, c.secondary.ttft_miss_ms, "#e07b39", "miss"),
            (0.0, c.secondary.ttft_hit_ms, "#4682b4", "hit"),
        ] {
            if let Some(v) = value.filter(|v| v.is_finite()) {
                let y = frame.y(v, max);
                let _ = writeln!(
                    out,
                    r#"<rect x="{:.1}" y="{y:.1}" width="{bar_w:.1}" height="{:.1}" fill="{fill}"><title>{} {what}: {v:.1} ms</title></rect>"#,
                    center + offset,
                    (base - y).max(0.0),
                    xml(&c.name)
                );
            }
        }
        x_label(&frame, center, &c.name, &mut out);
    }
    out.push_str("</svg>\n");
    out
}
