//! brpc's baidu_std protocol: frames, and a client channel that pipelines
//! calls on one TCP connection per endpoint, as the official SDK does.
//!
//! A frame is `"PRPC"`, the body size and the meta size (both u32
//! big-endian), then a `brpc.policy.RpcMeta` and the message. Responses are
//! matched to calls by `correlation_id`. The first request of a connection
//! carries `authentication_data` (`"u" user ":" "1" sha256_hex(password)`,
//! §3.6a of the reference); later ones do not.

use crate::proto::brpc::policy::{RpcMeta, RpcResponseMeta};
use bytes::{Bytes, BytesMut};
use prost::Message;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

const MAGIC: &[u8; 4] = b"PRPC";
/// A frame larger than this is refused (brpc's default `max_body_size` is
/// 64 MiB; OpenMLDB rows are far smaller).
pub const MAX_BODY: usize = 512 << 20;

#[derive(Debug, Clone, thiserror::Error)]
pub enum RpcError {
    #[error("{endpoint}: {message}")]
    Connect { endpoint: String, message: String },
    #[error("{endpoint}: connection lost: {message}")]
    Lost { endpoint: String, message: String },
    #[error("{endpoint}: {method} got no answer within {timeout:?}")]
    Timeout { endpoint: String, method: String, timeout: Duration },
    #[error("{endpoint}: {method} failed in brpc: error {code}: {text}")]
    Remote { endpoint: String, method: String, code: i32, text: String },
    #[error("{endpoint}: {method}: the answer does not parse: {message}")]
    Decode { endpoint: String, method: String, message: String },
}

impl RpcError {
    /// Whether the call may not have reached the server's handler, or its
    /// answer was lost: the caller cannot tell what happened.
    pub fn is_transport(&self) -> bool {
        matches!(self, RpcError::Connect { .. } | RpcError::Lost { .. } | RpcError::Timeout { .. })
    }
}

/// One decoded frame.
#[derive(Debug, Clone)]
pub struct Frame {
    pub meta: RpcMeta,
    pub payload: Bytes,
}

/// Encodes a frame (no attachment).
pub fn encode_frame(meta: &RpcMeta, payload: &[u8], out: &mut Vec<u8>) {
    let meta_len = meta.encoded_len();
    out.reserve(12 + meta_len + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&((meta_len + payload.len()) as u32).to_be_bytes());
    out.extend_from_slice(&(meta_len as u32).to_be_bytes());
    // Encoding into a Vec cannot run out of room.
    let _ = meta.encode(out);
    out.extend_from_slice(payload);
}

/// A request's `RpcMeta`, encoded by hand: the same bytes prost writes for
/// `RpcMeta{request{service_name, method_name, log_id}, compress_type: 0,
/// correlation_id, authentication_data}` (a unit test holds them equal),
/// without building the message and its two strings for every call.
struct RequestMeta<'a> {
    service: &'a str,
    method: &'a str,
    log_id: i64,
    correlation_id: i64,
    auth: Option<Vec<u8>>,
}

impl RequestMeta<'_> {
    fn encode_frame(&self, payload: &[u8], out: &mut Vec<u8>) {
        use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};
        let strings = |n: usize| 1 + encoded_len_varint(n as u64) + n;
        let request_len =
            strings(self.service.len()) + strings(self.method.len()) + 1 + encoded_len_varint(self.log_id as u64);
        let auth_len = self.auth.as_ref().map_or(0, |a| strings(a.len()));
        let meta_len = 1
            + encoded_len_varint(request_len as u64)
            + request_len
            + 2
            + 1
            + encoded_len_varint(self.correlation_id as u64)
            + auth_len;
        out.reserve(12 + meta_len + payload.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&((meta_len + payload.len()) as u32).to_be_bytes());
        out.extend_from_slice(&(meta_len as u32).to_be_bytes());
        encode_key(1, WireType::LengthDelimited, out);
        encode_varint(request_len as u64, out);
        encode_key(1, WireType::LengthDelimited, out);
        encode_varint(self.service.len() as u64, out);
        out.extend_from_slice(self.service.as_bytes());
        encode_key(2, WireType::LengthDelimited, out);
        encode_varint(self.method.len() as u64, out);
        out.extend_from_slice(self.method.as_bytes());
        encode_key(3, WireType::Varint, out);
        encode_varint(self.log_id as u64, out);
        encode_key(3, WireType::Varint, out);
        encode_varint(0, out);
        encode_key(4, WireType::Varint, out);
        encode_varint(self.correlation_id as u64, out);
        if let Some(auth) = &self.auth {
            encode_key(7, WireType::LengthDelimited, out);
            encode_varint(auth.len() as u64, out);
            out.extend_from_slice(auth);
        }
        out.extend_from_slice(payload);
    }
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

/// A frame header's body and meta sizes, checked.
fn frame_sizes(header: &[u8]) -> std::io::Result<(usize, usize)> {
    if &header[..4] != MAGIC {
        return Err(invalid(format!("not a baidu_std frame (starts {:02x?})", &header[..4])));
    }
    let body = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let meta_len = u32::from_be_bytes([header[8], header[9], header[10], header[11]]) as usize;
    if body > MAX_BODY || meta_len > body {
        return Err(invalid(format!("frame of {body} bytes with {meta_len} bytes of meta")));
    }
    Ok((body, meta_len))
}

/// A frame from its body (meta, message, attachment).
fn frame_of(mut body: Bytes, meta_len: usize) -> std::io::Result<Frame> {
    let meta = RpcMeta::decode(body.split_to(meta_len)).map_err(|e| invalid(format!("RpcMeta: {e}")))?;
    let attachment = meta.attachment_size.unwrap_or(0).max(0) as usize;
    let payload = body.slice(..body.len().saturating_sub(attachment));
    Ok(Frame { meta, payload })
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> std::io::Result<Option<Frame>> {
    let mut header = [0u8; 12];
    match reader.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let (body, meta_len) = frame_sizes(&header)?;
    let mut buf = BytesMut::zeroed(body);
    reader.read_exact(&mut buf).await?;
    frame_of(buf.freeze(), meta_len).map(Some)
}

/// The `authentication_data` of a user and password (§3.6a).
pub fn user_token(user: &str, password: &str) -> Vec<u8> {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(password.as_bytes());
    format!("u{user}:1{}", hex::encode(digest)).into_bytes()
}

/// Calls queued for the writer task: one message for a whole batch, so a
/// batch costs one wake-up, one write and one flush, and its payloads one
/// buffer.
struct Outgoing {
    service: &'static str,
    method: &'static str,
    /// The first call's correlation id and log id; the others follow on.
    first_id: i64,
    first_log: i64,
    /// Every call's payload, one after another.
    payloads: Vec<u8>,
    /// Where each call's payload ends in `payloads`.
    ends: Vec<usize>,
}

/// Who waits for an answer: one slot of a batch (the batch's caller is
/// woken once, when its last answer is in; a single call is a batch of one).
struct Waiter(Arc<Batch>, usize);

struct Batch {
    results: Mutex<Vec<Option<Result<Frame, RpcError>>>>,
    remaining: std::sync::atomic::AtomicUsize,
    done: Mutex<Option<oneshot::Sender<()>>>,
}

impl Waiter {
    fn complete(self, result: Result<Frame, RpcError>) {
        let Waiter(batch, slot) = self;
        if let Ok(mut results) = batch.results.lock()
            && let Some(place) = results.get_mut(slot)
        {
            *place = Some(result);
        }
        if batch.remaining.fetch_sub(1, Ordering::AcqRel) == 1
            && let Some(done) = batch.done.lock().ok().and_then(|mut d| d.take())
        {
            let _ = done.send(());
        }
    }
}

type Pending = Arc<Mutex<HashMap<i64, Waiter>>>;

/// A pipelined connection to one endpoint.
pub struct Channel {
    endpoint: String,
    outgoing: mpsc::Sender<Outgoing>,
    pending: Pending,
    next_id: AtomicI64,
    log_ids: Arc<AtomicI64>,
    closed: Arc<AtomicBool>,
    timeout: Duration,
}

impl Channel {
    /// Connects. `log_ids` is shared by every channel of one client (the
    /// SDK counts log ids per client from 0).
    pub async fn connect(
        endpoint: &str,
        auth: Vec<u8>,
        log_ids: Arc<AtomicI64>,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Channel, RpcError> {
        let stream = tokio::time::timeout(connect_timeout, TcpStream::connect(endpoint))
            .await
            .map_err(|_| RpcError::Connect {
                endpoint: endpoint.to_string(),
                message: format!("no connection within {connect_timeout:?}"),
            })?
            .map_err(|e| RpcError::Connect { endpoint: endpoint.to_string(), message: e.to_string() })?;
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let pending: Pending = Arc::default();
        let closed = Arc::new(AtomicBool::new(false));
        let (outgoing, queue) = mpsc::channel(1024);
        tokio::spawn(write_loop(endpoint.to_string(), write, queue, auth, pending.clone(), closed.clone()));
        tokio::spawn(read_loop(endpoint.to_string(), read, pending.clone(), closed.clone()));
        Ok(Channel {
            endpoint: endpoint.to_string(),
            outgoing,
            pending,
            next_id: AtomicI64::new(0),
            log_ids,
            closed,
            timeout,
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether the connection has failed (a new one must be made).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Calls `service.method` and decodes the answer as `R`.
    pub async fn call<R: Message + Default>(
        &self,
        service: &'static str,
        method: &'static str,
        request: &impl Message,
    ) -> Result<R, RpcError> {
        let mut answers = self.call_batch(service, method, &[request]).await;
        answers.pop().unwrap_or_else(|| {
            Err(RpcError::Lost { endpoint: self.endpoint.clone(), message: "no answer slot".into() })
        })
    }

    /// Calls `service.method` once per request, all pipelined; one answer
    /// per request, in order. The caller is woken once, when every answer
    /// is in (or the timeout passes).
    pub async fn call_batch<Q: Message, R: Message + Default>(
        &self,
        service: &'static str,
        method: &'static str,
        requests: &[&Q],
    ) -> Vec<Result<R, RpcError>> {
        let mut payloads = Vec::with_capacity(requests.iter().map(|r| r.encoded_len()).sum());
        let mut ends = Vec::with_capacity(requests.len());
        for request in requests {
            // Encoding into a Vec cannot run out of room.
            let _ = request.encode(&mut payloads);
            ends.push(payloads.len());
        }
        self.send_batch(service, method, payloads, ends).await
    }

    /// [`Channel::call_batch`] for requests already encoded.
    pub async fn call_batch_encoded<R: Message + Default>(
        &self,
        service: &'static str,
        method: &'static str,
        requests: &[&[u8]],
    ) -> Vec<Result<R, RpcError>> {
        let mut payloads = Vec::with_capacity(requests.iter().map(|r| r.len()).sum());
        let mut ends = Vec::with_capacity(requests.len());
        for request in requests {
            payloads.extend_from_slice(request);
            ends.push(payloads.len());
        }
        self.send_batch(service, method, payloads, ends).await
    }

    async fn send_batch<R: Message + Default>(
        &self,
        service: &'static str,
        method: &'static str,
        payloads: Vec<u8>,
        ends: Vec<usize>,
    ) -> Vec<Result<R, RpcError>> {
        let count = ends.len();
        let lost = |message: &str| RpcError::Lost { endpoint: self.endpoint.clone(), message: message.to_string() };
        if count == 0 {
            return Vec::new();
        }
        if self.is_closed() {
            return (0..count).map(|_| Err(lost("closed earlier"))).collect();
        }
        let first = self.next_id.fetch_add(count as i64, Ordering::Relaxed);
        let first_log = self.log_ids.fetch_add(count as i64, Ordering::Relaxed);
        let (done, finished) = oneshot::channel();
        let batch = Arc::new(Batch {
            results: Mutex::new((0..count).map(|_| None).collect()),
            remaining: std::sync::atomic::AtomicUsize::new(count),
            done: Mutex::new(Some(done)),
        });
        match self.pending.lock() {
            Ok(mut pending) => {
                pending.reserve(count);
                for slot in 0..count {
                    pending.insert(first + slot as i64, Waiter(batch.clone(), slot));
                }
            }
            Err(_) => return (0..count).map(|_| Err(lost("poisoned"))).collect(),
        }
        let outgoing = Outgoing { service, method, first_id: first, first_log, payloads, ends };
        let sent = self.outgoing.send(outgoing).await.is_ok();
        let answered = sent && tokio::time::timeout(self.timeout, finished).await.is_ok_and(|r| r.is_ok());
        if !answered {
            // Whatever is still unanswered will not be.
            if let Ok(mut pending) = self.pending.lock() {
                for slot in 0..count {
                    pending.remove(&(first + slot as i64));
                }
            }
        }
        let results = batch.results.lock().map(|mut r| std::mem::take(&mut *r)).unwrap_or_default();
        let method_name = || format!("{service}.{method}");
        results
            .into_iter()
            .chain(std::iter::repeat_with(|| None))
            .take(count)
            .map(|result| match result {
                Some(Ok(frame)) => self.decode(frame, &method_name()),
                Some(Err(e)) => Err(e),
                None if !sent => Err(lost("writer stopped")),
                None => Err(RpcError::Timeout {
                    endpoint: self.endpoint.clone(),
                    method: method_name(),
                    timeout: self.timeout,
                }),
            })
            .collect()
    }

    fn decode<R: Message + Default>(&self, frame: Frame, method: &str) -> Result<R, RpcError> {
        let response = frame.meta.response.unwrap_or_default();
        if let Some(code) = response.error_code.filter(|code| *code != 0) {
            return Err(RpcError::Remote {
                endpoint: self.endpoint.clone(),
                method: method.to_string(),
                code,
                text: response.error_text.unwrap_or_default(),
            });
        }
        R::decode(frame.payload).map_err(|e| RpcError::Decode {
            endpoint: self.endpoint.clone(),
            method: method.to_string(),
            message: e.to_string(),
        })
    }
}

fn fail_all(endpoint: &str, pending: &Pending, closed: &AtomicBool, message: &str) {
    closed.store(true, Ordering::Release);
    let waiting: Vec<Waiter> = match pending.lock() {
        Ok(mut pending) => pending.drain().map(|(_, waiter)| waiter).collect(),
        Err(_) => Vec::new(),
    };
    for waiter in waiting {
        waiter.complete(Err(RpcError::Lost { endpoint: endpoint.to_string(), message: message.to_string() }));
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    endpoint: String,
    write: W,
    mut queue: mpsc::Receiver<Outgoing>,
    auth: Vec<u8>,
    pending: Pending,
    closed: Arc<AtomicBool>,
) {
    let mut writer = BufWriter::with_capacity(256 << 10, write);
    let mut auth = Some(auth);
    let mut frame = Vec::new();
    while let Some(first) = queue.recv().await {
        let mut next = Some(first);
        // Write everything queued, then flush once: pipelining.
        while let Some(batch) = next.take() {
            let mut start = 0;
            for (slot, &end) in batch.ends.iter().enumerate() {
                frame.clear();
                let meta = RequestMeta {
                    service: batch.service,
                    method: batch.method,
                    log_id: batch.first_log + slot as i64,
                    correlation_id: batch.first_id + slot as i64,
                    auth: auth.take(),
                };
                meta.encode_frame(&batch.payloads[start..end], &mut frame);
                start = end;
                if let Err(e) = writer.write_all(&frame).await {
                    fail_all(&endpoint, &pending, &closed, &e.to_string());
                    return;
                }
            }
            next = queue.try_recv().ok();
        }
        if let Err(e) = writer.flush().await {
            fail_all(&endpoint, &pending, &closed, &e.to_string());
            return;
        }
    }
}

async fn read_loop<R: AsyncRead + Unpin>(endpoint: String, mut read: R, pending: Pending, closed: Arc<AtomicBool>) {
    // Frames are cut out of one growing buffer: many answers per read, and
    // no allocation per answer.
    let mut buffer = BytesMut::with_capacity(256 << 10);
    loop {
        loop {
            match split_frame(&mut buffer) {
                Ok(Some(frame)) => {
                    let id = frame.meta.correlation_id.unwrap_or(-1);
                    let waiting = pending.lock().ok().and_then(|mut p| p.remove(&id));
                    match waiting {
                        Some(waiter) => waiter.complete(Ok(frame)),
                        None => {
                            tracing::debug!(%endpoint, correlation_id = id, "answer to a call no longer waited for")
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => return fail_all(&endpoint, &pending, &closed, &e.to_string()),
            }
        }
        if buffer.capacity() - buffer.len() < 4096 {
            buffer.reserve(256 << 10);
        }
        match read.read_buf(&mut buffer).await {
            Ok(0) => return fail_all(&endpoint, &pending, &closed, "closed by the server"),
            Ok(_) => {}
            Err(e) => return fail_all(&endpoint, &pending, &closed, &e.to_string()),
        }
    }
}

/// Cuts the first whole frame off `buffer`; `Ok(None)` until one is in.
fn split_frame(buffer: &mut BytesMut) -> std::io::Result<Option<Frame>> {
    if buffer.len() < 12 {
        return Ok(None);
    }
    let (body, meta_len) = frame_sizes(&buffer[..12])?;
    if buffer.len() < 12 + body {
        buffer.reserve(12 + body - buffer.len());
        return Ok(None);
    }
    let mut frame = buffer.split_to(12 + body).freeze();
    let _header = frame.split_to(12);
    frame_of(frame, meta_len).map(Some)
}

/// A response meta for a server (the stand-in) to answer a request with.
pub fn response_meta(request: &RpcMeta, error: Option<(i32, String)>) -> RpcMeta {
    RpcMeta {
        response: Some(RpcResponseMeta {
            error_code: Some(error.as_ref().map_or(0, |e| e.0)),
            error_text: error.map(|e| e.1),
        }),
        correlation_id: request.correlation_id,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::brpc::policy::RpcRequestMeta;

    #[test]
    fn the_root_token_with_an_empty_password_is_the_one_the_sdk_sends() {
        assert_eq!(
            String::from_utf8(user_token("root", "")).unwrap(),
            "uroot:1e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn the_hand_encoded_request_meta_is_the_bytes_prost_writes() {
        for auth in [None, Some(user_token("root", ""))] {
            let meta = RequestMeta {
                service: "openmldb.api.TabletServer",
                method: "Put",
                log_id: 300,
                correlation_id: 1 << 40,
                auth: auth.clone(),
            };
            let mut ours = Vec::new();
            meta.encode_frame(b"payload", &mut ours);
            let reference = RpcMeta {
                request: Some(RpcRequestMeta {
                    service_name: "openmldb.api.TabletServer".into(),
                    method_name: "Put".into(),
                    log_id: Some(300),
                    ..Default::default()
                }),
                compress_type: Some(0),
                correlation_id: Some(1 << 40),
                authentication_data: auth,
                ..Default::default()
            };
            let mut theirs = Vec::new();
            encode_frame(&reference, b"payload", &mut theirs);
            assert_eq!(ours, theirs);
        }
    }

    #[tokio::test]
    async fn a_frame_reads_back_as_written() {
        let meta = RpcMeta { correlation_id: Some(7), ..Default::default() };
        let mut bytes = Vec::new();
        encode_frame(&meta, b"\x08\x00", &mut bytes);
        assert_eq!(&bytes[..4], b"PRPC");
        let frame = read_frame(&mut bytes.as_slice()).await.unwrap().unwrap();
        assert_eq!(frame.meta.correlation_id, Some(7));
        assert_eq!(&frame.payload[..], b"\x08\x00");
        assert!(read_frame(&mut &b""[..]).await.unwrap().is_none());
    }
}
