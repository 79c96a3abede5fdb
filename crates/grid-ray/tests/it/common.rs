//! Helpers shared by the test modules.

use std::path::PathBuf;

use serde_json::Value;

pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/ray-2.60.0")
}

/// A recorded reply: its HTTP status and its body (JSON, or a JSON string
/// for a text body).
pub fn fixture(name: &str) -> (u16, Value) {
    let path = fixture_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let value: Value = serde_json::from_str(&text).expect("a fixture is JSON");
    let status = value["status"].as_u64().expect("a status") as u16;
    (status, value["body"].clone())
}

pub fn job(name: &str) -> grid_ray::JobDetails {
    let (status, body) = fixture(name);
    assert_eq!(status, 200, "{name}");
    serde_json::from_value(body).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub fn logs(name: &str) -> String {
    let (_, body) = fixture(name);
    body["logs"].as_str().expect("a logs reply").to_string()
}
