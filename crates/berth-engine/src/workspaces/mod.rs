//! Workspaces (seed 004 "Container Manager"): devcontainer-based containers
//! made from a git repository, as `devcontainer up` makes them, with the
//! repository's files on a named volume (`berth-ws-<id>`) that outlives
//! the container. Rows in the store make a repeated create idempotent and
//! let a restarted daemon resume; status changes go out as [`Event`]s
//! (the node API turns them into control-plane callbacks).

pub mod compose;
pub mod devcontainer;
pub mod docker;
pub mod git;
pub mod log;
pub mod model;
mod persist;
pub mod provision;

pub use model::*;

use crate::store::Store;
use bollard::Docker;
use log::{ProvisionLog, Redactor};
use provision::StepError;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::UnboundedSender;

/// Lines of the provisioning log a failure callback carries.
pub const LOG_TAIL_LINES: usize = 40;

/// The workspace engine.
pub struct Workspaces {
    store: Arc<Store>,
    root: PathBuf,
    socket: Result<String, String>,
    docker: tokio::sync::OnceCell<Docker>,
    projects: Option<Arc<crate::projects::Projects>>,
    owner: String,
    events: UnboundedSender<Event>,
    /// Provisioning tasks by workspace.
    tasks: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Checks a workspace id: `[A-Za-z0-9._-]{1,64}`, not starting with `.`
/// or `-` (it names a container, volume, network and folder).
pub fn check_id(id: &str) -> Result<(), WorkspaceError> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !id.starts_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        Err(WorkspaceError::BadRequest(format!(
            "workspaceId {id:?} is invalid: use 1 to 64 of A-Z a-z 0-9 . _ - (not starting with . or -)"
        )))
    }
}

impl Workspaces {
    /// The engine over `store`, keeping clones and logs under `root`
    /// (`<state>/workspaces`), reaching Docker at the socket `DOCKER_HOST`
    /// names (connected on first use, so a daemon without Docker starts
    /// and reports the problem per workspace). `projects` runs
    /// Compose-based devcontainers (none: they fail with a clear error).
    /// `events` receives every status change. Docker resources are
    /// labelled with the store's path as their owner.
    pub fn open(
        store: Arc<Store>,
        root: PathBuf,
        docker_host: Option<&str>,
        projects: Option<Arc<crate::projects::Projects>>,
        events: UnboundedSender<Event>,
    ) -> Arc<Self> {
        Arc::new(Workspaces {
            owner: store.path().display().to_string(),
            store,
            root,
            socket: docker::socket_path(docker_host),
            docker: tokio::sync::OnceCell::new(),
            projects,
            events,
            tasks: Mutex::new(HashMap::new()),
        })
    }

    async fn docker(&self) -> Result<&Docker, String> {
        let socket = self.socket.clone()?;
        self.docker
            .get_or_try_init(|| async move { docker::connect(&socket).await })
            .await
    }

    /// The Docker socket path (for `docker -H` in terminal commands).
    pub fn socket(&self) -> Option<&str> {
        self.socket.as_deref().ok()
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    fn log_for(&self, id: &str) -> ProvisionLog {
        let w = persist::get(&self.store, id).ok().flatten();
        let secrets: Vec<String> = w
            .map(|w| w.git_token.into_iter().chain(w.callback_token).collect())
            .unwrap_or_default();
        ProvisionLog::open(
            &self.dir(id).join("provision.log"),
            Redactor::new(secrets.iter().map(String::as_str)),
        )
    }

    /// The provisioning log of `id` (tokens redacted), last `lines` lines.
    pub fn log_tail(&self, id: &str, lines: usize) -> String {
        log::tail(&self.dir(id).join("provision.log"), lines)
    }

    fn emit(&self, w: &Workspace, status: &'static str, log_tail: String) {
        let _ = self.events.send(Event {
            workspace_id: w.id.clone(),
            status,
            step: if status == "failed" {
                w.step.clone()
            } else {
                String::new()
            },
            error: if status == "failed" {
                w.error.clone()
            } else {
                String::new()
            },
            log_tail,
            callback_token: w.callback_token.clone(),
        });
    }

    /// Creates workspace `req.workspace_id`, or returns the existing one
    /// unchanged (a repeated POST). Provisioning runs in the background;
    /// the record comes back at once with status `creating`.
    pub fn create(self: &Arc<Self>, req: CreateRequest) -> Result<Workspace, WorkspaceError> {
        check_id(&req.workspace_id)?;
        if req.repository.trim().is_empty() {
            return Err(WorkspaceError::BadRequest(
                "repository is required (a git URL or a local path)".into(),
            ));
        }
        if let Some(w) = persist::get(&self.store, &req.workspace_id)? {
            return Ok(w);
        }
        let t = now();
        let w = Workspace {
            id: req.workspace_id.clone(),
            repository: req.repository.trim().to_string(),
            branch: req.branch.trim().to_string(),
            status: Status::Creating,
            step: "queued".into(),
            error: String::new(),
            container: provision::container_name(&req.workspace_id),
            image: String::new(),
            remote_user: String::new(),
            workspace_folder: String::new(),
            shell: String::new(),
            remote_env: Default::default(),
            ports: Vec::new(),
            report: Vec::new(),
            populated: false,
            callback_token: req.callback_token.filter(|t| !t.is_empty()),
            compose_project: String::new(),
            git_token: req.git_token.filter(|t| !t.is_empty()),
            created_at: t,
            updated_at: t,
        };
        persist::put(&self.store, &w)?;
        self.emit(&w, "creating", String::new());
        self.spawn_provision(&w.id);
        Ok(w)
    }

    fn spawn_provision(self: &Arc<Self>, id: &str) {
        let me = self.clone();
        let id2 = id.to_string();
        let h = tokio::spawn(async move {
            me.provision(&id2).await;
            lock(&me.tasks).remove(&id2);
        });
        if let Some(old) = lock(&self.tasks).insert(id.to_string(), h) {
            old.abort();
        }
    }

    fn save(&self, w: &mut Workspace) {
        w.updated_at = now();
        if let Err(e) = persist::put(&self.store, w) {
            tracing::warn!(workspace = %w.id, "cannot save the workspace: {e}");
        }
    }

    /// Runs every step; ends `ready` or `failed`.
    async fn provision(self: &Arc<Self>, id: &str) {
        let Ok(Some(mut w)) = persist::get(&self.store, id) else {
            return;
        };
        let log = self.log_for(id);
        log.line(&format!(
            "== provisioning workspace {id} from {} {}",
            w.repository, w.branch
        ));
        match self.steps(&mut w, &log).await {
            Ok(()) => {
                w.status = Status::Ready;
                w.step = String::new();
                w.error = String::new();
                self.save(&mut w);
                log.line("== ready");
                self.emit(&w, "ready", String::new());
            }
            Err(e) => {
                let why = log.redactor().apply(&e.why);
                log.line(&format!("!! step {} failed: {why}", e.step));
                // Still in the store? (A DELETE during provisioning wins.)
                if persist::get(&self.store, id).ok().flatten().is_none() {
                    return;
                }
                w.status = Status::Failed;
                w.step = e.step;
                w.error = why;
                self.save(&mut w);
                self.emit(&w, "failed", log.tail(LOG_TAIL_LINES));
            }
        }
    }

    async fn steps(&self, w: &mut Workspace, log: &ProvisionLog) -> Result<(), StepError> {
        let step = |w: &mut Workspace, s: &str| {
            w.step = s.to_string();
            log.line(&format!("== step {s}"));
        };
        step(w, "docker");
        let d = self.docker().await.map_err(|why| StepError {
            step: "docker".into(),
            why,
        })?;
        step(w, "clone");
        self.save(w);
        let src = self.dir(&w.id).join("src");
        let token = w.git_token.clone();
        git::clone(&w.repository, &w.branch, token.as_deref(), &src, log)
            .await
            .map_err(|why| StepError {
                step: "clone".into(),
                why,
            })?;
        step(w, "config");
        let (dc, base) = provision::read_config(&src).map_err(|why| StepError {
            step: "config".into(),
            why,
        })?;
        for r in &dc.report {
            log.line(&format!("not applied: {r}"));
        }
        w.report = dc.report.clone();
        w.remote_user = dc
            .remote_user
            .clone()
            .or(dc.container_user.clone())
            .unwrap_or_default();
        w.remote_env = dc.remote_env.clone();
        w.workspace_folder = dc
            .workspace_folder
            .clone()
            .unwrap_or_else(|| format!("/workspaces/{}", provision::repo_folder(&w.repository)));
        self.save(w);
        step(w, "initializeCommand");
        provision::initialize(&dc, &src, log).await?;
        if let Some(devcontainer::Source::Compose {
            files,
            service,
            run_services,
        }) = &dc.source
        {
            return self
                .compose_steps(w, &dc, &src, &base, files, service, run_services, log)
                .await;
        }
        step(w, "image");
        self.save(w);
        w.image = provision::image(d, &w.id, &self.owner, &dc, &base, log).await?;
        step(w, "container");
        self.save(w);
        let others: Vec<u16> = persist::list(&self.store)
            .unwrap_or_default()
            .into_iter()
            .filter(|o| o.id != w.id)
            .flat_map(|o| o.ports.into_iter().map(|p| p.host_port))
            .collect();
        w.ports = provision::allocate_ports(&w.id, &dc.forward_ports, &w.ports, &others).map_err(
            |why| StepError {
                step: "ports".into(),
                why,
            },
        )?;
        let fresh_volume =
            docker::ensure_volume(d, &w.volume(), docker::labels(&w.id, &self.owner))
                .await
                .map_err(|why| StepError {
                    step: "volume".into(),
                    why,
                })?;
        if fresh_volume {
            w.populated = false;
        }
        docker::ensure_network(d, &w.container, docker::labels(&w.id, &self.owner))
            .await
            .map_err(|why| StepError {
                step: "network".into(),
                why,
            })?;
        // A container left by an interrupted run is replaced.
        docker::remove_container(d, &w.container)
            .await
            .map_err(|why| StepError {
                step: "container".into(),
                why,
            })?;
        let git_env = if token.is_some() {
            provision::git_env()
        } else {
            Vec::new()
        };
        let body = provision::container_body(w, &self.owner, &dc, &w.image, &git_env);
        docker::create_and_start(d, &w.container, body)
            .await
            .map_err(|why| StepError {
                step: "container".into(),
                why,
            })?;
        self.save(w);
        if !w.populated {
            step(w, "copy");
            provision::populate(d, w, &dc, &src, log).await?;
            w.populated = true;
            self.save(w);
        }
        if let Some(t) = &token {
            step(w, "credentials");
            provision::install_credentials(d, w, t, log).await?;
        }
        w.shell = provision::find_shell(d, &w.container).await;
        for hook in &devcontainer::LIFECYCLE[1..] {
            step(w, hook);
            self.save(w);
            provision::run_hook(d, w, &dc, hook, log).await?;
        }
        // The clone was the build context and the volume's source; the
        // volume is the workspace's copy from now on.
        let _ = std::fs::remove_dir_all(&src);
        Ok(())
    }

    /// The Compose path: the project engine runs the files; the workspace
    /// is `service`'s container; the clone stays (it is the project's
    /// directory, bound into the container by the usual Compose files).
    #[allow(clippy::too_many_arguments)]
    async fn compose_steps(
        &self,
        w: &mut Workspace,
        dc: &devcontainer::DevContainer,
        src: &std::path::Path,
        base: &std::path::Path,
        files: &[String],
        service: &str,
        run_services: &[String],
        log: &ProvisionLog,
    ) -> Result<(), StepError> {
        let d = self.docker().await.map_err(|why| StepError {
            step: "docker".into(),
            why,
        })?;
        let projects = self.projects.as_ref().ok_or_else(|| StepError {
            step: "compose".into(),
            why:
                "this daemon runs no project engine, so dockerComposeFile devcontainers cannot run"
                    .into(),
        })?;
        w.step = "compose".into();
        w.compose_project = compose::project_id(&w.id);
        self.save(w);
        if !dc.forward_ports.is_empty() {
            w.report.push(
                "forwardPorts: a Compose-based workspace publishes the ports its Compose file names".into(),
            );
        }
        let (_, container) = compose::up(
            projects,
            &w.id,
            src,
            base,
            files,
            service,
            run_services,
            log,
        )
        .await?;
        w.container = container;
        w.image = format!("compose:{service}");
        self.save(w);
        // Files the Compose file did not bring in are copied.
        let has_files = docker::exec_capture(
            d,
            &w.container,
            &[
                "test".into(),
                "-e".into(),
                format!("{}/.git", w.workspace_folder),
            ],
            "0",
            "/",
            &[],
        )
        .await
        .map(|(c, _)| c == 0)
        .unwrap_or(false);
        if !has_files && !w.populated {
            provision::populate(d, w, dc, src, log).await?;
        }
        w.populated = true;
        w.shell = provision::find_shell(d, &w.container).await;
        for hook in &devcontainer::LIFECYCLE[1..] {
            w.step = hook.to_string();
            log.line(&format!("== step {hook}"));
            self.save(w);
            provision::run_hook(d, w, dc, hook, log).await?;
        }
        Ok(())
    }

    /// Removes workspace `id`: its container, network, the built image,
    /// and (unless `keep_volume`) its volume; then forgets it and reports
    /// `deleted`. Unknown ids are [`WorkspaceError::NotFound`].
    pub async fn delete(&self, id: &str, keep_volume: bool) -> Result<(), WorkspaceError> {
        check_id(id)?;
        let Some(mut w) = persist::get(&self.store, id)? else {
            return Err(WorkspaceError::NotFound(id.to_string()));
        };
        if let Some(h) = lock(&self.tasks).remove(id) {
            h.abort();
        }
        w.status = Status::Deleting;
        self.save(&mut w);
        let d = self.docker().await.map_err(WorkspaceError::Docker)?;
        if !w.compose_project.is_empty() {
            if let Some(p) = &self.projects {
                match p.forget(&w.compose_project, true).await {
                    Ok(_) | Err(crate::projects::ProjectError::NotFound(_)) => {}
                    Err(e) => {
                        return Err(WorkspaceError::Docker(format!(
                            "cannot remove the Compose project {}: {e}",
                            w.compose_project
                        )))
                    }
                }
            }
        }
        docker::remove_container(d, &w.container)
            .await
            .map_err(WorkspaceError::Docker)?;
        docker::remove_network(d, &w.container)
            .await
            .map_err(WorkspaceError::Docker)?;
        if w.image.starts_with("berth-ws-") {
            let _ = d
                .remove_image(
                    &w.image,
                    None::<bollard::query_parameters::RemoveImageOptions>,
                    None,
                )
                .await;
        }
        if !keep_volume {
            docker::remove_volume(d, &w.volume())
                .await
                .map_err(WorkspaceError::Docker)?;
        }
        persist::remove(&self.store, id)?;
        let _ = std::fs::remove_dir_all(self.dir(id));
        self.emit(&w, "deleted", String::new());
        Ok(())
    }

    /// Every workspace, oldest first.
    pub fn list(&self) -> Result<Vec<Workspace>, WorkspaceError> {
        Ok(persist::list(&self.store)?)
    }

    /// Workspace `id`.
    pub fn get(&self, id: &str) -> Result<Workspace, WorkspaceError> {
        persist::get(&self.store, id)?.ok_or_else(|| WorkspaceError::NotFound(id.to_string()))
    }

    /// The owner label value of this engine's Docker resources.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The workspace containers Docker has, with their state.
    pub async fn containers(&self) -> Result<Vec<ContainerInfo>, WorkspaceError> {
        let d = self.docker().await.map_err(WorkspaceError::Docker)?;
        docker::list_containers(d, &self.owner)
            .await
            .map_err(WorkspaceError::Docker)
    }

    /// `docker -H unix://SOCKET exec -i[t] -w WORKDIR -e K=V… [-u USER]
    /// CONTAINER` for workspace `id` (`workdir` defaults to the workspace
    /// folder; `remoteEnv` as `-e`), with the workspace: `None` when `id`
    /// is not a workspace of this engine; `Some(Err)` when it is not ready
    /// (naming its status) or Docker has no socket.
    fn exec_argv(
        &self,
        id: &str,
        tty: bool,
        workdir: Option<&str>,
    ) -> Option<Result<(Vec<String>, Workspace), String>> {
        let w = persist::get(&self.store, id).ok().flatten()?;
        if w.status != Status::Ready {
            return Some(Err(format!(
                "workspace {id} is {}{}: its terminals and agents start once it is ready",
                w.status.as_str(),
                if w.error.is_empty() {
                    String::new()
                } else {
                    format!(" (step {}: {})", w.step, w.error)
                }
            )));
        }
        let socket = match self.socket.as_ref() {
            Ok(s) => s,
            Err(e) => return Some(Err(e.clone())),
        };
        let mut argv = vec![
            "docker".to_string(),
            "-H".into(),
            format!("unix://{socket}"),
            "exec".into(),
            if tty { "-it" } else { "-i" }.into(),
            "-w".into(),
            workdir.unwrap_or(&w.workspace_folder).to_string(),
        ];
        if tty {
            argv.push("-e".into());
            argv.push("TERM=xterm-256color".into());
        }
        if !w.remote_user.is_empty() {
            argv.push("-u".into());
            argv.push(w.remote_user.clone());
        }
        for (k, v) in &w.remote_env {
            argv.push("-e".into());
            argv.push(format!("{k}={v}"));
        }
        argv.push(w.container.clone());
        Some(Ok((argv, w)))
    }

    /// How to start a terminal in workspace `id`'s container: `None` when
    /// `id` is not a workspace of this engine (a host terminal then);
    /// `Some(Err)` when it is not ready (naming its status); else `docker
    /// exec -it` as the remote user, in the workspace folder, with
    /// `remoteEnv`.
    pub fn terminal(&self, id: &str) -> Option<Result<TerminalLaunch, String>> {
        Some(self.exec_argv(id, true, None)?.map(|(mut argv, w)| {
            let shell = if w.shell.is_empty() {
                "/bin/sh".to_string()
            } else {
                w.shell.clone()
            };
            argv.push(shell.clone());
            TerminalLaunch {
                argv,
                work_dir: w.workspace_folder,
                shell,
            }
        }))
    }

    /// The words that run a program without a TTY (stdin kept open) in
    /// workspace `id`'s container, as the remote user, in `workdir` (the
    /// workspace folder when `None`), with `remoteEnv`: `docker -H … exec
    /// -i -w DIR [-u USER] [-e K=V…] CONTAINER`, and the workspace folder.
    /// `None` when `id` is no workspace of this engine, `Some(Err)` when
    /// it is not ready. Used for agents (issue 15) and their terminals.
    pub fn exec_prefix(
        &self,
        id: &str,
        workdir: Option<&str>,
    ) -> Option<Result<(Vec<String>, String), String>> {
        Some(
            self.exec_argv(id, false, workdir)?
                .map(|(argv, w)| (argv, w.workspace_folder)),
        )
    }

    /// After a daemon start: workspaces that were being provisioned are
    /// provisioned again (the volume keeps the files already copied);
    /// ready ones get their container started if it stopped; containers
    /// and networks labelled as
    /// workspaces the store does not know are removed. Returns what it did,
    /// one line each.
    pub async fn recover(self: &Arc<Self>) -> Vec<String> {
        let mut done = Vec::new();
        let known = match persist::list(&self.store) {
            Ok(l) => l,
            Err(e) => {
                done.push(format!("cannot read workspaces: {e}"));
                return done;
            }
        };
        if known.is_empty() {
            // Nothing to resume; reach Docker only if it is there already.
            if self
                .socket
                .as_ref()
                .map(|s| !std::path::Path::new(s).exists())
                .unwrap_or(true)
            {
                return done;
            }
        }
        let d = match self.docker().await {
            Ok(d) => d,
            Err(e) => {
                if !known.is_empty() {
                    done.push(format!("workspaces not recovered: {e}"));
                }
                return done;
            }
        };
        let ids: std::collections::HashSet<&str> = known.iter().map(|w| w.id.as_str()).collect();
        if let Ok(cs) = docker::list_containers(d, &self.owner).await {
            for c in cs.iter().filter(|c| !ids.contains(c.workspace_id.as_str())) {
                let _ = docker::remove_container(d, &c.name).await;
                done.push(format!("removed unknown workspace container {}", c.name));
            }
        }
        if let Ok(ns) = docker::list_networks(d, &self.owner).await {
            for (n, id) in ns.iter().filter(|(_, id)| !ids.contains(id.as_str())) {
                let _ = docker::remove_network(d, n).await;
                done.push(format!("removed network {n} of unknown workspace {id}"));
            }
        }
        for w in known {
            match w.status {
                Status::Creating => {
                    done.push(format!("resuming the provisioning of workspace {}", w.id));
                    self.log_for(&w.id)
                        .line("== the daemon restarted during provisioning: starting again");
                    self.spawn_provision(&w.id);
                }
                Status::Deleting => {
                    done.push(format!("finishing the deletion of workspace {}", w.id));
                    let me = self.clone();
                    tokio::spawn(async move {
                        let _ = me.delete(&w.id, false).await;
                    });
                }
                Status::Ready => {
                    if docker::running(d, &w.container).await == Some(false)
                        && docker::start(d, &w.container).await.is_ok()
                    {
                        done.push(format!("started the container of workspace {}", w.id));
                    }
                }
                Status::Failed => {}
            }
        }
        done
    }
}
