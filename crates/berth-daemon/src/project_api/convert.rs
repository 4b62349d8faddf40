//! Engine types ↔ `berth.supervisor.v1` messages. Pure functions: every
//! spelling on the wire (states, protocols, timestamps) is decided here.

use berth_engine::projects::{self as eng, FieldNote, RuntimeKind, ValidationReport};
use berth_engine::snapshots::SnapshotInfo;
use berth_wire::supervisor as pb;
use std::path::Path;

pub use berth_os::time::iso8601;

/// Counts and sizes are unsigned in the engine and `int32`/`int64` in the
/// seed; saturate rather than wrap so a huge value never reads negative.
fn i32_of(n: impl TryInto<i32>) -> i32 {
    n.try_into().unwrap_or(i32::MAX)
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// A service's status.
pub fn service(s: &eng::ServiceStatus) -> pb::ServiceStatus {
    pb::ServiceStatus {
        name: s.name.clone(),
        status: s.state.as_str().into(),
        container_id: s.container_id.clone(),
        started_at: s.started_at.map(iso8601).unwrap_or_default(),
        restart_count: i32_of(s.restart_count),
        detail: s.detail.clone(),
        health: s.health.clone(),
    }
}

fn services(v: &[eng::ServiceStatus]) -> Vec<pb::ServiceStatus> {
    v.iter().map(service).collect()
}

/// A host port mapping.
pub fn port(p: &eng::PortMapping) -> pb::PortMapping {
    pb::PortMapping {
        service_name: p.service.clone(),
        container_port: i32::from(p.container_port),
        host_port: i32::from(p.host_port),
        protocol: p.protocol.as_str().into(),
        host_ip: p.host_ip.clone(),
        requested: p.requested,
    }
}

/// Host port mappings.
pub fn ports(v: &[eng::PortMapping]) -> Vec<pb::PortMapping> {
    v.iter().map(port).collect()
}

/// A `runtime` request field: "" means the daemon's default.
pub fn runtime(field: &str, s: &str) -> Result<Option<RuntimeKind>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    RuntimeKind::parse(s)
        .map(Some)
        .ok_or_else(|| format!("{field}: {s:?} is not a runtime; use \"docker\" or \"native\""))
}

/// EnsureProject's request; fails naming a malformed field.
pub fn ensure_request(r: pb::EnsureProjectRequest) -> Result<eng::EnsureRequest, String> {
    Ok(eng::EnsureRequest {
        runtime: runtime("runtime", &r.runtime)?,
        project_id: r.project_id,
        app_id: r.app_id,
        package_path: r.package_path.into(),
        state_path: (!r.state_path.is_empty()).then(|| r.state_path.into()),
        manifest: r.manifest,
    })
}

/// EnsureProject's answer.
pub fn ensured(e: eng::Ensured) -> pb::EnsureProjectResponse {
    pb::EnsureProjectResponse {
        project_id: e.project_id,
        namespace: e.namespace,
        created: e.created,
        state_path: path_str(&e.state_path),
        runtime: e.runtime.as_str().into(),
    }
}

/// OpenProject's answer.
pub fn opened(o: eng::Opened) -> pb::OpenProjectResponse {
    pb::OpenProjectResponse {
        project_id: o.project_id,
        services: services(&o.services),
        images_pulled: i32_of(o.images_pulled),
        warnings: o.warnings,
    }
}

/// One OpenProjectWithProgress event.
pub fn progress(p: eng::Progress) -> pb::OpenProjectProgress {
    use pb::open_project_progress::Event;
    let event = match p {
        eng::Progress::Image {
            image,
            status,
            current,
            total,
        } => Event::Image(pb::ImageProgress {
            image,
            status,
            current,
            total,
        }),
        eng::Progress::Note(n) => Event::Note(n),
    };
    pb::OpenProjectProgress { event: Some(event) }
}

/// StartProject's answer.
pub fn started(s: eng::Started) -> pb::StartProjectResponse {
    pb::StartProjectResponse {
        project_id: s.project_id,
        services: services(&s.services),
        ports: ports(&s.ports),
    }
}

/// StopProject's answer.
pub fn stopped(s: eng::Stopped) -> pb::StopProjectResponse {
    pb::StopProjectResponse {
        project_id: s.project_id,
        services: services(&s.services),
    }
}

/// DeleteProjectRuntime's answer.
pub fn deleted(d: eng::Deleted) -> pb::DeleteProjectRuntimeResponse {
    pb::DeleteProjectRuntimeResponse {
        project_id: d.project_id,
        resources_removed: d.resources_removed,
    }
}

/// One ListProjects line.
pub fn summary(s: eng::ProjectSummary) -> pb::ProjectSummary {
    pb::ProjectSummary {
        project_id: s.project_id,
        app_id: s.app_id,
        name: s.name,
        status: s.status.as_str().into(),
        service_count: i32_of(s.service_count),
        port_count: i32_of(s.port_count),
    }
}

/// GetProjectStatus's answer.
pub fn status(s: eng::ProjectStatus) -> pb::GetProjectStatusResponse {
    pb::GetProjectStatusResponse {
        services: services(&s.services),
        ports: ports(&s.ports),
        project_id: s.project_id,
        app_id: s.app_id,
        name: s.name,
        version: s.version,
        status: s.status.as_str().into(),
        state_size_bytes: i64::try_from(s.state_size_bytes).unwrap_or(i64::MAX),
        snapshot_count: i32_of(s.snapshot_count),
        autosave_enabled: s.autosave_enabled,
        namespace: s.namespace,
        runtime: s.runtime.as_str().into(),
        open: s.open,
        state_path: path_str(&s.state_path),
        package_path: path_str(&s.package_path),
        autosave: None,
    }
}

/// One log line.
pub fn log_entry(e: eng::LogEntry) -> pb::LogEntry {
    pb::LogEntry {
        timestamp: iso8601(e.timestamp),
        service_name: e.service,
        stream: e.stream.as_str().into(),
        line: e.line,
    }
}

fn notes(v: Vec<FieldNote>) -> Vec<pb::FieldNote> {
    v.into_iter()
        .map(|n| pb::FieldNote {
            service: n.service,
            path: n.path,
            reason: n.reason,
        })
        .collect()
}

/// ValidateCompose's report.
pub fn report(r: ValidationReport) -> pb::ValidateComposeResponse {
    pb::ValidateComposeResponse {
        valid: r.valid,
        services: r.services,
        supported_fields: notes(r.supported_fields),
        transformed_fields: notes(r.transformed_fields),
        rejected_fields: notes(r.rejected_fields),
        warnings: notes(r.warnings),
    }
}

/// A snapshot as SaveSnapshot answers it; `took` is the save's duration.
pub fn saved(s: &SnapshotInfo, took: std::time::Duration) -> pb::SaveSnapshotResponse {
    pb::SaveSnapshotResponse {
        snapshot_id: s.snapshot_id.clone(),
        timestamp: berth_os::time::iso8601(s.timestamp),
        state_digest: s.state_digest.clone(),
        size_bytes: s.size_bytes as i64,
        added_bytes: s.added_bytes as i64,
        files_read: s.files_read as i64,
        duration_ms: took.as_millis() as i64,
        paused_ms: s.paused_ms as i64,
    }
}

/// A retention policy from the wire.
pub fn retention(r: pb::SnapshotRetention) -> berth_engine::snapshots::Retention {
    berth_engine::snapshots::Retention {
        keep_last: r.keep_last,
        keep_hourly: r.keep_hourly,
        keep_daily: r.keep_daily,
        keep_weekly: r.keep_weekly,
    }
}

/// A project's autosave settings on the wire.
pub fn autosave(project_id: &str, a: &berth_engine::projects::Autosave) -> pb::AutosaveSettings {
    pb::AutosaveSettings {
        project_id: project_id.to_owned(),
        enabled: a.enabled,
        interval_seconds: a.interval.as_secs() as i64,
        retention: Some(pb::SnapshotRetention {
            keep_last: a.retention.keep_last,
            keep_hourly: a.retention.keep_hourly,
            keep_daily: a.retention.keep_daily,
            keep_weekly: a.retention.keep_weekly,
        }),
        last_run: if a.last_run > 0.0 {
            berth_os::time::iso8601(a.last_run)
        } else {
            String::new()
        },
    }
}

/// One line of ListSnapshots.
pub fn snapshot(s: SnapshotInfo) -> pb::SnapshotSummary {
    pb::SnapshotSummary {
        snapshot_id: s.snapshot_id,
        timestamp: berth_os::time::iso8601(s.timestamp),
        parent_snapshot_id: s.meta.parent_snapshot_id,
        reason: s.meta.reason,
        app_version: s.meta.app_version,
        state_digest: s.state_digest,
        size_bytes: s.size_bytes as i64,
        labels: s.meta.labels.into_iter().collect(),
        app_id: s.meta.app_id,
        added_bytes: s.added_bytes as i64,
    }
}

/// RestoreSnapshot's request (the safety snapshot defaults to on).
pub fn restore_request(r: pb::RestoreSnapshotRequest) -> eng::RestoreRequest {
    eng::RestoreRequest {
        project_id: r.project_id,
        snapshot_id: r.snapshot_id,
        create_safety_snapshot: r.create_safety_snapshot.unwrap_or(true),
        allow_version_mismatch: r.allow_version_mismatch,
    }
}

/// RestoreSnapshot's answer.
pub fn restored(r: eng::Restored) -> pb::RestoreSnapshotResponse {
    pb::RestoreSnapshotResponse {
        project_id: r.project_id,
        restored_snapshot_id: r.restored_snapshot_id,
        safety_snapshot_id: r.safety_snapshot_id,
        services: r.services.iter().map(service).collect(),
    }
}

/// DuplicateProject's answer.
pub fn duplicated(d: eng::Duplicated) -> pb::DuplicateProjectResponse {
    pb::DuplicateProjectResponse {
        new_project_id: d.new_project_id,
        namespace: d.namespace,
        state_path: d.state_path.display().to_string(),
        ports: d.ports.iter().map(port).collect(),
    }
}

/// A container workspace (berth extension `ListWorkspaces`).
pub fn workspace(w: &berth_engine::workspaces::Workspace) -> pb::WorkspaceSummary {
    pb::WorkspaceSummary {
        workspace_id: w.id.clone(),
        repository: w.repository.clone(),
        branch: w.branch.clone(),
        status: w.status.as_str().to_string(),
        step: w.step.clone(),
        error: w.error.clone(),
        container: w.container.clone(),
        image: w.image.clone(),
        workspace_folder: w.workspace_folder.clone(),
        remote_user: w.remote_user.clone(),
        volume: w.volume(),
        ports: w
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{}->{}", p.host_port, p.container_port))
            .collect(),
        created_at: w.created_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_iso8601_utc_with_millis() {
        assert_eq!(iso8601(0.0), "1970-01-01T00:00:00.000Z");
        // 2026-01-02T03:04:05.678Z
        assert_eq!(iso8601(1_767_323_045.678), "2026-01-02T03:04:05.678Z");
        // A leap day, and rounding that carries into the next second.
        assert_eq!(iso8601(951_782_399.999_6), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601(-0.5), "1969-12-31T23:59:59.500Z");
    }

    #[test]
    fn services_and_ports_use_the_seed_spellings() {
        let s = service(&eng::ServiceStatus {
            name: "web".into(),
            state: eng::ServiceState::Running,
            container_id: "abc".into(),
            started_at: Some(1_767_323_045.678),
            restart_count: 2,
            detail: String::new(),
            health: "healthy".into(),
        });
        assert_eq!(s.status, "running");
        assert_eq!(s.started_at, "2026-01-02T03:04:05.678Z");
        assert_eq!(s.restart_count, 2);
        let p = port(&eng::PortMapping {
            service: "db".into(),
            container_port: 5432,
            host_port: 15432,
            protocol: eng::Protocol::Udp,
            host_ip: "127.0.0.1".into(),
            requested: false,
        });
        assert_eq!((p.protocol.as_str(), p.host_port), ("udp", 15432));
    }

    #[test]
    fn runtime_names_the_field() {
        assert_eq!(runtime("runtime", "").unwrap(), None);
        assert_eq!(
            runtime("runtime", "native").unwrap(),
            Some(RuntimeKind::Native)
        );
        assert!(runtime("runtime", "podman")
            .unwrap_err()
            .starts_with("runtime: \"podman\""));
    }
}
