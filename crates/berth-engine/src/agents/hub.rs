//! The per-session ordered fan-out (seed 004 "ACP Gateway": "serialized
//! via orderedPipe to prevent token reordering"): every event gets the
//! next sequence number under one lock and is offered to every viewer in
//! that order, and kept in a bounded replay buffer for viewers that come
//! later. A viewer whose queue is full is dropped, so it never slows the
//! agent or the other viewers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// What a session tells its viewers. `Acp` carries a JSON-RPC message of
/// the agent verbatim; the others are the gateway's own news, which a
/// surface renders as its control messages.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// One JSON-RPC message line of the agent (a notification or a request
    /// forwarded to the viewers), exactly as the agent sent it.
    Acp(Arc<str>),
    /// The agent process's state changed.
    Status {
        /// `idle`, `starting`, `ready`, `prompting`, `suspended`,
        /// `stopped`, `crashed`, `error`.
        status: String,
        /// The agent type, if one was selected.
        agent_type: Option<String>,
        /// What went wrong (`error`, `crashed`).
        error: Option<String>,
    },
    /// A prompt turn started.
    Prompting,
    /// A prompt turn ended: the agent's stop reason, or the error that
    /// ended it after the retries.
    PromptDone {
        /// `end_turn`, `cancelled`, ... as the agent answered.
        stop_reason: Option<String>,
        /// The final error, if the turn failed.
        error: Option<String>,
    },
    /// A transient failure; the prompt is sent again after `delay_ms`.
    Retry {
        /// 1 for the first retry.
        attempt: u32,
        /// Milliseconds until it is sent.
        delay_ms: u64,
        /// The agent's error message.
        error: String,
    },
    /// The agent process ended unexpectedly.
    Crash {
        /// The agent type.
        agent_type: String,
        /// Its exit status, if it exited.
        exit_code: Option<i32>,
        /// The signal that killed it, if one did.
        signal: Option<i32>,
        /// The last lines of its stderr (at most 8 KiB).
        stderr_tail: String,
    },
    /// Something viewers should know that is not an ACP message (a
    /// resume without `loadSession`, a slow serialization).
    Notice {
        /// A short code (`resumed_new_session`, `serialize_timeout`...).
        code: String,
        /// For a person.
        message: String,
        /// The previous transcript, for `resumed_new_session`.
        transcript: Option<serde_json::Value>,
    },
}

/// What a viewer's queue carries.
#[derive(Debug, Clone)]
pub enum Out {
    /// A broadcast event and its sequence number.
    Event(u64, Arc<Event>),
    /// A JSON-RPC message for this viewer only (the answer to its request).
    Direct(Arc<str>),
}

/// A viewer's end: the id to detach with and its queue.
pub struct Viewer {
    /// Unique within the session.
    pub id: u64,
    /// Events after the replay, in order.
    pub rx: mpsc::Receiver<Out>,
    /// The replay: events before this viewer came, oldest first.
    pub replay: Vec<(u64, Arc<Event>)>,
}

struct Inner {
    next_seq: u64,
    next_viewer: u64,
    replay: VecDeque<(u64, Arc<Event>)>,
    viewers: Vec<(u64, mpsc::Sender<Out>)>,
    dropped: u64,
}

/// The fan-out of one session.
pub struct Hub {
    inner: Mutex<Inner>,
    replay_cap: usize,
    queue_cap: usize,
}

impl Hub {
    /// A hub keeping `replay_cap` events and queueing `queue_cap` per
    /// viewer.
    pub fn new(replay_cap: usize, queue_cap: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                next_seq: 1,
                next_viewer: 1,
                replay: VecDeque::new(),
                viewers: Vec::new(),
                dropped: 0,
            }),
            replay_cap,
            queue_cap: queue_cap.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Numbers `ev`, keeps it for replay and offers it to every viewer;
    /// returns its sequence number. Viewers whose queue is full are
    /// dropped (their receiver ends).
    pub fn publish(&self, ev: Event) -> u64 {
        let ev = Arc::new(ev);
        let mut g = self.lock();
        let seq = g.next_seq;
        g.next_seq += 1;
        if self.replay_cap > 0 {
            if g.replay.len() == self.replay_cap {
                g.replay.pop_front();
            }
            g.replay.push_back((seq, ev.clone()));
        }
        let before = g.viewers.len();
        g.viewers
            .retain(|(_, tx)| tx.try_send(Out::Event(seq, ev.clone())).is_ok());
        g.dropped += (before - g.viewers.len()) as u64;
        seq
    }

    /// Sends `line` to viewer `id` only; `false` if it is gone or full
    /// (then it is dropped).
    pub fn direct(&self, id: u64, line: Arc<str>) -> bool {
        let mut g = self.lock();
        let Some(i) = g.viewers.iter().position(|(v, _)| *v == id) else {
            return false;
        };
        if g.viewers[i].1.try_send(Out::Direct(line)).is_ok() {
            return true;
        }
        g.viewers.remove(i);
        g.dropped += 1;
        false
    }

    /// A new viewer: the replay so far, and a queue of everything after it
    /// (taken under the same lock, so nothing is missed or doubled).
    pub fn attach(&self) -> Viewer {
        let (tx, rx) = mpsc::channel(self.queue_cap);
        let mut g = self.lock();
        let id = g.next_viewer;
        g.next_viewer += 1;
        g.viewers.push((id, tx));
        Viewer {
            id,
            rx,
            replay: g.replay.iter().cloned().collect(),
        }
    }

    /// Removes viewer `id`.
    pub fn detach(&self, id: u64) {
        self.lock().viewers.retain(|(v, _)| *v != id);
    }

    /// Ids of the attached viewers.
    pub fn viewers(&self) -> Vec<u64> {
        self.lock().viewers.iter().map(|(v, _)| *v).collect()
    }

    /// Events held for replay.
    pub fn replay_len(&self) -> usize {
        self.lock().replay.len()
    }

    /// Viewers dropped for not reading.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }
}
