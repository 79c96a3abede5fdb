//! The planner: reads `grid_search_configs.json`, enumerates the grid and
//! gives every configuration a stable ID. It does no IO: callers hand it text
//! and get plans back.
//!
//! # The file format (`format_version: 1`)
//!
//! ```json
//! {
//!   "format_version": 1,
//!   "profile": "profiles/medium.yml",
//!   "defaults": { "max_model_len": 32768 },
//!   "axes": {
//!     "gpu_memory_utilization": [0.85, 0.90, 0.95],
//!     "enable_chunked_prefill": [true, false],
//!     "enable_prefix_caching": [true, false]
//!   },
//!   "named_configs": [
//!     { "name": "aggressive_cache",
//!       "settings": { "gpu_memory_utilization": 0.95, "enable_chunked_prefill": true,
//!                     "enable_prefix_caching": true, "max_num_seqs": 48 } }
//!   ],
//!   "exclude": [ { "when": { "gpu_memory_utilization": 0.95,
//!                            "enable_chunked_prefill": false },
//!                  "reason": "..." } ],
//!   "battery": { },
//!   "ranking": { "max_request_error_rate": 0.01 },
//!   "repeats": 1,
//!   "limits": { "per_config_timeout_s": 3600 },
//!   "seed": 0
//! }
//! ```
//!
//! * `axes` absent means the study's default axes (3 × 2 × 2 = 12 points);
//!   `"axes": {}` means no grid, only the named configs.
//! * Every config's effective settings are `defaults`, then its axis point
//!   (or its named settings).
//! * A named config whose values on every axis key equal a grid point's
//!   *claims* that point: it replaces it (taking its place in the order, its
//!   name and its extra overrides). A named config that matches no point is
//!   added after the grid. This keeps the study's four names inside its 12.
//! * `exclude` rules drop grid points whose settings match every key in
//!   `when`. Named configs are never excluded: naming one is explicit.
//!
//! # Stable config IDs
//!
//! [`ConfigId`] is `fnv1a64("vllm-grid-config-v1\n" + canonical)` printed as
//! 16 lowercase hex digits, where `canonical` is one `key=value\n` line per
//! *set* setting, sorted by key, with canonical values:
//! `gpu-memory-utilization` as Rust's shortest round-trip float (`0.90` →
//! `0.9`), booleans `true`/`false`, integers in decimal, `kv-cache-dtype`
//! lowercased, and extra args keyed by their normalised flag (`--Foo_Bar` →
//! `foo-bar`) with `switch:true|false` or `value:TEXT`. The ID therefore
//! depends neither on the order keys appear in nor on how they are spelled,
//! only on what the server is told. Names are not part of the ID.
//!
//! # Limits and counts
//!
//! `limits.*_s` are numbers of seconds; the plan holds them as
//! [`std::time::Duration`]s within documented bounds ([`limits`]), and
//! `repeats` and `limits.transient_retries` as [`BoundedU32`]s. A value out
//! of range (1e20 s, a negative time, 1000 retries) is refused when the file
//! is read, with its JSON path, the bound and the fix.
//!
//! # Layout
//!
//! `settings` (what a config sets, its flags), `id` (the stable ID), `raw`
//! (the file's serde shape), `validate` (settings and names from raw),
//! `axes` (the grid), `build` (raw to [`Plan`]), `plan` (the output types),
//! `ranking` (the gates), `limits` and `bounded` (bounded values), `diff`
//! (plan to plan), `error`.

mod axes;
mod bounded;
mod build;
mod diff;
mod error;
mod id;
pub mod limits;
mod plan;
mod ranking;
mod raw;
mod settings;
mod validate;

pub use bounded::{BoundedU32, OutOfRange, Repeats, Retries, SecondsError, SecondsRange};
pub use build::parse_plan;
pub use diff::{PlanDiff, diff_plans};
pub use error::{Clash, PlanError};
pub use id::{ConfigId, fnv1a64};
pub use limits::{RawLimits, SearchLimits};
pub use plan::{ConfigOrigin, ExcludedConfig, Plan, PlannedConfig};
pub use ranking::{
    ChampionCriterion, EquivalenceMargin, MarginOutOfRange, RankingGates, RawRanking,
};
pub use raw::FORMAT_VERSION;
pub use settings::{ExtraArg, FlagSetting, ServerSettings};
