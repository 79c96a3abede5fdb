//! The rubric grader for the reasoning benchmark.
//!
//! A regex that wants one exact phrasing scores good answers 0 %. Here each
//! criterion lists alternatives; text is normalised first (case, markdown
//! emphasis, punctuation, Unicode superscripts and arrows, spacing) and
//! numbers are read in digit or word form, with thousands separators and
//! units, and compared with a tolerance. The answer text is kept beside the
//! grade so a person can check it.

use serde::{Deserialize, Serialize};

/// What satisfies one criterion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Check {
    /// Any of these phrases appears (after normalisation of both sides).
    AnyPhrase { phrases: Vec<String> },
    /// Every group has at least one of its phrases.
    AllGroups { groups: Vec<Vec<String>> },
    /// A number within `tolerance` of `value` appears, in digits or words.
    Number { value: f64, tolerance: f64 },
    /// A number appears in the last `window_chars` characters of the answer
    /// (the stated result, not a number quoted from the question).
    FinalNumber {
        value: f64,
        tolerance: f64,
        window_chars: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Criterion {
    pub name: String,
    pub weight: f64,
    pub check: Check,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rubric {
    pub criteria: Vec<Criterion>,
    /// Share of the total weight needed to pass.
    pub pass_fraction: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CriterionResult {
    pub name: String,
    pub met: bool,
    /// The alternative that matched, for a reader checking the grade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grade {
    pub score: f64,
    pub passed: bool,
    pub criteria: Vec<CriterionResult>,
}

impl Rubric {
    pub fn grade(&self, answer: &str) -> Grade {
        let normalized = normalize(answer);
        let numbers = extract_numbers(&normalized);
        let total: f64 = self.criteria.iter().map(|c| c.weight).sum();
        let mut earned = 0.0;
        let mut results = Vec::new();
        for criterion in &self.criteria {
            let matched = evaluate(&criterion.check, &normalized, &numbers);
            if matched.is_some() {
                earned += criterion.weight;
            }
            results.push(CriterionResult {
                name: criterion.name.clone(),
                met: matched.is_some(),
                matched,
            });
        }
        let score = if total > 0.0 { earned / total } else { 0.0 };
        Grade {
            score,
            passed: total > 0.0 && score + 1e-9 >= self.pass_fraction,
            criteria: results,
        }
    }
}

fn evaluate(check: &Check, text: &str, numbers: &[(usize, f64)]) -> Option<String> {
    match check {
        Check::AnyPhrase { phrases } => find_phrase(text, phrases),
        Check::AllGroups { groups } => {
            let mut found = Vec::new();
            for group in groups {
                found.push(find_phrase(text, group)?);
            }
            Some(found.join(" + "))
        }
        Check::Number { value, tolerance } => numbers
            .iter()
            .find(|(_, number)| (number - value).abs() <= *tolerance)
            .map(|(_, number)| format_number(*number)),
        Check::FinalNumber {
            value,
            tolerance,
            window_chars,
        } => {
            let window_start = text.len().saturating_sub(*window_chars);
            numbers
                .iter()
                .filter(|(at, _)| *at >= window_start)
                .find(|(_, number)| (number - value).abs() <= *tolerance)
                .map(|(_, number)| format_number(*number))
        }
    }
}

fn format_number(number: f64) -> String {
    if number.fract() == 0.0 {
        format!("{number:.0}")
    } else {
        format!("{number}")
    }
}

/// Finds a phrase on word boundaries of the normalised text.
fn find_phrase(text: &str, phrases: &[String]) -> Option<String> {
    for phrase in phrases {
        let needle = normalize(phrase);
        if needle.is_empty() {
            continue;
        }
        let padded_text = format!(" {text} ");
        let padded_needle = format!(" {needle} ");
        if padded_text.contains(&padded_needle) {
            return Some(phrase.clone());
        }
    }
    None
}

/// Lower-cases, maps look-alike symbols to words or ASCII, and turns every
/// run of other punctuation and whitespace into one space, keeping the
/// characters numbers need (`.`, `,` between digits; `^`; `-` before
/// digits).
pub fn normalize(text: &str) -> String {
    let mut mapped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '²' => mapped.push_str("^2"),
            '³' => mapped.push_str("^3"),
            '→' | '⇒' | '⟶' => mapped.push_str(" -> "),
            '×' => mapped.push_str(" x "),
            '−' | '–' | '—' => mapped.push('-'),
            '’' | '‘' => mapped.push('\''),
            other => mapped.extend(other.to_lowercase()),
        }
    }
    let chars: Vec<char> = mapped.chars().collect();
    let mut out = String::with_capacity(mapped.len());
    let mut last_space = true;
    for (index, &c) in chars.iter().enumerate() {
        let previous = index.checked_sub(1).map(|i| chars[i]);
        let next = chars.get(index + 1).copied();
        let keep = c.is_alphanumeric()
            || c == '^'
            || c == '\''
            || c == '+'
            || c == '='
            || c == '<'
            || c == '>'
            || c == '('
            || c == ')'
            || ((c == '.' || c == ',')
                && previous.is_some_and(|p| p.is_ascii_digit())
                && next.is_some_and(|n| n.is_ascii_digit()))
            || (c == '-' && (next.is_some_and(|n| n.is_ascii_digit() || n == '>')));
        if keep {
            out.push(c);
            last_space = false;
        } else if !last_space {
            out.push(' ');
            last_space = true;
        }
    }
    out.trim().to_string()
}

const NUMBER_WORDS: [(&str, f64); 28] = [
    ("zero", 0.0),
    ("one", 1.0),
    ("two", 2.0),
    ("three", 3.0),
    ("four", 4.0),
    ("five", 5.0),
    ("six", 6.0),
    ("seven", 7.0),
    ("eight", 8.0),
    ("nine", 9.0),
    ("ten", 10.0),
    ("eleven", 11.0),
    ("twelve", 12.0),
    ("thirteen", 13.0),
    ("fourteen", 14.0),
    ("fifteen", 15.0),
    ("sixteen", 16.0),
    ("seventeen", 17.0),
    ("eighteen", 18.0),
    ("nineteen", 19.0),
    ("twenty", 20.0),
    ("thirty", 30.0),
    ("forty", 40.0),
    ("fifty", 50.0),
    ("sixty", 60.0),
    ("seventy", 70.0),
    ("eighty", 80.0),
    ("ninety", 90.0),
];

/// Numbers in normalised text with their byte offsets: digits (with `,`
/// thousands separators and `.` decimals, a `k` suffix for thousands) and
/// English number words up to ninety-nine.
pub fn extract_numbers(text: &str) -> Vec<(usize, f64)> {
    let mut numbers = Vec::new();
    let bytes = text.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        let c = bytes[index];
        let starts_number = c.is_ascii_digit()
            && (index == 0
                || !bytes[index - 1].is_ascii_alphanumeric()
                || bytes[index - 1] == b'-');
        if starts_number {
            let start = index;
            let negative = index > 0 && bytes[index - 1] == b'-';
            let mut end = index;
            while end < bytes.len()
                && (bytes[end].is_ascii_digit()
                    || ((bytes[end] == b',' || bytes[end] == b'.')
                        && end + 1 < bytes.len()
                        && bytes[end + 1].is_ascii_digit()))
            {
                end += 1;
            }
            let literal: String = text[start..end].chars().filter(|&c| c != ',').collect();
            if let Ok(mut value) = literal.parse::<f64>() {
                if end < bytes.len()
                    && bytes[end] == b'k'
                    && (end + 1 == bytes.len() || !bytes[end + 1].is_ascii_alphanumeric())
                {
                    value *= 1000.0;
                }
                numbers.push((start, if negative { -value } else { value }));
            }
            index = end;
            continue;
        }
        index += 1;
    }
    // Number words, including "twenty four" / "twenty-four" (the hyphen is
    // already a space after normalisation).
    let words: Vec<(usize, &str)> = text
        .split(' ')
        .scan(0usize, |offset, word| {
            let at = *offset;
            *offset += word.len() + 1;
            Some((at, word))
        })
        .collect();
    let lookup = |word: &str| {
        NUMBER_WORDS
            .iter()
            .find(|(w, _)| *w == word)
            .map(|(_, v)| *v)
    };
    let mut position = 0;
    while position < words.len() {
        let (at, word) = words[position];
        if let Some(value) = lookup(word) {
            let mut total = value;
            let unit = words
                .get(position + 1)
                .and_then(|(_, w)| lookup(w))
                .filter(|unit| value >= 20.0 && *unit < 10.0);
            if let Some(unit) = unit {
                total += unit;
                position += 1;
            }
            numbers.push((at, total));
        }
        position += 1;
    }
    numbers.sort_by_key(|(at, _)| *at);
    numbers
}
