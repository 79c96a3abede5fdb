//! From the raw file to a [`Plan`]: the top-level checks, the grid, named
//! configs claiming grid points, exclusion rules, and the uniqueness of
//! names and IDs.

use std::collections::BTreeMap;

use crate::axes::Grid;
use crate::bounded::Repeats;
use crate::error::{Clash, PlanError};
use crate::id::ConfigId;
use crate::limits::SearchLimits;
use crate::plan::{ConfigOrigin, ExcludedConfig, Plan, PlannedConfig};
use crate::ranking::RankingGates;
use crate::raw::{FORMAT_VERSION, RawNamed, RawPlanFile, RawSlots, default_axes};
use crate::settings::ServerSettings;
use crate::validate::{settings_from_raw, validate_name};

/// Parse and validate a plan file's text.
pub fn parse_plan(text: &str) -> Result<Plan, PlanError> {
    let deserializer = &mut serde_json::Deserializer::from_str(text);
    let raw: RawPlanFile = serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        PlanError::Parse {
            path: if path == "." { String::new() } else { path },
            source: err.into_inner(),
        }
    })?;
    build_plan(raw)
}

fn build_plan(raw: RawPlanFile) -> Result<Plan, PlanError> {
    if raw.format_version != FORMAT_VERSION {
        return Err(PlanError::UnsupportedVersion {
            found: raw.format_version,
        });
    }
    if raw.profile.trim().is_empty() {
        return Err(PlanError::EmptyProfile);
    }
    let repeats = Repeats::new(raw.repeats).map_err(|source| PlanError::Count {
        path: "repeats".to_string(),
        what: "repeats",
        source,
    })?;
    let ranking = RankingGates::try_from(raw.ranking.clone())?;
    let limits = SearchLimits::try_from(raw.limits.clone())?;
    if !raw.battery.is_object() {
        return Err(PlanError::BatteryNotAnObject);
    }

    let defaults = settings_from_raw(&raw.defaults, "defaults")?;
    let axes = raw.axes.as_ref().map_or_else(
        || Grid::enumerate(&default_axes(), &defaults),
        |axes| Grid::enumerate(axes, &defaults),
    )?;
    let named = named_configs(&raw.named_configs, &defaults)?;
    let rules = exclusion_rules(&raw)?;
    let Placed {
        configs,
        excluded,
        warnings,
    } = place(axes, &named, &rules);
    check_unique(&configs, &raw.named_configs)?;
    if configs.is_empty() {
        return Err(if excluded.is_empty() {
            PlanError::NoConfigs
        } else {
            PlanError::AllExcluded {
                count: excluded.len(),
            }
        });
    }

    Ok(Plan {
        format_version: raw.format_version,
        profile: raw.profile,
        configs,
        excluded,
        battery: raw.battery,
        ranking,
        repeats,
        limits,
        seed: raw.seed,
        slots: match raw.slots {
            None => Vec::new(),
            Some(RawSlots::Words(words)) => words.split_whitespace().map(str::to_string).collect(),
            Some(RawSlots::List(list)) => list,
        },
        warnings,
    })
}

/// A named config with its effective settings (`defaults`, then its own).
struct Named<'a> {
    raw: &'a RawNamed,
    settings: ServerSettings,
}

fn named_configs<'a>(
    raw: &'a [RawNamed],
    defaults: &ServerSettings,
) -> Result<Vec<Named<'a>>, PlanError> {
    let mut named = Vec::new();
    let mut seen_names: BTreeMap<&str, String> = BTreeMap::new();
    for (index, raw_named) in raw.iter().enumerate() {
        let path = format!("named_configs[{index}]");
        validate_name(&raw_named.name, &format!("{path}.name"))?;
        if let Some(first) = seen_names.get(raw_named.name.as_str()) {
            return Err(PlanError::NameReused {
                path: format!("{path}.name"),
                name: raw_named.name.clone(),
                first: first.clone(),
            });
        }
        let mut settings = defaults.clone();
        settings.overlay(&settings_from_raw(
            &raw_named.settings,
            &format!("{path}.settings"),
        )?);
        seen_names.insert(&raw_named.name, path);
        named.push(Named {
            raw: raw_named,
            settings,
        });
    }
    Ok(named)
}

/// An exclusion rule: `exclude[index]`, its pattern and its reason.
struct Rule {
    index: usize,
    pattern: ServerSettings,
    reason: String,
}

fn exclusion_rules(raw: &RawPlanFile) -> Result<Vec<Rule>, PlanError> {
    let mut rules = Vec::new();
    for (index, rule) in raw.exclude.iter().enumerate() {
        let path = format!("exclude[{index}].when");
        let pattern = settings_from_raw(&rule.when, &path)?;
        if pattern.is_empty() {
            return Err(PlanError::EmptyRule { path });
        }
        rules.push(Rule {
            index,
            pattern,
            reason: rule.reason.clone().unwrap_or_default(),
        });
    }
    Ok(rules)
}

/// The configs in order, the grid points excluded, and the warnings.
struct Placed {
    configs: Vec<PlannedConfig>,
    excluded: Vec<ExcludedConfig>,
    warnings: Vec<String>,
}

/// Walk the grid: a named config with the same values on every axis claims
/// a point (named configs are never excluded); otherwise the first rule that
/// matches excludes it. Unclaiming named configs follow the grid.
fn place(grid: Grid, named: &[Named<'_>], rules: &[Rule]) -> Placed {
    let mut configs: Vec<PlannedConfig> = Vec::new();
    let mut excluded = Vec::new();
    let mut claimed = vec![false; named.len()];
    let mut rule_used = vec![false; rules.len()];
    for (grid_name, grid_settings) in grid.points {
        let claimer = named.iter().enumerate().find(|(n, named)| {
            !claimed[*n]
                && grid
                    .keys
                    .iter()
                    .all(|key| named.settings.typed_value(key) == grid_settings.typed_value(key))
        });
        if let Some((n, named)) = claimer {
            claimed[n] = true;
            configs.push(named_config(named, ConfigOrigin::NamedGridPoint));
            continue;
        }
        if let Some((r, rule)) = rules
            .iter()
            .enumerate()
            .find(|(_, rule)| grid_settings.matches(&rule.pattern))
        {
            rule_used[r] = true;
            excluded.push(ExcludedConfig {
                id: grid_settings.id(),
                name: grid_name,
                settings: grid_settings,
                rule: format!("exclude[{}]", rule.index),
                reason: rule.reason.clone(),
            });
            continue;
        }
        configs.push(PlannedConfig {
            id: grid_settings.id(),
            name: grid_name,
            origin: ConfigOrigin::Grid,
            description: None,
            settings: grid_settings,
        });
    }
    for (n, named) in named.iter().enumerate() {
        if !claimed[n] {
            configs.push(named_config(named, ConfigOrigin::Named));
        }
    }
    let warnings = rules
        .iter()
        .zip(&rule_used)
        .filter(|(_, used)| !**used)
        .map(|(rule, _)| {
            format!(
                "exclude[{}] matches no grid point; check its values against the axes",
                rule.index
            )
        })
        .collect();
    Placed {
        configs,
        excluded,
        warnings,
    }
}

fn named_config(named: &Named<'_>, origin: ConfigOrigin) -> PlannedConfig {
    PlannedConfig {
        name: named.raw.name.clone(),
        id: named.settings.id(),
        origin,
        description: named.raw.description.clone(),
        settings: named.settings.clone(),
    }
}

/// Names and IDs must be unique across the whole plan.
fn check_unique(configs: &[PlannedConfig], named: &[RawNamed]) -> Result<(), PlanError> {
    let mut by_name: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_id: BTreeMap<&ConfigId, usize> = BTreeMap::new();
    for (position, config) in configs.iter().enumerate() {
        if let Some(first) = by_name.insert(&config.name, position) {
            return Err(PlanError::NameClash(Box::new(Clash {
                path: config_path(&config.name, named),
                shared: config.name.clone(),
                first: configs[first].settings.summary(),
                second: config.settings.summary(),
            })));
        }
        if let Some(first) = by_id.insert(&config.id, position) {
            return Err(PlanError::SameSettings(Box::new(Clash {
                path: config_path(&config.name, named),
                shared: config.settings.summary(),
                first: configs[first].name.clone(),
                second: config.name.clone(),
            })));
        }
    }
    Ok(())
}

/// Where a config's name is written: its named config, or the axes.
fn config_path(name: &str, named: &[RawNamed]) -> String {
    match named.iter().position(|n| n.name == name) {
        Some(index) => format!("named_configs[{index}].name"),
        None => "axes".to_string(),
    }
}
