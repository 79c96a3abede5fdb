//! Reading one reply's events into a record: what each chunk means for the
//! timings, the counts and the text, and the bounds a sane reply keeps.

use std::time::{Duration, Instant};

use super::record::{Exchange, Failure, FailureKind, Reply, RequestRecord};
use crate::openai::{ToolCall, Usage, WireChunk, truncate};
use crate::sse::{SseDecoder, SseEvent};

/// Tool calls one reply may make: the stream's `index` picks the slot, so
/// without a cap a single chunk (`"index": 10000000000`) would size a huge
/// vector. vLLM numbers the calls of a reply from 0.
pub const MAX_TOOL_CALLS: usize = 128;

/// Text (answer, reasoning, tool-call names and arguments) the client keeps
/// of one reply; a reply beyond it is a bad reply, not a memory hog.
pub const MAX_REPLY_TEXT_BYTES: usize = 16 << 20;

/// Token-bearing chunks one reply may have per requested token. vLLM sends
/// at most one chunk per generated token; the slack covers gateways that
/// re-chunk text. Bounds the per-chunk timestamps a reply can make us keep.
const TOKEN_CHUNKS_PER_MAX_TOKEN: usize = 16;
const TOKEN_CHUNKS_SLACK: usize = 1024;

/// Per-request parsing state, kept outside the timed future so a timeout
/// or cancellation still reports what arrived.
pub(crate) struct StreamState {
    pub(crate) sent: Instant,
    keep_text: bool,
    /// `None`: no bound (a recorded stream read offline).
    max_token_chunks: Option<usize>,
    /// Microseconds after send of each token-bearing chunk.
    pub(crate) token_offsets: Vec<u64>,
    last_token: Option<Instant>,
    first_answer: Option<Instant>,
    pub(crate) done: Option<Instant>,
    usage: Option<Usage>,
    response_id: Option<String>,
    finish_reason: Option<String>,
    pub(crate) http_status: Option<u16>,
    reasoning_chunks: u32,
    answer_chunks: u32,
    tool_call_chunks: u32,
    text_bytes: usize,
    reply: Reply,
    pub(crate) failure: Option<Failure>,
}

impl StreamState {
    /// `max_tokens`: the request's limit, which bounds the token chunks;
    /// `None` reads without that bound.
    pub(crate) fn new(sent: Instant, keep_text: bool, max_tokens: Option<u32>) -> Self {
        Self {
            sent,
            keep_text,
            max_token_chunks: max_tokens.map(|max| {
                (max as usize)
                    .saturating_mul(TOKEN_CHUNKS_PER_MAX_TOKEN)
                    .saturating_add(TOKEN_CHUNKS_SLACK)
            }),
            // One token per chunk is the usual case, so `max_tokens` bounds
            // the pushes; capped so a huge limit does not reserve memory.
            token_offsets: Vec::with_capacity((max_tokens.unwrap_or(0) as usize).clamp(16, 4096)),
            last_token: None,
            first_answer: None,
            done: None,
            usage: None,
            response_id: None,
            finish_reason: None,
            http_status: None,
            reasoning_chunks: 0,
            answer_chunks: 0,
            tool_call_chunks: 0,
            text_bytes: 0,
            reply: Reply::default(),
            failure: None,
        }
    }

    /// Whether the stream needs no more bytes: `[DONE]` or a failure.
    pub(crate) fn finished(&self) -> bool {
        self.done.is_some() || self.failure.is_some()
    }

    /// The last sign of progress: the last token-bearing chunk, else the
    /// send. The idle timeout counts from here.
    pub(crate) fn last_progress(&self) -> Instant {
        self.last_token.unwrap_or(self.sent)
    }

    pub(crate) fn fail(&mut self, kind: FailureKind, message: String) {
        if self.failure.is_none() {
            self.failure = Some(Failure {
                kind,
                http_status: self.http_status.filter(|_| kind == FailureKind::HttpStatus),
                message,
            });
        }
    }

    pub(crate) fn on_event(&mut self, event: SseEvent<'_>, arrived: Instant) {
        if self.finished() {
            return;
        }
        let data = event.data.trim_ascii();
        if data == b"[DONE]" {
            self.done = Some(arrived);
            return;
        }
        if data.is_empty() {
            return;
        }
        // The scanner reads vLLM's usual chunk in a fraction of serde's
        // instructions and declines anything unusual, which serde then reads.
        // Each branch hands the chunk over directly: it is a few hundred
        // bytes, and every move of it is a copy.
        if let Some(chunk) = crate::chunk_scan::scan_chunk(data) {
            self.on_chunk(chunk, arrived);
            return;
        }
        match serde_json::from_slice::<WireChunk<'_>>(data) {
            Ok(chunk) => self.on_chunk(chunk, arrived),
            Err(error) => {
                let text = String::from_utf8_lossy(data);
                self.fail(
                    FailureKind::MalformedEvent,
                    format!(
                        "an event is not a JSON chunk ({error}): {}",
                        truncate(&text, 200)
                    ),
                );
            }
        }
    }

    fn on_chunk(&mut self, chunk: WireChunk<'_>, arrived: Instant) {
        if let Some(error) = &chunk.error {
            let message = error
                .get("message")
                .and_then(|message| message.as_str())
                .map(str::to_string)
                .unwrap_or_else(|| error.to_string());
            self.fail(
                FailureKind::ServerError,
                format!("the server reported an error mid-stream: {message}"),
            );
            return;
        }
        if chunk.object.as_deref() == Some("error") {
            let message = chunk.message.as_deref().unwrap_or("no message");
            self.fail(
                FailureKind::ServerError,
                format!("the server reported an error mid-stream: {message}"),
            );
            return;
        }
        if self.response_id.is_none() {
            self.response_id = chunk.id.map(|id| id.into_owned());
        }
        if let Some(usage) = chunk.usage {
            // A usage object without any count would otherwise read as zero
            // tokens; token counts are never guessed. One missing count (an
            // OpenAI-compatible gateway that omits prompt_tokens) stays
            // unknown and the request keeps its latencies.
            if usage.prompt_tokens.is_none() && usage.completion_tokens.is_none() {
                self.fail(
                    FailureKind::MissingUsage,
                    "the usage chunk lacks prompt_tokens or completion_tokens (it has neither), so the reply has no token count".to_string(),
                );
                return;
            }
            self.usage = Some(Usage {
                prompt_tokens: usage.prompt_tokens,
                completion_tokens: usage.completion_tokens,
                cached_tokens: usage
                    .prompt_tokens_details
                    .and_then(|details| details.cached_tokens),
                reasoning_tokens: usage
                    .completion_tokens_details
                    .and_then(|details| details.reasoning_tokens),
            });
        }
        let mut bears_token = false;
        if let Some(choice) = chunk.first_choice.0 {
            if let Some(reason) = choice.finish_reason {
                self.finish_reason = Some(reason.into_owned());
            }
            if let Some(delta) = choice.delta {
                if let Some(reasoning) = delta
                    .reasoning
                    .as_deref()
                    .filter(|text| !text.is_empty())
                    .or_else(|| delta.reasoning_content.as_deref().filter(|t| !t.is_empty()))
                {
                    bears_token = true;
                    self.reasoning_chunks += 1;
                    if self.keep_text && self.room_for(reasoning.len()) {
                        self.reply.reasoning.push_str(reasoning);
                    }
                }
                if let Some(content) = delta.content.as_deref().filter(|text| !text.is_empty()) {
                    bears_token = true;
                    self.answer_chunks += 1;
                    self.first_answer.get_or_insert(arrived);
                    if self.keep_text && self.room_for(content.len()) {
                        self.reply.answer.push_str(content);
                    }
                }
                if let Some(calls) = delta.tool_calls {
                    let mut carried_text = false;
                    for call in calls {
                        let position = call.index.unwrap_or(0);
                        if position >= MAX_TOOL_CALLS {
                            self.fail(
                                FailureKind::BadReply,
                                format!(
                                    "a tool-call index of {position} exceeds the cap of {MAX_TOOL_CALLS} tool calls per reply"
                                ),
                            );
                            return;
                        }
                        if self.reply.tool_calls.len() <= position {
                            self.reply
                                .tool_calls
                                .resize_with(position + 1, ToolCall::default);
                        }
                        let name = call.function.as_ref().and_then(|f| f.name.as_deref());
                        let arguments = call.function.as_ref().and_then(|f| f.arguments.as_deref());
                        let name = name.filter(|name| !name.is_empty());
                        let arguments = arguments.filter(|arguments| !arguments.is_empty());
                        let added = name.map_or(0, str::len) + arguments.map_or(0, str::len);
                        if added > 0 {
                            carried_text = true;
                        }
                        if !self.room_for(added) {
                            return;
                        }
                        let slot = &mut self.reply.tool_calls[position];
                        if let Some(id) = call.id {
                            slot.id = id.into_owned();
                        }
                        if let Some(name) = name {
                            slot.name.push_str(name);
                        }
                        if let Some(arguments) = arguments {
                            slot.arguments.push_str(arguments);
                        }
                    }
                    if carried_text {
                        bears_token = true;
                        self.tool_call_chunks += 1;
                    }
                }
            }
        }
        if bears_token && self.failure.is_none() {
            if self
                .max_token_chunks
                .is_some_and(|max| self.token_offsets.len() >= max)
            {
                self.fail(
                    FailureKind::BadReply,
                    format!(
                        "more than {} token-bearing chunks: more than the request's max_tokens allows",
                        self.token_offsets.len()
                    ),
                );
                return;
            }
            self.last_token = Some(arrived);
            self.token_offsets
                .push(arrived.duration_since(self.sent).as_micros() as u64);
        }
    }

    /// Whether `bytes` more of reply text fit under [`MAX_REPLY_TEXT_BYTES`];
    /// fails the request when they do not. Counted whether or not the text
    /// is kept, so the verdict does not depend on `keep_text`.
    fn room_for(&mut self, bytes: usize) -> bool {
        self.text_bytes = self.text_bytes.saturating_add(bytes);
        if self.text_bytes > MAX_REPLY_TEXT_BYTES {
            self.fail(
                FailureKind::BadReply,
                format!(
                    "the reply's text exceeds {} MiB, more than the client keeps of one reply",
                    MAX_REPLY_TEXT_BYTES >> 20
                ),
            );
            return false;
        }
        true
    }

    pub(crate) fn finish(
        mut self,
        epoch: Instant,
        scheduled: Instant,
        benchmark: &str,
        label: String,
    ) -> Exchange {
        if self.failure.is_none() {
            match self.usage {
                None => self.fail(
                    FailureKind::MissingUsage,
                    "the stream ended without a usage chunk; token counts are unknown".into(),
                ),
                Some(usage)
                    if usage.completion_tokens == Some(0) || self.token_offsets.is_empty() =>
                {
                    self.fail(
                        FailureKind::EmptyReply,
                        format!(
                            "empty reply: {} completion tokens reported, {} token-bearing chunks",
                            usage
                                .completion_tokens
                                .map_or_else(|| "no count of".to_string(), |n| n.to_string()),
                            self.token_offsets.len()
                        ),
                    )
                }
                Some(_) => {}
            }
        }
        let millis = |micros: u64| micros as f64 / 1000.0;
        let ttft_ms = self.token_offsets.first().copied().map(millis);
        let e2el_ms = self
            .done
            .map(|done| done.duration_since(self.sent).as_secs_f64() * 1000.0);
        let itl_ms = self
            .token_offsets
            .windows(2)
            .map(|pair| millis(pair[1] - pair[0]))
            .collect();
        let completion = self.usage.and_then(|usage| usage.completion_tokens);
        let tpot_ms = match (ttft_ms, e2el_ms, completion) {
            (Some(ttft), Some(e2el), Some(tokens)) if tokens > 1 => {
                Some((e2el - ttft) / (tokens - 1) as f64)
            }
            _ => None,
        };
        let since_epoch =
            |instant: Instant| instant.saturating_duration_since(epoch).as_secs_f64() * 1000.0;
        let record = RequestRecord {
            benchmark: benchmark.to_string(),
            label,
            response_id: self.response_id,
            scheduled_ms: since_epoch(scheduled),
            sent_ms: since_epoch(self.sent),
            queue_delay_ms: self.sent.saturating_duration_since(scheduled).as_secs_f64() * 1000.0,
            ttft_ms,
            ttfc_ms: self
                .first_answer
                .map(|first| first.duration_since(self.sent).as_secs_f64() * 1000.0),
            e2el_ms,
            itl_ms,
            tpot_ms,
            http_status: self.http_status,
            usage: self.usage,
            token_chunks: self.token_offsets.len() as u32,
            reasoning_chunks: self.reasoning_chunks,
            answer_chunks: self.answer_chunks,
            tool_call_chunks: self.tool_call_chunks,
            finish_reason: self.finish_reason,
            failure: self.failure,
        };
        Exchange {
            record,
            reply: self.reply,
        }
    }
}

/// Feeds `bytes` to `decoder` and the events to `state`; an oversized event
/// fails the request (the decoder has already dropped what it held).
pub(crate) fn feed(
    decoder: &mut SseDecoder,
    state: &mut StreamState,
    bytes: &[u8],
    arrived: Instant,
) {
    decoder.feed(bytes, |event| state.on_event(event, arrived));
    if decoder.oversized() {
        state.fail(
            FailureKind::OversizedEvent,
            format!(
                "an SSE line or event exceeds the cap of {} bytes; the client stopped reading the reply instead of buffering it",
                decoder.max_event_bytes()
            ),
        );
    }
}

/// Parses a complete recorded SSE body the same way the client parses a
/// live stream, every event arriving at the same instant (so timings are
/// zero). `split_every` feeds the bytes in pieces of that size, to check
/// that splits never change the result.
pub fn parse_recorded_stream(body: &[u8], split_every: Option<usize>) -> Exchange {
    parse_recorded_stream_with(body, split_every, &mut SseDecoder::new())
}

/// [`parse_recorded_stream`] with a given decoder (for its event cap).
pub fn parse_recorded_stream_with(
    body: &[u8],
    split_every: Option<usize>,
    decoder: &mut SseDecoder,
) -> Exchange {
    let now = Instant::now();
    let mut state = StreamState::new(now, true, None);
    match split_every {
        Some(size) if size > 0 => {
            for piece in body.chunks(size) {
                feed(decoder, &mut state, piece, now);
            }
        }
        _ => feed(decoder, &mut state, body, now),
    }
    if !state.finished() {
        state.fail(
            FailureKind::StreamInterrupted,
            "the stream ended before [DONE]".into(),
        );
    }
    state.finish(now, now, "offline", String::new())
}

/// Seconds with one decimal, for messages.
pub(crate) fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}
