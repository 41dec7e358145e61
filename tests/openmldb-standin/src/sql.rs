//! The SQL subset the stand-in understands (openmldb.md §1.4.2, §2):
//! CREATE DATABASE / TABLE (INDEX, OPTIONS), INSERT [OR IGNORE] with
//! several rows, SELECT * / COUNT(*) with WHERE and LIMIT, DELETE, DROP,
//! TRUNCATE, SHOW TABLES / DATABASES, DESC. Identifiers may be backquoted;
//! strings take ZetaSQL backslash escapes.

use crate::store::ColType;

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    /// An integer literal; `int32` when it fits and has no `L` suffix.
    Int {
        value: i64,
        int32: bool,
    },
    Double(f64),
    Float(f32),
    Str(String),
}

impl std::fmt::Display for Literal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Literal::Null => f.write_str("NULL"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Int { value, .. } => write!(f, "{value}"),
            Literal::Double(d) => write!(f, "{d}"),
            Literal::Float(x) => write!(f, "{x}f"),
            Literal::Str(s) => write!(f, "{s:?}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSpec {
    pub name: String,
    pub ty: ColType,
    pub not_null: bool,
    pub default: Option<Literal>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Ttl {
    /// Minutes.
    Absolute(u64),
    Latest(u64),
    AbsOrLat(u64, u64),
    AbsAndLat(u64, u64),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct IndexSpec {
    pub keys: Vec<String>,
    pub ts: Option<String>,
    pub ttl_type: Option<String>,
    pub ttl: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TableOptions {
    pub partition_num: Option<i64>,
    pub replica_num: Option<i64>,
    pub storage_mode: Option<String>,
    pub compress_type: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub column: String,
    pub op: CmpOp,
    pub value: Literal,
}

/// What a SELECT returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Projection {
    /// `*`: every column in table order.
    All,
    /// `COUNT(*)`.
    Count,
    /// `c1, c2, …`: these columns in this order.
    Columns(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    CreateDatabase {
        name: String,
        if_not_exists: bool,
    },
    CreateTable {
        db: Option<String>,
        name: String,
        if_not_exists: bool,
        columns: Vec<ColumnSpec>,
        indexes: Vec<IndexSpec>,
        options: TableOptions,
    },
    Insert {
        table: String,
        ignore: bool,
        columns: Option<Vec<String>>,
        rows: Vec<Vec<Literal>>,
    },
    Select {
        table: String,
        projection: Projection,
        conditions: Vec<Condition>,
        limit: Option<usize>,
    },
    Delete {
        table: String,
        conditions: Vec<Condition>,
    },
    DropTable {
        name: String,
        if_exists: bool,
    },
    DropDatabase {
        name: String,
    },
    Truncate {
        table: String,
    },
    ShowTables,
    ShowDatabases,
    Desc {
        table: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Number(String),
    Str(String),
    Sym(&'static str),
}

/// A syntax error: `code` is hybridse's kSyntaxError (1001).
#[derive(Debug, Clone, PartialEq)]
pub struct SqlError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, SqlError> {
    Err(SqlError(msg.into()))
}

fn tokenize(sql: &str) -> Result<Vec<Token>, SqlError> {
    let chars: Vec<char> = sql.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == '@' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '@') {
                i += 1;
            }
            tokens.push(Token::Word(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                i += 1;
                if i < chars.len() && (chars[i] == '+' || chars[i] == '-') {
                    i += 1;
                }
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            // Type suffixes (1.5f, 3L) and TTL units (30d, 12h, 100m).
            if i < chars.len() && matches!(chars[i], 'f' | 'F' | 'l' | 'L' | 'm' | 'M' | 'h' | 'H' | 'd' | 'D') {
                i += 1;
            }
            tokens.push(Token::Number(chars[start..i].iter().collect()));
        } else if c == '`' {
            let end = chars[i + 1..].iter().position(|&d| d == '`').ok_or_else(|| SqlError("unterminated `".into()))?;
            tokens.push(Token::Quoted(chars[i + 1..i + 1 + end].iter().collect()));
            i += end + 2;
        } else if c == '\'' || c == '"' {
            let (text, next) = string_literal(&chars, i)?;
            tokens.push(Token::Str(text));
            i = next;
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let sym = match two.as_str() {
                "<=" => Some("<="),
                ">=" => Some(">="),
                "!=" => Some("!="),
                "<>" => Some("<>"),
                "==" => Some("=="),
                _ => None,
            };
            if let Some(sym) = sym {
                tokens.push(Token::Sym(sym));
                i += 2;
                continue;
            }
            let sym = match c {
                '(' => "(",
                ')' => ")",
                ',' => ",",
                '=' => "=",
                '<' => "<",
                '>' => ">",
                '*' => "*",
                ';' => ";",
                '.' => ".",
                '-' => "-",
                '+' => "+",
                '[' => "[",
                ']' => "]",
                _ => return err(format!("Syntax error: Illegal input character \"{c}\"")),
            };
            tokens.push(Token::Sym(sym));
            i += 1;
        }
    }
    Ok(tokens)
}

/// A quoted string with ZetaSQL escapes: \\ \' \" \n \r \t \0 \a \b \f \v
/// \xHH \uHHHH \UHHHHHHHH and octal \ooo.
fn string_literal(chars: &[char], start: usize) -> Result<(String, usize), SqlError> {
    let quote = chars[start];
    let mut out = String::new();
    let mut bytes: Vec<u8> = Vec::new();
    let flush = |bytes: &mut Vec<u8>, out: &mut String| -> Result<(), SqlError> {
        if !bytes.is_empty() {
            out.push_str(
                std::str::from_utf8(bytes)
                    .map_err(|_| SqlError("Syntax error: invalid UTF-8 in string escape".into()))?,
            );
            bytes.clear();
        }
        Ok(())
    };
    let mut i = start + 1;
    while i < chars.len() {
        let c = chars[i];
        if c == quote {
            flush(&mut bytes, &mut out)?;
            return Ok((out, i + 1));
        }
        if c != '\\' {
            flush(&mut bytes, &mut out)?;
            out.push(c);
            i += 1;
            continue;
        }
        let Some(&e) = chars.get(i + 1) else { break };
        i += 2;
        let hex = |n: usize, i: usize| -> Result<u32, SqlError> {
            let text: String =
                chars.get(i..i + n).ok_or_else(|| SqlError("Syntax error: bad escape".into()))?.iter().collect();
            u32::from_str_radix(&text, 16)
                .map_err(|_| SqlError(format!("Syntax error: Illegal escape sequence: \\{e}{text}")))
        };
        match e {
            'n' => bytes.push(b'\n'),
            'r' => bytes.push(b'\r'),
            't' => bytes.push(b'\t'),
            'a' => bytes.push(7),
            'b' => bytes.push(8),
            'f' => bytes.push(12),
            'v' => bytes.push(11),
            '\\' | '\'' | '"' | '`' | '?' => bytes.push(e as u8),
            'x' | 'X' => {
                bytes.push(hex(2, i)? as u8);
                i += 2;
            }
            'u' | 'U' => {
                let n = if e == 'u' { 4 } else { 8 };
                let code = hex(n, i)?;
                i += n;
                flush(&mut bytes, &mut out)?;
                out.push(char::from_u32(code).ok_or_else(|| SqlError("Syntax error: invalid code point".into()))?);
            }
            '0'..='7' => {
                let text: String = chars.get(i - 1..i + 2).unwrap_or(&[]).iter().collect();
                let code = u8::from_str_radix(&text, 8)
                    .map_err(|_| SqlError(format!("Syntax error: Illegal escape sequence: \\{text}")))?;
                bytes.push(code);
                i += 2;
            }
            other => return err(format!("Syntax error: Illegal escape sequence: \\{other}")),
        }
    }
    err("Syntax error: Unclosed string literal")
}

struct Parser {
    tokens: Vec<Token>,
    i: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.i)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.i).cloned();
        self.i += 1;
        t
    }

    fn keyword(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word)) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect_keyword(&mut self, word: &str) -> Result<(), SqlError> {
        if self.keyword(word) {
            Ok(())
        } else {
            err(format!("Syntax error: Expected keyword {word} but got {}", self.describe()))
        }
    }

    fn sym(&mut self, s: &str) -> bool {
        if matches!(self.peek(), Some(Token::Sym(x)) if *x == s) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect_sym(&mut self, s: &str) -> Result<(), SqlError> {
        if self.sym(s) { Ok(()) } else { err(format!("Syntax error: Expected \"{s}\" but got {}", self.describe())) }
    }

    fn describe(&self) -> String {
        match self.peek() {
            None => "end of input".into(),
            Some(Token::Word(w)) | Some(Token::Quoted(w)) => format!("identifier \"{w}\""),
            Some(Token::Number(n)) => format!("integer literal \"{n}\""),
            Some(Token::Str(s)) => format!("string literal \"{s}\""),
            Some(Token::Sym(s)) => format!("\"{s}\""),
        }
    }

    fn ident(&mut self) -> Result<String, SqlError> {
        match self.next() {
            Some(Token::Word(w)) | Some(Token::Quoted(w)) => Ok(w),
            _ => {
                self.i -= 1;
                err(format!("Syntax error: Unexpected {}", self.describe()))
            }
        }
    }

    /// `name` or `db.name`.
    fn qualified(&mut self) -> Result<(Option<String>, String), SqlError> {
        let first = self.ident()?;
        if self.sym(".") { Ok((Some(first), self.ident()?)) } else { Ok((None, first)) }
    }

    fn literal(&mut self) -> Result<Literal, SqlError> {
        let negative = self.sym("-");
        if !negative {
            self.sym("+");
        }
        match self.next() {
            Some(Token::Number(text)) => number_literal(&text, negative),
            Some(Token::Str(s)) if !negative => Ok(Literal::Str(s)),
            Some(Token::Word(w)) if !negative && w.eq_ignore_ascii_case("null") => Ok(Literal::Null),
            Some(Token::Word(w)) if !negative && w.eq_ignore_ascii_case("true") => Ok(Literal::Bool(true)),
            Some(Token::Word(w)) if !negative && w.eq_ignore_ascii_case("false") => Ok(Literal::Bool(false)),
            _ => {
                self.i -= 1;
                err(format!("Syntax error: Unexpected {}", self.describe()))
            }
        }
    }

    fn end(&mut self) -> Result<(), SqlError> {
        self.sym(";");
        match self.peek() {
            None => Ok(()),
            Some(_) => err(format!("Syntax error: Unexpected {}", self.describe())),
        }
    }
}

fn number_literal(text: &str, negative: bool) -> Result<Literal, SqlError> {
    let signed = if negative { format!("-{text}") } else { text.to_string() };
    let bad = || SqlError(format!("Syntax error: Invalid number literal {signed}"));
    if let Some(body) = signed.strip_suffix(['l', 'L']) {
        return body.parse::<i64>().map(|value| Literal::Int { value, int32: false }).map_err(|_| bad());
    }
    if let Some(body) = signed.strip_suffix(['f', 'F']) {
        return body.parse::<f32>().map(Literal::Float).map_err(|_| bad());
    }
    if signed.contains(['.', 'e', 'E']) {
        return signed.parse::<f64>().map(Literal::Double).map_err(|_| bad());
    }
    let value = signed.parse::<i64>().map_err(|_| bad())?;
    Ok(Literal::Int { value, int32: i32::try_from(value).is_ok() })
}

pub fn parse(sql: &str) -> Result<Statement, SqlError> {
    let tokens = tokenize(sql)?;
    let mut p = Parser { tokens, i: 0 };
    let statement = if p.keyword("create") {
        if p.keyword("database") {
            let if_not_exists = p.keyword("if") && {
                p.expect_keyword("not")?;
                p.expect_keyword("exists")?;
                true
            };
            Statement::CreateDatabase { name: p.ident()?, if_not_exists }
        } else {
            p.expect_keyword("table")?;
            create_table(&mut p)?
        }
    } else if p.keyword("insert") {
        let ignore = if p.keyword("or") {
            p.expect_keyword("ignore")?;
            true
        } else {
            p.keyword("ignore")
        };
        p.expect_keyword("into")?;
        let (_, table) = p.qualified()?;
        let columns = if p.sym("(") {
            let mut names = vec![p.ident()?];
            while p.sym(",") {
                names.push(p.ident()?);
            }
            p.expect_sym(")")?;
            Some(names)
        } else {
            None
        };
        p.expect_keyword("values")?;
        let mut rows = Vec::new();
        loop {
            p.expect_sym("(")?;
            let mut row = Vec::new();
            if !p.sym(")") {
                loop {
                    row.push(p.literal()?);
                    if p.sym(")") {
                        break;
                    }
                    p.expect_sym(",")?;
                }
            }
            rows.push(row);
            if !p.sym(",") {
                break;
            }
        }
        Statement::Insert { table, ignore, columns, rows }
    } else if p.keyword("select") {
        let projection = if p.keyword("count") {
            p.expect_sym("(")?;
            p.expect_sym("*")?;
            p.expect_sym(")")?;
            Projection::Count
        } else if p.sym("*") {
            Projection::All
        } else {
            let mut names = vec![p.ident()?];
            while p.sym(",") {
                names.push(p.ident()?);
            }
            Projection::Columns(names)
        };
        p.expect_keyword("from")?;
        let (_, table) = p.qualified()?;
        let conditions = where_clause(&mut p)?;
        let limit = if p.keyword("limit") {
            match p.literal()? {
                Literal::Int { value, .. } if value >= 0 => Some(value as usize),
                _ => return err("Syntax error: LIMIT takes a non-negative integer"),
            }
        } else {
            None
        };
        Statement::Select { table, projection, conditions, limit }
    } else if p.keyword("delete") {
        p.expect_keyword("from")?;
        let (_, table) = p.qualified()?;
        let conditions = where_clause(&mut p)?;
        if conditions.is_empty() {
            return err("Syntax error: DELETE needs a WHERE clause");
        }
        Statement::Delete { table, conditions }
    } else if p.keyword("drop") {
        if p.keyword("database") {
            Statement::DropDatabase { name: p.ident()? }
        } else {
            p.expect_keyword("table")?;
            let if_exists = p.keyword("if") && {
                p.expect_keyword("exists")?;
                true
            };
            Statement::DropTable { name: p.qualified()?.1, if_exists }
        }
    } else if p.keyword("truncate") {
        p.expect_keyword("table")?;
        Statement::Truncate { table: p.qualified()?.1 }
    } else if p.keyword("show") {
        if p.keyword("tables") {
            Statement::ShowTables
        } else {
            p.expect_keyword("databases")?;
            Statement::ShowDatabases
        }
    } else if p.keyword("desc") || p.keyword("describe") {
        Statement::Desc { table: p.qualified()?.1 }
    } else {
        return err(format!("Syntax error: Unexpected {}", p.describe()));
    };
    p.end()?;
    Ok(statement)
}

fn where_clause(p: &mut Parser) -> Result<Vec<Condition>, SqlError> {
    let mut conditions = Vec::new();
    if !p.keyword("where") {
        return Ok(conditions);
    }
    loop {
        let column = p.ident()?;
        let op = match p.next() {
            Some(Token::Sym("=" | "==")) => CmpOp::Eq,
            Some(Token::Sym("!=" | "<>")) => CmpOp::Ne,
            Some(Token::Sym("<")) => CmpOp::Lt,
            Some(Token::Sym("<=")) => CmpOp::Le,
            Some(Token::Sym(">")) => CmpOp::Gt,
            Some(Token::Sym(">=")) => CmpOp::Ge,
            _ => {
                p.i -= 1;
                return err(format!("Syntax error: Unexpected {}", p.describe()));
            }
        };
        conditions.push(Condition { column, op, value: p.literal()? });
        if !p.keyword("and") {
            return Ok(conditions);
        }
    }
}

fn create_table(p: &mut Parser) -> Result<Statement, SqlError> {
    let if_not_exists = p.keyword("if") && {
        p.expect_keyword("not")?;
        p.expect_keyword("exists")?;
        true
    };
    let (db, name) = p.qualified()?;
    p.expect_sym("(")?;
    let mut columns = Vec::new();
    let mut indexes = Vec::new();
    loop {
        if p.keyword("index") {
            indexes.push(index_spec(p)?);
        } else {
            let column = p.ident()?;
            let type_name = p.ident()?;
            let ty = ColType::from_sql(&type_name)
                .ok_or_else(|| SqlError(format!("Syntax error: Unknown type {type_name}")))?;
            let mut spec = ColumnSpec { name: column, ty, not_null: false, default: None };
            loop {
                if p.keyword("not") {
                    p.expect_keyword("null")?;
                    spec.not_null = true;
                } else if p.keyword("default") {
                    spec.default = Some(p.literal()?);
                } else {
                    break;
                }
            }
            columns.push(spec);
        }
        if p.sym(")") {
            break;
        }
        p.expect_sym(",")?;
    }
    let mut options = TableOptions::default();
    if p.keyword("options") {
        p.expect_sym("(")?;
        loop {
            let key = p.ident()?.to_ascii_lowercase();
            p.expect_sym("=")?;
            match key.as_str() {
                "partitionnum" => options.partition_num = Some(int_option(p)?),
                "replicanum" => options.replica_num = Some(int_option(p)?),
                "storage_mode" => options.storage_mode = Some(word_or_string(p)?),
                "compress_type" => options.compress_type = Some(word_or_string(p)?),
                "distribution" => skip_brackets(p)?,
                other => return err(format!("Syntax error: Unknown option {other}")),
            }
            if p.sym(")") {
                break;
            }
            p.expect_sym(",")?;
        }
    }
    Ok(Statement::CreateTable { db, name, if_not_exists, columns, indexes, options })
}

fn int_option(p: &mut Parser) -> Result<i64, SqlError> {
    match p.literal()? {
        Literal::Int { value, .. } => Ok(value),
        other => err(format!("Syntax error: expected an integer, got {other}")),
    }
}

fn word_or_string(p: &mut Parser) -> Result<String, SqlError> {
    match p.next() {
        Some(Token::Str(s)) | Some(Token::Word(s)) => Ok(s),
        _ => err("Syntax error: expected a name"),
    }
}

fn skip_brackets(p: &mut Parser) -> Result<(), SqlError> {
    let mut depth = 0i32;
    loop {
        match p.next() {
            Some(Token::Sym("[" | "(")) => depth += 1,
            Some(Token::Sym("]" | ")")) => {
                depth -= 1;
                if depth == 0 {
                    return Ok(());
                }
            }
            None => return err("Syntax error: unclosed DISTRIBUTION"),
            _ => {}
        }
    }
}

fn index_spec(p: &mut Parser) -> Result<IndexSpec, SqlError> {
    p.expect_sym("(")?;
    let mut spec = IndexSpec::default();
    loop {
        let key = p.ident()?.to_ascii_lowercase();
        p.expect_sym("=")?;
        match key.as_str() {
            "key" => {
                if p.sym("(") {
                    spec.keys.push(p.ident()?);
                    while p.sym(",") {
                        spec.keys.push(p.ident()?);
                    }
                    p.expect_sym(")")?;
                } else {
                    spec.keys.push(p.ident()?);
                }
            }
            "ts" => spec.ts = Some(p.ident()?),
            "ttl_type" => spec.ttl_type = Some(p.ident()?),
            "ttl" => {
                let mut parts = Vec::new();
                let bracketed = p.sym("(");
                loop {
                    parts.push(match p.next() {
                        Some(Token::Number(n)) => n,
                        Some(Token::Word(w)) => w,
                        _ => return err("Syntax error: bad TTL"),
                    });
                    if !bracketed || !p.sym(",") {
                        break;
                    }
                }
                if bracketed {
                    p.expect_sym(")")?;
                }
                spec.ttl = Some(parts);
            }
            other => return err(format!("Syntax error: Unknown index option {other}")),
        }
        if p.sym(")") {
            return Ok(spec);
        }
        p.expect_sym(",")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_table_with_index_and_options() {
        let s = parse(
            "CREATE TABLE IF NOT EXISTS demo.t1 (c1 string NOT NULL, c2 int DEFAULT 5, c3 timestamp, \
             INDEX(KEY=(c1,c2), TS=c3, TTL_TYPE=absolute, TTL=30d)) OPTIONS (PARTITIONNUM=4, REPLICANUM=1);",
        )
        .unwrap();
        let Statement::CreateTable { db, name, if_not_exists, columns, indexes, options } = s else { panic!() };
        assert_eq!((db.as_deref(), name.as_str(), if_not_exists), (Some("demo"), "t1", true));
        assert_eq!(columns[0], ColumnSpec { name: "c1".into(), ty: ColType::Varchar, not_null: true, default: None });
        assert_eq!(columns[1].default, Some(Literal::Int { value: 5, int32: true }));
        assert_eq!(indexes[0].keys, vec!["c1", "c2"]);
        assert_eq!(indexes[0].ts.as_deref(), Some("c3"));
        assert_eq!(indexes[0].ttl, Some(vec!["30d".to_string()]));
        assert_eq!(options.partition_num, Some(4));
    }

    #[test]
    fn insert_literals_and_escapes() {
        let s = parse(r#"insert or ignore into `t` values (1, -2L, 3.5, 1.5f, 'it\'s\n', "x\\y", NULL, true), (3000000000, -1, 'é\x41', '')"#).unwrap();
        let Statement::Insert { table, ignore, rows, .. } = s else { panic!() };
        assert_eq!((table.as_str(), ignore), ("t", true));
        assert_eq!(
            rows[0],
            vec![
                Literal::Int { value: 1, int32: true },
                Literal::Int { value: -2, int32: false },
                Literal::Double(3.5),
                Literal::Float(1.5),
                Literal::Str("it's\n".into()),
                Literal::Str("x\\y".into()),
                Literal::Null,
                Literal::Bool(true),
            ]
        );
        assert_eq!(rows[1][0], Literal::Int { value: 3_000_000_000, int32: false });
        assert_eq!(rows[1][2], Literal::Str("éA".into()));
    }

    #[test]
    fn select_delete_and_errors() {
        assert_eq!(
            parse("select count(*) from t where c1 = 'a' and c3 >= 10 limit 5").unwrap(),
            Statement::Select {
                table: "t".into(),
                projection: Projection::Count,
                conditions: vec![
                    Condition { column: "c1".into(), op: CmpOp::Eq, value: Literal::Str("a".into()) },
                    Condition { column: "c3".into(), op: CmpOp::Ge, value: Literal::Int { value: 10, int32: true } },
                ],
                limit: Some(5),
            }
        );
        assert!(parse("delete from t").is_err());
        assert!(parse("insert into t values (1").is_err());
        assert!(parse("select * from t where").is_err());
        assert_eq!(
            parse("select c3, c1 from t").unwrap(),
            Statement::Select {
                table: "t".into(),
                projection: Projection::Columns(vec!["c3".into(), "c1".into()]),
                conditions: vec![],
                limit: None,
            }
        );
        assert!(parse("select c1, from t").is_err());
    }
}
