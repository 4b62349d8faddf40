//! The daemon's agent link to a relay (`berth daemon --relay URL`): the
//! remote-protocol surface of the session engine.
//!
//! A *control link* announces the machine and its live PTY sessions
//! (`machine_list`, re-sent when they change) and waits for the relay to
//! ask for a session (`cap.req`, optionally `grid.features`, then
//! `session_attach`; underline colours go only to a relay that asked with
//! `grid.features`, answered on the feed link). Each request opens
//! a *feed link* for that session and mode, which streams either PTY_DATA
//! (after a FRAME_SNAPSHOT painting the current screen) or GRID_SNAPSHOT
//! then GRID_DIFFs computed from the screen model at most once per frame
//! interval, and applies `input` and RESIZE. Given several relay URLs
//! (instances of one cluster, issue 14), the control link uses one at a
//! time and its feed links follow it; when it drops, the next URL is tried
//! at once (with jitter), and backoff grows only once every URL failed in
//! a row. The sessions are untouched by any of this. The engine is only read through attachments and
//! `ScreenState`; nothing here changes its semantics.

pub mod grid;

use berth_engine::sessions::{AttachOptions, Kind, Next, Replay, Session, Sessions, StreamId};
use berth_wire::remote::{
    self, AppMessage, CapAck, CapReq, Frame, GridDiff, GridEncoding, GridFeatures,
    GridResizeCapped, GridSnapshot, Hello, Machine, MachineList, Pong, PtyState, PtyStatus, Role,
    SessionAttach, SessionInfo,
};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How the daemon reaches its relay.
#[derive(Debug, Clone)]
pub struct RelayLinkConfig {
    /// `ws://host:port/` of the relay, or of each instance of a clustered
    /// relay, in the order to try them (at least one).
    pub urls: Vec<String>,
    /// Token presented in `hello`.
    pub token: String,
    /// Stable id of this machine.
    pub machine_id: String,
    /// Human name of this machine.
    pub machine_name: String,
    /// Largest width a RESIZE may set.
    pub max_cols: u16,
    /// Largest height a RESIZE may set.
    pub max_rows: u16,
    /// Shortest time between two GRID_DIFFs of one feed (coalescing).
    pub frame_interval: Duration,
    /// For `wss://`: trust only this CA (else the public web roots).
    pub ca: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
}

impl RelayLinkConfig {
    /// Defaults: this host's name as id and name, 500 × 200 cap, 30 Hz.
    pub fn new(urls: Vec<String>, token: String) -> Self {
        let host = hostname();
        Self {
            urls,
            token,
            machine_id: host.clone(),
            machine_name: host,
            max_cols: 500,
            max_rows: 200,
            frame_interval: Duration::from_millis(33),
            ca: None,
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "berth".into())
}

fn bin(f: &Frame) -> Message {
    Message::Binary(Bytes::from(f.encode()))
}

/// A grid frame for a relay that decodes `encoding` (what it asked for
/// with `grid.features`; 3.0 bytes without it).
fn grid_bin(f: &Frame, encoding: GridEncoding) -> Message {
    Message::Binary(Bytes::from(f.encode_for(encoding)))
}

fn app(m: AppMessage) -> Message {
    bin(&Frame::AppJson(m))
}

/// Up to `max` of jitter, from the clock and the pid, so many agents (or
/// mobiles) that lost one relay do not reconnect in step.
pub fn jitter(max: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mix = u64::from(nanos ^ std::process::id().wrapping_mul(2_654_435_761));
    let spread = (mix.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % (max.as_millis().max(1) as u64);
    Duration::from_millis(spread)
}

/// The delay before connection attempt number `failures` (failures in a
/// row, 0 after a link that was up) among `urls` relay URLs: a short
/// jittered pause while other URLs remain untried in this round, then
/// exponential backoff from 200 ms to 10 s, with jitter.
pub fn retry_delay(failures: u32, urls: usize) -> Duration {
    let round = failures / urls.max(1) as u32;
    let base = if failures < urls.max(1) as u32 {
        Duration::ZERO
    } else {
        Duration::from_millis(200)
            .saturating_mul(1u32 << round.min(6))
            .min(Duration::from_secs(10))
    };
    base + jitter(Duration::from_millis(250))
}

/// Keeps the control link up for as long as the daemon runs.
pub async fn run(sessions: Arc<Sessions>, cfg: RelayLinkConfig) {
    if cfg.urls.is_empty() {
        tracing::warn!("relay link: no relay URL");
        return;
    }
    let cfg = Arc::new(cfg);
    let mut next = 0usize;
    let mut failures = 0u32;
    loop {
        let url = cfg.urls[next % cfg.urls.len()].clone();
        let mut up = false;
        if let Err(e) = control(&sessions, &cfg, &url, &mut up).await {
            tracing::info!(relay = %url, "relay link: {e}");
        }
        if up {
            failures = 0;
        }
        // The next attempt goes to the next instance: this one just failed.
        next += 1;
        tokio::time::sleep(retry_delay(failures, cfg.urls.len())).await;
        failures = failures.saturating_add(1);
    }
}

/// Connects, says hello and waits for `hello_ack`; returns the ping
/// interval the relay asked for.
async fn open(cfg: &RelayLinkConfig, url: &str) -> Result<(Ws, Duration), String> {
    let mut ws = tokio::time::timeout(
        Duration::from_secs(10),
        crate::tls::connect(url, cfg.ca.as_ref()),
    )
    .await
    .map_err(|_| "connect timed out".to_string())?
    .map_err(|e| format!("connect: {e}"))?;
    ws.send(app(AppMessage::Hello(Hello {
        protocol_version: remote::PROTOCOL_VERSION,
        role: Role::Agent,
        token: Some(cfg.token.clone()),
        supported_versions: None,
        machine_id: Some(cfg.machine_id.clone()),
        machine_name: Some(cfg.machine_name.clone()),
        client_name: Some(format!("berth {}", env!("CARGO_PKG_VERSION"))),
    })))
    .await
    .map_err(|e| format!("send hello: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| "no hello_ack".to_string())?;
        let Some(Ok(Message::Binary(b))) = msg else {
            if let Some(Ok(Message::Ping(_) | Message::Pong(_))) = msg {
                continue;
            }
            return Err("relay closed the link during the handshake".into());
        };
        match Frame::decode(&b) {
            Ok(Frame::AppJson(AppMessage::HelloAck(a))) => {
                let ping = a.ping_interval_ms.unwrap_or(10_000).max(100);
                return Ok((ws, Duration::from_millis(u64::from(ping))));
            }
            Ok(Frame::AppJson(AppMessage::Error(e))) => {
                return Err(format!("relay refused: {}: {}", e.code, e.message))
            }
            Ok(Frame::AppJson(AppMessage::ProtocolMismatch(m))) => {
                return Err(format!("relay speaks versions {:?}", m.supported))
            }
            Ok(other) => {
                return Err(format!(
                    "unexpected {} before hello_ack",
                    other.opcode().name()
                ))
            }
            Err(e) => return Err(format!("bad frame from relay: {e}")),
        }
    }
}

fn session_list(sessions: &Sessions) -> Vec<SessionInfo> {
    sessions
        .list(Some(Kind::Pty), "")
        .into_iter()
        .filter(|s| s.exit.is_none())
        .map(|s| SessionInfo {
            title: if s.name.is_empty() {
                s.command.clone()
            } else {
                s.name.clone()
            },
            id: s.id,
            cols: u32::from(s.size.cols),
            rows: u32::from(s.size.rows),
        })
        .collect()
}

/// One control link to `url`, until it ends; `up` is set once the relay
/// accepted it.
async fn control(
    engine: &Arc<Sessions>,
    cfg: &Arc<RelayLinkConfig>,
    url: &str,
    up: &mut bool,
) -> Result<(), String> {
    let (ws, ping) = open(cfg, url).await?;
    *up = true;
    tracing::info!(relay = %url, "relay link up");
    let (mut tx, mut rx) = ws.split();
    let announce = |sessions: Vec<SessionInfo>| {
        app(AppMessage::MachineList(MachineList {
            machines: vec![Machine {
                id: cfg.machine_id.clone(),
                name: cfg.machine_name.clone(),
                online: true,
                sessions,
            }],
        }))
    };
    let mut sessions = session_list(engine);
    tx.send(announce(sessions.clone()))
        .await
        .map_err(|e| e.to_string())?;
    let mut poll = tokio::time::interval(Duration::from_millis(500));
    let mut last_seen = Instant::now();
    let mut wanted: Option<CapReq> = None;
    let mut features: Option<GridFeatures> = None;
    loop {
        tokio::select! {
            _ = poll.tick() => {
                if last_seen.elapsed() > ping * 3 {
                    return Err("relay silent for three ping intervals".into());
                }
                let now = session_list(engine);
                if now != sessions {
                    sessions = now;
                    tx.send(announce(sessions.clone())).await.map_err(|e| e.to_string())?;
                }
            }
            msg = rx.next() => {
                let Some(Ok(msg)) = msg else { return Ok(()) };
                last_seen = Instant::now();
                let Message::Binary(b) = msg else { continue };
                let reply = match Frame::decode(&b) {
                    Ok(Frame::AppJson(AppMessage::Ping(p))) => {
                        Some(app(AppMessage::Pong(Pong { ts: p.ts })))
                    }
                    Ok(Frame::AppJson(AppMessage::CapReq(c))) => {
                        wanted = Some(c);
                        None
                    }
                    Ok(Frame::AppJson(AppMessage::GridFeatures(f))) => {
                        // For the next feed, like `cap.req`; answered on
                        // that feed's link.
                        features = Some(f);
                        None
                    }
                    Ok(Frame::AppJson(AppMessage::SessionAttach(a))) => {
                        let want = wanted.take().unwrap_or(CapReq {
                            grid: false,
                            max_cols: None,
                            max_rows: None,
                        });
                        let features = features.take();
                        match engine.get_kind(&a.session_id, Kind::Pty) {
                            Ok(s) if s.exit().is_none() => {
                                tokio::spawn(feed(
                                    engine.clone(),
                                    cfg.clone(),
                                    url.to_string(),
                                    s,
                                    want,
                                    features,
                                ));
                                None
                            }
                            found => Some(app(AppMessage::PtyStatus(PtyStatus {
                                session_id: a.session_id,
                                state: PtyState::Exited,
                                exit_code: found.ok().and_then(|s| s.exit()).map(|e| e.code),
                            }))),
                        }
                    }
                    Ok(Frame::ProtocolError(r)) => {
                        tracing::debug!(reason = %r, "relay refused a frame");
                        None
                    }
                    Ok(_) => None,
                    Err(e) => Some(bin(&Frame::ProtocolError(e.reason()))),
                };
                if let Some(r) = reply {
                    tx.send(r).await.map_err(|e| e.to_string())?;
                }
            }
        }
    }
}

/// What a feed streams.
enum Mode {
    Raw,
    Grid {
        seq: u32,
        last: remote::Grid,
        /// What the relay decodes (`grid.features`, 3.0 without it).
        encoding: GridEncoding,
    },
}

/// One feed link: a session's output for every mobile of one mode.
async fn feed(
    engine: Arc<Sessions>,
    cfg: Arc<RelayLinkConfig>,
    url: String,
    session: Arc<Session>,
    want: CapReq,
    features: Option<GridFeatures>,
) {
    let id = session.id().to_string();
    if let Err(e) = feed_link(&engine, &cfg, &url, &session, &want, features).await {
        tracing::debug!(session = %id, "feed link ended: {e}");
    }
}

fn attach(engine: &Sessions, id: &str) -> Result<berth_engine::sessions::Attachment, String> {
    engine
        .attach(
            id,
            AttachOptions {
                stream: StreamId::Output,
                steal: false,
                read_only: true,
                replay: Replay::Screen,
                client: Default::default(),
                label: "remote".into(),
            },
        )
        .map_err(|e| e.to_string())
}

async fn feed_link(
    engine: &Sessions,
    cfg: &RelayLinkConfig,
    url: &str,
    session: &Arc<Session>,
    want: &CapReq,
    features: Option<GridFeatures>,
) -> Result<(), String> {
    let id = session.id().to_string();
    let screen = session.screen().cloned().ok_or("not a terminal session")?;
    let (ws, ping) = open(cfg, url).await?;
    let (mut tx, mut rx) = ws.split();
    let max_cols = want
        .max_cols
        .map_or(cfg.max_cols, |m| m.clamp(1, u32::from(cfg.max_cols)) as u16);
    let max_rows = want
        .max_rows
        .map_or(cfg.max_rows, |m| m.clamp(1, u32::from(cfg.max_rows)) as u16);
    tx.send(app(AppMessage::SessionAttach(SessionAttach {
        machine_id: cfg.machine_id.clone(),
        session_id: id.clone(),
    })))
    .await
    .map_err(|e| e.to_string())?;
    tx.send(app(AppMessage::CapAck(CapAck {
        grid: want.grid,
        max_cols: u32::from(max_cols),
        max_rows: u32::from(max_rows),
    })))
    .await
    .map_err(|e| e.to_string())?;
    // Underline colours only for a relay that asked (a 3.0 relay would
    // refuse them); the answer says what this feed carries.
    let encoding = features
        .as_ref()
        .map_or(GridEncoding::V3_0, |f| f.encoding());
    if let Some(f) = &features {
        tx.send(app(AppMessage::GridFeatures(GridFeatures {
            underline_color: f.underline_color && want.grid,
        })))
        .await
        .map_err(|e| e.to_string())?;
    }

    let mut att = attach(engine, &id)?;
    let paint = |ansi: Vec<u8>| {
        bin(&Frame::FrameSnapshot {
            id: id.clone(),
            ansi,
        })
    };
    tx.send(paint(std::mem::take(&mut att.initial)))
        .await
        .map_err(|e| e.to_string())?;
    let mut mode = if want.grid {
        let last = screen.with_screen(|s, _| grid::screen_to_grid(s));
        tx.send(grid_bin(
            &Frame::GridSnapshot(GridSnapshot {
                seq: 0,
                grid: last.clone(),
            }),
            encoding,
        ))
        .await
        .map_err(|e| e.to_string())?;
        Mode::Grid {
            seq: 0,
            last,
            encoding,
        }
    } else {
        Mode::Raw
    };

    let mut dirty = false;
    let mut ended = false;
    let mut next_frame = Instant::now();
    let mut last_paint = Instant::now();
    let mut paint_stale = false;
    let mut last_seen = Instant::now();
    let mut liveness = tokio::time::interval(ping);
    loop {
        let out: Vec<Message> = tokio::select! {
            n = att.next(64 * 1024), if !dirty && !ended => match (n, &mode) {
                (Next::Data { missed: 0, bytes }, Mode::Raw) => {
                    vec![bin(&Frame::PtyData(bytes))]
                }
                (Next::Data { .. }, Mode::Raw) => {
                    // The ring overran this feed: bytes after a gap would
                    // garble the screen, so repaint from the screen model.
                    att = attach(engine, &id)?;
                    vec![paint(std::mem::take(&mut att.initial))]
                }
                (Next::Data { .. }, Mode::Grid { .. }) => {
                    dirty = true;
                    vec![]
                }
                (Next::Eof | Next::Evicted(_), _) => {
                    ended = true;
                    let code = session.wait_exit().await.code;
                    let mut v = Vec::new();
                    if let Some(d) = grid_frame(&screen, &mut mode) {
                        v.push(d);
                    }
                    dirty = false;
                    v.push(app(AppMessage::PtyStatus(PtyStatus {
                        session_id: id.clone(),
                        state: PtyState::Exited,
                        exit_code: Some(code),
                    })));
                    v
                }
            },
            _ = tokio::time::sleep_until(next_frame), if dirty => {
                dirty = false;
                next_frame = Instant::now() + cfg.frame_interval;
                paint_stale = true;
                let mut v: Vec<Message> = grid_frame(&screen, &mut mode).into_iter().collect();
                if last_paint.elapsed() >= Duration::from_secs(1) {
                    // Refresh the relay's first-paint cache now and then.
                    last_paint = Instant::now();
                    paint_stale = false;
                    v.push(paint(screen.snapshot().restore));
                }
                v
            }
            _ = liveness.tick() => {
                if last_seen.elapsed() > ping * 3 {
                    return Err("relay silent for three ping intervals".into());
                }
                if paint_stale && last_paint.elapsed() >= Duration::from_secs(1) {
                    last_paint = Instant::now();
                    paint_stale = false;
                    if let Mode::Grid { .. } = mode {
                        vec![paint(screen.snapshot().restore)]
                    } else {
                        vec![]
                    }
                } else {
                    vec![]
                }
            }
            msg = rx.next() => {
                let Some(Ok(msg)) = msg else { return Ok(()) };
                last_seen = Instant::now();
                let Message::Binary(b) = msg else { continue };
                match Frame::decode(&b) {
                    Ok(Frame::AppJson(AppMessage::Ping(p))) => {
                        vec![app(AppMessage::Pong(Pong { ts: p.ts }))]
                    }
                    Ok(Frame::AppJson(AppMessage::Input(i))) if i.session_id == id => {
                        if let Err(e) = session.write_input(i.data.as_bytes()).await {
                            tracing::debug!(session = %id, "remote input refused: {e}");
                        }
                        vec![]
                    }
                    Ok(Frame::AppJson(AppMessage::SnapshotReq(_))) => match &mut mode {
                        Mode::Raw => {
                            // A fresh attachment, so the paint and the bytes
                            // after it start at the same offset.
                            att = attach(engine, &id)?;
                            vec![paint(std::mem::take(&mut att.initial))]
                        }
                        Mode::Grid {
                            seq,
                            last,
                            encoding,
                        } => {
                            *seq = seq.wrapping_add(1);
                            *last = screen.with_screen(|s, _| grid::screen_to_grid(s));
                            vec![grid_bin(
                                &Frame::GridSnapshot(GridSnapshot {
                                    seq: *seq,
                                    grid: last.clone(),
                                }),
                                *encoding,
                            )]
                        }
                    },
                    Ok(Frame::Resize { cols, rows }) => {
                        let c = cols.clamp(1, u32::from(max_cols));
                        let r = rows.clamp(1, u32::from(max_rows));
                        let mut v = Vec::new();
                        if ended {
                            // Nothing to resize.
                        } else if let Err(e) = att.resize(r as u16, c as u16) {
                            tracing::debug!(session = %id, "remote resize refused: {e}");
                        } else {
                            dirty = matches!(mode, Mode::Grid { .. });
                        }
                        if (c, r) != (cols, rows) {
                            v.push(app(AppMessage::GridResizeCapped(GridResizeCapped {
                                requested_cols: cols,
                                requested_rows: rows,
                                cols: c,
                                rows: r,
                            })));
                        }
                        v
                    }
                    Ok(Frame::ProtocolError(r)) => {
                        tracing::debug!(reason = %r, "relay refused a frame");
                        vec![]
                    }
                    Ok(Frame::AppJson(AppMessage::Pong(_))) => vec![],
                    Ok(_) => vec![bin(&Frame::ProtocolError(remote::Reason::UnexpectedFrame))],
                    Err(e) => vec![bin(&Frame::ProtocolError(e.reason()))],
                }
            }
        };
        for m in out {
            tx.send(m).await.map_err(|e| e.to_string())?;
        }
    }
}

/// The GRID_DIFF from the last grid sent to the current screen, if any
/// cell or the cursor changed.
fn grid_frame(screen: &berth_engine::sessions::ScreenState, mode: &mut Mode) -> Option<Message> {
    let Mode::Grid {
        seq,
        last,
        encoding,
    } = mode
    else {
        return None;
    };
    let now = screen.with_screen(|s, _| grid::screen_to_grid(s));
    let ops = remote::diff(last, &now);
    if ops.is_empty() {
        return None;
    }
    *seq = seq.wrapping_add(1);
    *last = now;
    Some(grid_bin(
        &Frame::GridDiff(GridDiff { seq: *seq, ops }),
        *encoding,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_relay_is_tried_at_once_and_backoff_starts_after_a_full_round() {
        let jitter = Duration::from_millis(250);
        // Three URLs: the first two failures move on with jitter only.
        assert!(retry_delay(0, 3) < jitter);
        assert!(retry_delay(2, 3) < jitter);
        // Then 200 ms doubling per round, capped at 10 s (plus jitter).
        let d = retry_delay(3, 3);
        assert!(d >= Duration::from_millis(400) && d < Duration::from_millis(400) + jitter);
        let d = retry_delay(300, 3);
        assert!(d >= Duration::from_secs(10) && d < Duration::from_secs(10) + jitter);
        // One URL: backoff from the first retry, as before.
        assert!(retry_delay(1, 1) >= Duration::from_millis(400));
    }
}
