//! Which browser terminal is which engine session: the client's session id
//! (per workspace) → the engine session, its owner (`sub`), display name,
//! and how many clients view it (for the orphan grace period).

use berth_engine::sessions::{PtySpawn, Session, Sessions};
use berth_engine::tabs::{Tab, Tabs};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One browser terminal.
#[derive(Clone)]
pub struct Term {
    /// The client's id (`[A-Za-z0-9._:-]{1,128}`).
    pub id: String,
    /// The engine session (what `berth attach` and the process API see).
    pub session: Arc<Session>,
    /// The user (`sub`) it belongs to.
    pub owner: String,
    /// Display name (`rename_session`).
    pub name: String,
    /// Working directory it started in.
    pub work_dir: String,
    /// Shell it runs.
    pub shell: String,
    /// Creation time, milliseconds since the epoch.
    pub created_at_ms: u64,
    /// Last input or output, milliseconds since the epoch.
    pub last_activity_ms: u64,
    clients: usize,
    epoch: u64,
}

type Key = (String, String);

/// Decides how a workspace's terminals start (set by the workspace
/// engine's surface): `None` = not a container workspace, a host shell;
/// `Some(Err(why))` = refused (not ready); `Some(Ok((argv, work_dir,
/// shell)))` = run `argv` (`docker exec -it …`), shown as `work_dir` and
/// `shell`.
pub type Launcher =
    Arc<dyn Fn(&str) -> Option<Result<(Vec<String>, String, String), String>> + Send + Sync>;

/// The table, keyed by (workspace, client session id).
pub struct Terminals {
    sessions: Arc<Sessions>,
    tabs: Arc<Tabs>,
    grace: Duration,
    map: Mutex<HashMap<Key, Term>>,
    launcher: Mutex<Option<Launcher>>,
}

/// Checks a client session id: `[A-Za-z0-9._:-]{1,128}` (seed 004's
/// agent; the rule agent session ids share); the error names the rule.
pub fn check_id(id: &str) -> Result<(), String> {
    berth_engine::agents::check_session_id(id)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Terminals {
    /// An empty table over the session engine; `grace` is the orphan grace
    /// period (zero: orphans run forever).
    pub fn new(sessions: Arc<Sessions>, tabs: Arc<Tabs>, grace: Duration) -> Arc<Self> {
        Arc::new(Self {
            sessions,
            tabs,
            grace,
            map: Mutex::new(HashMap::new()),
            launcher: Mutex::new(None),
        })
    }

    /// Sets how workspace terminals start (see [`Launcher`]).
    pub fn set_launcher(&self, l: Launcher) {
        *lock(&self.launcher) = Some(l);
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Sessions> {
        &self.sessions
    }

    /// The persisted tabs.
    pub fn tabs(&self) -> &Arc<Tabs> {
        &self.tabs
    }

    /// Starts a terminal `id` for `owner` in `workspace`, running `shell`
    /// in `work_dir`. Fails if the id is taken or the shell cannot start.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        &self,
        workspace: &str,
        id: &str,
        owner: &str,
        name: Option<String>,
        shell: &str,
        work_dir: &str,
        rows: u16,
        cols: u16,
    ) -> Result<Term, String> {
        check_id(id)?;
        let key = (workspace.to_string(), id.to_string());
        if lock(&self.map).contains_key(&key) {
            return Err(format!("session {id:?} already exists"));
        }
        // A container workspace's terminal runs in its container.
        let launch = lock(&self.launcher).clone().and_then(|f| f(workspace));
        let (argv, cwd, work_dir, shell) = match launch {
            None => (
                vec![shell.to_string()],
                work_dir.to_string(),
                work_dir.to_string(),
                shell.to_string(),
            ),
            Some(Err(why)) => return Err(why),
            Some(Ok((argv, dir, sh))) => (argv, String::new(), dir, sh),
        };
        let (work_dir, shell) = (work_dir.as_str(), shell.as_str());
        let session = self
            .sessions
            .spawn_pty(&PtySpawn {
                argv,
                cwd,
                env: vec![
                    ("TERM".into(), "xterm-256color".into()),
                    ("COLORTERM".into(), "truecolor".into()),
                ],
                clear_env: false,
                user_baseline: false,
                rows: rows.into(),
                cols: cols.into(),
                originator: format!("node-api:{owner}"),
                name: String::new(),
            })
            .map_err(|e| format!("cannot start a terminal: {e}"))?;
        let now = now_ms();
        let term = Term {
            id: id.to_string(),
            session,
            owner: owner.to_string(),
            name: name.unwrap_or_else(|| id.to_string()),
            work_dir: work_dir.to_string(),
            shell: shell.to_string(),
            created_at_ms: now,
            last_activity_ms: now,
            clients: 0,
            epoch: 0,
        };
        lock(&self.map).insert(key, term.clone());
        let tab = Tab {
            id: id.to_string(),
            workspace_id: workspace.to_string(),
            kind: "terminal".into(),
            label: term.name.clone(),
            agent_id: None,
            sort_order: 0,
            created_at: iso(now),
            acp_session_id: None,
            last_prompt: None,
        };
        if let Err(e) = self.tabs.put(&tab) {
            tracing::warn!(session = %id, "cannot save the tab: {e}");
        }
        Ok(term)
    }

    /// Terminal `id` of `workspace` if `owner` owns it; errors say which.
    pub fn get(&self, workspace: &str, id: &str, owner: &str) -> Result<Term, String> {
        check_id(id)?;
        let map = lock(&self.map);
        let t = map
            .get(&(workspace.to_string(), id.to_string()))
            .ok_or_else(|| format!("no session {id:?}"))?;
        if t.owner != owner {
            return Err(format!("session {id:?} belongs to another user"));
        }
        Ok(t.clone())
    }

    /// Renames terminal `id`.
    pub fn rename(&self, workspace: &str, id: &str, owner: &str, name: &str) -> Result<(), String> {
        self.get(workspace, id, owner)?;
        if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
            return Err("a name is 1 to 128 printable characters".into());
        }
        if let Some(t) = lock(&self.map).get_mut(&(workspace.to_string(), id.to_string())) {
            t.name = name.to_string();
        }
        if let Err(e) = self.tabs.relabel(workspace, id, name) {
            tracing::warn!(session = %id, "cannot rename the tab: {e}");
        }
        Ok(())
    }

    /// Ends terminal `id` (SIGHUP, then SIGKILL after the engine's grace)
    /// and forgets it.
    pub fn close(&self, workspace: &str, id: &str, owner: &str) -> Result<Term, String> {
        let t = self.get(workspace, id, owner)?;
        self.forget(workspace, id);
        let _ = self.sessions.terminate(t.session.id(), None);
        Ok(t)
    }

    /// Forgets a terminal whose process ended.
    pub fn forget(&self, workspace: &str, id: &str) {
        lock(&self.map).remove(&(workspace.to_string(), id.to_string()));
        if let Err(e) = self.tabs.remove(workspace, id) {
            tracing::warn!(session = %id, "cannot remove the tab: {e}");
        }
    }

    /// `owner`'s terminals in `workspace`, oldest first.
    pub fn list(&self, workspace: &str, owner: &str) -> Vec<Term> {
        let mut v: Vec<Term> = lock(&self.map)
            .iter()
            .filter(|((w, _), t)| w == workspace && t.owner == owner)
            .map(|(_, t)| t.clone())
            .collect();
        v.sort_by(|a, b| a.created_at_ms.cmp(&b.created_at_ms).then(a.id.cmp(&b.id)));
        v
    }

    /// Records input or output on `id` now.
    pub fn touch(&self, workspace: &str, id: &str) {
        if let Some(t) = lock(&self.map).get_mut(&(workspace.to_string(), id.to_string())) {
            t.last_activity_ms = now_ms();
        }
    }

    /// A client started viewing `id`.
    pub fn join(&self, workspace: &str, id: &str) {
        if let Some(t) = lock(&self.map).get_mut(&(workspace.to_string(), id.to_string())) {
            t.clients += 1;
            t.epoch += 1;
        }
    }

    /// A client stopped viewing `id`; the last one leaving starts the
    /// orphan grace period, after which the terminal is ended unless a
    /// client came back.
    pub fn leave(self: &Arc<Self>, workspace: &str, id: &str) {
        let key = (workspace.to_string(), id.to_string());
        let epoch = {
            let mut map = lock(&self.map);
            let Some(t) = map.get_mut(&key) else { return };
            t.clients = t.clients.saturating_sub(1);
            if t.clients > 0 || self.grace.is_zero() {
                return;
            }
            t.epoch
        };
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(me.grace).await;
            let expired = {
                let map = lock(&me.map);
                map.get(&key)
                    .is_some_and(|t| t.clients == 0 && t.epoch == epoch)
            };
            if expired {
                tracing::info!(session = %key.1, "orphaned terminal ended after the grace period");
                let owner = lock(&me.map).get(&key).map(|t| t.owner.clone());
                if let Some(owner) = owner {
                    let _ = me.close(&key.0, &key.1, &owner);
                }
            }
        });
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// RFC 3339 UTC of milliseconds since the epoch.
pub fn iso(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn iso_dates() {
        assert_eq!(super::iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(super::iso(1_709_210_096_789), "2024-02-29T12:34:56.789Z");
    }
}
