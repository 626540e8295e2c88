//! Field access on parsed JSON answers, with errors that show the value:
//! the checks read answers field by field, never as text.

use serde_json::Value;

/// `value[key]`, which must be present.
pub(crate) fn field<'a>(value: &'a Value, key: &str) -> Result<&'a Value, String> {
    value
        .get(key)
        .ok_or_else(|| format!("no field {key:?} in {value}"))
}

/// `value[key]` as a string.
pub(crate) fn str_field<'a>(value: &'a Value, key: &str) -> Result<&'a str, String> {
    field(value, key)?
        .as_str()
        .ok_or_else(|| format!("field {key:?} is not a string in {value}"))
}

/// `value[key]` as a non-negative integer.
pub(crate) fn u64_field(value: &Value, key: &str) -> Result<u64, String> {
    field(value, key)?
        .as_u64()
        .ok_or_else(|| format!("field {key:?} is not a non-negative integer in {value}"))
}

/// `value[key]` as an array.
pub(crate) fn array_field<'a>(value: &'a Value, key: &str) -> Result<&'a Vec<Value>, String> {
    field(value, key)?
        .as_array()
        .ok_or_else(|| format!("field {key:?} is not an array in {value}"))
}

/// The element of `list` whose `name` is `name`.
pub(crate) fn named<'a>(list: &'a [Value], name: &str) -> Result<&'a Value, String> {
    list.iter()
        .find(|entry| entry.get("name").and_then(Value::as_str) == Some(name))
        .ok_or_else(|| format!("no entry named {name:?} in {}", Value::from(list.to_vec())))
}
