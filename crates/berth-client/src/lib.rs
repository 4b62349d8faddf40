//! Clients of berth: a blocking client of the process API (the
//! running-process protocol) here, and an async gRPC client of the project
//! API in [`project`]; for the CLI, tests and benchmarks.

pub mod project;

use berth_wire::daemon::*;
use berth_wire::envelope::PROTOCOL_VERSION;
use berth_wire::frame;
use prost::Message;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Name sent in `client_name`.
pub const CLIENT_NAME: &str = "berth-cli";

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answers at the socket.
    #[error("cannot connect to {path}: {source}")]
    Connect {
        /// Socket path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The connection broke.
    #[error("connection to the daemon failed: {0}")]
    Io(#[from] io::Error),
    /// The daemon's bytes were not a valid response.
    #[error("daemon sent an unreadable response: {0}")]
    Decode(String),
    /// The daemon answered with a non-OK status.
    #[error("{message} ({})", code.as_str_name())]
    Status {
        /// Status code.
        code: StatusCode,
        /// The daemon's message.
        message: String,
    },
}

impl ClientError {
    /// The daemon's status code, if it answered.
    pub fn code(&self) -> Option<StatusCode> {
        match self {
            Self::Status { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// One connection to the daemon.
pub struct Client {
    stream: UnixStream,
    next_id: u64,
}

impl Client {
    /// Connects to the socket at `path`.
    pub fn connect(path: &Path) -> Result<Self, ClientError> {
        let stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
        stream.set_read_timeout(Some(Duration::from_secs(600)))?;
        Ok(Self { stream, next_id: 1 })
    }

    /// Connects, starting the daemon with `start` if nothing answers and
    /// waiting up to `wait` for it to bind.
    pub fn connect_or_start(
        path: &Path,
        wait: Duration,
        start: impl FnOnce() -> io::Result<()>,
    ) -> Result<Self, ClientError> {
        if let Ok(c) = Self::connect(path) {
            return Ok(c);
        }
        start()?;
        let deadline = Instant::now() + wait;
        let mut delay = Duration::from_millis(5);
        loop {
            match Self::connect(path) {
                Ok(c) => return Ok(c),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => {
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_millis(100));
                }
            }
        }
    }

    /// Sends `req` as is and reads one response, whatever its status.
    pub fn call_raw(&mut self, req: &DaemonRequest) -> Result<DaemonResponse, ClientError> {
        let bytes =
            frame::encode(req).map_err(|e| ClientError::Io(io::Error::other(e.to_string())))?;
        self.stream.write_all(&bytes)?;
        self.read_response()
    }

    /// Reads one response frame.
    pub fn read_response(&mut self) -> Result<DaemonResponse, ClientError> {
        let mut header = [0u8; frame::HEADER_LEN];
        self.stream.read_exact(&mut header)?;
        let len = frame::body_len(header, frame::MAX_FRAME_LEN)
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body)?;
        DaemonResponse::decode(&body[..]).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// Sends a request of type `ty` built by `fill`, and returns the
    /// response if its status is OK.
    pub fn call(
        &mut self,
        ty: RequestType,
        fill: impl FnOnce(&mut DaemonRequest),
    ) -> Result<DaemonResponse, ClientError> {
        let mut req = DaemonRequest {
            id: self.next_id,
            r#type: ty as i32,
            protocol_version: PROTOCOL_VERSION,
            client_name: CLIENT_NAME.into(),
            ..Default::default()
        };
        self.next_id += 1;
        fill(&mut req);
        let resp = self.call_raw(&req)?;
        if resp.code != StatusCode::Ok as i32 {
            return Err(ClientError::Status {
                code: StatusCode::try_from(resp.code).unwrap_or(StatusCode::Error),
                message: resp.message,
            });
        }
        Ok(resp)
    }

    /// Round trip; returns the daemon's clock in ms since the epoch.
    pub fn ping(&mut self) -> Result<i64, ClientError> {
        let r = self.call(RequestType::Ping, |q| q.ping = Some(PingRequest {}))?;
        Ok(r.ping.unwrap_or_default().server_time_ms)
    }

    /// Daemon status.
    pub fn status(&mut self) -> Result<StatusResponse, ClientError> {
        Ok(self
            .call(RequestType::Status, |q| q.status = Some(StatusRequest {}))?
            .status
            .unwrap_or_default())
    }

    /// Asks the daemon to stop.
    pub fn shutdown(&mut self, graceful: bool, timeout_seconds: f64) -> Result<(), ClientError> {
        self.call(RequestType::Shutdown, |q| {
            q.shutdown = Some(ShutdownRequest {
                graceful,
                timeout_seconds,
            })
        })?;
        Ok(())
    }

    /// Tracks a process.
    pub fn register(&mut self, r: RegisterRequest) -> Result<(), ClientError> {
        self.call(RequestType::Register, |q| q.register = Some(r))?;
        Ok(())
    }

    /// Stops tracking a process.
    pub fn unregister(&mut self, pid: u32) -> Result<(), ClientError> {
        self.call(RequestType::Unregister, |q| {
            q.unregister = Some(UnregisterRequest { pid })
        })?;
        Ok(())
    }

    /// Launches a detached shell command.
    pub fn spawn_daemon(
        &mut self,
        r: SpawnDaemonRequest,
    ) -> Result<SpawnDaemonResponse, ClientError> {
        Ok(self
            .call(RequestType::SpawnDaemon, |q| q.spawn_daemon = Some(r))?
            .spawn_daemon
            .unwrap_or_default())
    }

    /// All tracked processes.
    pub fn list_active(&mut self) -> Result<Vec<TrackedProcess>, ClientError> {
        let r = self.call(RequestType::ListActive, |q| {
            q.list_active = Some(ListActiveRequest::default())
        })?;
        Ok(r.list_active.unwrap_or_default().processes)
    }

    /// Tracked processes, the exited ones still retained included (the
    /// berth extension `include_dead`; LIST_ACTIVE alone lists the living,
    /// as the reference daemon does).
    pub fn list_all(&mut self) -> Result<Vec<TrackedProcess>, ClientError> {
        let r = self.call(RequestType::ListActive, |q| {
            q.list_active = Some(ListActiveRequest { include_dead: true })
        })?;
        Ok(r.list_active.unwrap_or_default().processes)
    }

    /// Tracked processes of one originator tool (`all`: the exited ones
    /// still retained too).
    pub fn list_by_originator_all(
        &mut self,
        tool: &str,
        all: bool,
    ) -> Result<Vec<TrackedProcess>, ClientError> {
        let r = self.call(RequestType::ListByOriginator, |q| {
            q.list_by_originator = Some(ListByOriginatorRequest {
                tool: tool.into(),
                include_dead: all,
            })
        })?;
        Ok(r.list_by_originator.unwrap_or_default().processes)
    }

    /// Tracked processes of one originator tool.
    pub fn list_by_originator(&mut self, tool: &str) -> Result<Vec<TrackedProcess>, ClientError> {
        let r = self.call(RequestType::ListByOriginator, |q| {
            q.list_by_originator = Some(ListByOriginatorRequest {
                tool: tool.into(),
                ..Default::default()
            })
        })?;
        Ok(r.list_by_originator.unwrap_or_default().processes)
    }

    /// The process tree under `pid`, as text.
    pub fn process_tree(&mut self, pid: u32) -> Result<String, ClientError> {
        let r = self.call(RequestType::GetProcessTree, |q| {
            q.get_process_tree = Some(GetProcessTreeRequest { pid })
        })?;
        Ok(r.get_process_tree.unwrap_or_default().tree_display)
    }

    /// Ends orphaned tracked processes (or only reports them).
    pub fn kill_zombies(&mut self, dry_run: bool) -> Result<Vec<ZombieReport>, ClientError> {
        let r = self.call(RequestType::KillZombies, |q| {
            q.kill_zombies = Some(KillZombiesRequest { dry_run })
        })?;
        Ok(r.kill_zombies.unwrap_or_default().zombies)
    }

    /// Ends a whole tree; returns how many processes ended.
    pub fn kill_tree(&mut self, pid: u32, timeout_seconds: f64) -> Result<u32, ClientError> {
        let r = self.call(RequestType::KillTree, |q| {
            q.kill_tree = Some(KillTreeRequest {
                pid,
                timeout_seconds,
            })
        })?;
        Ok(r.kill_tree.unwrap_or_default().processes_killed)
    }

    /// Defines and starts a service.
    pub fn service_start(&mut self, config: ServiceConfig) -> Result<ServiceState, ClientError> {
        let r = self.call(RequestType::ServiceStart, |q| {
            q.service_start = Some(ServiceStartRequest {
                config: Some(config),
            })
        })?;
        Ok(r.service_start.and_then(|s| s.service).unwrap_or_default())
    }

    /// Stops services (name, id or "all"); returns how many were running.
    pub fn service_stop(&mut self, target: &str) -> Result<u32, ClientError> {
        let r = self.call(RequestType::ServiceStop, |q| {
            q.service_stop = Some(ServiceStopRequest {
                target: target.into(),
            })
        })?;
        Ok(r.service_stop.unwrap_or_default().stopped_count)
    }

    /// Restarts services; returns how many started.
    pub fn service_restart(&mut self, target: &str) -> Result<u32, ClientError> {
        let r = self.call(RequestType::ServiceRestart, |q| {
            q.service_restart = Some(ServiceRestartRequest {
                target: target.into(),
            })
        })?;
        Ok(r.service_restart.unwrap_or_default().restarted_count)
    }

    /// Stops and forgets services; returns how many.
    pub fn service_delete(&mut self, target: &str) -> Result<u32, ClientError> {
        let r = self.call(RequestType::ServiceDelete, |q| {
            q.service_delete = Some(ServiceDeleteRequest {
                target: target.into(),
            })
        })?;
        Ok(r.service_delete.unwrap_or_default().deleted_count)
    }

    /// Every service, each with the reason berth gives for its status
    /// (berth's `ID<TAB>REASON` lines in the response message).
    pub fn service_list(&mut self) -> Result<Vec<(ServiceState, String)>, ClientError> {
        let r = self.call(RequestType::ServiceList, |q| {
            q.service_list = Some(ServiceListRequest {})
        })?;
        let reasons: std::collections::HashMap<u32, String> = r
            .message
            .lines()
            .filter_map(|l| {
                let (id, why) = l.split_once('\t')?;
                Some((id.parse().ok()?, why.to_string()))
            })
            .collect();
        Ok(r.service_list
            .unwrap_or_default()
            .services
            .into_iter()
            .map(|s| {
                let why = reasons.get(&s.id).cloned().unwrap_or_default();
                (s, why)
            })
            .collect())
    }

    /// One service and why it is in its status.
    pub fn service_describe(
        &mut self,
        target: &str,
    ) -> Result<(ServiceState, String), ClientError> {
        let r = self.call(RequestType::ServiceDescribe, |q| {
            q.service_describe = Some(ServiceDescribeRequest {
                target: target.into(),
            })
        })?;
        Ok((
            r.service_describe
                .and_then(|d| d.service)
                .unwrap_or_default(),
            r.message,
        ))
    }

    /// The last `lines` log lines of `target` ("" for every service).
    pub fn service_logs(&mut self, target: &str, lines: u32) -> Result<String, ClientError> {
        let r = self.call(RequestType::ServiceLogs, |q| {
            q.service_logs = Some(ServiceLogsRequest {
                target: target.into(),
                lines,
                follow: false,
            })
        })?;
        Ok(r.service_logs.unwrap_or_default().log_text)
    }

    /// Starts following logs: returns the tail and the request id that
    /// later chunks carry. Read them with [`next_log_chunk`](Self::next_log_chunk);
    /// the connection is the stream's until it is dropped.
    pub fn service_logs_follow(
        &mut self,
        target: &str,
        lines: u32,
    ) -> Result<(String, u64), ClientError> {
        let id = self.next_id;
        let r = self.call(RequestType::ServiceLogs, |q| {
            q.service_logs = Some(ServiceLogsRequest {
                target: target.into(),
                lines,
                follow: true,
            })
        })?;
        Ok((r.service_logs.unwrap_or_default().log_text, id))
    }

    /// The next chunk of a followed log.
    pub fn next_log_chunk(&mut self) -> Result<String, ClientError> {
        let r = self.read_response()?;
        if r.code != StatusCode::Ok as i32 {
            return Err(ClientError::Status {
                code: StatusCode::try_from(r.code).unwrap_or(StatusCode::Error),
                message: r.message,
            });
        }
        Ok(r.service_logs.unwrap_or_default().log_text)
    }

    /// Bounds how long a read waits (None: forever).
    pub fn set_read_timeout(&mut self, t: Option<Duration>) -> Result<(), ClientError> {
        self.stream.set_read_timeout(t)?;
        Ok(())
    }

    /// Empties logs of `target` ("" for every service); returns how many.
    pub fn service_flush(&mut self, target: &str) -> Result<u32, ClientError> {
        let r = self.call(RequestType::ServiceFlush, |q| {
            q.service_flush = Some(ServiceFlushRequest {
                target: target.into(),
            })
        })?;
        Ok(r.service_flush.unwrap_or_default().flushed_count)
    }

    /// Writes the service set to the dump; returns its path and size.
    pub fn service_save(&mut self) -> Result<(String, u32), ClientError> {
        let r = self.call(RequestType::ServiceSave, |q| {
            q.service_save = Some(ServiceSaveRequest {})
        })?;
        let s = r.service_save.unwrap_or_default();
        Ok((s.snapshot_path, s.service_count))
    }

    /// Starts the saved services not already running; returns how many
    /// started and berth's summary.
    pub fn service_resurrect(&mut self) -> Result<(u32, String), ClientError> {
        let r = self.call(RequestType::ServiceResurrect, |q| {
            q.service_resurrect = Some(ServiceResurrectRequest {})
        })?;
        Ok((
            r.service_resurrect.unwrap_or_default().restored_count,
            r.message,
        ))
    }
}

// ---------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------

/// The frames an attach stream carries to the client.
pub enum StreamFrame {
    /// A PTY attachment's frame.
    Pty(PtyStreamFrame),
    /// A pipe attachment's frame.
    Pipe(PipeStreamFrame),
}

/// An attach stream: the connection after a successful ATTACH.
pub struct AttachStream {
    stream: UnixStream,
    pipe: bool,
}

impl AttachStream {
    /// Reads the next frame; `None` once the daemon closed the stream.
    pub fn next_frame(&mut self) -> Result<Option<StreamFrame>, ClientError> {
        let mut header = [0u8; frame::HEADER_LEN];
        match self.stream.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let len = frame::body_len(header, frame::MAX_FRAME_LEN)
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body)?;
        let f = if self.pipe {
            StreamFrame::Pipe(
                PipeStreamFrame::decode(&body[..])
                    .map_err(|e| ClientError::Decode(e.to_string()))?,
            )
        } else {
            StreamFrame::Pty(
                PtyStreamFrame::decode(&body[..])
                    .map_err(|e| ClientError::Decode(e.to_string()))?,
            )
        };
        Ok(Some(f))
    }

    /// A second handle for sending input from another thread.
    pub fn input(&self) -> Result<InputSender, ClientError> {
        Ok(InputSender {
            stream: std::sync::Arc::new(std::sync::Mutex::new(self.stream.try_clone()?)),
        })
    }

    /// Sets a read timeout (None blocks).
    pub fn set_read_timeout(&self, t: Option<Duration>) -> Result<(), ClientError> {
        Ok(self.stream.set_read_timeout(t)?)
    }
}

/// Sends PtyInputFrame frames on an attach stream.
/// Clones share one socket; each frame is written whole under a lock, so
/// senders on several threads (keys, resizes) never interleave frames.
#[derive(Clone)]
pub struct InputSender {
    stream: std::sync::Arc<std::sync::Mutex<UnixStream>>,
}

impl InputSender {
    /// Sends one input frame.
    pub fn send(&mut self, f: pty_input_frame::Frame) -> Result<(), ClientError> {
        let bytes = frame::encode(&PtyInputFrame { frame: Some(f) })
            .map_err(|e| ClientError::Io(io::Error::other(e.to_string())))?;
        let mut s = self.stream.lock().unwrap_or_else(|p| p.into_inner());
        s.write_all(&bytes)?;
        Ok(())
    }
}

impl Client {
    /// Starts a PTY session.
    pub fn spawn_pty(
        &mut self,
        r: SpawnPtySessionRequest,
    ) -> Result<SpawnPtySessionResponse, ClientError> {
        Ok(self
            .call(RequestType::SpawnPtySession, |q| {
                q.spawn_pty_session = Some(r)
            })?
            .spawn_pty_session
            .unwrap_or_default())
    }

    /// Starts a pipe session.
    pub fn spawn_pipe(
        &mut self,
        r: SpawnPipeSessionRequest,
    ) -> Result<SpawnPipeSessionResponse, ClientError> {
        Ok(self
            .call(RequestType::SpawnPipeSession, |q| {
                q.spawn_pipe_session = Some(r)
            })?
            .spawn_pipe_session
            .unwrap_or_default())
    }

    /// Attaches to a PTY session; this connection becomes the stream.
    pub fn attach_pty(
        mut self,
        r: AttachPtySessionRequest,
    ) -> Result<(AttachPtySessionResponse, AttachStream), ClientError> {
        let resp = self.call(RequestType::AttachPtySession, |q| {
            q.attach_pty_session = Some(r)
        })?;
        Ok((
            resp.attach_pty_session.unwrap_or_default(),
            AttachStream {
                stream: self.stream,
                pipe: false,
            },
        ))
    }

    /// Attaches to one stream of a pipe session.
    pub fn attach_pipe(
        mut self,
        r: AttachPipeStreamRequest,
    ) -> Result<(AttachPipeStreamResponse, AttachStream), ClientError> {
        let resp = self.call(RequestType::AttachPipeStream, |q| {
            q.attach_pipe_stream = Some(r)
        })?;
        Ok((
            resp.attach_pipe_stream.unwrap_or_default(),
            AttachStream {
                stream: self.stream,
                pipe: true,
            },
        ))
    }

    /// PTY sessions (originator "" = all).
    pub fn list_pty(&mut self, originator: &str) -> Result<Vec<PtySessionInfo>, ClientError> {
        let r = self.call(RequestType::ListPtySessions, |q| {
            q.list_pty_sessions = Some(ListPtySessionsRequest {
                originator: originator.into(),
            })
        })?;
        Ok(r.list_pty_sessions.unwrap_or_default().sessions)
    }

    /// Pipe sessions (originator "" = all).
    pub fn list_pipe(&mut self, originator: &str) -> Result<Vec<PipeSessionInfo>, ClientError> {
        let r = self.call(RequestType::ListPipeSessions, |q| {
            q.list_pipe_sessions = Some(ListPipeSessionsRequest {
                originator: originator.into(),
            })
        })?;
        Ok(r.list_pipe_sessions.unwrap_or_default().sessions)
    }

    /// Releases a PTY session's attachment from here.
    pub fn detach_pty(&mut self, session_id: &str) -> Result<(), ClientError> {
        self.call(RequestType::DetachPtySession, |q| {
            q.detach_pty_session = Some(DetachPtySessionRequest {
                session_id: session_id.into(),
            })
        })?;
        Ok(())
    }

    /// Ends a PTY session (soft, then hard after `grace_ms`).
    pub fn terminate_pty(&mut self, session_id: &str, grace_ms: u32) -> Result<(), ClientError> {
        self.call(RequestType::TerminatePtySession, |q| {
            q.terminate_pty_session = Some(TerminatePtySessionRequest {
                session_id: session_id.into(),
                grace_ms,
            })
        })?;
        Ok(())
    }

    /// Ends a pipe session.
    pub fn terminate_pipe(&mut self, session_id: &str, grace_ms: u32) -> Result<(), ClientError> {
        self.call(RequestType::TerminatePipeSession, |q| {
            q.terminate_pipe_session = Some(TerminatePipeSessionRequest {
                session_id: session_id.into(),
                grace_ms,
            })
        })?;
        Ok(())
    }

    /// Resizes a PTY session without attaching.
    pub fn resize_pty(
        &mut self,
        session_id: &str,
        rows: u32,
        cols: u32,
    ) -> Result<(), ClientError> {
        self.call(RequestType::ResizePtySession, |q| {
            q.resize_pty_session = Some(ResizePtySessionRequest {
                session_id: session_id.into(),
                rows,
                cols,
            })
        })?;
        Ok(())
    }

    /// Writes to a session's input (pipe stdin, or a PTY's keyboard).
    pub fn write_stdin(
        &mut self,
        session_id: &str,
        data: &[u8],
        close: bool,
    ) -> Result<u64, ClientError> {
        let r = self.call(RequestType::WritePipeStdin, |q| {
            q.write_pipe_stdin = Some(WritePipeStdinRequest {
                session_id: session_id.into(),
                data: data.to_vec(),
                close,
            })
        })?;
        Ok(r.write_pipe_stdin.unwrap_or_default().bytes_written)
    }

    /// A session's held output, without consuming it.
    pub fn backlog(
        &mut self,
        session_id: &str,
        stream: PipeStreamKind,
    ) -> Result<GetSessionBacklogResponse, ClientError> {
        let r = self.call(RequestType::GetSessionBacklog, |q| {
            q.get_session_backlog = Some(GetSessionBacklogRequest {
                session_id: session_id.into(),
                pipe_stream: stream as i32,
            })
        })?;
        Ok(r.get_session_backlog.unwrap_or_default())
    }

    /// Removes ended sessions.
    pub fn purge_sessions(
        &mut self,
        originator: &str,
    ) -> Result<PurgeExitedSessionsResponse, ClientError> {
        let r = self.call(RequestType::PurgeExitedSessions, |q| {
            q.purge_exited_sessions = Some(PurgeExitedSessionsRequest {
                originator: originator.into(),
            })
        })?;
        Ok(r.purge_exited_sessions.unwrap_or_default())
    }

    /// Ends sessions older than `older_than_secs` (0 = all).
    pub fn bulk_terminate(
        &mut self,
        older_than_secs: u64,
        originator: &str,
        grace_ms: u32,
    ) -> Result<BulkTerminateSessionsResponse, ClientError> {
        let r = self.call(RequestType::BulkTerminateSessions, |q| {
            q.bulk_terminate_sessions = Some(BulkTerminateSessionsRequest {
                older_than_secs,
                originator: originator.into(),
                grace_ms,
            })
        })?;
        Ok(r.bulk_terminate_sessions.unwrap_or_default())
    }

    /// Starts a tee; returns its handle.
    pub fn register_tee(&mut self, r: RegisterSessionTeeRequest) -> Result<u64, ClientError> {
        Ok(self
            .call(RequestType::RegisterSessionTee, |q| {
                q.register_session_tee = Some(r)
            })?
            .register_session_tee
            .unwrap_or_default()
            .tee_handle)
    }

    /// Stops a tee.
    pub fn unregister_tee(
        &mut self,
        session_id: &str,
        kind: TeeSessionKind,
        tee_handle: u64,
    ) -> Result<(), ClientError> {
        self.call(RequestType::UnregisterSessionTee, |q| {
            q.unregister_session_tee = Some(UnregisterSessionTeeRequest {
                session_id: session_id.into(),
                session_kind: kind as i32,
                tee_handle,
            })
        })?;
        Ok(())
    }

    /// A tee's counters.
    pub fn tee_status(
        &mut self,
        session_id: &str,
        kind: TeeSessionKind,
        tee_handle: u64,
    ) -> Result<GetSessionTeeStatusResponse, ClientError> {
        let r = self.call(RequestType::GetSessionTeeStatus, |q| {
            q.get_session_tee_status = Some(GetSessionTeeStatusRequest {
                session_id: session_id.into(),
                session_kind: kind as i32,
                tee_handle,
            })
        })?;
        Ok(r.get_session_tee_status.unwrap_or_default())
    }
}
