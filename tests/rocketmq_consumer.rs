//! The consumer and producer against a real Apache RocketMQ broker
//! (scripts/rocketmq.sh, started by scripts/test.sh or on demand here).
//! The tests share the broker and run one at a time.

mod common;

use common::unique;

use rmq_openmldb::rocketmq::{ConsumerConfig, OutgoingMessage, Producer, QueueConsumer, RocketMqClient};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const NAMESRV: &str = "127.0.0.1:9876";
static SERIAL: Mutex<()> = Mutex::new(());

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn rocketmq(command: &str) {
    let status =
        Command::new(root().join("scripts/rocketmq.sh")).arg(command).status().expect("run scripts/rocketmq.sh");
    assert!(status.success(), "scripts/rocketmq.sh {command} failed");
}

/// Produce `count` messages over 8 queues through the CLI, as a user would.
fn produce(topic: &str, count: usize, prefix: &str) {
    let status = Command::new(env!("CARGO_BIN_EXE_rmq-openmldb"))
        .args([
            "rocketmq",
            "produce",
            "--namesrv",
            NAMESRV,
            "--topic",
            topic,
            "--count",
            &count.to_string(),
            "--prefix",
            prefix,
        ])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Messages seen, per queue, in arrival order: (offset, body).
type Seen = BTreeMap<i32, Vec<(i64, String)>>;

fn distinct(seen: &Seen) -> usize {
    seen.values().map(|v| v.iter().map(|(o, _)| *o).collect::<HashSet<_>>().len()).sum()
}

fn duplicates(seen: &Seen) -> usize {
    seen.values().map(Vec::len).sum::<usize>() - distinct(seen)
}

/// Every queue holds `prefix-<queue>-0 .. n` in order.
fn assert_complete_and_ordered(seen: &Seen, prefix: &str, per_queue: usize) {
    assert_eq!(seen.len(), 8, "all 8 queues delivered");
    for (queue, messages) in seen {
        let mut expected_next = 0usize;
        let mut last_offset = -1i64;
        for (offset, body) in messages {
            if *offset <= last_offset {
                // A redelivery after a restart starts again at the committed offset.
                continue;
            }
            assert_eq!(
                body,
                &format!("{prefix}-{queue}-{expected_next}"),
                "queue {queue} out of order at offset {offset}"
            );
            expected_next += 1;
            last_offset = *offset;
        }
        assert_eq!(expected_next, per_queue, "queue {queue} complete");
    }
}

#[test]
fn a_hundred_thousand_messages_arrive_exactly_once_in_queue_order() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    rocketmq("start");
    let topic = unique("exactly_once");
    produce(&topic, 100_000, "m");
    let client = RocketMqClient::new().unwrap();
    let runtime = client.client();
    let mut seen = Seen::new();
    let started = Instant::now();
    let received = client.run(consume_with(runtime, &unique("g"), &topic, 100_000, None, &mut seen));
    eprintln!("start, consume and stop took {:.2} s", started.elapsed().as_secs_f64());
    assert_eq!(received, 100_000);
    assert_eq!(duplicates(&seen), 0);
    assert_complete_and_ordered(&seen, "m", 12_500);
}

/// Consume until `want` distinct messages arrived (or three minutes
/// passed), acknowledging each poll right away; `stop_after` ends the run
/// early, as a restart would.
async fn consume_with(
    runtime: std::sync::Arc<rocketmq_client_rust::ClientRuntime>,
    group: &str,
    topic: &str,
    want: usize,
    stop_after: Option<usize>,
    seen: &mut Seen,
) -> usize {
    let consumer = QueueConsumer::start(runtime, ConsumerConfig::new(NAMESRV, group, &[topic])).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut received = 0;
    let (mut polling, mut acking, mut polls) = (Duration::ZERO, Duration::ZERO, 0);
    let mut first_message: Option<Instant> = None;
    while distinct(seen) < want && Instant::now() < deadline && stop_after.is_none_or(|s| received < s) {
        let t = Instant::now();
        let messages = consumer.poll(Duration::from_millis(500)).await;
        polling += t.elapsed();
        polls += 1;
        if !messages.is_empty() {
            first_message.get_or_insert_with(Instant::now);
        }
        received += messages.len();
        for m in &messages {
            seen.entry(m.queue.queue_id)
                .or_default()
                .push((m.queue_offset, String::from_utf8_lossy(&m.body).into_owned()));
        }
        let t = Instant::now();
        consumer.ack(messages.iter().map(|m| (m.queue.clone(), m.queue_offset))).await;
        acking += t.elapsed();
    }
    if let Some(first) = first_message {
        let seconds = first.elapsed().as_secs_f64();
        eprintln!(
            "{received} messages in {polls} polls over {seconds:.2} s from the first message ({:.0} msg/s); {polling:?} in poll, {acking:?} in ack",
            received as f64 / seconds
        );
    }
    let stopping = Instant::now();
    consumer.shutdown().await;
    eprintln!("consumer shutdown took {:?}", stopping.elapsed());
    received
}

#[test]
fn a_restarted_consumer_resumes_where_it_acknowledged() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    rocketmq("start");
    let topic = unique("restart");
    let group = unique("g");
    produce(&topic, 20_000, "r");
    let client = RocketMqClient::new().unwrap();
    let runtime = client.client();
    let mut seen = Seen::new();
    let (first, second) = client.run(async {
        let first = consume_with(runtime.clone(), &group, &topic, 20_000, Some(8_000), &mut seen).await;
        let second = consume_with(runtime.clone(), &group, &topic, 20_000, None, &mut seen).await;
        (first, second)
    });
    eprintln!("first run {first}, second run {second}, duplicates {}", duplicates(&seen));
    assert!((8_000..20_000).contains(&first), "{first}");
    assert_eq!(distinct(&seen), 20_000, "nothing lost");
    assert_eq!(duplicates(&seen), 0, "everything handed out was acknowledged before the restart");
    assert_complete_and_ordered(&seen, "r", 2_500);
}

#[test]
fn a_consumer_killed_with_sigkill_loses_nothing_after_restart() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    rocketmq("start");
    let topic = unique("sigkill");
    let group = unique("g");
    produce(&topic, 40_000, "k");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("consumed.txt");
    let consume = || {
        Command::new(env!("CARGO_BIN_EXE_rmq-openmldb"))
            .args([
                "rocketmq",
                "consume",
                "--namesrv",
                NAMESRV,
                "--topic",
                &topic,
                "--group",
                &group,
                "--idle-ms",
                "8000",
            ])
            .arg("--out")
            .arg(&out)
            .spawn()
            .unwrap()
    };
    let mut first = consume();
    let wait_until = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&out).map(|t| t.lines().count()).unwrap_or(0) < 10_000 && Instant::now() < wait_until
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let after_kill = std::fs::read_to_string(&out).unwrap().lines().count();
    let status = consume().wait().unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&out).unwrap();
    let mut seen = Seen::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ' ');
        let (queue, offset, body) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        seen.entry(queue.parse().unwrap()).or_default().push((offset.parse().unwrap(), body.to_string()));
    }
    eprintln!(
        "killed after {after_kill} lines; {} lines in all, {} redelivered",
        text.lines().count(),
        duplicates(&seen)
    );
    assert_eq!(distinct(&seen), 40_000, "every message accounted for");
    assert_complete_and_ordered(&seen, "k", 5_000);
}

#[test]
fn the_consumer_rides_out_a_broker_restart() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    rocketmq("start");
    let topic = unique("broker_restart");
    let group = unique("g");
    produce(&topic, 8_000, "b");
    let client = RocketMqClient::new().unwrap();
    let runtime = client.client();
    let mut seen = Seen::new();
    client.run(async {
        let consumer =
            QueueConsumer::start(runtime.clone(), ConsumerConfig::new(NAMESRV, &group, &[&topic])).await.unwrap();
        let mut restarted = false;
        let deadline = Instant::now() + Duration::from_secs(240);
        while distinct(&seen) < 16_000 && Instant::now() < deadline {
            let messages = consumer.poll(Duration::from_millis(500)).await;
            for m in &messages {
                seen.entry(m.queue.queue_id)
                    .or_default()
                    .push((m.queue_offset, String::from_utf8_lossy(&m.body).into_owned()));
            }
            consumer.ack(messages.iter().map(|m| (m.queue.clone(), m.queue_offset))).await;
            if !restarted && distinct(&seen) >= 8_000 {
                restarted = true;
                tokio::task::spawn_blocking({
                    let topic = topic.clone();
                    move || {
                        rocketmq("stop-broker");
                        std::thread::sleep(Duration::from_secs(20));
                        rocketmq("start-broker");
                        produce(&topic, 8_000, "b2");
                    }
                });
            }
        }
        consumer.shutdown().await;
    });
    assert_eq!(distinct(&seen), 16_000, "the messages sent after the restart arrived too");
}

#[test]
fn unacknowledged_messages_pause_their_queue_until_acknowledged() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    rocketmq("start");
    let topic = unique("backpressure");
    produce(&topic, 16_000, "p");
    let client = RocketMqClient::new().unwrap();
    let runtime = client.client();
    let (held, after_ack) = client.run(async {
        let mut config = ConsumerConfig::new(NAMESRV, &unique("g"), &[&topic]);
        config.max_in_flight_per_queue = 500;
        config.pull_batch_size = 100;
        let consumer = QueueConsumer::start(runtime, config).await.unwrap();
        // Poll without acknowledging: the consumer stops handing out messages.
        let mut held = Vec::new();
        let quiet_since = Instant::now();
        let mut last_growth = Instant::now();
        while last_growth.elapsed() < Duration::from_secs(3) && quiet_since.elapsed() < Duration::from_secs(60) {
            let messages = consumer.poll(Duration::from_millis(200)).await;
            if !messages.is_empty() {
                last_growth = Instant::now();
            }
            held.extend(messages);
        }
        let in_flight = consumer.in_flight(0).await;
        assert_eq!(in_flight, held.len());
        // Acknowledge everything: the queues resume and the rest arrives.
        consumer.ack(held.iter().map(|m| (m.queue.clone(), m.queue_offset))).await;
        let mut after = 0;
        let deadline = Instant::now() + Duration::from_secs(60);
        while held.len() + after < 16_000 && Instant::now() < deadline {
            let messages = consumer.poll(Duration::from_millis(200)).await;
            after += messages.len();
            consumer.ack(messages.iter().map(|m| (m.queue.clone(), m.queue_offset))).await;
        }
        consumer.shutdown().await;
        (held.len(), after)
    });
    eprintln!("held {held} unacknowledged messages, then {after_ack} more after acknowledging");
    // 8 queues x 500 in flight, plus at most one more pull per queue already cached.
    assert!((8 * 500..=8 * (500 + 2 * 100) + 8 * 1000).contains(&held), "{held}");
    assert!(held < 16_000, "the consumer stopped before the backlog ran out");
    assert_eq!(held + after_ack, 16_000);
}

#[test]
fn the_producer_sends_keys_tags_and_properties() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    rocketmq("start");
    let topic = unique("produce");
    let client = RocketMqClient::new().unwrap();
    let runtime = client.client();
    let received = client.run(async {
        let mut producer = Producer::start(runtime.clone(), NAMESRV, &unique("pg")).await.unwrap();
        producer.create_topic(&topic, 4).await.unwrap();
        let message = OutgoingMessage {
            topic: topic.clone(),
            keys: Some("k1 k2".into()),
            tags: Some("TagA".into()),
            properties: vec![("error.reason".into(), "field \"howold\": value 3000000000 does not fit int".into())],
            body: b"{\"id\": 1}".to_vec(),
        };
        producer.send(&message).await.unwrap();
        producer.shutdown().await;
        let consumer =
            QueueConsumer::start(runtime, ConsumerConfig::new(NAMESRV, &unique("g"), &[&topic])).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut got = Vec::new();
        while got.is_empty() && Instant::now() < deadline {
            got = consumer.poll(Duration::from_millis(500)).await;
        }
        consumer.ack(got.iter().map(|m| (m.queue.clone(), m.queue_offset))).await;
        consumer.shutdown().await;
        got
    });
    assert_eq!(received.len(), 1);
    let m = &received[0];
    assert_eq!(m.keys.as_deref(), Some("k1 k2"));
    assert_eq!(m.tags.as_deref(), Some("TagA"));
    assert_eq!(&m.body[..], b"{\"id\": 1}");
    assert!(
        m.properties
            .contains(&("error.reason".to_string(), "field \"howold\": value 3000000000 does not fit int".to_string())),
        "{:?}",
        m.properties
    );
    assert!(m.born_timestamp > 0 && m.store_timestamp >= m.born_timestamp);
}
