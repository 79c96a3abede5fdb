//! A small client bound to one target, and the helpers every check uses:
//! expect a status, parse JSON, split SSE, report a broken contract point.

use reqwest::Method;
use serde_json::{Value, json};

use crate::{ContractError, Target};

/// The longest piece of a reply quoted in an error.
const QUOTE: usize = 500;

/// What a request sends.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Payload<'a> {
    /// A GET.
    None,
    /// A POST of JSON.
    Json(&'a Value),
    /// A POST of raw text as `application/json` (for malformed bodies).
    Raw(&'a str),
}

/// A client bound to one target.
pub(crate) struct Probe<'a> {
    pub(crate) target: &'a Target,
    pub(crate) http: reqwest::Client,
}

impl Probe<'_> {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.target.base_url.trim_end_matches('/'))
    }

    /// Sends `payload` to `path` (with the key when `auth`); status and body.
    pub(crate) async fn send(
        &self,
        check: &'static str,
        path: &str,
        payload: Payload<'_>,
        auth: bool,
    ) -> Result<(u16, String), ContractError> {
        let url = self.url(path);
        let mut req = match payload {
            Payload::None => self.http.request(Method::GET, &url),
            Payload::Json(b) => self.http.request(Method::POST, &url).json(b),
            Payload::Raw(text) => self
                .http
                .request(Method::POST, &url)
                .header("content-type", "application/json")
                .body(text.to_owned()),
        };
        if auth {
            if let Some(k) = &self.target.api_key {
                req = req.bearer_auth(k);
            }
        }
        let resp = req.send().await.map_err(|source| ContractError::Request {
            check,
            url: url.clone(),
            source,
        })?;
        let status = resp.status().as_u16();
        let text =
            resp.text()
                .await
                .map_err(|source| ContractError::Body { check, url, source })?;
        Ok((status, text))
    }

    /// GETs `path` (POSTs `body` when given) and expects `expected`.
    pub(crate) async fn expect(
        &self,
        check: &'static str,
        path: &str,
        body: Option<&Value>,
        auth: bool,
        expected: u16,
    ) -> Result<String, ContractError> {
        let payload = body.map_or(Payload::None, Payload::Json);
        let (status, text) = self.send(check, path, payload, auth).await?;
        if status != expected {
            return Err(ContractError::Status {
                check,
                url: self.url(path),
                expected,
                got: status,
                body: text.chars().take(QUOTE).collect(),
            });
        }
        Ok(text)
    }
}

pub(crate) fn parse(check: &'static str, text: &str) -> Result<Value, ContractError> {
    serde_json::from_str(text).map_err(|source| ContractError::NotJson {
        check,
        body: text.chars().take(QUOTE).collect(),
        source,
    })
}

/// `Ok` when the contract point holds, else a [`ContractError::Shape`]
/// with the detail.
pub(crate) fn shape(
    check: &'static str,
    ok: bool,
    detail: impl FnOnce() -> String,
) -> Result<(), ContractError> {
    if ok {
        Ok(())
    } else {
        Err(ContractError::Shape {
            check,
            detail: detail(),
        })
    }
}

/// Splits an SSE body into `data:` payloads; every event must be `data: ...`.
pub fn sse_events(check: &'static str, body: &str) -> Result<Vec<String>, ContractError> {
    let mut out = Vec::new();
    for event in body.split("\n\n").filter(|e| !e.trim().is_empty()) {
        let Some(data) = event.strip_prefix("data: ") else {
            return Err(ContractError::Shape {
                check,
                detail: format!("event without `data: ` prefix: {event:?}"),
            });
        };
        out.push(data.to_owned());
    }
    Ok(out)
}

/// Parses the JSON chunks of a stream that must end with `data: [DONE]`.
pub(crate) fn stream_chunks(check: &'static str, body: &str) -> Result<Vec<Value>, ContractError> {
    let events = sse_events(check, body)?;
    shape(
        check,
        events.last().map(String::as_str) == Some("[DONE]"),
        || "the stream does not end with `data: [DONE]`".into(),
    )?;
    events[..events.len() - 1]
        .iter()
        .map(|e| parse(check, e))
        .collect()
}

/// A one-message chat request; streaming ones ask for the usage chunk.
pub(crate) fn chat_body(model: &str, content: &str, max_tokens: u64, stream: bool) -> Value {
    let mut b = json!({"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens});
    if stream {
        b["stream"] = json!(true);
        b["stream_options"] = json!({"include_usage": true});
    }
    b
}
