//! Reading a body with a cap: an error page, a non-stream reply or a
//! `/metrics` page is read only up to a limit, within a time bound, so a
//! server cannot make the client hold an unbounded body.

use std::time::Duration;

use futures_util::StreamExt;

/// Why a bounded read stopped short.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the body is larger than {limit} bytes; the rest was not read")]
    TooLarge {
        limit: usize,
        /// The first `limit` bytes.
        partial: Vec<u8>,
    },
    #[error("the body did not arrive within {:.1} s", .timeout.as_secs_f64())]
    Timeout { timeout: Duration },
    #[error("the body broke off")]
    Read {
        #[source]
        source: reqwest::Error,
    },
}

/// Reads at most `limit` bytes of `response`'s body within `timeout`.
pub async fn read_bounded(
    response: reqwest::Response,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>, BodyError> {
    let read = async {
        let mut body = Vec::new();
        let mut chunks = response.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|source| BodyError::Read { source })?;
            if body.len() + chunk.len() > limit {
                let room = limit - body.len();
                body.extend_from_slice(&chunk[..room]);
                return Err(BodyError::TooLarge {
                    limit,
                    partial: body,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or(Err(BodyError::Timeout { timeout }))
}
