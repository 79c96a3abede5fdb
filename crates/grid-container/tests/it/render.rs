//! Rendering a configuration's settings into the profile's command.

use std::collections::BTreeSet;

use grid_container::{load_profile, render_command};
use grid_plan::FlagSetting;

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

fn value(flag: &str, value: &str) -> FlagSetting {
    FlagSetting::Value {
        flag: flag.to_string(),
        value: value.to_string(),
    }
}

fn switch(flag: &str, enabled: bool) -> FlagSetting {
    FlagSetting::Switch {
        flag: flag.to_string(),
        enabled,
    }
}

#[track_caller]
fn check(name: &str, base: &str, settings: &[FlagSetting], expected: &str) {
    let rendered = render_command(&words(base), settings);
    assert_eq!(rendered, words(expected), "case {name}");
}

#[test]
fn replaces_and_inserts_flags_leaving_other_tokens_alone() {
    let cases: &[(&str, &str, Vec<FlagSetting>, &str)] = &[
        (
            "insert value",
            "--model m",
            vec![value("gpu-memory-utilization", "0.9")],
            "--model m --gpu-memory-utilization 0.9",
        ),
        (
            "replace spaced value in place",
            "--gpu-memory-utilization 0.5 --model m",
            vec![value("gpu-memory-utilization", "0.9")],
            "--gpu-memory-utilization 0.9 --model m",
        ),
        (
            "replace equals form keeping it",
            "--model m --gpu-memory-utilization=0.5 --port 8000",
            vec![value("gpu-memory-utilization", "0.85")],
            "--model m --gpu-memory-utilization=0.85 --port 8000",
        ),
        (
            "underscore spelling is the same flag",
            "--max_num_seqs 256 --model m",
            vec![value("max-num-seqs", "48")],
            "--max_num_seqs 48 --model m",
        ),
        (
            "duplicates removed so the old value cannot win",
            "--max-num-seqs 1 --model m --max-num-seqs=2",
            vec![value("max-num-seqs", "48")],
            "--max-num-seqs 48 --model m",
        ),
        (
            "switch on replaces its negation",
            "--model m --no-enable-prefix-caching --port 1",
            vec![switch("enable-prefix-caching", true)],
            "--model m --enable-prefix-caching --port 1",
        ),
        (
            "switch off replaces the positive",
            "--enable-chunked-prefill --model m",
            vec![switch("enable-chunked-prefill", false)],
            "--no-enable-chunked-prefill --model m",
        ),
        (
            "switch inserted",
            "--model m",
            vec![switch("enable-prefix-caching", false)],
            "--model m --no-enable-prefix-caching",
        ),
        (
            "a similar flag is not the flag",
            "--enable-prefix-caching-extra --model m",
            vec![switch("enable-prefix-caching", true)],
            "--enable-prefix-caching-extra --model m --enable-prefix-caching",
        ),
        (
            "variables stay unexpanded",
            "--api-key ${VLLM_MEDIUM_API_KEY} --model ${MODEL:-m}",
            vec![value("max-model-len", "8192")],
            "--api-key ${VLLM_MEDIUM_API_KEY} --model ${MODEL:-m} --max-model-len 8192",
        ),
        (
            "a value flag without its value gets one",
            "--gpu-memory-utilization --enforce-eager",
            vec![value("gpu-memory-utilization", "0.9")],
            "--gpu-memory-utilization 0.9 --enforce-eager",
        ),
        (
            "positional model and vllm serve prefix untouched",
            "vllm serve Qwen/Qwen3-32B-AWQ --port 8000",
            vec![
                value("port", "9000"),
                switch("enable-chunked-prefill", true),
            ],
            "vllm serve Qwen/Qwen3-32B-AWQ --port 9000 --enable-chunked-prefill",
        ),
        (
            "no settings, no change",
            "--model m --x y",
            vec![],
            "--model m --x y",
        ),
    ];
    for (name, base, settings, expected) in cases {
        check(name, base, settings, expected);
    }
}

/// Every `--flag` spelling `vllm serve --help=all` (vLLM 0.32.0) lists.
fn vllm_flags() -> BTreeSet<String> {
    let help = include_str!("../data/vllm_serve_help_all.txt");
    let mut flags = BTreeSet::new();
    for line in help.lines() {
        let trimmed = line.trim_start();
        if !trimmed.starts_with("--") {
            continue;
        }
        // `--a, --no-a VALUE  help` : the option list ends at two spaces.
        let options = trimmed.split("  ").next().unwrap_or("");
        for option in options.split(", ") {
            if let Some(flag) = option
                .split_whitespace()
                .next()
                .filter(|f| f.starts_with("--"))
            {
                flags.insert(flag.split('=').next().unwrap_or(flag).to_string());
            }
        }
    }
    flags
}

#[test]
fn the_studys_named_configs_render_as_vllm_serve_expects() {
    let profile = load_profile(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles/medium.yml"),
    )
    .expect("profiles/medium.yml loads")
    .profile;
    let base = profile.command.join(" ");
    let study: &[(&str, Vec<FlagSetting>, &str)] = &[
        (
            "chunked_only_safe",
            vec![
                value("gpu-memory-utilization", "0.85"),
                switch("enable-chunked-prefill", true),
                switch("enable-prefix-caching", false),
            ],
            "--gpu-memory-utilization 0.85 --enable-chunked-prefill --no-enable-prefix-caching",
        ),
        (
            "safe_conservative",
            vec![
                value("gpu-memory-utilization", "0.85"),
                switch("enable-chunked-prefill", false),
                switch("enable-prefix-caching", false),
            ],
            "--gpu-memory-utilization 0.85 --no-enable-chunked-prefill --no-enable-prefix-caching",
        ),
        (
            "optimized_balanced",
            vec![
                value("gpu-memory-utilization", "0.90"),
                switch("enable-chunked-prefill", true),
                switch("enable-prefix-caching", true),
            ],
            "--gpu-memory-utilization 0.90 --enable-chunked-prefill --enable-prefix-caching",
        ),
        (
            "aggressive_cache",
            vec![
                value("gpu-memory-utilization", "0.95"),
                switch("enable-chunked-prefill", true),
                switch("enable-prefix-caching", true),
                value("max-num-seqs", "48"),
            ],
            "--gpu-memory-utilization 0.95 --enable-chunked-prefill --enable-prefix-caching --max-num-seqs 48",
        ),
    ];
    let known = vllm_flags();
    assert!(
        known.contains("--no-enable-prefix-caching"),
        "the help fixture lists BooleanOptionalAction pairs"
    );
    for (name, settings, added) in study {
        check(name, &base, settings, &format!("{base} {added}"));
        // Flag for flag: every option token is one `vllm serve` knows, and
        // each setting appears exactly once.
        let rendered = render_command(&profile.command, settings);
        for token in rendered.iter().filter(|t| t.starts_with("--")) {
            let flag = token.split('=').next().unwrap_or(token);
            assert!(
                known.contains(flag),
                "{name}: `{flag}` is not a `vllm serve` flag"
            );
        }
        for flag in [
            "gpu-memory-utilization",
            "enable-chunked-prefill",
            "enable-prefix-caching",
        ] {
            let count = rendered
                .iter()
                .filter(|t| **t == format!("--{flag}") || **t == format!("--no-{flag}"))
                .count();
            assert_eq!(
                count, 1,
                "{name}: --{flag} must appear once in {rendered:?}"
            );
        }
        // The secret is not on the command line at all (issue 9: it is in
        // the environment, as a reference), and rendering adds none.
        assert!(
            !rendered
                .iter()
                .any(|t| t.contains("API_KEY") || t.starts_with("--api")),
            "{name}: {rendered:?}"
        );
    }
}
