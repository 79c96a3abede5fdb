//! `reproduce`: a new run of an archived plan compared with the archive,
//! config by config, and whether the archived champion holds.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use grid_core::Estimate;
use grid_plan::ConfigId;
use serde::{Deserialize, Serialize};

use crate::SearchError;
use crate::rank::{
    ConfigRef, ConfigStatus, RankedConfig, Ranking, Standing, TieBreakRule, rank, ratio, standing,
};
use crate::store::{ConfigResult, Manifest, RunStore, read_json, write_atomic, write_json_atomic};

/// An archive opened for reproduce.
#[derive(Debug, Clone)]
pub struct Archive {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub results: BTreeMap<ConfigId, ConfigResult>,
    /// The archived profile text (`${VAR}` unexpanded).
    pub profile_text: String,
}

pub fn open_archive(dir: &Path) -> Result<Archive, SearchError> {
    if !dir.join("manifest.json").exists() {
        return Err(SearchError::ArchiveWithoutManifest {
            dir: dir.to_path_buf(),
        });
    }
    let manifest: Manifest = read_json(&dir.join("manifest.json"))?;
    let store = RunStore {
        dir: dir.to_path_buf(),
        run_id: manifest.run_id.clone(),
    };
    let results = store.read_results()?;
    let profile_text = fs::read_to_string(dir.join("profile.yml")).map_err(|source| {
        SearchError::ArchiveProfile {
            dir: dir.to_path_buf(),
            source,
        }
    })?;
    Ok(Archive {
        dir: dir.to_path_buf(),
        manifest,
        results,
        profile_text,
    })
}

/// How one config's new numbers compare with the archive's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub name: String,
    pub id: ConfigId,
    pub archived_status: ConfigStatus,
    pub new_status: ConfigStatus,
    pub archived_acceleration: Option<Estimate>,
    pub new_acceleration: Option<Estimate>,
    /// `within`: the new median lies in the archived 95 % interval;
    /// `overlapping`: the intervals overlap; `outside`; `status_changed`;
    /// `not_measured`.
    pub verdict: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reproduction {
    pub archive: String,
    pub archived_run_id: String,
    pub new_run_id: String,
    pub archived_champion: Option<String>,
    pub new_champion: Option<String>,
    pub champion_holds: bool,
    pub why: String,
    /// The tie-break rule that chose each run's champion (`None`: no
    /// equivalent, the best was champion).
    #[serde(default)]
    pub archived_decided_by: Option<TieBreakRule>,
    #[serde(default)]
    pub new_decided_by: Option<TieBreakRule>,
    pub setup_changes: Vec<String>,
    pub configs: Vec<Comparison>,
}

/// Compare the archive with a new run of its plan.
///
/// What was decided is compared, not the order: the champion holds when the
/// new run names the same champion, or a champion equivalent to the
/// archived one (in the new run's equivalence set) chosen by the same
/// tie-break rule. It is not confirmed when a config with a confirmed cache
/// effect is significantly better than the archived champion (their ratio's
/// 95 % interval above `1 + margin`), when the archived champion is no
/// longer valid or confirmed, or when the new run does not settle it.
pub fn compare(archive: &Archive, new_manifest: &Manifest, new_ranking: &Ranking) -> Reproduction {
    let old_ranking = rank(&archive.manifest.plan, &archive.results);
    let mut configs = Vec::new();
    for old in &old_ranking.configs {
        let Some(new) = new_ranking.get(&old.id) else {
            continue;
        };
        let (a, b) = (old.criterion_acceleration(), new.criterion_acceleration());
        let verdict = if old.status != new.status {
            "status_changed"
        } else {
            match (a, b) {
                (Some(a), Some(b)) if a.contains(b.median) => "within",
                (Some(a), Some(b)) if a.overlaps(&b) => "overlapping",
                (Some(_), Some(_)) => "outside",
                _ => "not_measured",
            }
        };
        configs.push(Comparison {
            name: old.name.clone(),
            id: old.id.clone(),
            archived_status: old.status,
            new_status: new.status,
            archived_acceleration: a,
            new_acceleration: b,
            verdict: verdict.to_string(),
        });
    }
    let old_champion = old_ranking.champion.clone();
    let new_champion = new_ranking.champion.clone();
    let archived_decided_by = old_ranking.decision.as_ref().and_then(|d| d.decided_by);
    let new_decided_by = new_ranking.decision.as_ref().and_then(|d| d.decided_by);
    let (holds, why) = match (&old_champion, &new_champion) {
        (None, _) => (
            false,
            "the archived run had no champion, so there is nothing to confirm".to_string(),
        ),
        (Some(old), None) => (
            false,
            format!(
                "the new run names no champion, so `{}` is not confirmed: {}",
                old.name,
                new_ranking
                    .decision
                    .as_ref()
                    .map(|d| d.text.join(" "))
                    .or_else(|| new_ranking.incomplete.as_ref().map(|i| i.text.clone()))
                    .unwrap_or_else(|| "no config is valid".to_string())
            ),
        ),
        (Some(old), Some(new)) if old.id == new.id => {
            (true, format!("`{}` is the champion again", old.name))
        }
        (Some(old), Some(new)) => match new_ranking.get(&old.id) {
            None => (
                false,
                format!(
                    "the archived champion `{}` is not in the new plan",
                    old.name
                ),
            ),
            Some(o) if o.status != ConfigStatus::Valid => (
                false,
                format!(
                    "the archived champion `{}` is {} in the new run: {}",
                    old.name,
                    status_text(o.status),
                    o.reasons.join("; ")
                ),
            ),
            Some(o) => {
                judge_other_champion(new_ranking, o, new, archived_decided_by, new_decided_by)
            }
        },
    };
    let mut setup_changes = crate::search::setup_changes(&archive.manifest, new_manifest);
    if archive.manifest.host != new_manifest.host {
        setup_changes.push(format!(
            "host changed: {} ({} CPUs) -> {} ({} CPUs)",
            archive.manifest.host.hostname,
            archive.manifest.host.cpus,
            new_manifest.host.hostname,
            new_manifest.host.cpus
        ));
    }
    if archive.manifest.tool_version != new_manifest.tool_version {
        setup_changes.push(format!(
            "vllm-grid version changed: {} -> {}",
            archive.manifest.tool_version, new_manifest.tool_version
        ));
    }
    Reproduction {
        archive: archive.dir.display().to_string(),
        archived_run_id: archive.manifest.run_id.clone(),
        new_run_id: new_manifest.run_id.clone(),
        archived_champion: old_champion.map(|c| c.name),
        new_champion: new_champion.map(|c| c.name),
        champion_holds: holds,
        why,
        archived_decided_by,
        new_decided_by,
        setup_changes,
        configs,
    }
}

/// The new run named another champion, `new`, while the archived one, `old`
/// (here as the new run measured it), is valid again: see [`compare`].
fn judge_other_champion(
    ranking: &Ranking,
    old: &RankedConfig,
    new: &ConfigRef,
    archived_rule: Option<TieBreakRule>,
    new_rule: Option<TieBreakRule>,
) -> (bool, String) {
    let margin = ranking.gates.equivalence_margin.get();
    let pct = margin * 100.0;
    let ratio_words = |r: &Estimate| {
        format!(
            "ratio {:.2}, 95 % CI {:.2}–{:.2}",
            r.median, r.ci95_low, r.ci95_high
        )
    };
    let better: Vec<String> = ranking
        .configs
        .iter()
        .filter(|c| c.status == ConfigStatus::Valid && c.cache_evidence_confirmed())
        .filter(|c| c.id != old.id)
        .filter_map(|c| {
            let r = ratio(c, old)?;
            (standing(&r, margin) == Standing::Ahead)
                .then(|| format!("`{}` ({} over `{}`)", c.name, ratio_words(&r), old.name))
        })
        .collect();
    if !better.is_empty() {
        return (
            false,
            format!(
                "{} significantly better than the archived champion `{}`, above the +{pct:.0} % margin",
                if better.len() == 1 {
                    format!("{} is", better[0])
                } else {
                    format!("{} are", better.join(", "))
                },
                old.name
            ),
        );
    }
    if !old.cache_evidence_confirmed() {
        return (
            false,
            format!(
                "the archived champion `{}` has no confirmed cache effect in the new run ({})",
                old.name,
                old.rank_note.as_deref().unwrap_or("not confirmed")
            ),
        );
    }
    let rule_words = |rule: Option<TieBreakRule>| {
        rule.map_or("no tie-break (it was best alone)", TieBreakRule::words)
    };
    if old.equivalent_to_champion {
        let versus = ranking
            .get(&new.id)
            .and_then(|c| ratio(old, c))
            .map(|r| format!(" ({} over `{}`)", ratio_words(&r), new.name))
            .unwrap_or_default();
        if archived_rule == new_rule {
            return (
                true,
                format!(
                    "`{}` came first this time, but `{}` is equivalent to it{versus} and the same tie-break chose ({})",
                    new.name,
                    old.name,
                    rule_words(new_rule)
                ),
            );
        }
        return (
            false,
            format!(
                "`{}` is equivalent to the new champion `{}`{versus}, but another tie-break chose: {} in the archive, {} now",
                old.name,
                new.name,
                rule_words(archived_rule),
                rule_words(new_rule)
            ),
        );
    }
    (
        false,
        format!(
            "`{}` came first and `{}` is neither equivalent to it nor significantly beaten: the new run does not settle it (see its decision)",
            new.name, old.name
        ),
    )
}

fn interval_text(interval: Option<Estimate>) -> String {
    interval
        .map(|a| format!("×{:.2} ({:.2}–{:.2})", a.median, a.ci95_low, a.ci95_high))
        .unwrap_or_else(|| "–".to_string())
}

fn status_text(status: ConfigStatus) -> &'static str {
    match status {
        ConfigStatus::Valid => "valid",
        ConfigStatus::Rejected => "rejected",
        ConfigStatus::Failed => "failed",
    }
}

impl Reproduction {
    pub fn render(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "# Reproduction of {} (new run {})\n",
            self.archived_run_id, self.new_run_id
        );
        let _ = writeln!(
            md,
            "**Champion {}**: {}.\n",
            if self.champion_holds {
                "holds"
            } else {
                "NOT confirmed"
            },
            self.why
        );
        if self.setup_changes.is_empty() {
            let _ = writeln!(
                md,
                "Setup: same plan, profile, image, battery and seeds as the archive.\n"
            );
        } else {
            let _ = writeln!(md, "Setup differences from the archive:\n");
            for c in &self.setup_changes {
                let _ = writeln!(md, "- {c}");
            }
            let _ = writeln!(md);
        }
        let _ = writeln!(
            md,
            "| config | id | archived | new | archived acceleration | new acceleration | verdict |\n|---|---|---|---|---|---|---|"
        );
        for c in &self.configs {
            let _ = writeln!(
                md,
                "| {} | `{}` | {} | {} | {} | {} | {} |",
                c.name,
                c.id,
                status_text(c.archived_status),
                status_text(c.new_status),
                interval_text(c.archived_acceleration),
                interval_text(c.new_acceleration),
                c.verdict.replace('_', " ")
            );
        }
        md
    }

    /// Write `reproduction.md` and `reproduction.json` into the new run.
    pub fn write(&self, store: &RunStore) -> Result<(), SearchError> {
        write_atomic(&store.dir.join("reproduction.md"), self.render().as_bytes())?;
        write_json_atomic(&store.dir.join("reproduction.json"), self)
    }
}
