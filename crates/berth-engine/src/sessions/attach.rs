//! Attachments: viewers of one session stream, each with its own cursor,
//! optionally holding the stream's attachment slot (the protocol's
//! ALREADY_ATTACHED / steal semantics), and registered with the producer
//! for flow control.

use super::*;

/// How an attachment starts its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// The protocol's ATTACH (the reference daemon's meaning): the output no
    /// attachment has been given yet, from the stream's delivered offset to
    /// its end, terminal queries removed. A read-only viewer (which is no
    /// attachment) gets the whole held backlog instead.
    Raw,
    /// A screen snapshot (PTY sessions): what a fresh terminal needs to
    /// show the current screen; falls back to raw for pipe streams.
    Screen,
}

/// Options of an attachment.
#[derive(Debug, Clone)]
pub struct AttachOptions {
    /// Which stream.
    pub stream: StreamId,
    /// Take the attachment from its holder.
    pub steal: bool,
    /// Watch only: take no attachment slot, send no input.
    pub read_only: bool,
    /// How to start.
    pub replay: Replay,
    /// Facts about the client.
    pub client: ClientInfo,
    /// Who is attaching, told to an evicted holder.
    pub label: String,
}

/// A viewer of one stream with its own cursor.
pub struct Attachment {
    session: Arc<Session>,
    stream: StreamId,
    slot: Option<u64>,
    cursor: u64,
    /// Shared with the producer, which waits for viewers that keep reading.
    flow_id: u64,
    shared_cursor: Arc<AtomicU64>,
    last_read_ms: Arc<AtomicU64>,
    rx: watch::Receiver<u64>,
    evicted: Option<oneshot::Receiver<String>>,
    /// Token of a terminal client with the screen model (which then leaves
    /// query answers to the client's terminal).
    answering: Option<u64>,
    /// What to show first (raw backlog or screen restore).
    pub initial: Vec<u8>,
    /// Bytes the ring dropped before this attachment's first byte: for an
    /// attachment, those between the stream's delivered offset and the
    /// oldest byte held (0 when nothing was lost); for a read-only viewer,
    /// the ring's start offset.
    pub bytes_missed: u64,
}

/// What an attachment receives next.
#[derive(Debug, PartialEq)]
pub enum Next {
    /// Output; `missed` bytes were dropped before it (slow reader).
    Data {
        /// Bytes skipped since the previous delivery.
        missed: u64,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// The stream's producer finished and everything was delivered.
    Eof,
    /// Another client took the attachment.
    Evicted(String),
}

impl Attachment {
    /// The session.
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// This client's window is `rows` x `cols` (see `sizes`: the latest
    /// client's size wins; it is given back when the client leaves).
    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), SessionError> {
        self.session.claim_size(self.flow_id, rows, cols)
    }

    /// Whether this attachment may send input.
    pub fn may_write(&self) -> bool {
        self.slot.is_some()
    }

    /// Next output, up to `max` bytes, waiting for it if necessary.
    pub async fn next(&mut self, max: usize) -> Next {
        let mut bytes = Vec::new();
        match self.next_into(max, &mut bytes).await {
            Next::Data { missed, .. } => Next::Data { missed, bytes },
            other => other,
        }
    }

    /// Like [`next`](Self::next), but the output goes into `buf` (cleared
    /// first) and `Next::Data` carries an empty `bytes`: a relay reuses one
    /// buffer instead of allocating one per chunk. Everything pending (up
    /// to `max`) comes at once, so output that piled up while the client
    /// was busy goes out as one chunk.
    pub async fn next_into(&mut self, max: usize, buf: &mut Vec<u8>) -> Next {
        buf.clear();
        self.next_append(max, buf).await
    }

    /// Like [`next_into`](Self::next_into), but the output is appended to
    /// what `buf` already holds: the process API leaves room for a frame
    /// header in front and frames the output where it landed, so each
    /// byte relayed is copied once on its way from the ring to the socket.
    pub async fn next_append(&mut self, max: usize, buf: &mut Vec<u8>) -> Next {
        let out = self
            .session
            .stream(self.stream)
            .expect("attached stream exists")
            .clone();
        loop {
            let (missed, offset, len) = out.log().read_into(self.cursor, max, buf);
            if len > 0 || missed > 0 {
                self.cursor = offset + len as u64;
                self.shared_cursor.store(self.cursor, Ordering::Release);
                if self.slot.is_some() {
                    out.mark_delivered(self.cursor);
                }
                self.last_read_ms
                    .store(bytelog::now_ms(), Ordering::Release);
                out.reader_progressed();
                return Next::Data {
                    missed,
                    bytes: Vec::new(),
                };
            }
            // Caught up and about to wait for more: ready, not stuck, for as
            // long as it waits here.
            self.last_read_ms.store(bytelog::WAITING, Ordering::Release);
            if out.is_closed() && self.cursor >= out.log().end() {
                return Next::Eof;
            }
            let evicted = async {
                match self.evicted.as_mut() {
                    Some(rx) => rx.await.ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = self.rx.changed() => {
                    if r.is_err() {
                        return Next::Eof;
                    }
                }
                by = evicted => {
                    self.slot = None;
                    return Next::Evicted(by.unwrap_or_default());
                }
            }
        }
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        if let Some(out) = self.session.stream(self.stream) {
            out.remove_blocker(self.flow_id);
        }
        if let Some(id) = self.slot {
            self.session.release_slot(self.stream, id);
        }
        self.session.release_size(self.flow_id);
        if let (Some(token), Some(screen)) = (self.answering, self.session.screen()) {
            screen.client_left(token, self.cursor);
        }
    }
}

impl Sessions {
    /// Attaches a viewer to a stream of session `id`.
    pub fn attach(&self, id: &str, opts: AttachOptions) -> Result<Attachment, SessionError> {
        let session = self.get(id)?;
        let out = session.require_stream(opts.stream)?.clone();
        let (slot, evicted) = if opts.read_only {
            (None, None)
        } else {
            let (slot, rx) =
                session.take_slot(opts.stream, opts.client.clone(), opts.steal, &opts.label)?;
            (Some(slot), Some(rx))
        };
        // Subscribe before reading so nothing appended in between is missed.
        let rx = out.subscribe();
        let (initial, cursor, bytes_missed) = match (opts.replay, session.screen()) {
            (Replay::Screen, Some(screen)) => {
                let snap = screen.snapshot();
                (snap.restore, snap.offset, out.log().start())
            }
            _ => {
                let log = out.log();
                let (start, end) = (log.start(), log.end());
                let drain = !opts.read_only;
                let (from, missed) = if drain {
                    let delivered = out.delivered();
                    (delivered.max(start), start.saturating_sub(delivered))
                } else {
                    (start, start)
                };
                let held = log.read(from, usize::MAX).data;
                drop(log);
                let initial = if session.kind == Kind::Pty {
                    replay::strip_queries(&held)
                } else {
                    held
                };
                (initial, end, missed)
            }
        };
        if slot.is_some() {
            out.mark_delivered(cursor);
        }
        static FLOW: AtomicU64 = AtomicU64::new(1 << 40);
        let flow_id = FLOW.fetch_add(1, Ordering::Relaxed);
        let shared_cursor = Arc::new(AtomicU64::new(cursor));
        // A new viewer counts as reading: it has STALL to make its first
        // read before the producer stops waiting for it.
        let last_read_ms = Arc::new(AtomicU64::new(bytelog::now_ms()));
        out.add_viewer(flow_id, shared_cursor.clone(), last_read_ms.clone());
        let answering = match session.screen() {
            Some(screen) if slot.is_some() && opts.client.is_tty => {
                Some(screen.client_joined(cursor))
            }
            _ => None,
        };
        Ok(Attachment {
            answering,
            session,
            stream: opts.stream,
            slot,
            cursor,
            flow_id,
            shared_cursor,
            last_read_ms,
            rx,
            evicted,
            initial,
            bytes_missed,
        })
    }
}
