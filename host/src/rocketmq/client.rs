//! The client runtime shared by every consumer and producer of the process.
//!
//! rocketmq-client-rust runs on a tokio runtime owned by its own
//! `RuntimeOwner`; the host runs its whole async world on that runtime
//! (`RocketMqClient::run`), so the client and the pipeline share threads.

use rocketmq_client_rust::{ClientRuntime, ClientRuntimeConfig};
use rocketmq_observability::TelemetryRuntimeGuard;
use rocketmq_runtime::RuntimeOwner;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum RocketMqError {
    #[error("RocketMQ client runtime: {0}")]
    Runtime(String),
    #[error("RocketMQ {operation}: {message}")]
    Client { operation: String, message: String },
}

impl RocketMqError {
    pub(crate) fn client(operation: impl Into<String>, error: impl std::fmt::Display) -> Self {
        RocketMqError::Client { operation: operation.into(), message: error.to_string() }
    }
}

/// Owns the runtime; hand `client()` to consumers and producers.
pub struct RocketMqClient {
    owner: RuntimeOwner,
    client: Arc<ClientRuntime>,
    _telemetry: TelemetryRuntimeGuard,
}

impl RocketMqClient {
    pub fn new() -> Result<Self, RocketMqError> {
        let owner = RuntimeOwner::new().map_err(|e| RocketMqError::Runtime(e.to_string()))?;
        let telemetry = TelemetryRuntimeGuard::noop();
        let client = ClientRuntime::try_new(
            owner.root_context().component("rmq-openmldb"),
            ClientRuntimeConfig::default(),
            telemetry.handle(),
        )
        .map_err(|e| RocketMqError::Runtime(e.to_string()))?;
        Ok(RocketMqClient { owner, client, _telemetry: telemetry })
    }

    pub fn client(&self) -> Arc<ClientRuntime> {
        self.client.clone()
    }

    /// Run `future` on the client's runtime, then shut the client down.
    pub fn run<F: std::future::Future>(self, future: F) -> F::Output {
        let client = self.client.clone();
        let output = self.owner.block_on(async move {
            let output = future.await;
            let report = client.shutdown().await;
            if !report.is_healthy() {
                tracing::debug!("RocketMQ client shutdown: {report:?}");
            }
            output
        });
        if let Err(e) = self.owner.shutdown_runtime_blocking() {
            tracing::debug!("RocketMQ runtime shutdown: {e}");
        }
        output
    }
}
