//! The per-link state machine: what each frame from an agent or a mobile
//! does to the [`Hub`], by what the link has become so far (§10). No
//! sockets: the server feeds frames in and drains the link's outbox.

use crate::frames::{enc, error, json, protocol_error, snapshot_frame};
use crate::hub::{Hub, MachineEntry, MobileEntry, Upstream};
use crate::key::{MachineKey, Namespace, RouteKey};
use crate::outbox::Outbox;
use berth_wire::remote::{
    self, AppMessage, Frame, GridEncoding, Hello, HelloAck, Opcode, Pong, ProtocolMismatch, Reason,
    Role, SnapshotReq,
};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// Versions this relay speaks.
const VERSIONS: [u32; 1] = [remote::PROTOCOL_VERSION];

/// What a link is, once its first messages said so.
pub(crate) enum Kind {
    Mobile,
    /// An agent link that has not yet said whether it is a control link.
    Agent,
    Control,
    /// A feed link that sent `session_attach`, waiting for `cap.ack`.
    FeedPending(String),
    Feed(RouteKey),
}

/// One admitted link.
pub(crate) struct Link {
    pub(crate) id: u64,
    pub(crate) ns: Namespace,
    pub(crate) machine_id: String,
    pub(crate) machine_name: String,
    pub(crate) kind: Kind,
    pub(crate) out: Arc<Outbox>,
}

/// Compares without an early exit, so a guess's timing says nothing
/// about how much of it matched.
pub(crate) fn token_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// Why a hello was refused (the reply is already queued): an unknown
/// token counts against the peer's address (`guard`), anything else not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The token is not one of the relay's.
    Token,
    /// Not a hello, an unsupported version, or an agent without a machine id.
    Other,
}

/// Checks a link's first frame: a `hello` with an accepted token (in it or
/// `?token=` on the upgrade URL) and a version this relay speaks. On
/// refusal the reply is queued on `out` and the reason returned.
pub(crate) fn check_hello(
    first: &[u8],
    tokens: &[String],
    query_token: Option<String>,
    out: &Outbox,
) -> Result<Hello, Refused> {
    let mut hello = match Frame::decode(first) {
        Ok(Frame::AppJson(AppMessage::Hello(h))) => h,
        Ok(_) => {
            out.push(protocol_error(Reason::UnexpectedFrame));
            return Err(Refused::Other);
        }
        Err(e) => {
            out.push(protocol_error(e.reason()));
            return Err(Refused::Other);
        }
    };
    let token = hello.token.clone().or(query_token).unwrap_or_default();
    if !tokens.iter().any(|t| token_eq(t, &token)) {
        out.push(error("unauthorized", "unknown token"));
        return Err(Refused::Token);
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
        return Err(Refused::Other);
    }
    if hello.role == Role::Agent && hello.machine_id.as_deref().unwrap_or("").is_empty() {
        out.push(error("bad_request", "an agent's hello needs a machineId"));
        return Err(Refused::Other);
    }
    Ok(hello)
}

/// Registers an admitted link and queues its `hello_ack` (and, for a
/// mobile, the machine list).
pub(crate) fn admit(hub: &mut Hub, hello: &Hello, out: Arc<Outbox>, ping: Duration) -> Link {
    let id = hub.id();
    let ns = Namespace::of_token(hello.token.as_deref().unwrap_or_default());
    let kind = match hello.role {
        Role::Mobile => {
            hub.mobiles.insert(
                id,
                MobileEntry {
                    ns: ns.clone(),
                    out: out.clone(),
                    grid: false,
                    encoding: GridEncoding::V3_0,
                    max: (None, None),
                    attached: None,
                    remote: None,
                },
            );
            Kind::Mobile
        }
        Role::Agent => Kind::Agent,
    };
    out.push(json(AppMessage::HelloAck(HelloAck {
        protocol_version: remote::PROTOCOL_VERSION,
        connection_id: Some(id.to_string()),
        ping_interval_ms: Some(ping.as_millis().min(u128::from(u32::MAX)) as u32),
    })));
    if matches!(kind, Kind::Mobile) {
        out.push(hub.machine_list(&ns));
    }
    Link {
        id,
        ns,
        machine_id: hello.machine_id.clone().unwrap_or_default(),
        machine_name: hello.machine_name.clone().unwrap_or_default(),
        kind,
        out,
    }
}

/// One binary message from the link's peer.
pub(crate) fn on_frame(hub: &mut Hub, l: &mut Link, msg: Bytes) {
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
            Kind::Feed(key) if !key.grid => hub.fan_out(key, &msg),
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
            Kind::Mobile => on_mobile(hub, l.id, &l.out, frame),
            _ => on_agent(hub, l, frame, msg),
        },
    }
}

/// A frame from a mobile, or from another relay watching a feed here for
/// its mobiles (`id` is its watcher entry).
pub(crate) fn on_mobile(hub: &mut Hub, id: u64, out: &Outbox, frame: Frame) {
    let attached = hub.mobiles.get(&id).and_then(|m| m.attached.clone());
    match frame {
        Frame::AppJson(AppMessage::CapReq(c)) => {
            if let Some(m) = hub.mobiles.get_mut(&id) {
                m.grid = c.grid;
                m.max = (c.max_cols, c.max_rows);
            }
            if let Some(k) = attached {
                if k.grid != c.grid {
                    hub.attach_mobile(id, k.machine, k.session);
                }
            }
        }
        Frame::AppJson(AppMessage::GridFeatures(f)) => {
            let encoding = f.encoding();
            let Some(m) = hub.mobiles.get_mut(&id) else {
                return;
            };
            let changed = m.encoding != encoding;
            m.encoding = encoding;
            // The relay can always leave an addition out, and passes on
            // what the agent sends: the answer grants what was asked.
            out.push(json(AppMessage::GridFeatures(f)));
            // A mobile already watching a grid gets it again in its new
            // encoding, so cells on screen show what it asked for.
            let snapshot = attached
                .filter(|k| k.grid && changed)
                .and_then(|k| hub.feeds.get(&k))
                .and_then(|feed| feed.grid.as_ref())
                .map(|(g, s)| snapshot_frame(g, *s, encoding));
            if let Some(s) = snapshot {
                out.push_resync(s);
            }
        }
        Frame::AppJson(AppMessage::SessionAttach(a)) => {
            hub.attach_mobile(id, a.machine_id, a.session_id)
        }
        Frame::AppJson(AppMessage::SnapshotReq(r)) => {
            let key = attached.filter(|k| k.session == r.session_id);
            let encoding = hub
                .mobiles
                .get(&id)
                .map_or(GridEncoding::V3_0, |m| m.encoding);
            let grid = key.as_ref().and_then(|k| hub.feeds.get(k)).and_then(|f| {
                f.grid
                    .as_ref()
                    .map(|(g, s)| snapshot_frame(g, *s, encoding))
            });
            let has_link = key
                .as_ref()
                .and_then(|k| hub.feeds.get(k))
                .is_some_and(|f| f.link.is_some());
            match (grid, key) {
                (Some(s), _) => out.push_resync(s),
                (None, Some(k)) if has_link => {
                    hub.send_to_agent(&k, json(AppMessage::SnapshotReq(r)));
                }
                _ => out.push(error("unavailable", "not attached to a live feed")),
            }
        }
        Frame::AppJson(AppMessage::Input(i)) => match attached {
            Some(k) if k.session == i.session_id => {
                if !hub.send_to_agent(&k, json(AppMessage::Input(i))) {
                    out.push(error("unavailable", "the session's feed is not up"));
                }
            }
            Some(_) => out.push(error(
                "bad_request",
                "input names a session this link is not attached to",
            )),
            None => out.push(error("unavailable", "not attached to a session")),
        },
        Frame::Resize { cols, rows } => match attached {
            Some(k) => {
                if !hub.send_to_agent(&k, enc(&Frame::Resize { cols, rows })) {
                    out.push(error("unavailable", "the session's feed is not up"));
                }
            }
            None => out.push(error("unavailable", "not attached to a session")),
        },
        _ => out.push(protocol_error(Reason::UnexpectedFrame)),
    }
}

fn on_agent(hub: &mut Hub, l: &mut Link, frame: Frame, raw: Bytes) {
    let machine = MachineKey {
        ns: l.ns.clone(),
        machine: l.machine_id.clone(),
    };
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
            // First paints of sessions that ended are of no more use.
            hub.first_paint.retain(|k, _| {
                !(k.ns == machine.ns && k.machine == machine.machine)
                    || sessions.iter().any(|s| s.id == k.session)
            });
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
            entry.sessions = sessions;
            let was_online = entry.online;
            if first {
                if let Some((_, old)) = entry.control.replace((l.id, l.out.clone())) {
                    old.close();
                }
                entry.online = true;
            }
            let remote_before = hub.remote_machines.contains_key(&machine);
            if first && !was_online && !remote_before {
                hub.machine_connected(&machine);
            }
            hub.local_machines_changed(&l.ns);
            if first {
                // Feeds this relay had from another instance come from
                // the agent here now; mobiles that were watching this
                // machine before its link dropped get their feeds back.
                let relayed: Vec<RouteKey> = hub
                    .feeds
                    .iter()
                    .filter(|(k, f)| {
                        k.ns == machine.ns
                            && k.machine == machine.machine
                            && matches!(f.link, Some(Upstream::Relay(_)))
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in relayed {
                    hub.unlink_feed(&k);
                }
                hub.rerequest_feeds(&machine);
            }
        }
        (Kind::Control, Frame::AppJson(AppMessage::PtyStatus(p))) => {
            let frame = json(AppMessage::PtyStatus(p.clone()));
            for grid in [false, true] {
                let key = RouteKey {
                    ns: machine.ns.clone(),
                    machine: machine.machine.clone(),
                    session: p.session_id.clone(),
                    grid,
                };
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
            let key = RouteKey {
                ns: machine.ns,
                machine: machine.machine,
                session: session.clone(),
                grid: ack.grid,
            };
            let Some(feed) = hub.feeds.get_mut(&key) else {
                // Nobody watches it any more.
                l.out.close();
                return;
            };
            let old = feed.link.replace(Upstream::Agent {
                link: l.id,
                out: l.out.clone(),
            });
            feed.cap_ack = Some(raw.clone());
            feed.grid = None;
            feed.resync_asked = false;
            for f in feed.pending.drain(..) {
                l.out.push(f);
            }
            if let Some(old) = old {
                hub.close_upstream(&key, &old);
            }
            hub.control_to_mobiles(&key, &raw);
            l.kind = Kind::Feed(key);
        }
        (Kind::Feed(key), frame) => {
            let key = key.clone();
            on_feed(hub, &key, frame, raw, |f| l.out.push(f));
        }
        _ => l.out.push(protocol_error(Reason::UnexpectedFrame)),
    }
}

/// A frame of feed `key`, from its agent's feed link or from the relay
/// that has that link. `upstream` sends a request back the same way.
pub(crate) fn on_feed(
    hub: &mut Hub,
    key: &RouteKey,
    frame: Frame,
    raw: Bytes,
    upstream: impl FnOnce(Bytes),
) {
    match frame {
        Frame::PtyData(_) if !key.grid => hub.fan_out(key, &raw),
        Frame::GridSnapshot(ref s) if key.grid => {
            if let Some(feed) = hub.feeds.get_mut(key) {
                feed.grid = Some((s.grid.clone(), s.seq));
            }
            hub.fan_out_grid(key, &raw, Some(&frame));
        }
        Frame::GridDiff(ref d) if key.grid => {
            let Some(feed) = hub.feeds.get_mut(key) else {
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
                hub.fan_out_grid(key, &raw, Some(&frame));
            } else {
                // Lost track: get a snapshot; mobiles receive it in turn.
                feed.grid = None;
                upstream(json(AppMessage::SnapshotReq(SnapshotReq {
                    session_id: key.session.clone(),
                    last_seq: Some(d.seq),
                })));
            }
        }
        Frame::FrameSnapshot { ref id, .. } if *id == key.session => {
            hub.first_paint.insert(key.session_key(), raw.clone());
            if !key.grid {
                if let Some(feed) = hub.feeds.get_mut(key) {
                    feed.resync_asked = false;
                }
                for id in hub
                    .feeds
                    .get(key)
                    .map(|f| f.mobiles.clone())
                    .unwrap_or_default()
                {
                    if let Some(m) = hub.mobiles.get(&id) {
                        m.out.push_resync(raw.clone());
                    }
                }
            }
        }
        Frame::AppJson(AppMessage::GridFeatures(f)) => {
            // The agent's answer to the relay's request (§10.2): what this
            // feed carries. Mobiles got the relay's own answer.
            tracing::debug!(session = %key.session, underline_color = f.underline_color, "feed grid features");
        }
        Frame::AppJson(AppMessage::CapAck(_)) => {
            if let Some(feed) = hub.feeds.get_mut(key) {
                feed.cap_ack = Some(raw.clone());
            }
            hub.control_to_mobiles(key, &raw);
        }
        Frame::AppJson(
            AppMessage::GridResizeCapped(_)
            | AppMessage::PtyStatus(_)
            | AppMessage::SessionReplay(_)
            | AppMessage::TerminalData(_)
            | AppMessage::ClaudeState(_)
            | AppMessage::Error(_),
        ) => hub.control_to_mobiles(key, &raw),
        _ => upstream(protocol_error(Reason::UnexpectedFrame)),
    }
}

/// The link ended: undo what it registered.
pub(crate) fn disconnect(hub: &mut Hub, l: &Link) {
    match &l.kind {
        Kind::Mobile => hub.remove_mobile(l.id),
        Kind::Control => {
            let key = MachineKey {
                ns: l.ns.clone(),
                machine: l.machine_id.clone(),
            };
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
                if !hub.remote_machines.contains_key(&key) {
                    hub.machine_disconnected(&key);
                }
                hub.local_machines_changed(&l.ns);
                // Elsewhere in the cluster, the machine may still be up.
                hub.rerequest_feeds(&key);
            }
        }
        Kind::Feed(key) => {
            let mut rerequest = None;
            if let Some(feed) = hub.feeds.get_mut(key) {
                if matches!(&feed.link, Some(Upstream::Agent { link, .. }) if *link == l.id) {
                    feed.link = None;
                    feed.grid = None;
                    feed.cap_ack = None;
                    rerequest = feed.mobiles.first().copied();
                }
            }
            if let Some(first) = rerequest {
                let max = hub.mobiles.get(&first).map_or((None, None), |m| m.max);
                hub.request_feed(key, max);
            }
        }
        Kind::Agent | Kind::FeedPending(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_wire::remote::{
        attr, CapAck, CapReq, Cell, Color, DiffOp, Grid, GridDiff, GridFeatures, GridSnapshot,
        Machine, MachineList, SessionAttach, SessionInfo,
    };

    #[test]
    fn tokens_compare_whole() {
        assert!(token_eq("secret", "secret"));
        assert!(!token_eq("secret", "secreT"));
        assert!(!token_eq("secret", "secret2"));
        assert!(!token_eq("", "x"));
        assert!(token_eq("", ""));
    }

    #[test]
    fn a_hello_with_an_unknown_token_is_refused() {
        let out = Outbox::new(1 << 20);
        let hello = Frame::AppJson(AppMessage::Hello(Hello {
            protocol_version: remote::PROTOCOL_VERSION,
            role: Role::Mobile,
            token: Some("nope".into()),
            supported_versions: None,
            machine_id: None,
            machine_name: None,
            client_name: None,
        }))
        .encode();
        assert_eq!(
            check_hello(&hello, &["t".into()], None, &out).err(),
            Some(Refused::Token)
        );
        assert!(matches!(
            Frame::decode(&out.queued()[0]),
            Ok(Frame::AppJson(AppMessage::Error(e))) if e.code == "unauthorized"
        ));
        let ok = check_hello(&hello, &["nope".into()], None, &out).unwrap();
        assert_eq!(ok.token.as_deref(), Some("nope"));
    }

    fn link(hub: &mut Hub, role: Role, machine: Option<&str>) -> Link {
        let hello = Hello {
            protocol_version: remote::PROTOCOL_VERSION,
            role,
            token: Some("t".into()),
            supported_versions: None,
            machine_id: machine.map(String::from),
            machine_name: machine.map(String::from),
            client_name: None,
        };
        admit(
            hub,
            &hello,
            Arc::new(Outbox::new(1 << 20)),
            Duration::from_secs(10),
        )
    }

    fn send(hub: &mut Hub, l: &mut Link, f: Frame) {
        on_frame(hub, l, Bytes::from(f.encode()));
    }

    fn app(m: AppMessage) -> Frame {
        Frame::AppJson(m)
    }

    /// Every frame queued on `l` from index `from` on.
    fn frames(l: &Link, from: usize) -> Vec<Frame> {
        l.out.queued()[from..]
            .iter()
            .map(|b| Frame::decode(b).unwrap())
            .collect()
    }

    /// A grid whose first cell has a curly underline in red.
    fn red_curly(cols: u16) -> Grid {
        let mut g = Grid::new(cols, 1);
        g.cells[0] = Cell {
            attrs: attr::with_underline_style(0, 3),
            underline_color: Color::Rgb(255, 0, 0),
            ..Cell::new("e", 1)
        };
        g
    }

    fn grids(fs: &[Frame]) -> Vec<Vec<Cell>> {
        fs.iter()
            .filter_map(|f| match f {
                Frame::GridSnapshot(s) => Some(s.grid.cells.clone()),
                Frame::GridDiff(d) => Some(
                    d.ops
                        .iter()
                        .flat_map(|op| match op {
                            DiffOp::Cells { cells, .. } => cells.clone(),
                            DiffOp::Fill { cell, .. } => vec![cell.clone()],
                            _ => vec![],
                        })
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    }

    /// Two mobiles on one grid feed: the one that sent `grid.features`
    /// gets the agent's underline colours, the other the 3.0 frames (the
    /// colour left out, the underline and its style kept). The relay asks
    /// the agent for the colours; an agent of 3.0 refusing the request
    /// with UNKNOWN_MESSAGE_TYPE changes nothing for the link.
    #[test]
    fn underline_colours_reach_only_the_mobiles_that_asked() {
        let mut hub = Hub::default();
        let mut ctl = link(&mut hub, Role::Agent, Some("m"));
        send(
            &mut hub,
            &mut ctl,
            app(AppMessage::MachineList(MachineList {
                machines: vec![Machine {
                    id: "m".into(),
                    name: "m".into(),
                    online: true,
                    sessions: vec![SessionInfo {
                        id: "s".into(),
                        title: "sh".into(),
                        cols: 4,
                        rows: 1,
                    }],
                }],
            })),
        );
        let mut new = link(&mut hub, Role::Mobile, None);
        let mut old = link(&mut hub, Role::Mobile, None);
        let new_from = new.out.queued().len();
        let cap = CapReq {
            grid: true,
            max_cols: None,
            max_rows: None,
        };
        let attach = SessionAttach {
            machine_id: "m".into(),
            session_id: "s".into(),
        };
        send(&mut hub, &mut new, app(AppMessage::CapReq(cap.clone())));
        send(
            &mut hub,
            &mut new,
            app(AppMessage::GridFeatures(GridFeatures {
                underline_color: true,
            })),
        );
        assert_eq!(
            frames(&new, new_from),
            vec![app(AppMessage::GridFeatures(GridFeatures {
                underline_color: true
            }))],
            "the relay answers with what it will send"
        );
        send(&mut hub, &mut old, app(AppMessage::CapReq(cap.clone())));
        let ctl_from = ctl.out.queued().len();
        send(
            &mut hub,
            &mut new,
            app(AppMessage::SessionAttach(attach.clone())),
        );
        send(
            &mut hub,
            &mut old,
            app(AppMessage::SessionAttach(attach.clone())),
        );
        assert_eq!(
            frames(&ctl, ctl_from),
            vec![
                app(AppMessage::CapReq(cap.clone())),
                app(AppMessage::GridFeatures(GridFeatures {
                    underline_color: true
                })),
                app(AppMessage::SessionAttach(attach.clone())),
            ]
        );
        // An agent of 3.0 refuses the new type; nothing is answered and
        // the control link stays what it was.
        let ctl_from = ctl.out.queued().len();
        send(
            &mut hub,
            &mut ctl,
            Frame::ProtocolError(Reason::UnknownMessageType),
        );
        assert!(frames(&ctl, ctl_from).is_empty());
        assert!(matches!(ctl.kind, Kind::Control));

        // The feed link (of a 3.1 agent here, so it sends colours).
        let mut feed = link(&mut hub, Role::Agent, Some("m"));
        send(
            &mut hub,
            &mut feed,
            app(AppMessage::SessionAttach(attach.clone())),
        );
        send(
            &mut hub,
            &mut feed,
            app(AppMessage::CapAck(CapAck {
                grid: true,
                max_cols: 500,
                max_rows: 200,
            })),
        );
        send(
            &mut hub,
            &mut feed,
            app(AppMessage::GridFeatures(GridFeatures {
                underline_color: true,
            })),
        );
        let (new_from, old_from) = (new.out.queued().len(), old.out.queued().len());
        let snap = Frame::GridSnapshot(GridSnapshot {
            seq: 0,
            grid: red_curly(4),
        });
        send(&mut hub, &mut feed, snap.clone());
        let mut next = Grid::new(4, 1);
        next.cells[1] = Cell {
            attrs: attr::with_underline_style(0, 3),
            underline_color: Color::Indexed(9),
            ..Cell::new("x", 1)
        };
        let diff = Frame::GridDiff(GridDiff {
            seq: 1,
            ops: vec![DiffOp::Cells {
                x: 1,
                y: 0,
                cells: vec![next.cells[1].clone()],
            }],
        });
        send(&mut hub, &mut feed, diff.clone());
        assert!(
            frames(&feed, 0)
                .iter()
                .all(|f| !matches!(f, Frame::ProtocolError(_))),
            "the feed link took every frame"
        );

        let got_new = frames(&new, new_from);
        let got_old = frames(&old, old_from);
        // The mobile that asked: the agent's frames, byte for byte.
        assert_eq!(
            new.out.queued()[new_from..],
            [Bytes::from(snap.encode()), Bytes::from(diff.encode())]
        );
        assert_eq!(grids(&got_new)[0][0].underline_color, Color::Rgb(255, 0, 0));
        assert_eq!(grids(&got_new)[1][0].underline_color, Color::Indexed(9));
        // The other: no underline colour anywhere (a 3.0 decoder's bytes),
        // the curly underline still there.
        assert_eq!(
            old.out.queued()[old_from..],
            [
                Bytes::from(snap.encode_for(GridEncoding::V3_0)),
                Bytes::from(diff.encode_for(GridEncoding::V3_0))
            ]
        );
        let old_cells = grids(&got_old);
        assert_eq!(old_cells.len(), 2);
        assert!(old_cells
            .iter()
            .flatten()
            .all(|c| c.underline_color == Color::Default));
        assert_eq!(attr::underline_style(old_cells[0][0].attrs), 3);
        assert_eq!(attr::underline_style(old_cells[1][0].attrs), 3);

        // Opting in later: the current grid again, now with its colours.
        let old_from = old.out.queued().len();
        send(
            &mut hub,
            &mut old,
            app(AppMessage::GridFeatures(GridFeatures {
                underline_color: true,
            })),
        );
        let got = frames(&old, old_from);
        assert_eq!(got.len(), 2, "{got:?}");
        let Frame::GridSnapshot(s) = &got[1] else {
            panic!("{got:?}")
        };
        assert_eq!(s.grid.cells[0].underline_color, Color::Rgb(255, 0, 0));
        assert_eq!(s.grid.cells[1].underline_color, Color::Indexed(9));
    }
}
