use grid_plan::parse_plan;

/// Parse `extra` inside a minimal plan and expect an error at `path` whose
/// message contains every fragment.
pub fn check(extra: &str, path: &str, fragments: &[&str]) {
    let text = crate::plan_text(extra);
    let err = match parse_plan(&text) {
        Ok(plan) => panic!(
            "expected an error at {path} for {extra}, got {} configs",
            plan.configs.len()
        ),
        Err(err) => err,
    };
    let message = crate::chain(&err);
    assert_eq!(err.path(), path, "{extra}: {message}");
    for fragment in fragments {
        assert!(
            message.contains(fragment),
            "{extra}: {message:?} lacks {fragment:?}"
        );
    }
}

#[test]
fn bad_plans_name_the_path_and_the_fix() {
    let cases: &[(&str, &str, &[&str])] = &[
        (r#""axez": {}"#, "axez", &["unknown field `axez`", "axes"]),
        (
            r#""axes": {"gpu_mem": [0.9]}"#,
            "axes.gpu_mem",
            &["unknown field `gpu_mem`", "gpu_memory_utilization"],
        ),
        (
            r#""axes": {"gpu_memory_utilization": [0.9, 1.5]}"#,
            "axes.gpu_memory_utilization[1]",
            &["outside (0, 1]", "at most 1"],
        ),
        (
            r#""axes": {"gpu_memory_utilization": [0]}"#,
            "axes.gpu_memory_utilization[0]",
            &["outside (0, 1]"],
        ),
        (
            r#""axes": {"gpu_memory_utilization": [0.9, 0.90]}"#,
            "axes.gpu_memory_utilization[1]",
            &["appears twice"],
        ),
        (
            r#""axes": {"enable_prefix_caching": []}"#,
            "axes.enable_prefix_caching",
            &["no values"],
        ),
        (
            r#""named_configs": [{"name": "a", "settings": {"gpu_memory_utilization": -0.1}}]"#,
            "named_configs[0].settings.gpu_memory_utilization",
            &["outside (0, 1]"],
        ),
        (
            r#""named_configs": [{"name": "a", "settings": {"max_num_seqs": 4}}, {"name": "a", "settings": {"max_num_seqs": 5}}]"#,
            "named_configs[1].name",
            &["also used by named_configs[0]", "its own name"],
        ),
        (
            r#""named_configs": [{"name": "a", "settings": {"max_num_seqs": 4}}, {"name": "b", "settings": {"max_num_seqs": 4}}]"#,
            "named_configs[1].name",
            &["same effective settings", "`a` and `b`"],
        ),
        (
            r#""named_configs": [{"name": "gmu0.85_chunked-on_prefix-on", "settings": {"max_num_seqs": 4}}]"#,
            "named_configs[0].name",
            &["used by two configs", "rename"],
        ),
        (
            r#""named_configs": [{"name": "../etc", "settings": {}}]"#,
            "named_configs[0].name",
            &["directory name"],
        ),
        (
            r#""named_configs": [{"name": "a", "settings": {"max_num_seq": 4}}]"#,
            "named_configs[0].settings.max_num_seq",
            &["unknown field `max_num_seq`", "max_num_seqs"],
        ),
        (
            r#""named_configs": [{"name": "a", "settings": {"extra_args": {"--gpu-memory-utilization": "0.5"}}}]"#,
            "named_configs[0].settings.extra_args.--gpu-memory-utilization",
            &["typed setting", "gpu_memory_utilization"],
        ),
        (
            r#""named_configs": [{"name": "a", "settings": {"extra_args": {"no-enforce-eager": true}}}]"#,
            "named_configs[0].settings.extra_args.no-enforce-eager",
            &["\"enforce-eager\": false"],
        ),
        (
            r#""named_configs": [{"name": "a", "settings": {"extra_args": {"port": 9}}}]"#,
            "named_configs[0].settings.extra_args.port",
            &["profile"],
        ),
        (
            r#""named_configs": [{"name": "a", "settings": {"extra_args": {"swap-space": null}}}]"#,
            "named_configs[0].settings.extra_args.swap-space",
            &["not a flag value"],
        ),
        (
            r#""named_configs": [{"name": "a", "settings": {"kv_cache_dtype": "fp 8"}}]"#,
            "named_configs[0].settings.kv_cache_dtype",
            &["fp8_e4m3"],
        ),
        (r#""axes": {}"#, "", &["no configurations", "named_configs"]),
        (
            r#""exclude": [{"when": {"max_num_seqs": 1}}, {"when": {"enable_prefix_caching": true}}, {"when": {"enable_prefix_caching": false}}]"#,
            "exclude",
            &["all 12 grid points are excluded"],
        ),
        (
            r#""exclude": [{"when": {}}]"#,
            "exclude[0].when",
            &["sets nothing"],
        ),
        (r#""repeats": 0"#, "repeats", &["from 1 to 100"]),
        (
            r#""ranking": {"max_request_error_rate": 5}"#,
            "ranking.max_request_error_rate",
            &["fraction between 0 and 1"],
        ),
        (
            r#""ranking": {"gate": 1}"#,
            "ranking.gate",
            &["unknown field `gate`"],
        ),
        (
            r#""ranking": {"equivalence_margin": 0}"#,
            "ranking.equivalence_margin",
            &[
                "0 is outside (0, 0.5]",
                "give a fraction above 0 and at most 0.5",
                "±5 %",
            ],
        ),
        (
            r#""ranking": {"equivalence_margin": 0.6}"#,
            "ranking.equivalence_margin",
            &["0.6 is outside (0, 0.5]"],
        ),
        (
            r#""ranking": {"equivalence_margin": -0.05}"#,
            "ranking.equivalence_margin",
            &["out of range"],
        ),
        (
            r#""ranking": {"equivalence_margin": "5%"}"#,
            "ranking.equivalence_margin",
            &["invalid type: string"],
        ),
        (
            r#""ranking": {"champion_criterion": "pressure"}"#,
            "ranking.champion_criterion",
            &[
                "unknown variant `pressure`",
                "`kv_cache`",
                "`kv_cache_pressure`",
            ],
        ),
        (
            r#""limits": {"health_timeout_s": 0}"#,
            "limits.health_timeout_s",
            &["positive"],
        ),
        (r#""battery": [1]"#, "battery", &["not an object"]),
        (r#""repeats": "two""#, "repeats", &["invalid type"]),
    ];
    for (extra, path, fragments) in cases {
        check(extra, path, fragments);
    }
}

#[test]
fn wrong_version_and_missing_profile_are_refused() {
    let err = parse_plan(r#"{"format_version": 2, "profile": "p.yml"}"#).unwrap_err();
    assert_eq!(err.path(), "format_version");
    assert!(err.to_string().contains("reads format_version 1"), "{err}");
    let err = parse_plan(r#"{"format_version": 1}"#).unwrap_err();
    assert!(
        crate::chain(&err).contains("missing field `profile`"),
        "{err}"
    );
    let err = parse_plan(r#"{"format_version": 1, "profile": " "}"#).unwrap_err();
    assert_eq!(err.path(), "profile");
    let err = parse_plan("{not json").unwrap_err();
    assert!(err.to_string().contains("not valid JSON"), "{err}");
}

#[test]
fn ranking_settings_default_and_read_back_from_a_manifest() {
    use grid_plan::{ChampionCriterion, EquivalenceMargin, RankingGates};
    let cases: &[(&str, &str, (f64, ChampionCriterion))] = &[
        ("absent", "", (0.05, ChampionCriterion::KvCache)),
        (
            "criterion only",
            r#""ranking": {"champion_criterion": "kv_cache_pressure"}"#,
            (0.05, ChampionCriterion::KvCachePressure),
        ),
        (
            "the bound itself",
            r#""ranking": {"equivalence_margin": 0.5, "champion_criterion": "kv_cache"}"#,
            (0.5, ChampionCriterion::KvCache),
        ),
        (
            "a small margin",
            r#""ranking": {"equivalence_margin": 0.001}"#,
            (0.001, ChampionCriterion::KvCache),
        ),
    ];
    grid_core::testing::check(
        &cases
            .iter()
            .map(|(name, extra, expected)| (*name, *extra, *expected))
            .collect::<Vec<_>>(),
        |extra| {
            let plan = parse_plan(&crate::plan_text(extra)).unwrap();
            // What the manifest records reads back the same.
            let json = serde_json::to_value(&plan.ranking).unwrap();
            let back: RankingGates = serde_json::from_value(json).unwrap();
            assert_eq!(back, plan.ranking);
            (
                plan.ranking.equivalence_margin.get(),
                plan.ranking.champion_criterion,
            )
        },
    );
    // A manifest written before the two keys existed reads with the
    // defaults; one with a margin out of range is refused.
    let old: RankingGates = serde_json::from_str(r#"{"max_request_error_rate": 0.01}"#).unwrap();
    assert_eq!(old.equivalence_margin, EquivalenceMargin::DEFAULT);
    let err = serde_json::from_str::<RankingGates>(r#"{"equivalence_margin": 2}"#).unwrap_err();
    assert!(
        err.to_string().contains("ranking.equivalence_margin"),
        "{err}"
    );
}
