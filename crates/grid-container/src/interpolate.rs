//! Compose-style `${VAR}` interpolation.
//!
//! Supported: `$$` (a literal `$`), `$VAR`, `${VAR}`, `${VAR:-default}`,
//! `${VAR-default}`, `${VAR:?message}`, `${VAR?message}`, `${VAR:+alternative}`
//! and `${VAR+alternative}`. Defaults may themselves hold references.
//!
//! One deliberate difference from docker compose: a plain `${VAR}` whose
//! variable is unset *or empty* is an error naming the variable, never an empty
//! string, because an empty API key is how the study lost its server.

use std::collections::BTreeSet;

use crate::secret::Redactor;

/// A reference that could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnresolvedVariable {
    pub name: String,
    /// `unset`, `empty`, or the profile's own `${VAR:?message}` text.
    pub reason: String,
}

/// A malformed reference, found when the profile is loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed variable reference in `{text}`: {problem}")]
pub struct SyntaxError {
    pub text: String,
    pub problem: SyntaxProblem,
}

/// What is wrong with a reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxProblem {
    #[error("`${{` must be followed by a variable name")]
    MissingName,
    #[error("unterminated `${{`: add the closing `}}`")]
    Unterminated,
    #[error(
        "unexpected `{0}` after the variable name; use ${{VAR}}, ${{VAR:-default}} or ${{VAR:?message}}"
    )]
    UnexpectedCharacter(char),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Reference {
        name: String,
        operator: Operator,
        word: Vec<Segment>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    Plain,
    /// `:-` (true: also when empty) or `-`.
    Default(bool),
    /// `:?` or `?`.
    Required(bool),
    /// `:+` or `+`.
    Alternative(bool),
}

fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_name_char(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric()
}

/// Parses a text into literal and reference segments.
fn parse(text: &str) -> Result<Vec<Segment>, SyntaxError> {
    let chars: Vec<char> = text.chars().collect();
    let (segments, end) = parse_until(&chars, 0, false, text)?;
    debug_assert_eq!(end, chars.len());
    Ok(segments)
}

/// Parses from `start` until the end, or until an unmatched `}` when
/// `in_braces` (the word of a `${VAR:-word}`). Returns the position after it.
fn parse_until(
    chars: &[char],
    start: usize,
    in_braces: bool,
    text: &str,
) -> Result<(Vec<Segment>, usize), SyntaxError> {
    let error = |problem: SyntaxProblem| SyntaxError {
        text: text.to_string(),
        problem,
    };
    let mut segments = Vec::new();
    let mut literal = String::new();
    let mut i = start;
    while i < chars.len() {
        let c = chars[i];
        if in_braces && c == '}' {
            if !literal.is_empty() {
                segments.push(Segment::Literal(literal));
            }
            return Ok((segments, i + 1));
        }
        if c != '$' {
            literal.push(c);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                literal.push('$');
                i += 2;
            }
            Some('{') => {
                let mut j = i + 2;
                let name_start = j;
                while j < chars.len() && is_name_char(chars[j]) {
                    j += 1;
                }
                let name: String = chars[name_start..j].iter().collect();
                if name.is_empty() || !name.starts_with(is_name_start) {
                    return Err(error(SyntaxProblem::MissingName));
                }
                let operator = match (chars.get(j), chars.get(j + 1)) {
                    (Some('}'), _) => {
                        j += 1;
                        Operator::Plain
                    }
                    (Some(':'), Some('-')) => {
                        j += 2;
                        Operator::Default(true)
                    }
                    (Some(':'), Some('?')) => {
                        j += 2;
                        Operator::Required(true)
                    }
                    (Some(':'), Some('+')) => {
                        j += 2;
                        Operator::Alternative(true)
                    }
                    (Some('-'), _) => {
                        j += 1;
                        Operator::Default(false)
                    }
                    (Some('?'), _) => {
                        j += 1;
                        Operator::Required(false)
                    }
                    (Some('+'), _) => {
                        j += 1;
                        Operator::Alternative(false)
                    }
                    (None, _) => return Err(error(SyntaxProblem::Unterminated)),
                    (Some(other), _) => {
                        return Err(error(SyntaxProblem::UnexpectedCharacter(*other)));
                    }
                };
                let word = if operator == Operator::Plain {
                    Vec::new()
                } else {
                    let (word, end) = parse_until(chars, j, true, text)?;
                    if end > chars.len() || chars.get(end - 1) != Some(&'}') {
                        return Err(error(SyntaxProblem::Unterminated));
                    }
                    j = end;
                    word
                };
                if !literal.is_empty() {
                    segments.push(Segment::Literal(std::mem::take(&mut literal)));
                }
                segments.push(Segment::Reference {
                    name,
                    operator,
                    word,
                });
                i = j;
            }
            Some(&next) if is_name_start(next) => {
                let mut j = i + 1;
                while j < chars.len() && is_name_char(chars[j]) {
                    j += 1;
                }
                if !literal.is_empty() {
                    segments.push(Segment::Literal(std::mem::take(&mut literal)));
                }
                segments.push(Segment::Reference {
                    name: chars[i + 1..j].iter().collect(),
                    operator: Operator::Plain,
                    word: Vec::new(),
                });
                i = j;
            }
            // A lone `$` (end of text, or before a non-name character) is kept.
            _ => {
                literal.push('$');
                i += 1;
            }
        }
    }
    if in_braces {
        return Err(error(SyntaxProblem::Unterminated));
    }
    if !literal.is_empty() {
        segments.push(Segment::Literal(literal));
    }
    Ok((segments, chars.len()))
}

/// Checks a text's references without resolving them.
pub fn validate(text: &str) -> Result<(), SyntaxError> {
    parse(text).map(|_| ())
}

/// The names of every variable a text references, defaults included.
pub fn referenced_variables(text: &str, names: &mut BTreeSet<String>) {
    fn walk(segments: &[Segment], names: &mut BTreeSet<String>) {
        for segment in segments {
            if let Segment::Reference { name, word, .. } = segment {
                names.insert(name.clone());
                walk(word, names);
            }
        }
    }
    if let Ok(segments) = parse(text) {
        walk(&segments, names);
    }
}

/// Resolves references against `lookup`. Values taken from the environment
/// are added to `redactor`; defaults written in the profile are not secrets.
pub struct Expander<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    pub redactor: Redactor,
    pub unresolved: Vec<UnresolvedVariable>,
}

impl<'a> Expander<'a> {
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self {
            lookup,
            redactor: Redactor::new(),
            unresolved: Vec::new(),
        }
    }

    /// The expanded text. Unresolved references are recorded in
    /// `self.unresolved` and expand to nothing; callers check the list before
    /// using any result.
    pub fn expand(&mut self, text: &str) -> String {
        match parse(text) {
            Ok(segments) => self.expand_segments(&segments),
            // Syntax is validated at load time; a text that fails here was
            // built by a caller, and is used as written.
            Err(_) => text.to_string(),
        }
    }

    fn expand_segments(&mut self, segments: &[Segment]) -> String {
        let mut out = String::new();
        for segment in segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Reference {
                    name,
                    operator,
                    word,
                } => {
                    let value = (self.lookup)(name);
                    let is_set = value.is_some();
                    let is_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
                    // `${V}`, `${V:-w}` and `${V:?w}` substitute the value when
                    // it counts as present; `${V:+w}` never substitutes it.
                    let value_present = |colon: bool| if colon { is_nonempty } else { is_set };
                    let use_value = match operator {
                        Operator::Plain => is_nonempty,
                        Operator::Default(colon) | Operator::Required(colon) => {
                            value_present(*colon)
                        }
                        Operator::Alternative(_) => false,
                    };
                    if let (true, Some(value)) = (use_value, &value) {
                        // Every substituted value is treated as a secret.
                        self.redactor.add(value);
                        out.push_str(value);
                        continue;
                    }
                    match operator {
                        Operator::Plain => {
                            self.note_unresolved(
                                name,
                                if is_set { "set but empty" } else { "unset" },
                            );
                        }
                        Operator::Default(_) => {
                            let default = self.expand_segments(word);
                            out.push_str(&default);
                        }
                        Operator::Required(_) => {
                            let message = self.expand_segments(word);
                            let reason = if message.is_empty() {
                                "unset".to_string()
                            } else {
                                message
                            };
                            self.note_unresolved(name, &reason);
                        }
                        Operator::Alternative(colon) => {
                            if value_present(*colon) {
                                let alternative = self.expand_segments(word);
                                out.push_str(&alternative);
                            }
                        }
                    }
                }
            }
        }
        out
    }

    fn note_unresolved(&mut self, name: &str, reason: &str) {
        if !self.unresolved.iter().any(|u| u.name == name) {
            self.unresolved.push(UnresolvedVariable {
                name: name.to_string(),
                reason: reason.to_string(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_forms() {
        let lookup = |name: &str| match name {
            "KEY" => Some("abcdefgh".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let mut expander = Expander::new(&lookup);
        assert_eq!(expander.expand("a${KEY}b"), "aabcdefghb");
        assert_eq!(expander.expand("$KEY-x"), "abcdefgh-x");
        assert_eq!(expander.expand("${NOPE:-d${KEY}}"), "dabcdefgh");
        assert_eq!(expander.expand("${EMPTY-d}"), "");
        assert_eq!(expander.expand("${EMPTY:-d}"), "d");
        assert_eq!(expander.expand("$$KEY"), "$KEY");
        assert_eq!(expander.expand("${KEY:+yes}"), "yes");
        assert!(expander.unresolved.is_empty());
        expander.expand("${NOPE}");
        expander.expand("${EMPTY}");
        assert_eq!(expander.unresolved.len(), 2);
        assert!(validate("${OPEN").is_err());
        assert!(validate("${OPEN:-x").is_err());
        assert!(validate("${}").is_err());
    }
}
