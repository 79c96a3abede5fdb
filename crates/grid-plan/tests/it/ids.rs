use grid_plan::{ConfigId, parse_plan};

fn id_of(settings: &str) -> ConfigId {
    let text = crate::plan_text(&format!(
        r#""axes": {{}}, "named_configs": [{{"name": "x", "settings": {settings}}}]"#
    ));
    parse_plan(&text)
        .unwrap_or_else(|e| panic!("{settings}: {e}"))
        .configs[0]
        .id
        .clone()
}

#[test]
fn ids_do_not_depend_on_order_or_spelling() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"gpu_memory_utilization": 0.9, "enable_prefix_caching": true}"#,
            r#"{"enable_prefix_caching": true, "gpu_memory_utilization": 0.90}"#,
        ),
        (
            r#"{"gpu_memory_utilization": 0.85, "kv_cache_dtype": "fp8"}"#,
            r#"{"kv_cache_dtype": "FP8", "gpu_memory_utilization": 0.850}"#,
        ),
        (
            r#"{"extra_args": {"enforce-eager": true, "swap-space": 4}}"#,
            r#"{"extra_args": {"--swap_space": "4", "--Enforce-Eager": true}}"#,
        ),
    ];
    for (a, b) in cases {
        assert_eq!(id_of(a), id_of(b), "{a} vs {b}");
    }
}

#[test]
fn ids_differ_when_the_server_is_told_something_different() {
    let distinct = [
        r#"{"gpu_memory_utilization": 0.9}"#,
        r#"{"gpu_memory_utilization": 0.95}"#,
        r#"{"gpu_memory_utilization": 0.9, "enable_prefix_caching": true}"#,
        r#"{"gpu_memory_utilization": 0.9, "enable_prefix_caching": false}"#,
        r#"{"gpu_memory_utilization": 0.9, "max_num_seqs": 48}"#,
        r#"{"gpu_memory_utilization": 0.9, "max_model_len": 48}"#,
        r#"{"gpu_memory_utilization": 0.9, "extra_args": {"enforce-eager": true}}"#,
        r#"{"gpu_memory_utilization": 0.9, "extra_args": {"enforce-eager": false}}"#,
    ];
    let ids: Vec<ConfigId> = distinct.iter().map(|s| id_of(s)).collect();
    for (i, a) in ids.iter().enumerate() {
        for (j, b) in ids.iter().enumerate() {
            if i != j {
                assert_ne!(a, b, "{} vs {}", distinct[i], distinct[j]);
            }
        }
    }
}

#[test]
fn ids_are_stable_across_releases() {
    // The documented formula, computed by hand: a change here breaks resume
    // and reproduce of every earlier run, so it must be deliberate.
    let canonical = "vllm-grid-config-v1\nenable-chunked-prefill=true\nenable-prefix-caching=true\ngpu-memory-utilization=0.95\nmax-num-seqs=48\n";
    let expected = format!("{:016x}", grid_plan::fnv1a64(canonical.as_bytes()));
    let id = id_of(
        r#"{"gpu_memory_utilization": 0.95, "enable_chunked_prefill": true, "enable_prefix_caching": true, "max_num_seqs": 48}"#,
    );
    assert_eq!(id.0, expected);
    // FNV-1a 64 reference vectors.
    assert_eq!(grid_plan::fnv1a64(b""), 0xcbf29ce484222325);
    assert_eq!(grid_plan::fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
    assert_eq!(grid_plan::fnv1a64(b"foobar"), 0x85944171f73967e8);
}

#[test]
fn names_do_not_change_ids_and_plan_diff_sees_renames_and_additions() {
    let a = grid_plan::parse_plan(&crate::plan_text("")).unwrap();
    let b = grid_plan::parse_plan(&crate::plan_text(
        r#""named_configs": [{"name": "renamed", "settings": {"gpu_memory_utilization": 0.85, "enable_chunked_prefill": true, "enable_prefix_caching": true}},
                             {"name": "extra", "settings": {"max_num_seqs": 7}}], "repeats": 2"#,
    ))
    .unwrap();
    assert_eq!(
        a.configs.iter().map(|c| &c.id).collect::<Vec<_>>(),
        b.configs[..12].iter().map(|c| &c.id).collect::<Vec<_>>()
    );
    let diff = grid_plan::diff_plans(&a, &b);
    let text = diff.changes.join("\n");
    assert_eq!(diff.changes.len(), 3, "{text}");
    assert!(
        text.contains("renamed from `gmu0.85_chunked-on_prefix-on` to `renamed`"),
        "{text}"
    );
    assert!(
        text.contains("`extra`") && text.contains("was added"),
        "{text}"
    );
    assert!(text.contains("repeats changed: 1 -> 2"), "{text}");
    assert!(grid_plan::diff_plans(&a, &a).is_empty());
}
