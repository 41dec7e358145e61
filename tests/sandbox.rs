//! Hostile plugins and hostile callers, against the worker binary, the real
//! broker and the OpenMLDB stand-in: a plugin that sleeps, spins, hoards
//! memory, floods its output, panics or reaches for files, sockets and the
//! environment is contained within its deadline and its grants, the worker
//! and its other connectors keep writing, and every message is written or
//! dead-lettered. The REST API refuses foreign hosts and origins, plugin
//! paths, and never shows a URL's password.

mod common;

use common::{
    WorkerProcess, guide_sink, produce_to, property, read_dead_letters, standin, unique, wait_for_rows, with_broker,
};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

async fn create_table(standin: &openmldb_standin::StandIn, ddl: &str) {
    let api = rmq_openmldb::openmldb::ApiClient::new(&standin.addr.to_string(), Duration::from_secs(5)).unwrap();
    assert!(api.execute("rocketmq_test", ddl).await.unwrap().is_ok(), "{ddl}");
}

/// `count` dead letters of `topic` as (command, reason), in id order.
async fn dead_letter_reasons(
    runtime: std::sync::Arc<rocketmq_client_rust::ClientRuntime>,
    topic: &str,
    count: usize,
) -> Vec<(String, String)> {
    let mut letters = read_dead_letters(runtime, topic, count).await;
    letters.sort_by_key(|m| serde_json::from_slice::<Value>(&m.body).unwrap()["id"].as_i64());
    letters
        .iter()
        .map(|m| {
            let body: Value = serde_json::from_slice(&m.body).unwrap();
            (body["cmd"].as_str().unwrap().to_string(), property(m, "connect.errors.reason").unwrap())
        })
        .collect()
}

fn metric(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in\n{metrics}"))
}

#[test]
fn hostile_plugins_are_contained_and_every_message_is_written_or_dead_lettered() {
    with_broker(|runtime| async move {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        let components = Path::new(env!("RMQ_OPENMLDB_TEST_COMPONENTS"));
        std::fs::copy(components.join("hostile.wasm"), plugins.join("hostile.wasm")).unwrap();
        let standin = standin().await;
        let (hostile, calm, dead_letters) = (unique("hostile"), unique("calm"), unique("hostile_dlq"));
        create_table(&standin, &format!("CREATE TABLE {hostile} (cmd string, id bigint, INDEX(KEY=id))")).await;
        create_table(&standin, &format!("CREATE TABLE {calm} (cmd string, id bigint, INDEX(KEY=id))")).await;

        let mut commands: Vec<String> = vec!["pass".into(); 200];
        let traps = [(20, "sleep"), (50, "loop"), (80, "alloc"), (140, "panic")];
        for (id, command) in traps {
            commands[id] = command.into();
        }
        commands[110] = "flood".into();
        commands[170] = "read:/etc/passwd".into();
        commands[180] = format!("connect:{}", common::NAMESRV);
        commands[190] = "env:HOME".into();
        let bodies: Vec<String> =
            commands.iter().enumerate().map(|(id, cmd)| json!({"cmd": cmd, "id": id}).to_string()).collect();
        produce_to(dir.path(), &hostile, &bodies, 2);
        let calm_bodies: Vec<String> = (0..500).map(|id| json!({"cmd": "calm", "id": id}).to_string()).collect();
        produce_to(dir.path(), &calm, &calm_bodies, 2);

        let worker = WorkerProcess::start_with(
            dir.path(),
            &format!("worker_id = \"test-worker\"\nplugins_dir = \"{}\"\n", plugins.display()),
        )
        .await;
        let mut connector = standin.sink(&hostile);
        for (key, value) in [
            ("transforms", "hostile"),
            ("plugin.call.timeout.ms", "500"),
            ("plugin.memory.max.bytes", "33554432"),
            ("errors.tolerance", "all"),
            ("errors.deadletterqueue.topic.name", dead_letters.as_str()),
        ] {
            connector[key] = json!(value);
        }
        let (_, reply) = worker.post("/connectors/hostile", &connector.to_string()).await;
        assert_eq!(reply["status"], 200, "{reply}");
        let (_, reply) = worker.post("/connectors/calm", &standin.sink(&calm).to_string()).await;
        assert_eq!(reply["status"], 200, "{reply}");

        let calm_rows = wait_for_rows(&standin, &calm, 500, &worker).await;
        assert_eq!(calm_rows.len(), 500, "the other connector writes every row while the hostile one misbehaves");
        let rows = wait_for_rows(&standin, &hostile, 196, &worker).await;
        let mut ids: Vec<i64> = rows.iter().map(|r| r[1].as_i64().unwrap()).collect();
        ids.sort();
        let expected: Vec<i64> = (0..200).filter(|id| !traps.iter().any(|(t, _)| *t as i64 == *id)).collect();
        assert_eq!(ids, expected, "every message that does not trap is written once");
        let cmd_of = |id: i64| rows.iter().find(|r| r[1] == json!(id)).unwrap()[0].as_str().unwrap().to_string();
        assert!(cmd_of(170).starts_with("denied"), "no files: {}", cmd_of(170));
        assert!(cmd_of(180).starts_with("denied"), "no sockets: {}", cmd_of(180));
        assert!(cmd_of(190).starts_with("denied"), "no environment: {}", cmd_of(190));
        assert_eq!(cmd_of(110), "flood");

        let reasons = dead_letter_reasons(runtime, &dead_letters, 4).await;
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        assert!(reasons[0].0 == "sleep" && reasons[0].1.contains("deadline exceeded"), "{reasons:?}");
        assert!(reasons[1].0 == "loop" && reasons[1].1.contains("deadline exceeded"), "{reasons:?}");
        assert!(reasons[2].0 == "alloc" && reasons[2].1.contains("memory limit exceeded"), "{reasons:?}");
        assert!(reasons[3].0 == "panic" && reasons[3].1.contains("panic"), "{reasons:?}");

        let metrics = reqwest::get(format!("{}/metrics", worker.base)).await.unwrap().text().await.unwrap();
        let labels = "connector=\"hostile\",plugin=\"hostile\"";
        assert!(metric(&metrics, &format!("rmq_openmldb_plugin_log_lines_dropped_total{{{labels}}}")) >= 99_000.0);
        assert!(
            metric(&metrics, &format!("rmq_openmldb_plugin_traps_by_kind_total{{{labels},kind=\"deadline\"}}")) >= 2.0
        );
        assert!(
            metric(&metrics, &format!("rmq_openmldb_plugin_counter_total{{{labels},name=\"hostile_calls\"}}")) >= 1.0
        );
        let high_water = metric(&metrics, &format!("rmq_openmldb_plugin_memory_high_water_bytes{{{labels}}}"));
        assert!(high_water <= 32.0 * 1024.0 * 1024.0, "{high_water}");
        let rss = metric(&metrics, "rmq_openmldb_process_resident_memory_bytes");
        assert!(rss < 512.0 * 1024.0 * 1024.0, "the worker's memory stays bounded: {rss}");
        let log = worker.log_text();
        assert!(log.matches("flood line").count() <= 200, "the flood is rate-limited in the worker's log");
        let (_, view) = worker.get("/v1/connectors/hostile").await;
        assert_eq!(view["state"], "RUNNING", "{view}");
        assert_eq!(view["plugins"][1]["sandbox"]["call_timeout_ms"], 500, "{view}");

        // A connector whose plugin is asleep in every call is deleted
        // within its deadline plus a margin, and its consumer goes with it.
        let sleepers: Vec<String> = (0..50).map(|id| json!({"cmd": "sleep", "id": 1000 + id}).to_string()).collect();
        produce_to(dir.path(), &hostile, &sleepers, 2);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let started = Instant::now();
        let (status, _) = worker.send(reqwest::Method::DELETE, "/v1/connectors/hostile", "").await;
        assert_eq!(status, 204);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(10), "delete took {took:?}");
        let (status, _) = worker.get("/v1/connectors/hostile").await;
        assert_eq!(status, 404);
    });
}

/// Build tests/components/hostile-c with the CLI, as a plugin author would.
fn build_hostile_c(work: &Path, plugins: &Path) {
    let project = work.join("hostile-c");
    std::fs::create_dir_all(project.join("wit")).unwrap();
    let source = common::root().join("tests/components/hostile-c");
    for file in ["plugin.c", "plugin.toml"] {
        std::fs::copy(source.join(file), project.join(file)).unwrap();
    }
    std::fs::copy(common::root().join("wit/plugin.wit"), project.join("wit/plugin.wit")).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rmq-openmldb"))
        .args(["plugin", "build", ".", "--install"])
        .arg(plugins)
        .current_dir(&project)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "building hostile-c failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_hostile_plugin_in_c_meets_the_same_policy_and_an_oversized_result_is_refused_uncopied() {
    with_broker(|runtime| async move {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        build_hostile_c(dir.path(), &plugins);
        let standin = standin().await;
        let (topic, dead_letters) = (unique("hostile_c"), unique("hostile_c_dlq"));
        create_table(&standin, &format!("CREATE TABLE {topic} (cmd string, id bigint, INDEX(KEY=id))")).await;

        let mut commands: Vec<String> = vec!["pass".into(); 100];
        let traps = [(10, "sleep"), (30, "spin"), (50, "alloc"), (70, "oversized")];
        for (id, command) in traps {
            commands[id] = command.into();
        }
        commands[90] = "read:/etc/passwd".into();
        let bodies: Vec<String> =
            commands.iter().enumerate().map(|(id, cmd)| json!({"cmd": cmd, "id": id}).to_string()).collect();
        produce_to(dir.path(), &topic, &bodies, 2);

        let worker = WorkerProcess::start_with(
            dir.path(),
            &format!("worker_id = \"test-worker\"\nplugins_dir = \"{}\"\n", plugins.display()),
        )
        .await;
        let mut connector = standin.sink(&topic);
        for (key, value) in [
            ("transforms", "hostile"),
            ("transforms.hostile.type", "hostile-c"),
            ("plugin.call.timeout.ms", "500"),
            ("plugin.memory.max.bytes", "33554432"),
            ("errors.tolerance", "all"),
            ("errors.deadletterqueue.topic.name", dead_letters.as_str()),
        ] {
            connector[key] = json!(value);
        }
        let (_, reply) = worker.post("/connectors/hostile-c", &connector.to_string()).await;
        assert_eq!(reply["status"], 200, "{reply}");

        let rows = wait_for_rows(&standin, &topic, 96, &worker).await;
        let mut ids: Vec<i64> = rows.iter().map(|r| r[1].as_i64().unwrap()).collect();
        ids.sort();
        let expected: Vec<i64> = (0..100).filter(|id| !traps.iter().any(|(t, _)| *t as i64 == *id)).collect();
        assert_eq!(ids, expected, "every message that does not trap is written once");
        let passwd = rows.iter().find(|r| r[1] == json!(90)).unwrap()[0].as_str().unwrap().to_string();
        assert!(passwd.starts_with("denied"), "no files: {passwd}");

        let reasons = dead_letter_reasons(runtime, &dead_letters, 4).await;
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        assert!(reasons[0].0 == "sleep" && reasons[0].1.contains("deadline exceeded"), "{reasons:?}");
        assert!(reasons[1].0 == "spin" && reasons[1].1.contains("deadline exceeded"), "{reasons:?}");
        assert!(reasons[2].0 == "alloc" && reasons[2].1.contains("memory limit exceeded"), "{reasons:?}");
        assert!(reasons[3].0 == "oversized" && reasons[3].1.contains("output too large"), "{reasons:?}");

        // 4096 rows of one shared 8 MiB string would be 32 GiB once copied.
        let metrics = reqwest::get(format!("{}/metrics", worker.base)).await.unwrap().text().await.unwrap();
        let rss = metric(&metrics, "rmq_openmldb_process_resident_memory_bytes");
        assert!(rss < 512.0 * 1024.0 * 1024.0, "the worker's memory stays bounded: {rss}");
        let (_, view) = worker.get("/v1/connectors/hostile-c").await;
        assert_eq!(view["state"], "RUNNING", "{view}");
    });
}

#[test]
fn the_rest_api_refuses_foreign_hosts_origins_and_plugin_paths_and_never_shows_a_url_password() {
    with_broker(|_| async {
        let dir = tempfile::tempdir().unwrap();
        let worker = WorkerProcess::start(dir.path()).await;
        let client = reqwest::Client::new();
        let url = |path: &str| format!("{}{path}", worker.base);

        // DNS rebinding: the page's own name in Host.
        let response = client.get(url("/v1/connectors")).header("Host", "evil.example:8082").send().await.unwrap();
        assert_eq!(response.status().as_u16(), 403);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "forbidden_host", "{body}");

        // Cross-site request forgery: another site's page posts.
        let sink = guide_sink("csrf_topic", "127.0.0.1:9");
        let response = client
            .post(url("/v1/connectors"))
            .header("Origin", "http://evil.example")
            .header("Content-Type", "application/json")
            .body(json!({"name": "csrf", "config": sink}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 403);
        // …or a link or image that triggers a compat GET route.
        let response = client
            .get(url(&format!("/connectors/csrf?config={}", urlencode(&sink.to_string()))))
            .header("Sec-Fetch-Mode", "no-cors")
            .header("Referer", "http://evil.example/page")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 403);
        let response = client.get(url("/connectors/stop/all")).header("Origin", "http://evil.example").send().await;
        assert_eq!(response.unwrap().status().as_u16(), 403);
        assert_eq!(worker.get("/v1/connectors/csrf").await.0, 404, "nothing was created");
        // The API's own page may change things.
        let own = worker.base.clone();
        let response = client
            .post(url("/v1/connectors"))
            .header("Origin", own)
            .header("Content-Type", "application/json")
            .body(json!({"name": "own-page", "config": sink}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201);

        // A plugin is a name from the catalog, never a path.
        let mut by_path = guide_sink("path_topic", "127.0.0.1:9");
        by_path["transforms"] = json!("evil");
        by_path["transforms.evil.type"] = json!("/tmp/evil.wasm");
        let (status, reply) =
            worker.post("/v1/connectors", &json!({"name": "by-path", "config": by_path}).to_string()).await;
        assert_eq!(status, 400, "{reply}");
        assert!(reply.to_string().contains("/tmp/evil.wasm"), "{reply}");

        // A password inside connection.url is never shown.
        let mut mysql = guide_sink("secret_topic", "127.0.0.1:9");
        mysql["connection.url"] = json!("jdbc:mysql://writer:hunter2secret@127.0.0.1:9/db");
        let (status, reply) = worker.post("/connectors/url-secret", &mysql.to_string()).await;
        assert_eq!((status, &reply["status"]), (200, &json!(200)), "{reply}");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut seen = reply.to_string();
        for path in ["/connectors/url-secret/config", "/connectors/url-secret/status", "/v1/connectors/url-secret"] {
            seen.push_str(&worker.get(path).await.1.to_string());
        }
        seen.push_str(&worker.get("/v1/connectors/url-secret/config").await.1.to_string());
        seen.push_str(&worker.log_text());
        assert!(seen.contains("writer:********@127.0.0.1:9"), "masked, not removed: {seen}");
        assert!(!seen.contains("hunter2secret"), "the password leaked: {seen}");
    });
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
