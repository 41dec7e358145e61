//! JSON as the APIServer reads and writes it (rapidjson 1.1.0 with
//! `kParseNanAndInfFlag` and `kWriteNanAndInfFlag`): unquoted `NaN`,
//! `Infinity`, `-Infinity`, `Inf`, `-Inf` are numbers, parse failures carry
//! rapidjson's numeric error codes, and output is compact with keys in
//! insertion order.

use std::fmt::Write;

#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    /// An integer literal that fits i64.
    Int(i64),
    /// An integer literal above i64::MAX that fits u64.
    Uint(u64),
    /// A literal with a fraction or exponent, a too-large integer, or NaN/Inf.
    Double(f64),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// rapidjson's `ParseErrorCode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    DocumentEmpty = 1,
    RootNotSingular = 2,
    ValueInvalid = 3,
    ObjectMissName = 4,
    ObjectMissColon = 5,
    ObjectMissCommaOrCurlyBracket = 6,
    ArrayMissCommaOrSquareBracket = 7,
    StringUnicodeEscapeInvalidHex = 8,
    StringUnicodeSurrogateInvalid = 9,
    StringEscapeInvalid = 10,
    StringMissQuotationMark = 11,
    StringInvalidEncoding = 12,
    NumberTooBig = 13,
    NumberMissFraction = 14,
    NumberMissExponent = 15,
}

impl Json {
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// rapidjson `IsInt`: an integer within i32.
    pub fn is_int(&self) -> bool {
        matches!(self, Json::Int(i) if i32::try_from(*i).is_ok())
    }

    /// rapidjson `IsInt64`.
    pub fn is_int64(&self) -> bool {
        matches!(self, Json::Int(_))
    }

    pub fn is_number(&self) -> bool {
        matches!(self, Json::Int(_) | Json::Uint(_) | Json::Double(_))
    }

    /// rapidjson `IsLosslessDouble`: doubles, and integers a double holds exactly.
    pub fn is_lossless_double(&self) -> bool {
        match self {
            Json::Double(_) => true,
            Json::Int(i) => (*i as f64) as i64 == *i && i.unsigned_abs() <= 1 << 53,
            Json::Uint(u) => *u <= 1 << 53,
            _ => false,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Int(i) => Some(*i as f64),
            Json::Uint(u) => Some(*u as f64),
            Json::Double(d) => Some(*d),
            _ => None,
        }
    }
}

pub fn parse(text: &[u8]) -> Result<Json, ParseError> {
    let mut p = Parser { s: text, i: 0 };
    p.ws();
    if p.i >= p.s.len() {
        return Err(ParseError::DocumentEmpty);
    }
    let value = p.value()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(ParseError::RootNotSingular);
    }
    Ok(value)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, word: &[u8]) -> bool {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Result<Json, ParseError> {
        match self.peek() {
            Some(b'n') if self.eat(b"null") => Ok(Json::Null),
            Some(b't') if self.eat(b"true") => Ok(Json::Bool(true)),
            Some(b'f') if self.eat(b"false") => Ok(Json::Bool(false)),
            Some(b'"') => self.string().map(Json::String),
            Some(b'[') => self.array(),
            Some(b'{') => self.object(),
            Some(b'-' | b'0'..=b'9' | b'N' | b'I') => self.number(),
            _ => Err(ParseError::ValueInvalid),
        }
    }

    fn array(&mut self) -> Result<Json, ParseError> {
        self.i += 1;
        self.ws();
        let mut items = Vec::new();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(Json::Array(items));
        }
        loop {
            items.push(self.value()?);
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.ws();
                }
                Some(b']') => {
                    self.i += 1;
                    return Ok(Json::Array(items));
                }
                _ => return Err(ParseError::ArrayMissCommaOrSquareBracket),
            }
        }
    }

    fn object(&mut self) -> Result<Json, ParseError> {
        self.i += 1;
        self.ws();
        let mut fields = Vec::new();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(Json::Object(fields));
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(ParseError::ObjectMissName);
            }
            let key = self.string()?;
            self.ws();
            if self.peek() != Some(b':') {
                return Err(ParseError::ObjectMissColon);
            }
            self.i += 1;
            self.ws();
            let value = self.value()?;
            fields.push((key, value));
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.ws();
                }
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Json::Object(fields));
                }
                _ => return Err(ParseError::ObjectMissCommaOrCurlyBracket),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, ParseError> {
        let digits = self.s.get(self.i..self.i + 4).ok_or(ParseError::StringUnicodeEscapeInvalidHex)?;
        let text = std::str::from_utf8(digits).map_err(|_| ParseError::StringUnicodeEscapeInvalidHex)?;
        let code = u32::from_str_radix(text, 16).map_err(|_| ParseError::StringUnicodeEscapeInvalidHex)?;
        self.i += 4;
        Ok(code)
    }

    fn string(&mut self) -> Result<String, ParseError> {
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(c) = self.peek() else { return Err(ParseError::StringMissQuotationMark) };
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).map_err(|_| ParseError::StringInvalidEncoding),
                b'\\' => {
                    let Some(e) = self.peek() else { return Err(ParseError::StringMissQuotationMark) };
                    self.i += 1;
                    match e {
                        b'"' => out.push(b'"'),
                        b'\\' => out.push(b'\\'),
                        b'/' => out.push(b'/'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let mut code = self.hex4()?;
                            if (0xD800..0xDC00).contains(&code) {
                                if !self.eat(b"\\u") {
                                    return Err(ParseError::StringUnicodeSurrogateInvalid);
                                }
                                let low = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&low) {
                                    return Err(ParseError::StringUnicodeSurrogateInvalid);
                                }
                                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                            }
                            let ch = char::from_u32(code).ok_or(ParseError::StringUnicodeSurrogateInvalid)?;
                            let mut buf = [0; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return Err(ParseError::StringEscapeInvalid),
                    }
                }
                c if c < 0x20 => return Err(ParseError::StringMissQuotationMark),
                c => out.push(c),
            }
        }
    }

    fn number(&mut self) -> Result<Json, ParseError> {
        let negative = self.eat(b"-");
        if self.eat(b"NaN") {
            return Ok(Json::Double(f64::NAN));
        }
        if self.eat(b"Infinity") || self.eat(b"Inf") {
            return Ok(Json::Double(if negative { f64::NEG_INFINITY } else { f64::INFINITY }));
        }
        let start = self.i;
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                while matches!(self.peek(), Some(b'0'..=b'9')) {
                    self.i += 1;
                }
            }
            _ => return Err(ParseError::ValueInvalid),
        }
        let mut is_double = false;
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(ParseError::NumberMissFraction);
            }
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.i += 1;
            }
            is_double = true;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(ParseError::NumberMissExponent);
            }
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.i += 1;
            }
            is_double = true;
        }
        let digits = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| ParseError::ValueInvalid)?;
        let text = if negative { format!("-{digits}") } else { digits.to_string() };
        if !is_double {
            if let Ok(i) = text.parse::<i64>() {
                return Ok(Json::Int(i));
            }
            if let Ok(u) = text.parse::<u64>() {
                return Ok(Json::Uint(u));
            }
        }
        let d: f64 = text.parse().map_err(|_| ParseError::ValueInvalid)?;
        if d.is_infinite() {
            return Err(ParseError::NumberTooBig);
        }
        Ok(Json::Double(d))
    }
}

/// Compact JSON, NaN and infinities unquoted (`kWriteNanAndInfFlag`).
pub fn write(value: &Json, out: &mut String) {
    match value {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Json::Uint(u) => {
            let _ = write!(out, "{u}");
        }
        Json::Double(d) => write_double(*d, out),
        Json::String(s) => write_string(s, out),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        Json::Object(fields) => {
            out.push('{');
            for (i, (k, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write(v, out);
            }
            out.push('}');
        }
    }
}

pub fn to_string(value: &Json) -> String {
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// rapidjson's shortest round-trip form: `1.0`, `1.5`, `1e300`, `NaN`.
fn write_double(d: f64, out: &mut String) {
    if d.is_nan() {
        out.push_str("NaN");
    } else if d.is_infinite() {
        out.push_str(if d > 0.0 { "Infinity" } else { "-Infinity" });
    } else if d == d.trunc() && d.abs() < 1e21 {
        let _ = write!(out, "{d:.1}");
    } else {
        let _ = write!(out, "{d:?}");
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_and_infinities_are_numbers() {
        let v = parse(b"[NaN, Infinity, -Infinity, Inf, -Inf, 1, 1.0, 18446744073709551615]").unwrap();
        let Json::Array(items) = v else { panic!() };
        assert!(matches!(items[0], Json::Double(d) if d.is_nan()));
        assert_eq!(items[1], Json::Double(f64::INFINITY));
        assert_eq!(items[2], Json::Double(f64::NEG_INFINITY));
        assert_eq!(items[4], Json::Double(f64::NEG_INFINITY));
        assert_eq!(items[5], Json::Int(1));
        assert_eq!(items[6], Json::Double(1.0));
        assert_eq!(items[7], Json::Uint(u64::MAX));
    }

    #[test]
    fn parse_errors_carry_rapidjson_codes() {
        assert_eq!(parse(b"").unwrap_err() as i32, 1);
        assert_eq!(parse(b"{} x").unwrap_err() as i32, 2);
        assert_eq!(parse(b"nul").unwrap_err() as i32, 3);
        assert_eq!(parse(b"{1:2}").unwrap_err() as i32, 4);
        assert_eq!(parse(b"{\"a\" 2}").unwrap_err() as i32, 5);
        assert_eq!(parse(b"{\"a\":2 3").unwrap_err() as i32, 6);
        assert_eq!(parse(b"[1 2]").unwrap_err() as i32, 7);
        assert_eq!(parse(b"\"\\q\"").unwrap_err() as i32, 10);
        assert_eq!(parse(b"\"abc").unwrap_err() as i32, 11);
        assert_eq!(parse(b"1e1000").unwrap_err() as i32, 13);
        assert_eq!(parse(b"1.").unwrap_err() as i32, 14);
        assert_eq!(parse(b"1e").unwrap_err() as i32, 15);
    }

    #[test]
    fn output_is_compact_with_unquoted_nan() {
        let v = Json::Object(vec![
            ("code".into(), Json::Int(0)),
            ("x".into(), Json::Array(vec![Json::Double(1.0), Json::Double(f64::NAN), Json::String("a\"\n".into())])),
        ]);
        assert_eq!(to_string(&v), r#"{"code":0,"x":[1.0,NaN,"a\"\n"]}"#);
        assert_eq!(to_string(&Json::Double(1.1f32 as f64)), "1.100000023841858");
    }
}
