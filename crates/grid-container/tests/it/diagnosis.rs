//! Diagnosis from real vLLM log texts (tests/data/startup-failures).

use grid_container::{ExitInfo, FailureClass, diagnose};

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

#[track_caller]
fn check(name: &str, log: &str, exit: Option<ExitInfo>, expected: FailureClass) {
    let failure = diagnose(exit.as_ref(), &lines(log));
    assert_eq!(failure.class, expected, "{name}: {}", failure.message);
    assert_eq!(
        failure.log_tail,
        lines(log),
        "{name}: the failure carries the log tail"
    );
    assert_eq!(failure.transient, expected.is_transient(), "{name}");
}

fn exited(code: i64) -> Option<ExitInfo> {
    Some(ExitInfo {
        code: Some(code),
        oom_killed: false,
    })
}

#[test]
fn real_vllm_startup_failures_are_classified() {
    let cases: &[(&str, &str, Option<ExitInfo>, FailureClass)] = &[
        (
            "free memory",
            include_str!("../data/startup-failures/free-memory.log"),
            exited(1),
            FailureClass::FreeMemoryBelowUtilization,
        ),
        (
            "kv cache v1",
            include_str!("../data/startup-failures/kv-cache-v1.log"),
            exited(1),
            FailureClass::KvCacheTooSmall,
        ),
        (
            "kv cache v0",
            include_str!("../data/startup-failures/kv-cache-v0.log"),
            exited(1),
            FailureClass::KvCacheTooSmall,
        ),
        (
            "no cache blocks",
            include_str!("../data/startup-failures/no-cache-blocks.log"),
            exited(1),
            FailureClass::KvCacheTooSmall,
        ),
        (
            "cuda oom",
            include_str!("../data/startup-failures/cuda-oom.log"),
            exited(1),
            FailureClass::GpuOutOfMemory,
        ),
        (
            "unrecognized",
            include_str!("../data/startup-failures/unrecognized.log"),
            exited(2),
            FailureClass::InvalidArgument,
        ),
        (
            "invalid choice",
            include_str!("../data/startup-failures/invalid-choice.log"),
            exited(2),
            FailureClass::InvalidArgument,
        ),
        (
            "scheduler validation",
            include_str!("../data/startup-failures/scheduler-validation.log"),
            exited(1),
            FailureClass::InvalidArgument,
        ),
        (
            "port in use",
            include_str!("../data/startup-failures/port-in-use.log"),
            exited(1),
            FailureClass::PortInUse,
        ),
        (
            "generic crash",
            include_str!("../data/startup-failures/generic-crash.log"),
            exited(1),
            FailureClass::ExitedWithCode(1),
        ),
        (
            "usage and code 2",
            "usage: vllm serve [model_tag] [options]\nsomething odd\n",
            exited(2),
            FailureClass::InvalidArgument,
        ),
        (
            "host oom killer",
            "loading weights\n",
            Some(ExitInfo {
                code: Some(137),
                oom_killed: true,
            }),
            FailureClass::HostOutOfMemory,
        ),
        (
            "killed",
            "loading weights\n",
            exited(137),
            FailureClass::ExitedWithCode(137),
        ),
        (
            "no exit: timeout",
            "still loading\n",
            None,
            FailureClass::HealthTimeout,
        ),
    ];
    for (name, log, exit, expected) in cases {
        check(name, log, exit.clone(), expected.clone());
    }
}

#[test]
fn a_pydantic_validation_error_quotes_its_reason() {
    // The informative line of a config validation error is the one after
    // "1 validation error for SchedulerConfig": the message must carry it.
    let failure = diagnose(
        exited(1).as_ref(),
        &lines(include_str!(
            "../data/startup-failures/scheduler-validation.log"
        )),
    );
    assert_eq!(failure.class, FailureClass::InvalidArgument);
    assert!(
        failure
            .message
            .contains("max_num_batched_tokens (2048) is smaller than max_model_len (131072)"),
        "{}",
        failure.message
    );
}

#[test]
fn failure_classes_serialise_in_snake_case() {
    let cases = [
        (FailureClass::GpuOutOfMemory, "\"gpu_out_of_memory\""),
        (FailureClass::KvCacheTooSmall, "\"kv_cache_too_small\""),
        (FailureClass::HealthTimeout, "\"health_timeout\""),
        (FailureClass::ExitedWithCode(3), "{\"exited_with_code\":3}"),
    ];
    for (class, json) in cases {
        assert_eq!(serde_json::to_string(&class).expect("serialises"), json);
        assert_eq!(
            serde_json::from_str::<FailureClass>(json).expect("parses"),
            class
        );
    }
    assert_eq!(
        FailureClass::ExitedWithCode(3).to_string(),
        "exited with code 3"
    );
}

/// Whole logs of real failed starts of vLLM 0.32 (CPU build), whose root
/// cause sits far above the end (see tests/data/startup-failures/README.md).
fn recorded(name: &str) -> &'static str {
    match name {
        "startup_kv_too_small.log" => {
            include_str!("../data/startup-failures/vllm-0.32.0-cpu/startup_kv_too_small.log")
        }
        "startup_kv_too_small_4096.log" => {
            include_str!("../data/startup-failures/vllm-0.32.0-cpu/startup_kv_too_small_4096.log")
        }
        "startup_gmu_above_available.log" => {
            include_str!("../data/startup-failures/vllm-0.32.0-cpu/startup_gmu_above_available.log")
        }
        "startup_chunked_off_small_batch.log" => include_str!(
            "../data/startup-failures/vllm-0.32.0-cpu/startup_chunked_off_small_batch.log"
        ),
        "startup_missing_model.log" => {
            include_str!("../data/startup-failures/vllm-0.32.0-cpu/startup_missing_model.log")
        }
        "startup_missing_model_repo.log" => {
            include_str!("../data/startup-failures/vllm-0.32.0-cpu/startup_missing_model_repo.log")
        }
        "startup_missing_model_config.log" => include_str!(
            "../data/startup-failures/vllm-0.32.0-cpu/startup_missing_model_config.log"
        ),
        "startup_port_in_use.log" => {
            include_str!("../data/startup-failures/vllm-0.32.0-cpu/startup_port_in_use.log")
        }
        "startup_bad_value.log" => {
            include_str!("../data/startup-failures/vllm-0.32.0-cpu/startup_bad_value.log")
        }
        "startup_unknown_flag.log" => {
            include_str!("../data/startup-failures/vllm-0.32.0-cpu/startup_unknown_flag.log")
        }
        other => panic!("no recorded log {other}"),
    }
}

/// Issue 9 defect 6: each recorded start is classified by its root cause,
/// whose text the message quotes, however far above the end it is.
#[test]
fn real_vllm_032_logs_are_classified_by_their_root_cause() {
    // (file, exit code, evidence the message quotes) -> (class, quoted)
    type Case<'a> = (&'a str, (&'a str, i64, &'a str), (FailureClass, bool));
    let cases: &[Case] = &[
        (
            "kv cache too small, 62 lines above the end",
            (
                "startup_kv_too_small.log",
                1,
                "ValueError: To serve at least one request with the model's max seq len (32768), (0.03 GiB KV cache is needed",
            ),
            (FailureClass::KvCacheTooSmall, true),
        ),
        (
            "kv cache too small at 4096",
            ("startup_kv_too_small_4096.log", 1, "max seq len (4096)"),
            (FailureClass::KvCacheTooSmall, true),
        ),
        (
            "cpu memory utilization above what is free, 120 lines up, past decoys",
            (
                "startup_gmu_above_available.log",
                1,
                "ValueError: Available memory on node 0 (20.94/23.54 GiB) on startup is less than desired CPU memory utilization (0.99",
            ),
            (FailureClass::FreeMemoryBelowUtilization, true),
        ),
        (
            "chunked prefill off with a small batch: the reason is the next line",
            (
                "startup_chunked_off_small_batch.log",
                1,
                "max_num_batched_tokens (2048) is smaller than max_model_len (4096)",
            ),
            (FailureClass::InvalidArgument, true),
        ),
        (
            "a model path that does not exist",
            (
                "startup_missing_model.log",
                1,
                "Repo id must be in the form",
            ),
            (FailureClass::MissingModel, true),
        ),
        (
            "a repo not in the cache, downloads off",
            (
                "startup_missing_model_repo.log",
                1,
                "Cannot find an appropriate cached snapshot folder",
            ),
            (FailureClass::MissingModel, true),
        ),
        (
            "a directory without a model",
            (
                "startup_missing_model_config.log",
                1,
                "Invalid repository ID or local directory specified",
            ),
            (FailureClass::MissingModel, true),
        ),
        (
            "the port taken",
            (
                "startup_port_in_use.log",
                1,
                "OSError: [Errno 98] Address already in use",
            ),
            (FailureClass::PortInUse, true),
        ),
        (
            "a bad value",
            (
                "startup_bad_value.log",
                2,
                "argument --max-num-seqs: invalid int value: 'abc'",
            ),
            (FailureClass::InvalidArgument, true),
        ),
        (
            "an unknown flag",
            (
                "startup_unknown_flag.log",
                2,
                "unrecognized arguments: --no-such-flag",
            ),
            (FailureClass::InvalidArgument, true),
        ),
    ];
    grid_core::testing::check(cases, |(file, code, evidence)| {
        let log = lines(recorded(file));
        let failure = diagnose(exited(*code).as_ref(), &log);
        // The tail stays the last lines, whatever the evidence was.
        let tail_start = log.len().saturating_sub(grid_container::TAIL_LINES);
        assert_eq!(failure.log_tail, log[tail_start..], "{file}: the log tail");
        (failure.class.clone(), failure.message.contains(evidence))
    });
}

/// What does not blame the configuration: every class says whom it blames,
/// and only config faults are verdicts (issue 9 defect 3).
#[test]
fn failure_classes_say_whom_they_blame() {
    use grid_container::Blame;
    let cases: &[(&str, FailureClass, Blame)] = &[
        ("kv cache", FailureClass::KvCacheTooSmall, Blame::Config),
        (
            "invalid argument",
            FailureClass::InvalidArgument,
            Blame::Config,
        ),
        ("gpu oom", FailureClass::GpuOutOfMemory, Blame::Config),
        ("host oom", FailureClass::HostOutOfMemory, Blame::Config),
        (
            "free memory",
            FailureClass::FreeMemoryBelowUtilization,
            Blame::Config,
        ),
        ("crash", FailureClass::ExitedWithCode(1), Blame::Config),
        ("timeout", FailureClass::HealthTimeout, Blame::Config),
        ("port taken", FailureClass::PortInUse, Blame::Environment),
        ("disk full", FailureClass::DiskFull, Blame::Environment),
        (
            "daemon gone",
            FailureClass::DaemonUnavailable,
            Blame::Environment,
        ),
        (
            "engine refusal",
            FailureClass::BackendError,
            Blame::Environment,
        ),
        (
            "leftover in the way",
            FailureClass::ForeignContainer,
            Blame::Environment,
        ),
        ("no image", FailureClass::MissingImage, Blame::Environment),
        (
            "no program",
            FailureClass::MissingProgram,
            Blame::Environment,
        ),
        ("no model", FailureClass::MissingModel, Blame::Environment),
        ("no secret", FailureClass::MissingSecret, Blame::Setup),
        ("bad profile", FailureClass::InvalidProfile, Blame::Setup),
        ("cancelled", FailureClass::Cancelled, Blame::Cancelled),
    ];
    grid_core::testing::check(cases, |class| class.blame());
    // The names of the new classes, as results files store them.
    let names: &[(&str, FailureClass, String)] = &[
        (
            "disk full",
            FailureClass::DiskFull,
            "\"disk_full\"".to_string(),
        ),
        (
            "missing model",
            FailureClass::MissingModel,
            "\"missing_model\"".to_string(),
        ),
    ];
    grid_core::testing::check(names, |class| {
        serde_json::to_string(class).expect("serialises")
    });
}

/// The CPU build's KV allocation check (vLLM 0.32 `cpu_worker.py`, quoted
/// from the source: it needs more RAM than this machine can give to
/// record): the same class grid-predict predicts for it.
#[test]
fn the_cpu_kv_allocation_check_is_free_memory_below_utilization() {
    let log = "INFO 12-01 10:00:00 [cpu_worker.py:260] Explicitly set (64.0/23.54) GiB for KV cache on node 0.\n\
(EngineCore pid=1) ERROR 12-01 10:00:01 [core.py:1040] ValueError: Available memory on node 0 (20.94/23.54 GiB) on kv cache allocation is less than requested memory for kv (64.0 GiB). Decrease --kv-cache-memory-bytes, VLLM_CPU_KVCACHE_SPACE, or reduce CPU memory used by other processes.\n\
RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}";
    check(
        "cpu kv allocation",
        log,
        exited(1),
        FailureClass::FreeMemoryBelowUtilization,
    );
}
