//! Synthetic plans and results.

use std::collections::BTreeMap;

use grid_core::Estimate;
use grid_plan::{ConfigId, Plan};
use grid_search::store::{
    ConfigResult, ConfigTiming, FailureRecord, HostFacts, Manifest, Measurement, RepeatResult,
    RunOutcome, STORE_FORMAT_VERSION, Seeds,
};

pub fn plan(extra: &str) -> Plan {
    let sep = if extra.is_empty() { "" } else { "," };
    grid_plan::parse_plan(&format!(
        r#"{{"format_version": 1, "profile": "sim.yml"{sep} {extra}}}"#
    ))
    .unwrap()
}

/// A measurement that passes every default gate.
pub fn good(acceleration: f64, half_width: f64) -> Measurement {
    Measurement {
        kv_cache_acceleration: Some(Estimate {
            median: acceleration,
            ci95_low: acceleration - half_width,
            ci95_high: acceleration + half_width,
            samples: 5,
        }),
        ttft_miss_ms: Some(100.0 * acceleration),
        ttft_hit_ms: Some(100.0),
        cache_confirmed_by_server: Some(true),
        output_throughput: Some(1000.0 / acceleration),
        mean_itl_ms: Some(10.0),
        mean_e2e_ms: Some(500.0),
        request_error_rate: Some(0.0),
        stability_degradation: Some(0.05),
        tool_call_success_rate: Some(1.0),
        vram_peak_mib: None,
        benchmarks_completed: vec!["kv_cache".into()],
        benchmarks_failed: BTreeMap::new(),
        acceleration_samples: Vec::new(),
        bootstrap_resamples: None,
        kv_cache_pressure: None,
        disturbed: Vec::new(),
    }
}

pub fn completed(plan: &Plan, index: usize, measurements: Vec<Measurement>) -> ConfigResult {
    ConfigResult {
        format_version: STORE_FORMAT_VERSION,
        config: plan.configs[index].clone(),
        outcome: RunOutcome::Completed,
        command: vec!["--model".into(), "m".into()],
        failed_attempts: Vec::new(),
        repeats: measurements
            .into_iter()
            .enumerate()
            .map(|(i, m)| RepeatResult {
                repeat: i as u32,
                seed: i as u64,
                measurement: m,
                output_dir: format!("x/repeat-{i}"),
                server_start_s: 1.0,
                battery_s: 10.0,
                teardown_s: 0.5,
                slot: None,
                neighbours: Vec::new(),
            })
            .collect(),
        failure: None,
        timing: ConfigTiming::default(),
        started_unix_ms: 0,
        finished_unix_ms: 1,
        prediction: None,
    }
}

pub fn launch_failed(plan: &Plan, index: usize, class: &str, config_fault: bool) -> ConfigResult {
    ConfigResult {
        outcome: RunOutcome::LaunchFailed,
        repeats: Vec::new(),
        failure: Some(FailureRecord {
            class: class.to_string(),
            class_name: class.replace('_', " "),
            message: "it did not start".into(),
            log_tail: vec!["ERROR something".into()],
            transient: false,
            config_fault,
        }),
        ..completed(plan, index, Vec::new())
    }
}

pub fn results(list: Vec<ConfigResult>) -> BTreeMap<ConfigId, ConfigResult> {
    list.into_iter().map(|r| (r.config.id.clone(), r)).collect()
}

pub fn manifest(plan: &Plan, run_id: &str) -> Manifest {
    Manifest {
        format_version: STORE_FORMAT_VERSION,
        tool: "vllm-grid".into(),
        tool_version: "test".into(),
        run_id: run_id.into(),
        created_unix_ms: 1_700_000_000_000,
        sim_time_scale: None,
        simulated: true,
        backend: "process".into(),
        plan_file: "plan.json".into(),
        plan: plan.clone(),
        profile_file: "sim.yml".into(),
        profile_hash: "fnv1a64:0".into(),
        image: Some("img".into()),
        battery: serde_json::json!({}),
        seeds: Seeds::for_plan(plan),
        host: HostFacts {
            hostname: "h".into(),
            os: "linux".into(),
            arch: "x86_64".into(),
            cpus: 2,
            memory_total_mib: None,
            kernel: None,
        },
    }
}
