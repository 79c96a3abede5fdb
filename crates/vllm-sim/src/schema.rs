//! Tool-call arguments generated from the tool's JSON schema, as guided
//! decoding would write them: every required property, a seeded half of
//! the optional ones, values within the schema's bounds.
//!
//! The schema comes from the request, so the work is bounded whatever it
//! says: nesting stops at [`MAX_DEPTH`], a call has at most [`MAX_NODES`]
//! values, a string at most [`MAX_STRING`] characters (the reply is cut at
//! `max_tokens` long before these).

use serde_json::{Map, Value, json};

use crate::text::{Rng, prose_tokens};

/// Objects and arrays deeper than this are written empty.
pub const MAX_DEPTH: usize = 8;
/// The most values (of any type) one call's arguments hold.
pub const MAX_NODES: usize = 1000;
/// The longest string a `minLength` can ask for.
pub const MAX_STRING: usize = 4096;

const CITIES: &[&str] = &[
    "London", "Paris", "Berlin", "Madrid", "Rome", "Oslo", "Vienna", "Lisbon",
];

/// Generates a value valid against a JSON schema: `type` (or a list of
/// types), `enum`, `const`, `object` with `properties` / `required`,
/// `array` with `items` / `minItems` / `maxItems`, `string` with
/// `minLength` / `maxLength` / `format: date|date-time|email|uri`,
/// `integer` / `number` with `minimum` / `maximum`, `boolean`, `null`,
/// `anyOf` / `oneOf` (first branch), within the bounds above.
pub fn generate_from_schema(schema: &Value, rng: &mut Rng) -> Value {
    Generator {
        rng,
        nodes_left: MAX_NODES,
    }
    .value(schema, 0, "")
}

struct Generator<'a> {
    rng: &'a mut Rng,
    nodes_left: usize,
}

impl Generator<'_> {
    fn value(&mut self, schema: &Value, depth: usize, key_hint: &str) -> Value {
        self.nodes_left = self.nodes_left.saturating_sub(1);
        let Some(obj) = schema.as_object() else {
            return json!("value");
        };
        if let Some(c) = obj.get("const") {
            return c.clone();
        }
        if let Some(Value::Array(options)) = obj.get("enum") {
            if !options.is_empty() {
                return options[(self.rng.next_u64() % options.len() as u64) as usize].clone();
            }
        }
        for key in ["anyOf", "oneOf", "allOf"] {
            if let Some(Value::Array(branches)) = obj.get(key) {
                if let Some(first) = branches
                    .iter()
                    .find(|b| b.get("type") != Some(&json!("null")))
                {
                    return self.value(first, depth + 1, key_hint);
                }
            }
        }
        match type_of(obj).as_str() {
            "object" => self.object(obj, depth),
            "array" => self.array(obj, depth, key_hint),
            "integer" => self.integer(obj),
            "number" => {
                let lo = obj.get("minimum").and_then(Value::as_f64).unwrap_or(0.0);
                let hi = obj
                    .get("maximum")
                    .and_then(Value::as_f64)
                    .unwrap_or(lo + 100.0);
                let v = lo + self.rng.next_f64() * (hi - lo).max(0.0);
                json!((v * 100.0).round() / 100.0)
            }
            "boolean" => json!(self.rng.next_u64() % 2 == 0),
            "null" => Value::Null,
            _ => self.string(obj, key_hint),
        }
    }

    fn object(&mut self, obj: &Map<String, Value>, depth: usize) -> Value {
        let mut out = Map::new();
        if depth >= MAX_DEPTH {
            return Value::Object(out);
        }
        let required: Vec<&str> = obj
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(Value::Object(props)) = obj.get("properties") {
            for (name, sub) in props {
                if self.nodes_left == 0 {
                    break;
                }
                if required.contains(&name.as_str()) || self.rng.next_f64() < 0.5 {
                    out.insert(name.clone(), self.value(sub, depth + 1, name));
                }
            }
        }
        Value::Object(out)
    }

    fn array(&mut self, obj: &Map<String, Value>, depth: usize, key_hint: &str) -> Value {
        let bound = |key: &str, default: u64| {
            obj.get(key)
                .and_then(Value::as_u64)
                .unwrap_or(default)
                .min(MAX_NODES as u64) as usize
        };
        let min = bound("minItems", 1);
        let max = bound("maxItems", 3).max(min);
        let n = self.rng.range(min, max.min(min + 3));
        if depth >= MAX_DEPTH {
            return Value::Array(Vec::new());
        }
        let item = obj
            .get("items")
            .cloned()
            .unwrap_or(json!({"type": "string"}));
        let mut items = Vec::new();
        for _ in 0..n {
            if self.nodes_left == 0 {
                break;
            }
            items.push(self.value(&item, depth + 1, key_hint));
        }
        Value::Array(items)
    }

    /// An integer in `[minimum, maximum]` (default `[1, 100]`), computed
    /// in i128 so that any i64 bounds work.
    fn integer(&mut self, obj: &Map<String, Value>) -> Value {
        let lo = obj.get("minimum").and_then(Value::as_i64).unwrap_or(1);
        let hi = obj
            .get("maximum")
            .and_then(Value::as_i64)
            .unwrap_or(lo.max(0).saturating_add(99));
        let span = (i128::from(hi) - i128::from(lo)).max(0) + 1;
        let offset = i128::from(self.rng.next_u64()) % span;
        // lo + offset lies in [lo, max(lo, hi)], inside i64.
        json!(i64::try_from(i128::from(lo) + offset).unwrap_or(lo))
    }

    fn string(&mut self, obj: &Map<String, Value>, key_hint: &str) -> Value {
        let format = obj.get("format").and_then(Value::as_str).unwrap_or("");
        let hint = key_hint.to_ascii_lowercase();
        let mut s = match format {
            "date" => "2025-01-15".to_owned(),
            "date-time" => "2025-01-15T09:30:00Z".to_owned(),
            "email" => "user@example.com".to_owned(),
            "uri" | "url" => "https://example.com/item".to_owned(),
            _ if hint.contains("city") || hint.contains("location") => {
                CITIES[(self.rng.next_u64() % CITIES.len() as u64) as usize].to_owned()
            }
            _ => prose_tokens(self.rng, 2).concat().trim().to_owned(),
        };
        let min = obj
            .get("minLength")
            .and_then(Value::as_u64)
            .unwrap_or(0)
            .min(MAX_STRING as u64) as usize;
        let chars = s.chars().count();
        s.extend(std::iter::repeat_n('x', min.saturating_sub(chars)));
        if let Some(max) = obj.get("maxLength").and_then(Value::as_u64) {
            s = s
                .chars()
                .take(max.min(MAX_STRING as u64) as usize)
                .collect();
        }
        json!(s)
    }
}

/// The schema's type: `type` (the first non-null of a list), else guessed
/// from `properties` or `items`, else string.
fn type_of(obj: &Map<String, Value>) -> String {
    match obj.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null")
            .to_owned(),
        _ if obj.contains_key("properties") => "object".into(),
        _ if obj.contains_key("items") => "array".into(),
        _ => "string".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(v: &Value) -> usize {
        1 + match v {
            Value::Array(a) => a.iter().map(nodes).sum(),
            Value::Object(o) => o.values().map(nodes).sum(),
            _ => 0,
        }
    }

    #[test]
    fn schema_generator_honours_required_enum_and_nesting() {
        let schema = json!({
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["c", "f"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
                "opts": {"type": "object", "properties": {"x": {"type": "boolean"}}, "required": ["x"]},
                "tags": {"type": "array", "items": {"type": "string"}}
            },
            "required": ["city", "unit", "days", "opts", "tags"]
        });
        let mut rng = Rng::new(3);
        let v = generate_from_schema(&schema, &mut rng);
        assert!(v["city"].is_string());
        assert!(v["unit"] == "c" || v["unit"] == "f");
        let d = v["days"].as_i64().expect("integer");
        assert!((1..=7).contains(&d));
        assert!(v["opts"]["x"].is_boolean());
        assert!(v["tags"].is_array());
    }

    /// Schemas a request may send whose literal reading has no bound: the
    /// value stays valid where it can and small (each failed before: an
    /// i64 overflow panic, a quadratic 100 000-character loop, 4.8 million
    /// values).
    #[test]
    fn hostile_schemas_give_bounded_values() {
        let mut deep = json!({"type": "string"});
        for _ in 0..14 {
            deep = json!({"type": "array", "minItems": 3, "items": deep});
        }
        let extremes = json!({"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX});
        let top = json!({"type": "integer", "minimum": i64::MAX});
        // (is an i64, character count, values)
        type Shape = (bool, Option<usize>, bool);
        let shape = |v: &Value| -> Shape {
            (
                v.is_i64(),
                v.as_str().map(|s| s.chars().count()),
                nodes(v) <= MAX_NODES,
            )
        };
        grid_core::testing::check(
            &[
                ("integer over all of i64", extremes, (true, None, true)),
                ("integer at i64::MAX", top, (true, None, true)),
                (
                    "a huge minLength",
                    json!({"type": "string", "minLength": 100_000}),
                    (false, Some(MAX_STRING), true),
                ),
                (
                    "a huge minItems",
                    json!({"type": "array", "minItems": 1_000_000}),
                    (false, None, true),
                ),
                ("arrays 14 deep", deep, (false, None, true)),
            ],
            |schema| shape(&generate_from_schema(schema, &mut Rng::new(1))),
        );
    }
}
