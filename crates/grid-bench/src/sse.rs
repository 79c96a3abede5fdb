//! An incremental Server-Sent Events decoder.
//!
//! It follows the WHATWG event-stream rules that matter for vLLM: lines end
//! with `\n`, `\r\n` or a lone `\r`; a line starting with `:` is a comment
//! (keep-alive); `data:` lines of one event are joined with `\n`; an empty
//! line dispatches the event. Bytes may arrive split anywhere, including in
//! the middle of a `\r\n` pair or of a UTF-8 sequence, so the decoder keeps
//! an unfinished line between calls and works on bytes, not `str`.

/// One dispatched event. vLLM only uses `data`, so `event`/`id` are kept
/// only to be ignored knowingly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: Vec<u8>,
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
    pub fn feed(&mut self, mut bytes: &[u8], mut on_event: impl FnMut(SseEvent)) {
        if self.pending_carriage_return {
            self.pending_carriage_return = false;
            if let Some((&b'\n', rest)) = bytes.split_first() {
                bytes = rest;
            }
        }
        while !bytes.is_empty() {
            match bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
                None => {
                    self.line.extend_from_slice(bytes);
                    return;
                }
                Some(at) => {
                    let terminator = bytes[at];
                    if self.line.is_empty() {
                        self.process_line_slice(&bytes[..at], &mut on_event);
                    } else {
                        self.line.extend_from_slice(&bytes[..at]);
                        let line = std::mem::take(&mut self.line);
                        self.process_line_slice(&line, &mut on_event);
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
    }

    fn process_line_slice(&mut self, line: &[u8], on_event: &mut impl FnMut(SseEvent)) {
        if line.is_empty() {
            if self.has_data {
                let data = std::mem::take(&mut self.data);
                self.has_data = false;
                on_event(SseEvent {
                    event: self.event.take(),
                    data,
                });
            } else {
                self.event = None;
            }
            return;
        }
        if line[0] == b':' {
            self.comments_seen += 1;
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
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
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            // `id` and `retry` do not matter for a single streamed response.
            _ => {}
        }
    }
}
