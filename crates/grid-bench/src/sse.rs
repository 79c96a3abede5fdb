//! An incremental Server-Sent Events decoder.
//!
//! It follows the WHATWG event-stream rules that matter for vLLM: lines end
//! with `\n`, `\r\n` or a lone `\r`; a line starting with `:` is a comment
//! (keep-alive); `data:` lines of one event are joined with `\n`; an empty
//! line dispatches the event. Bytes may arrive split anywhere, including in
//! the middle of a `\r\n` pair or of a UTF-8 sequence, so the decoder keeps
//! an unfinished line between calls and works on bytes, not `str`.

/// One dispatched event, borrowed from the decoder: the decoder reuses its
/// buffers for the next event, so a stream costs no allocation per event.
/// vLLM only uses `data`, so `event`/`id` are kept only to be ignored
/// knowingly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    pub event: Option<&'a str>,
    pub data: &'a [u8],
}

#[derive(Debug, Default)]
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
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
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
        if self.pending_carriage_return {
            self.pending_carriage_return = false;
            if let Some((&b'\n', rest)) = bytes.split_first() {
                bytes = rest;
            }
        }
        while !bytes.is_empty() {
            match memchr::memchr2(b'\n', b'\r', bytes) {
                None => {
                    self.line.extend_from_slice(bytes);
                    break;
                }
                Some(at) => {
                    let terminator = bytes[at];
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
