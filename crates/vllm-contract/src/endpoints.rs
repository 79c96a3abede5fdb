//! The endpoints around generation: `/health` and `/metrics` answer
//! without a key, `/v1/*` answers vLLM's 401 body without one, and
//! `/v1/models` lists the served model.

use serde_json::json;

use crate::ContractError;
use crate::probe::{Probe, chat_body, parse, shape};

pub(crate) async fn health_and_metrics_need_no_key(p: &Probe<'_>) -> Result<(), ContractError> {
    const C: &str = "health_and_metrics_need_no_key";
    p.expect(C, "/health", None, false, 200).await?;
    p.expect(C, "/metrics", None, false, 200).await?;
    Ok(())
}

/// Without the key, a GET and a POST on `/v1/*` get exactly vLLM's 401 body.
pub(crate) async fn unauthorized_body(p: &Probe<'_>) -> Result<(), ContractError> {
    const C: &str = "unauthorized_body";
    let chat = chat_body(&p.target.model, "hi", 1, false);
    for (path, body) in [("/v1/models", None), ("/v1/chat/completions", Some(&chat))] {
        let v = parse(C, &p.expect(C, path, body, false, 401).await?)?;
        shape(C, v == json!({"error": "Unauthorized"}), || {
            format!("401 body of {path} is {v}")
        })?;
    }
    Ok(())
}

pub(crate) async fn models_list(p: &Probe<'_>) -> Result<(), ContractError> {
    const C: &str = "models_list";
    let v = parse(C, &p.expect(C, "/v1/models", None, true, 200).await?)?;
    shape(C, v["object"] == "list", || {
        format!("object is {}", v["object"])
    })?;
    let data = v["data"].as_array().cloned().unwrap_or_default();
    shape(
        C,
        data.iter()
            .any(|m| m["id"] == p.target.model.as_str() && m["object"] == "model"),
        || format!("{} is not listed: {v}", p.target.model),
    )?;
    shape(C, data.iter().all(|m| m["max_model_len"].is_u64()), || {
        "max_model_len missing".into()
    })
}
