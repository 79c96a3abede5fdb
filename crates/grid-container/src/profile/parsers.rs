//! The small parsers of compose values: shell words, sizes, durations, ports.
//! Each turns text into a typed, bounded value or a typed error that says
//! what is wrong; the YAML walker adds which key it was.

use std::time::Duration;

use super::types::PortMapping;
use crate::secret::{Redact, Redactor};

/// Why a command string cannot be split into words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WordsError {
    #[error("has an unterminated single quote; close it or write the command as a YAML list")]
    UnterminatedSingleQuote,
    #[error("has an unterminated double quote; close it or write the command as a YAML list")]
    UnterminatedDoubleQuote,
}

/// A size that is not one (`shm_size: lots`), or too large for the engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a size; write e.g. 16g, 512m or a byte count (at most 8 EiB)")]
pub struct SizeError {
    pub text: String,
}

/// A duration that is not one, or out of bounds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("`{text}` is not a duration; write e.g. 30s, 1m30s or 500ms")]
    Malformed { text: String },
    #[error("`{text}` is longer than {max:?}, the longest duration accepted here")]
    TooLong { text: String, max: Duration },
}

/// A `ports:` entry that cannot be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("`{text}`: port ranges are not supported; publish one port")]
    Range { text: String },
    #[error("`{text}`: unterminated `[` around an IPv6 address; write e.g. [::1]:5002:8000")]
    UnterminatedBracket { text: String },
    #[error("`{text}` is not HOST_IP:HOST_PORT:CONTAINER_PORT")]
    Shape { text: String },
    #[error("`{text}`: `{value}` is not a port number (0-65535)")]
    NotAPort { text: String, value: String },
}

/// A `--port` value the server could not listen on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`--port {value}` is not a port the server can listen on; write a number from 1 to 65535, e.g. `--port 8000`"
)]
pub struct ServerPortError {
    pub value: String,
}

impl Redact for PortError {
    fn redact_with(self, redactor: &Redactor) -> Self {
        let r = |text: String| redactor.redact(&text);
        match self {
            PortError::Range { text } => PortError::Range { text: r(text) },
            PortError::UnterminatedBracket { text } => {
                PortError::UnterminatedBracket { text: r(text) }
            }
            PortError::Shape { text } => PortError::Shape { text: r(text) },
            PortError::NotAPort { text, value } => PortError::NotAPort {
                text: r(text),
                value: r(value),
            },
        }
    }
}

impl Redact for ServerPortError {
    fn redact_with(self, redactor: &Redactor) -> Self {
        ServerPortError {
            value: redactor.redact(&self.value),
        }
    }
}

/// The longest compose duration accepted. Durations here are healthcheck
/// periods; a day is far beyond any useful one, and the bound keeps the
/// engine's nanosecond fields (i64) far from overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// Splits a command string the way a POSIX shell splits words (quotes and
/// backslashes), without expanding anything.
pub fn split_words(text: &str) -> Result<Vec<String>, WordsError> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => current.push(c),
                        None => return Err(WordsError::UnterminatedSingleQuote),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => current.push(c),
                            Some(c) => {
                                current.push('\\');
                                current.push(c);
                            }
                            None => return Err(WordsError::UnterminatedDoubleQuote),
                        },
                        Some(c) => current.push(c),
                        None => return Err(WordsError::UnterminatedDoubleQuote),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    current.push(c);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                current.push(c);
            }
        }
    }
    if in_word {
        words.push(current);
    }
    Ok(words)
}

/// Docker-style sizes: `16g`, `512mb`, `1024`. Units are powers of 1024.
pub fn parse_bytes(text: &str) -> Result<i64, SizeError> {
    let error = || SizeError {
        text: text.to_string(),
    };
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits_end);
    let number: f64 = number.parse().map_err(|_| error())?;
    let multiplier: f64 = match unit.trim() {
        "" | "b" => 1.0,
        "k" | "kb" => 1024.0,
        "m" | "mb" => 1024.0 * 1024.0,
        "g" | "gb" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(error()),
    };
    let bytes = number * multiplier;
    // `i64::MAX as f64` rounds up to 2^63, so the bound is strict.
    if bytes.is_finite() && bytes >= 0.0 && bytes < i64::MAX as f64 {
        Ok(bytes as i64)
    } else {
        Err(error())
    }
}

/// Compose durations: `1m30s`, `500ms`, `10s`, `2h`; a bare number is
/// seconds. At most [`MAX_DURATION`]; never infinite, negative or NaN.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let malformed = || DurationError::Malformed {
        text: text.to_string(),
    };
    let too_long = || DurationError::TooLong {
        text: text.to_string(),
        max: MAX_DURATION,
    };
    // Converts one component, refusing what `Duration` cannot hold.
    let seconds = |value: f64| -> Result<Duration, DurationError> {
        if !value.is_finite() || value < 0.0 {
            return Err(if value == f64::INFINITY {
                too_long()
            } else {
                malformed()
            });
        }
        Duration::try_from_secs_f64(value).map_err(|_| too_long())
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(malformed());
    }
    let total = if let Ok(value) = trimmed.parse::<f64>() {
        // `inf`, `nan` and `1e400` parse as floats too.
        seconds(value)?
    } else {
        let mut total = Duration::ZERO;
        let mut rest = trimmed;
        while !rest.is_empty() {
            let number_end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(malformed)?;
            if number_end == 0 {
                return Err(malformed());
            }
            let number: f64 = rest[..number_end].parse().map_err(|_| malformed())?;
            rest = &rest[number_end..];
            let unit_end = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let unit = &rest[..unit_end];
            rest = &rest[unit_end..];
            let part = match unit {
                "ns" => seconds(number / 1e9)?,
                "us" | "µs" => seconds(number / 1e6)?,
                "ms" => seconds(number / 1e3)?,
                "s" => seconds(number)?,
                "m" => seconds(number * 60.0)?,
                "h" => seconds(number * 3600.0)?,
                _ => return Err(malformed()),
            };
            total = total.checked_add(part).ok_or_else(too_long)?;
        }
        total
    };
    if total > MAX_DURATION {
        return Err(too_long());
    }
    Ok(total)
}

/// Parses one short-syntax port entry: `8000`, `5002:8000`,
/// `127.0.0.1:5002:8000`, `127.0.0.1::8000`, with an optional `/tcp`.
pub fn parse_port(text: &str) -> Result<PortMapping, PortError> {
    let (spec, protocol) = match text.rsplit_once('/') {
        Some((spec, protocol)) => (spec, protocol.to_string()),
        None => (text, "tcp".to_string()),
    };
    if spec.contains('-') {
        return Err(PortError::Range {
            text: text.to_string(),
        });
    }
    // An IPv6 host address is written in brackets: `[::1]:5002:8000`.
    let (host_ip, rest) = if let Some(stripped) = spec.strip_prefix('[') {
        let (ip, rest) =
            stripped
                .split_once("]:")
                .ok_or_else(|| PortError::UnterminatedBracket {
                    text: text.to_string(),
                })?;
        (Some(ip.to_string()), rest.to_string())
    } else {
        let parts: Vec<&str> = spec.split(':').collect();
        match parts.len() {
            1 | 2 => (None, spec.to_string()),
            3 => (
                Some(parts[0].to_string()),
                format!("{}:{}", parts[1], parts[2]),
            ),
            _ => {
                return Err(PortError::Shape {
                    text: text.to_string(),
                });
            }
        }
    };
    let port = |value: &str| -> Result<u16, PortError> {
        value.parse::<u16>().map_err(|_| PortError::NotAPort {
            text: text.to_string(),
            value: value.to_string(),
        })
    };
    let (host_port, container_port) = match rest.split_once(':') {
        Some(("", container)) => (None, port(container)?),
        Some((host, container)) => (Some(port(host)?), port(container)?),
        None => (None, port(&rest)?),
    };
    let host_ip = host_ip.filter(|ip| !ip.is_empty());
    Ok(PortMapping {
        host_ip,
        host_port,
        container_port,
        protocol,
    })
}

/// The value of `--port`: a port a server can listen on (not 0, which would
/// make it pick one we could not find).
pub fn parse_server_port(value: &str) -> Result<u16, ServerPortError> {
    match value.trim().parse::<u16>() {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(ServerPortError {
            value: value.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_bounded() {
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        for text in ["1e400", "inf", "25h", "99999999999999999999h"] {
            assert!(
                matches!(parse_duration(text), Err(DurationError::TooLong { .. })),
                "{text}: {:?}",
                parse_duration(text)
            );
        }
        for text in ["nan", "-1", "", "3x", "s"] {
            assert!(
                matches!(parse_duration(text), Err(DurationError::Malformed { .. })),
                "{text}: {:?}",
                parse_duration(text)
            );
        }
    }

    #[test]
    fn sizes_are_bounded() {
        assert_eq!(parse_bytes("16g"), Ok(16 << 30));
        assert!(parse_bytes("99999999999t").is_err());
        assert!(parse_bytes("1e400").is_err());
    }
}
