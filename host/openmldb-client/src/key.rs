//! Index key strings: the text a row's index columns hash as (§3.4 of the
//! reference, `sql_insert_row.cc`): values joined by `|`, NULL as
//! `!N@U#L$L%`, the empty string as `!@#$%`, dates as the codec's int, a `|`
//! inside a string not escaped.

use crate::types::Value;

pub const NULL_KEY: &str = "!N@U#L$L%";
pub const EMPTY_KEY: &str = "!@#$%";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column} cannot be an index key: {kind} values have no key form")]
pub struct KeyError {
    pub column: String,
    pub kind: &'static str,
}

/// Appends one value's key form to `key`.
pub fn push_key_part(key: &mut String, column: &str, value: &Value) -> Result<(), KeyError> {
    use std::fmt::Write;
    if !key.is_empty() {
        key.push('|');
    }
    // Writing into a String cannot fail.
    let _ = match value {
        Value::Null => {
            key.push_str(NULL_KEY);
            Ok(())
        }
        Value::String(s) if s.is_empty() => {
            key.push_str(EMPTY_KEY);
            Ok(())
        }
        Value::String(s) => {
            key.push_str(s);
            Ok(())
        }
        Value::Bool(v) => write!(key, "{v}"),
        Value::SmallInt(v) => write!(key, "{v}"),
        Value::Int(v) => write!(key, "{v}"),
        Value::BigInt(v) | Value::Timestamp(v) => write!(key, "{v}"),
        Value::Date(d) => write!(key, "{}", d.to_codec()),
        Value::Float(_) => return Err(KeyError { column: column.to_string(), kind: "float" }),
        Value::Double(_) => return Err(KeyError { column: column.to_string(), kind: "double" }),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Date;

    fn key_of(values: &[Value]) -> String {
        let mut key = String::new();
        for v in values {
            push_key_part(&mut key, "c", v).unwrap();
        }
        key
    }

    #[test]
    fn keys_are_written_as_the_sdk_writes_them() {
        assert_eq!(key_of(&[Value::Null]), "!N@U#L$L%");
        assert_eq!(key_of(&[Value::String(String::new())]), "!@#$%");
        assert_eq!(key_of(&[Value::Bool(true), Value::Bool(false)]), "true|false");
        assert_eq!(key_of(&[Value::BigInt(-24), Value::Timestamp(1590738994000)]), "-24|1590738994000");
        assert_eq!(
            key_of(&[
                Value::SmallInt(-24),
                Value::Date(Date { year: 2021, month: 4, day: 27 }),
                Value::String("s|t".into())
            ]),
            "-24|7930651|s|t"
        );
        assert!(push_key_part(&mut String::new(), "x", &Value::Double(1.0)).is_err());
    }
}
