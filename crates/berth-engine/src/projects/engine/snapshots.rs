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
        // A state path that is gone (moved or removed by hand; an
        // interrupted restore is put back first) is an error, not an
        // empty snapshot: with autosave's keep-last, empty snapshots
        // would rotate the good ones out.
        if !state.exists() {
            let _ = self.snaps.recover(&state);
            if !state.exists() {
                return Err(ProjectError::SaveFailed(format!(
                    "the state path {} of project {id:?} does not exist (moved or removed?); nothing was saved",
                    state.display()
                )));
            }
        }
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
        // Services the user stopped (or that ended) while the project ran
        // stay stopped: the restore starts again what ran, not more.
        let mut not_running = Vec::new();
        if was_running {
            if let Some(open) = self.slot(project_id).open() {
                for svc in &open.plan.services {
                    let up = matches!(
                        open.rt.inspect(&open.plan, &svc.name).await,
                        Ok(Some(o)) if o.running
                    );
                    if !up {
                        not_running.push(svc.name.clone());
                    }
                }
            }
        }
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
            self.restart_open(project_id, &not_running).await
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
    /// project that a restore stopped, all but the services in `skip`
    /// (those that were not running before it).
    async fn restart_open(&self, project_id: &str, skip: &[String]) -> Result<(), ProjectError> {
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
        // A skipped service is no dependency to wait for: start_all waits
        // only on services of the plan it is given.
        let mut plan = open.plan.clone();
        plan.services.retain(|s| !skip.contains(&s.name));
        if let Err(f) = orchestrate::start_all(open.rt.as_ref(), &plan, &note).await {
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
    /// namespace and state path), its state built from `snapshot_id`, or
    /// from a snapshot of the source's current state (reason "manual",
    /// label `berth.duplicate=<new id>`) when none is given. Every host
    /// port the Compose file fixes (`"18080:8080"`) is moved for the copy
    /// to a free port chosen now and kept across its restarts (reported
    /// in `ports`, and by GetProjectStatus), so the copy runs beside its
    /// source. The state is written to `<state root>/.duplicate-<new id>`,
    /// the copy registered, and the state renamed into place, so a crash
    /// never leaves a half copy under the new id ([`Projects::open`]
    /// removes a temporary of an unregistered copy and finishes the
    /// rename of a registered one). The copy
    /// shares the snapshot's chunks in the store; its state is written
    /// out in full. Errors: NOT_FOUND (source or snapshot), CONFLICT (the
    /// new id is taken), INVALID_ARGUMENT (a malformed id),
    /// DUPLICATE_FAILED (nothing of the new project is left, and no
    /// snapshot made for it).
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
        // Everything that can refuse the copy is checked before a
        // snapshot is taken for it.
        let state_path = self.cfg.state_root.join(new_project_id);
        if state_path.exists() {
            return Err(ProjectError::DuplicateFailed(format!(
                "{} already exists and belongs to no project; move it away or choose another id",
                state_path.display()
            )));
        }
        let slot = self.slot(new_project_id);
        let _g = slot.op.lock().await;
        berth_os::fsutil::ensure_private_dir(&self.cfg.state_root).map_err(|e| {
            ProjectError::DuplicateFailed(format!(
                "cannot create {}: {e}",
                self.cfg.state_root.display()
            ))
        })?;
        let (ports, moved) = self.duplicate_ports(&src, new_project_id)?;
        let made = match snapshot_id.filter(|s| !s.is_empty()) {
            Some(_) => None,
            None => {
                let _guard = self.begin_save(source_project_id)?;
                let labels =
                    BTreeMap::from([("berth.duplicate".to_owned(), new_project_id.to_owned())]);
                let info = self
                    .save_locked(&src, "manual", labels)
                    .await
                    .map_err(|e| ProjectError::DuplicateFailed(e.to_string()))?;
                Some(info.snapshot_id)
            }
        };
        let snap = made
            .clone()
            .or_else(|| snapshot_id.map(str::to_owned))
            .unwrap_or_default();
        let result = self
            .duplicate_from(&src, new_project_id, &snap, &state_path, &ports, &moved)
            .await;
        if result.is_err() {
            // A refused copy leaves no snapshot made for it behind.
            if let Some(made) = made {
                let snaps = self.snaps.clone();
                let p = source_project_id.to_owned();
                let _ = tokio::task::spawn_blocking(move || snaps.remove(&p, &made)).await;
            }
        }
        result
    }

    /// The host ports of a copy of `src`: each port its file fixes is
    /// moved (returned in the second list) to a free port no project
    /// holds; the others are allocated as at any first open. A file that
    /// no longer resolves gives none (the copy's open reports why).
    fn duplicate_ports(
        &self,
        src: &ProjectRow,
        new_project_id: &str,
    ) -> Result<(Vec<PortMapping>, Vec<persist::PortKey>), ProjectError> {
        let manifest = Manifest::parse(src.manifest.as_bytes())?;
        let Some(project) = super::super::validate::check(
            &manifest,
            &src.package_path,
            src.runtime.validation(),
            None,
        )
        .ok()
        .and_then(|c| c.project) else {
            return Ok((Vec::new(), Vec::new()));
        };
        let wanted = plan::wanted_ports(&project.file)?;
        let moved: Vec<persist::PortKey> = wanted
            .iter()
            .filter(|w| w.host_port.is_some())
            .map(|w| (w.service.clone(), w.container_port, w.protocol))
            .collect();
        let others = persist::ports_of_others(&self.store, new_project_id)?;
        let ports = super::super::ports::allocate(
            &unrequest(wanted, &moved),
            &[],
            &others,
            true,
            src.runtime == RuntimeKind::Native,
        )
        .map_err(|e| ProjectError::DuplicateFailed(format!("no host ports for the copy: {e}")))?;
        Ok((ports, moved))
    }

    /// Writes snapshot `snap` of `src` to a temporary sibling of
    /// `state_path`, registers the copy and renames its state into place.
    async fn duplicate_from(
        &self,
        src: &ProjectRow,
        new_project_id: &str,
        snap: &str,
        state_path: &Path,
        ports: &[PortMapping],
        moved: &[persist::PortKey],
    ) -> Result<Duplicated, ProjectError> {
        let tmp = self.cfg.state_root.join(duplicate_temp(new_project_id));
        let snaps = self.snaps.clone();
        let (p, s, dest) = (src.id.clone(), snap.to_owned(), tmp.clone());
        let built = tokio::task::spawn_blocking(move || {
            // A crashed earlier try of this copy may have left its temporary.
            match std::fs::remove_dir_all(&dest) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(SnapshotError::Io {
                        context: format!("removing {}", dest.display()),
                        source: e,
                    })
                }
                _ => {}
            }
            snaps.materialize(&p, &s, &dest)
        })
        .await
        .map_err(|e| ProjectError::DuplicateFailed(e.to_string()))?;
        let fail = |e: ProjectError| {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        };
        if let Err(e) = built {
            return fail(match e {
                SnapshotError::NotFound(m) => ProjectError::NotFound(m),
                e => ProjectError::DuplicateFailed(format!(
                    "cannot copy the state of {:?}: {e}",
                    src.id
                )),
            });
        }
        let namespace = plan::namespace(new_project_id);
        let row = ProjectRow {
            id: new_project_id.to_owned(),
            app_id: src.app_id.clone(),
            package_path: src.package_path.clone(),
            state_path: state_path.to_owned(),
            namespace: namespace.clone(),
            runtime: src.runtime,
            manifest: src.manifest.clone(),
            status: ProjectState::Stopped,
            detail: String::new(),
            autosave: false,
            created_at: berth_os::proc::now_epoch(),
            started_at: 0.0,
        };
        // Registered (with its moved ports) before the whole copy is
        // renamed into place: a daemon killed between the two finishes
        // the rename when it next opens (`remove_leftovers`).
        if let Err(e) = persist::put_with_ports(&self.store, &row, ports, moved) {
            return fail(ProjectError::DuplicateFailed(e.to_string()));
        }
        if let Err(e) = std::fs::rename(&tmp, state_path) {
            let _ = persist::delete(&self.store, new_project_id);
            return fail(ProjectError::DuplicateFailed(format!(
                "cannot move the copy to {}: {e}",
                state_path.display()
            )));
        }
        Ok(Duplicated {
            new_project_id: new_project_id.to_owned(),
            namespace,
            state_path: state_path.to_owned(),
            ports: ports.to_vec(),
        })
    }
}

/// The temporary a copy to `new_project_id` is written to, in the state
/// root (a project id never starts with '.', so no project owns it).
pub(super) fn duplicate_temp(new_project_id: &str) -> String {
    format!("{DUPLICATE_TEMP_PREFIX}{new_project_id}")
}

/// The prefix of [`duplicate_temp`] names.
pub(super) const DUPLICATE_TEMP_PREFIX: &str = ".duplicate-";
