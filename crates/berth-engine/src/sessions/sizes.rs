//! Whose size a PTY session has (issue 18, item 5).
//!
//! Policy, on every surface (process-API attach, the remote link): the
//! **latest** client wins, like tmux's `window-size latest`. Each client
//! that shows the session (an attachment, read-only or not) claims a size
//! when it attaches and whenever its window changes; the PTY takes the most
//! recent claim. When a client leaves (detach, takeover, disconnect), its
//! claim goes and the PTY takes the most recent remaining claim, so a phone
//! that shrank a session to 50x12 through the relay gives the desk terminal
//! its 100x30 back when it leaves. An explicit RESIZE request (no client)
//! sets the size without a claim; with no claims left the size stays.

use super::{lock, Session, SessionError};
use berth_os::pty::WinSize;
use std::sync::Mutex;

/// Size claims of the clients showing one session, oldest first.
#[derive(Debug, Default)]
pub(super) struct SizeClaims(Mutex<Vec<(u64, WinSize)>>);

impl Session {
    /// Client `client` shows the session at `rows` x `cols`: it becomes the
    /// latest claim and the PTY takes its size.
    pub fn claim_size(&self, client: u64, rows: u16, cols: u16) -> Result<(), SessionError> {
        self.resize(rows, cols)?;
        let mut c = lock(&self.sizes.0);
        c.retain(|(id, _)| *id != client);
        c.push((client, WinSize { rows, cols }));
        Ok(())
    }

    /// Client `client` left: the PTY takes the latest remaining claim.
    pub fn release_size(&self, client: u64) {
        let next = {
            let mut c = lock(&self.sizes.0);
            let before = c.len();
            c.retain(|(id, _)| *id != client);
            if c.len() == before {
                return;
            }
            c.last().map(|(_, s)| *s)
        };
        if let Some(s) = next {
            // The session may have ended meanwhile; its size then no longer
            // matters to anyone.
            let _ = self.resize(s.rows, s.cols);
        }
    }
}
