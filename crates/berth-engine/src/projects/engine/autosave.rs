//! Autosave and retention (issue 11): per-project settings
//! ([`super::super::autosave`]), the timer that snapshots running
//! projects whose interval has passed, and pruning by a project's
//! retention policy (restic's `forget` rules, [`crate::snapshots::retention`])
//! followed by the chunk collection.

use super::*;
use crate::projects::autosave::{self, Autosave};
use crate::snapshots::Retention;

/// How often the autosave timer looks for projects that are due.
pub const AUTOSAVE_TICK: Duration = Duration::from_secs(15);

/// What a prune did: the snapshots its retention policy removed (none
/// without a project) and what the chunk collection freed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Ids of the autosave snapshots the policy did not keep.
    pub snapshots_removed: Vec<String>,
    /// Chunks no snapshot named any more.
    pub chunks_removed: u64,
    /// Their compressed bytes.
    pub bytes_freed: u64,
}

impl Projects {
    /// Turns autosave of `project_id` on (`Some`: every `interval`,
    /// keeping what `retention` keeps of its autosave snapshots; a `None`
    /// retention keeps the one set before, or keeps everything) or off
    /// (`None`: its interval and retention are kept, so `prune` still
    /// applies them). Errors: NOT_FOUND, INVALID_ARGUMENT (an interval
    /// under [`autosave::MIN_INTERVAL`] or over [`autosave::MAX_INTERVAL`]).
    pub fn set_autosave(
        &self,
        project_id: &str,
        on: Option<(Duration, Option<Retention>)>,
    ) -> Result<Autosave, ProjectError> {
        self.row(project_id)?;
        let old = autosave::get(&self.store, project_id)?;
        let a = match on {
            Some((interval, retention)) => {
                autosave::check_interval(interval).map_err(ProjectError::InvalidArgument)?;
                Autosave {
                    enabled: true,
                    interval,
                    retention: retention
                        .or_else(|| old.as_ref().map(|o| o.retention))
                        .unwrap_or_default(),
                    last_run: old.map(|o| o.last_run).unwrap_or(0.0),
                }
            }
            None => match old {
                Some(o) => Autosave {
                    enabled: false,
                    ..o
                },
                None => Autosave {
                    enabled: false,
                    interval: Duration::ZERO,
                    retention: Retention::default(),
                    last_run: 0.0,
                },
            },
        };
        autosave::put(&self.store, project_id, &a)?;
        Ok(a)
    }

    /// Project `project_id`'s autosave settings (off when never set).
    /// Errors: NOT_FOUND.
    pub fn autosave(&self, project_id: &str) -> Result<Autosave, ProjectError> {
        self.row(project_id)?;
        Ok(autosave::get(&self.store, project_id)?.unwrap_or(Autosave {
            enabled: false,
            interval: Duration::ZERO,
            retention: Retention::default(),
            last_run: 0.0,
        }))
    }

    /// Prunes: with a project, first removes the autosave snapshots its
    /// retention policy does not keep (none without a policy); then
    /// removes the chunks no snapshot of any project names. A crash
    /// midway never loses a snapshot that is still listed. Errors:
    /// NOT_FOUND, INTERNAL (a damaged record stops the collection).
    pub async fn prune_snapshots(
        &self,
        project_id: Option<&str>,
    ) -> Result<PruneReport, ProjectError> {
        let mut report = PruneReport::default();
        if let Some(id) = project_id.filter(|s| !s.is_empty()) {
            let policy = self.autosave(id)?.retention;
            let snaps = self.snaps.clone();
            let p = id.to_owned();
            report.snapshots_removed =
                tokio::task::spawn_blocking(move || snaps.forget(&p, "autosave", &policy))
                    .await
                    .map_err(|e| ProjectError::Internal(e.to_string()))?
                    .map_err(|e| snap_error(id, e))?;
        }
        let snaps = self.snaps.clone();
        let p = tokio::task::spawn_blocking(move || snaps.prune())
            .await
            .map_err(|e| ProjectError::Internal(e.to_string()))?
            .map_err(|e| ProjectError::Internal(format!("prune failed: {e}")))?;
        report.chunks_removed = p.chunks_removed;
        report.bytes_freed = p.bytes_freed;
        Ok(report)
    }

    /// One pass of the autosave timer at time `now` (seconds since the
    /// epoch): each running project with autosave on whose interval has
    /// passed since its last autosave is snapshotted (reason `autosave`)
    /// and pruned by its retention. A project with a save under way is
    /// tried at the next pass. Returns each attempt's outcome.
    pub async fn autosave_due(
        &self,
        now: f64,
    ) -> Vec<(String, Result<SnapshotInfo, ProjectError>)> {
        let mut out = Vec::new();
        let due = match autosave::enabled(&self.store) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("autosave: {e}");
                return out;
            }
        };
        for (id, a) in due {
            if now - a.last_run < a.interval.as_secs_f64() {
                continue;
            }
            let Ok(row) = self.row(&id) else { continue };
            if row.status != ProjectState::Running {
                continue;
            }
            let saved = match self.begin_save(&id) {
                Ok(_guard) => self.save_locked(&row, "autosave", BTreeMap::new()).await,
                Err(e) => {
                    out.push((id, Err(e)));
                    continue;
                }
            };
            if let Err(e) = autosave::mark_run(&self.store, &id, now) {
                tracing::warn!(project = %id, "autosave: {e}");
            }
            match &saved {
                Ok(s) => {
                    tracing::info!(project = %id, snapshot = %s.snapshot_id, "autosaved");
                    if !a.retention.is_empty() {
                        if let Err(e) = self.prune_snapshots(Some(&id)).await {
                            tracing::warn!(project = %id, "autosave prune: {e}");
                        }
                    }
                }
                Err(e) => tracing::warn!(project = %id, "autosave failed: {e}"),
            }
            out.push((id, saved));
        }
        out
    }

    /// The autosave timer: [`autosave_due`](Self::autosave_due) every
    /// [`AUTOSAVE_TICK`], until the task is dropped.
    pub async fn run_autosave(self: Arc<Self>) {
        let mut tick = tokio::time::interval(AUTOSAVE_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.autosave_due(berth_os::proc::now_epoch()).await;
        }
    }
}
