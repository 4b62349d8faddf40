//! The project engine's snapshot operations (seed 000 methods 9-12,
//! issue 11): SaveSnapshot (freezing running services while what changed
//! is captured), ListSnapshots, RestoreSnapshot, DuplicateProject, and
//! removing and pruning snapshots, over the shared [`SnapshotStore`].

use super::*;
use crate::snapshots::Freezer;

/// Freezes an open project's services for a save, from the save's
/// blocking thread (the runtime's calls are driven by the daemon's
/// runtime through `handle`).
struct ServiceFreezer {
    open: Arc<Open>,
    handle: tokio::runtime::Handle,
    frozen: Vec<String>,
}

impl Freezer for ServiceFreezer {
    fn freeze(&mut self) -> Result<(), String> {
        let open = self.open.clone();
        self.frozen = self
            .handle
            .block_on(async move { open.rt.freeze(&open.plan).await })
            .map_err(|e| e.message)?;
        Ok(())
    }

    fn thaw(&mut self) {
        let open = self.open.clone();
        let frozen = std::mem::take(&mut self.frozen);
        self.handle
            .block_on(async move { open.rt.thaw(&open.plan, frozen).await });
    }
}

/// Snapshots (seed 000 methods 9-12; issue 11).
impl Projects {
    pub(super) fn begin_save(&self, project_id: &str) -> Result<SaveGuard, ProjectError> {
        let mut saving = self.saving.lock().unwrap_or_else(|p| p.into_inner());
        if !saving.insert(project_id.to_owned()) {
            return Err(ProjectError::SaveInProgress(format!(
                "a snapshot of project {project_id:?} is being saved or restored; try again when it is done"
            )));
        }
        Ok(SaveGuard {
            saving: self.saving.clone(),
            id: project_id.to_owned(),
        })
    }

    pub(super) async fn snapshot_count(&self, project_id: &str) -> u32 {
        let snaps = self.snaps.clone();
        let id = project_id.to_owned();
        tokio::task::spawn_blocking(move || snaps.list(&id).map(|l| l.len() as u32))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(0)
    }

    pub(super) async fn save_locked(
        &self,
        row: &ProjectRow,
        reason: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<SnapshotInfo, ProjectError> {
        let manifest = Manifest::parse(row.manifest.as_bytes())?;
        let meta = SnapshotMeta {
            project_id: row.id.clone(),
            app_id: row.app_id.clone(),
            app_version: manifest.version,
            reason: reason.to_owned(),
            labels,
            parent_snapshot_id: String::new(),
        };
        let snaps = self.snaps.clone();
        let state = row.state_path.clone();
        let id = row.id.clone();
        // Running services are frozen while the save captures what
        // changed since its first pass.
        let freezer = self
            .slot(&row.id)
            .open()
            .filter(|_| matches!(row.status, ProjectState::Running | ProjectState::Starting))
            .map(|open| ServiceFreezer {
                open,
                handle: tokio::runtime::Handle::current(),
                frozen: Vec::new(),
            });
        // The save runs to its end even if the caller goes away, so a
        // freeze is always followed by its thaw.
        tokio::task::spawn_blocking(move || match freezer {
            Some(mut f) => snaps.save_frozen(&state, meta, &mut f),
            None => snaps.save(&state, meta),
        })
        .await
        .map_err(|e| ProjectError::SaveFailed(format!("the save of {id:?} stopped: {e}")))?
        .map_err(|e| ProjectError::SaveFailed(format!("cannot snapshot project {:?}: {e}", row.id)))
    }

    /// SaveSnapshot: captures the project's state path into the store.
    /// Errors: NOT_FOUND, SAVE_IN_PROGRESS (one save or restore per
    /// project at a time), SAVE_FAILED (nothing is listed then),
    /// INVALID_ARGUMENT (a reason outside [`SNAPSHOT_REASONS`], labels
    /// [`check_labels`](crate::projects::check_labels) refuses).
    pub async fn save_snapshot(&self, req: SaveRequest) -> Result<SnapshotInfo, ProjectError> {
        let row = self.row(&req.project_id)?;
        crate::projects::check_labels(req.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(ProjectError::InvalidArgument)?;
        let reason = if req.reason.is_empty() {
            "manual"
        } else {
            req.reason.as_str()
        };
        if !SNAPSHOT_REASONS.contains(&reason) {
            return Err(ProjectError::InvalidArgument(format!(
                "reason {reason:?} is not one of {}",
                SNAPSHOT_REASONS.join(", ")
            )));
        }
        let _guard = self.begin_save(&req.project_id)?;
        self.save_locked(&row, reason, req.labels).await
    }

    /// ListSnapshots: the project's snapshots, newest first.
    /// Errors: NOT_FOUND.
    pub async fn list_snapshots(
        &self,
        project_id: &str,
    ) -> Result<Vec<SnapshotInfo>, ProjectError> {
        self.row(project_id)?;
        let snaps = self.snaps.clone();
        let id = project_id.to_owned();
        tokio::task::spawn_blocking(move || snaps.list(&id))
            .await
            .map_err(|e| ProjectError::Internal(e.to_string()))?
            .map_err(|e| snap_error(project_id, e))
    }

    /// Removes one snapshot (its chunks go at the next prune).
    /// Errors: NOT_FOUND.
    pub async fn remove_snapshot(
        &self,
        project_id: &str,
        snapshot_id: &str,
    ) -> Result<(), ProjectError> {
        self.row(project_id)?;
        let _guard = self.begin_save(project_id)?;
        let snaps = self.snaps.clone();
        let (p, s) = (project_id.to_owned(), snapshot_id.to_owned());
        tokio::task::spawn_blocking(move || snaps.remove(&p, &s))
            .await
            .map_err(|e| ProjectError::Internal(e.to_string()))?
            .map_err(|e| snap_error(project_id, e))
    }

    /// RestoreSnapshot: takes a `before-restore` snapshot first (unless
    /// not asked), stops the project if it runs, replaces its state path
    /// exactly by the snapshot's tree (built beside it, swapped by
    /// rename: a crash leaves the old state or the new), and starts again
    /// what ran. Errors: NOT_FOUND (project or snapshot),
    /// SNAPSHOT_MISMATCH (another app_id, or another app_version unless
    /// `allow_version_mismatch`), SAVE_IN_PROGRESS, RESTORE_FAILED.
    pub async fn restore_snapshot(&self, req: RestoreRequest) -> Result<Restored, ProjectError> {
        let project_id = req.project_id.as_str();
        let row = self.row(project_id)?;
        let snaps = self.snaps.clone();
        let (p, s) = (project_id.to_owned(), req.snapshot_id.clone());
        let info = tokio::task::spawn_blocking(move || snaps.get(&p, &s))
            .await
            .map_err(|e| ProjectError::Internal(e.to_string()))?
            .map_err(|e| snap_error(project_id, e))?;
        let manifest = Manifest::parse(row.manifest.as_bytes())?;
        if info.meta.app_id != row.app_id {
            return Err(ProjectError::SnapshotMismatch(format!(
                "snapshot {} is of app {:?}; project {project_id:?} runs {:?}",
                info.snapshot_id, info.meta.app_id, row.app_id
            )));
        }
        if info.meta.app_version != manifest.version && !req.allow_version_mismatch {
            return Err(ProjectError::SnapshotMismatch(format!(
                "snapshot {} is of version {:?}; project {project_id:?} is at {:?} (allow_version_mismatch restores it anyway)",
                info.snapshot_id, info.meta.app_version, manifest.version
            )));
        }
        let _guard = self.begin_save(project_id)?;
        let safety = if req.create_safety_snapshot {
            self.save_locked(&row, "before-restore", BTreeMap::new())
                .await
                .map_err(|e| {
                    ProjectError::RestoreFailed(format!(
                        "the safety snapshot failed, so nothing was restored: {e}"
                    ))
                })?
                .snapshot_id
        } else {
            String::new()
        };
        let was_running = matches!(row.status, ProjectState::Running | ProjectState::Starting);
        if was_running {
            match self.stop(project_id, None).await {
                Ok(_) | Err(ProjectError::NotRunning(_)) => {}
                Err(e) => {
                    return Err(ProjectError::RestoreFailed(format!(
                        "project {project_id:?} could not be stopped, so nothing was restored: {e}"
                    )))
                }
            }
        }
        let slot = self.slot(project_id);
        let restored = {
            let _g = slot.op.lock().await;
            let snaps = self.snaps.clone();
            let (p, s, state) = (
                project_id.to_owned(),
                req.snapshot_id.clone(),
                row.state_path.clone(),
            );
            tokio::task::spawn_blocking(move || snaps.restore(&p, &s, &state))
                .await
                .map_err(|e| ProjectError::RestoreFailed(e.to_string()))?
        };
        let restart = if was_running {
            self.restart_open(project_id).await
        } else {
            Ok(())
        };
        if let Err(e) = restored {
            return Err(ProjectError::RestoreFailed(format!(
                "cannot restore snapshot {} of project {project_id:?} (its state is unchanged): {e}",
                req.snapshot_id
            )));
        }
        if let Err(e) = restart {
            return Err(ProjectError::RestoreFailed(format!(
                "snapshot {} was restored, but project {project_id:?} did not start again: {e}",
                req.snapshot_id
            )));
        }
        let row = self.row(project_id)?;
        let services = match slot.open() {
            Some(o) => self.service_states(&o, &row).await,
            None => match self.load(&row, Load::Read, &BTreeMap::new()).await {
                Ok(o) => self.service_states(&o, &row).await,
                Err(_) => Vec::new(),
            },
        };
        Ok(Restored {
            project_id: project_id.to_owned(),
            restored_snapshot_id: req.snapshot_id,
            safety_snapshot_id: safety,
            services,
        })
    }

    /// Starts again, with the plan (and secrets) it last ran with, a
    /// project that a restore stopped.
    async fn restart_open(&self, project_id: &str) -> Result<(), ProjectError> {
        let slot = self.slot(project_id);
        let _g = slot.op.lock().await;
        let Some(open) = slot.open() else {
            return Err(ProjectError::NotOpen(format!(
                "project {project_id:?} is no longer open"
            )));
        };
        persist::set_status(&self.store, project_id, ProjectState::Starting, "", None)?;
        open.rt
            .create_resources(&open.plan)
            .await
            .map_err(|e| ProjectError::Internal(e.message))?;
        let health = open.health.clone();
        let note = move |svc: &str, h: &str| {
            health
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(svc.to_owned(), h.to_owned());
        };
        if let Err(f) = orchestrate::start_all(open.rt.as_ref(), &open.plan, &note).await {
            orchestrate::stop_all(open.rt.as_ref(), &open.plan, None, ROLLBACK_GRACE).await;
            let msg = format!("service {} {}", f.service, f.message);
            persist::set_status(&self.store, project_id, ProjectState::Failed, &msg, None)?;
            return Err(ProjectError::StartFailed {
                service: f.service,
                message: msg,
                last_lines: Vec::new(),
            });
        }
        open.transient
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        persist::set_status(
            &self.store,
            project_id,
            ProjectState::Running,
            "",
            Some(berth_os::proc::now_epoch()),
        )?;
        slot.watch_health(open);
        Ok(())
    }

    /// DuplicateProject: registers `new_project_id` as a copy of
    /// `source_project_id` (same package, app and runtime; its own
    /// namespace, state path and host ports, allocated when it opens),
    /// its state built from `snapshot_id`, or from a snapshot of the
    /// source's current state (reason "manual", label
    /// `berth.duplicate=<new id>`) when none is given. The copy shares
    /// the snapshot's chunks in the store; its state is written out in
    /// full. Errors: NOT_FOUND (source or snapshot), CONFLICT (the new id
    /// is taken), INVALID_ARGUMENT (a malformed id), DUPLICATE_FAILED
    /// (nothing of the new project is left).
    pub async fn duplicate(
        &self,
        source_project_id: &str,
        new_project_id: &str,
        snapshot_id: Option<&str>,
    ) -> Result<Duplicated, ProjectError> {
        let src = self.row(source_project_id)?;
        plan::check_project_id(new_project_id)?;
        if persist::get(&self.store, new_project_id)?.is_some() {
            return Err(ProjectError::Conflict(format!(
                "a project with the id {new_project_id:?} is already registered"
            )));
        }
        let snap = match snapshot_id.filter(|s| !s.is_empty()) {
            Some(s) => s.to_owned(),
            None => {
                let _guard = self.begin_save(source_project_id)?;
                let labels =
                    BTreeMap::from([("berth.duplicate".to_owned(), new_project_id.to_owned())]);
                self.save_locked(&src, "manual", labels)
                    .await
                    .map_err(|e| ProjectError::DuplicateFailed(e.to_string()))?
                    .snapshot_id
            }
        };
        let state_path = self.cfg.state_root.join(new_project_id);
        if state_path.exists() {
            return Err(ProjectError::DuplicateFailed(format!(
                "{} already exists; move it away or choose another id",
                state_path.display()
            )));
        }
        let slot = self.slot(new_project_id);
        let _g = slot.op.lock().await;
        if let Some(parent) = state_path.parent() {
            berth_os::fsutil::ensure_private_dir(parent).map_err(|e| {
                ProjectError::DuplicateFailed(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let snaps = self.snaps.clone();
        let (p, s, dest) = (
            source_project_id.to_owned(),
            snap.clone(),
            state_path.clone(),
        );
        let built = tokio::task::spawn_blocking(move || snaps.materialize(&p, &s, &dest))
            .await
            .map_err(|e| ProjectError::DuplicateFailed(e.to_string()))?;
        if let Err(e) = built {
            let _ = std::fs::remove_dir_all(&state_path);
            return Err(match e {
                SnapshotError::NotFound(m) => ProjectError::NotFound(m),
                e => ProjectError::DuplicateFailed(format!(
                    "cannot copy the state of {source_project_id:?}: {e}"
                )),
            });
        }
        let namespace = plan::namespace(new_project_id);
        let row = ProjectRow {
            id: new_project_id.to_owned(),
            app_id: src.app_id.clone(),
            package_path: src.package_path.clone(),
            state_path: state_path.clone(),
            namespace: namespace.clone(),
            runtime: src.runtime,
            manifest: src.manifest.clone(),
            status: ProjectState::Stopped,
            detail: String::new(),
            autosave: false,
            created_at: berth_os::proc::now_epoch(),
            started_at: 0.0,
        };
        if let Err(e) = persist::put(&self.store, &row) {
            let _ = std::fs::remove_dir_all(&state_path);
            return Err(ProjectError::DuplicateFailed(e.to_string()));
        }
        Ok(Duplicated {
            new_project_id: new_project_id.to_owned(),
            namespace,
            state_path,
        })
    }
}
