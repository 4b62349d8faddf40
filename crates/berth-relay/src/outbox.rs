//! The bounded send queue of one relay link.
//!
//! Terminal frames (PTY_DATA, GRID_*) may be dropped: when a slow mobile's
//! queue would pass its byte cap they are all discarded and the caller
//! queues one fresh snapshot instead, so memory stays bounded and the
//! client catches up in one step. Control frames are never dropped; a peer
//! that lets even those pile up past four caps is disconnected.

use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::Notify;

struct Queue {
    frames: VecDeque<(Bytes, bool)>,
    bytes: usize,
    closed: bool,
    /// Send what is queued, then close.
    finishing: bool,
}

/// Frames waiting for one link's writer task.
pub(crate) struct Outbox {
    q: Mutex<Queue>,
    notify: Notify,
    cap: usize,
}

/// A terminal frame did not fit: the queued terminal frames were dropped,
/// and the caller should queue a fresh snapshot.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Overflow;

impl Outbox {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            q: Mutex::new(Queue {
                frames: VecDeque::new(),
                bytes: 0,
                closed: false,
                finishing: false,
            }),
            notify: Notify::new(),
            cap,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.q.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a control frame (never dropped).
    pub(crate) fn push(&self, frame: Bytes) {
        let mut q = self.lock();
        if q.closed {
            return;
        }
        q.bytes += frame.len();
        q.frames.push_back((frame, false));
        if q.bytes > self.cap.saturating_mul(4) {
            q.closed = true;
            q.frames.clear();
        }
        drop(q);
        self.notify.notify_one();
    }

    /// Queues a terminal frame, unless it would pass the cap.
    pub(crate) fn push_media(&self, frame: Bytes) -> Result<(), Overflow> {
        let mut q = self.lock();
        if q.closed {
            return Ok(());
        }
        if q.bytes + frame.len() > self.cap {
            q.frames.retain(|(_, media)| !media);
            q.bytes = q.frames.iter().map(|(f, _)| f.len()).sum();
            return Err(Overflow);
        }
        q.bytes += frame.len();
        q.frames.push_back((frame, true));
        drop(q);
        self.notify.notify_one();
        Ok(())
    }

    /// Queues a terminal frame after an overflow (a snapshot): it replaces
    /// what was dropped, so it is kept whatever its size.
    pub(crate) fn push_resync(&self, frame: Bytes) {
        let mut q = self.lock();
        if q.closed {
            return;
        }
        q.bytes += frame.len();
        q.frames.push_back((frame, true));
        drop(q);
        self.notify.notify_one();
    }

    /// Ends the link: the writer sends a close and stops.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_one();
    }

    /// Ends the link once what is queued was sent (a refusal's last words).
    pub(crate) fn finish(&self) {
        self.lock().finishing = true;
        self.notify.notify_one();
    }

    pub(crate) fn is_closed(&self) -> bool {
        let q = self.lock();
        q.closed || q.finishing
    }

    /// The next frame to send; `None` once closed.
    pub(crate) async fn pop(&self) -> Option<Bytes> {
        loop {
            let notified = self.notify.notified();
            {
                let mut q = self.lock();
                if q.closed {
                    return None;
                }
                if let Some((f, _)) = q.frames.pop_front() {
                    q.bytes -= f.len();
                    return Some(f);
                }
                if q.finishing {
                    return None;
                }
            }
            notified.await;
        }
    }
}

#[cfg(test)]
impl Outbox {
    /// What is queued, in order (tests).
    pub(crate) fn queued(&self) -> Vec<Bytes> {
        self.lock().frames.iter().map(|(f, _)| f.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_past_the_cap_drops_media_and_keeps_control() {
        let o = Outbox::new(10);
        o.push(Bytes::from_static(b"ctl"));
        o.push_media(Bytes::from_static(b"aaaa")).unwrap();
        assert_eq!(o.push_media(Bytes::from_static(b"bbbb")), Err(Overflow));
        o.push_resync(Bytes::from_static(b"snapshot-bigger-than-cap"));
        let q = o.lock();
        let kept: Vec<&[u8]> = q.frames.iter().map(|(f, _)| &f[..]).collect();
        assert_eq!(kept, [&b"ctl"[..], b"snapshot-bigger-than-cap"]);
    }

    #[test]
    fn control_flood_closes_the_link() {
        let o = Outbox::new(4);
        for _ in 0..10 {
            o.push(Bytes::from_static(b"xx"));
        }
        assert!(o.is_closed());
    }
}
