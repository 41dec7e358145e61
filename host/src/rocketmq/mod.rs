//! The RocketMQ side of the host, on `rocketmq-client-rust`: a consumer
//! that commits only what the pipeline has acknowledged, and a producer.
//!
//! The consumer is the lite-pull consumer with auto-commit off. The push
//! consumer was not chosen: it advances offsets as soon as its listener
//! returns, sends failed batches to a retry topic (out of queue order), and
//! on two cores rejects about 2% of batches at admission
//! (its listener lane is too small for the default concurrency). Lite pull lets the host commit
//! exactly the contiguous prefix of each queue that is stored or
//! dead-lettered.

mod client;
pub mod consumer;
pub mod offsets;
pub mod producer;

pub use client::{RocketMqClient, RocketMqError};
pub use consumer::{ConsumeFrom, ConsumedMessage, ConsumerConfig, QueueConsumer, QueueId, SharedConsumer, WriteGuard};
pub use producer::{OutgoingMessage, Producer};
