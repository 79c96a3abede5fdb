//! The chunk grammar: which fields of vLLM's `chat.completion.chunk` the
//! client reads, filled in place into the [`WireChunk`] serde would build.

use super::lexer::{Scanner, Seen};
use crate::openai::{
    CompletionTokensDetails, FirstChoice, PromptTokensDetails, WireChoice, WireChunk, WireDelta,
    WireFunctionDelta, WireToolCallDelta, WireUsage,
};

impl<'a> Scanner<'a> {
    pub(super) fn chunk(&mut self, chunk: &mut WireChunk<'a>) -> Option<()> {
        let mut seen = Seen::default();
        self.object(|scanner, key| {
            match key {
                b"id" => {
                    seen.first(0)?;
                    chunk.id = scanner.optional_string()?;
                }
                b"choices" => {
                    seen.first(1)?;
                    scanner.choices(&mut chunk.first_choice)?;
                }
                b"usage" => {
                    seen.first(2)?;
                    if !scanner.null()? {
                        chunk.usage = Some(scanner.usage()?);
                    }
                }
                // An error event is rare and its value is free-form: serde.
                b"error" => {
                    seen.first(3)?;
                    if !scanner.null()? {
                        return None;
                    }
                }
                b"object" => {
                    seen.first(4)?;
                    chunk.object = scanner.optional_string()?;
                }
                b"message" => {
                    seen.first(5)?;
                    chunk.message = scanner.optional_string()?;
                }
                _ => scanner.skip(0)?,
            }
            Some(())
        })
    }

    /// `null`, `[]` or a one-element array; several choices decline. Fills
    /// `first` in place: the chunk is large, and moving it through every
    /// level costs more than reading it.
    fn choices(&mut self, first: &mut FirstChoice<'a>) -> Option<()> {
        if self.null()? {
            return Some(());
        }
        self.expect(b'[')?;
        if self.peek()? == b']' {
            self.at += 1;
            return Some(());
        }
        let choice = first.0.insert(WireChoice {
            index: 0,
            delta: None,
            finish_reason: None,
        });
        self.choice(choice)?;
        if choice.index != 0 {
            first.0 = None;
        }
        self.expect(b']')
    }

    fn choice(&mut self, choice: &mut WireChoice<'a>) -> Option<()> {
        let mut seen = Seen::default();
        self.object(|scanner, key| {
            match key {
                b"index" => {
                    seen.first(0)?;
                    choice.index = u32::try_from(scanner.unsigned()?).ok()?;
                }
                b"delta" => {
                    seen.first(1)?;
                    if !scanner.null()? {
                        let delta = choice.delta.insert(WireDelta {
                            content: None,
                            reasoning: None,
                            reasoning_content: None,
                            tool_calls: None,
                        });
                        scanner.delta(delta)?;
                    }
                }
                b"finish_reason" => {
                    seen.first(2)?;
                    choice.finish_reason = scanner.optional_string()?;
                }
                _ => scanner.skip(0)?,
            }
            Some(())
        })
    }

    fn delta(&mut self, delta: &mut WireDelta<'a>) -> Option<()> {
        let mut seen = Seen::default();
        self.object(|scanner, key| {
            match key {
                b"content" => {
                    seen.first(0)?;
                    delta.content = scanner.optional_string()?;
                }
                b"reasoning" => {
                    seen.first(1)?;
                    delta.reasoning = scanner.optional_string()?;
                }
                b"reasoning_content" => {
                    seen.first(2)?;
                    delta.reasoning_content = scanner.optional_string()?;
                }
                b"tool_calls" => {
                    seen.first(3)?;
                    if !scanner.null()? {
                        delta.tool_calls = Some(scanner.tool_calls()?);
                    }
                }
                _ => scanner.skip(0)?,
            }
            Some(())
        })
    }

    fn tool_calls(&mut self) -> Option<Vec<WireToolCallDelta<'a>>> {
        self.expect(b'[')?;
        let mut calls = Vec::new();
        if self.peek()? == b']' {
            self.at += 1;
            return Some(calls);
        }
        loop {
            calls.push(self.tool_call()?);
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(calls);
                }
                _ => return None,
            }
        }
    }

    fn tool_call(&mut self) -> Option<WireToolCallDelta<'a>> {
        let mut call = WireToolCallDelta {
            index: None,
            id: None,
            function: None,
        };
        let mut seen = Seen::default();
        self.object(|scanner, key| {
            match key {
                b"index" => {
                    seen.first(0)?;
                    call.index = match scanner.optional_unsigned()? {
                        Some(index) => Some(usize::try_from(index).ok()?),
                        None => None,
                    };
                }
                b"id" => {
                    seen.first(1)?;
                    call.id = scanner.optional_string()?;
                }
                b"function" => {
                    seen.first(2)?;
                    if !scanner.null()? {
                        call.function = Some(scanner.function()?);
                    }
                }
                _ => scanner.skip(0)?,
            }
            Some(())
        })?;
        Some(call)
    }

    fn function(&mut self) -> Option<WireFunctionDelta<'a>> {
        let mut function = WireFunctionDelta {
            name: None,
            arguments: None,
        };
        let mut seen = Seen::default();
        self.object(|scanner, key| {
            match key {
                b"name" => {
                    seen.first(0)?;
                    function.name = scanner.optional_string()?;
                }
                b"arguments" => {
                    seen.first(1)?;
                    function.arguments = scanner.optional_string()?;
                }
                _ => scanner.skip(0)?,
            }
            Some(())
        })?;
        Some(function)
    }

    fn usage(&mut self) -> Option<WireUsage> {
        let mut usage = WireUsage {
            prompt_tokens: None,
            completion_tokens: None,
            prompt_tokens_details: None,
            completion_tokens_details: None,
        };
        let mut seen = Seen::default();
        self.object(|scanner, key| {
            match key {
                b"prompt_tokens" => {
                    seen.first(0)?;
                    usage.prompt_tokens = scanner.optional_unsigned()?;
                }
                b"completion_tokens" => {
                    seen.first(1)?;
                    usage.completion_tokens = scanner.optional_unsigned()?;
                }
                b"prompt_tokens_details" => {
                    seen.first(2)?;
                    if !scanner.null()? {
                        let cached_tokens = scanner.one_count(b"cached_tokens")?;
                        usage.prompt_tokens_details = Some(PromptTokensDetails { cached_tokens });
                    }
                }
                b"completion_tokens_details" => {
                    seen.first(3)?;
                    if !scanner.null()? {
                        let reasoning_tokens = scanner.one_count(b"reasoning_tokens")?;
                        usage.completion_tokens_details =
                            Some(CompletionTokensDetails { reasoning_tokens });
                    }
                }
                _ => scanner.skip(0)?,
            }
            Some(())
        })?;
        Some(usage)
    }

    /// An object of which only the count `wanted` is read.
    fn one_count(&mut self, wanted: &[u8]) -> Option<Option<u64>> {
        let mut count = None;
        let mut seen = Seen::default();
        self.object(|scanner, key| {
            if key == wanted {
                seen.first(0)?;
                count = scanner.optional_unsigned()?;
            } else {
                scanner.skip(0)?;
            }
            Some(())
        })?;
        Some(count)
    }
}
