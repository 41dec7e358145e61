//! `rmq-openmldb rocketmq produce | consume`: check a RocketMQ setup from
//! the command line, and drive the consumer from tests as a separate
//! process (so it can be killed).

use crate::rocketmq::{ConsumeFrom, ConsumerConfig, OutgoingMessage, Producer, QueueConsumer, RocketMqClient};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Subcommand, Debug)]
pub enum RocketMqCommand {
    /// Send numbered messages (`<prefix>-<queue>-<n>`) to a topic in
    /// batches per queue, or (`--lines FILE`) each line of a file as one message.
    Produce(ProduceArgs),
    /// Consume a topic with a consumer group, write one line per message
    /// (`queue offset body`) and acknowledge it after the line is flushed.
    Consume(ConsumeArgs),
}

#[derive(Args, Debug)]
pub struct ProduceArgs {
    #[arg(long, default_value = "127.0.0.1:9876")]
    pub namesrv: String,
    #[arg(long)]
    pub topic: String,
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    /// Queues to create the topic with and spread messages over.
    #[arg(long, default_value_t = 8)]
    pub queues: i32,
    /// The broker that holds the topic.
    #[arg(long, default_value = "broker-a")]
    pub broker: String,
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    #[arg(long, default_value = "m")]
    pub prefix: String,
    /// Send each non-empty line of this file as one message instead.
    #[arg(long)]
    pub lines: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ConsumeArgs {
    #[arg(long, default_value = "127.0.0.1:9876")]
    pub namesrv: String,
    #[arg(long)]
    pub topic: String,
    #[arg(long)]
    pub group: String,
    /// Where to append the consumed lines.
    #[arg(long)]
    pub out: PathBuf,
    /// Stop after this many messages (in this run).
    #[arg(long)]
    pub count: Option<usize>,
    /// Stop after this long without a message.
    #[arg(long, default_value_t = 10_000)]
    pub idle_ms: u64,
}

pub fn run(command: RocketMqCommand) -> Result<()> {
    let client = RocketMqClient::new()?;
    let runtime = client.client();
    client.run(async move {
        match command {
            RocketMqCommand::Produce(args) => produce(runtime, args).await,
            RocketMqCommand::Consume(args) => consume(runtime, args).await,
        }
    })
}

async fn produce(runtime: std::sync::Arc<rocketmq_client_rust::ClientRuntime>, args: ProduceArgs) -> Result<()> {
    let mut producer = Producer::start(runtime, &args.namesrv, &format!("{}-producer", args.topic)).await?;
    producer.create_topic(&args.topic, args.queues).await?;
    if let Some(path) = &args.lines {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let mut progress = Progress::new("sent", lines.len());
        let mut sent = 0;
        for line in lines {
            producer
                .send(&OutgoingMessage {
                    topic: args.topic.clone(),
                    body: line.as_bytes().to_vec(),
                    ..Default::default()
                })
                .await?;
            sent += 1;
            progress.update(sent);
        }
        progress.finish();
        eprintln!("sent {sent} messages from {} to {}", path.display(), args.topic);
        producer.shutdown().await;
        return Ok(());
    }
    let started = Instant::now();
    let per_queue = args.count.div_ceil(args.queues as usize);
    let mut sent = 0usize;
    let mut next = vec![0usize; args.queues as usize];
    let mut progress = Progress::new("sent", args.count);
    while sent < args.count {
        for queue in 0..args.queues {
            let q = queue as usize;
            let n = args.batch.min(per_queue - next[q].min(per_queue)).min(args.count - sent);
            if n == 0 {
                continue;
            }
            let batch: Vec<OutgoingMessage> = (next[q]..next[q] + n)
                .map(|i| OutgoingMessage {
                    topic: args.topic.clone(),
                    keys: Some(format!("{}-{queue}-{i}", args.prefix)),
                    body: format!("{}-{queue}-{i}", args.prefix).into_bytes(),
                    ..Default::default()
                })
                .collect();
            producer.send_batch_to_queue(&batch, &args.broker, queue).await?;
            next[q] += n;
            sent += n;
            progress.update(sent);
        }
    }
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("sent {sent} messages to {} in {seconds:.2} s ({:.0} msg/s)", args.topic, sent as f64 / seconds);
    producer.shutdown().await;
    Ok(())
}

/// A progress line on stderr for long sends, redrawn at most every half
/// second, and only when stderr is a terminal.
struct Progress {
    what: &'static str,
    total: usize,
    shown: Option<Instant>,
    terminal: bool,
}

impl Progress {
    fn new(what: &'static str, total: usize) -> Progress {
        use std::io::IsTerminal;
        Progress { what, total, shown: None, terminal: std::io::stderr().is_terminal() }
    }

    fn update(&mut self, done: usize) {
        if !self.terminal || self.shown.is_some_and(|t| t.elapsed() < Duration::from_millis(500)) {
            return;
        }
        self.shown = Some(Instant::now());
        eprint!("\r{} {done}/{} ({}%)", self.what, self.total, done * 100 / self.total.max(1));
    }

    fn finish(&self) {
        if self.terminal && self.shown.is_some() {
            eprintln!();
        }
    }
}

async fn consume(runtime: std::sync::Arc<rocketmq_client_rust::ClientRuntime>, args: ConsumeArgs) -> Result<()> {
    let mut config = ConsumerConfig::new(&args.namesrv, &args.group, &[args.topic.as_str()]);
    config.consume_from = ConsumeFrom::First;
    let consumer = QueueConsumer::start(runtime, config).await?;
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args.out)
        .with_context(|| format!("cannot open {}", args.out.display()))?;
    let (mut received, mut idle_since) = (0usize, Instant::now());
    let started = Instant::now();
    loop {
        if args.count.is_some_and(|c| received >= c) || idle_since.elapsed() > Duration::from_millis(args.idle_ms) {
            break;
        }
        let messages = consumer.poll(Duration::from_millis(200)).await;
        if messages.is_empty() {
            continue;
        }
        idle_since = Instant::now();
        let mut lines = String::new();
        for m in &messages {
            lines.push_str(&format!("{} {} {}\n", m.queue.queue_id, m.queue_offset, String::from_utf8_lossy(&m.body)));
        }
        out.write_all(lines.as_bytes())?;
        out.sync_data()?;
        received += messages.len();
        consumer.ack(messages.iter().map(|m| (m.queue.clone(), m.queue_offset))).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("consumed {received} messages in {seconds:.2} s");
    consumer.shutdown().await;
    Ok(())
}
