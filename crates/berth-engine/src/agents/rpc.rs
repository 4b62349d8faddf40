//! One agent process and JSON-RPC 2.0 over its stdio (ACP's transport:
//! one JSON message per line). Spawned with piped stdio in the session's
//! working directory behind an optional command prefix (the hook for
//! running it inside a workspace container); requests berth sends get
//! numeric ids from one counter, their answers are matched here.

use super::AgentError;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdout};
use tokio::sync::{mpsc, oneshot};

/// Bytes of stderr kept for a crash report.
pub const STDERR_TAIL: usize = 8 * 1024;
/// The longest line accepted from an agent (bytes).
pub const MAX_LINE: usize = 32 * 1024 * 1024;

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// The code (-32603 internal error...).
    pub code: i64,
    /// The message.
    pub message: String,
    /// Optional details.
    pub data: Option<Value>,
}

impl RpcError {
    /// From an `error` member.
    pub fn from_value(v: &Value) -> Self {
        Self {
            code: v.get("code").and_then(Value::as_i64).unwrap_or(-32603),
            message: v
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            data: v.get("data").cloned(),
        }
    }

    /// As an `error` member.
    pub fn to_value(&self) -> Value {
        let mut v = serde_json::json!({"code": self.code, "message": self.message});
        if let Some(d) = &self.data {
            v["data"] = d.clone();
        }
        v
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)?;
        if let Some(d) = &self.data {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

/// Who waits for the answer to a request sent to the agent.
pub enum Waiter {
    /// berth itself.
    Gateway(oneshot::Sender<Result<Value, RpcError>>),
    /// A viewer's request forwarded with a new id: its viewer and own id.
    Viewer(u64, Value),
}

/// A running agent process.
pub struct AgentProc {
    tx: mpsc::Sender<String>,
    pending: Mutex<HashMap<u64, Waiter>>,
    next_id: AtomicU64,
    pid: u32,
    ident: Option<berth_os::proc::ProcessIdentity>,
    /// Set before berth stops it on purpose, so the exit is no crash.
    pub expected_exit: AtomicBool,
    stderr: Arc<Mutex<Vec<u8>>>,
}

/// What [`AgentProc::spawn`] hands back besides the process: its stdout
/// (for the session's reader) and the child (for the waiter).
pub struct Spawned {
    /// The process handle.
    pub proc: Arc<AgentProc>,
    /// Lines of the agent.
    pub stdout: ChildStdout,
    /// To wait for its exit.
    pub child: Child,
}

impl AgentProc {
    /// Starts `prefix + argv` in `cwd` with piped stdio. Errors name the
    /// program and the cause.
    pub fn spawn(prefix: &[String], argv: &[String], cwd: &Path) -> Result<Spawned, AgentError> {
        let full: Vec<&String> = prefix.iter().chain(argv.iter()).collect();
        let (prog, args) = full
            .split_first()
            .ok_or_else(|| AgentError::Invalid("the agent command is empty".into()))?;
        let mut cmd = tokio::process::Command::new(prog.as_str());
        cmd.args(args.iter().map(|s| s.as_str()))
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: adapters started through `npx` or a
            // shell leave the real agent as a child, which must end with it.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            AgentError::Spawn(format!("cannot start {prog:?} in {}: {e}", cwd.display()))
        })?;
        let pid = child.id().unwrap_or(0);
        let mut stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (tx, mut rx) = mpsc::channel::<String>(1024);
        tokio::spawn(async move {
            while let Some(mut line) = rx.recv().await {
                line.push('\n');
                if stdin.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
                if rx.is_empty() && stdin.flush().await.is_err() {
                    break;
                }
            }
        });
        let tail = Arc::new(Mutex::new(Vec::new()));
        let t = tail.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                match stderr.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let mut g = t.lock().unwrap_or_else(|p| p.into_inner());
                        g.extend_from_slice(&buf[..n]);
                        if g.len() > STDERR_TAIL {
                            let cut = g.len() - STDERR_TAIL;
                            g.drain(..cut);
                        }
                    }
                }
            }
        });
        Ok(Spawned {
            proc: Arc::new(AgentProc {
                tx,
                pending: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                pid,
                ident: berth_os::proc::ProcessIdentity::of(pid).ok(),
                expected_exit: AtomicBool::new(false),
                stderr: tail,
            }),
            stdout,
            child,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The last [`STDERR_TAIL`] bytes of stderr, as text.
    pub fn stderr_tail(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    /// Writes one message line.
    pub async fn send_line(&self, line: String) -> Result<(), AgentError> {
        self.tx
            .send(line)
            .await
            .map_err(|_| AgentError::NotRunning("the agent's stdin is closed".into()))
    }

    /// Sends a request with a fresh id on behalf of `waiter`; returns the
    /// id.
    pub async fn request(
        &self,
        method: &str,
        params: Value,
        waiter: Waiter,
    ) -> Result<u64, AgentError> {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, waiter);
        let msg =
            serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        if let Err(e) = self.send_line(msg.to_string()).await {
            self.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            return Err(e);
        }
        Ok(id)
    }

    /// Sends a request and waits for its result.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, CallError> {
        let (tx, rx) = oneshot::channel();
        self.request(method, params, Waiter::Gateway(tx))
            .await
            .map_err(CallError::Agent)?;
        match rx.await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(CallError::Rpc(e)),
            Err(_) => Err(CallError::Agent(AgentError::NotRunning(
                "the agent exited before answering".into(),
            ))),
        }
    }

    /// Sends a notification.
    pub async fn notify(&self, method: &str, params: Value) -> Result<(), AgentError> {
        self.send_line(
            serde_json::json!({"jsonrpc": "2.0", "method": method, "params": params}).to_string(),
        )
        .await
    }

    /// Takes the waiter of answer `id`, if berth sent that request.
    pub fn take_waiter(&self, id: &Value) -> Option<Waiter> {
        let id = id.as_u64()?;
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id)
    }

    /// Fails every waiting request (the process ended).
    pub fn fail_all(&self) -> Vec<(u64, Value)> {
        let all: Vec<Waiter> = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, w)| w)
            .collect();
        let mut viewers = Vec::new();
        for w in all {
            match w {
                Waiter::Gateway(tx) => {
                    let _ = tx.send(Err(RpcError {
                        code: -32603,
                        message: "the agent process exited".into(),
                        data: None,
                    }));
                }
                Waiter::Viewer(v, id) => viewers.push((v, id)),
            }
        }
        viewers
    }

    /// Asks the process to stop: SIGTERM, then SIGKILL after `grace`.
    pub fn terminate(self: &Arc<Self>, grace: std::time::Duration) {
        self.expected_exit.store(true, Ordering::SeqCst);
        let Some(id) = self.ident else {
            return;
        };
        let _ = berth_os::signal::send(id, berth_os::signal::Signal::SIGTERM);
        // The rest of its group (the agent an `npx` wrapper started): the
        // group is the leader's pid, which the kernel does not reuse while
        // any member is left.
        let group = id.pid as i32;
        let _ = berth_os::signal::send_group(group, berth_os::signal::Signal::SIGTERM);
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            // The identity check makes this a no-op once it has exited.
            let _ = berth_os::signal::send(id, berth_os::signal::Signal::SIGKILL);
            if berth_os::signal::group_exists(id.pid) {
                let _ = berth_os::signal::send_group(group, berth_os::signal::Signal::SIGKILL);
            }
        });
    }
}

/// A request to the agent that failed.
#[derive(Debug)]
pub enum CallError {
    /// The agent answered with an error.
    Rpc(RpcError),
    /// The agent could not be asked or did not answer.
    Agent(AgentError),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Rpc(e) => write!(f, "the agent answered with an error: {e}"),
            CallError::Agent(e) => write!(f, "{e}"),
        }
    }
}

/// Reads `stdout` line by line (lines over [`MAX_LINE`] end the stream).
pub struct Lines {
    r: BufReader<ChildStdout>,
    buf: Vec<u8>,
}

impl Lines {
    /// Over an agent's stdout.
    pub fn new(stdout: ChildStdout) -> Self {
        Self {
            r: BufReader::with_capacity(64 * 1024, stdout),
            buf: Vec::new(),
        }
    }

    /// The next non-empty line, `None` at the end.
    pub async fn next(&mut self) -> Option<String> {
        loop {
            self.buf.clear();
            let n = (&mut self.r)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut self.buf)
                .await
                .ok()?;
            if n == 0 {
                return None;
            }
            let s = String::from_utf8_lossy(&self.buf);
            let t = s.trim();
            if !t.is_empty() {
                return Some(t.to_string());
            }
        }
    }
}
