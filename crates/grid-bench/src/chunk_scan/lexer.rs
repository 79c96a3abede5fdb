//! The JSON primitives of the chunk scanner: whitespace, strings (with
//! serde_json's escape rules), unsigned counts, and skipping any value with
//! serde's strictness. Each returns `None` to make the scanner decline.

use std::borrow::Cow;

/// Deepest nesting an ignored value may have before the scanner declines.
const MAX_SKIP_DEPTH: u32 = 32;

pub(super) struct Scanner<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) at: usize,
}

/// `None` everywhere below means "decline".
impl<'a> Scanner<'a> {
    pub(super) fn whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// The next non-whitespace byte, not consumed.
    pub(super) fn peek(&mut self) -> Option<u8> {
        self.whitespace();
        self.bytes.get(self.at).copied()
    }

    pub(super) fn expect(&mut self, byte: u8) -> Option<()> {
        if self.peek()? == byte {
            self.at += 1;
            Some(())
        } else {
            None
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.bytes[self.at..].starts_with(word) {
            self.at += word.len();
            Some(())
        } else {
            None
        }
    }

    /// Consumes `null` if it comes next.
    pub(super) fn null(&mut self) -> Option<bool> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            Some(true)
        } else {
            Some(false)
        }
    }

    /// An object, calling `field` for each key with the scanner positioned
    /// before the value; `field` must consume the value.
    pub(super) fn object(
        &mut self,
        mut field: impl FnMut(&mut Self, &'a [u8]) -> Option<()>,
    ) -> Option<()> {
        self.expect(b'{')?;
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            let key = self.key()?;
            self.expect(b':')?;
            field(self, key)?;
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A field name without escapes, as raw bytes (valid UTF-8 checked).
    fn key(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let start = self.at;
        let (end, ascii) = plain_run(self.bytes, start);
        if *self.bytes.get(end)? != b'"' {
            return None;
        }
        let key = &self.bytes[start..end];
        if !ascii {
            std::str::from_utf8(key).ok()?;
        }
        self.at = end + 1;
        Some(key)
    }

    /// A string, borrowed when it holds no escapes; escapes are decoded
    /// exactly as serde_json does, or the scanner declines.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.expect(b'"')?;
        let start = self.at;
        let (end, _) = plain_run(self.bytes, start);
        let plain = &self.bytes[start..end];
        self.at = end;
        match *self.bytes.get(end)? {
            b'"' => {
                self.at += 1;
                return std::str::from_utf8(plain).ok().map(Cow::Borrowed);
            }
            b'\\' => {}
            _ => return None,
        }
        let mut decoded = plain.to_vec();
        loop {
            match *self.bytes.get(self.at)? {
                b'"' => {
                    self.at += 1;
                    return String::from_utf8(decoded).ok().map(Cow::Owned);
                }
                b'\\' => {
                    self.at += 1;
                    let escape = *self.bytes.get(self.at)?;
                    self.at += 1;
                    let byte = match escape {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => {
                            let character = self.unicode_escape()?;
                            let mut buffer = [0u8; 4];
                            decoded
                                .extend_from_slice(character.encode_utf8(&mut buffer).as_bytes());
                            continue;
                        }
                        _ => return None,
                    };
                    decoded.push(byte);
                }
                byte if byte < 0x20 => return None,
                byte => {
                    decoded.push(byte);
                    self.at += 1;
                }
            }
        }
    }

    /// The character of a `\uXXXX` escape (the `\u` already consumed),
    /// joining a surrogate pair; a lone surrogate declines.
    fn unicode_escape(&mut self) -> Option<char> {
        let first = self.hex4()?;
        match first {
            0xD800..=0xDBFF => {
                self.literal(b"\\u")?;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return None;
                }
                let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                char::from_u32(code)
            }
            0xDC00..=0xDFFF => None,
            code => char::from_u32(code),
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.bytes.get(self.at..self.at + 4)?;
        let mut value = 0u32;
        for &digit in digits {
            value = value * 16 + char::from(digit).to_digit(16)?;
        }
        self.at += 4;
        Some(value)
    }

    pub(super) fn optional_string(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.null()? {
            Some(None)
        } else {
            self.string().map(Some)
        }
    }

    /// A non-negative integer without sign, fraction or exponent, as serde
    /// reads into an unsigned field; anything else declines.
    pub(super) fn unsigned(&mut self) -> Option<u64> {
        self.peek()?;
        let start = self.at;
        let mut value: u64 = 0;
        while let Some(&digit @ b'0'..=b'9') = self.bytes.get(self.at) {
            value = value
                .checked_mul(10)?
                .checked_add(u64::from(digit - b'0'))?;
            self.at += 1;
        }
        let length = self.at - start;
        if length == 0 || (length > 1 && self.bytes[start] == b'0') {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = self.bytes.get(self.at) {
            return None;
        }
        Some(value)
    }

    pub(super) fn optional_unsigned(&mut self) -> Option<Option<u64>> {
        if self.null()? {
            Some(None)
        } else {
            self.unsigned().map(Some)
        }
    }

    /// Skips any JSON value, checking its syntax as strictly as serde.
    pub(super) fn skip(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_SKIP_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => self.object(|scanner, _| scanner.skip(depth + 1)),
            b'[' => {
                self.at += 1;
                if self.peek()? == b']' {
                    self.at += 1;
                    return Some(());
                }
                loop {
                    self.skip(depth + 1)?;
                    match self.peek()? {
                        b',' => self.at += 1,
                        b']' => {
                            self.at += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Option<()> {
        if self.bytes.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        match self.bytes.get(self.at)? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.bytes.get(self.at) == Some(&b'.') {
            self.at += 1;
            self.at_least_one_digit()?;
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.at) {
            self.at += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.at) {
                self.at += 1;
            }
            self.at_least_one_digit()?;
        }
        Some(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn at_least_one_digit(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }
}

/// The end of the run of plain string bytes from `start`: the position
/// of the first `"`, `\\` or control byte (or the end of input), and
/// whether the run is surely ASCII. Eight bytes at a time (SWAR): the
/// lowest flagged byte of each test below is exact, which is all that
/// is used.
fn plain_run(bytes: &[u8], start: usize) -> (usize, bool) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut at = start;
    let mut high = 0u64;
    while let Some(word) = bytes.get(at..at + 8) {
        let mut array = [0u8; 8];
        array.copy_from_slice(word);
        let value = u64::from_le_bytes(array);
        let quote = value ^ (ONES * u64::from(b'"'));
        let backslash = value ^ (ONES * u64::from(b'\\'));
        let flagged = (quote.wrapping_sub(ONES) & !quote
            | backslash.wrapping_sub(ONES) & !backslash
            | value.wrapping_sub(ONES * 0x20) & !value)
            & HIGHS;
        if flagged != 0 {
            let stop = at + (flagged.trailing_zeros() / 8) as usize;
            // High bits after the stop may count too: only ever a
            // needless UTF-8 check, never a missed one.
            return (stop, high | (value & HIGHS) == 0);
        }
        high |= value & HIGHS;
        at += 8;
    }
    while let Some(&byte) = bytes.get(at) {
        if byte == b'"' || byte == b'\\' || byte < 0x20 {
            break;
        }
        high |= u64::from(byte & 0x80);
        at += 1;
    }
    (at, high == 0)
}

/// Which known fields an object has had: serde rejects a duplicate, so the
/// scanner declines on one.
#[derive(Default)]
pub(super) struct Seen(u8);

impl Seen {
    pub(super) fn first(&mut self, field: u8) -> Option<()> {
        let bit = 1 << field;
        if self.0 & bit != 0 {
            return None;
        }
        self.0 |= bit;
        Some(())
    }
}
