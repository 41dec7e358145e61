//! The stand-in against the project's OpenMLDB reference (openmldb.md), over real HTTP. Each
//! test names the section it checks.

use openmldb_standin::{StandIn, StandInOptions, Wording};
use serde_json::{Value, json};

struct Api {
    _standin: StandIn,
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn start() -> Api {
        Self::with(StandInOptions::default()).await
    }

    async fn with(options: StandInOptions) -> Api {
        let standin = StandIn::start("127.0.0.1:0".parse().unwrap(), options).await.unwrap();
        let base = format!("http://{}", standin.addr);
        Api { _standin: standin, base, http: reqwest::Client::new() }
    }

    async fn raw(&self, method: &str, path: &str, body: &str) -> (u16, String, String) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
        (status, content_type, response.text().await.unwrap())
    }

    async fn text(&self, method: &str, path: &str, body: &str) -> String {
        let (status, _, text) = self.raw(method, path, body).await;
        assert_eq!(status, 200, "§1.1: every handled request is HTTP 200");
        text
    }

    async fn json(&self, method: &str, path: &str, body: Value) -> Value {
        serde_json::from_str(&self.text(method, path, &body.to_string()).await).unwrap()
    }

    async fn sql(&self, db: &str, sql: &str) -> Value {
        self.json("POST", &format!("/dbs/{db}"), json!({"mode": "online", "sql": sql})).await
    }

    async fn ok(&self, db: &str, sql: &str) {
        let reply = self.sql(db, sql).await;
        assert_eq!(reply, json!({"code": 0, "msg": "ok"}), "{sql}");
    }

    async fn rows(&self, db: &str, sql: &str) -> Vec<Value> {
        let reply = self.sql(db, sql).await;
        assert_eq!(reply["code"], 0, "{sql}: {reply}");
        reply["data"]["data"].as_array().unwrap().clone()
    }

    async fn faults(&self, faults: Value) {
        assert_eq!(self.json("POST", "/__standin/faults", faults).await["code"], 0);
    }
}

async fn with_table(api: &Api) {
    api.ok("demo", "CREATE DATABASE demo").await;
    api.ok(
        "demo",
        "CREATE TABLE trans (c1 string, c2 int, c3 bigint, c4 float, c5 double, c6 timestamp, c7 date, c8 bool, c9 smallint, \
         INDEX(KEY=c1, TS=c6, TTL_TYPE=absolute, TTL=30d))",
    )
    .await;
}

#[tokio::test]
async fn s1_2_routing_errors() {
    let api = Api::start().await;
    let e = |msg: &str| format!(r#"{{"code":-1,"msg":"{msg}"}}"#);
    assert_eq!(api.text("GET", "/dbs/a.b", "").await, e("invalid url"));
    assert_eq!(api.text("GET", "/dbs/a%20b", "").await, e("invalid url"));
    assert_eq!(api.text("DELETE", "/dbs/demo", "").await, e("unsupported method"));
    assert_eq!(api.text("GET", "/nothing/here", "").await, e("no match method"));
    assert_eq!(api.text("GET", "/dbs/", "").await, e("invalid url"));
    assert_eq!(api.text("POST", "/dbs", "{}").await, e("no match method"));
}

#[tokio::test]
async fn s1_1_and_s1_3_envelope_is_compact_and_content_type_is_echoed() {
    let api = Api::start().await;
    let (status, content_type, body) = api.raw("POST", "/refresh", "").await;
    assert_eq!((status, content_type.as_str(), body.as_str()), (200, "application/json", r#"{"code":0,"msg":"ok"}"#));
}

#[tokio::test]
async fn s1_4_1_put_validates_in_order_with_v093_messages() {
    let api = Api::start().await;
    with_table(&api).await;
    let put = |body: &'static str| api.text("PUT", "/dbs/demo/tables/trans", body);
    assert_eq!(put("").await, r#"{"code":-1,"msg":"Json parse failed, error code: 1"}"#);
    assert_eq!(put("{\"value\": [[1,]]}").await, r#"{"code":-1,"msg":"Json parse failed, error code: 3"}"#);
    assert_eq!(
        put(r#"{"value": [[1],[2]]}"#).await,
        r#"{"code":-1,"msg":"Invalid value in body, only support to put one row"}"#
    );
    assert_eq!(
        put(r#"{"rows": 1}"#).await,
        r#"{"code":-1,"msg":"Invalid value in body, only support to put one row"}"#
    );
    let missing = api.text("PUT", "/dbs/demo/tables/nope", r#"{"value": [["a"]]}"#).await;
    assert_eq!(
        missing,
        r#"{"code":2000,"msg":"fail to get insert info--table with name nope in db demo does not exist"}"#
    );
    assert_eq!(
        put(r#"{"value": [["a", 1]]}"#).await,
        r#"{"code":2000,"msg":"fail to get insert info--get default value map of insert into trans values(?,?); failed"}"#
    );
    assert_eq!(
        put(r#"{"value": [["a",1,2,3,4,5,"2021-1-1",true,1,"extra"]]}"#).await,
        r#"{"code":-1,"msg":"column size != schema size"}"#
    );
    assert_eq!(
        put(r#"{"value": [[1,1,2,3,4,5,"2021-1-1",true,1]]}"#).await,
        r#"{"code":-1,"msg":"value is not string for col c1"}"#
    );
    assert_eq!(
        put(r#"{"value": [["a",1,2,3,4,5,"2021-0 4-27",true,1]]}"#).await,
        r#"{"code":-1,"msg":"convertion failed on col c7[7] with value 2021-0 4-27"}"#
    );
    assert_eq!(
        put(r#"{"value": [["a",1.0,2,3,4,5,"2021-1-1",true,1]]}"#).await,
        r#"{"code":-1,"msg":"convertion failed on col c2[2] with value "}"#
    );
    assert_eq!(put(r#"{"value": [["a",1,2,3,4,5,"2021-4-27",true,1]]}"#).await, r#"{"code":0,"msg":"ok"}"#);
}

#[tokio::test]
async fn s1_4_1_later_wording_behind_a_flag() {
    let api = Api::with(StandInOptions { wording: Wording::Current, ..Default::default() }).await;
    with_table(&api).await;
    let reply = api.text("PUT", "/dbs/demo/tables/trans", r#"{"value": [["a",1,2,3,4,5,"bad",true,1]]}"#).await;
    assert_eq!(reply, r#"{"code":-1,"msg":"conversion failed on col c7[7] with value bad"}"#);
}

#[tokio::test]
async fn s1_5_1_type_predicates() {
    let api = Api::start().await;
    with_table(&api).await;
    // c1 string, c2 int, c3 bigint, c4 float, c5 double, c6 timestamp, c7 date, c8 bool, c9 smallint
    let put = async |row: &str| api.text("PUT", "/dbs/demo/tables/trans", &format!("{{\"value\": [[{row}]]}}")).await;
    let ok = r#"{"code":0,"msg":"ok"}"#;
    assert_eq!(
        put(r#""a",1,2,NaN,Infinity,0,"2021-02-31",false,32767"#).await,
        ok,
        "NaN/Inf, ts 0, no per-month date check"
    );
    assert_eq!(put(r#""a",1,2,-Inf,-Infinity,1,"9999-12-31",true,-32768"#).await, ok);
    assert_eq!(
        put(r#"null,null,null,null,null,5,null,null,null"#).await,
        ok,
        "NULL where nullable; a null key is allowed"
    );
    assert_eq!(
        put(r#""a",1,2,3,9007199254740993,1,"2021-1-1",true,1"#).await,
        r#"{"code":-1,"msg":"convertion failed on col c5[5] with value "}"#
    );
    assert_eq!(
        put(r#""a",1,2,3,4,-1,"2021-1-1",true,1"#).await,
        r#"{"code":-1,"msg":"convertion failed on col c6[8] with value "}"#
    );
    assert_eq!(
        put(r#""a",1,2,3,4,null,"2021-1-1",true,1"#).await,
        r#"{"code":-1,"msg":"convertion failed on col c6[8] with value "}"#,
        "null ts column"
    );
    assert_eq!(
        put(r#""a",1,2,3,4,"2020-05-01",1,true,1"#).await,
        r#"{"code":-1,"msg":"convertion failed on col c6[8] with value 2020-05-01"}"#
    );
    assert_eq!(
        put(r#""a",1,2,3,4,1.6e12,"2021-1-1",true,1"#).await,
        r#"{"code":-1,"msg":"convertion failed on col c6[8] with value "}"#
    );
    assert_eq!(
        put(r#""a",1,2,3,4,1,"1899-12-31",true,1"#).await,
        r#"{"code":-1,"msg":"convertion failed on col c7[7] with value 1899-12-31"}"#
    );
    assert_eq!(
        put(r#""a",1,2,3,4,1,"2021-1-1",1,1"#).await,
        r#"{"code":-1,"msg":"convertion failed on col c8[0] with value "}"#
    );
    assert_eq!(
        put(r#""a",2147483648,2,3,4,1,"2021-1-1",true,1"#).await,
        r#"{"code":-1,"msg":"convertion failed on col c2[2] with value "}"#
    );
    assert_eq!(
        put(r#""a",1,9223372036854775808,3,4,1,"2021-1-1",true,1"#).await,
        r#"{"code":-1,"msg":"convertion failed on col c3[3] with value "}"#
    );
    assert_eq!(
        put(r#""a",1,2,3,4,1,"2021-1-1",true,32768"#).await,
        r#"{"code":-1,"msg":"convertion failed on col c9[1] with value "}"#
    );
}

#[tokio::test]
async fn s1_5_2_response_encodings() {
    let api = Api::start().await;
    with_table(&api).await;
    api.ok("demo", "INSERT INTO trans VALUES ('k', 1, 2, 1.1, 2.5, 1000, '2021-12-01', true, 3)").await;
    let text = api.text("POST", "/dbs/demo", r#"{"mode":"online","sql":"select * from trans"}"#).await;
    assert_eq!(
        text,
        r#"{"code":0,"msg":"ok","data":{"schema":["String","Int32","Int64","Float","Double","Timestamp","Date","Bool","Int16"],"data":[["k",1,2,1.100000023841858,2.5,1000,"2021-12-1",true,3]]}}"#
    );
    api.json("PUT", "/dbs/demo/tables/trans", json!({"value": [["n", 1, 2, 1.0, 4, 5, "2021-1-1", true, 1]]})).await;
    let nan = api
        .text("PUT", "/dbs/demo/tables/trans", r#"{"value": [["nan",1,2,NaN,-Infinity,5,"2021-1-1",true,1]]}"#)
        .await;
    assert_eq!(nan, r#"{"code":0,"msg":"ok"}"#);
    let raw = api.text("POST", "/dbs/demo", r#"{"mode":"online","sql":"select * from trans where c1 = 'nan'"}"#).await;
    assert!(raw.contains("[\"nan\",1,2,NaN,-Infinity,5,\"2021-1-1\",true,1]"), "{raw}");
    let nulls = api
        .text(
            "POST",
            "/dbs/demo",
            r#"{"mode":"online","sql":"select * from trans where c1 = 'nan'","write_nan_and_inf_null":true}"#,
        )
        .await;
    assert!(nulls.contains("[\"nan\",1,2,null,null,5,\"2021-1-1\",true,1]"), "{nulls}");
}

#[tokio::test]
async fn s2_6_select_with_a_column_list_returns_those_columns_in_that_order() {
    let api = Api::start().await;
    with_table(&api).await;
    api.ok("demo", "INSERT INTO trans VALUES ('k', 1, 2, 1.1, 2.5, 1000, '2021-12-01', true, 3)").await;
    let text =
        api.text("POST", "/dbs/demo", r#"{"mode":"online","sql":"select c6, c1, c9 from trans where c1 = 'k'"}"#).await;
    assert_eq!(text, r#"{"code":0,"msg":"ok","data":{"schema":["Timestamp","String","Int16"],"data":[[1000,"k",3]]}}"#);
    assert_eq!(api.sql("demo", "SELECT c1, nope FROM trans").await["code"], 2000);
}

#[tokio::test]
async fn s1_4_2_mode_and_request_validation() {
    let api = Api::start().await;
    let q = |body: &'static str| api.text("POST", "/dbs/demo", body);
    assert_eq!(q(r#"{"mode":"offline","sql":"show tables"}"#).await, r#"{"code":-1,"msg":"Invalid mode offline"}"#);
    assert_eq!(q(r#"[1]"#).await, r#"{"code":-1,"msg":"Json parse failed, INVALID_ARGUMENT: req is not object"}"#);
    assert_eq!(
        q(r#"{"sql":"show tables"}"#).await,
        r#"{"code":-1,"msg":"Json parse failed, INVALID_ARGUMENT: mode parse failed"}"#
    );
    assert_eq!(
        q(r#"{"mode":"online"}"#).await,
        r#"{"code":-1,"msg":"Json parse failed, INVALID_ARGUMENT: sql parse failed"}"#
    );
    assert_eq!(
        q(r#"{"mode":"online","sql":"x","timeout":"1"}"#).await,
        r#"{"code":-1,"msg":"Json parse failed, INVALID_ARGUMENT: timeout parse failed"}"#
    );
    assert_eq!(
        q(r#"{"mode":"ONLINE","sql":"CREATE DATABASE demo"}"#).await,
        r#"{"code":0,"msg":"ok"}"#,
        "mode is case-insensitive"
    );
    let syntax = api.sql("demo", "CREATE TABEL x").await;
    assert_eq!(syntax["code"], 1001);
    assert!(syntax["msg"].as_str().unwrap().starts_with("create logic plan tree failed--"), "{syntax}");
}

#[tokio::test]
async fn s2_2_create_database_and_table_rules() {
    let api = Api::start().await;
    api.ok("demo", "CREATE DATABASE demo").await;
    assert_eq!(
        api.sql("demo", "CREATE DATABASE demo").await,
        json!({"code": 2000, "msg": "Create database failed for database already exists"})
    );
    api.ok("demo", "CREATE DATABASE IF NOT EXISTS demo").await;
    assert_eq!(api.sql("nodb", "CREATE TABLE t (a int)").await, json!({"code": 2000, "msg": "database not found"}));
    api.ok("demo", "CREATE TABLE t (m double, a string, b timestamp)").await;
    assert_eq!(api.sql("demo", "CREATE TABLE t (a int)").await, json!({"code": 2000, "msg": "table already exists"}));
    api.ok("demo", "CREATE TABLE IF NOT EXISTS t (a int)").await;
    assert_eq!(
        api.sql("demo", "CREATE TABLE f (a double, INDEX(KEY=a))").await["msg"],
        "float or double type column can not be index, column is: a"
    );
    assert_eq!(
        api.sql("demo", "CREATE TABLE g (a int, b string, INDEX(KEY=a, TS=b))").await["msg"],
        "ts column type should be bigint or timestamp, column is: b"
    );
    assert_eq!(api.sql("demo", "CREATE TABLE h (a int, INDEX(KEY=z))").await["msg"], "can not found index col");

    // §2.2 default index: the first column that is not float/double, no TS, TTL unset.
    let t = api.json("GET", "/dbs/demo/tables/t", json!(null)).await;
    let key = &t["table"]["column_key"][0];
    assert_eq!(key["col_name"], json!(["a"]));
    assert!(key["index_name"].as_str().unwrap().starts_with("INDEX_0_"));
    assert_eq!(key.get("ts_name"), None);
    assert_eq!(key["ttl"], json!({}));
    // Explicit index, TTL and options.
    api.ok(
        "demo",
        "CREATE TABLE e (k1 string, k2 int, ts timestamp NOT NULL, INDEX(KEY=(k1,k2), TS=ts, TTL_TYPE=absorlat, TTL=(12h, 10))) \
         OPTIONS (PARTITIONNUM=2, REPLICANUM=1)",
    )
    .await;
    let e = api.json("GET", "/dbs/demo/tables/e", json!(null)).await["table"].clone();
    assert_eq!(e["partition_num"], 2);
    assert_eq!(e["replica_num"], 1);
    assert_eq!(e["column_key"][0]["col_name"], json!(["k1", "k2"]));
    assert_eq!(e["column_key"][0]["ts_name"], "ts");
    assert_eq!(e["column_key"][0]["ttl"], json!({"ttl_type": "absorlat", "abs_ttl": 720, "lat_ttl": 10}));
    assert_eq!(e["column_desc"][2], json!({"name": "ts", "data_type": "kTimestamp", "not_null": true}));
}

#[tokio::test]
async fn s1_4_6_and_s1_4_7_get_shapes_and_key_order() {
    let api = Api::start().await;
    with_table(&api).await;
    api.ok("zeta", "CREATE DATABASE zeta").await;
    assert_eq!(api.text("GET", "/dbs", "").await, r#"{"code":0,"msg":"ok","dbs":["demo","zeta"]}"#);
    assert_eq!(api.text("GET", "/dbs/none/tables", "").await, r#"{"code":-1,"msg":"DB not found"}"#);
    assert_eq!(api.text("GET", "/dbs/demo/tables/none", "").await, r#"{"code":-1,"msg":"Table not found"}"#);
    let text = api.text("GET", "/dbs/demo/tables/trans", "").await;
    let keys: Vec<String> =
        serde_json::from_str::<serde_json::Map<String, Value>>(&text).unwrap().keys().cloned().collect();
    assert_eq!(keys, ["code", "msg", "table"]);
    assert!(
        text.starts_with(r#"{"code":0,"msg":"ok","table":{"name":"trans","table_partition_size":8,"tid":1,"partition_num":8,"replica_num":3,"compress_type":"nocompress","column_desc":[{"name":"c1","data_type":"kVarchar","not_null":false},"#),
        "{text}"
    );
    assert!(
        text.ends_with(r#""added_column_desc":[],"db":"demo","partition_key":[],"schema_versions":[]}}"#),
        "{text}"
    );
    let tables = api.json("GET", "/dbs/demo/tables", json!(null)).await;
    assert_eq!(tables["tables"][0]["name"], "trans");
}

#[tokio::test]
async fn s2_3_insert_appends_and_or_ignore_skips_byte_identical_rows() {
    let api = Api::start().await;
    with_table(&api).await;
    let row = "('k', 1, 2, 1.5, 2.5, 1000, '2021-1-1', true, 3)";
    api.ok("demo", &format!("INSERT INTO trans VALUES {row}, {row}")).await;
    api.ok("demo", &format!("INSERT OR IGNORE INTO trans VALUES {row}")).await;
    api.ok("demo", "INSERT OR IGNORE INTO trans VALUES ('k', 1, 2, 1.5, 2.5, 1000, '2021-1-1', true, 4)").await;
    assert_eq!(
        api.rows("demo", "SELECT COUNT(*) FROM trans").await,
        vec![json!([3])],
        "duplicates kept; only the new row added"
    );
    assert_eq!(api.rows("demo", "SELECT COUNT(*) FROM trans WHERE c9 = 4").await, vec![json!([1])]);
}

#[tokio::test]
async fn s2_3_multi_row_insert_is_not_atomic_and_lists_failed_rows() {
    let api = Api::start().await;
    with_table(&api).await;
    let rows: Vec<String> = (0..5).map(|i| format!("('k{i}', {i}, 2, 1.5, 2.5, 1000, '2021-1-1', true, 3)")).collect();
    api.faults(json!({"fail_rows": [1, 3]})).await;
    let reply = api.sql("demo", &format!("INSERT INTO trans VALUES {}", rows.join(","))).await;
    assert_eq!(reply, json!({"code": 2000, "msg": "insert values 2 failed, failed rows peek: 1,3"}));
    assert_eq!(api.rows("demo", "SELECT COUNT(*) FROM trans").await, vec![json!([3])], "rows not listed were inserted");
    // A literal that does not fit fails the whole statement before any put.
    let bad = api.sql("demo", "INSERT INTO trans VALUES ('x', 1, 2, 1.5, 2.5, 1000, '2021-1-1', true, 3), ('y', 'two', 2, 1.5, 2.5, 1000, '2021-1-1', true, 3)").await;
    assert_eq!(bad["code"], 2000);
    assert!(bad["msg"].as_str().unwrap().starts_with("Fail to get insert info--fail to parse row[1]: "), "{bad}");
    assert_eq!(api.rows("demo", "SELECT COUNT(*) FROM trans").await, vec![json!([3])]);
    // A negative timestamp is refused by the SDK row by row, before any put:
    // that row fails, the statement goes on (§3.6a).
    let reply = api
        .sql(
            "demo",
            "INSERT INTO trans VALUES ('n0', 1, 2, 1.5, 2.5, 1000, '2021-1-1', true, 3), \
             ('n1', 1, 2, 1.5, 2.5, -1, '2021-1-1', true, 3), ('n2', 1, 2, 1.5, 2.5, 1000, '2021-1-1', true, 3)",
        )
        .await;
    assert_eq!(reply, json!({"code": 2000, "msg": "insert values 1 failed, failed rows peek: 1"}));
    assert_eq!(api.rows("demo", "SELECT COUNT(*) FROM trans").await, vec![json!([5])], "n0 and n2 stored");
    // So is a NULL index TS.
    let reply = api.sql("demo", "INSERT INTO trans (c1, c6) VALUES ('n3', NULL), ('n4', 7)").await;
    assert_eq!(reply, json!({"code": 2000, "msg": "insert values 1 failed, failed rows peek: 0"}));
    assert_eq!(api.rows("demo", "SELECT COUNT(*) FROM trans").await, vec![json!([6])], "n4 stored");
    // More than ten failures: only ten are peeked.
    api.faults(json!({"fail_next_writes": 1})).await;
    let rows: Vec<String> = (0..12).map(|i| format!("('m{i}', {i}, 2, 1.5, 2.5, 1000, '2021-1-1', true, 3)")).collect();
    let reply = api.sql("demo", &format!("INSERT INTO trans VALUES {}", rows.join(","))).await;
    assert_eq!(reply, json!({"code": 2000, "msg": "insert values 12 failed, failed rows peek: 0,1,2,3,4,5,6,7,8,9"}));
    assert_eq!(
        api.sql("demo", "INSERT INTO missing VALUES (1)").await,
        json!({"code": 2000, "msg": "Fail to get insert info--demo-missing not exist"})
    );
}

#[tokio::test]
async fn s2_1_sql_literal_coercion() {
    let api = Api::start().await;
    with_table(&api).await;
    // int64 literal into a double column is refused; 3e9 is fine.
    let refused =
        api.sql("demo", "INSERT INTO trans VALUES ('a', 1, 2, 1.5, 3000000000, 1000, '2021-1-1', true, 3)").await;
    assert_eq!(refused["code"], 2000, "{refused}");
    api.ok("demo", "INSERT INTO trans VALUES ('a', 1, 2, 1.5, 3000000000.0, 1000, '2021-1-1', 1, 3)").await;
    // Strings into timestamps are refused; escapes decode.
    assert_eq!(
        api.sql("demo", "INSERT INTO trans VALUES ('a', 1, 2, 1.5, 2.5, '2021-01-01', '2021-1-1', true, 3)").await["code"],
        2000
    );
    api.ok("demo", r"INSERT INTO trans VALUES ('it\'s \\ \n ☃', 1, 2, 1.5, 2.5, 1000, '2021-1-1', true, 3)").await;
    let rows = api.rows("demo", r"SELECT * FROM trans WHERE c1 = 'it\'s \\ \n ☃'").await;
    assert_eq!(rows[0][0], "it's \\ \n ☃");
    // Column lists fill the rest with NULL.
    api.ok("demo", "INSERT INTO trans (c1, c6) VALUES ('partial', 5)").await;
    assert_eq!(
        api.rows("demo", "SELECT * FROM trans WHERE c1 = 'partial'").await[0],
        json!(["partial", null, null, null, null, 5, null, null, null])
    );
    assert_eq!(
        api.sql("demo", "INSERT INTO trans (c1, nope) VALUES ('x', 1)").await["msg"],
        "Fail to get insert info--can't find column nope in table trans"
    );
}

#[tokio::test]
async fn s2_4_delete_drop_truncate_show_desc() {
    let api = Api::start().await;
    with_table(&api).await;
    for k in ["a", "b", "b"] {
        api.ok("demo", &format!("INSERT INTO trans VALUES ('{k}', 1, 2, 1.5, 2.5, 1000, '2021-1-1', true, 3)")).await;
    }
    assert_eq!(api.sql("demo", "DELETE FROM trans WHERE c2 = 1").await["code"], 2000, "only index columns");
    api.ok("demo", "DELETE FROM trans WHERE c1 = 'b'").await;
    assert_eq!(api.rows("demo", "SELECT COUNT(*) FROM trans").await, vec![json!([1])]);
    assert_eq!(api.rows("demo", "SHOW TABLES").await, vec![json!(["trans"])]);
    assert_eq!(api.rows("demo", "DESC trans").await[0], json!(["c1", "kVarchar", "YES"]));
    api.ok("demo", "TRUNCATE TABLE trans").await;
    assert_eq!(api.rows("demo", "SELECT COUNT(*) FROM trans").await, vec![json!([0])]);
    api.ok("demo", "DROP TABLE trans").await;
    assert_eq!(api.text("GET", "/dbs/demo/tables/trans", "").await, r#"{"code":-1,"msg":"Table not found"}"#);
    api.ok("demo", "DROP TABLE IF EXISTS trans").await;
}

#[tokio::test]
async fn s1_4_8_refresh_shows_tables_created_by_other_clients() {
    let api = Api::start().await;
    api.ok("demo", "CREATE DATABASE demo").await;
    let external =
        api.json("POST", "/__standin/external-sql", json!({"db": "demo", "sql": "CREATE TABLE late (a int)"})).await;
    assert_eq!(external["code"], 0);
    assert_eq!(api.text("GET", "/dbs/demo/tables/late", "").await, r#"{"code":-1,"msg":"Table not found"}"#);
    assert_eq!(api.text("POST", "/refresh", "").await, r#"{"code":0,"msg":"ok"}"#);
    assert_eq!(api.json("GET", "/dbs/demo/tables/late", json!(null)).await["table"]["name"], "late");
}

#[tokio::test]
async fn faults_tablet_errors_latency_and_refused_connections() {
    let api = Api::start().await;
    with_table(&api).await;
    let row = json!({"value": [["a", 1, 2, 3, 4, 5, "2021-1-1", true, 1]]});
    api.faults(json!({"fail_next_writes": 2})).await;
    for _ in 0..2 {
        let reply = api.json("PUT", "/dbs/demo/tables/trans", row.clone()).await;
        assert_eq!(
            reply,
            json!({"code": 2001, "msg": "put failed--ReturnCode[103]--table is follower--tid 1. RevertPut success."})
        );
    }
    assert_eq!(api.json("PUT", "/dbs/demo/tables/trans", row.clone()).await["code"], 0);
    api.faults(json!({"exceed_memory_writes": 1})).await;
    let reply = api.json("PUT", "/dbs/demo/tables/trans", row.clone()).await;
    assert_eq!(reply["msg"], "put failed--ReturnCode[160]--exceed max memory--tid 1. RevertPut success.");

    api.faults(json!({"latency_ms": 150})).await;
    let started = std::time::Instant::now();
    api.text("GET", "/dbs", "").await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(150));
    api.faults(json!({"latency_ms": 0, "refuse_connections_ms": 600})).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let refused = reqwest::Client::new().get(format!("{}/dbs", api.base)).send().await;
    assert!(refused.is_err(), "connections are refused during the window");
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let back = reqwest::Client::new().get(format!("{}/dbs", api.base)).send().await.unwrap();
    assert_eq!(back.status(), 200);
    let stats = api.json("GET", "/__standin/stats", json!(null)).await;
    assert_eq!(stats["stats"]["rows_stored"], 1);
}
