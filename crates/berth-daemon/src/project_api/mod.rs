//! The project API (seed 000): `berth.supervisor.v1.Supervisor` over gRPC
//! (tonic), served on Unix sockets and vsock. A surface only: each RPC
//! checks its request fields, calls the [`Projects`] engine and translates
//! the answer ([`convert`]) or the error ([`errors`]).

pub mod convert;
pub mod errors;

/// The tonic server of `supervisor.proto`; its messages are
/// `berth_wire::supervisor`'s.
pub mod server {
    #![allow(missing_docs, clippy::doc_lazy_continuation)]
    include!(concat!(env!("OUT_DIR"), "/berth.supervisor.v1.rs"));
}

use crate::listen::{Listener, PeerStream};
use berth_engine::projects::{ProjectError, Projects, SaveRequest};
use berth_wire::supervisor as pb;
use server::supervisor_server::{Supervisor, SupervisorServer};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::{ReceiverStream, UnboundedReceiverStream};
use tonic::{Request, Response, Status};

/// A log message of the GetProjectLogs stream holds about this many bytes
/// of lines at most, well under gRPC's customary 4 MiB message limit.
const LOG_CHUNK_BYTES: usize = 1 << 20;
/// Lines of a followed log sent in one message when many arrive at once.
const FOLLOW_BATCH: usize = 512;

/// The `Supervisor` service over the project engine.
#[derive(Clone)]
pub struct ProjectApi {
    projects: Arc<Projects>,
    /// Container workspaces (`ListWorkspaces`), when the daemon runs them.
    workspaces: Option<Arc<berth_engine::workspaces::Workspaces>>,
    /// Becomes true when the daemon stops, ending followed log streams
    /// (which otherwise would hold a graceful shutdown open forever).
    closing: watch::Receiver<bool>,
}

impl ProjectApi {
    /// The service; `closing` turning true ends open log follows.
    pub fn new(projects: Arc<Projects>, closing: watch::Receiver<bool>) -> Self {
        Self {
            projects,
            workspaces: None,
            closing,
        }
    }

    /// Adds container workspaces (`ListWorkspaces`).
    pub fn with_workspaces(
        mut self,
        ws: Option<Arc<berth_engine::workspaces::Workspaces>>,
    ) -> Self {
        self.workspaces = ws;
        self
    }
}

fn status(e: ProjectError) -> Status {
    errors::to_status(&e)
}

type Streamed<T> = Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl Supervisor for ProjectApi {
    async fn ensure_project(
        &self,
        req: Request<pb::EnsureProjectRequest>,
    ) -> Result<Response<pb::EnsureProjectResponse>, Status> {
        let req = convert::ensure_request(req.into_inner()).map_err(errors::invalid_argument)?;
        let done = self.projects.ensure(req).await.map_err(status)?;
        Ok(Response::new(convert::ensured(done)))
    }

    async fn open_project(
        &self,
        req: Request<pb::OpenProjectRequest>,
    ) -> Result<Response<pb::OpenProjectResponse>, Status> {
        let req = req.into_inner();
        let opened = if req.reload {
            self.projects.reopen_project(&req.project_id, &|_| {}).await
        } else {
            self.projects.open_project(&req.project_id, &|_| {}).await
        }
        .map_err(status)?;
        Ok(Response::new(convert::opened(opened)))
    }

    async fn start_project(
        &self,
        req: Request<pb::StartProjectRequest>,
    ) -> Result<Response<pb::StartProjectResponse>, Status> {
        let req = req.into_inner();
        let secrets = req.secrets.into_iter().collect();
        let started = self
            .projects
            .start_services(&req.project_id, secrets, &req.services, req.reconcile)
            .await
            .map_err(status)?;
        Ok(Response::new(convert::started(started)))
    }

    async fn stop_project(
        &self,
        req: Request<pb::StopProjectRequest>,
    ) -> Result<Response<pb::StopProjectResponse>, Status> {
        let req = req.into_inner();
        let timeout = match req.timeout_seconds {
            None => None,
            Some(s) if s >= 0 => Some(Duration::from_secs(s as u64)),
            Some(s) => {
                return Err(errors::invalid_argument(format!(
                    "timeout_seconds: {s} is negative; give seconds >= 0, or leave it unset for 30"
                )))
            }
        };
        let stopped = self
            .projects
            .stop_services(&req.project_id, timeout, &req.services)
            .await
            .map_err(status)?;
        Ok(Response::new(convert::stopped(stopped)))
    }

    async fn delete_project_runtime(
        &self,
        req: Request<pb::DeleteProjectRuntimeRequest>,
    ) -> Result<Response<pb::DeleteProjectRuntimeResponse>, Status> {
        let req = req.into_inner();
        let deleted = if req.unregister {
            self.projects.forget(&req.project_id, req.force).await
        } else {
            self.projects
                .delete_runtime(&req.project_id, req.force)
                .await
        }
        .map_err(status)?;
        Ok(Response::new(convert::deleted(deleted)))
    }

    async fn list_workspaces(
        &self,
        _req: Request<pb::ListWorkspacesRequest>,
    ) -> Result<Response<pb::ListWorkspacesResponse>, Status> {
        let Some(ws) = &self.workspaces else {
            return Ok(Response::new(pb::ListWorkspacesResponse::default()));
        };
        let list = ws.list().map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(pb::ListWorkspacesResponse {
            workspaces: list.iter().map(convert::workspace).collect(),
        }))
    }

    async fn list_projects(
        &self,
        req: Request<pb::ListProjectsRequest>,
    ) -> Result<Response<pb::ListProjectsResponse>, Status> {
        let filter = req.into_inner().filter_status;
        let list = self
            .projects
            .list(filter.as_deref())
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListProjectsResponse {
            projects: list.into_iter().map(convert::summary).collect(),
        }))
    }

    async fn save_snapshot(
        &self,
        req: Request<pb::SaveSnapshotRequest>,
    ) -> Result<Response<pb::SaveSnapshotResponse>, Status> {
        let r = req.into_inner();
        let t0 = std::time::Instant::now();
        let s = self
            .projects
            .save_snapshot(SaveRequest {
                project_id: r.project_id,
                reason: r.reason,
                labels: r.labels.into_iter().collect(),
            })
            .await
            .map_err(status)?;
        Ok(Response::new(convert::saved(&s, t0.elapsed())))
    }

    async fn restore_snapshot(
        &self,
        req: Request<pb::RestoreSnapshotRequest>,
    ) -> Result<Response<pb::RestoreSnapshotResponse>, Status> {
        let r = convert::restore_request(req.into_inner());
        let done = self.projects.restore_snapshot(r).await.map_err(status)?;
        Ok(Response::new(convert::restored(done)))
    }

    async fn list_snapshots(
        &self,
        req: Request<pb::ListSnapshotsRequest>,
    ) -> Result<Response<pb::ListSnapshotsResponse>, Status> {
        let id = req.into_inner().project_id;
        let list = self.projects.list_snapshots(&id).await.map_err(status)?;
        Ok(Response::new(pb::ListSnapshotsResponse {
            snapshots: list.into_iter().map(convert::snapshot).collect(),
        }))
    }

    async fn duplicate_project(
        &self,
        req: Request<pb::DuplicateProjectRequest>,
    ) -> Result<Response<pb::DuplicateProjectResponse>, Status> {
        let r = req.into_inner();
        let d = self
            .projects
            .duplicate(
                &r.source_project_id,
                &r.new_project_id,
                r.snapshot_id.as_deref(),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(convert::duplicated(d)))
    }

    async fn import_package(
        &self,
        req: Request<pb::ImportPackageRequest>,
    ) -> Result<Response<pb::ImportPackageResponse>, Status> {
        let r = req.into_inner();
        if r.package_data_path.is_empty() {
            return Err(errors::invalid_argument(
                "package_data_path must name a .vibeapp file",
            ));
        }
        let i = self
            .projects
            .import_package(
                std::path::Path::new(&r.package_data_path),
                r.verify_signature,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ImportPackageResponse {
            app_id: i.app_id,
            name: i.name,
            version: i.version,
            trust_status: i.trust_status,
            package_path: i.package_path.display().to_string(),
            capabilities: i.capabilities,
        }))
    }

    async fn delete_snapshot(
        &self,
        req: Request<pb::DeleteSnapshotRequest>,
    ) -> Result<Response<pb::DeleteSnapshotResponse>, Status> {
        let r = req.into_inner();
        self.projects
            .remove_snapshot(&r.project_id, &r.snapshot_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::DeleteSnapshotResponse {}))
    }

    async fn prune_snapshots(
        &self,
        req: Request<pb::PruneSnapshotsRequest>,
    ) -> Result<Response<pb::PruneSnapshotsResponse>, Status> {
        let id = req.into_inner().project_id;
        let r = self
            .projects
            .prune_snapshots(Some(id.as_str()))
            .await
            .map_err(status)?;
        Ok(Response::new(pb::PruneSnapshotsResponse {
            chunks_removed: r.chunks_removed as i64,
            bytes_freed: r.bytes_freed as i64,
            snapshots_removed: r.snapshots_removed,
        }))
    }

    async fn set_autosave(
        &self,
        req: Request<pb::SetAutosaveRequest>,
    ) -> Result<Response<pb::AutosaveSettings>, Status> {
        let r = req.into_inner();
        let on = if r.enabled {
            let secs = u64::try_from(r.interval_seconds).map_err(|_| {
                errors::invalid_argument(format!(
                    "interval_seconds: {} is negative; give at least 60",
                    r.interval_seconds
                ))
            })?;
            Some((
                std::time::Duration::from_secs(secs),
                r.retention.map(convert::retention),
            ))
        } else {
            None
        };
        let a = self
            .projects
            .set_autosave(&r.project_id, on)
            .map_err(status)?;
        Ok(Response::new(convert::autosave(&r.project_id, &a)))
    }

    async fn get_project_status(
        &self,
        req: Request<pb::GetProjectStatusRequest>,
    ) -> Result<Response<pb::GetProjectStatusResponse>, Status> {
        let id = req.into_inner().project_id;
        let st = self.projects.status(&id).await.map_err(status)?;
        let autosave = self.projects.autosave(&id).map_err(status)?;
        let mut out = convert::status(st);
        out.autosave = Some(convert::autosave(&id, &autosave));
        Ok(Response::new(out))
    }

    type GetProjectLogsStream = Streamed<pb::GetProjectLogsResponse>;

    /// The tail comes first (at least one message, empty when there are no
    /// lines, so a client knows the history is complete); with `follow`,
    /// batches of new lines follow until the client cancels, the engine
    /// ends the feed, or the daemon stops.
    async fn get_project_logs(
        &self,
        req: Request<pb::GetProjectLogsRequest>,
    ) -> Result<Response<Self::GetProjectLogsStream>, Status> {
        let req = req.into_inner();
        let tail = match req.tail_lines {
            None => None,
            Some(n) if n >= 0 => Some(n as usize),
            Some(n) => {
                return Err(errors::invalid_argument(format!(
                    "tail_lines: {n} is negative; give lines >= 0, or leave it unset for 100"
                )))
            }
        };
        let feed = self
            .projects
            .logs(
                &req.project_id,
                req.service_name.as_deref(),
                tail,
                req.follow,
            )
            .await
            .map_err(status)?;
        let (tx, rx) = mpsc::channel(8);
        let mut closing = self.closing.clone();
        tokio::spawn(async move {
            for entries in chunk_tail(feed.tail) {
                if tx
                    .send(Ok(pb::GetProjectLogsResponse { entries }))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            let Some(mut follow) = feed.follow else {
                return;
            };
            loop {
                let first = tokio::select! {
                    _ = tx.closed() => return,
                    _ = closing.wait_for(|c| *c) => return,
                    e = follow.recv() => match e {
                        Some(e) => e,
                        None => return,
                    },
                };
                let mut entries = vec![convert::log_entry(first)];
                while entries.len() < FOLLOW_BATCH {
                    match follow.try_recv() {
                        Ok(e) => entries.push(convert::log_entry(e)),
                        Err(_) => break,
                    }
                }
                if tx
                    .send(Ok(pb::GetProjectLogsResponse { entries }))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn validate_compose(
        &self,
        req: Request<pb::ValidateComposeRequest>,
    ) -> Result<Response<pb::ValidateComposeResponse>, Status> {
        let req = req.into_inner();
        let rt = convert::runtime("runtime", &req.runtime).map_err(errors::invalid_argument)?;
        let report = self.projects.validate(&req.compose_content, rt);
        Ok(Response::new(convert::report(report)))
    }

    async fn resolve_ports(
        &self,
        req: Request<pb::ResolvePortsRequest>,
    ) -> Result<Response<pb::ResolvePortsResponse>, Status> {
        let req = req.into_inner();
        let ports = self
            .projects
            .resolve_ports(&req.project_id, req.refresh)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ResolvePortsResponse {
            ports: convert::ports(&ports),
        }))
    }

    type OpenProjectWithProgressStream = Streamed<pb::OpenProjectProgress>;

    /// The open runs in its own task, so a client that goes away does not
    /// abandon a half-opened project; progress is queued without bound
    /// (events are few) so the engine never waits on a client.
    async fn open_project_with_progress(
        &self,
        req: Request<pb::OpenProjectRequest>,
    ) -> Result<Response<Self::OpenProjectWithProgressStream>, Status> {
        let req = req.into_inner();
        let (id, reload) = (req.project_id, req.reload);
        let (tx, rx) = mpsc::unbounded_channel();
        let projects = self.projects.clone();
        tokio::spawn(async move {
            let progress_tx = tx.clone();
            let report = move |p| {
                let _ = progress_tx.send(Ok(convert::progress(p)));
            };
            let opened = if reload {
                projects.reopen_project(&id, &report).await
            } else {
                projects.open_project(&id, &report).await
            };
            let last = match opened {
                Ok(opened) => Ok(pb::OpenProjectProgress {
                    event: Some(pb::open_project_progress::Event::Done(convert::opened(
                        opened,
                    ))),
                }),
                Err(e) => Err(status(e)),
            };
            let _ = tx.send(last);
        });
        Ok(Response::new(Box::pin(UnboundedReceiverStream::new(rx))))
    }
}

/// Splits the tail into messages of at most about [`LOG_CHUNK_BYTES`];
/// always at least one message.
fn chunk_tail(tail: Vec<berth_engine::projects::LogEntry>) -> Vec<Vec<pb::LogEntry>> {
    let mut chunks = vec![Vec::new()];
    let mut bytes = 0;
    for e in tail {
        let e = convert::log_entry(e);
        let size = e.line.len() + e.service_name.len() + 48;
        if bytes + size > LOG_CHUNK_BYTES && !chunks.last().is_some_and(Vec::is_empty) {
            chunks.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        chunks.last_mut().expect("never empty").push(e);
    }
    chunks
}

/// A connection accepted by berth's listeners (peer already admitted),
/// as tonic's server wants it.
struct Conn(Box<dyn PeerStream>);

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

/// The project API server: accepts on `listeners` (peer checks as for the
/// process API) and serves `Supervisor` plus gRPC reflection (v1 and
/// v1alpha) until `closing` turns true, then shuts down gracefully. The
/// listeners (and so their socket files) are dropped when it returns.
pub async fn serve(
    listeners: Vec<(String, Listener)>,
    projects: Arc<Projects>,
    workspaces: Option<Arc<berth_engine::workspaces::Workspaces>>,
    mut closing: watch::Receiver<bool>,
) -> Result<(), String> {
    let reflection = |b: tonic_reflection::server::Builder<'static>| {
        b.register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
    };
    let v1 = reflection(tonic_reflection::server::Builder::configure())
        .build_v1()
        .map_err(|e| format!("project API reflection: {e}"))?;
    let v1alpha = reflection(tonic_reflection::server::Builder::configure())
        .build_v1alpha()
        .map_err(|e| format!("project API reflection: {e}"))?;

    // Every listener feeds one stream of admitted connections.
    let (conn_tx, conn_rx) = mpsc::channel::<std::io::Result<Conn>>(16);
    let mut accept_tasks = Vec::new();
    for (addr, l) in listeners {
        let conn_tx = conn_tx.clone();
        accept_tasks.push(tokio::spawn(async move {
            loop {
                match l.accept().await {
                    Ok(Some(acc)) => {
                        tracing::debug!(peer = %acc.peer, %addr, "project API connection");
                        if conn_tx.send(Ok(Conn(acc.stream))).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(%addr, "accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }));
    }
    drop(conn_tx);

    let api = ProjectApi::new(projects, closing.clone()).with_workspaces(workspaces);
    let result = tonic::transport::Server::builder()
        .add_service(SupervisorServer::new(api))
        .add_service(v1)
        .add_service(v1alpha)
        .serve_with_incoming_shutdown(ReceiverStream::new(conn_rx), async move {
            let _ = closing.wait_for(|c| *c).await;
        })
        .await;
    for t in &accept_tasks {
        t.abort();
    }
    for t in accept_tasks {
        let _ = t.await;
    }
    result.map_err(|e| format!("project API server failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_engine::projects::{LogEntry, LogStream};

    fn entry(line: String) -> LogEntry {
        LogEntry {
            timestamp: 0.0,
            service: "web".into(),
            stream: LogStream::Stdout,
            line,
        }
    }

    #[test]
    fn an_empty_tail_is_one_empty_message() {
        assert_eq!(chunk_tail(Vec::new()), vec![Vec::new()]);
    }

    #[test]
    fn a_large_tail_is_split_in_order_under_the_chunk_size() {
        let tail: Vec<_> = (0..300)
            .map(|i| entry(format!("{i:05}{}", "x".repeat(9_995))))
            .collect();
        let chunks = chunk_tail(tail);
        assert!(chunks.len() >= 3, "{}", chunks.len());
        let mut n = 0;
        for c in &chunks {
            let bytes: usize = c.iter().map(|e| e.line.len()).sum();
            assert!(bytes <= LOG_CHUNK_BYTES);
            for e in c {
                assert!(e.line.starts_with(&format!("{n:05}")));
                n += 1;
            }
        }
        assert_eq!(n, 300);
        // A single line larger than a chunk still goes out, alone.
        let huge = chunk_tail(vec![entry("y".repeat(LOG_CHUNK_BYTES + 1))]);
        assert_eq!(huge.len(), 1);
    }
}
