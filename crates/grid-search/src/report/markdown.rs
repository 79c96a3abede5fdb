//! `report.md`: champion, comparison table, advice, rejected configs, gates.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use grid_plan::ConfigId;

use grid_core::Estimate;

use super::{ACCELERATION_CHART, SIMULATED_BANNER, TTFT_CHART};
use crate::rank::{CacheEvidence, ConfigStatus, RankedConfig, Ranking};
use crate::store::{ConfigResult, Manifest};

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

fn estimate_text(estimate: Option<Estimate>) -> String {
    match estimate {
        Some(a) => format!("×{:.2} ({:.2}–{:.2})", a.median, a.ci95_low, a.ci95_high),
        None => "–".to_string(),
    }
}

/// ", per repeat ×6.01, ×5.97" when there are two repeats or more.
fn per_repeat_text(c: &RankedConfig) -> String {
    if c.per_repeat_medians.len() < 2 {
        return String::new();
    }
    format!("; per repeat {}", c.per_repeat_text("×"))
}

fn evidence_text(c: &RankedConfig) -> &'static str {
    match &c.cache_evidence {
        Some(CacheEvidence::Confirmed) => "confirmed",
        Some(CacheEvidence::Disagreement { .. }) => "disagreement",
        Some(CacheEvidence::Unverified) => "unverified",
        Some(CacheEvidence::NotObserved) => "none",
        None => "–",
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
    let figure = ranking
        .decision
        .as_ref()
        .map_or("KV-cache acceleration", |d| d.criterion.figure());
    match ranking.champion.as_ref().and_then(|c| ranking.get(&c.id)) {
        Some(champion) => {
            let _ = writeln!(
                md,
                "**{}** (`{}`; {}): {figure} {}{}.\n",
                champion.name,
                champion.id,
                champion.settings,
                estimate_text(champion.criterion_acceleration()),
                per_repeat_text(champion)
            );
        }
        None => match &ranking.incomplete {
            Some(incomplete) if incomplete.blocks_champion() => {
                let _ = writeln!(
                    md,
                    "**No champion yet**: {} Continue with `vllm-grid resume {}` once the cause is fixed.\n",
                    incomplete.text, manifest.run_id
                );
            }
            _ if ranking.decision.is_none() => {
                let _ = writeln!(
                    md,
                    "**No champion**: no config passed every gate. See the rejected and failed configs below.\n"
                );
            }
            _ => {}
        },
    }
    if let Some(decision) = &ranking.decision {
        for line in &decision.text {
            let _ = writeln!(md, "{line}\n");
        }
    }
    if let Some(incomplete) = ranking.incomplete.as_ref().filter(|i| !i.blocks_champion()) {
        let _ = writeln!(
            md,
            "Incomplete run: {} Continue with `vllm-grid resume {}`.\n",
            incomplete.text, manifest.run_id
        );
    }

    let _ = writeln!(md, "## Comparison\n");
    let _ = writeln!(
        md,
        "Ranked on {figure}; `≡` marks a config equivalent to the champion, `⚠` a disturbed benchmark (the client's TTFT exceeded the server's own).\n"
    );
    let _ = writeln!(
        md,
        "| rank | config | id | status | KV-cache acceleration (95 % CI) | under pressure (95 % CI) | per-repeat medians | KV capacity tokens | pressure hit rate | preemptions | cache effect | TTFT miss ms | TTFT hit ms | output tok/s | mean ITL ms | mean E2E ms | VRAM peak MiB | tool calls | errors | stability degr. | disturbed |"
    );
    let _ = writeln!(
        md,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for c in &ranking.configs {
        let status = match c.status {
            ConfigStatus::Valid => "valid",
            ConfigStatus::Rejected => "rejected",
            ConfigStatus::Failed => "failed",
        };
        let s = &c.secondary;
        let pressure = c.pressure.clone().unwrap_or_default();
        let medians = c.per_repeat_text("");
        let disturbed = c.disturbed_text();
        let _ = writeln!(
            md,
            "| {}{} | {} | `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c.rank
                .map(|r| r.to_string())
                .unwrap_or_else(|| "–".to_string()),
            if c.equivalent_to_champion { " ≡" } else { "" },
            md_cell(&c.name),
            c.id,
            status,
            estimate_text(c.kv_cache_acceleration),
            estimate_text(c.kv_cache_pressure_acceleration),
            if medians.is_empty() {
                "–".to_string()
            } else {
                medians
            },
            pressure
                .kv_capacity_tokens
                .map_or("–".to_string(), |t| t.to_string()),
            opt_pct(pressure.warm_hit_rate),
            pressure
                .preemptions
                .map_or("–".to_string(), |p| p.to_string()),
            evidence_text(c),
            opt(s.ttft_miss_ms, 1),
            opt(s.ttft_hit_ms, 1),
            opt(s.output_throughput, 1),
            opt(s.mean_itl_ms, 2),
            opt(s.mean_e2e_ms, 1),
            opt(s.vram_peak_mib, 0),
            opt_pct(s.tool_call_success_rate),
            opt_pct(s.request_error_rate),
            opt_pct(s.stability_degradation),
            if disturbed.is_empty() {
                "–".to_string()
            } else {
                md_cell(&format!("⚠ {disturbed}"))
            },
        );
    }
    let _ = writeln!(md);
    let notes: Vec<&RankedConfig> = ranking
        .configs
        .iter()
        .filter(|c| c.rank_note.is_some())
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(md, "Ranked after the others, and why:\n");
        for c in notes {
            let _ = writeln!(
                md,
                "- `{}`: {}.",
                c.name,
                c.rank_note.as_deref().unwrap_or_default()
            );
        }
        let _ = writeln!(md);
    }

    let not_judged: Vec<&RankedConfig> = ranking
        .configs
        .iter()
        .filter(|c| !c.gate_notes.is_empty())
        .collect();
    if !not_judged.is_empty() {
        let _ = writeln!(md, "Gates not judged on disturbed figures:\n");
        for c in not_judged {
            for note in &c.gate_notes {
                let _ = writeln!(md, "- `{}`: {note}.", c.name);
            }
        }
        let _ = writeln!(md);
    }

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

    super::prediction::markdown_section(
        &mut md,
        super::prediction_summary(&manifest.plan, results).as_ref(),
    );

    super::slots::markdown_section(&mut md, results);

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
    let _ = writeln!(md, "- KV-cache acceleration measured;");
    let _ = writeln!(
        md,
        "- to be champion: a confirmed cache effect on the champion criterion (the acceleration's 95 % lower bound above the battery's threshold, and cache hits reported by the server in every repeat).\n"
    );

    let _ = writeln!(md, "## Charts\n");
    let _ = writeln!(
        md,
        "![KV-cache acceleration per config]({ACCELERATION_CHART})\n\n![TTFT miss against hit]({TTFT_CHART})"
    );
    md
}
