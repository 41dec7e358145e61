//! The HTTP server: HTTP/1.1 keep-alive, every request answered 200 with
//! the request's Content-Type echoed, and a listener that can be closed
//! for a while to refuse connections (fault injection).

use crate::api::{State, Wording};
use crate::json;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct StandInOptions {
    pub wording: Wording,
    /// Tablets of the pretend cluster; REPLICANUM defaults to min(tablets, 3).
    pub tablets: u32,
}

impl Default for StandInOptions {
    fn default() -> Self {
        StandInOptions { wording: Wording::V093, tablets: 3 }
    }
}

/// A running stand-in. Dropping it stops the server.
pub struct StandIn {
    pub addr: SocketAddr,
    pub state: Arc<State>,
    _stop: watch::Sender<bool>,
}

impl StandIn {
    /// Bind `addr` (use port 0 for any free port) and serve in the background
    /// of the current tokio runtime.
    pub async fn start(addr: SocketAddr, options: StandInOptions) -> std::io::Result<StandIn> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::new(options.tablets, options.wording));
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(accept_loop(listener, addr, state.clone(), stopped));
        Ok(StandIn { addr, state, _stop: stop })
    }
}

async fn accept_loop(
    mut listener: TcpListener,
    addr: SocketAddr,
    state: Arc<State>,
    mut stopped: watch::Receiver<bool>,
) {
    // Connections close when the refusal generation changes.
    let (refusals, _) = watch::channel(0u64);
    loop {
        if let Some(until) = state.refusing_until() {
            drop(listener);
            refusals.send_modify(|g| *g += 1);
            tokio::time::sleep_until(until.into()).await;
            listener = loop {
                match TcpListener::bind(addr).await {
                    Ok(l) => break l,
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                }
            };
        }
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.changed() => return,
            // Re-check for a refusal window every so often.
            _ = tokio::time::sleep(std::time::Duration::from_millis(50)) => continue,
        };
        let Ok((stream, _)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let mut refused = refusals.subscribe();
        let mut stop = stopped.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| serve(state.clone(), request));
            let connection = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = refused.changed() => {}
                _ = stop.changed() => {}
            }
        });
    }
}

async fn serve(state: Arc<State>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    let query = request.uri().query().map(str::to_string);
    let content_type = request.headers().get(CONTENT_TYPE).cloned();
    let body = request.into_body().collect().await?.to_bytes();
    let latency = state.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let reply = state.handle(&method, &path, query.as_deref(), &body);
    let mut response = Response::new(Full::new(Bytes::from(json::to_string(&reply))));
    // brpc echoes the request's Content-Type when the handler sets none.
    if let Some(ct) = content_type {
        response.headers_mut().insert(CONTENT_TYPE, ct);
    } else {
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    }
    Ok(response)
}
