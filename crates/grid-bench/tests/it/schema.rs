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
        |value| {
            validate(&create_user_schema(), value)
                .expect("the schema compiles")
                .into_iter()
                .map(|v| format!("{}: {}", v.path, v.message))
                .collect::<Vec<_>>()
        },
    );
}

#[test]
fn additional_properties_false_is_enforced() {
    let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false});
    let violations = validate(&schema, &json!({"a": "x", "b": 1})).expect("the schema compiles");
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].path, "$.b");
}
