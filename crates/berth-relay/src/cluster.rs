//! Clustering over NATS (`berth relay --cluster nats://HOST:4222`): several
//! relay instances share routing, so an agent on one and a mobile on
//! another see each other (issue 14).
//!
//! Subjects, under a prefix (default `berth.relay`):
//! - `<prefix>.presence`: every instance publishes, once per heartbeat and
//!   at once when they change, the machines connected to it (namespace
//!   digest, id, name, sessions) as JSON. An instance not heard from for
//!   the expiry drops out with its machines; one that stops cleanly says
//!   `bye`.
//! - `<prefix>.to.<relay id>`: messages for one instance: `attach` (watch
//!   this feed for my mobiles), `up` (a mobile's frame for the agent),
//!   `down` (a feed frame for the watcher), `detach`. Binary: one kind
//!   byte, a big-endian u16 header length, the JSON header (sender and
//!   [`RouteKey`]), then the remote-protocol frame untouched.
//!
//! The instance holding an agent's link treats another instance watching
//! a feed like one more mobile (same bounded queue, same resync by
//! snapshot); the watching instance keeps its own copy of the feed (grid,
//! first paint, cap.ack) like for a local agent, so its mobiles attach and
//! resync without a round trip. Each feed crosses the cluster once per
//! watching instance, in order (one publisher, one subscription). Tokens
//! never travel: only [`Namespace`] digests, and an instance accepts
//! attachments only in namespaces of its own tokens.
//!
//! When NATS is unreachable, the instance forgets the others and routes
//! between its own links (logged once); the client reconnects by itself
//! and presence rebuilds the shared view.

use crate::hub::{Hub, MaxSize, Outgoing, RelayId, LIST_WINDOW};
use crate::key::{MachineKey, Namespace, RouteKey};
use crate::link;
use crate::outbox::Outbox;
use crate::server::Relay;
use async_nats::{Client, ConnectOptions, Event};
use berth_wire::remote::{Frame, SessionInfo};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How a relay joins its cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// NATS server URL(s), comma separated (`nats://HOST:4222`).
    pub url: String,
    /// NATS credentials file (JWT + NKey seed), if the server wants one.
    pub creds: Option<PathBuf>,
    /// Subject prefix, so several clusters can share one NATS.
    pub prefix: String,
    /// How often presence is published.
    pub heartbeat: Duration,
    /// An instance unheard for this long is dropped with its machines.
    pub expiry: Duration,
}

impl ClusterConfig {
    /// Defaults: prefix `berth.relay`, presence every second, expiry 3 s.
    pub fn new(url: String) -> Self {
        Self {
            url,
            creds: None,
            prefix: "berth.relay".into(),
            heartbeat: Duration::from_secs(1),
            expiry: Duration::from_secs(3),
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct PresenceMachine {
    ns: Namespace,
    id: String,
    name: String,
    sessions: Vec<SessionInfo>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Presence {
    relay: RelayId,
    #[serde(default)]
    bye: bool,
    machines: Vec<PresenceMachine>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    from: RelayId,
    key: RouteKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max: Option<MaxSize>,
}

const ATTACH: u8 = b'A';
const UP: u8 = b'U';
const DOWN: u8 = b'D';
const DETACH: u8 = b'X';

fn encode(kind: u8, header: &Header, frame: &[u8]) -> Bytes {
    let h = serde_json::to_vec(header).unwrap_or_default();
    let mut b = BytesMut::with_capacity(3 + h.len() + frame.len());
    b.put_u8(kind);
    b.put_u16(h.len() as u16);
    b.put_slice(&h);
    b.put_slice(frame);
    b.freeze()
}

fn decode(payload: &Bytes) -> Option<(u8, Header, Bytes)> {
    if payload.len() < 3 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([payload[1], payload[2]]));
    let header = serde_json::from_slice(payload.get(3..3 + len)?).ok()?;
    Some((payload[0], header, payload.slice(3 + len..)))
}

/// A random id for this instance (16 hex digits).
pub(crate) fn new_relay_id() -> RelayId {
    let mut b = [0u8; 8];
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        b = (t ^ u64::from(std::process::id())).to_be_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A relay's membership of its cluster.
pub(crate) struct Cluster {
    client: Client,
    id: RelayId,
    prefix: String,
}

impl Cluster {
    fn inbox(&self, relay: &str) -> String {
        format!("{}.to.{relay}", self.prefix)
    }

    fn presence_subject(&self) -> String {
        format!("{}.presence", self.prefix)
    }

    /// Tells the others this instance is leaving (a clean stop), so they
    /// need not wait for the expiry.
    pub(crate) async fn leave(&self) {
        let bye = Presence {
            relay: self.id.clone(),
            bye: true,
            machines: Vec::new(),
        };
        let body = serde_json::to_vec(&bye).unwrap_or_default();
        let _ = self
            .client
            .publish(self.presence_subject(), body.into())
            .await;
        let _ = tokio::time::timeout(Duration::from_secs(1), self.client.flush()).await;
    }
}

/// Connects to NATS (retrying in the background if it is not up yet) and
/// starts sharing `relay`'s routing. Errors: a credentials file that
/// cannot be read, a URL that cannot be parsed.
pub(crate) async fn start(relay: Arc<Relay>, cfg: &ClusterConfig) -> Result<Arc<Cluster>, String> {
    let id = new_relay_id();
    let (events_tx, events) = tokio::sync::mpsc::unbounded_channel();
    let mut opts = ConnectOptions::new()
        .name(format!("berth-relay {id}"))
        .retry_on_initial_connect()
        .max_reconnects(None)
        .event_callback(move |e| {
            let tx = events_tx.clone();
            async move {
                let _ = tx.send(e);
            }
        });
    if let Some(creds) = &cfg.creds {
        opts = opts
            .credentials_file(creds)
            .await
            .map_err(|e| format!("--cluster-creds {}: {e}", creds.display()))?;
    }
    let mut servers = Vec::new();
    for u in cfg.url.split(',').map(str::trim).filter(|u| !u.is_empty()) {
        let addr: async_nats::ServerAddr =
            u.parse().map_err(|e| format!("--cluster {u:?}: {e}"))?;
        servers.push(addr);
    }
    if servers.is_empty() {
        return Err("--cluster needs a NATS URL (nats://HOST:4222)".into());
    }
    let client = opts
        .connect(servers)
        .await
        .map_err(|e| format!("--cluster {}: {e}", cfg.url))?;
    let cluster = Arc::new(Cluster {
        client,
        id,
        prefix: cfg.prefix.clone(),
    });
    let presence = cluster
        .client
        .subscribe(cluster.presence_subject())
        .await
        .map_err(|e| format!("--cluster {}: subscribe: {e}", cfg.url))?;
    let inbox = cluster
        .client
        .subscribe(cluster.inbox(&cluster.id))
        .await
        .map_err(|e| format!("--cluster {}: subscribe: {e}", cfg.url))?;
    let queue = Arc::new(crate::hub::ClusterQueue::default());
    relay.hub().cluster = Some(queue.clone());
    tracing::info!(relay = %cluster.id, nats = %cfg.url, "relay joins its cluster");
    let namespaces: Vec<Namespace> = relay
        .config
        .tokens
        .iter()
        .map(|t| Namespace::of_token(t))
        .collect();
    let task = Task {
        relay,
        cluster: cluster.clone(),
        namespaces,
        heartbeat: cfg.heartbeat,
        expiry: cfg.expiry,
        seen: HashMap::new(),
        presence_due: false,
        last_presence: Instant::now(),
        lost: false,
        connected: cluster.client.connection_state() == async_nats::connection::State::Connected,
    };
    tokio::spawn(task.run(queue, presence, inbox, events));
    Ok(cluster)
}

struct Task {
    relay: Arc<Relay>,
    cluster: Arc<Cluster>,
    namespaces: Vec<Namespace>,
    heartbeat: Duration,
    expiry: Duration,
    /// When each other instance was last heard from.
    seen: HashMap<RelayId, Instant>,
    /// A change to announce once the presence window ends.
    presence_due: bool,
    last_presence: Instant,
    /// NATS was lost since the last connection (for the log).
    lost: bool,
    connected: bool,
}

impl Task {
    async fn run(
        mut self,
        queue: Arc<crate::hub::ClusterQueue>,
        mut presence: async_nats::Subscriber,
        mut inbox: async_nats::Subscriber,
        mut events: tokio::sync::mpsc::UnboundedReceiver<Event>,
    ) {
        let mut tick = tokio::time::interval(self.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut window = tokio::time::interval(LIST_WINDOW);
        window.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    self.publish_presence().await;
                    self.expire();
                }
                _ = window.tick(), if self.presence_due => {
                    self.publish_presence().await;
                }
                out = queue.take() => {
                    for m in out {
                        self.send(m).await;
                    }
                }
                Some(m) = presence.next() => self.on_presence(&m.payload),
                Some(m) = inbox.next() => self.on_message(&m.payload),
                Some(e) = events.recv() => self.on_event(e).await,
            }
        }
    }

    async fn publish(&self, subject: String, body: Bytes) {
        if !self.connected {
            return;
        }
        if let Err(e) = self.cluster.client.publish(subject, body).await {
            tracing::debug!("cluster publish failed: {e}");
        }
    }

    /// Announces the machines here at once, unless an announcement went
    /// out less than a window ago: then at the window's end, so a storm of
    /// reconnecting agents costs a few messages, not one per agent.
    async fn presence_changed(&mut self) {
        if self.last_presence.elapsed() >= LIST_WINDOW {
            self.publish_presence().await;
        } else {
            self.presence_due = true;
        }
    }

    async fn publish_presence(&mut self) {
        self.presence_due = false;
        self.last_presence = Instant::now();
        let machines = self
            .relay
            .hub()
            .local_presence()
            .into_iter()
            .map(|(k, name, sessions)| PresenceMachine {
                ns: k.ns,
                id: k.machine,
                name,
                sessions,
            })
            .collect();
        let p = Presence {
            relay: self.cluster.id.clone(),
            bye: false,
            machines,
        };
        let body = serde_json::to_vec(&p).unwrap_or_default();
        self.publish(self.cluster.presence_subject(), body.into())
            .await;
    }

    fn expire(&mut self) {
        let now = Instant::now();
        let gone: Vec<RelayId> = self
            .seen
            .iter()
            .filter(|(_, t)| now.duration_since(**t) > self.expiry)
            .map(|(r, _)| r.clone())
            .collect();
        for r in gone {
            self.seen.remove(&r);
            tracing::info!(relay = %r, "cluster: relay instance silent; dropping its machines");
            self.relay.hub().drop_relay(&r);
        }
    }

    async fn send(&mut self, m: Outgoing) {
        let me = self.cluster.id.clone();
        let (to, body) = match m {
            Outgoing::PresenceChanged => return self.presence_changed().await,
            Outgoing::Attach { to, key, max } => {
                let h = Header {
                    from: me,
                    key,
                    max: Some(max),
                };
                (to, encode(ATTACH, &h, &[]))
            }
            Outgoing::Up { to, key, frame } => {
                let h = Header {
                    from: me,
                    key,
                    max: None,
                };
                (to, encode(UP, &h, &frame))
            }
            Outgoing::Detach { to, key } => {
                let h = Header {
                    from: me,
                    key,
                    max: None,
                };
                (to, encode(DETACH, &h, &[]))
            }
        };
        self.publish(self.cluster.inbox(&to), body).await;
    }

    fn on_presence(&mut self, payload: &Bytes) {
        let Ok(p) = serde_json::from_slice::<Presence>(payload) else {
            tracing::debug!("cluster: unreadable presence message");
            return;
        };
        if p.relay == self.cluster.id {
            return;
        }
        let mut hub = self.relay.hub();
        if p.bye {
            self.seen.remove(&p.relay);
            tracing::info!(relay = %p.relay, "cluster: relay instance left");
            hub.drop_relay(&p.relay);
            return;
        }
        if self.seen.insert(p.relay.clone(), Instant::now()).is_none() {
            tracing::info!(relay = %p.relay, machines = p.machines.len(), "cluster: relay instance joined");
        }
        let machines = p
            .machines
            .into_iter()
            .filter(|m| self.namespaces.contains(&m.ns))
            .map(|m| {
                (
                    MachineKey {
                        ns: m.ns,
                        machine: m.id,
                    },
                    m.name,
                    m.sessions,
                )
            })
            .collect();
        hub.set_presence(&p.relay, machines);
    }

    fn on_message(&self, payload: &Bytes) {
        let Some((kind, h, frame)) = decode(payload) else {
            tracing::debug!("cluster: unreadable message");
            return;
        };
        if !self.namespaces.contains(&h.key.ns) {
            // Not a namespace of this relay's tokens: nobody here may see it.
            return;
        }
        let mut hub = self.relay.hub();
        match kind {
            ATTACH => self.on_attach(&mut hub, &h),
            UP => {
                let Some((id, out)) = hub.watcher(&h.from, &h.key) else {
                    return;
                };
                match Frame::decode(&frame) {
                    Ok(f) => link::on_mobile(&mut hub, id, &out, f),
                    Err(e) => tracing::debug!("cluster: bad frame from {}: {e}", h.from),
                }
            }
            DOWN => {
                if !hub.fed_by(&h.key, &h.from) {
                    return;
                }
                let Ok(f) = Frame::decode(&frame) else {
                    return;
                };
                let queue = hub.cluster.clone();
                let (from, key) = (h.from.clone(), h.key.clone());
                link::on_feed(&mut hub, &h.key, f, frame, move |up| {
                    if let Some(q) = queue {
                        q.push(Outgoing::Up {
                            to: from,
                            key,
                            frame: up,
                        });
                    }
                });
            }
            DETACH => hub.remote_detach(&h.from, &h.key),
            _ => tracing::debug!(kind, "cluster: unknown message kind"),
        }
    }

    fn on_attach(&self, hub: &mut Hub, h: &Header) {
        if !hub.is_local(&h.key.machine_key()) {
            tracing::debug!(from = %h.from, machine = %h.key.machine, "cluster: attach for a machine not connected here");
            return;
        }
        let cap = self.relay.config.queue_bytes;
        let mut created = None;
        hub.remote_attach(&h.from, &h.key, h.max.unwrap_or((None, None)), || {
            let out = Arc::new(Outbox::new(cap));
            created = Some(out.clone());
            out
        });
        let Some(out) = created else { return };
        // The watcher's frames go to its relay, in order, until detached.
        let (cluster, to, key) = (self.cluster.clone(), h.from.clone(), h.key.clone());
        tokio::spawn(async move {
            let subject = cluster.inbox(&to);
            let header = Header {
                from: cluster.id.clone(),
                key,
                max: None,
            };
            while let Some(f) = out.pop().await {
                let body = encode(DOWN, &header, &f);
                if let Err(e) = cluster.client.publish(subject.clone(), body).await {
                    tracing::debug!("cluster publish failed: {e}");
                }
            }
        });
    }

    async fn on_event(&mut self, e: Event) {
        match e {
            Event::Disconnected => {
                if self.connected || !self.lost {
                    tracing::warn!(
                        "cluster: NATS unreachable; routing only between links on this relay until it is back"
                    );
                }
                self.lost = true;
                self.connected = false;
                self.seen.clear();
                self.relay.hub().drop_all_remote();
            }
            Event::Connected => {
                if self.lost {
                    tracing::warn!("cluster: NATS reachable again; sharing routes");
                } else {
                    tracing::info!("cluster: NATS connected; sharing routes");
                }
                self.lost = false;
                self.connected = true;
                self.publish_presence().await;
            }
            other => tracing::debug!("cluster: NATS {other}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_carry_no_token() {
        let key = RouteKey {
            ns: Namespace::of_token("secret-token"),
            machine: "m".into(),
            session: "s".into(),
            grid: true,
        };
        let h = Header {
            from: "r1".into(),
            key: key.clone(),
            max: Some((Some(80), None)),
        };
        let b = encode(ATTACH, &h, b"frame");
        assert!(!b.windows(12).any(|w| w == b"secret-token"));
        let (kind, back, frame) = decode(&b).unwrap();
        assert_eq!(kind, ATTACH);
        assert_eq!(back.key, key);
        assert_eq!(back.max, Some((Some(80), None)));
        assert_eq!(&frame[..], b"frame");
        assert!(decode(&Bytes::from_static(b"A\xff\xff{}")).is_none());
    }

    #[test]
    fn relay_ids_differ() {
        assert_ne!(new_relay_id(), new_relay_id());
        assert_eq!(new_relay_id().len(), 16);
    }
}
