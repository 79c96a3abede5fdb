use grid_bench::benchmarks::tool_calling::user_tools;
use grid_bench::schema::validate;
use serde_json::{Value, json};

use crate::check;

fn create_user_schema() -> Value {
    user_tools()[0]["function"]["parameters"].clone()
}

#[test]
fn nested_schema_violations_are_reported_with_paths() {
    let good = json!({"name": "Grace", "email": "g@x.org", "age": 85, "address": {"street": "1 Navy Way", "city": "Arlington", "country": "USA"}, "roles": ["admin"]});
    check(
        &[
            ("valid", good.clone(), vec![]),
            (
                "missing nested field",
                json!({"name": "G", "email": "g@x", "address": {"street": "s", "city": "c"}, "roles": ["admin"]}),
                vec!["$.address: missing required property \"country\"".to_string()],
            ),
            (
                "wrong type",
                json!({"name": "G", "email": "g@x", "age": "85", "address": {"street": "s", "city": "c", "country": "u"}, "roles": ["admin"]}),
                vec!["$.age: expected integer, found string".to_string()],
            ),
            (
                "float where integer",
                json!({"name": "G", "email": "g@x", "age": 85.5, "address": {"street": "s", "city": "c", "country": "u"}, "roles": ["admin"]}),
                vec!["$.age: expected integer, found number".to_string()],
            ),
            (
                "enum in array",
                json!({"name": "G", "email": "g@x", "address": {"street": "s", "city": "c", "country": "u"}, "roles": ["root"]}),
                vec![
                    "$.roles[0]: \"root\" is not one of [\"admin\",\"editor\",\"viewer\"]"
                        .to_string(),
                ],
            ),
            (
                "empty array",
                json!({"name": "G", "email": "g@x", "address": {"street": "s", "city": "c", "country": "u"}, "roles": []}),
                vec!["$.roles: fewer than 1 items".to_string()],
            ),
            (
                "object expected",
                json!({"name": "G", "email": "g@x", "address": "Arlington", "roles": ["admin"]}),
                vec!["$.address: expected object, found string".to_string()],
            ),
            (
                "below minimum",
                json!({"name": "G", "email": "g@x", "age": -1, "address": {"street": "s", "city": "c", "country": "u"}, "roles": ["admin"]}),
                vec!["$.age: -1 is below the minimum 0".to_string()],
            ),
        ],
        |value| messages(&create_user_schema(), value),
    );
}

/// The violations of `value` as `path: message` lines.
fn messages(schema: &Value, value: &Value) -> Vec<String> {
    validate(schema, value)
        .expect("the schema compiles")
        .into_iter()
        .map(|v| format!("{}: {}", v.path, v.message))
        .collect()
}

#[test]
fn additional_properties_false_is_enforced() {
    let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false});
    let violations = validate(&schema, &json!({"a": "x", "b": 1})).expect("the schema compiles");
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].path, "$.b");
}

#[test]
fn keywords_the_checker_does_not_implement_are_refused_with_their_path() {
    use grid_bench::schema::{Schema, SchemaError};
    let unsupported = |path: &str, keyword: &str| {
        Err(SchemaError::UnsupportedKeyword {
            path: path.to_string(),
            keyword: keyword.to_string(),
        })
    };
    check(
        &[
            (
                "pattern",
                json!({"type": "string", "pattern": "^a+$"}),
                unsupported("$", "pattern"),
            ),
            (
                "oneOf, nested",
                json!({"type": "object", "properties": {"unit": {"oneOf": [{"const": "c"}]}}}),
                unsupported("$.unit", "oneOf"),
            ),
            (
                "$ref in items",
                json!({"type": "array", "items": {"$ref": "#/$defs/x"}}),
                unsupported("$[]", "$ref"),
            ),
            (
                "a type that does not exist",
                json!({"type": "float"}),
                Err(SchemaError::InvalidKeyword {
                    path: "$".into(),
                    keyword: "type",
                    expected: "a type name (null, boolean, integer, number, string, array, object) or a list of them",
                }),
            ),
            (
                "a schema that is a number",
                json!({"properties": {"a": 3}}),
                Err(SchemaError::NotASchema {
                    path: "$.a".into(),
                    found: "a number",
                }),
            ),
            (
                "annotations only",
                json!({"type": "string", "description": "d", "title": "t", "format": "email", "examples": ["a@b"]}),
                Ok(()),
            ),
        ],
        |schema| Schema::compile(schema).map(|_| ()),
    );
    let message = Schema::compile(&json!({"pattern": "x"}))
        .expect_err("refused")
        .to_string();
    assert!(
        message.contains("\"pattern\"") && message.contains("does not implement"),
        "{message}"
    );
}

#[test]
fn boolean_schemas_and_the_added_bounds_are_checked() {
    check(
        &[
            (
                "false rejects",
                (json!(false), json!(1)),
                vec!["$: the schema allows no value here".to_string()],
            ),
            ("true accepts", (json!(true), json!({"x": 1})), vec![]),
            (
                "maxLength",
                (json!({"type": "string", "maxLength": 2}), json!("abc")),
                vec!["$: longer than 2 characters".to_string()],
            ),
            (
                "maxItems",
                (json!({"type": "array", "maxItems": 1}), json!([1, 2])),
                vec!["$: more than 1 items".to_string()],
            ),
            (
                "const",
                (json!({"const": "c"}), json!("f")),
                vec!["$: \"f\" is not the constant \"c\"".to_string()],
            ),
            (
                "exclusiveMaximum",
                (json!({"type": "number", "exclusiveMaximum": 10}), json!(10)),
                vec!["$: 10 is not below the exclusive maximum 10".to_string()],
            ),
        ],
        |(schema, value)| messages(schema, value),
    );
}

#[test]
fn the_batterys_own_tools_compile_and_an_unsupported_one_is_a_verdict_not_a_pass() {
    use grid_bench::benchmarks::tool_calling::{
        ToolVerdict, Tools, check_reply, travel_tools, weather_tools,
    };
    for tools in [weather_tools(), travel_tools(), user_tools()] {
        Tools::compile(tools).expect("the battery's tool schemas compile");
    }
    let tools = json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"code": {"type": "string", "pattern": "^[A-Z]+$"}}}}}]);
    let reply = grid_bench::Reply {
        tool_calls: vec![grid_bench::openai::ToolCall {
            id: "1".into(),
            name: "f".into(),
            arguments: "{\"code\": \"lowercase\"}".into(),
        }],
        ..Default::default()
    };
    match check_reply(&reply, "f", &tools) {
        ToolVerdict::UnsupportedSchema { error } => assert!(error.contains("pattern"), "{error}"),
        other => panic!("expected UnsupportedSchema, got {other:?}"),
    }
}
