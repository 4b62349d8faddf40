//! What a connection does once a reply has been sent: read the next
//! request, carry an attach stream, forward a stream of further frames, or
//! stop the daemon. Handlers that need more than a reply return one of
//! these; the connection loop (`conn`) carries it out.

use berth_engine::sessions::{Attachment, Kind};
use std::time::Duration;
use tokio::sync::mpsc;

/// What the connection does after sending the response.
pub(super) enum After {
    /// Carry an attach stream until it ends.
    Attach(Box<Attachment>, Kind),
    /// Read the next request.
    Continue,
    /// Stop the daemon (the reply has been sent first).
    Shutdown {
        /// Let in-flight requests finish.
        graceful: bool,
        /// How long to wait for them.
        timeout: Duration,
    },
    /// Send these already-framed messages after the reply, as they come,
    /// until the producer drops its sender or the peer closes or sends a
    /// request (which ends the stream and is then answered as usual).
    Stream(mpsc::Receiver<Vec<u8>>),
}

/// A reply and what follows it.
pub(super) type Answer = (berth_wire::daemon::DaemonResponse, After);
