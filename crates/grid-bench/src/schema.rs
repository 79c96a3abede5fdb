//! A JSON-schema validator for tool arguments: the subset tool definitions
//! use (`type`, `properties`, `required`, `additionalProperties`, `items`,
//! `enum`, `minimum`/`maximum`, `minLength`, `minItems`), nested to any
//! depth. Every violation is reported with its JSON path.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// Where, as a JSON pointer-like path (`$.address.city`).
    pub path: String,
    pub message: String,
}

/// Validates `value` against `schema`; an empty list means valid.
pub fn validate(schema: &Value, value: &Value) -> Vec<Violation> {
    let mut violations = Vec::new();
    check(schema, value, "$", &mut violations);
    violations
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(number) if number.is_i64() || number.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn matches_type(expected: &str, value: &Value) -> bool {
    match expected {
        "number" => value.is_number(),
        "integer" => {
            value.is_i64()
                || value.is_u64()
                || value
                    .as_f64()
                    .is_some_and(|number| number.fract() == 0.0 && number.is_finite())
        }
        other => type_name(value) == other,
    }
}

fn check(schema: &Value, value: &Value, path: &str, violations: &mut Vec<Violation>) {
    let Some(schema) = schema.as_object() else {
        // `true`/`{}`-like schemas accept anything.
        return;
    };
    let mut push = |message: String| {
        violations.push(Violation {
            path: path.to_string(),
            message,
        })
    };
    if let Some(expected) = schema.get("type") {
        let allowed: Vec<&str> = match expected {
            Value::String(name) => vec![name.as_str()],
            Value::Array(names) => names.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !allowed.is_empty() && !allowed.iter().any(|name| matches_type(name, value)) {
            push(format!(
                "expected {}, found {}",
                allowed.join(" or "),
                type_name(value)
            ));
            return;
        }
    }
    if let Some(options) = schema
        .get("enum")
        .and_then(Value::as_array)
        .filter(|options| !options.contains(value))
    {
        push(format!(
            "{value} is not one of {}",
            Value::Array(options.clone())
        ));
    }
    if let Some(number) = value.as_f64() {
        if let Some(minimum) = schema
            .get("minimum")
            .and_then(Value::as_f64)
            .filter(|minimum| number < *minimum)
        {
            push(format!("{number} is below the minimum {minimum}"));
        }
        if let Some(maximum) = schema
            .get("maximum")
            .and_then(Value::as_f64)
            .filter(|maximum| number > *maximum)
        {
            push(format!("{number} is above the maximum {maximum}"));
        }
    }
    let min_length = schema.get("minLength").and_then(Value::as_u64);
    if let Some(min_length) = min_length.filter(|min_length| {
        value
            .as_str()
            .is_some_and(|text| (text.chars().count() as u64) < *min_length)
    }) {
        push(format!("shorter than {min_length} characters"));
    }
    match value {
        Value::Object(object) => {
            if let Some(required) = schema.get("required").and_then(Value::as_array) {
                for name in required.iter().filter_map(Value::as_str) {
                    if !object.contains_key(name) {
                        violations.push(Violation {
                            path: path.to_string(),
                            message: format!("missing required property {name:?}"),
                        });
                    }
                }
            }
            let properties = schema.get("properties").and_then(Value::as_object);
            for (key, item) in object {
                let item_path = format!("{path}.{key}");
                match properties.and_then(|p| p.get(key)) {
                    Some(item_schema) => check(item_schema, item, &item_path, violations),
                    None => match schema.get("additionalProperties") {
                        Some(Value::Bool(false)) => violations.push(Violation {
                            path: item_path,
                            message: "property not allowed by the schema".into(),
                        }),
                        Some(extra @ Value::Object(_)) => {
                            check(extra, item, &item_path, violations)
                        }
                        _ => {}
                    },
                }
            }
        }
        Value::Array(items) => {
            if let Some(min_items) = schema
                .get("minItems")
                .and_then(Value::as_u64)
                .filter(|min_items| (items.len() as u64) < *min_items)
            {
                violations.push(Violation {
                    path: path.to_string(),
                    message: format!("fewer than {min_items} items"),
                });
            }
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter().enumerate() {
                    check(item_schema, item, &format!("{path}[{index}]"), violations);
                }
            }
        }
        _ => {}
    }
}
