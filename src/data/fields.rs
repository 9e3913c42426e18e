//! Lenient field extraction: real data has numbers where strings belong, nulls, token objects and
//! megabyte-long strings. Each oddity becomes a counted warning, never a crash.

use serde_json::{Map, Value};

use super::json_stream::RecordLoc;
use super::warnings::Warnings;

/// Strings longer than this are cut (with a warning): no caption or answer is legitimately longer,
/// and a runaway field would make every screen and export that shows it unusable.
pub const MAX_FIELD_CHARS: usize = 100_000;
/// The longest reason for a ✗ (characters): a reason is a phrase, not an answer.
pub const MAX_REASON_CHARS: usize = 1_000;

/// A record's fields plus where it came from, so every warning can say which record and field.
pub struct Fields<'a> {
    pub obj: &'a Map<String, Value>,
    pub loc: RecordLoc,
}

impl<'a> Fields<'a> {
    /// Views `value` as an object, or explains why it cannot be a record.
    pub fn new(value: &'a Value, loc: RecordLoc) -> anyhow::Result<Self> {
        match value {
            Value::Object(obj) => Ok(Self { obj, loc }),
            other => anyhow::bail!("{loc}: expected an object, found {}", type_name(other)),
        }
    }

    /// The first present key among `keys`.
    pub fn get(&self, keys: &[&str]) -> Option<(&'a str, &'a Value)> {
        keys.iter().find_map(|k| {
            self.obj
                .get_key_value(*k)
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.as_str(), v))
        })
    }

    /// A text field; numbers and booleans are converted with a warning, other types dropped.
    pub fn text(&self, keys: &[&str], warnings: &mut Warnings) -> Option<String> {
        let (key, value) = self.get(keys)?;
        self.coerce_text(key, value, warnings)
    }

    /// A text field that must be present and non-empty for the record to make sense.
    pub fn required_text(&self, keys: &[&str], warnings: &mut Warnings) -> anyhow::Result<String> {
        match self.text(keys, warnings) {
            Some(t) if !t.trim().is_empty() => Ok(t),
            Some(_) => anyhow::bail!("{}: field `{}` is empty", self.loc, keys[0]),
            None => anyhow::bail!("{}: missing field `{}`", self.loc, keys.join("` or `")),
        }
    }

    /// A text field that must be present, but may be empty (an empty answer is an answer).
    pub fn present_text(&self, keys: &[&str], warnings: &mut Warnings) -> anyhow::Result<String> {
        self.text(keys, warnings)
            .ok_or_else(|| anyhow::anyhow!("{}: missing field `{}`", self.loc, keys.join("` or `")))
    }

    pub fn coerce_text(&self, key: &str, value: &Value, warnings: &mut Warnings) -> Option<String> {
        let loc = self.loc;
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => {
                warnings.add("number where text was expected", format!("{loc}: `{key}`"));
                n.to_string()
            }
            Value::Bool(b) => {
                warnings.add("boolean where text was expected", format!("{loc}: `{key}`"));
                b.to_string()
            }
            Value::Null => return None,
            other => {
                warnings.add(
                    "wrong type (field ignored)",
                    format!("{loc}: `{key}` is {}", type_name(other)),
                );
                return None;
            }
        };
        Some(limit_length(text, key, loc, warnings))
    }

    /// Inline mentions: a string, a list of strings, or LLaVA-Med's `[{tokens, entities}]`.
    pub fn mentions(&self, keys: &[&str], warnings: &mut Warnings) -> Vec<String> {
        let Some((key, value)) = self.get(keys) else {
            return Vec::new();
        };
        let items: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        items
            .into_iter()
            .filter_map(|item| match item {
                Value::Object(o) => match o.get("tokens") {
                    Some(Value::Array(tokens)) => Some(Value::String(
                        tokens
                            .iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(" "),
                    )),
                    Some(tokens) => Some(tokens.clone()),
                    None => o.get("text").cloned(),
                },
                other => Some(other.clone()),
            })
            .filter_map(|v| self.coerce_text(key, &v, warnings))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// Domain tags: a string, a list of strings, or `{chest_xray: bool, …}` (the true keys).
    pub fn domains(&self, keys: &[&str], warnings: &mut Warnings) -> Vec<String> {
        let Some((key, value)) = self.get(keys) else {
            return Vec::new();
        };
        match value {
            Value::String(s) if s.trim().is_empty() => Vec::new(),
            Value::String(s) => vec![s.trim().to_string()],
            Value::Array(items) => items
                .iter()
                .filter_map(|v| self.coerce_text(key, v, warnings))
                .collect(),
            Value::Object(flags) => flags
                .iter()
                .filter(|(_, on)| on.as_bool().unwrap_or(false))
                .map(|(name, _)| name.clone())
                .collect(),
            other => {
                warnings.add(
                    "wrong type (field ignored)",
                    format!("{}: `{key}` is {}", self.loc, type_name(other)),
                );
                Vec::new()
            }
        }
    }

    /// A non-negative integer (numbers, or digits in a string).
    pub fn index(&self, keys: &[&str]) -> Option<usize> {
        let (_, value) = self.get(keys)?;
        match value {
            Value::Number(n) => n.as_u64().map(|n| n as usize),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// A number (or a numeric string).
    pub fn number(&self, keys: &[&str]) -> Option<f64> {
        let (_, value) = self.get(keys)?;
        match value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

fn limit_length(mut text: String, key: &str, loc: RecordLoc, warnings: &mut Warnings) -> String {
    // A NUL cannot be stored in a PostgreSQL text: taken out on every database, so a file imports
    // the same into a directory and onto a server.
    if text.contains('\0') {
        text.retain(|c| c != '\0');
        warnings.add(
            "NUL character removed",
            format!("{loc}: `{key}` held NUL characters"),
        );
    }
    if text.len() > MAX_FIELD_CHARS {
        let chars = text.chars().count();
        if chars > MAX_FIELD_CHARS {
            let cut = text
                .char_indices()
                .nth(MAX_FIELD_CHARS)
                .map_or(text.len(), |(i, _)| i);
            text.truncate(cut);
            warnings.add(
                "huge field cut",
                format!("{loc}: `{key}` had {chars} characters, kept {MAX_FIELD_CHARS}"),
            );
        }
    }
    text
}

pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LOC: RecordLoc = RecordLoc { index: 4, line: 9 };

    #[test]
    fn text_coerces_numbers_and_warns() {
        let v = json!({"caption": 42, "other": [1]});
        let f = Fields::new(&v, LOC).unwrap();
        let mut w = Warnings::default();
        assert_eq!(f.text(&["caption"], &mut w).as_deref(), Some("42"));
        assert_eq!(f.text(&["other"], &mut w), None);
        assert_eq!(w.total(), 2);
        assert!(w.to_string().contains("record 4 (line 9)"));
    }

    #[test]
    fn mentions_accept_every_shape() {
        let mut w = Warnings::default();
        let tokens =
            json!({"m": [{"tokens": "As shown ( Fig. 2 ) .", "entities": []}, {"tokens": ""}]});
        let f = Fields::new(&tokens, LOC).unwrap();
        assert_eq!(f.mentions(&["m"], &mut w), vec!["As shown ( Fig. 2 ) ."]);
        let plain = json!({"m": "Figure 1 shows it."});
        let f = Fields::new(&plain, LOC).unwrap();
        assert_eq!(f.mentions(&["m"], &mut w), vec!["Figure 1 shows it."]);
        let null = json!({"m": null});
        assert!(Fields::new(&null, LOC)
            .unwrap()
            .mentions(&["m"], &mut w)
            .is_empty());
        assert!(w.is_empty());
    }

    #[test]
    fn domains_from_flags_keep_only_true_ones() {
        let mut w = Warnings::default();
        let v = json!({"domain": {"chest_xray": false, "mri": true, "ct_scan": true}});
        let f = Fields::new(&v, LOC).unwrap();
        assert_eq!(f.domains(&["domain"], &mut w), vec!["mri", "ct_scan"]);
    }

    #[test]
    fn huge_strings_are_cut_with_a_warning() {
        let mut w = Warnings::default();
        let v = json!({"a": "é".repeat(MAX_FIELD_CHARS + 10)});
        let f = Fields::new(&v, LOC).unwrap();
        let text = f.text(&["a"], &mut w).unwrap();
        assert_eq!(text.chars().count(), MAX_FIELD_CHARS);
        assert_eq!(w.count("huge field cut"), 1);
    }

    #[test]
    fn non_object_record_is_an_error_naming_the_record() {
        let v = json!([1, 2]);
        let err = Fields::new(&v, LOC).err().unwrap().to_string();
        assert!(
            err.contains("record 4 (line 9)") && err.contains("an array"),
            "{err}"
        );
    }
}
