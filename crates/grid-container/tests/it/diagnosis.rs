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
