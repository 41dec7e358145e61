//! A producer for source connectors and the dead-letter topic: sends with
//! the broker's acknowledgement, retries, keys, tags and properties.

use super::client::RocketMqError;
use rocketmq_client_rust::{ClientRuntime, DefaultMQProducer};
use rocketmq_model::common::message::MessageTrait;
use rocketmq_model::common::message::message_single::Message;
use rocketmq_model::result::{SendResult, SendStatus};
use std::collections::HashMap;
use std::sync::Arc;

/// A message to send.
#[derive(Debug, Clone, Default)]
pub struct OutgoingMessage {
    pub topic: String,
    pub keys: Option<String>,
    pub tags: Option<String>,
    pub properties: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl OutgoingMessage {
    fn build(&self) -> Result<Message, RocketMqError> {
        let mut builder = Message::builder().topic(self.topic.as_str()).body(self.body.clone());
        if let Some(tags) = &self.tags {
            builder = builder.tags(tags.as_str());
        }
        if let Some(keys) = &self.keys {
            builder = builder.keys(keys.split(' ').filter(|k| !k.is_empty()).map(String::from).collect());
        }
        let mut message =
            builder.build().map_err(|e| RocketMqError::client(format!("message for {}", self.topic), e))?;
        for (key, value) in &self.properties {
            message
                .put_user_property(key.as_str().into(), value.as_str().into())
                .map_err(|e| RocketMqError::client(format!("property {key} of a message for {}", self.topic), e))?;
        }
        Ok(message)
    }
}

/// `Ok` only for the broker's SEND_OK.
fn sent_ok(result: &SendResult, operation: impl Fn() -> String) -> Result<(), RocketMqError> {
    match result.send_status {
        SendStatus::SendOk => Ok(()),
        other => Err(RocketMqError::client(operation(), format!("the broker answered {other:?}, not SEND_OK"))),
    }
}

pub struct Producer {
    inner: DefaultMQProducer,
    timeout_ms: u64,
}

impl Producer {
    pub async fn start(client: Arc<ClientRuntime>, namesrv: &str, group: &str) -> Result<Producer, RocketMqError> {
        let config = rocketmq_client_rust::ClientConfig::builder()
            .namesrv_addr(namesrv)
            .build()
            .map_err(|e| RocketMqError::client("producer config", e))?;
        let mut inner = DefaultMQProducer::builder(client)
            .producer_group(group)
            .client_config(config)
            .send_msg_timeout(3000)
            .retry_times_when_send_failed(3)
            .build();
        inner.start().await.map_err(|e| RocketMqError::client("start producer", e))?;
        Ok(Producer { inner, timeout_ms: 3000 })
    }

    /// Create `topic` with `queues` queues on the default cluster's brokers.
    pub async fn create_topic(&mut self, topic: &str, queues: i32) -> Result<(), RocketMqError> {
        self.inner
            .create_topic("TBW102", topic, queues, HashMap::new())
            .await
            .map_err(|e| RocketMqError::client(format!("create topic {topic}"), e))
    }

    /// Send one message and wait for the broker's acknowledgement. Only
    /// SEND_OK counts: a flush or replica timeout means the broker may not
    /// keep the message, so the caller must treat it as not sent.
    pub async fn send(&self, message: &OutgoingMessage) -> Result<(), RocketMqError> {
        let built = message.build()?;
        let operation = || format!("send to {}", message.topic);
        let result = self
            .inner
            .send_with_timeout(built, self.timeout_ms)
            .await
            .map_err(|e| RocketMqError::client(operation(), e))?;
        match result {
            Some(result) => sent_ok(&result, operation),
            None => Err(RocketMqError::client(operation(), "the broker returned no send result")),
        }
    }

    /// Send messages of one topic in one request, to a queue the producer
    /// picks, and wait for the broker's acknowledgement of all of them.
    pub async fn send_batch(&self, messages: &[OutgoingMessage]) -> Result<(), RocketMqError> {
        let Some(first) = messages.first() else { return Ok(()) };
        let built = messages.iter().map(OutgoingMessage::build).collect::<Result<Vec<_>, _>>()?;
        let operation = || format!("send batch to {}", first.topic);
        let result = self
            .inner
            .send_batch_with_timeout(built, self.timeout_ms)
            .await
            .map_err(|e| RocketMqError::client(operation(), e))?;
        sent_ok(&result, operation)
    }

    /// Send messages of one topic in one request to one queue (fast bulk path).
    pub async fn send_batch_to_queue(
        &self,
        messages: &[OutgoingMessage],
        broker: &str,
        queue_id: i32,
    ) -> Result<(), RocketMqError> {
        let Some(first) = messages.first() else { return Ok(()) };
        let built = messages.iter().map(OutgoingMessage::build).collect::<Result<Vec<_>, _>>()?;
        let queue = rocketmq_model::common::message::message_queue::MessageQueue::from_parts(
            first.topic.as_str(),
            broker,
            queue_id,
        );
        let operation = || format!("send batch to {}", first.topic);
        let result = self
            .inner
            .send_batch_to_queue_with_timeout(built, queue, self.timeout_ms)
            .await
            .map_err(|e| RocketMqError::client(operation(), e))?;
        sent_ok(&result, operation)
    }

    pub async fn shutdown(mut self) {
        self.inner.shutdown().await;
    }
}
