//! Cleanup of unattended sessions (issue 15): a session `/agent/ws` made
//! without a session id belongs to no one once its viewers are gone, so
//! after `ACP_IDLE_SESSION_TIMEOUT` (berth's; 30 min) with no viewer and
//! no prompt running its agent is stopped and the session forgotten (its
//! row and chat tab removed). Sessions with an id the client chose, and
//! those made over HTTP, stay until stopped.

use super::session::AgentSession;
use std::collections::HashMap;
use std::sync::{Mutex, Weak};
use std::time::Duration;

type Map = Mutex<HashMap<String, std::sync::Arc<AgentSession>>>;

/// Watches `s`: checks a few times per `timeout` whether it has been idle
/// for `timeout`; then stops it and removes it from `map`. Ends when the
/// session is gone from the table (or the table is dropped).
pub fn watch(s: &std::sync::Arc<AgentSession>, map: Weak<Map>, timeout: Duration) {
    let s = std::sync::Arc::downgrade(s);
    let step = (timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(60));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(step).await;
            let (Some(s), Some(map)) = (s.upgrade(), map.upgrade()) else {
                return;
            };
            let still = map
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&s.id)
                .is_some_and(|m| std::sync::Arc::ptr_eq(m, &s));
            if !still {
                return;
            }
            if s.idle_for().is_none_or(|d| d < timeout) {
                continue;
            }
            tracing::info!(session = %s.id, "agent session idle for {timeout:?} with no viewer: stopped and removed");
            let _ = s.halt("stopped").await;
            map.lock().unwrap_or_else(|p| p.into_inner()).remove(&s.id);
            s.forget().await;
            return;
        }
    });
}
