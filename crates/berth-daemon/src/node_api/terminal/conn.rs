//! One terminal WebSocket: client messages onto the session engine, and
//! one output pump per viewed session. Hardening as seed 004's agent:
//! 64 KiB messages (else close 1009), a ping every 30 s, 90 s without
//! any frame closes, 30 messages/s with a burst of 60 (else close 1008).

use super::protocol::{self, Bucket, ClientMsg};
use crate::node_api::terminals::{iso, Term, Terminals};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Server ping interval.
pub const PING_EVERY: Duration = Duration::from_secs(30);
/// A connection silent this long is closed.
pub const READ_TIMEOUT: Duration = Duration::from_secs(90);
/// Largest client message: a larger one closes the connection with 1009
/// ("message too big") and a reason naming both sizes.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Largest message the WebSocket layer reads at all (set at the upgrade).
/// Messages between [`MAX_MESSAGE`] and this are read whole and refused
/// by the connection, which can then close it cleanly; larger ones are
/// cut off by the layer mid-frame (still with a 1009 close, best effort).
pub const MAX_WIRE_MESSAGE: usize = 1 << 20;
/// Output read per message.
const CHUNK: usize = 32 * 1024;

/// Where a view starts.
#[derive(Debug, Clone, Copy)]
pub enum Start {
    /// A client with nothing: the whole output if the ring holds all of
    /// it and it is within the replay limit, else the screen.
    Fresh,
    /// A client holding output up to this offset: only what it missed, or
    /// the screen when that is gone or over the replay limit.
    Offset(u64),
    /// A new session: live output only.
    Live,
}

/// One connection's fixed facts.
pub struct Conn {
    /// The table.
    pub terms: Arc<Terminals>,
    /// Route workspace.
    pub workspace: String,
    /// The user.
    pub sub: String,
    /// `/terminal/ws/multi`.
    pub multi: bool,
    /// Single mode: raw binary output frames instead of JSON.
    pub binary_out: bool,
    /// Shell and default directory of new sessions.
    pub shell: String,
    /// Default working directory.
    pub work_dir: String,
    /// Most raw output one replay sends (`PTY_OUTPUT_BUFFER_SIZE`); more
    /// missed than this and the client gets the screen.
    pub replay_limit: u64,
}

/// Serves `socket`; in single mode `first` is the session it shows.
pub async fn run(socket: WebSocket, conn: Conn, first: Option<(Term, Start)>) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Message>(64);
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            let close = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() || close {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let conn = Arc::new(conn);
    let mut views: HashMap<String, JoinHandle<()>> = HashMap::new();
    let mut single: Option<String> = None;
    if let Some((term, start)) = first {
        send(&tx, json!({"type": "session", "sessionId": term.id})).await;
        single = Some(term.id.clone());
        open_view(&conn, &tx, &mut views, term, start);
    }
    let mut bucket = Bucket::new(30.0, 60.0);
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        let msg = tokio::select! {
            m = tokio::time::timeout(READ_TIMEOUT, stream.next()) => m,
            _ = ping.tick() => {
                let _ = tx.send(Message::Ping(Default::default())).await;
                continue;
            }
        };
        let msg = match msg {
            Err(_) => {
                close(&tx, 1001, "read timeout").await;
                break;
            }
            Ok(Some(Err(e))) => {
                // Over MAX_WIRE_MESSAGE the WebSocket layer refuses the
                // message itself; still say why (1009) before closing.
                if let Some(why) = too_big(e) {
                    close(&tx, 1009, &why).await;
                }
                break;
            }
            Ok(None) => break,
            Ok(Some(Ok(m))) => m,
        };
        let len = match &msg {
            Message::Text(t) => t.len(),
            Message::Binary(b) => b.len(),
            _ => 0,
        };
        if len > MAX_MESSAGE {
            close(
                &tx,
                1009,
                &format!("message too big: {len} bytes, the limit is {MAX_MESSAGE}"),
            )
            .await;
            drain(&mut stream).await;
            break;
        }
        let text = match msg {
            Message::Text(t) => t.to_string(),
            Message::Binary(b) => {
                if !bucket.take() {
                    close(&tx, 1008, "rate limit exceeded").await;
                    drain(&mut stream).await;
                    break;
                }
                // Raw keystrokes for the single session, or the most
                // recently opened one in multi mode.
                let target = single.clone().or_else(|| views.keys().last().cloned());
                if let Some(id) = target {
                    input(&conn, &tx, &id, &b).await;
                }
                continue;
            }
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        if !bucket.take() {
            close(&tx, 1008, "rate limit exceeded").await;
            drain(&mut stream).await;
            break;
        }
        let m: ClientMsg = match serde_json::from_str(&text) {
            Ok(m) => m,
            Err(e) => {
                send(
                    &tx,
                    protocol::error(None, &format!("message does not parse: {e}")),
                )
                .await;
                continue;
            }
        };
        handle(&conn, &tx, &mut views, single.as_deref(), m).await;
    }
    for (id, v) in views.drain() {
        v.abort();
        conn.terms.leave(&conn.workspace, &id);
    }
    drop(tx);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
}

/// The close reason for a read error that is a message or frame over
/// [`MAX_MESSAGE`] (WebSocket close code 1009, "message too big"); `None`
/// for any other error.
pub fn too_big(e: axum::Error) -> Option<String> {
    use tokio_tungstenite::tungstenite::error::{CapacityError, Error};
    match *e.into_inner().downcast::<Error>().ok()? {
        Error::Capacity(CapacityError::MessageTooLong { size, max_size }) => Some(format!(
            "message too big: {size} bytes, the limit is {max_size}"
        )),
        Error::Capacity(c) => Some(format!("message too big: {c}")),
        _ => None,
    }
}

/// After our close frame: reads (and drops) what the client still sends
/// until its close, for at most 2 s, so the close frame reaches it instead
/// of a connection reset.
/// Reads (and drops) what the client still sends after a close, up to
/// its close frame or 2 s, so the close frame reaches it before the socket
/// shuts.
pub async fn drain(stream: &mut futures_util::stream::SplitStream<WebSocket>) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(m)) = stream.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

async fn send(tx: &mpsc::Sender<Message>, v: Value) {
    let _ = tx.send(Message::Text(v.to_string().into())).await;
}

async fn close(tx: &mpsc::Sender<Message>, code: u16, reason: &str) {
    let _ = tx
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.to_string().into(),
        })))
        .await;
}

async fn input(conn: &Conn, tx: &mpsc::Sender<Message>, id: &str, data: &[u8]) {
    match conn.terms.get(&conn.workspace, id, &conn.sub) {
        Ok(t) => {
            conn.terms.touch(&conn.workspace, id);
            if let Err(e) = t.session.write_input(data).await {
                send(tx, protocol::error(Some(id), &e.to_string())).await;
            }
        }
        Err(e) => send(tx, protocol::error(Some(id), &e)).await,
    }
}

async fn handle(
    conn: &Arc<Conn>,
    tx: &mpsc::Sender<Message>,
    views: &mut HashMap<String, JoinHandle<()>>,
    single: Option<&str>,
    m: ClientMsg,
) {
    // Single mode: every message is about the one session.
    let sid = m.session_id.clone().or_else(|| single.map(String::from));
    let need = |sid: &Option<String>| -> Result<String, String> {
        sid.clone()
            .ok_or_else(|| format!("{}: sessionId is required", m.kind))
    };
    let r: Result<(), String> = async {
        match m.kind.as_str() {
            "ping" => {
                send(tx, json!({"type": "pong"})).await;
                Ok(())
            }
            "input" => {
                let id = need(&sid)?;
                input(conn, tx, &id, m.data.as_deref().unwrap_or("").as_bytes()).await;
                Ok(())
            }
            "resize" => {
                let id = need(&sid)?;
                let t = conn.terms.get(&conn.workspace, &id, &conn.sub)?;
                let (rows, cols) = protocol::size(m.rows, m.cols);
                t.session.resize(rows, cols).map_err(|e| e.to_string())
            }
            "create_session" if conn.multi => {
                let id = need(&sid)?;
                let (rows, cols) = protocol::size(m.rows, m.cols);
                let dir = m.work_dir.clone().unwrap_or_else(|| conn.work_dir.clone());
                let t = conn.terms.create(
                    &conn.workspace,
                    &id,
                    &conn.sub,
                    m.name.clone(),
                    &conn.shell,
                    &dir,
                    rows,
                    cols,
                )?;
                send(
                    tx,
                    json!({"type": "session_created", "sessionId": id,
                           "workingDirectory": t.work_dir, "name": t.name,
                           "engineSessionId": t.session.id()}),
                )
                .await;
                open_view(conn, tx, views, t, Start::Live);
                Ok(())
            }
            "close_session" if conn.multi => {
                let id = need(&sid)?;
                conn.terms.close(&conn.workspace, &id, &conn.sub)?;
                if let Some(v) = views.remove(&id) {
                    v.abort();
                }
                send(
                    tx,
                    json!({"type": "session_closed", "sessionId": id, "reason": "user_requested"}),
                )
                .await;
                Ok(())
            }
            "rename_session" if conn.multi => {
                let id = need(&sid)?;
                let name = m.name.clone().unwrap_or_default();
                conn.terms.rename(&conn.workspace, &id, &conn.sub, &name)?;
                send(
                    tx,
                    json!({"type": "session_renamed", "sessionId": id, "name": name}),
                )
                .await;
                Ok(())
            }
            "list_sessions" if conn.multi => {
                let list: Vec<Value> = conn
                    .terms
                    .list(&conn.workspace, &conn.sub)
                    .into_iter()
                    .map(|t| {
                        let exited = t.session.exit().is_some();
                        json!({
                            "sessionId": t.id,
                            "name": t.name,
                            "status": if exited { "exited" } else { "running" },
                            "workingDirectory": t.work_dir,
                            "createdAt": iso(t.created_at_ms),
                            "lastActivityAt": iso(t.last_activity_ms),
                            "engineSessionId": t.session.id(),
                            "offset": t.session.output().log().end(),
                        })
                    })
                    .collect();
                send(tx, json!({"type": "session_list", "sessions": list})).await;
                Ok(())
            }
            "reattach_session" if conn.multi => {
                let id = need(&sid)?;
                let t = conn.terms.get(&conn.workspace, &id, &conn.sub)?;
                if m.rows.is_some() || m.cols.is_some() {
                    let (rows, cols) = protocol::size(m.rows, m.cols);
                    let _ = t.session.resize(rows, cols);
                }
                send(
                    tx,
                    json!({"type": "session_reattached", "sessionId": id,
                           "workingDirectory": t.work_dir, "shell": t.shell,
                           "name": t.name}),
                )
                .await;
                if let Some(v) = views.remove(&id) {
                    v.abort();
                    conn.terms.leave(&conn.workspace, &id);
                }
                let start = m.offset.map(Start::Offset).unwrap_or(Start::Fresh);
                open_view(conn, tx, views, t, start);
                Ok(())
            }
            other => Err(format!(
                "unknown message type {other:?}{}",
                if conn.multi {
                    ""
                } else {
                    " (single-session mode)"
                }
            )),
        }
    }
    .await;
    if let Err(e) = r {
        send(tx, protocol::error(sid.as_deref(), &e)).await;
    }
}

fn open_view(
    conn: &Arc<Conn>,
    tx: &mpsc::Sender<Message>,
    views: &mut HashMap<String, JoinHandle<()>>,
    term: Term,
    start: Start,
) {
    conn.terms.join(&conn.workspace, &term.id);
    let id = term.id.clone();
    let task = tokio::spawn(pump(conn.clone(), tx.clone(), term, start));
    if let Some(old) = views.insert(id.clone(), task) {
        old.abort();
        conn.terms.leave(&conn.workspace, &id);
    }
}

/// Bytes to draw the current screen over whatever the client shows.
fn screen(term: &Term) -> (Vec<u8>, u64) {
    match term.session.screen() {
        Some(s) => {
            let snap = s.snapshot();
            let mut b = b"\x1b[H\x1b[2J\x1b[3J".to_vec();
            b.extend_from_slice(&snap.restore);
            (b, snap.offset)
        }
        None => (Vec::new(), term.session.output().log().end()),
    }
}

async fn pump(conn: Arc<Conn>, tx: mpsc::Sender<Message>, term: Term, start: Start) {
    let out = term.session.output().clone();
    let mut changed = out.subscribe();
    let tag = |v: &mut Value| {
        if conn.multi {
            v["sessionId"] = json!(term.id);
        }
    };
    // The replay: what the client is missing, never a torn stream.
    let (replay, cursor, is_screen) = {
        let log = out.log();
        let (begin, end) = (log.start(), log.end());
        match start {
            Start::Live => (Vec::new(), end, false),
            Start::Offset(o) if o >= begin && o <= end && end - o <= conn.replay_limit => (
                berth_engine::sessions::replay::strip_queries(&log.read(o, usize::MAX).data),
                end,
                false,
            ),
            Start::Fresh if begin == 0 && end <= conn.replay_limit => (
                berth_engine::sessions::replay::strip_queries(&log.read(0, usize::MAX).data),
                end,
                false,
            ),
            _ => {
                drop(log);
                let (b, o) = screen(&term);
                (b, o, true)
            }
        }
    };
    // The ring ends where the program's last write did, maybe inside a
    // character: its first bytes wait for the rest, read with the output.
    let (mut replay, mut cursor) = (replay, cursor);
    if !is_screen {
        let keep = protocol::incomplete_tail(&replay);
        replay.truncate(replay.len() - keep);
        cursor -= keep as u64;
    }
    if !matches!(start, Start::Live) {
        let mut v = json!({"type": "scrollback", "data": String::from_utf8_lossy(&replay),
                           "offset": cursor, "screen": is_screen});
        tag(&mut v);
        send(&tx, v).await;
    }
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let chunk = out.log().read(cursor, CHUNK);
        if chunk.missed > 0 {
            // This client fell behind the ring: repaint its screen.
            let (b, o) = screen(&term);
            cursor = o;
            pending.clear();
            let mut v = json!({"type": "scrollback", "data": String::from_utf8_lossy(&b),
                               "offset": o, "screen": true});
            tag(&mut v);
            send(&tx, v).await;
            continue;
        }
        if !chunk.data.is_empty() {
            cursor = chunk.offset + chunk.data.len() as u64;
            conn.terms.touch(&conn.workspace, &term.id);
            if conn.binary_out && !conn.multi {
                if tx.send(Message::Binary(chunk.data.into())).await.is_err() {
                    return;
                }
                continue;
            }
            pending.extend_from_slice(&chunk.data);
            let keep = protocol::incomplete_tail(&pending);
            let tail = pending.split_off(pending.len() - keep);
            let mut v = json!({"type": "output", "data": String::from_utf8_lossy(&pending),
                               "offset": cursor - tail.len() as u64});
            tag(&mut v);
            pending = tail;
            if tx.send(Message::Text(v.to_string().into())).await.is_err() {
                return;
            }
            continue;
        }
        if out.is_closed() && cursor >= out.log().end() {
            break;
        }
        if changed.changed().await.is_err() {
            break;
        }
    }
    let exit = term.session.wait_exit().await;
    conn.terms.forget(&conn.workspace, &term.id);
    let mut v = json!({"type": "session_closed", "reason": "process_exit", "exitCode": exit.code});
    v["sessionId"] = json!(term.id);
    send(&tx, v).await;
    if !conn.multi {
        close(&tx, 1000, "session ended").await;
    }
}
