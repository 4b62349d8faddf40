//! The relay's routing state, without I/O: machines and their sessions,
//! mobiles and what they watch, feeds with their fan-out and grid copy,
//! and the first-paint cache (`docs/remote-protocol-v3.md` §10).
//!
//! Sockets and NATS live elsewhere: links reach this state through their
//! [`Outbox`]es, and a clustered relay through [`ClusterQueue`] (what to
//! tell other relay instances) and the `remote_*` / `*_presence` calls
//! (what they told this one). Everything here is unit-tested without a
//! socket.

use crate::frames::{error, json, snapshot_frame};
use crate::key::{MachineKey, Namespace, RouteKey, SessionKey};
use crate::outbox::Outbox;
use berth_wire::remote::{
    AppMessage, CapReq, ConnectionStatus, Frame, Grid, GridEncoding, GridFeatures, LinkStatus,
    Machine, MachineList, SessionAttach, SessionInfo, SnapshotReq,
};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// The largest grid a mobile said it can show (`cap.req`): columns, rows.
pub(crate) type MaxSize = (Option<u32>, Option<u32>);

/// The id of one relay instance in a cluster (random, per process).
pub(crate) type RelayId = String;

/// Where a feed's frames come from.
pub(crate) enum Upstream {
    /// A feed link of an agent connected to this relay.
    Agent { link: u64, out: Arc<Outbox> },
    /// Another relay instance, whose agent link carries the feed.
    Relay(RelayId),
}

/// A machine whose agent's control link is on this relay.
pub(crate) struct MachineEntry {
    pub(crate) name: String,
    pub(crate) online: bool,
    pub(crate) control: Option<(u64, Arc<Outbox>)>,
    pub(crate) sessions: Vec<SessionInfo>,
}

/// A machine another relay instance announced (cluster presence).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RemoteMachine {
    pub(crate) relay: RelayId,
    pub(crate) name: String,
    pub(crate) sessions: Vec<SessionInfo>,
}

/// A watcher of feeds: a mobile link, or another relay instance watching a
/// feed of this one for its own mobiles (`remote`).
pub(crate) struct MobileEntry {
    pub(crate) ns: Namespace,
    pub(crate) out: Arc<Outbox>,
    pub(crate) grid: bool,
    /// What its grid frames may carry (`grid.features`; 3.0 without it).
    /// Another relay instance of the cluster gets everything.
    pub(crate) encoding: GridEncoding,
    pub(crate) max: MaxSize,
    pub(crate) attached: Option<RouteKey>,
    pub(crate) remote: Option<RelayId>,
}

#[derive(Default)]
pub(crate) struct Feed {
    pub(crate) link: Option<Upstream>,
    pub(crate) cap_ack: Option<Bytes>,
    pub(crate) grid: Option<(Grid, u32)>,
    pub(crate) mobiles: Vec<u64>,
    pub(crate) resync_asked: bool,
    /// Input and RESIZE sent before the feed link came up, in order.
    pub(crate) pending: Vec<Bytes>,
}

/// Frames a feed holds for its agent while its link is coming up.
pub(crate) const MAX_PENDING: usize = 256;

/// What this relay asks of the rest of the cluster.
#[derive(Debug, PartialEq)]
pub(crate) enum Outgoing {
    /// Watch `key` on relay `to` for mobiles here.
    Attach {
        to: RelayId,
        key: RouteKey,
        max: MaxSize,
    },
    /// A mobile's frame (input, RESIZE, `snapshot.req`) for the agent.
    Up {
        to: RelayId,
        key: RouteKey,
        frame: Bytes,
    },
    /// No mobile here watches `key` any more.
    Detach { to: RelayId, key: RouteKey },
    /// The machines connected here changed: announce them now.
    PresenceChanged,
}

/// Messages for the cluster task, in order. Bounded: past the cap, frames
/// for agents are dropped (a mobile retypes) rather than memory growing.
#[derive(Default)]
pub(crate) struct ClusterQueue {
    q: Mutex<VecDeque<Outgoing>>,
    notify: Notify,
}

const CLUSTER_QUEUE_CAP: usize = 65_536;

impl ClusterQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Outgoing>> {
        self.q.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn push(&self, m: Outgoing) {
        let mut q = self.lock();
        if q.len() >= CLUSTER_QUEUE_CAP && matches!(m, Outgoing::Up { .. }) {
            return;
        }
        if m == Outgoing::PresenceChanged && q.back() == Some(&Outgoing::PresenceChanged) {
            return;
        }
        q.push_back(m);
        drop(q);
        self.notify.notify_one();
    }

    /// Everything queued, waiting until there is something.
    pub(crate) async fn take(&self) -> Vec<Outgoing> {
        loop {
            let notified = self.notify.notified();
            {
                let mut q = self.lock();
                if !q.is_empty() {
                    return q.drain(..).collect();
                }
            }
            notified.await;
        }
    }

    #[cfg(test)]
    pub(crate) fn drain(&self) -> Vec<Outgoing> {
        self.lock().drain(..).collect()
    }
}

/// Where a machine is reachable from this relay.
enum Location {
    Local,
    Remote(RelayId),
}

/// The routing state of one relay instance.
#[derive(Default)]
pub(crate) struct Hub {
    next_id: u64,
    pub(crate) machines: HashMap<MachineKey, MachineEntry>,
    pub(crate) remote_machines: HashMap<MachineKey, RemoteMachine>,
    pub(crate) mobiles: HashMap<u64, MobileEntry>,
    pub(crate) feeds: HashMap<RouteKey, Feed>,
    pub(crate) first_paint: HashMap<SessionKey, Bytes>,
    /// Other relays' watchers of feeds here: (relay, feed) → mobile id.
    pub(crate) watchers: HashMap<(RelayId, RouteKey), u64>,
    /// Set when clustered.
    pub(crate) cluster: Option<Arc<ClusterQueue>>,
    /// A list was sent less than a window ago: further ones wait.
    list_hold: bool,
    /// Namespaces whose list is held until the window ends.
    lists_due: Vec<Namespace>,
}

/// Machine lists to one namespace are sent at most once per this window
/// after the first (see [`Hub::machines_changed`]).
pub(crate) const LIST_WINDOW: std::time::Duration = std::time::Duration::from_millis(50);

impl Hub {
    pub(crate) fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn tell_cluster(&self, m: Outgoing) {
        if let Some(c) = &self.cluster {
            c.push(m);
        }
    }

    /// Whether the machine's agent is connected to this instance.
    pub(crate) fn is_local(&self, mk: &MachineKey) -> bool {
        self.machines.get(mk).is_some_and(|m| m.online)
    }

    fn locate(&self, mk: &MachineKey) -> Option<Location> {
        if self.machines.get(mk).is_some_and(|m| m.online) {
            return Some(Location::Local);
        }
        self.remote_machines
            .get(mk)
            .map(|r| Location::Remote(r.relay.clone()))
    }

    fn sessions_of(&self, mk: &MachineKey) -> &[SessionInfo] {
        match self.machines.get(mk).filter(|m| m.online) {
            Some(m) => &m.sessions,
            None => self
                .remote_machines
                .get(mk)
                .map_or(&[], |r| r.sessions.as_slice()),
        }
    }

    /// `machine_list` for namespace `ns`: the machines connected here and,
    /// when clustered, those other instances announced; sorted by id.
    pub(crate) fn machine_list(&self, ns: &Namespace) -> Bytes {
        let mut machines: Vec<Machine> = self
            .machines
            .iter()
            .filter(|(k, m)| &k.ns == ns && (m.online || !self.remote_machines.contains_key(k)))
            .map(|(k, m)| Machine {
                id: k.machine.clone(),
                name: m.name.clone(),
                online: m.online,
                sessions: if m.online {
                    m.sessions.clone()
                } else {
                    Vec::new()
                },
            })
            .collect();
        machines.extend(
            self.remote_machines
                .iter()
                .filter(|(k, _)| &k.ns == ns && !self.machines.get(k).is_some_and(|m| m.online))
                .map(|(k, r)| Machine {
                    id: k.machine.clone(),
                    name: r.name.clone(),
                    online: true,
                    sessions: r.sessions.clone(),
                }),
        );
        machines.sort_by(|a, b| a.id.cmp(&b.id));
        json(AppMessage::MachineList(MachineList { machines }))
    }

    /// Sends `frame` to every mobile link (not relay watchers) of `ns`.
    pub(crate) fn tell_mobiles(&self, ns: &Namespace, frame: &Bytes) {
        for m in self
            .mobiles
            .values()
            .filter(|m| &m.ns == ns && m.remote.is_none())
        {
            m.out.push(frame.clone());
        }
    }

    /// The machines of `ns` changed: its mobiles get the new list now, or,
    /// within [`LIST_WINDOW`] of the last list sent, once at the end of the
    /// window ([`Hub::flush_lists`]). A reconnect storm of many agents thus
    /// costs each mobile a few lists instead of one per agent.
    pub(crate) fn machines_changed(&mut self, ns: &Namespace) {
        if self.list_hold {
            if !self.lists_due.contains(ns) {
                self.lists_due.push(ns.clone());
            }
            return;
        }
        self.list_hold = true;
        let list = self.machine_list(ns);
        self.tell_mobiles(ns, &list);
    }

    /// The end of a list window: sends the lists held during it; a window
    /// with nothing held ends the hold. Called every [`LIST_WINDOW`].
    pub(crate) fn flush_lists(&mut self) {
        if self.lists_due.is_empty() {
            self.list_hold = false;
            return;
        }
        for ns in std::mem::take(&mut self.lists_due) {
            let list = self.machine_list(&ns);
            self.tell_mobiles(&ns, &list);
        }
    }

    /// A machine connected here came, went or changed its sessions.
    pub(crate) fn local_machines_changed(&mut self, ns: &Namespace) {
        self.machines_changed(ns);
        self.tell_cluster(Outgoing::PresenceChanged);
    }

    fn status(&self, mk: &MachineKey, status: LinkStatus) {
        let frame = json(AppMessage::ConnectionStatus(ConnectionStatus {
            machine_id: mk.machine.clone(),
            status,
        }));
        self.tell_mobiles(&mk.ns, &frame);
    }

    pub(crate) fn machine_connected(&self, mk: &MachineKey) {
        self.status(mk, LinkStatus::Connected);
    }

    pub(crate) fn machine_disconnected(&self, mk: &MachineKey) {
        self.status(mk, LinkStatus::Disconnected);
    }

    /// The machines connected here, for the cluster's presence messages.
    pub(crate) fn local_presence(&self) -> Vec<(MachineKey, String, Vec<SessionInfo>)> {
        let mut v: Vec<_> = self
            .machines
            .iter()
            .filter(|(_, m)| m.online)
            .map(|(k, m)| (k.clone(), m.name.clone(), m.sessions.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Sends a frame towards the agent of `key`'s feed; `false` if the feed
    /// has no upstream yet.
    fn push_up(&self, key: &RouteKey, frame: Bytes) -> bool {
        match self.feeds.get(key).and_then(|f| f.link.as_ref()) {
            Some(Upstream::Agent { out, .. }) => {
                out.push(frame);
                true
            }
            Some(Upstream::Relay(r)) => {
                self.tell_cluster(Outgoing::Up {
                    to: r.clone(),
                    key: key.clone(),
                    frame,
                });
                true
            }
            None => false,
        }
    }

    /// Ends an upstream nobody needs any more.
    pub(crate) fn close_upstream(&self, key: &RouteKey, up: &Upstream) {
        match up {
            Upstream::Agent { out, .. } => out.close(),
            Upstream::Relay(r) => self.tell_cluster(Outgoing::Detach {
                to: r.clone(),
                key: key.clone(),
            }),
        }
    }

    /// Asks for the feed of `key`: the machine's agent here opens a feed
    /// link, or the relay it is connected to starts sending it.
    pub(crate) fn request_feed(&mut self, key: &RouteKey, max: MaxSize) {
        match self.locate(&key.machine_key()) {
            Some(Location::Local) => {
                let Some((_, ctl)) = self
                    .machines
                    .get(&key.machine_key())
                    .and_then(|m| m.control.as_ref())
                else {
                    return;
                };
                ctl.push(json(AppMessage::CapReq(CapReq {
                    grid: key.grid,
                    max_cols: max.0,
                    max_rows: max.1,
                })));
                if key.grid {
                    // The relay takes every addition and encodes each
                    // mobile's frames for what that mobile asked. A 3.0
                    // agent answers UNKNOWN_MESSAGE_TYPE and sends 3.0
                    // grids; the feed works the same.
                    ctl.push(json(AppMessage::GridFeatures(GridFeatures {
                        underline_color: true,
                    })));
                }
                ctl.push(json(AppMessage::SessionAttach(SessionAttach {
                    machine_id: key.machine.clone(),
                    session_id: key.session.clone(),
                })));
            }
            Some(Location::Remote(relay)) => {
                let Some(feed) = self.feeds.get_mut(key) else {
                    return;
                };
                feed.link = Some(Upstream::Relay(relay.clone()));
                feed.grid = None;
                feed.cap_ack = None;
                feed.resync_asked = false;
                let pending = std::mem::take(&mut feed.pending);
                self.tell_cluster(Outgoing::Attach {
                    to: relay.clone(),
                    key: key.clone(),
                    max,
                });
                for frame in pending {
                    self.tell_cluster(Outgoing::Up {
                        to: relay.clone(),
                        key: key.clone(),
                        frame,
                    });
                }
            }
            None => {}
        }
    }

    /// Asks again for every feed of `mk` that mobiles wait on (its machine
    /// came back, here or elsewhere).
    pub(crate) fn rerequest_feeds(&mut self, mk: &MachineKey) {
        let waiting: Vec<(RouteKey, MaxSize)> = self
            .feeds
            .iter()
            .filter(|(k, f)| k.ns == mk.ns && k.machine == mk.machine && f.link.is_none())
            .filter(|(_, f)| !f.mobiles.is_empty())
            .map(|(k, f)| {
                let max = f
                    .mobiles
                    .first()
                    .and_then(|m| self.mobiles.get(m))
                    .map_or((None, None), |m| m.max);
                (k.clone(), max)
            })
            .collect();
        for (k, max) in waiting {
            self.request_feed(&k, max);
        }
    }

    pub(crate) fn detach_mobile(&mut self, mobile: u64) {
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
                if let Some(feed) = self.feeds.remove(&key) {
                    if let Some(up) = &feed.link {
                        self.close_upstream(&key, up);
                    }
                }
            }
        }
    }

    pub(crate) fn attach_mobile(&mut self, mobile: u64, machine_id: String, session_id: String) {
        self.detach_mobile(mobile);
        let Some(m) = self.mobiles.get(&mobile) else {
            return;
        };
        let (ns, out, grid, max, encoding) =
            (m.ns.clone(), m.out.clone(), m.grid, m.max, m.encoding);
        let mk = MachineKey {
            ns: ns.clone(),
            machine: machine_id.clone(),
        };
        if self.locate(&mk).is_none() {
            out.push(error(
                "not_found",
                format!("machine {machine_id:?} is not connected"),
            ));
            return;
        }
        if !self.sessions_of(&mk).iter().any(|s| s.id == session_id) {
            out.push(error(
                "not_found",
                format!("machine {machine_id:?} has no session {session_id:?}"),
            ));
            return;
        }
        let key = RouteKey {
            ns,
            machine: machine_id,
            session: session_id,
            grid,
        };
        if let Some(paint) = self.first_paint.get(&key.session_key()) {
            out.push(paint.clone());
        }
        let feed = self.feeds.entry(key.clone()).or_default();
        feed.mobiles.push(mobile);
        let need_link = feed.link.is_none();
        if let Some(ack) = &feed.cap_ack {
            out.push(ack.clone());
        }
        if let Some((g, seq)) = &feed.grid {
            out.push_resync(snapshot_frame(g, *seq, encoding));
        } else if !grid && !need_link {
            // A raw mobile needs a paint consistent with the byte stream:
            // only the agent can make one.
            self.push_up(
                &key,
                json(AppMessage::SnapshotReq(SnapshotReq {
                    session_id: key.session.clone(),
                    last_seq: None,
                })),
            );
        }
        if let Some(m) = self.mobiles.get_mut(&mobile) {
            m.attached = Some(key.clone());
        }
        if need_link && self.feed_len(&key) == 1 {
            self.request_feed(&key, max);
        }
    }

    pub(crate) fn feed_len(&self, key: &RouteKey) -> usize {
        self.feeds.get(key).map_or(0, |f| f.mobiles.len())
    }

    /// Sends a feed's terminal frame to its mobiles; a mobile that cannot
    /// take it is resynced instead.
    pub(crate) fn fan_out(&mut self, key: &RouteKey, frame: &Bytes) {
        self.fan_out_grid(key, frame, None);
    }

    /// [`Self::fan_out`] for a grid frame whose decoded form is `decoded`:
    /// a mobile that did not ask for all it holds (an underline colour
    /// without `grid.features`) gets it re-encoded without, once per
    /// encoding; the others get `frame` untouched.
    pub(crate) fn fan_out_grid(&mut self, key: &RouteKey, frame: &Bytes, decoded: Option<&Frame>) {
        let Some(feed) = self.feeds.get_mut(key) else {
            return;
        };
        let mut snapshots: Vec<(GridEncoding, Bytes)> = Vec::new();
        let mut variants: Vec<(GridEncoding, Option<Bytes>)> = Vec::new();
        let mut ask_agent = false;
        for id in &feed.mobiles {
            let Some(m) = self.mobiles.get(id) else {
                continue;
            };
            // Each encoding's bytes are worked out once per frame (`None`:
            // the frame's own bytes are right for it).
            let bytes = match decoded {
                Some(f) => {
                    let v = match variants.iter().find(|(e, _)| *e == m.encoding) {
                        Some((_, v)) => v.clone(),
                        None => {
                            let v = f
                                .differs_for(m.encoding)
                                .then(|| Bytes::from(f.encode_for(m.encoding)));
                            variants.push((m.encoding, v.clone()));
                            v
                        }
                    };
                    v.unwrap_or_else(|| frame.clone())
                }
                None => frame.clone(),
            };
            if m.out.push_media(bytes).is_err() {
                match &feed.grid {
                    Some((g, seq)) => {
                        let s = match snapshots.iter().find(|(e, _)| *e == m.encoding) {
                            Some((_, s)) => s.clone(),
                            None => {
                                let s = snapshot_frame(g, *seq, m.encoding);
                                snapshots.push((m.encoding, s.clone()));
                                s
                            }
                        };
                        m.out.push_resync(s);
                    }
                    None => ask_agent = true,
                }
            }
        }
        if ask_agent && !feed.resync_asked {
            feed.resync_asked = true;
            self.push_up(
                key,
                json(AppMessage::SnapshotReq(SnapshotReq {
                    session_id: key.session.clone(),
                    last_seq: None,
                })),
            );
        }
    }

    /// Sends a control frame to the mobiles of one feed.
    pub(crate) fn control_to_mobiles(&self, key: &RouteKey, frame: &Bytes) {
        if let Some(feed) = self.feeds.get(key) {
            for id in &feed.mobiles {
                if let Some(m) = self.mobiles.get(id) {
                    m.out.push(frame.clone());
                }
            }
        }
    }

    /// A mobile's input or RESIZE for its feed's agent, held until the
    /// feed link is up. `false`: the hold is full.
    pub(crate) fn send_to_agent(&mut self, key: &RouteKey, frame: Bytes) -> bool {
        if self.push_up(key, frame.clone()) {
            return true;
        }
        match self.feeds.get_mut(key) {
            Some(feed) if feed.pending.len() < MAX_PENDING => {
                feed.pending.push(frame);
                true
            }
            _ => false,
        }
    }

    /// Replaces what relay `relay` announced (its presence): machines that
    /// appear are shown to mobiles and get their waiting feeds requested;
    /// those that left are shown offline and their feeds wait.
    pub(crate) fn set_presence(
        &mut self,
        relay: &str,
        machines: Vec<(MachineKey, String, Vec<SessionInfo>)>,
    ) {
        let before: Vec<MachineKey> = self
            .remote_machines
            .iter()
            .filter(|(_, r)| r.relay == relay)
            .map(|(k, _)| k.clone())
            .collect();
        let mut changed_ns: Vec<Namespace> = Vec::new();
        let mut mark = |ns: &Namespace| {
            if !changed_ns.contains(ns) {
                changed_ns.push(ns.clone());
            }
        };
        let mut gone = Vec::new();
        for k in &before {
            if !machines.iter().any(|(m, _, _)| m == k) {
                self.remote_machines.remove(k);
                mark(&k.ns);
                gone.push(k.clone());
            }
        }
        let mut came = Vec::new();
        for (k, name, sessions) in machines {
            let new = RemoteMachine {
                relay: relay.to_string(),
                name,
                sessions,
            };
            match self.remote_machines.get(&k) {
                Some(old) if *old == new => continue,
                Some(old) if old.relay == relay => {}
                _ => came.push(k.clone()),
            }
            mark(&k.ns);
            self.remote_machines.insert(k, new);
        }
        for k in &gone {
            self.remote_machine_gone(k, relay);
        }
        for k in &came {
            if self.machines.get(k).is_some_and(|m| m.online) {
                continue;
            }
            self.machine_connected(k);
            // A feed still served by the machine's old relay moves over.
            let moved: Vec<RouteKey> = self
                .feeds
                .iter()
                .filter(|(f, feed)| {
                    f.ns == k.ns
                        && f.machine == k.machine
                        && matches!(&feed.link, Some(Upstream::Relay(r)) if r != relay)
                })
                .map(|(f, _)| f.clone())
                .collect();
            for f in moved {
                self.unlink_feed(&f);
            }
            self.rerequest_feeds(k);
        }
        for ns in &changed_ns {
            self.machines_changed(ns);
        }
    }

    /// Feeds of a remote machine that left `relay` wait for it to return.
    fn remote_machine_gone(&mut self, mk: &MachineKey, relay: &str) {
        let local = self.machines.get(mk).is_some_and(|m| m.online);
        if !local && !self.remote_machines.contains_key(mk) {
            self.machine_disconnected(mk);
        }
        let keys: Vec<RouteKey> = self
            .feeds
            .iter()
            .filter(|(f, feed)| {
                f.ns == mk.ns
                    && f.machine == mk.machine
                    && matches!(&feed.link, Some(Upstream::Relay(r)) if r == relay)
            })
            .map(|(f, _)| f.clone())
            .collect();
        for k in keys {
            self.unlink_feed(&k);
        }
        if local || self.remote_machines.contains_key(mk) {
            self.rerequest_feeds(mk);
        }
    }

    pub(crate) fn unlink_feed(&mut self, key: &RouteKey) {
        if let Some(feed) = self.feeds.get_mut(key) {
            if let Some(up) = feed.link.take() {
                feed.grid = None;
                feed.cap_ack = None;
                self.close_upstream(key, &up);
            }
        }
    }

    /// Relay `relay` is gone (its presence expired, or it said goodbye):
    /// its machines leave and its watchers here are dropped.
    pub(crate) fn drop_relay(&mut self, relay: &str) {
        self.set_presence(relay, Vec::new());
        let ids: Vec<u64> = self
            .watchers
            .iter()
            .filter(|((r, _), _)| r == relay)
            .map(|(_, id)| *id)
            .collect();
        self.watchers.retain(|(r, _), _| r != relay);
        for id in ids {
            self.remove_mobile(id);
        }
    }

    /// Forgets every other relay (the cluster is unreachable): routing
    /// goes on for what is connected here.
    pub(crate) fn drop_all_remote(&mut self) {
        let mut relays: Vec<RelayId> = self
            .remote_machines
            .values()
            .map(|r| r.relay.clone())
            .chain(self.watchers.keys().map(|(r, _)| r.clone()))
            .collect();
        relays.sort();
        relays.dedup();
        for r in relays {
            self.drop_relay(&r);
        }
    }

    pub(crate) fn remove_mobile(&mut self, id: u64) {
        self.detach_mobile(id);
        if let Some(m) = self.mobiles.remove(&id) {
            m.out.close();
        }
    }

    /// Relay `from` watches `key` here for its mobiles: a watcher like a
    /// mobile, whose frames `out` carries back. Returns its id, or `None`
    /// if it already existed (it is then resynced).
    pub(crate) fn remote_attach(
        &mut self,
        from: &str,
        key: &RouteKey,
        max: MaxSize,
        out: impl FnOnce() -> Arc<Outbox>,
    ) -> Option<u64> {
        let wkey = (from.to_string(), key.clone());
        let (id, new) = match self.watchers.get(&wkey) {
            Some(id) => (*id, false),
            None => {
                let id = self.id();
                self.mobiles.insert(
                    id,
                    MobileEntry {
                        ns: key.ns.clone(),
                        out: out(),
                        grid: key.grid,
                        encoding: GridEncoding::FULL,
                        max,
                        attached: None,
                        remote: Some(from.to_string()),
                    },
                );
                self.watchers.insert(wkey, id);
                (id, true)
            }
        };
        self.attach_mobile(id, key.machine.clone(), key.session.clone());
        new.then_some(id)
    }

    /// Relay `from` no longer watches `key`.
    pub(crate) fn remote_detach(&mut self, from: &str, key: &RouteKey) {
        if let Some(id) = self.watchers.remove(&(from.to_string(), key.clone())) {
            self.remove_mobile(id);
        }
    }

    /// The watcher id of relay `from` on `key`.
    pub(crate) fn watcher(&self, from: &str, key: &RouteKey) -> Option<(u64, Arc<Outbox>)> {
        let id = *self.watchers.get(&(from.to_string(), key.clone()))?;
        Some((id, self.mobiles.get(&id)?.out.clone()))
    }

    /// Whether `key`'s frames are expected from relay `from`.
    pub(crate) fn fed_by(&self, key: &RouteKey, from: &str) -> bool {
        matches!(
            self.feeds.get(key).and_then(|f| f.link.as_ref()),
            Some(Upstream::Relay(r)) if r == from
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_wire::remote::{Frame, GridSnapshot, Opcode};

    fn ns() -> Namespace {
        Namespace::of_token("t")
    }

    fn mobile(hub: &mut Hub, cap: usize, grid: bool) -> (u64, Arc<Outbox>) {
        let id = hub.id();
        let out = Arc::new(Outbox::new(cap));
        hub.mobiles.insert(
            id,
            MobileEntry {
                ns: ns(),
                out: out.clone(),
                grid,
                encoding: GridEncoding::V3_0,
                max: (None, None),
                attached: None,
                remote: None,
            },
        );
        (id, out)
    }

    fn hub_with_grid_feed(cap: usize) -> (Hub, RouteKey, Arc<Outbox>) {
        let mut hub = Hub::default();
        let (id, out) = mobile(&mut hub, cap, true);
        let key = RouteKey {
            ns: ns(),
            machine: "m".into(),
            session: "s".into(),
            grid: true,
        };
        let mut grid = Grid::new(20, 3);
        grid.cells[0].text = "x".into();
        hub.feeds.insert(
            key.clone(),
            Feed {
                grid: Some((grid, 7)),
                mobiles: vec![id],
                ..Feed::default()
            },
        );
        hub.mobiles.get_mut(&id).unwrap().attached = Some(key.clone());
        (hub, key, out)
    }

    fn decode_all(out: &Outbox) -> Vec<Frame> {
        out.queued()
            .iter()
            .map(|f| Frame::decode(f).unwrap())
            .collect()
    }

    fn session(id: &str) -> SessionInfo {
        SessionInfo {
            id: id.into(),
            title: id.into(),
            cols: 80,
            rows: 24,
        }
    }

    fn listed(out: &Outbox) -> Vec<(String, bool, usize)> {
        decode_all(out)
            .into_iter()
            .filter_map(|f| match f {
                Frame::AppJson(AppMessage::MachineList(l)) => Some(l),
                _ => None,
            })
            .next_back()
            .map(|l| {
                l.machines
                    .into_iter()
                    .map(|m| (m.id, m.online, m.sessions.len()))
                    .collect()
            })
            .unwrap_or_default()
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
        hub.feeds.get_mut(&key).unwrap().link = Some(Upstream::Agent {
            link: 9,
            out: link.clone(),
        });
        let id = hub.feeds[&key].mobiles[0];
        hub.detach_mobile(id);
        assert!(link.is_closed());
        assert!(!hub.feeds.contains_key(&key));
    }

    #[test]
    fn the_machine_list_is_the_union_of_local_and_remote_machines() {
        let mut hub = Hub::default();
        let (_, out) = mobile(&mut hub, 1 << 20, true);
        hub.machines.insert(
            MachineKey {
                ns: ns(),
                machine: "a".into(),
            },
            MachineEntry {
                name: "a".into(),
                online: true,
                control: None,
                sessions: vec![session("s1")],
            },
        );
        let remote = |m: &str| {
            (
                MachineKey {
                    ns: ns(),
                    machine: m.into(),
                },
                m.to_string(),
                vec![session("s2"), session("s3")],
            )
        };
        let other_ns = (
            MachineKey {
                ns: Namespace::of_token("other"),
                machine: "hidden".into(),
            },
            "hidden".to_string(),
            vec![],
        );
        hub.set_presence("r2", vec![remote("b"), other_ns]);
        hub.set_presence("r3", vec![remote("c")]);
        hub.flush_lists();
        assert_eq!(
            listed(&out),
            [
                ("a".to_string(), true, 1),
                ("b".to_string(), true, 2),
                ("c".to_string(), true, 2)
            ]
        );
        hub.drop_relay("r2");
        hub.flush_lists();
        assert_eq!(
            listed(&out),
            [("a".to_string(), true, 1), ("c".to_string(), true, 2)]
        );
        let statuses = decode_all(&out)
            .into_iter()
            .filter(|f| {
                matches!(f, Frame::AppJson(AppMessage::ConnectionStatus(s))
                    if s.machine_id == "b" && s.status == LinkStatus::Disconnected)
            })
            .count();
        assert_eq!(statuses, 1);
    }

    #[test]
    fn a_burst_of_machine_changes_costs_a_mobile_two_lists() {
        let mut hub = Hub::default();
        let (_, out) = mobile(&mut hub, 1 << 20, true);
        for i in 0..50 {
            let m = (
                MachineKey {
                    ns: ns(),
                    machine: format!("m{i:02}"),
                },
                format!("m{i:02}"),
                vec![session("s")],
            );
            hub.set_presence(&format!("r{i}"), vec![m]);
        }
        // The first change went out at once, the rest at the window's end.
        assert_eq!(listed(&out).len(), 1);
        hub.flush_lists();
        assert_eq!(listed(&out).len(), 50);
        let lists = decode_all(&out)
            .iter()
            .filter(|f| matches!(f, Frame::AppJson(AppMessage::MachineList(_))))
            .count();
        assert_eq!(lists, 2);
        // A quiet window ends the hold: the next change is sent at once.
        hub.flush_lists();
        hub.drop_relay("r0");
        assert_eq!(listed(&out).len(), 49);
    }

    #[test]
    fn a_mobile_on_a_remote_machine_is_fed_through_its_relay_and_moves_with_it() {
        let mut hub = Hub::default();
        let cluster = Arc::new(ClusterQueue::default());
        hub.cluster = Some(cluster.clone());
        let mk = MachineKey {
            ns: ns(),
            machine: "m".into(),
        };
        hub.set_presence("ra", vec![(mk.clone(), "m".into(), vec![session("s")])]);
        let (id, _out) = mobile(&mut hub, 1 << 20, true);
        hub.attach_mobile(id, "m".into(), "s".into());
        let key = RouteKey {
            ns: ns(),
            machine: "m".into(),
            session: "s".into(),
            grid: true,
        };
        assert_eq!(
            cluster.drain(),
            [Outgoing::Attach {
                to: "ra".into(),
                key: key.clone(),
                max: (None, None)
            }]
        );
        assert!(hub.fed_by(&key, "ra"));
        assert!(hub.send_to_agent(&key, Bytes::from_static(b"k")));
        assert!(matches!(&cluster.drain()[..], [Outgoing::Up { to, .. }] if to == "ra"));
        // The agent moved to relay rc; ra's presence loses it.
        hub.set_presence("rc", vec![(mk.clone(), "m".into(), vec![session("s")])]);
        hub.set_presence("ra", vec![]);
        let sent = cluster.drain();
        assert!(sent.contains(&Outgoing::Detach {
            to: "ra".into(),
            key: key.clone()
        }));
        assert!(sent.contains(&Outgoing::Attach {
            to: "rc".into(),
            key: key.clone(),
            max: (None, None)
        }));
        assert!(hub.fed_by(&key, "rc"));
        // The last mobile leaves: rc is told.
        hub.remove_mobile(id);
        assert_eq!(
            cluster.drain(),
            [Outgoing::Detach {
                to: "rc".into(),
                key
            }]
        );
    }

    #[test]
    fn a_relay_watcher_is_fed_like_a_mobile_and_dropped_with_its_relay() {
        let (mut hub, key, _out) = hub_with_grid_feed(1 << 20);
        hub.machines.insert(
            key.machine_key(),
            MachineEntry {
                name: "m".into(),
                online: true,
                control: None,
                sessions: vec![session("s")],
            },
        );
        let wout = Arc::new(Outbox::new(1 << 20));
        let id = hub
            .remote_attach("rb", &key, (None, None), || wout.clone())
            .unwrap();
        // It got the feed's current grid at once.
        assert!(matches!(
            &decode_all(&wout)[..],
            [Frame::GridSnapshot(s)] if s.seq == 7
        ));
        hub.fan_out(&key, &Bytes::from_static(&[0x05, 0, 0, 0, 8]));
        assert_eq!(wout.queued().len(), 2);
        assert_eq!(hub.feed_len(&key), 2);
        hub.drop_relay("rb");
        assert!(!hub.mobiles.contains_key(&id));
        assert!(wout.is_closed());
        assert_eq!(hub.feed_len(&key), 1);
    }
}
