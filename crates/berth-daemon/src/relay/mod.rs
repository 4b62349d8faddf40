//! `berth relay`: the WebSocket rendezvous between desktop agents (berth
//! daemons linked with `--relay`) and mobile clients (phones, `berth remote
//! attach`), speaking remote protocol v3 (`docs/remote-protocol-v3.md` §10).
//!
//! Every link starts with `hello`, carrying a token (or `?token=` on the
//! upgrade URL). A token is both the credential and the namespace: a mobile
//! sees only the machines whose agents presented the same token.
//!
//! An agent opens one *control link* (it sends `machine_list`), and one
//! *feed link* per session and mode that mobiles watch (it sends
//! `session_attach` then `cap.ack`), so the opcode frames, which carry no
//! session id, are unambiguous on every link. The relay fans a feed out to
//! every mobile watching it, keeps the feed's current grid (applying each
//! diff) so a new or slow mobile is sent a GRID_SNAPSHOT at once, and keeps
//! the latest FRAME_SNAPSHOT of each session for instant first paint.

mod outbox;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use berth_wire::remote::{
    self, AppMessage, CapReq, ConnectionStatus, ErrorMessage, Frame, Grid, GridSnapshot, Hello,
    HelloAck, LinkStatus, Machine, MachineList, Opcode, Ping, Pong, ProtocolMismatch, Reason, Role,
    SessionAttach, SessionInfo, SnapshotReq,
};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use outbox::Outbox;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Relay settings.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Accepted tokens; each is also the namespace of its machines.
    pub tokens: Vec<String>,
    /// How often the relay pings each link; a link silent for three
    /// intervals is closed.
    pub ping_interval: Duration,
    /// Bytes of terminal frames queued per mobile before it is resynced
    /// with a snapshot instead.
    pub queue_bytes: usize,
    /// Time allowed between the upgrade and `hello`.
    pub hello_timeout: Duration,
    /// Serve `wss://` with this configuration (see [`crate::tls`]).
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            ping_interval: Duration::from_secs(10),
            queue_bytes: 1 << 20,
            hello_timeout: Duration::from_secs(10),
            tls: None,
        }
    }
}

/// Versions this relay speaks.
const VERSIONS: [u32; 1] = [remote::PROTOCOL_VERSION];

/// (token, machine id, session id, grid mode): one feed link.
type FeedKey = (String, String, String, bool);

/// The largest grid a mobile said it can show (`cap.req`).
type MaxSize = (Option<u32>, Option<u32>);

struct MachineEntry {
    name: String,
    online: bool,
    control: Option<(u64, Arc<Outbox>)>,
    sessions: Vec<SessionInfo>,
}

struct MobileEntry {
    token: String,
    out: Arc<Outbox>,
    grid: bool,
    max: MaxSize,
    attached: Option<FeedKey>,
}

#[derive(Default)]
struct Feed {
    link: Option<(u64, Arc<Outbox>)>,
    cap_ack: Option<Bytes>,
    grid: Option<(Grid, u32)>,
    mobiles: Vec<u64>,
    resync_asked: bool,
    /// Input and RESIZE sent before the feed link came up, in order.
    pending: Vec<Bytes>,
}

/// Frames a feed holds for its agent while its link is coming up.
const MAX_PENDING: usize = 256;

#[derive(Default)]
struct Hub {
    next_id: u64,
    machines: HashMap<(String, String), MachineEntry>,
    mobiles: HashMap<u64, MobileEntry>,
    feeds: HashMap<FeedKey, Feed>,
    first_paint: HashMap<(String, String, String), Bytes>,
}

struct Relay {
    config: RelayConfig,
    hub: Mutex<Hub>,
}

fn enc(f: &Frame) -> Bytes {
    Bytes::from(f.encode())
}

fn json(m: AppMessage) -> Bytes {
    enc(&Frame::AppJson(m))
}

fn error(code: &str, message: impl Into<String>) -> Bytes {
    json(AppMessage::Error(ErrorMessage {
        code: code.into(),
        message: message.into(),
    }))
}

fn protocol_error(r: Reason) -> Bytes {
    enc(&Frame::ProtocolError(r))
}

fn snapshot_frame(grid: &Grid, seq: u32) -> Bytes {
    enc(&Frame::GridSnapshot(GridSnapshot {
        seq,
        grid: grid.clone(),
    }))
}

/// Compares without an early exit, so a guess's timing says nothing
/// about how much of it matched.
fn token_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

impl Relay {
    fn hub(&self) -> MutexGuard<'_, Hub> {
        self.hub.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Hub {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn machine_list(&self, token: &str) -> Bytes {
        let mut machines: Vec<Machine> = self
            .machines
            .iter()
            .filter(|((t, _), _)| t == token)
            .map(|((_, id), m)| Machine {
                id: id.clone(),
                name: m.name.clone(),
                online: m.online,
                sessions: if m.online {
                    m.sessions.clone()
                } else {
                    Vec::new()
                },
            })
            .collect();
        machines.sort_by(|a, b| a.id.cmp(&b.id));
        json(AppMessage::MachineList(MachineList { machines }))
    }

    fn tell_mobiles(&self, token: &str, frame: &Bytes) {
        for m in self.mobiles.values().filter(|m| m.token == token) {
            m.out.push(frame.clone());
        }
    }

    fn machines_changed(&self, token: &str) {
        let list = self.machine_list(token);
        self.tell_mobiles(token, &list);
    }

    /// Asks the machine's agent to open the feed link for `key`.
    fn request_feed(&mut self, key: &FeedKey, max: MaxSize) {
        let Some(m) = self.machines.get(&(key.0.clone(), key.1.clone())) else {
            return;
        };
        let Some((_, ctl)) = &m.control else { return };
        ctl.push(json(AppMessage::CapReq(CapReq {
            grid: key.3,
            max_cols: max.0,
            max_rows: max.1,
        })));
        ctl.push(json(AppMessage::SessionAttach(SessionAttach {
            machine_id: key.1.clone(),
            session_id: key.2.clone(),
        })));
    }

    fn detach_mobile(&mut self, mobile: u64) {
        let Some(key) = self
            .mobiles
            .get_mut(&mobile)
            .and_then(|m| m.attached.take())
        else {
            return;
        };
        if let Some(feed) = self.feeds.get_mut(&key) {
            feed.mobiles.retain(|&m| m != mobile);
            if feed.mobiles.is_empty() {
                if let Some((_, out)) = &feed.link {
                    out.close();
                }
                self.feeds.remove(&key);
            }
        }
    }

    fn attach_mobile(&mut self, mobile: u64, machine_id: String, session_id: String) {
        self.detach_mobile(mobile);
        let Some(m) = self.mobiles.get(&mobile) else {
            return;
        };
        let (token, out, grid, max) = (m.token.clone(), m.out.clone(), m.grid, m.max);
        let online = self
            .machines
            .get(&(token.clone(), machine_id.clone()))
            .filter(|m| m.online);
        let Some(machine) = online else {
            out.push(error(
                "not_found",
                format!("machine {machine_id:?} is not connected"),
            ));
            return;
        };
        if !machine.sessions.iter().any(|s| s.id == session_id) {
            out.push(error(
                "not_found",
                format!("machine {machine_id:?} has no session {session_id:?}"),
            ));
            return;
        }
        let key: FeedKey = (token.clone(), machine_id.clone(), session_id.clone(), grid);
        if let Some(paint) = self.first_paint.get(&(token, machine_id, session_id)) {
            out.push(paint.clone());
        }
        let feed = self.feeds.entry(key.clone()).or_default();
        feed.mobiles.push(mobile);
        let need_link = feed.link.is_none();
        if let Some(ack) = &feed.cap_ack {
            out.push(ack.clone());
        }
        if let Some((g, seq)) = &feed.grid {
            out.push_resync(snapshot_frame(g, *seq));
        } else if let (false, Some((_, link))) = (grid, &feed.link) {
            // A raw mobile needs a paint consistent with the byte stream:
            // only the agent can make one.
            link.push(json(AppMessage::SnapshotReq(SnapshotReq {
                session_id: key.2.clone(),
                last_seq: None,
            })));
        }
        if let Some(m) = self.mobiles.get_mut(&mobile) {
            m.attached = Some(key.clone());
        }
        if need_link && feed_len(self, &key) == 1 {
            self.request_feed(&key, max);
        }
    }

    /// Sends a feed's terminal frame to its mobiles; a mobile that cannot
    /// take it is resynced instead.
    fn fan_out(&mut self, key: &FeedKey, frame: &Bytes) {
        let Some(feed) = self.feeds.get_mut(key) else {
            return;
        };
        let mut snapshot: Option<Bytes> = None;
        let mut ask_agent = false;
        for id in &feed.mobiles {
            let Some(m) = self.mobiles.get(id) else {
                continue;
            };
            if m.out.push_media(frame.clone()).is_err() {
                match &feed.grid {
                    Some((g, seq)) => {
                        let s = snapshot.get_or_insert_with(|| snapshot_frame(g, *seq));
                        m.out.push_resync(s.clone());
                    }
                    None => ask_agent = true,
                }
            }
        }
        if ask_agent && !feed.resync_asked {
            feed.resync_asked = true;
            if let Some((_, link)) = &feed.link {
                link.push(json(AppMessage::SnapshotReq(SnapshotReq {
                    session_id: key.2.clone(),
                    last_seq: None,
                })));
            }
        }
    }

    fn control_to_mobiles(&self, key: &FeedKey, frame: &Bytes) {
        if let Some(feed) = self.feeds.get(key) {
            for id in &feed.mobiles {
                if let Some(m) = self.mobiles.get(id) {
                    m.out.push(frame.clone());
                }
            }
        }
    }
}

fn feed_len(hub: &Hub, key: &FeedKey) -> usize {
    hub.feeds.get(key).map_or(0, |f| f.mobiles.len())
}

/// Serves on `listener` until the future is dropped (TLS if configured).
pub async fn serve(listener: tokio::net::TcpListener, config: RelayConfig) -> std::io::Result<()> {
    let tls = config.tls.clone();
    let relay = Arc::new(Relay {
        config,
        hub: Mutex::new(Hub::default()),
    });
    let app = Router::new()
        .route("/", get(upgrade))
        .route("/v3", get(upgrade))
        .with_state(relay);
    match tls {
        None => axum::serve(listener, app).await,
        Some(cfg) => axum::serve(TlsListener::new(listener, cfg), app).await,
    }
}

/// A TCP listener that hands axum only connections whose TLS handshake
/// finished. Handshakes run in their own tasks (bounded in time), so a
/// slow or silent client delays nobody else.
struct TlsListener {
    rx: tokio::sync::mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        SocketAddr,
    )>,
    local: SocketAddr,
    _accept: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    fn new(tcp: tokio::net::TcpListener, cfg: Arc<tokio_rustls::rustls::ServerConfig>) -> Self {
        let local = tcp
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let accept = tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let hs = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
                    match hs.await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Self {
            rx,
            local,
            _accept: accept,
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept task never ends on its own; if it did, stop here.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Runs a relay on its own runtime until SIGTERM or SIGINT.
pub fn run(addr: SocketAddr, config: RelayConfig) -> Result<(), String> {
    if config.tokens.is_empty() {
        return Err("a relay needs at least one --token".into());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        tracing::info!(%local, tls = config.tls.is_some(), "relay listening");
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
        let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
        tokio::select! {
            r = serve(listener, config) => r.map_err(|e| e.to_string()),
            _ = term.recv() => Ok(()),
            _ = int.recv() => Ok(()),
        }
    })
}

#[derive(serde::Deserialize)]
struct AuthQuery {
    token: Option<String>,
}

async fn upgrade(
    ws: WebSocketUpgrade,
    Query(q): Query<AuthQuery>,
    State(relay): State<Arc<Relay>>,
) -> Response {
    ws.max_message_size(remote::MAX_MESSAGE_LEN)
        .on_upgrade(move |socket| link(socket, relay, q.token))
}

/// What a link is, once its first messages said so.
enum Kind {
    Mobile,
    /// An agent link that has not yet said whether it is a control link.
    Agent,
    Control,
    /// A feed link that sent `session_attach`, waiting for `cap.ack`.
    FeedPending(String),
    Feed(FeedKey),
}

struct Link {
    id: u64,
    token: String,
    machine_id: String,
    machine_name: String,
    kind: Kind,
    out: Arc<Outbox>,
}

async fn link(socket: WebSocket, relay: Arc<Relay>, query_token: Option<String>) {
    let (mut sink, mut stream) = socket.split();
    let out = Arc::new(Outbox::new(relay.config.queue_bytes));
    let writer = {
        let out = out.clone();
        tokio::spawn(async move {
            while let Some(f) = out.pop().await {
                if sink.send(Message::Binary(f)).await.is_err() {
                    out.close();
                    return;
                }
            }
            let _ = sink.send(Message::Close(None)).await;
        })
    };
    let hello = match handshake(&relay, &mut stream, &out, query_token).await {
        Some(h) => h,
        None => {
            out.finish();
            drain(writer).await;
            return;
        }
    };
    let mut l = {
        let mut hub = relay.hub();
        let id = hub.id();
        let kind = match hello.role {
            Role::Mobile => {
                hub.mobiles.insert(
                    id,
                    MobileEntry {
                        token: hello.token.clone().unwrap_or_default(),
                        out: out.clone(),
                        grid: false,
                        max: (None, None),
                        attached: None,
                    },
                );
                Kind::Mobile
            }
            Role::Agent => Kind::Agent,
        };
        Link {
            id,
            token: hello.token.clone().unwrap_or_default(),
            machine_id: hello.machine_id.clone().unwrap_or_default(),
            machine_name: hello.machine_name.clone().unwrap_or_default(),
            kind,
            out: out.clone(),
        }
    };
    out.push(json(AppMessage::HelloAck(HelloAck {
        protocol_version: remote::PROTOCOL_VERSION,
        connection_id: Some(l.id.to_string()),
        ping_interval_ms: Some(relay.config.ping_interval.as_millis().min(u32::MAX as u128) as u32),
    })));
    if matches!(l.kind, Kind::Mobile) {
        let list = relay.hub().machine_list(&l.token);
        out.push(list);
    }

    let interval = relay.config.ping_interval;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_seen = tokio::time::Instant::now();
    loop {
        if out.is_closed() {
            break;
        }
        tokio::select! {
            _ = ticker.tick() => {
                if last_seen.elapsed() >= interval * 3 {
                    tracing::info!(link = l.id, "link silent for three ping intervals; closing");
                    break;
                }
                let ts = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0);
                out.push(json(AppMessage::Ping(Ping { ts })));
            }
            msg = stream.next() => {
                let Some(Ok(msg)) = msg else { break };
                last_seen = tokio::time::Instant::now();
                match msg {
                    Message::Binary(b) => on_frame(&relay, &mut l, b),
                    Message::Text(_) => out.push(protocol_error(Reason::UnexpectedFrame)),
                    Message::Close(_) => break,
                    Message::Ping(_) | Message::Pong(_) => {}
                }
            }
        }
    }
    disconnect(&relay, &l);
    out.finish();
    drain(writer).await;
}

/// Lets the writer send what is queued, but not forever: a peer that
/// stopped reading must not hold the task.
async fn drain(mut writer: tokio::task::JoinHandle<()>) {
    if tokio::time::timeout(Duration::from_secs(5), &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
}

/// Reads `hello`, checks the token and the version. `None` closes the link
/// (the refusal is already queued).
async fn handshake(
    relay: &Relay,
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
    out: &Outbox,
    query_token: Option<String>,
) -> Option<Hello> {
    let first = tokio::time::timeout(relay.config.hello_timeout, async {
        loop {
            match stream.next().await {
                Some(Ok(Message::Binary(b))) => return Some(b),
                // Not a frame at all (§1), so not a hello either.
                Some(Ok(Message::Text(_))) => return Some(Bytes::from_static(&[0x00])),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                _ => return None,
            }
        }
    })
    .await
    .ok()??;
    let mut hello = match Frame::decode(&first) {
        Ok(Frame::AppJson(AppMessage::Hello(h))) => h,
        Ok(_) => {
            out.push(protocol_error(Reason::UnexpectedFrame));
            return None;
        }
        Err(e) => {
            out.push(protocol_error(e.reason()));
            return None;
        }
    };
    let token = hello.token.clone().or(query_token).unwrap_or_default();
    if !relay.config.tokens.iter().any(|t| token_eq(t, &token)) {
        out.push(error("unauthorized", "unknown token"));
        return None;
    }
    hello.token = Some(token);
    let mut offered = vec![hello.protocol_version];
    offered.extend(hello.supported_versions.iter().flatten().copied());
    if !offered.iter().any(|v| VERSIONS.contains(v)) {
        out.push(json(AppMessage::ProtocolMismatch(ProtocolMismatch {
            supported: VERSIONS.to_vec(),
            received: hello.protocol_version,
        })));
        out.push(protocol_error(Reason::UnsupportedVersion));
        return None;
    }
    if hello.role == Role::Agent && hello.machine_id.as_deref().unwrap_or("").is_empty() {
        out.push(error("bad_request", "an agent's hello needs a machineId"));
        return None;
    }
    Some(hello)
}

fn on_frame(relay: &Relay, l: &mut Link, msg: Bytes) {
    let op = match remote::split(&msg) {
        Ok((op, _)) => op,
        Err(e) => {
            l.out.push(protocol_error(e.reason()));
            return;
        }
    };
    // PTY_DATA is forwarded untouched, without decoding or copying.
    if op == Opcode::PtyData {
        match &l.kind {
            Kind::Feed(key) if !key.3 => relay.hub().fan_out(key, &msg),
            _ => l.out.push(protocol_error(Reason::UnexpectedFrame)),
        }
        return;
    }
    let frame = match Frame::decode(&msg) {
        Ok(f) => f,
        Err(e) => {
            l.out.push(protocol_error(e.reason()));
            return;
        }
    };
    match frame {
        Frame::ProtocolError(r) => {
            tracing::debug!(link = l.id, reason = %r, "peer refused a frame");
        }
        Frame::AppJson(AppMessage::Ping(p)) => {
            l.out.push(json(AppMessage::Pong(Pong { ts: p.ts })));
        }
        Frame::AppJson(AppMessage::Pong(_)) => {}
        frame => match l.kind {
            Kind::Mobile => on_mobile(relay, l, frame),
            _ => on_agent(relay, l, frame, msg),
        },
    }
}

fn on_mobile(relay: &Relay, l: &Link, frame: Frame) {
    let mut hub = relay.hub();
    let attached = hub.mobiles.get(&l.id).and_then(|m| m.attached.clone());
    let feed_link = attached
        .as_ref()
        .and_then(|k| hub.feeds.get(k))
        .and_then(|f| f.link.as_ref().map(|(_, o)| o.clone()));
    match frame {
        Frame::AppJson(AppMessage::CapReq(c)) => {
            if let Some(m) = hub.mobiles.get_mut(&l.id) {
                m.grid = c.grid;
                m.max = (c.max_cols, c.max_rows);
            }
            if let Some(k) = attached {
                if k.3 != c.grid {
                    hub.attach_mobile(l.id, k.1, k.2);
                }
            }
        }
        Frame::AppJson(AppMessage::SessionAttach(a)) => {
            hub.attach_mobile(l.id, a.machine_id, a.session_id)
        }
        Frame::AppJson(AppMessage::SnapshotReq(r)) => {
            let grid = attached
                .as_ref()
                .filter(|k| k.2 == r.session_id)
                .and_then(|k| hub.feeds.get(k))
                .and_then(|f| f.grid.as_ref().map(|(g, s)| snapshot_frame(g, *s)));
            match (grid, feed_link) {
                (Some(s), _) => l.out.push_resync(s),
                (None, Some(link)) => link.push(json(AppMessage::SnapshotReq(r))),
                (None, None) => l
                    .out
                    .push(error("unavailable", "not attached to a live feed")),
            }
        }
        Frame::AppJson(AppMessage::Input(i)) => match attached {
            Some(k) if k.2 == i.session_id => {
                to_agent(&mut hub, l, &k, feed_link, json(AppMessage::Input(i)))
            }
            Some(_) => l.out.push(error(
                "bad_request",
                "input names a session this link is not attached to",
            )),
            None => l
                .out
                .push(error("unavailable", "not attached to a session")),
        },
        Frame::Resize { cols, rows } => match attached {
            Some(k) => to_agent(
                &mut hub,
                l,
                &k,
                feed_link,
                enc(&Frame::Resize { cols, rows }),
            ),
            None => l
                .out
                .push(error("unavailable", "not attached to a session")),
        },
        _ => l.out.push(protocol_error(Reason::UnexpectedFrame)),
    }
}

/// Sends a mobile's input or RESIZE to the feed's agent, or holds it
/// until the feed link is up.
fn to_agent(hub: &mut Hub, l: &Link, key: &FeedKey, link: Option<Arc<Outbox>>, frame: Bytes) {
    if let Some(link) = link {
        link.push(frame);
        return;
    }
    match hub.feeds.get_mut(key) {
        Some(feed) if feed.pending.len() < MAX_PENDING => feed.pending.push(frame),
        _ => l
            .out
            .push(error("unavailable", "the session's feed is not up")),
    }
}

fn on_agent(relay: &Relay, l: &mut Link, frame: Frame, raw: Bytes) {
    let mut hub = relay.hub();
    let machine = (l.token.clone(), l.machine_id.clone());
    match (&l.kind, frame) {
        (Kind::Agent | Kind::Control, Frame::AppJson(AppMessage::MachineList(list))) => {
            let sessions = list
                .machines
                .into_iter()
                .find(|m| m.id == l.machine_id)
                .map(|m| m.sessions)
                .unwrap_or_default();
            let first = matches!(l.kind, Kind::Agent);
            l.kind = Kind::Control;
            let entry = hub
                .machines
                .entry(machine.clone())
                .or_insert_with(|| MachineEntry {
                    name: l.machine_name.clone(),
                    online: false,
                    control: None,
                    sessions: Vec::new(),
                });
            entry.name = l.machine_name.clone();
            // First paints of sessions that ended are of no more use.
            hub.first_paint.retain(|(t, m, id), _| {
                !(t == &machine.0 && m == &machine.1) || sessions.iter().any(|s| &s.id == id)
            });
            let entry = hub.machines.get_mut(&machine).expect("inserted just above");
            entry.sessions = sessions;
            let was_online = entry.online;
            if first {
                if let Some((_, old)) = entry.control.replace((l.id, l.out.clone())) {
                    old.close();
                }
                entry.online = true;
            }
            if first && !was_online {
                let status = json(AppMessage::ConnectionStatus(ConnectionStatus {
                    machine_id: l.machine_id.clone(),
                    status: LinkStatus::Connected,
                }));
                hub.tell_mobiles(&l.token, &status);
            }
            hub.machines_changed(&l.token);
            if first {
                // Mobiles that were watching this machine before its link
                // dropped get their feeds back.
                let waiting: Vec<(FeedKey, MaxSize)> = hub
                    .feeds
                    .iter()
                    .filter(|(k, f)| k.0 == machine.0 && k.1 == machine.1 && f.link.is_none())
                    .map(|(k, f)| {
                        let max = f
                            .mobiles
                            .first()
                            .and_then(|m| hub.mobiles.get(m))
                            .map_or((None, None), |m| m.max);
                        (k.clone(), max)
                    })
                    .collect();
                for (k, max) in waiting {
                    hub.request_feed(&k, max);
                }
            }
        }
        (Kind::Control, Frame::AppJson(AppMessage::PtyStatus(p))) => {
            let frame = json(AppMessage::PtyStatus(p.clone()));
            for grid in [false, true] {
                let key = (
                    machine.0.clone(),
                    machine.1.clone(),
                    p.session_id.clone(),
                    grid,
                );
                hub.control_to_mobiles(&key, &frame);
            }
        }
        (Kind::Agent, Frame::AppJson(AppMessage::SessionAttach(a))) => {
            if a.machine_id != l.machine_id {
                l.out
                    .push(error("bad_request", "session_attach names another machine"));
                return;
            }
            l.kind = Kind::FeedPending(a.session_id);
        }
        (Kind::FeedPending(session), Frame::AppJson(AppMessage::CapAck(ack))) => {
            let key: FeedKey = (machine.0, machine.1, session.clone(), ack.grid);
            let Some(feed) = hub.feeds.get_mut(&key) else {
                // Nobody watches it any more.
                l.out.close();
                return;
            };
            if let Some((_, old)) = feed.link.replace((l.id, l.out.clone())) {
                old.close();
            }
            feed.cap_ack = Some(raw.clone());
            feed.grid = None;
            feed.resync_asked = false;
            for f in feed.pending.drain(..) {
                l.out.push(f);
            }
            hub.control_to_mobiles(&key, &raw);
            l.kind = Kind::Feed(key);
        }
        (Kind::Feed(key), frame) => on_feed(&mut hub, l, key.clone(), frame, raw),
        _ => l.out.push(protocol_error(Reason::UnexpectedFrame)),
    }
}

fn on_feed(hub: &mut Hub, l: &Link, key: FeedKey, frame: Frame, raw: Bytes) {
    match frame {
        Frame::GridSnapshot(s) if key.3 => {
            if let Some(feed) = hub.feeds.get_mut(&key) {
                feed.grid = Some((s.grid, s.seq));
            }
            hub.fan_out(&key, &raw);
        }
        Frame::GridDiff(d) if key.3 => {
            let Some(feed) = hub.feeds.get_mut(&key) else {
                return;
            };
            let ok = match &mut feed.grid {
                Some((g, seq)) if d.seq == seq.wrapping_add(1) => {
                    *seq = d.seq;
                    remote::apply(g, &d.ops).is_ok()
                }
                _ => false,
            };
            if ok {
                hub.fan_out(&key, &raw);
            } else {
                // Lost track: get a snapshot; mobiles receive it in turn.
                feed.grid = None;
                l.out.push(json(AppMessage::SnapshotReq(SnapshotReq {
                    session_id: key.2.clone(),
                    last_seq: Some(d.seq),
                })));
            }
        }
        Frame::FrameSnapshot { ref id, .. } if *id == key.2 => {
            hub.first_paint
                .insert((key.0.clone(), key.1.clone(), key.2.clone()), raw.clone());
            if !key.3 {
                if let Some(feed) = hub.feeds.get_mut(&key) {
                    feed.resync_asked = false;
                }
                for id in hub
                    .feeds
                    .get(&key)
                    .map(|f| f.mobiles.clone())
                    .unwrap_or_default()
                {
                    if let Some(m) = hub.mobiles.get(&id) {
                        m.out.push_resync(raw.clone());
                    }
                }
            }
        }
        Frame::AppJson(
            AppMessage::GridResizeCapped(_)
            | AppMessage::PtyStatus(_)
            | AppMessage::SessionReplay(_)
            | AppMessage::TerminalData(_)
            | AppMessage::ClaudeState(_)
            | AppMessage::CapAck(_)
            | AppMessage::Error(_),
        ) => hub.control_to_mobiles(&key, &raw),
        _ => l.out.push(protocol_error(Reason::UnexpectedFrame)),
    }
}

fn disconnect(relay: &Relay, l: &Link) {
    let mut hub = relay.hub();
    match &l.kind {
        Kind::Mobile => {
            hub.detach_mobile(l.id);
            hub.mobiles.remove(&l.id);
        }
        Kind::Control => {
            let key = (l.token.clone(), l.machine_id.clone());
            let mine = hub
                .machines
                .get(&key)
                .and_then(|m| m.control.as_ref())
                .is_some_and(|(id, _)| *id == l.id);
            if mine {
                if let Some(m) = hub.machines.get_mut(&key) {
                    m.online = false;
                    m.control = None;
                }
                let status = json(AppMessage::ConnectionStatus(ConnectionStatus {
                    machine_id: l.machine_id.clone(),
                    status: LinkStatus::Disconnected,
                }));
                hub.tell_mobiles(&l.token, &status);
                hub.machines_changed(&l.token);
            }
        }
        Kind::Feed(key) => {
            let machine = (key.0.clone(), key.1.clone());
            let mut rerequest = None;
            if let Some(feed) = hub.feeds.get_mut(key) {
                if feed.link.as_ref().is_some_and(|(id, _)| *id == l.id) {
                    feed.link = None;
                    feed.grid = None;
                    feed.cap_ack = None;
                    if !feed.mobiles.is_empty() {
                        rerequest = feed.mobiles.first().copied();
                    }
                }
            }
            if let Some(first) = rerequest {
                let online = hub.machines.get(&machine).is_some_and(|m| m.online);
                if online {
                    let max = hub.mobiles.get(&first).map_or((None, None), |m| m.max);
                    hub.request_feed(key, max);
                }
            }
        }
        Kind::Agent | Kind::FeedPending(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub_with_grid_feed(cap: usize) -> (Hub, FeedKey, Arc<Outbox>) {
        let mut hub = Hub::default();
        let out = Arc::new(Outbox::new(cap));
        hub.mobiles.insert(
            1,
            MobileEntry {
                token: "t".into(),
                out: out.clone(),
                grid: true,
                max: (None, None),
                attached: None,
            },
        );
        let key: FeedKey = ("t".into(), "m".into(), "s".into(), true);
        let mut grid = Grid::new(20, 3);
        grid.cells[0].text = "x".into();
        hub.feeds.insert(
            key.clone(),
            Feed {
                grid: Some((grid, 7)),
                mobiles: vec![1],
                ..Feed::default()
            },
        );
        hub.mobiles.get_mut(&1).unwrap().attached = Some(key.clone());
        (hub, key, out)
    }

    #[test]
    fn a_slow_mobile_gets_one_snapshot_instead_of_a_growing_queue() {
        let (mut hub, key, out) = hub_with_grid_feed(300);
        let diff = Bytes::from(vec![0x05; 100]);
        for _ in 0..50 {
            hub.fan_out(&key, &diff);
        }
        let queued = out.queued();
        let total: usize = queued.iter().map(|f| f.len()).sum();
        assert!(total <= 300 + 200, "queue grew to {total} bytes");
        let snapshots: Vec<GridSnapshot> = queued
            .iter()
            .filter_map(|f| match Frame::decode(f) {
                Ok(Frame::GridSnapshot(s)) => Some(s),
                _ => None,
            })
            .collect();
        assert!(!snapshots.is_empty(), "no resync snapshot was queued");
        let last = snapshots.last().unwrap();
        assert_eq!(last.seq, 7);
        assert_eq!(last.grid.cells[0].text, "x");
        // After the snapshot, only frames newer than it follow.
        let pos = queued
            .iter()
            .rposition(|f| f[0] == Opcode::GridSnapshot as u8)
            .unwrap();
        assert!(queued[pos + 1..].iter().all(|f| *f == diff));
    }

    #[test]
    fn leaving_the_last_mobile_closes_the_feed_link() {
        let (mut hub, key, _out) = hub_with_grid_feed(1 << 20);
        let link = Arc::new(Outbox::new(1 << 20));
        hub.feeds.get_mut(&key).unwrap().link = Some((9, link.clone()));
        hub.detach_mobile(1);
        assert!(link.is_closed());
        assert!(!hub.feeds.contains_key(&key));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(token_eq("secret", "secret"));
        assert!(!token_eq("secret", "secreT"));
        assert!(!token_eq("secret", "secret2"));
        assert!(!token_eq("", "x"));
        assert!(token_eq("", ""));
    }
}
