//! Typed access to a plugin's string key/value config, with errors that
//! name the key and the value.

use crate::{ColumnType, PluginError, parse_column_type};
use std::str::FromStr;

/// A plugin's config: the connector keys meant for it, prefix removed.
#[derive(Debug, Clone, Default)]
pub struct PluginConfig {
    entries: Vec<(String, String)>,
}

impl PluginConfig {
    pub fn new(entries: Vec<(String, String)>) -> Self {
        PluginConfig { entries }
    }

    /// The value of `key`, if set. A key set twice takes the last value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The value of `key`, or an `invalid-config` error saying it is missing.
    pub fn require(&self, key: &str) -> Result<&str, PluginError> {
        self.get(key)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| PluginError::invalid_config(format!("missing required config key \"{key}\"")))
    }

    /// Parse `key` as `T`, or `default` when unset.
    pub fn parse_or<T: FromStr>(&self, key: &str, default: T) -> Result<T, PluginError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(key) {
            None => Ok(default),
            Some(raw) => raw.trim().parse::<T>().map_err(|e| {
                PluginError::invalid_config(format!("config key \"{key}\": invalid value \"{raw}\": {e}"))
            }),
        }
    }

    /// A boolean key (`true`/`false`, case-insensitive).
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, PluginError> {
        match self.get(key).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if v == "true" => Ok(true),
            Some(v) if v == "false" => Ok(false),
            Some(v) => Err(PluginError::invalid_config(format!(
                "config key \"{key}\": invalid value \"{v}\": expected true or false"
            ))),
        }
    }

    /// One of `allowed` (case-insensitive), or `default` when unset.
    pub fn choice_or<'a>(&self, key: &str, allowed: &[&'a str], default: &'a str) -> Result<&'a str, PluginError> {
        let Some(raw) = self.get(key) else {
            return Ok(default);
        };
        allowed.iter().find(|a| a.eq_ignore_ascii_case(raw.trim())).copied().ok_or_else(|| {
            PluginError::invalid_config(format!(
                "config key \"{key}\": invalid value \"{raw}\": expected one of {}",
                allowed.join(", ")
            ))
        })
    }

    /// A comma-separated list; empty entries are skipped.
    pub fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
            .unwrap_or_default()
    }

    /// A comma-separated list of `a:b` pairs, e.g. `old:new,x:y`.
    pub fn pairs(&self, key: &str) -> Result<Vec<(String, String)>, PluginError> {
        self.list(key)
            .into_iter()
            .map(|entry| match entry.split_once(':') {
                Some((a, b)) if !a.trim().is_empty() && !b.trim().is_empty() => {
                    Ok((a.trim().to_string(), b.trim().to_string()))
                }
                _ => Err(PluginError::invalid_config(format!(
                    "config key \"{key}\": invalid entry \"{entry}\": expected NAME:VALUE"
                ))),
            })
            .collect()
    }

    /// A comma-separated list of `column[:type]` entries; the type defaults
    /// to `default_type`.
    pub fn typed_columns(&self, key: &str, default_type: ColumnType) -> Result<Vec<(String, ColumnType)>, PluginError> {
        self.list(key)
            .into_iter()
            .map(|entry| {
                let (name, ty) = match entry.split_once(':') {
                    None => (entry.as_str(), Some(default_type)),
                    Some((name, ty)) => (name, parse_column_type(ty)),
                };
                match ty {
                    Some(ty) if !name.trim().is_empty() => Ok((name.trim().to_string(), ty)),
                    _ => Err(PluginError::invalid_config(format!(
                        "config key \"{key}\": invalid entry \"{entry}\": expected COLUMN or COLUMN:TYPE \
                         with TYPE one of bool, smallint, int, bigint, float, double, string, date, timestamp"
                    ))),
                }
            })
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> PluginConfig {
        PluginConfig::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn last_value_wins_and_missing_keys_are_named() {
        let c = config(&[("a", "1"), ("a", "2")]);
        assert_eq!(c.get("a"), Some("2"));
        let err = c.require("b").unwrap_err();
        assert_eq!(err.message, "missing required config key \"b\"");
    }

    #[test]
    fn parse_errors_name_key_and_value() {
        let c = config(&[("n", "ten")]);
        let err = c.parse_or::<u32>("n", 1).unwrap_err();
        assert!(err.message.contains("\"n\"") && err.message.contains("\"ten\""), "{}", err.message);
        assert_eq!(config(&[]).parse_or::<u32>("n", 7).unwrap(), 7);
    }

    #[test]
    fn typed_columns_default_and_reject_unknown_types() {
        let c = config(&[("f", "a, b:bigint")]);
        assert_eq!(
            c.typed_columns("f", ColumnType::String).unwrap(),
            vec![("a".into(), ColumnType::String), ("b".into(), ColumnType::Bigint)]
        );
        let err = config(&[("f", "a:money")]).typed_columns("f", ColumnType::String).unwrap_err();
        assert!(err.message.contains("a:money"), "{}", err.message);
    }

    #[test]
    fn choices_are_case_insensitive() {
        let c = config(&[("m", "DROP")]);
        assert_eq!(c.choice_or("m", &["keep", "drop"], "keep").unwrap(), "drop");
        assert!(config(&[("m", "x")]).choice_or("m", &["keep", "drop"], "keep").is_err());
    }
}
