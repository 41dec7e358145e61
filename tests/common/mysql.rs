//! MariaDB for the tests: started once per test binary by
//! `scripts/mariadb.sh` (installed from Debian's packages when missing),
//! and SQL run with the `mariadb` client as a user would.

use super::{root, unique};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Once;

/// The test user `scripts/mariadb.sh` creates.
pub fn db_user() -> String {
    std::env::var("MARIADB_USER").unwrap_or_else(|_| "rmq".into())
}
pub fn db_password() -> String {
    std::env::var("MARIADB_PASSWORD").unwrap_or_else(|_| "rmq-secret".into())
}
pub fn db_port() -> String {
    std::env::var("MARIADB_PORT").unwrap_or_else(|_| "3306".into())
}

/// Start MariaDB once per test binary (installing it if missing).
pub fn mariadb() {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        let status = Command::new(root().join("scripts/mariadb.sh")).arg("start").status().unwrap();
        assert!(status.success(), "scripts/mariadb.sh start failed");
    });
}

/// Run SQL with the mariadb client, as a user would.
pub fn sql(database: Option<&str>, statements: &str) -> String {
    let mut command = Command::new(root().join("scripts/mariadb.sh"));
    command.args(["sql", "--batch", "--skip-column-names"]);
    if let Some(db) = database {
        command.args(["-D", db]);
    }
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(statements.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "SQL failed: {}\n{statements:.300}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// A fresh database for one test.
pub fn fresh_database(name: &str) -> String {
    let database = unique(name);
    sql(None, &format!("CREATE DATABASE `{database}`"));
    database
}
