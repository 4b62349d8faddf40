//! `berth snapshot save|ls|restore|rm|prune|autosave` and `berth duplicate`:
//! snapshots of a project's state (seed 000 methods 9-12, issue 11),
//! clients of SaveSnapshot, ListSnapshots, RestoreSnapshot,
//! DeleteSnapshot, PruneSnapshots and DuplicateProject; and `berth
//! import` (ImportPackage). `--json` prints
//! the response's fields by their seed names.

use super::Client;
use crate::error::{CliError, CmdResult};
use crate::key_value;
use crate::output;
use berth_client::project::pb;
use clap::{Args, Subcommand};

/// `berth snapshot ...`.
#[derive(Subcommand)]
pub(crate) enum SnapshotCmd {
    /// Snapshot a project's state now.
    Save {
        /// Project id.
        id: String,
        /// A label, KEY=VALUE; repeatable.
        #[arg(long = "label", short = 'l', value_name = "KEY=VALUE")]
        labels: Vec<String>,
        /// manual, autosave, before-upgrade or before-restore.
        #[arg(long, default_value = "manual")]
        reason: String,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// A project's snapshots, newest first.
    Ls {
        /// Project id.
        id: String,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Put a snapshot back as the project's state (stopping and restarting
    /// it if it runs).
    Restore {
        /// Project id.
        id: String,
        /// The snapshot id (from `berth snapshot ls`).
        snapshot: String,
        /// Do not take a `before-restore` snapshot first.
        #[arg(long)]
        no_safety: bool,
        /// Accept a snapshot of another version of the app.
        #[arg(long)]
        allow_version_mismatch: bool,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove a snapshot (its data goes at the next prune).
    Rm {
        /// Project id.
        id: String,
        /// The snapshot id.
        snapshot: String,
        /// JSON instead of text (the ids removed).
        #[arg(long)]
        json: bool,
    },
    /// Free the stored data no snapshot uses any more; with a project,
    /// first remove the autosave snapshots its retention does not keep.
    Prune {
        /// Apply this project's retention (`berth snapshot autosave`).
        id: Option<String>,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Turn a project's autosave on (`--every` with a retention) or off.
    /// Retention follows restic's forget rules, in UTC, and applies to
    /// autosave snapshots only.
    #[command(group(clap::ArgGroup::new("mode").required(true).args(["every", "off"])))]
    Autosave {
        /// Project id.
        id: String,
        /// Time between autosaves of the running project (15m, 1h, 1d,
        /// 1d12h, ...; at least 1m, at most 365d). Without a `--keep-*`
        /// option the retention set before is kept.
        #[arg(long, value_name = "DURATION")]
        every: Option<String>,
        /// Turn autosave off (the interval and retention are kept).
        #[arg(long, conflicts_with_all = ["keep_last", "keep_hourly", "keep_daily", "keep_weekly"])]
        off: bool,
        /// Keep the newest N autosave snapshots.
        #[arg(long, value_name = "N")]
        keep_last: Option<u32>,
        /// Keep the newest of each of the last N hours that have one.
        #[arg(long, value_name = "N")]
        keep_hourly: Option<u32>,
        /// Keep the newest of each of the last N days that have one.
        #[arg(long, value_name = "N")]
        keep_daily: Option<u32>,
        /// Keep the newest of each of the last N weeks that have one.
        #[arg(long, value_name = "N")]
        keep_weekly: Option<u32>,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `berth duplicate SRC NEW [--from SNAP]`.
#[derive(Args)]
pub(crate) struct DuplicateArgs {
    /// The project to copy.
    source: String,
    /// The new project's id.
    new_id: String,
    /// Copy this snapshot instead of the current state.
    #[arg(long = "from", value_name = "SNAP")]
    from: Option<String>,
    /// JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// `berth import APP.vibeapp [--no-verify] [--json]`.
#[derive(Args)]
pub(crate) struct ImportArgs {
    /// The package file.
    package: std::path::PathBuf,
    /// Accept an unsigned package (a present signature is still checked).
    #[arg(long)]
    no_verify: bool,
    /// JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// An autosave interval: a Compose duration (`15m`, `1h30m`), optionally
/// led by whole days (`1d`, `2d12h`), since the longest interval is
/// stated in days (365). Errors name the text.
fn interval(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let (days, rest) = match t.split_once('d') {
        Some((d, rest)) => {
            let n: u64 = d
                .parse()
                .map_err(|_| format!("`{text}` is not a duration (like 15m, 1h30m, 1d, 2d12h)"))?;
            (n.min(u64::MAX / 86_400), rest)
        }
        None => return berth_compose::units::parse_duration(t),
    };
    let rest = if rest.is_empty() {
        std::time::Duration::ZERO
    } else {
        berth_compose::units::parse_duration(rest)?
    };
    Ok(std::time::Duration::from_secs(days * 86_400).saturating_add(rest))
}

fn print_json(v: serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
}

/// Runs one `berth snapshot` subcommand.
pub(super) async fn run(c: &mut Client, cmd: SnapshotCmd) -> CmdResult {
    match cmd {
        SnapshotCmd::Save {
            id,
            labels,
            reason,
            json,
        } => {
            let pairs = key_value::pairs("--label", &labels).map_err(CliError::usage)?;
            berth_engine::projects::check_labels(
                pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .map_err(|m| CliError::usage(format!("--label: {m}")))?;
            let mut labels = std::collections::HashMap::new();
            for (k, v) in pairs {
                if labels.contains_key(&k) {
                    return Err(CliError::usage(format!(
                        "--label: the key {k:?} is given twice; give each key once"
                    )));
                }
                labels.insert(k, v);
            }
            if !json {
                eprintln!("saving a snapshot of {id}...");
            }
            let r = c
                .save_snapshot(pb::SaveSnapshotRequest {
                    project_id: id,
                    reason,
                    labels,
                })
                .await?
                .into_inner();
            if json {
                print_json(serde_json::json!({
                    "snapshot_id": r.snapshot_id, "timestamp": r.timestamp,
                    "state_digest": r.state_digest, "size_bytes": r.size_bytes,
                    "added_bytes": r.added_bytes, "files_read": r.files_read,
                    "duration_ms": r.duration_ms, "paused_ms": r.paused_ms,
                }));
            } else {
                println!(
                    "{}  {} bytes, {} new bytes stored, {} files read, {} ms (services paused {} ms)\ndigest {}",
                    r.snapshot_id,
                    r.size_bytes,
                    r.added_bytes,
                    r.files_read,
                    r.duration_ms,
                    r.paused_ms,
                    r.state_digest
                );
            }
            Ok(0)
        }
        SnapshotCmd::Ls { id, json } => {
            let list = c
                .list_snapshots(pb::ListSnapshotsRequest { project_id: id })
                .await?
                .into_inner()
                .snapshots;
            if json {
                let v: Vec<_> = list
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "snapshot_id": s.snapshot_id, "timestamp": s.timestamp,
                            "parent_snapshot_id": s.parent_snapshot_id, "reason": s.reason,
                            "app_version": s.app_version, "state_digest": s.state_digest,
                            "size_bytes": s.size_bytes, "labels": s.labels,
                            "app_id": s.app_id, "added_bytes": s.added_bytes,
                        })
                    })
                    .collect();
                print_json(serde_json::json!({ "snapshots": v }));
            } else {
                let rows = list
                    .iter()
                    .map(|s| {
                        let mut labels: Vec<String> =
                            s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        labels.sort();
                        vec![
                            s.snapshot_id.clone(),
                            s.timestamp.clone(),
                            s.reason.clone(),
                            s.app_version.clone(),
                            s.size_bytes.to_string(),
                            s.state_digest.chars().take(12).collect(),
                            labels.join(","),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    output::table(
                        &["SNAPSHOT", "TIME", "REASON", "VERSION", "BYTES", "DIGEST", "LABELS"],
                        rows
                    )
                );
            }
            Ok(0)
        }
        SnapshotCmd::Restore {
            id,
            snapshot,
            no_safety,
            allow_version_mismatch,
            json,
        } => {
            if !json {
                eprintln!("restoring {snapshot} into {id}...");
            }
            let r = c
                .restore_snapshot(pb::RestoreSnapshotRequest {
                    project_id: id,
                    snapshot_id: snapshot,
                    create_safety_snapshot: Some(!no_safety),
                    allow_version_mismatch,
                })
                .await?
                .into_inner();
            if json {
                let svc: Vec<_> = r
                    .services
                    .iter()
                    .map(|s| serde_json::json!({"name": s.name, "status": s.status}))
                    .collect();
                print_json(serde_json::json!({
                    "project_id": r.project_id, "restored_snapshot_id": r.restored_snapshot_id,
                    "safety_snapshot_id": r.safety_snapshot_id, "services": svc,
                }));
            } else {
                println!("{}: restored {}", r.project_id, r.restored_snapshot_id);
                if !r.safety_snapshot_id.is_empty() {
                    println!("safety snapshot {}", r.safety_snapshot_id);
                }
            }
            Ok(0)
        }
        SnapshotCmd::Rm { id, snapshot, json } => {
            c.delete_snapshot(pb::DeleteSnapshotRequest {
                project_id: id.clone(),
                snapshot_id: snapshot.clone(),
            })
            .await?;
            // DeleteSnapshotResponse has no fields: the request's, to
            // say what went.
            if json {
                print_json(serde_json::json!({"project_id": id, "snapshot_id": snapshot}));
            }
            Ok(0)
        }
        SnapshotCmd::Prune { id, json } => {
            let r = c
                .prune_snapshots(pb::PruneSnapshotsRequest {
                    project_id: id.unwrap_or_default(),
                })
                .await?
                .into_inner();
            if json {
                print_json(serde_json::json!({
                    "chunks_removed": r.chunks_removed, "bytes_freed": r.bytes_freed,
                    "snapshots_removed": r.snapshots_removed,
                }));
            } else {
                for s in &r.snapshots_removed {
                    println!("removed {s}");
                }
                println!(
                    "{} chunks removed, {} bytes freed",
                    r.chunks_removed, r.bytes_freed
                );
            }
            Ok(0)
        }
        SnapshotCmd::Autosave {
            id,
            every,
            off,
            keep_last,
            keep_hourly,
            keep_daily,
            keep_weekly,
            json,
        } => {
            let interval = match every.as_deref() {
                Some(e) if !off => {
                    let d = interval(e).map_err(|m| CliError::usage(format!("--every: {m}")))?;
                    berth_engine::projects::autosave::check_interval(d)
                        .map_err(|m| CliError::usage(format!("--every {e}: {m}")))?;
                    d.as_secs() as i64
                }
                _ => 0,
            };
            let r = c
                .set_autosave(pb::SetAutosaveRequest {
                    project_id: id,
                    enabled: !off,
                    interval_seconds: interval,
                    // No --keep-* keeps the retention set before.
                    retention: [keep_last, keep_hourly, keep_daily, keep_weekly]
                        .iter()
                        .any(Option::is_some)
                        .then(|| pb::SnapshotRetention {
                            keep_last: keep_last.unwrap_or(0),
                            keep_hourly: keep_hourly.unwrap_or(0),
                            keep_daily: keep_daily.unwrap_or(0),
                            keep_weekly: keep_weekly.unwrap_or(0),
                        }),
                })
                .await?
                .into_inner();
            let k = r.retention.unwrap_or_default();
            if json {
                print_json(serde_json::json!({
                    "project_id": r.project_id, "enabled": r.enabled,
                    "interval_seconds": r.interval_seconds,
                    "retention": {
                        "keep_last": k.keep_last, "keep_hourly": k.keep_hourly,
                        "keep_daily": k.keep_daily, "keep_weekly": k.keep_weekly,
                    },
                    "last_run": r.last_run,
                }));
            } else if r.enabled {
                println!(
                    "{}: autosave every {}; keep last {}, hourly {}, daily {}, weekly {}",
                    r.project_id,
                    output::duration(r.interval_seconds as f64),
                    k.keep_last,
                    k.keep_hourly,
                    k.keep_daily,
                    k.keep_weekly
                );
            } else {
                println!("{}: autosave off", r.project_id);
            }
            Ok(0)
        }
    }
}

/// `berth duplicate`.
pub(super) async fn duplicate(c: &mut Client, a: DuplicateArgs) -> CmdResult {
    let r = c
        .duplicate_project(pb::DuplicateProjectRequest {
            source_project_id: a.source,
            new_project_id: a.new_id,
            snapshot_id: a.from,
        })
        .await?
        .into_inner();
    if a.json {
        let ports: Vec<serde_json::Value> = r
            .ports
            .iter()
            .map(|p| {
                serde_json::json!({
                    "service_name": p.service_name, "container_port": p.container_port,
                    "host_port": p.host_port, "protocol": p.protocol,
                })
            })
            .collect();
        print_json(serde_json::json!({
            "new_project_id": r.new_project_id, "namespace": r.namespace,
            "state_path": r.state_path, "ports": ports,
        }));
    } else {
        println!(
            "{} registered (namespace {}, state {})",
            r.new_project_id, r.namespace, r.state_path
        );
        for p in &r.ports {
            println!(
                "  host port {}/{} -> {}:{}",
                p.host_port, p.protocol, p.service_name, p.container_port
            );
        }
    }
    Ok(0)
}

/// `berth import`.
pub(super) async fn import(c: &mut Client, a: ImportArgs) -> CmdResult {
    let path = std::path::absolute(&a.package)
        .map_err(|e| CliError::usage(format!("{}: {e}", a.package.display())))?;
    let r = c
        .import_package(pb::ImportPackageRequest {
            package_data_path: path.display().to_string(),
            verify_signature: !a.no_verify,
        })
        .await?
        .into_inner();
    if a.json {
        print_json(serde_json::json!({
            "app_id": r.app_id, "name": r.name, "version": r.version,
            "trust_status": r.trust_status, "package_path": r.package_path,
            "capabilities": r.capabilities,
        }));
    } else {
        println!(
            "{} {} ({}), {}\nunpacked in {}\ncapabilities: {}",
            r.name,
            r.version,
            r.app_id,
            r.trust_status,
            r.package_path,
            if r.capabilities.is_empty() {
                "none".to_owned()
            } else {
                r.capabilities.join(", ")
            }
        );
    }
    Ok(0)
}
