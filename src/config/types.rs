//! Types of configuration values, taken from the defaults.
//!
//! The `config` crate converts between types when it deserializes: a float
//! where an integer is expected is rounded (`tick_interval_ms = 1.5` became
//! 2) and a number where a string is expected is turned into text (`secret =
//! 12345` was accepted). Both hide a mistake, so every value is checked
//! here first, against the type of the same key in `config/default.toml`.
//!
//! Environment variables and `--set` values are text whatever they look
//! like; they are read as the key's type rather than guessed, so a secret
//! `007` stays `007` instead of becoming the integer 7.

use super::MemberSettings;

/// One value as a layer gave it.
#[derive(Clone, Debug)]
pub(super) enum Given {
    /// From TOML (the defaults, a config file): already typed.
    Typed(toml::Value),
    /// From an environment variable or `--set`: text, read as the key's type.
    Text(String),
}

impl Given {
    pub(super) fn shown(&self) -> String {
        match self {
            Given::Typed(value) => value.to_string(),
            Given::Text(text) => text.clone(),
        }
    }
}

/// The value `given` for `key`, whose default is `default`, in the
/// default's type; or why it cannot be one.
pub(super) fn read(key: &str, default: &toml::Value, given: &Given) -> Result<toml::Value, String> {
    match given {
        Given::Typed(value) => check(key, default, value).map(|()| value.clone()),
        Given::Text(text) => from_text(key, default, text),
    }
}

fn from_text(key: &str, default: &toml::Value, text: &str) -> Result<toml::Value, String> {
    let t = text.trim();
    match default {
        toml::Value::String(_) => Ok(toml::Value::String(text.to_string())),
        toml::Value::Integer(_) => t.parse().map(toml::Value::Integer).map_err(|_| "expected an integer".to_string()),
        toml::Value::Float(_) => t.parse().map(toml::Value::Float).map_err(|_| "expected a number".to_string()),
        toml::Value::Boolean(_) => {
            t.parse().map(toml::Value::Boolean).map_err(|_| "expected true or false".to_string())
        }
        // An array (cluster.members) is written as a TOML inline array.
        _ => {
            let value = format!("value = {t}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut table| table.remove("value"))
                .ok_or_else(|| format!("expected {}, written as in TOML", kind(default)))?;
            check(key, default, &value)?;
            Ok(value)
        }
    }
}

/// Whether `value` has the type of `default`; arrays of tables are checked
/// element by element.
fn check(key: &str, default: &toml::Value, value: &toml::Value) -> Result<(), String> {
    use toml::Value as V;
    match (default, value) {
        (V::Integer(_), V::Integer(_))
        | (V::Float(_), V::Float(_) | V::Integer(_))
        | (V::String(_), V::String(_))
        | (V::Boolean(_), V::Boolean(_)) => Ok(()),
        (V::Array(_), V::Array(items)) => {
            let Some(element) = element_type(key) else {
                return Ok(());
            };
            for (i, item) in items.iter().enumerate() {
                let at = format!("{} #{}", key.rsplit('.').next().unwrap_or(key).trim_end_matches('s'), i + 1);
                let V::Table(fields) = item else {
                    return Err(format!("{at}: expected a table, found {}", kind(item)));
                };
                for (name, field) in fields {
                    // Unknown fields are refused, with their name, when the
                    // settings are deserialized.
                    if let Some(expected) = element.get(name) {
                        check(name, expected, field).map_err(|e| format!("{at}: `{name}` = {field}: {e}"))?;
                    }
                }
            }
            Ok(())
        }
        (V::String(_), V::Integer(_) | V::Float(_) | V::Boolean(_)) => {
            Err(format!("expected a string, found {} (a string is written in quotes)", kind(value)))
        }
        (V::Float(_), _) => Err(format!("expected a number, found {}", kind(value))),
        _ => Err(format!("expected {}, found {}", kind(default), kind(value))),
    }
}

/// The fields of one element of an array of tables, with a value of each
/// field's type (the defaults have no element to take them from).
fn element_type(key: &str) -> Option<toml::Table> {
    match key {
        "cluster.members" => {
            let sample = MemberSettings {
                id: 1,
                peer_addr: String::new(),
                client_addr: String::new(),
                // Not empty, so that the sample keeps the key (empty is
                // not serialized) and a value of the wrong type is refused.
                data_dir: "a path".into(),
            };
            toml::Table::try_from(sample).ok()
        }
        _ => None,
    }
}

fn kind(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    }
}

/// The same value for the `config` crate, which merges the layers.
pub(super) fn to_config(value: &toml::Value) -> config::Value {
    match value {
        toml::Value::String(s) => s.clone().into(),
        toml::Value::Integer(i) => (*i).into(),
        toml::Value::Float(f) => (*f).into(),
        toml::Value::Boolean(b) => (*b).into(),
        toml::Value::Datetime(d) => d.to_string().into(),
        toml::Value::Array(items) => items.iter().map(to_config).collect::<Vec<_>>().into(),
        toml::Value::Table(table) => {
            table.iter().map(|(k, v)| (k.clone(), to_config(v))).collect::<config::Map<String, config::Value>>().into()
        }
    }
}
