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
use crate::rank::{ConfigStatus, Ranking, rank};
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
    pub setup_changes: Vec<String>,
    pub configs: Vec<Comparison>,
}

/// Compare the archive with a new run of its plan.
///
/// The champion holds when the archived champion is valid again and either
/// is the new champion or is not significantly behind it (their 95 %
/// intervals overlap).
pub fn compare(archive: &Archive, new_manifest: &Manifest, new_ranking: &Ranking) -> Reproduction {
    let old_ranking = rank(&archive.manifest.plan, &archive.results);
    let mut configs = Vec::new();
    for old in &old_ranking.configs {
        let Some(new) = new_ranking.get(&old.id) else {
            continue;
        };
        let verdict = if old.status != new.status {
            "status_changed"
        } else {
            match (old.kv_cache_acceleration, new.kv_cache_acceleration) {
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
            archived_acceleration: old.kv_cache_acceleration,
            new_acceleration: new.kv_cache_acceleration,
            verdict: verdict.to_string(),
        });
    }
    let old_champion = old_ranking.champion.clone();
    let new_champion = new_ranking.champion.clone();
    let (holds, why) = match (&old_champion, &new_champion) {
        (None, _) => (
            false,
            "the archived run had no champion, so there is nothing to confirm".to_string(),
        ),
        (Some(old), None) => (
            false,
            format!(
                "no config is valid in the new run, so `{}` is not confirmed",
                old.name
            ),
        ),
        (Some(old), Some(new)) if old.id == new.id => {
            (true, format!("`{}` is the champion again", old.name))
        }
        (Some(old), Some(new)) => {
            let old_now = new_ranking.get(&old.id);
            let champion_now = new_ranking.get(&new.id);
            match (old_now, champion_now) {
                (Some(o), Some(c)) if o.status == ConfigStatus::Valid => {
                    match (o.kv_cache_acceleration, c.kv_cache_acceleration) {
                        (Some(a), Some(b)) if a.overlaps(&b) => (
                            true,
                            format!(
                                "`{}` came first this time, but `{}`'s interval overlaps it, so the archived champion is not significantly beaten",
                                new.name, old.name
                            ),
                        ),
                        _ => (
                            false,
                            format!(
                                "`{}` is now significantly ahead of the archived champion `{}`",
                                new.name, old.name
                            ),
                        ),
                    }
                }
                (Some(o), _) => (
                    false,
                    format!(
                        "the archived champion `{}` is {} in the new run: {}",
                        old.name,
                        match o.status {
                            ConfigStatus::Valid => "valid",
                            ConfigStatus::Rejected => "rejected",
                            ConfigStatus::Failed => "failed",
                        },
                        o.reasons.join("; ")
                    ),
                ),
                (None, _) => (
                    false,
                    format!(
                        "the archived champion `{}` is not in the new plan",
                        old.name
                    ),
                ),
            }
        }
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
        setup_changes,
        configs,
    }
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
