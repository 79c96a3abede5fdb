//! An incremental Server-Sent Events decoder.
//!
//! It follows the WHATWG event-stream rules that matter for vLLM: lines end
//! with `\n`, `\r\n` or a lone `\r`; a line starting with `:` is a comment
//! (keep-alive); `data:` lines of one event are joined with `\n`; an empty
//! line dispatches the event. Bytes may arrive split anywhere, including in
//! the middle of a `\r\n` pair or of a UTF-8 sequence, so the decoder keeps
//! an unfinished line between calls and works on bytes, not `str`.
//!
//! What it buffers is bounded: a line, or an event's data, longer than
//! `max_event_bytes` ([`DEFAULT_MAX_EVENT_BYTES`] unless set) makes the
//! decoder drop what it holds and stop ([`SseDecoder::oversized`]), so a
//! server sending one endless event cannot grow the client's memory.

/// One dispatched event, borrowed from the decoder: the decoder reuses its
/// buffers for the next event, so a stream costs no allocation per event.
/// vLLM only uses `data`, so `event`/`id` are kept only to be ignored
/// knowingly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    pub event: Option<&'a str>,
    pub data: &'a [u8],
}

/// The default cap on one SSE line and on one event's data: 4 MiB, two
/// orders of magnitude above vLLM's largest chunk (a usage chunk or a
/// tool-call fragment is a few hundred bytes).
pub const DEFAULT_MAX_EVENT_BYTES: usize = 4 << 20;

#[derive(Debug)]
pub struct SseDecoder {
    /// Bytes of the current, unfinished line.
    line: Vec<u8>,
    /// The previous chunk ended with `\r`: a `\n` at the start of the next
    /// chunk belongs to the same line ending.
    pending_carriage_return: bool,
    data: Vec<u8>,
    has_data: bool,
    event: Option<String>,
    comments_seen: u64,
    max_event_bytes: usize,
    /// A line or event passed `max_event_bytes`: everything after is ignored.
    oversized: bool,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::with_max_event_bytes(DEFAULT_MAX_EVENT_BYTES)
    }
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder that holds at most `max_event_bytes` of one line and of
    /// one event's data (at least 1).
    pub fn with_max_event_bytes(max_event_bytes: usize) -> Self {
        Self {
            line: Vec::new(),
            pending_carriage_return: false,
            data: Vec::new(),
            has_data: false,
            event: None,
            comments_seen: 0,
            max_event_bytes: max_event_bytes.max(1),
            oversized: false,
        }
    }

    pub fn max_event_bytes(&self) -> usize {
        self.max_event_bytes
    }

    /// Whether a line or an event's data passed the cap. The decoder has
    /// then dropped its buffers and ignores further input.
    pub fn oversized(&self) -> bool {
        self.oversized
    }

    /// Whether holding `extra` more bytes of the current line (beside the
    /// event's data so far and a data value still in the input) passes the
    /// cap; if so, drops the buffers and stops the decoder.
    fn overflows(&mut self, extra: usize, in_input: Option<&[u8]>) -> bool {
        let held = self.line.len() + self.data.len() + in_input.map_or(0, <[u8]>::len) + extra;
        if held > self.max_event_bytes {
            self.oversized = true;
            // Free the memory, not just the length.
            self.line = Vec::new();
            self.data = Vec::new();
            self.has_data = false;
            self.event = None;
            return true;
        }
        false
    }

    /// How many comment lines (keep-alives) have been seen.
    pub fn comments_seen(&self) -> u64 {
        self.comments_seen
    }

    /// Whether bytes of an unfinished event are buffered: at end of stream
    /// this means the stream was cut mid-event.
    pub fn has_partial_event(&self) -> bool {
        !self.line.is_empty() || self.has_data
    }

    /// Feeds bytes and calls `on_event` for each completed event, in order.
    pub fn feed<'input>(
        &mut self,
        mut bytes: &'input [u8],
        mut on_event: impl FnMut(SseEvent<'_>),
    ) {
        // The usual event is one `data:` line and the blank line after it,
        // both inside one read: its data is handed over straight from
        // `bytes`, never copied. `in_input` holds that line's value until
        // the blank line; whatever is still pending at the end of this call
        // moves into `self.data`.
        let mut in_input: Option<&'input [u8]> = None;
        if self.oversized {
            return;
        }
        if self.pending_carriage_return {
            self.pending_carriage_return = false;
            if let Some((&b'\n', rest)) = bytes.split_first() {
                bytes = rest;
            }
        }
        while !bytes.is_empty() {
            match memchr::memchr2(b'\n', b'\r', bytes) {
                None => {
                    if self.overflows(bytes.len(), in_input) {
                        return;
                    }
                    self.line.extend_from_slice(bytes);
                    break;
                }
                Some(at) => {
                    let terminator = bytes[at];
                    if self.overflows(at, in_input) {
                        return;
                    }
                    if self.line.is_empty() {
                        self.process_line(&bytes[..at], &mut in_input, &mut on_event);
                    } else {
                        self.line.extend_from_slice(&bytes[..at]);
                        let line = std::mem::take(&mut self.line);
                        let mut copied = None;
                        self.flush_in_input(&mut in_input);
                        self.process_line(&line, &mut copied, &mut on_event);
                        self.flush_in_input(&mut copied);
                        // Reuse the allocation for the next line.
                        self.line = line;
                        self.line.clear();
                    }
                    bytes = &bytes[at + 1..];
                    if terminator == b'\r' {
                        match bytes.first() {
                            Some(b'\n') => bytes = &bytes[1..],
                            Some(_) => {}
                            None => self.pending_carriage_return = true,
                        }
                    }
                }
            }
        }
        self.flush_in_input(&mut in_input);
    }

    /// Moves a data value still held in the caller's bytes into `data`.
    fn flush_in_input(&mut self, in_input: &mut Option<&[u8]>) {
        if let Some(value) = in_input.take() {
            self.data.extend_from_slice(value);
            self.has_data = true;
        }
    }

    fn process_line<'line>(
        &mut self,
        line: &'line [u8],
        in_input: &mut Option<&'line [u8]>,
        on_event: &mut impl FnMut(SseEvent<'_>),
    ) {
        if line.is_empty() {
            if let Some(data) = in_input.take() {
                on_event(SseEvent {
                    event: self.event.as_deref(),
                    data,
                });
                self.event = None;
            } else if self.has_data {
                on_event(SseEvent {
                    event: self.event.as_deref(),
                    data: &self.data,
                });
                // Keep the allocation for the next event.
                self.data.clear();
                self.has_data = false;
                self.event = None;
            } else {
                self.event = None;
            }
            return;
        }
        if line[0] == b':' {
            self.comments_seen += 1;
            return;
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                let value = value.strip_prefix(b" ").unwrap_or(value);
                (&line[..colon], value)
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                    self.data.extend_from_slice(value);
                } else if let Some(first) = in_input.take() {
                    // A second data line: join them in the buffer.
                    self.data.extend_from_slice(first);
                    self.data.push(b'\n');
                    self.data.extend_from_slice(value);
                    self.has_data = true;
                } else {
                    *in_input = Some(value);
                }
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            // `id` and `retry` do not matter for a single streamed response.
            _ => {}
        }
    }
}
