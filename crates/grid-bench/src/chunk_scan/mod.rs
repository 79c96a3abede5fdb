//! A fast path for reading vLLM's `chat.completion.chunk` events.
//!
//! serde_json spends most of a chunk's cost reading field names and
//! skipping fields the client ignores; this scanner walks the bytes once
//! and extracts only what the client reads, into the same [`WireChunk`]
//! serde would build. It is an optimisation only: whenever it meets
//! anything it does not fully understand (an escape in a field name, a
//! duplicate field, several choices, a float where a count belongs, an
//! `error` object, nesting deeper than vLLM sends, invalid JSON...) it
//! declines and the caller parses with serde, so correctness never depends
//! on it. [`compare_with_serde`] checks the two agree, for tests.

mod chunk;
mod lexer;

use crate::openai::{FirstChoice, WireChunk};
use lexer::Scanner;

/// Reads one event's data as a chunk, or `None` to leave it to serde.
pub(crate) fn scan_chunk(data: &[u8]) -> Option<WireChunk<'_>> {
    let mut scanner = Scanner { bytes: data, at: 0 };
    let mut chunk = WireChunk {
        id: None,
        first_choice: FirstChoice(None),
        usage: None,
        error: None,
        object: None,
        message: None,
    };
    // Filled in place and moved once: the chunk is a few hundred bytes.
    scanner.chunk(&mut chunk)?;
    scanner.whitespace();
    if scanner.at != data.len() {
        return None;
    }
    Some(chunk)
}

/// What [`compare_with_serde`] found for one event's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agreement {
    /// The scanner read the chunk and serde read the same chunk.
    Same,
    /// The scanner declined; the client uses serde for this chunk.
    Declined,
}

/// Runs the scanner and serde on the same event data: `Ok` when the
/// scanner declines or both read the same chunk, `Err` describing the
/// difference otherwise (a bug in the scanner).
pub fn compare_with_serde(data: &[u8]) -> Result<Agreement, String> {
    let Some(fast) = scan_chunk(data) else {
        return Ok(Agreement::Declined);
    };
    match serde_json::from_slice::<WireChunk<'_>>(data) {
        Ok(slow) if slow == fast => Ok(Agreement::Same),
        Ok(slow) => Err(format!("scanner read {fast:?}, serde read {slow:?}")),
        Err(error) => Err(format!(
            "scanner read {fast:?}, serde rejected the chunk: {error}"
        )),
    }
}
