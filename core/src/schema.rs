//! JSON schemas for tool arguments: generated from typed structs with `schemars`
//! and checked by a small validator covering the subset those schemas use
//! (types, required, properties, additionalProperties, enum, numeric bounds, items).
//! The same validator checks arguments from teachers, models and plugin tools.

use schemars::{generate::SchemaSettings, JsonSchema};
use serde_json::{Map, Value};

/// The JSON schema of `T`, self-contained (sub-schemas inlined) and without the
/// `$schema`/`title` noise, ready for an OpenAI-style `parameters` field.
pub fn schema_for<T: JsonSchema>() -> Value {
    let generator = SchemaSettings::draft07()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .into_generator();
    let mut value = generator.into_root_schema_for::<T>().to_value();
    if let Value::Object(map) = &mut value {
        map.remove("title");
        map.remove("$schema");
        map.entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
    }
    value
}

/// One way arguments break their schema, with the JSON path where it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaViolation {
    /// Dotted JSON path to the offending value (`items[2].name`); empty for the root.
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

impl std::fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Checks `value` against `schema`, returning every violation found.
pub fn validate_arguments(schema: &Value, value: &Value) -> Result<(), Vec<SchemaViolation>> {
    let mut errors = Vec::new();
    check(schema, value, "", &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The JSON types a property schema allows (its `type`, a string or a list);
/// empty when it names none.
pub fn schema_types(schema: Option<&Value>) -> Vec<String> {
    match schema.and_then(|s| s.get("type")) {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn type_matches(expected: &str, value: &Value) -> bool {
    match expected {
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "number" => value.is_number(),
        "integer" => {
            value.is_i64()
                || value.is_u64()
                || value
                    .as_f64()
                    .is_some_and(|f| f.fract() == 0.0 && f.is_finite())
        }
        _ => true,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn check(schema: &Value, value: &Value, path: &str, errors: &mut Vec<SchemaViolation>) {
    let Some(schema) = schema.as_object() else {
        // `true` accepts everything; `false` nothing.
        if schema == &Value::Bool(false) {
            errors.push(violation(path, "no value is allowed here"));
        }
        return;
    };
    if let Some(any_of) = schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(Value::as_array)
    {
        let ok = any_of.iter().any(|s| {
            let mut sub = Vec::new();
            check(s, value, path, &mut sub);
            sub.is_empty()
        });
        if !ok {
            errors.push(violation(path, "matches none of the allowed shapes"));
        }
    }
    if let Some(expected) = schema.get("type") {
        let allowed: Vec<&str> = match expected {
            Value::String(s) => vec![s.as_str()],
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !allowed.is_empty() && !allowed.iter().any(|t| type_matches(t, value)) {
            errors.push(violation(
                path,
                &format!(
                    "expected {}, found {}",
                    allowed.join(" or "),
                    type_name(value)
                ),
            ));
            return;
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.contains(value) {
            errors.push(violation(path, "is not one of the allowed values"));
        }
    }
    if let Some(number) = value.as_f64() {
        if !number.is_finite() {
            errors.push(violation(path, "is not a finite number"));
        }
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
            if number < min {
                errors.push(violation(path, &format!("is below the minimum {min}")));
            }
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
            if number > max {
                errors.push(violation(path, &format!("is above the maximum {max}")));
            }
        }
    }
    if let Some(text) = value.as_str() {
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
            if (text.chars().count() as u64) < min {
                errors.push(violation(
                    path,
                    &format!("is shorter than {min} characters"),
                ));
            }
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
            if (text.chars().count() as u64) > max {
                errors.push(violation(path, &format!("is longer than {max} characters")));
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            check(items, item, &format!("{path}[{i}]"), errors);
        }
    }
    if let Some(object) = value.as_object() {
        check_object(schema, object, path, errors);
    }
}

fn check_object(
    schema: &Map<String, Value>,
    object: &Map<String, Value>,
    path: &str,
    errors: &mut Vec<SchemaViolation>,
) {
    let properties = schema.get("properties").and_then(Value::as_object);
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if !object.contains_key(name) {
                errors.push(violation(
                    path,
                    &format!("missing required argument `{name}`"),
                ));
            }
        }
    }
    for (key, item) in object {
        let child = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        match properties.and_then(|p| p.get(key)) {
            Some(sub) => check(sub, item, &child, errors),
            None => match schema.get("additionalProperties") {
                Some(Value::Bool(false)) => {
                    errors.push(violation(path, &format!("unknown argument `{key}`")))
                }
                Some(extra @ Value::Object(_)) => check(extra, item, &child, errors),
                _ => {}
            },
        }
    }
}

fn violation(path: &str, message: &str) -> SchemaViolation {
    SchemaViolation {
        path: path.to_string(),
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[allow(dead_code)]
    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Args {
        /// The place.
        location: String,
        days: Option<u32>,
        value: f64,
    }

    #[test]
    fn generated_schema_is_inline_and_describes_fields() {
        let s = schema_for::<Args>();
        assert_eq!(s["type"], "object");
        assert!(s.get("$schema").is_none());
        assert_eq!(s["properties"]["location"]["description"], "The place.");
        let required: Vec<&str> = s["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(required.contains(&"location") && required.contains(&"value"));
        assert!(!required.contains(&"days"));
    }

    #[test]
    fn validator_accepts_good_and_reports_bad_arguments() {
        let s = schema_for::<Args>();
        assert!(validate_arguments(&s, &json!({"location": "Oslo", "value": 2})).is_ok());
        assert!(
            validate_arguments(&s, &json!({"location": "Oslo", "value": 2.5, "days": null}))
                .is_ok()
        );
        let errs = validate_arguments(&s, &json!({"location": 3, "extra": true})).unwrap_err();
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert!(text
            .iter()
            .any(|e| e.contains("missing required argument `value`")));
        assert!(text.iter().any(|e| e.contains("location: expected string")));
        assert!(text.iter().any(|e| e.contains("unknown argument `extra`")));
        assert!(
            validate_arguments(&s, &json!({"location": "x", "value": 1, "days": 1.5})).is_err()
        );
        assert!(validate_arguments(&s, &json!("not an object")).is_err());
    }
}
