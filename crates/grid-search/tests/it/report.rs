use grid_search::rank::rank;
use grid_search::report::{SIMULATED_BANNER, acceleration_svg, render_markdown, report_json};

use crate::fixtures::*;

#[test]
fn report_json_has_the_promised_shape() {
    let plan = plan("");
    let r = results(vec![
        completed(&plan, 0, vec![good(2.0, 0.1)]),
        launch_failed(&plan, 1, "free_memory_below_utilization", true),
    ]);
    let manifest = manifest(&plan, "run");
    let ranking = rank(&plan, &r);
    let json = serde_json::to_value(report_json(&manifest, &ranking)).unwrap();
    assert_eq!(json["champion"]["name"], plan.configs[0].name);
    assert_eq!(json["champion"]["id"], plan.configs[0].id.0);
    let configs = json["configs"].as_array().unwrap();
    assert_eq!(configs.len(), 12);
    assert_eq!(configs[0]["status"], "valid");
    assert_eq!(configs[0]["kv_cache_acceleration"], 2.0);
    assert!(configs[0].get("reason").is_none());
    let failed = configs
        .iter()
        .find(|c| c["id"] == plan.configs[1].id.0)
        .unwrap();
    assert_eq!(failed["status"], "rejected");
    assert!(failed["kv_cache_acceleration"].is_null());
    assert_eq!(failed["failure_class"], "free_memory_below_utilization");
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .contains("server did not start")
    );
    assert!(configs.iter().any(|c| c["status"] == "failed"));

    let md = render_markdown(&manifest, &r, &ranking);
    assert!(md.lines().take(3).any(|l| l.contains(SIMULATED_BANNER)));
    assert!(
        md.contains("ERROR something"),
        "log excerpt of the rejected config"
    );
    let svg = acceleration_svg(&ranking, true);
    assert!(svg.starts_with("<svg") && svg.contains("SIMULATED"));
    // One error bar (three lines in a group) per measured config.
    assert_eq!(svg.matches("<g stroke=").count(), 1);

    // No valid config: champion is null.
    let r = results(vec![launch_failed(&plan, 1, "gpu_out_of_memory", true)]);
    let json = serde_json::to_value(report_json(&manifest, &rank(&plan, &r))).unwrap();
    assert!(json["champion"].is_null());
}
