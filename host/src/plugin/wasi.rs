//! The WASI a plugin sees. Built per store from the plugin's grants (no
//! files, sockets or environment unless granted), and linked so that no
//! import can hold a call past its deadline.
//!
//! Epoch interruption stops a plugin only while it runs WebAssembly; a
//! plugin blocked inside a host import (sleeping in `wasi:io/poll`, or
//! waiting on a granted socket's stream) is out of its reach. So the
//! imports that can block, `wasi:io/poll` and the `blocking-*` methods of
//! `wasi:io/streams`, are replaced here by versions that wait at most
//! until the call's deadline and then end the call with a deadline trap.

use super::sandbox::Grants;
use super::state::PluginState;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Instant;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::sync::io::{poll, streams};
use wasmtime_wasi::p2::{StreamError, StreamResult};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx};
use wasmtime_wasi_io::bindings::wasi::io::poll as async_poll;
use wasmtime_wasi_io::bindings::wasi::io::streams::{HostInputStream as AsyncInput, HostOutputStream as AsyncOutput};
use wasmtime_wasi_io::poll::DynPollable;
use wasmtime_wasi_io::streams::{DynInputStream, DynOutputStream};

/// The error a call ends with when it waited in the host past its
/// deadline; `classify` reports it as `deadline exceeded`.
#[derive(Debug, thiserror::Error)]
#[error("deadline exceeded: the plugin waited in {import} until its call deadline")]
pub struct HostWaitDeadline {
    pub import: &'static str,
}

/// A WASI context with only what `grants` allows; stdout and stderr go to
/// the given pipe.
pub fn context(grants: &Grants, output: super::state::TailPipe) -> std::io::Result<WasiCtx> {
    let mut builder = WasiCtx::builder();
    builder.stdout(output.clone()).stderr(output);
    for (name, value) in &grants.env {
        builder.env(name, value);
    }
    if let Some(folder) = &grants.folder {
        let perms = if folder.writable { FsPerms::ReadWrite } else { FsPerms::ReadOnly };
        builder
            .preopened_dir(&folder.host_path, &folder.guest_path, perms)
            .map_err(|e| std::io::Error::other(format!("{}: {e:#}", folder.host_path.display())))?;
    }
    let allowed: Vec<SocketAddr> = grants.tcp_addresses();
    builder.allow_udp(false).allow_tcp(!allowed.is_empty()).allow_ip_name_lookup(!allowed.is_empty());
    builder.socket_addr_check(move |addr, use_| {
        let permitted = match use_ {
            SocketAddrUse::TcpConnect => allowed.contains(&addr),
            // Connecting binds implicitly to the wildcard address first.
            SocketAddrUse::TcpBind => !allowed.is_empty() && addr.ip().is_unspecified() && addr.port() == 0,
            _ => false,
        };
        Box::pin(async move { permitted })
    });
    Ok(builder.build())
}

/// Link WASI with the bounded `poll` and `streams`.
pub fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    linker.allow_shadowing(true);
    poll::add_to_linker::<PluginState, Bounded>(linker, bounded)?;
    streams::add_to_linker::<PluginState, Bounded>(linker, bounded)?;
    linker.allow_shadowing(false);
    Ok(())
}

/// The resource table together with the current call's deadline.
pub struct Bounded;

impl HasData for Bounded {
    type Data<'a> = BoundedTable<'a>;
}

pub struct BoundedTable<'a> {
    table: &'a mut ResourceTable,
    deadline: Instant,
}

fn bounded(state: &mut PluginState) -> BoundedTable<'_> {
    let deadline = state.clock.host_wait_deadline();
    BoundedTable { table: state.table_mut(), deadline }
}

/// Run a host future, at most until `deadline`.
fn wait<T>(deadline: Instant, import: &'static str, future: impl Future<Output = T>) -> Result<T, HostWaitDeadline> {
    wasmtime_wasi::runtime::in_tokio(async move {
        tokio::time::timeout_at(deadline.into(), future).await.map_err(|_| HostWaitDeadline { import })
    })
}

fn stream_wait<T>(
    deadline: Instant,
    import: &'static str,
    future: impl Future<Output = StreamResult<T>>,
) -> StreamResult<T> {
    wait(deadline, import, future).map_err(|e| StreamError::Trap(e.into()))?
}

impl poll::Host for BoundedTable<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        Ok(wait(self.deadline, "wasi:io/poll.poll", async_poll::Host::poll(self.table, pollables))??)
    }
}

impl poll::HostPollable for BoundedTable<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        poll::HostPollable::ready(self.table, pollable)
    }
    fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        Ok(wait(self.deadline, "wasi:io/poll.block", async_poll::HostPollable::block(self.table, pollable))??)
    }
    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        poll::HostPollable::drop(self.table, pollable)
    }
}

impl streams::Host for BoundedTable<'_> {
    fn convert_stream_error(&mut self, err: StreamError) -> wasmtime::Result<streams::StreamError> {
        streams::Host::convert_stream_error(self.table, err)
    }
}

impl streams::HostInputStream for BoundedTable<'_> {
    fn drop(&mut self, stream: Resource<DynInputStream>) -> wasmtime::Result<()> {
        streams::HostInputStream::drop(self.table, stream)
    }
    fn read(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<Vec<u8>> {
        streams::HostInputStream::read(self.table, stream, len)
    }
    fn blocking_read(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<Vec<u8>> {
        stream_wait(self.deadline, "input-stream.blocking-read", AsyncInput::blocking_read(self.table, stream, len))
    }
    fn skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        streams::HostInputStream::skip(self.table, stream, len)
    }
    fn blocking_skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        stream_wait(self.deadline, "input-stream.blocking-skip", AsyncInput::blocking_skip(self.table, stream, len))
    }
    fn subscribe(&mut self, stream: Resource<DynInputStream>) -> wasmtime::Result<Resource<DynPollable>> {
        streams::HostInputStream::subscribe(self.table, stream)
    }
}

impl streams::HostOutputStream for BoundedTable<'_> {
    fn drop(&mut self, stream: Resource<DynOutputStream>) -> wasmtime::Result<()> {
        streams::HostOutputStream::drop(self.table, stream)
    }
    fn check_write(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<u64> {
        streams::HostOutputStream::check_write(self.table, stream)
    }
    fn write(&mut self, stream: Resource<DynOutputStream>, bytes: Vec<u8>) -> StreamResult<()> {
        streams::HostOutputStream::write(self.table, stream, bytes)
    }
    fn blocking_write_and_flush(&mut self, stream: Resource<DynOutputStream>, bytes: Vec<u8>) -> StreamResult<()> {
        stream_wait(
            self.deadline,
            "output-stream.blocking-write-and-flush",
            AsyncOutput::blocking_write_and_flush(self.table, stream, bytes),
        )
    }
    fn write_zeroes(&mut self, stream: Resource<DynOutputStream>, len: u64) -> StreamResult<()> {
        streams::HostOutputStream::write_zeroes(self.table, stream, len)
    }
    fn blocking_write_zeroes_and_flush(&mut self, stream: Resource<DynOutputStream>, len: u64) -> StreamResult<()> {
        stream_wait(
            self.deadline,
            "output-stream.blocking-write-zeroes-and-flush",
            AsyncOutput::blocking_write_zeroes_and_flush(self.table, stream, len),
        )
    }
    fn flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        streams::HostOutputStream::flush(self.table, stream)
    }
    fn blocking_flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        stream_wait(self.deadline, "output-stream.blocking-flush", AsyncOutput::blocking_flush(self.table, stream))
    }
    fn splice(&mut self, dst: Resource<DynOutputStream>, src: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        streams::HostOutputStream::splice(self.table, dst, src, len)
    }
    fn blocking_splice(
        &mut self,
        dst: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        stream_wait(
            self.deadline,
            "output-stream.blocking-splice",
            AsyncOutput::blocking_splice(self.table, dst, src, len),
        )
    }
    fn subscribe(&mut self, stream: Resource<DynOutputStream>) -> wasmtime::Result<Resource<DynPollable>> {
        streams::HostOutputStream::subscribe(self.table, stream)
    }
}
