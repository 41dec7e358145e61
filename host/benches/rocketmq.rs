//! RocketMQ layer throughput against the broker of scripts/rocketmq.sh:
//! the produce rate (single sends and batches) and the raw consume rate
//! with a pipeline that does nothing but acknowledge, for 200 B and 1 KiB
//! bodies. The consume rate is the ceiling end-to-end figures are
//! compared with.
//!
//! Run: `scripts/rocketmq.sh start && cargo bench -p rmq-openmldb --bench rocketmq`
//! (`-- --quick` for fewer messages). `ROCKETMQ_NAMESRV` points it elsewhere.

use rmq_openmldb::rocketmq::{ConsumerConfig, OutgoingMessage, Producer, QueueConsumer, RocketMqClient};
use std::time::{Duration, Instant};

fn body(size: usize, i: usize) -> Vec<u8> {
    let mut body = format!("{{\"id\":{i},\"pad\":\"").into_bytes();
    body.resize(size - 2, b'x');
    body.extend_from_slice(b"\"}");
    body
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let namesrv = std::env::var("ROCKETMQ_NAMESRV").unwrap_or_else(|_| "127.0.0.1:9876".into());
    let count = if quick { 50_000 } else { 200_000 };
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let client = RocketMqClient::new().expect("RocketMQ client");
    let runtime = client.client();
    client.run(async move {
        println!("RocketMQ layer, broker at {namesrv}, topic with 8 queues");
        println!(
            "{:<8} {:>26} {:>20} {:>22}",
            "body", "produce, batches of 256", "produce, single sends", "consume (ack only)"
        );
        for size in [200usize, 1024] {
            let topic = format!("bench_{size}_{stamp}");
            let mut producer =
                Producer::start(runtime.clone(), &namesrv, &format!("bench-producer-{stamp}")).await.expect("producer");
            producer.create_topic(&topic, 8).await.expect("create topic");
            // Batches of 256 to each queue in turn.
            let started = Instant::now();
            let mut sent = 0;
            while sent < count {
                for queue in 0..8 {
                    let batch: Vec<OutgoingMessage> = (sent..sent + 256)
                        .map(|i| OutgoingMessage { topic: topic.clone(), body: body(size, i), ..Default::default() })
                        .collect();
                    producer.send_batch_to_queue(&batch, "broker-a", queue).await.expect("send batch");
                    sent += 256;
                }
            }
            let batch_rate = sent as f64 / started.elapsed().as_secs_f64();
            // Single sends, 16 at a time, for two seconds.
            let started = Instant::now();
            let mut singles = 0usize;
            while started.elapsed() < Duration::from_secs(2) {
                let sends = (0..16).map(|i| {
                    let message =
                        OutgoingMessage { topic: format!("{topic}_single"), body: body(size, i), ..Default::default() };
                    let producer = &producer;
                    async move { producer.send(&message).await }
                });
                for result in futures::future::join_all(sends).await {
                    result.expect("send");
                    singles += 1;
                }
            }
            let single_rate = singles as f64 / started.elapsed().as_secs_f64();
            producer.shutdown().await;

            let consumer = QueueConsumer::start(
                runtime.clone(),
                ConsumerConfig::new(&namesrv, &format!("bench-{size}-{stamp}"), &[&topic]),
            )
            .await
            .expect("consumer");
            let mut received = 0usize;
            let mut first = None;
            let deadline = Instant::now() + Duration::from_secs(300);
            while received < sent && Instant::now() < deadline {
                let messages = consumer.poll(Duration::from_millis(500)).await;
                if !messages.is_empty() {
                    first.get_or_insert_with(Instant::now);
                }
                received += messages.len();
                consumer.ack(messages.iter().map(|m| (m.queue.clone(), m.queue_offset))).await;
            }
            let consume_rate = first.map(|f| received as f64 / f.elapsed().as_secs_f64()).unwrap_or(0.0);
            consumer.shutdown().await;
            println!(
                "{:<8} {:>20.0} msg/s {:>14.0} msg/s {:>16.0} msg/s",
                if size == 200 { "200 B" } else { "1 KiB" },
                batch_rate,
                single_rate,
                consume_rate
            );
        }
    });
}
