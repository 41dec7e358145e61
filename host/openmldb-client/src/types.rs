//! The client's own value model: column types, columns and values, as
//! OpenMLDB stores them.

use std::fmt;

/// A column type (OpenMLDB `openmldb.type.DataType`; `Varchar` and
/// `String` are one type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    Bool,
    SmallInt,
    Int,
    BigInt,
    Float,
    Double,
    Date,
    Timestamp,
    String,
}

impl DataType {
    /// From the protobuf enum value; `None` for types this client does not
    /// write (array, map).
    pub fn from_proto(value: i32) -> Option<DataType> {
        use crate::proto::openmldb::r#type::DataType as P;
        Some(match P::try_from(value).ok()? {
            P::KBool => DataType::Bool,
            P::KSmallInt => DataType::SmallInt,
            P::KInt => DataType::Int,
            P::KBigInt => DataType::BigInt,
            P::KFloat => DataType::Float,
            P::KDouble => DataType::Double,
            P::KDate => DataType::Date,
            P::KTimestamp => DataType::Timestamp,
            P::KVarchar | P::KString => DataType::String,
            P::KArray | P::KMap => return None,
        })
    }

    pub fn to_proto(self) -> i32 {
        use crate::proto::openmldb::r#type::DataType as P;
        (match self {
            DataType::Bool => P::KBool,
            DataType::SmallInt => P::KSmallInt,
            DataType::Int => P::KInt,
            DataType::BigInt => P::KBigInt,
            DataType::Float => P::KFloat,
            DataType::Double => P::KDouble,
            DataType::Date => P::KDate,
            DataType::Timestamp => P::KTimestamp,
            DataType::String => P::KString,
        }) as i32
    }

    /// Width in the row's fixed area; `None` for strings.
    pub fn fixed_width(self) -> Option<usize> {
        match self {
            DataType::Bool => Some(1),
            DataType::SmallInt => Some(2),
            DataType::Int | DataType::Float | DataType::Date => Some(4),
            DataType::BigInt | DataType::Double | DataType::Timestamp => Some(8),
            DataType::String => None,
        }
    }

    pub fn sql_name(self) -> &'static str {
        match self {
            DataType::Bool => "bool",
            DataType::SmallInt => "smallint",
            DataType::Int => "int",
            DataType::BigInt => "bigint",
            DataType::Float => "float",
            DataType::Double => "double",
            DataType::Date => "date",
            DataType::Timestamp => "timestamp",
            DataType::String => "string",
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sql_name())
    }
}

/// A table column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub data_type: DataType,
    pub not_null: bool,
}

/// A calendar day, as OpenMLDB stores it (no time zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Date {
    pub year: i32,
    /// 1..=12
    pub month: u8,
    /// 1..=31
    pub day: u8,
}

impl Date {
    /// The codec's date int: `(year - 1900) << 16 | (month - 1) << 8 | day`.
    pub fn to_codec(self) -> i32 {
        ((self.year - 1900) << 16) | ((i32::from(self.month) - 1) << 8) | i32::from(self.day)
    }

    pub fn from_codec(value: i32) -> Date {
        Date { year: (value >> 16) + 1900, month: (((value >> 8) & 0xff) + 1) as u8, day: (value & 0xff) as u8 }
    }

    /// Whether the day exists in the Gregorian calendar (OpenMLDB's range is
    /// years 1900..=9999).
    pub fn is_valid(self) -> bool {
        if !(1900..=9999).contains(&self.year) || !(1..=12).contains(&self.month) || self.day == 0 {
            return false;
        }
        let leap = (self.year % 4 == 0 && self.year % 100 != 0) || self.year % 400 == 0;
        let days = match self.month {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        self.day <= days
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    SmallInt(i16),
    Int(i32),
    BigInt(i64),
    Float(f32),
    Double(f64),
    Date(Date),
    /// Milliseconds since the Unix epoch.
    Timestamp(i64),
    String(String),
}

impl Value {
    pub fn data_type(&self) -> Option<DataType> {
        Some(match self {
            Value::Null => return None,
            Value::Bool(_) => DataType::Bool,
            Value::SmallInt(_) => DataType::SmallInt,
            Value::Int(_) => DataType::Int,
            Value::BigInt(_) => DataType::BigInt,
            Value::Float(_) => DataType::Float,
            Value::Double(_) => DataType::Double,
            Value::Date(_) => DataType::Date,
            Value::Timestamp(_) => DataType::Timestamp,
            Value::String(_) => DataType::String,
        })
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::SmallInt(v) => write!(f, "{v}"),
            Value::Int(v) => write!(f, "{v}"),
            Value::BigInt(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v:?}"),
            Value::Double(v) => write!(f, "{v:?}"),
            Value::Date(v) => write!(f, "{v}"),
            Value::Timestamp(v) => write!(f, "{v}"),
            Value::String(v) => write!(f, "{v:?}"),
        }
    }
}
