//! `berth up`, `down`, `projects`, `project ...` and `validate`: a client
//! of the project API (gRPC over the daemon's `project.sock`).

use crate::output;
use berth_client::project::{self, pb, SupervisorClient};
use clap::{Args, Subcommand};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tonic::transport::Channel;

/// `berth up`.
#[derive(Args)]
pub struct UpArgs {
    /// The project: a directory (with compose.yaml and optionally
    /// manifest.json) or a Compose file. Default: the current directory.
    path: Option<PathBuf>,
    /// Project id (default: the directory's name, lowercased).
    #[arg(long)]
    id: Option<String>,
    /// Runtime: docker or native (default: the daemon's; docker when an
    /// engine answers, else native).
    #[arg(long)]
    runtime: Option<String>,
    /// A secret, NAME=VALUE, or NAME to take it from this environment;
    /// repeatable.
    #[arg(long = "secret", short = 's', value_name = "NAME[=VALUE]")]
    secrets: Vec<String>,
    /// Print nothing but errors.
    #[arg(long, short = 'q')]
    quiet: bool,
    #[command(flatten)]
    compose: crate::config_cmd::ComposeOpts,
}

/// `berth down`.
#[derive(Args)]
pub struct DownArgs {
    /// Project id, or its directory / Compose file.
    target: Option<String>,
    /// Seconds each service gets to stop before it is killed.
    #[arg(long, short = 't')]
    timeout: Option<u32>,
    /// Only stop: keep containers, networks and native services defined.
    #[arg(long)]
    keep: bool,
}

/// `berth projects`.
#[derive(Args)]
pub struct ProjectsArgs {
    /// Only projects in this state (running, starting, stopping, stopped, failed).
    #[arg(long)]
    status: Option<String>,
    /// JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// `berth project ...`.
#[derive(Subcommand)]
pub enum ProjectCmd {
    /// Everything about one project.
    Status {
        /// Project id.
        id: String,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Its services' logs.
    Logs {
        /// Project id.
        id: String,
        /// Only this service.
        #[arg(long)]
        service: Option<String>,
        /// Keep printing new lines.
        #[arg(long, short = 'f')]
        follow: bool,
        /// Lines from the end (default 100).
        #[arg(long, short = 'n')]
        tail: Option<i32>,
    },
    /// Its host ports.
    Ports {
        /// Project id.
        id: String,
        /// Check each port is served and take broken ones back.
        #[arg(long)]
        refresh: bool,
    },
    /// Remove its runtime resources (containers, networks, native
    /// services); its state and registration stay.
    Rm {
        /// Project id.
        id: String,
        /// Stop it first if it runs.
        #[arg(long)]
        force: bool,
    },
}

/// `berth validate`.
#[derive(Args)]
pub struct ValidateArgs {
    /// The Compose file.
    file: PathBuf,
    /// Validate for this runtime (docker or native; default: the daemon's).
    #[arg(long)]
    runtime: Option<String>,
    /// JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// A project subcommand.
pub enum Cmd {
    /// `up`.
    Up(UpArgs),
    /// `down`.
    Down(DownArgs),
    /// `projects`.
    Projects(ProjectsArgs),
    /// `project ...`.
    Project(ProjectCmd),
    /// `validate`.
    Validate(ValidateArgs),
}

/// A failed command: what to print, and the exit code.
struct Failure(String);

impl From<tonic::Status> for Failure {
    fn from(s: tonic::Status) -> Self {
        let mut msg = s.message().to_string();
        if let Some(code) = project::error_code(&s) {
            msg.push_str(&format!(" [{code}]"));
        }
        if let Some(lines) = project::error_detail(&s, "last_log_lines").filter(|l| !l.is_empty()) {
            msg.push_str("\nlast log lines:\n");
            for l in lines.lines() {
                msg.push_str("  ");
                msg.push_str(l);
                msg.push('\n');
            }
        }
        Failure(msg)
    }
}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Failure(s)
    }
}

/// Runs `cmd` against the project API at `socket`.
pub fn main(socket: &Path, cmd: Cmd) -> i32 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return crate::cli::fail(format!("cannot start the async runtime: {e}")),
    };
    let r = rt.block_on(async {
        let mut c = project::connect(socket)
            .await
            .map_err(|e| Failure(e.to_string()))?;
        match cmd {
            Cmd::Up(a) => up(&mut c, a).await,
            Cmd::Down(a) => down(&mut c, a).await,
            Cmd::Projects(a) => projects(&mut c, a).await,
            Cmd::Project(p) => project_cmd(&mut c, p).await,
            Cmd::Validate(a) => validate(&mut c, a).await,
        }
    });
    match r {
        Ok(code) => code,
        Err(Failure(msg)) => crate::cli::fail(msg),
    }
}

type Client = SupervisorClient<Channel>;

/// A project id from a directory name: lowercase, `[a-z0-9_-]`.
fn id_from_dir(dir: &Path) -> String {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let mut id: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    id = id.trim_start_matches(['-', '_']).chars().take(63).collect();
    if id.is_empty() {
        "project".into()
    } else {
        id
    }
}

/// Resolves `berth up`'s path into (project dir, manifest to send).
/// `manifest` (or the directory's manifest.json) with the Compose
/// options of `berth up`: `-f` files (the first is the manifest's
/// `compose`, the others `compose_files`), `--env-file`s, the active
/// profiles (`--profile`, else COMPOSE_PROFILES of this shell) and the
/// project name, resolved here as the daemon will. Also returns that
/// name. Files must lie inside the project directory.
fn with_compose_options(
    dir: &Path,
    manifest: Vec<u8>,
    path: Option<&Path>,
    o: &crate::config_cmd::ComposeOpts,
) -> Result<(Vec<u8>, Option<String>), Failure> {
    let mut paths: Vec<PathBuf> = path.map(Path::to_path_buf).into_iter().collect();
    if paths.is_empty() {
        paths.push(dir.to_owned());
    }
    let opts = crate::config_cmd::options(&paths, o).map_err(Failure)?;
    let name = berth_compose::load(&berth_compose::RealFiles, &opts)
        .ok()
        .map(|p| p.name)
        .filter(|n| n.len() <= 63);
    let profiles = if o.profiles.is_empty() {
        opts.environment
            .get("COMPOSE_PROFILES")
            .map(|p| {
                p.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    } else {
        o.profiles.clone()
    };
    if o.files.is_empty() && o.env_files.is_empty() && profiles.is_empty() && name.is_none() {
        return Ok((manifest, None));
    }
    let text = if manifest.is_empty() {
        let f = dir.join("manifest.json");
        std::fs::read(&f).map_err(|e| Failure(format!("{}: {e}", f.display())))?
    } else {
        manifest
    };
    let mut v: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| Failure(format!("the manifest is not valid JSON: {e}")))?;
    let inside = |p: &Path| -> Result<String, Failure> {
        let full =
            std::fs::canonicalize(p).map_err(|e| Failure(format!("{}: {e}", p.display())))?;
        full.strip_prefix(dir)
            .map(|r| r.to_string_lossy().into_owned())
            .map_err(|_| {
                Failure(format!(
                    "{} is outside the project directory {}",
                    p.display(),
                    dir.display()
                ))
            })
    };
    if let Some(m) = v.as_object_mut() {
        let files = opts
            .files
            .iter()
            .map(|f| inside(f))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some((first, rest)) = files.split_first() {
            m.insert("compose".into(), first.clone().into());
            if !rest.is_empty() {
                m.insert("compose_files".into(), rest.to_vec().into());
            }
        }
        if !opts.env_files.is_empty() {
            let env = opts
                .env_files
                .iter()
                .map(|f| inside(f))
                .collect::<Result<Vec<_>, _>>()?;
            m.insert("env_files".into(), env.into());
        }
        if !profiles.is_empty() {
            m.insert("profiles".into(), profiles.into());
        }
        if let Some(n) = &name {
            m.insert("project_name".into(), n.clone().into());
        }
    }
    Ok((serde_json::to_vec(&v).unwrap_or_default(), name))
}

fn project_source(path: &Path) -> Result<(PathBuf, Vec<u8>), Failure> {
    let path =
        std::fs::canonicalize(path).map_err(|e| Failure(format!("{}: {e}", path.display())))?;
    let (dir, compose) = if path.is_file() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        (
            path.parent().unwrap_or(Path::new("/")).to_owned(),
            Some(name),
        )
    } else {
        (path, None)
    };
    let manifest_file = dir.join("manifest.json");
    let manifest = if manifest_file.is_file() {
        match &compose {
            // The file given wins over the manifest's own `compose`.
            Some(c) => {
                let text = std::fs::read(&manifest_file)
                    .map_err(|e| Failure(format!("{}: {e}", manifest_file.display())))?;
                let mut v: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
                    Failure(format!(
                        "{} is not valid JSON: {e}",
                        manifest_file.display()
                    ))
                })?;
                if let Some(o) = v.as_object_mut() {
                    o.insert("compose".into(), c.clone().into());
                }
                serde_json::to_vec(&v).unwrap_or_default()
            }
            None => Vec::new(),
        }
    } else {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "project".into());
        let mut m = serde_json::json!({
            "app_id": format!("local.{}", id_from_dir(&dir)),
            "name": name,
            "version": "0.0.0",
        });
        if let Some(c) = &compose {
            m["compose"] = c.clone().into();
        }
        serde_json::to_vec(&m).unwrap_or_default()
    };
    Ok((dir, manifest))
}

fn parse_secrets(items: &[String]) -> Result<HashMap<String, String>, Failure> {
    let mut out = HashMap::new();
    for s in items {
        match s.split_once('=') {
            Some((k, v)) => {
                out.insert(k.to_string(), v.to_string());
            }
            None => match std::env::var(s) {
                Ok(v) => {
                    out.insert(s.clone(), v);
                }
                Err(_) => {
                    return Err(Failure(format!(
                        "--secret {s}: give NAME=VALUE, or set {s} in this environment"
                    )))
                }
            },
        }
    }
    Ok(out)
}

async fn up(c: &mut Client, a: UpArgs) -> Result<i32, Failure> {
    let (dir, manifest) = project_source(a.path.as_deref().unwrap_or(Path::new(".")))?;
    let (manifest, compose_name) =
        with_compose_options(&dir, manifest, a.path.as_deref(), &a.compose)?;
    // The project id follows the Compose project name (`name:`, -p,
    // COMPOSE_PROJECT_NAME, the directory), as `docker compose` names it.
    let id =
        a.id.clone()
            .or(compose_name)
            .unwrap_or_else(|| id_from_dir(&dir));
    let secrets = parse_secrets(&a.secrets)?;
    let ensured = c
        .ensure_project(pb::EnsureProjectRequest {
            project_id: id.clone(),
            package_path: dir.to_string_lossy().into_owned(),
            manifest,
            runtime: a.runtime.clone().unwrap_or_default(),
            ..Default::default()
        })
        .await?
        .into_inner();
    if !a.quiet {
        println!(
            "project {id} ({} runtime, namespace {}){}",
            ensured.runtime,
            ensured.namespace,
            if ensured.created { ", registered" } else { "" }
        );
    }
    match c
        .open_project_with_progress(pb::OpenProjectRequest {
            project_id: id.clone(),
        })
        .await
    {
        Ok(stream) => {
            let mut stream = stream.into_inner();
            let bars = crate::progress::Bars::new(a.quiet);
            while let Some(ev) = stream.message().await? {
                match ev.event {
                    Some(pb::open_project_progress::Event::Image(i)) => bars.image(&i),
                    Some(pb::open_project_progress::Event::Note(n)) => bars.note(&n),
                    Some(pb::open_project_progress::Event::Done(d)) => {
                        bars.finish();
                        if !a.quiet {
                            for w in &d.warnings {
                                println!("  note: {w}");
                            }
                            if d.images_pulled > 0 {
                                println!("pulled {} image(s)", d.images_pulled);
                            }
                        }
                    }
                    None => {}
                }
            }
        }
        Err(s) if project::error_code(&s) == Some("ALREADY_OPEN") => {}
        Err(s) => return Err(s.into()),
    }
    let started = match c
        .start_project(pb::StartProjectRequest {
            project_id: id.clone(),
            secrets,
        })
        .await
    {
        Ok(r) => {
            let r = r.into_inner();
            Some((r.services, r.ports))
        }
        Err(s) if project::error_code(&s) == Some("ALREADY_RUNNING") => {
            if !a.quiet {
                println!("already running");
            }
            None
        }
        Err(s) => return Err(s.into()),
    };
    if !a.quiet {
        let (services, ports) = match started {
            Some(sp) => sp,
            None => {
                let st = c
                    .get_project_status(pb::GetProjectStatusRequest {
                        project_id: id.clone(),
                    })
                    .await?
                    .into_inner();
                (st.services, st.ports)
            }
        };
        print!("{}", services_table(&services, &ports));
    }
    Ok(0)
}

fn url(p: &pb::PortMapping) -> String {
    let host = match p.host_ip.as_str() {
        "" | "0.0.0.0" | "::" => "127.0.0.1",
        ip => ip,
    };
    match p.protocol.as_str() {
        "tcp" => format!("http://{host}:{}", p.host_port),
        proto => format!("{host}:{}/{proto}", p.host_port),
    }
}

fn services_table(services: &[pb::ServiceStatus], ports: &[pb::PortMapping]) -> String {
    let rows = services
        .iter()
        .map(|s| {
            let urls: Vec<String> = ports
                .iter()
                .filter(|p| p.service_name == s.name)
                .map(|p| format!("{} -> {}", url(p), p.container_port))
                .collect();
            let status = if s.health.is_empty() {
                s.status.clone()
            } else {
                format!("{} ({})", s.status, s.health)
            };
            vec![s.name.clone(), status, urls.join(", "), s.detail.clone()]
        })
        .collect();
    output::table(&["SERVICE", "STATUS", "URL", "DETAIL"], rows)
}

/// `down`'s target: an id, or a path that names a project directory.
fn target_id(target: Option<&str>) -> Result<String, Failure> {
    let t = target.unwrap_or(".");
    let p = Path::new(t);
    if p.exists() && (t.contains('/') || t == "." || p.is_dir() && target.is_none()) {
        let (dir, _) = project_source(p)?;
        // The id `berth up` gave it: the Compose project name.
        let name = crate::config_cmd::options(&[p.to_path_buf()], &Default::default())
            .ok()
            .and_then(|o| berth_compose::load(&berth_compose::RealFiles, &o).ok())
            .map(|project| project.name)
            .filter(|n| n.len() <= 63);
        return Ok(name.unwrap_or_else(|| id_from_dir(&dir)));
    }
    Ok(t.to_string())
}

async fn down(c: &mut Client, a: DownArgs) -> Result<i32, Failure> {
    let id = target_id(a.target.as_deref())?;
    match c
        .stop_project(pb::StopProjectRequest {
            project_id: id.clone(),
            timeout_seconds: a.timeout.map(|t| t.min(i32::MAX as u32) as i32),
        })
        .await
    {
        Ok(r) => {
            let n = r.into_inner().services.len();
            println!("stopped project {id} ({n} services)");
        }
        Err(s) if project::error_code(&s) == Some("NOT_RUNNING") => {
            println!("project {id} was not running");
        }
        Err(s) => return Err(s.into()),
    }
    if !a.keep {
        let r = c
            .delete_project_runtime(pb::DeleteProjectRuntimeRequest {
                project_id: id.clone(),
                force: false,
            })
            .await?
            .into_inner();
        for line in &r.resources_removed {
            println!("removed {line}");
        }
    }
    Ok(0)
}

async fn projects(c: &mut Client, a: ProjectsArgs) -> Result<i32, Failure> {
    let list = c
        .list_projects(pb::ListProjectsRequest {
            filter_status: a.status.clone(),
        })
        .await?
        .into_inner()
        .projects;
    if a.json {
        let v: Vec<_> = list
            .iter()
            .map(|p| {
                serde_json::json!({
                    "project_id": p.project_id, "app_id": p.app_id, "name": p.name,
                    "status": p.status, "service_count": p.service_count, "port_count": p.port_count,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(0);
    }
    let rows = list
        .iter()
        .map(|p| {
            vec![
                p.project_id.clone(),
                p.name.clone(),
                p.status.clone(),
                p.service_count.to_string(),
                p.port_count.to_string(),
                p.app_id.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        output::table(
            &["PROJECT", "NAME", "STATUS", "SERVICES", "PORTS", "APP"],
            rows
        )
    );
    Ok(0)
}

async fn project_cmd(c: &mut Client, cmd: ProjectCmd) -> Result<i32, Failure> {
    match cmd {
        ProjectCmd::Status { id, json } => {
            let st = c
                .get_project_status(pb::GetProjectStatusRequest { project_id: id })
                .await?
                .into_inner();
            if json {
                let svc: Vec<_> = st
                    .services
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "name": s.name, "status": s.status, "container_id": s.container_id,
                            "started_at": s.started_at, "restart_count": s.restart_count,
                            "health": s.health, "detail": s.detail,
                        })
                    })
                    .collect();
                let ports: Vec<_> = st.ports.iter().map(port_json).collect();
                let v = serde_json::json!({
                    "project_id": st.project_id, "app_id": st.app_id, "name": st.name,
                    "version": st.version, "status": st.status, "services": svc, "ports": ports,
                    "state_size_bytes": st.state_size_bytes, "snapshot_count": st.snapshot_count,
                    "autosave_enabled": st.autosave_enabled, "namespace": st.namespace,
                    "runtime": st.runtime, "open": st.open, "state_path": st.state_path,
                    "package_path": st.package_path,
                });
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                println!(
                    "{} {} ({}), {}: {}\nruntime {}, namespace {}, {}\nstate {} ({} bytes), snapshots {}\n",
                    st.name,
                    st.version,
                    st.app_id,
                    st.project_id,
                    st.status,
                    st.runtime,
                    st.namespace,
                    if st.open { "open" } else { "closed" },
                    st.state_path,
                    st.state_size_bytes,
                    st.snapshot_count
                );
                print!("{}", services_table(&st.services, &st.ports));
            }
            Ok(0)
        }
        ProjectCmd::Logs {
            id,
            service,
            follow,
            tail,
        } => {
            let mut stream = c
                .get_project_logs(pb::GetProjectLogsRequest {
                    project_id: id,
                    service_name: service,
                    follow,
                    tail_lines: tail,
                })
                .await?
                .into_inner();
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            while let Some(batch) = stream.message().await? {
                for e in batch.entries {
                    let tag = if e.stream == "stderr" { "!" } else { " " };
                    if writeln!(out, "{} {}{tag}| {}", e.timestamp, e.service_name, e.line).is_err()
                    {
                        return Ok(0);
                    }
                }
                let _ = out.flush();
            }
            Ok(0)
        }
        ProjectCmd::Ports { id, refresh } => {
            let ports = c
                .resolve_ports(pb::ResolvePortsRequest {
                    project_id: id,
                    refresh,
                })
                .await?
                .into_inner()
                .ports;
            let rows = ports
                .iter()
                .map(|p| {
                    vec![
                        p.service_name.clone(),
                        format!("{}/{}", p.container_port, p.protocol),
                        p.host_port.to_string(),
                        if p.requested {
                            "requested"
                        } else {
                            "allocated"
                        }
                        .to_string(),
                        url(p),
                    ]
                })
                .collect();
            print!(
                "{}",
                output::table(&["SERVICE", "PORT", "HOST PORT", "HOW", "URL"], rows)
            );
            Ok(0)
        }
        ProjectCmd::Rm { id, force } => {
            let r = c
                .delete_project_runtime(pb::DeleteProjectRuntimeRequest {
                    project_id: id.clone(),
                    force,
                })
                .await?
                .into_inner();
            for line in &r.resources_removed {
                println!("removed {line}");
            }
            println!("project {id}: runtime removed, state kept");
            Ok(0)
        }
    }
}

fn port_json(p: &pb::PortMapping) -> serde_json::Value {
    serde_json::json!({
        "service_name": p.service_name, "container_port": p.container_port,
        "host_port": p.host_port, "protocol": p.protocol, "host_ip": p.host_ip,
        "requested": p.requested,
    })
}

async fn validate(c: &mut Client, a: ValidateArgs) -> Result<i32, Failure> {
    let content =
        std::fs::read(&a.file).map_err(|e| Failure(format!("{}: {e}", a.file.display())))?;
    let r = c
        .validate_compose(pb::ValidateComposeRequest {
            compose_content: content,
            runtime: a.runtime.clone().unwrap_or_default(),
        })
        .await?
        .into_inner();
    let notes = |v: &[pb::FieldNote]| -> Vec<serde_json::Value> {
        v.iter()
            .map(|n| serde_json::json!({"service": n.service, "path": n.path, "reason": n.reason}))
            .collect()
    };
    if a.json {
        let v = serde_json::json!({
            "valid": r.valid, "services": r.services,
            "supported_fields": notes(&r.supported_fields),
            "transformed_fields": notes(&r.transformed_fields),
            "rejected_fields": notes(&r.rejected_fields),
            "warnings": notes(&r.warnings),
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        println!(
            "{}: {} ({} services: {})",
            a.file.display(),
            if r.valid { "valid" } else { "NOT valid" },
            r.services.len(),
            r.services.join(", ")
        );
        let section = |title: &str, v: &[pb::FieldNote]| {
            if v.is_empty() {
                return;
            }
            println!("\n{title}:");
            for n in v {
                let path = if n.path.is_empty() { "(file)" } else { &n.path };
                if n.reason.is_empty() {
                    println!("  {path}");
                } else {
                    println!("  {path}: {}", n.reason);
                }
            }
        };
        section("rejected", &r.rejected_fields);
        section("transformed", &r.transformed_fields);
        section("warnings", &r.warnings);
        println!("\n{} fields supported as written", r.supported_fields.len());
    }
    Ok(if r.valid { 0 } else { 1 })
}
