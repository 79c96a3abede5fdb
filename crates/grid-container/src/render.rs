//! Rendering a configuration's flag settings into a profile's command line.
//!
//! Pure: no IO, no environment. `${VAR}` references pass through untouched,
//! because expansion happens only at launch and everything shown or written is
//! the unexpanded form.

use grid_plan::FlagSetting;

/// The profile's command with every setting applied.
///
/// A setting replaces the first occurrence of its flag in place, keeping the
/// spelling the profile used (`--flag value` or `--flag=value`), and removes
/// later occurrences so argparse's "last one wins" cannot bring an old value
/// back. A flag the command lacks is appended. For a switch, both halves of
/// the pair (`--enable-x` / `--no-enable-x`) count as the same flag. Every
/// other token is left exactly as it was.
pub fn render_command(base: &[String], settings: &[FlagSetting]) -> Vec<String> {
    let mut command = base.to_vec();
    for setting in settings {
        command = apply_setting(&command, setting);
    }
    command
}

/// Renders settings as the tokens they add, in order (for display).
pub fn setting_tokens(setting: &FlagSetting) -> Vec<String> {
    match setting {
        FlagSetting::Switch { flag, enabled } => vec![switch_token(&canonical(flag), *enabled)],
        FlagSetting::Value { flag, value } => vec![format!("--{}", canonical(flag)), value.clone()],
    }
}

/// The flag name without leading dashes, with underscores as dashes (vLLM's
/// parser accepts `--max_model_len` as `--max-model-len`).
fn canonical(flag: &str) -> String {
    flag.trim_start_matches('-').replace('_', "-")
}

fn switch_token(flag: &str, enabled: bool) -> String {
    if enabled {
        format!("--{flag}")
    } else {
        format!("--no-{flag}")
    }
}

/// What a command token is, relative to one flag name.
enum TokenMatch {
    /// `--flag` alone; a value flag takes the next token as its value.
    Bare,
    /// `--flag=value`.
    WithValue,
    /// `--no-flag` (only for switches).
    Negated,
    None,
}

fn match_token(token: &str, flag: &str) -> TokenMatch {
    let Some(name) = token.strip_prefix("--") else {
        return TokenMatch::None;
    };
    let (name, has_value) = match name.split_once('=') {
        Some((name, _)) => (name, true),
        None => (name, false),
    };
    let name = name.replace('_', "-");
    if name == flag {
        if has_value {
            TokenMatch::WithValue
        } else {
            TokenMatch::Bare
        }
    } else if name.strip_prefix("no-") == Some(flag) && !has_value {
        TokenMatch::Negated
    } else {
        TokenMatch::None
    }
}

fn apply_setting(command: &[String], setting: &FlagSetting) -> Vec<String> {
    let (flag, is_switch) = match setting {
        FlagSetting::Switch { flag, .. } => (canonical(flag), true),
        FlagSetting::Value { flag, .. } => (canonical(flag), false),
    };
    let mut out = Vec::with_capacity(command.len() + 2);
    let mut placed = false;
    let mut index = 0;
    while index < command.len() {
        let token = &command[index];
        let matched = match_token(token, &flag);
        // How many tokens the existing occurrence spans.
        let span = match (&matched, is_switch) {
            (TokenMatch::None, _) => 0,
            (TokenMatch::Negated, false) => 0,
            (TokenMatch::Bare, false) => {
                // `--flag value`: the value is the next token unless the flag
                // ends the command or is directly followed by another flag.
                match command.get(index + 1) {
                    Some(next) if !next.starts_with("--") => 2,
                    _ => 1,
                }
            }
            _ => 1,
        };
        if span == 0 {
            out.push(token.clone());
            index += 1;
            continue;
        }
        if !placed {
            placed = true;
            match setting {
                FlagSetting::Switch { enabled, .. } => out.push(switch_token(&flag, *enabled)),
                FlagSetting::Value { value, .. } => match matched {
                    TokenMatch::WithValue => {
                        // Keep the profile's spelling of the flag name.
                        let written = token.split_once('=').map(|(name, _)| name).unwrap_or(token);
                        out.push(format!("{written}={value}"));
                    }
                    _ => {
                        out.push(token.clone());
                        out.push(value.clone());
                    }
                },
            }
        }
        index += span;
    }
    if !placed {
        out.extend(setting_tokens(setting));
    }
    out
}

/// The value of `--flag` in a command, in either spelling; the last
/// occurrence wins, as with argparse. For flags taking several values
/// (`--served-model-name a b`) this is the first of them.
pub fn flag_value(command: &[String], flag: &str) -> Option<String> {
    let flag = canonical(flag);
    let mut found = None;
    for (index, token) in command.iter().enumerate() {
        match match_token(token, &flag) {
            TokenMatch::WithValue => {
                found = token.split_once('=').map(|(_, value)| value.to_string());
            }
            TokenMatch::Bare => {
                if let Some(next) = command
                    .get(index + 1)
                    .filter(|next| !next.starts_with("--"))
                {
                    found = Some(next.clone());
                }
            }
            _ => {}
        }
    }
    found
}

/// Removes every occurrence of `--flag` from a command, with its values
/// (`--flag=v`, or `--flag v1 v2 ...` up to the next `-` token, as argparse's
/// `nargs='+'` reads it), and returns the command without it and the values.
pub fn take_flag(command: &[String], flag: &str) -> (Vec<String>, Vec<String>) {
    let flag = canonical(flag);
    let mut rest = Vec::with_capacity(command.len());
    let mut values = Vec::new();
    let mut index = 0;
    while index < command.len() {
        let token = &command[index];
        match match_token(token, &flag) {
            TokenMatch::WithValue => {
                values.extend(token.split_once('=').map(|(_, value)| value.to_string()));
                index += 1;
            }
            TokenMatch::Bare => {
                index += 1;
                while let Some(next) = command.get(index).filter(|next| !next.starts_with('-')) {
                    values.push(next.clone());
                    index += 1;
                }
            }
            _ => {
                rest.push(token.clone());
                index += 1;
            }
        }
    }
    (rest, values)
}

/// Every value given to `--flag` (see [`take_flag`]).
pub fn flag_values(command: &[String], flag: &str) -> Vec<String> {
    take_flag(command, flag).1
}

/// The model a `vllm serve` command line serves under: `--served-model-name`,
/// else `--model`, else the positional model tag (the first token after an
/// optional leading `vllm serve`, when it is not a flag).
pub fn served_model_from_command(command: &[String]) -> Option<String> {
    if let Some(name) = flag_value(command, "served-model-name") {
        return Some(name);
    }
    if let Some(model) = flag_value(command, "model") {
        return Some(model);
    }
    let mut tokens = command.iter().peekable();
    if tokens
        .peek()
        .is_some_and(|t| t.as_str() == "vllm" || t.ends_with("/vllm"))
    {
        tokens.next();
    }
    if tokens.peek().is_some_and(|t| t.as_str() == "serve") {
        tokens.next();
    }
    tokens.next().filter(|t| !t.starts_with('-')).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn value_flag_followed_by_flag_is_bare() {
        let base = strings(&["--gpu-memory-utilization", "--enforce-eager"]);
        let out = render_command(
            &base,
            &[FlagSetting::Value {
                flag: "gpu-memory-utilization".into(),
                value: "0.9".into(),
            }],
        );
        assert_eq!(
            out,
            strings(&["--gpu-memory-utilization", "0.9", "--enforce-eager"])
        );
    }
}
