//! A JSON-schema checker for tool arguments, compiled first and strict
//! about what it implements.
//!
//! It implements what tool definitions use: `type` (a name or a list),
//! `properties`, `required`, `additionalProperties` (boolean or schema),
//! `items` (one schema), `enum`, `const`, `minimum`/`maximum`,
//! `exclusiveMinimum`/`exclusiveMaximum` (numbers), `minLength`/`maxLength`,
//! `minItems`/`maxItems`, and boolean schemas, nested to any depth.
//! Annotations that assert nothing are accepted (`title`, `description`,
//! `default`, `examples`, `$comment`, `$schema`, `deprecated`, `readOnly`,
//! `writeOnly`, and `format`, which JSON Schema 2020-12 makes an annotation
//! by default). Any other keyword (`pattern`, `oneOf`, `$ref`, ...) is
//! refused when the schema is compiled, with its path, so a check is never
//! silently skipped.
//!
//! Why not the `jsonschema` crate: it would bring a regex engine, URL and
//! reference resolution (and optionally an HTTP client) into the measuring
//! client's crate for tool schemas that the battery writes itself and that
//! use a dozen keywords; refusing the rest keeps the checker honest at a
//! few hundred lines.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// Where, as a JSON pointer-like path (`$.address.city`).
    pub path: String,
    pub message: String,
}

/// A schema the checker cannot honour.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error(
        "the JSON schema at {path} uses {keyword:?}, which the tool-argument checker does not implement; remove it, or implement it in grid-bench's schema.rs"
    )]
    UnsupportedKeyword { path: String, keyword: String },
    #[error("the JSON schema at {path} has an invalid {keyword:?}: it must be {expected}")]
    InvalidKeyword {
        path: String,
        keyword: &'static str,
        expected: &'static str,
    },
    #[error("the JSON schema at {path} is {found}, not an object or a boolean")]
    NotASchema { path: String, found: &'static str },
}

/// Keywords that only annotate.
const ANNOTATIONS: [&str; 10] = [
    "title",
    "description",
    "default",
    "examples",
    "$comment",
    "$schema",
    "deprecated",
    "readOnly",
    "writeOnly",
    "format",
];

const TYPE_NAMES: [&str; 7] = [
    "null", "boolean", "integer", "number", "string", "array", "object",
];

/// A compiled schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema(Node);

#[derive(Debug, Clone, PartialEq, Default)]
struct Node {
    /// `false`: nothing is valid here.
    accepts_nothing: bool,
    types: Option<Vec<String>>,
    options: Option<Vec<Value>>,
    constant: Option<Value>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    exclusive_minimum: Option<f64>,
    exclusive_maximum: Option<f64>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    required: Vec<String>,
    properties: BTreeMap<String, Node>,
    additional: Additional,
    items: Option<Box<Node>>,
}

#[derive(Debug, Clone, PartialEq, Default)]
enum Additional {
    #[default]
    Any,
    Forbidden,
    Schema(Box<Node>),
}

impl Schema {
    /// Compiles `schema`, refusing any keyword the checker does not
    /// implement.
    pub fn compile(schema: &Value) -> Result<Schema, SchemaError> {
        compile(schema, "$").map(Schema)
    }

    /// Checks `value`; an empty list means valid.
    pub fn validate(&self, value: &Value) -> Vec<Violation> {
        let mut violations = Vec::new();
        check(&self.0, value, "$", &mut violations);
        violations
    }
}

/// Compiles `schema` and checks `value` against it.
pub fn validate(schema: &Value, value: &Value) -> Result<Vec<Violation>, SchemaError> {
    Ok(Schema::compile(schema)?.validate(value))
}

fn compile(schema: &Value, path: &str) -> Result<Node, SchemaError> {
    let object = match schema {
        Value::Bool(accepts) => {
            return Ok(Node {
                accepts_nothing: !accepts,
                ..Node::default()
            });
        }
        Value::Object(object) => object,
        other => {
            return Err(SchemaError::NotASchema {
                path: path.to_string(),
                found: kind_of(other),
            });
        }
    };
    let invalid = |keyword: &'static str, expected: &'static str| SchemaError::InvalidKeyword {
        path: path.to_string(),
        keyword,
        expected,
    };
    let number = |keyword: &'static str| -> Result<Option<f64>, SchemaError> {
        object
            .get(keyword)
            .map(|value| value.as_f64().ok_or_else(|| invalid(keyword, "a number")))
            .transpose()
    };
    let count = |keyword: &'static str| -> Result<Option<u64>, SchemaError> {
        object
            .get(keyword)
            .map(|value| {
                value
                    .as_u64()
                    .ok_or_else(|| invalid(keyword, "a non-negative integer"))
            })
            .transpose()
    };
    let mut node = Node {
        minimum: number("minimum")?,
        maximum: number("maximum")?,
        exclusive_minimum: number("exclusiveMinimum")?,
        exclusive_maximum: number("exclusiveMaximum")?,
        min_length: count("minLength")?,
        max_length: count("maxLength")?,
        min_items: count("minItems")?,
        max_items: count("maxItems")?,
        constant: object.get("const").cloned(),
        ..Node::default()
    };
    for (keyword, value) in object {
        match keyword.as_str() {
            "type" => {
                let names: Vec<&str> = match value {
                    Value::String(name) => vec![name.as_str()],
                    Value::Array(names) => names.iter().filter_map(Value::as_str).collect(),
                    _ => Vec::new(),
                };
                let valid = !names.is_empty()
                    && value
                        .as_array()
                        .is_none_or(|list| list.len() == names.len())
                    && names.iter().all(|name| TYPE_NAMES.contains(name));
                if !valid {
                    return Err(invalid(
                        "type",
                        "a type name (null, boolean, integer, number, string, array, object) or a list of them",
                    ));
                }
                node.types = Some(names.into_iter().map(str::to_string).collect());
            }
            "enum" => {
                let options = value
                    .as_array()
                    .ok_or_else(|| invalid("enum", "an array of values"))?;
                node.options = Some(options.clone());
            }
            "required" => {
                let names = value
                    .as_array()
                    .filter(|names| names.iter().all(Value::is_string));
                let names =
                    names.ok_or_else(|| invalid("required", "an array of property names"))?;
                node.required = names
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect();
            }
            "properties" => {
                let properties = value
                    .as_object()
                    .ok_or_else(|| invalid("properties", "an object of schemas"))?;
                for (name, property) in properties {
                    node.properties
                        .insert(name.clone(), compile(property, &format!("{path}.{name}"))?);
                }
            }
            "additionalProperties" => {
                node.additional = match value {
                    Value::Bool(true) => Additional::Any,
                    Value::Bool(false) => Additional::Forbidden,
                    other => Additional::Schema(Box::new(compile(
                        other,
                        &format!("{path}.additionalProperties"),
                    )?)),
                };
            }
            "items" => {
                if value.is_array() {
                    return Err(invalid(
                        "items",
                        "one schema (tuple forms are not implemented)",
                    ));
                }
                node.items = Some(Box::new(compile(value, &format!("{path}[]"))?));
            }
            // Read above.
            "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" | "minLength"
            | "maxLength" | "minItems" | "maxItems" | "const" => {}
            annotation if ANNOTATIONS.contains(&annotation) => {}
            unsupported => {
                return Err(SchemaError::UnsupportedKeyword {
                    path: path.to_string(),
                    keyword: unsupported.to_string(),
                });
            }
        }
    }
    Ok(node)
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
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

fn check(node: &Node, value: &Value, path: &str, violations: &mut Vec<Violation>) {
    let mut push = |message: String| {
        violations.push(Violation {
            path: path.to_string(),
            message,
        })
    };
    if node.accepts_nothing {
        push("the schema allows no value here".to_string());
        return;
    }
    if let Some(allowed) = &node.types {
        if !allowed.iter().any(|name| matches_type(name, value)) {
            push(format!(
                "expected {}, found {}",
                allowed.join(" or "),
                type_name(value)
            ));
            return;
        }
    }
    if let Some(options) = node
        .options
        .as_ref()
        .filter(|options| !options.contains(value))
    {
        push(format!(
            "{value} is not one of {}",
            Value::Array(options.clone())
        ));
    }
    if let Some(constant) = node.constant.as_ref().filter(|constant| *constant != value) {
        push(format!("{value} is not the constant {constant}"));
    }
    if let Some(number) = value.as_f64() {
        if let Some(minimum) = node.minimum.filter(|minimum| number < *minimum) {
            push(format!("{number} is below the minimum {minimum}"));
        }
        if let Some(maximum) = node.maximum.filter(|maximum| number > *maximum) {
            push(format!("{number} is above the maximum {maximum}"));
        }
        if let Some(bound) = node.exclusive_minimum.filter(|bound| number <= *bound) {
            push(format!(
                "{number} is not above the exclusive minimum {bound}"
            ));
        }
        if let Some(bound) = node.exclusive_maximum.filter(|bound| number >= *bound) {
            push(format!(
                "{number} is not below the exclusive maximum {bound}"
            ));
        }
    }
    if let Some(text) = value.as_str() {
        let length = text.chars().count() as u64;
        if let Some(min_length) = node.min_length.filter(|min| length < *min) {
            push(format!("shorter than {min_length} characters"));
        }
        if let Some(max_length) = node.max_length.filter(|max| length > *max) {
            push(format!("longer than {max_length} characters"));
        }
    }
    match value {
        Value::Object(object) => {
            for name in &node.required {
                if !object.contains_key(name) {
                    violations.push(Violation {
                        path: path.to_string(),
                        message: format!("missing required property {name:?}"),
                    });
                }
            }
            for (key, item) in object {
                let item_path = format!("{path}.{key}");
                match node.properties.get(key) {
                    Some(item_schema) => check(item_schema, item, &item_path, violations),
                    None => match &node.additional {
                        Additional::Forbidden => violations.push(Violation {
                            path: item_path,
                            message: "property not allowed by the schema".into(),
                        }),
                        Additional::Schema(extra) => check(extra, item, &item_path, violations),
                        Additional::Any => {}
                    },
                }
            }
        }
        Value::Array(items) => {
            let count = items.len() as u64;
            if let Some(min_items) = node.min_items.filter(|min| count < *min) {
                violations.push(Violation {
                    path: path.to_string(),
                    message: format!("fewer than {min_items} items"),
                });
            }
            if let Some(max_items) = node.max_items.filter(|max| count > *max) {
                violations.push(Violation {
                    path: path.to_string(),
                    message: format!("more than {max_items} items"),
                });
            }
            if let Some(item_schema) = &node.items {
                for (index, item) in items.iter().enumerate() {
                    check(item_schema, item, &format!("{path}[{index}]"), violations);
                }
            }
        }
        _ => {}
    }
}
