//! The nvidia-smi parser on real recorded output (sources in
//! tests/data/README.md), and the profile built from it.

use std::time::Duration;

use grid_bench::gpu::{
    GpuAlertThresholds, GpuProfile, GpuReading, parse_query_output, parse_with_header,
};

use crate::data;

#[test]
fn two_gpus_with_header_and_units() {
    let readings = parse_with_header(&data("nvidia_smi_two_gpus_header_units.csv")).expect("parse");
    assert_eq!(
        readings,
        vec![
            GpuReading {
                index: None,
                name: Some("GeForce GTX 1080 Ti".into()),
                utilization_percent: Some(36.0),
                memory_used_mib: Some(2856.0),
                memory_total_mib: Some(11175.0),
                temperature_c: Some(60.0),
                power_draw_w: Some(106.56),
            },
            GpuReading {
                index: None,
                name: Some("GeForce GTX 1060 6GB".into()),
                utilization_percent: Some(0.0),
                memory_used_mib: Some(4.0),
                memory_total_mib: Some(6078.0),
                temperature_c: Some(49.0),
                power_draw_w: Some(5.68),
            },
        ]
    );
}

#[test]
fn noheader_nounits_with_na_field() {
    let fields = "power.limit,power.min_limit,power.max_limit,memory.total,vbios_version,driver_version,name,gpu_uuid,power.draw,temperature.gpu,temperature.memory,clocks.current.graphics,clocks.sm,clocks.mem,utilization.gpu,utilization.memory,fan.speed,pcie.link.width.current,pstate";
    let fields: Vec<&str> = fields.split(',').collect();
    let readings =
        parse_query_output(&data("nvidia_smi_noheader_nounits_na.csv"), &fields).expect("parse");
    assert_eq!(readings.len(), 1);
    let gpu = &readings[0];
    assert_eq!(gpu.name.as_deref(), Some("GeForce RTX 2080"));
    assert_eq!(gpu.memory_total_mib, Some(7979.0));
    assert_eq!(gpu.power_draw_w, Some(176.98));
    assert_eq!(gpu.temperature_c, Some(45.0));
    assert_eq!(gpu.utilization_percent, Some(86.0));
    assert_eq!(
        gpu.memory_used_mib, None,
        "not queried, so unknown rather than zero"
    );
}

#[test]
fn not_supported_is_unknown_not_zero() {
    let readings = parse_query_output(&data("nvidia_smi_fan_not_supported.csv"), &["power.draw"])
        .expect("parse");
    assert_eq!(readings, vec![GpuReading::default()]);
}

#[test]
fn a_line_with_the_wrong_field_count_is_an_error_naming_the_line() {
    let error = parse_query_output("0, 50, 1000\n", &grid_bench::gpu::QUERY_FIELDS)
        .expect_err("wrong count");
    assert!(
        error
            .to_string()
            .contains("line 1 has 3 fields, the query asked for 6"),
        "{error}"
    );
    let error = parse_query_output(
        "0, 50, lots, 2000, 40, 100\n",
        &grid_bench::gpu::QUERY_FIELDS,
    )
    .expect_err("not a number");
    assert!(error.to_string().contains("memory.used"), "{error}");
}

#[test]
fn profile_from_recorded_readings_has_stats_and_alerts() {
    let round = parse_with_header(&data("nvidia_smi_two_gpus_header_units.csv")).expect("parse");
    let profile = GpuProfile::from_rounds(
        &[round.clone(), round],
        0,
        Duration::from_secs(1),
        GpuAlertThresholds {
            memory_fraction: 0.95,
            temperature_c: 55.0,
            min_mean_utilization_percent: 50.0,
        },
    );
    let GpuProfile::Sampled {
        gpus,
        alerts,
        vram_peak_mib,
        sample_rounds,
        ..
    } = &profile
    else {
        panic!("expected a sampled profile, got {profile:?}");
    };
    assert_eq!(*sample_rounds, 2);
    assert_eq!(gpus.len(), 2);
    assert_eq!(*vram_peak_mib, Some(2856.0));
    let messages: Vec<(u32, &str)> = alerts.iter().map(|a| (a.gpu, a.message.as_str())).collect();
    assert!(
        messages
            .iter()
            .any(|(gpu, m)| *gpu == 0 && m.contains("temperature reached 60")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|(gpu, m)| *gpu == 0 && m.contains("average utilisation 36")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|(gpu, m)| *gpu == 1 && m.contains("average utilisation 0")),
        "{messages:?}"
    );
    assert!(
        !messages.iter().any(|(_, m)| m.contains("memory")),
        "{messages:?}"
    );
}

#[tokio::test]
async fn missing_nvidia_smi_is_unavailable_with_no_numbers() {
    let stop = tokio_util::sync::CancellationToken::new();
    let profile = grid_bench::gpu::sample_until(
        "/nonexistent/nvidia-smi".into(),
        Duration::from_millis(10),
        GpuAlertThresholds {
            memory_fraction: 0.95,
            temperature_c: 85.0,
            min_mean_utilization_percent: 50.0,
        },
        stop,
    )
    .await;
    match profile {
        GpuProfile::Unavailable { reason } => assert!(
            reason.contains("cannot run /nonexistent/nvidia-smi"),
            "{reason}"
        ),
        other => panic!("expected unavailable, got {other:?}"),
    }
}
