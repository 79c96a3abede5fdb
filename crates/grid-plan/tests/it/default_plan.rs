use grid_plan::{ConfigOrigin, FlagSetting, parse_plan};

const SHIPPED: &str = include_str!("../../../../grid_search_configs.json");

#[test]
fn shipped_plan_has_the_studys_twelve_configs_with_its_four_names() {
    let plan = parse_plan(SHIPPED).expect("the shipped plan is valid");
    assert_eq!(plan.configs.len(), 12);
    assert!(plan.excluded.is_empty());
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);

    let find = |name: &str| {
        plan.configs
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("config {name} missing"))
    };
    let check = |name: &str, gmu: f64, chunked: bool, prefix: bool, seqs: Option<u64>| {
        let c = find(name);
        assert_eq!(c.settings.gpu_memory_utilization, Some(gmu), "{name}");
        assert_eq!(c.settings.enable_chunked_prefill, Some(chunked), "{name}");
        assert_eq!(c.settings.enable_prefix_caching, Some(prefix), "{name}");
        assert_eq!(c.settings.max_num_seqs, seqs, "{name}");
        assert_eq!(c.origin, ConfigOrigin::NamedGridPoint, "{name}");
    };
    check("chunked_only_safe", 0.85, true, false, None);
    check("safe_conservative", 0.85, false, false, None);
    check("optimized_balanced", 0.90, true, true, None);
    check("aggressive_cache", 0.95, true, true, Some(48));

    // Every (gmu, chunked, prefix) combination appears exactly once.
    let mut combos: Vec<String> = plan
        .configs
        .iter()
        .map(|c| {
            format!(
                "{:?}/{:?}/{:?}",
                c.settings.gpu_memory_utilization,
                c.settings.enable_chunked_prefill,
                c.settings.enable_prefix_caching
            )
        })
        .collect();
    combos.sort();
    combos.dedup();
    assert_eq!(combos.len(), 12);

    // The rest get readable names from their axis values.
    let grid_names: Vec<&str> = plan
        .configs
        .iter()
        .filter(|c| c.origin == ConfigOrigin::Grid)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(grid_names.len(), 8);
    assert!(
        grid_names.contains(&"gmu0.90_chunked-on_prefix-off"),
        "{grid_names:?}"
    );
    assert!(
        grid_names.contains(&"gmu0.95_chunked-off_prefix-off"),
        "{grid_names:?}"
    );
    assert_eq!(plan.repeats, 2);
    assert_eq!(plan.ranking.max_request_error_rate, 0.01);
    assert_eq!(plan.ranking.max_stability_degradation, 0.20);
    // The study's deployment serves concurrent agents: the pressured
    // workload names the champion, within ±5 %.
    assert_eq!(
        plan.ranking.champion_criterion,
        grid_plan::ChampionCriterion::KvCachePressure
    );
    assert_eq!(plan.ranking.equivalence_margin.get(), 0.05);
}

#[test]
fn flags_use_vllm_spellings() {
    let plan = parse_plan(SHIPPED).unwrap();
    let aggressive = plan
        .configs
        .iter()
        .find(|c| c.name == "aggressive_cache")
        .unwrap();
    let tokens: Vec<String> = aggressive
        .flags()
        .iter()
        .flat_map(FlagSetting::tokens)
        .collect();
    assert_eq!(
        tokens,
        [
            "--gpu-memory-utilization",
            "0.95",
            "--enable-chunked-prefill",
            "--enable-prefix-caching",
            "--max-num-seqs",
            "48"
        ]
    );
    let safe = plan
        .configs
        .iter()
        .find(|c| c.name == "safe_conservative")
        .unwrap();
    let tokens: Vec<String> = safe.flags().iter().flat_map(FlagSetting::tokens).collect();
    assert_eq!(
        tokens,
        [
            "--gpu-memory-utilization",
            "0.85",
            "--no-enable-chunked-prefill",
            "--no-enable-prefix-caching"
        ]
    );
}

#[test]
fn absent_axes_means_the_study_grid_and_empty_axes_means_named_only() {
    let plan = parse_plan(&crate::plan_text("")).unwrap();
    assert_eq!(plan.configs.len(), 12);
    let plan = parse_plan(&crate::plan_text(
        r#""axes": {}, "named_configs": [{"name": "solo", "settings": {"max_num_seqs": 8}}]"#,
    ))
    .unwrap();
    assert_eq!(plan.configs.len(), 1);
    assert_eq!(plan.configs[0].origin, ConfigOrigin::Named);
}

#[test]
fn exclusions_drop_grid_points_and_defaults_apply_everywhere() {
    let plan = parse_plan(&crate::plan_text(
        r#""defaults": {"max_model_len": 8192, "extra_args": {"--enforce_eager": true}},
           "exclude": [{"when": {"gpu_memory_utilization": 0.95, "enable_chunked_prefill": false},
                        "reason": "chunked off needs max_num_batched_tokens >= max_model_len"},
                       {"when": {"max_num_seqs": 3}}]"#,
    ))
    .unwrap();
    assert_eq!(plan.configs.len(), 10);
    assert_eq!(plan.excluded.len(), 2);
    assert!(plan.excluded.iter().all(|e| e.rule == "exclude[0]"));
    assert!(
        plan.configs
            .iter()
            .all(|c| c.settings.max_model_len == Some(8192))
    );
    let tokens: Vec<String> = plan.configs[0]
        .flags()
        .iter()
        .flat_map(FlagSetting::tokens)
        .collect();
    assert!(
        tokens.contains(&"--enforce-eager".to_string()),
        "{tokens:?}"
    );
    assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
    assert!(plan.warnings[0].contains("exclude[1]"));
}

#[test]
fn an_unmatched_named_config_is_added_after_the_grid() {
    let plan = parse_plan(&crate::plan_text(
        r#""named_configs": [{"name": "fp8", "settings": {"gpu_memory_utilization": 0.9, "kv_cache_dtype": "FP8"}}]"#,
    ))
    .unwrap();
    assert_eq!(plan.configs.len(), 13);
    let last = plan.configs.last().unwrap();
    assert_eq!(last.name, "fp8");
    assert_eq!(last.origin, ConfigOrigin::Named);
    assert_eq!(last.settings.kv_cache_dtype.as_deref(), Some("fp8"));
}

#[test]
fn the_plans_gpu_slots_are_the_words_gpu_slots_takes() {
    let slots = |extra: &str| {
        parse_plan(&crate::plan_text(extra))
            .map(|p| p.slots)
            .map_err(|e| crate::chain(&e).contains("slots"))
    };
    let words = |w: &[&str]| Ok(w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    grid_core::testing::check(
        &[
            ("absent: one slot", "", words(&[])),
            ("auto", r#""slots": "auto""#, words(&["auto"])),
            (
                "one string",
                r#""slots": "0,1 2,3""#,
                words(&["0,1", "2,3"]),
            ),
            (
                "a list",
                r#""slots": ["0,1", "2,3"]"#,
                words(&["0,1", "2,3"]),
            ),
            ("not words: refused at `slots`", r#""slots": 4"#, Err(true)),
        ],
        |extra: &&str| slots(extra),
    );
}
