//! The Docker runtime: runs a [`Plan`]'s services as containers on a local
//! Docker Engine reached over its unix socket.
//!
//! Everything it creates carries `berth.*` labels, so a restarted daemon
//! finds its containers again (and `remove` finds everything of a project)
//! without keeping any state of its own.

use super::model::{LogEntry, LogStream, Progress, RuntimeKind};
use super::runtime::{
    MountSource, Observed, Plan, PlannedService, Probe, ProgressFn, ProjectRuntime, RestartPolicy,
    RuntimeError, RuntimeErrorKind,
};
use berth_os::time::parse_rfc3339;
use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, HostConfigCgroupnsModeEnum, Mount,
    MountType, NetworkConnectRequest, NetworkCreateRequest, NetworkingConfig, PortBinding,
    ResourcesUlimits, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, ListContainersOptions, ListNetworksOptions,
    ListVolumesOptions, LogsOptions, RemoveContainerOptions, RemoveVolumeOptions,
    StopContainerOptions,
};
use bollard::{ClientVersion, Docker};
use futures_util::{Stream, StreamExt};
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// The project a resource belongs to.
pub const LABEL_PROJECT: &str = "berth.project";
/// The namespace of the project that made it.
pub const LABEL_NAMESPACE: &str = "berth.namespace";
/// The Compose service of a container.
pub const LABEL_SERVICE: &str = "berth.service";
/// The hash of the [`PlannedService`] a container was made from: a
/// container whose hash differs is stale and gets replaced.
pub const LABEL_CONFIG_HASH: &str = "berth.config-hash";

/// Where Docker listens when `DOCKER_HOST` is unset.
const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
/// The API version berth speaks: Debian's docker.io 20.10 serves 1.41, and
/// bollard's default is newer, which that engine refuses. Negotiation only
/// lowers it, for older engines.
const API_VERSION: ClientVersion = ClientVersion {
    major_version: 1,
    minor_version: 41,
};
/// How long the engine may take to answer the first ping.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// bollard's per-request timeout (seconds) for ordinary calls; streams
/// (pulls, followed logs) are not bounded by it once their headers came.
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// A [`ProjectRuntime`] over a Docker Engine.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    docker: Docker,
    socket: String,
}

/// The socket path `DOCKER_HOST` names (or the default one). Only
/// `unix://` is supported: berth never talks to a remote engine.
fn socket_path(docker_host: Option<&str>) -> Result<String, RuntimeError> {
    match docker_host.map(str::trim).filter(|h| !h.is_empty()) {
        None => Ok(DEFAULT_SOCKET.to_string()),
        Some(host) => match host.strip_prefix("unix://") {
            Some(path) if !path.is_empty() => Ok(path.to_string()),
            _ => Err(RuntimeError::new(
                RuntimeErrorKind::Unavailable,
                format!("DOCKER_HOST={host} is not supported: berth only reaches Docker over a unix socket (unix:///path)"),
            )),
        },
    }
}

impl DockerRuntime {
    /// Connects to the engine `DOCKER_HOST` names (or the default socket),
    /// settles the API version and pings it.
    pub async fn connect() -> Result<DockerRuntime, RuntimeError> {
        let socket = socket_path(std::env::var("DOCKER_HOST").ok().as_deref())?;
        Self::connect_to(&socket).await
    }

    /// Connects to the engine listening on the unix socket at `socket`.
    pub async fn connect_to(socket: &str) -> Result<DockerRuntime, RuntimeError> {
        let socket = socket.to_string();
        let unavailable = |why: String| {
            RuntimeError::new(
                RuntimeErrorKind::Unavailable,
                format!("Docker Engine at unix://{socket} does not answer: {why}"),
            )
        };
        let docker = Docker::connect_with_unix(&socket, REQUEST_TIMEOUT_SECS, &API_VERSION)
            .map_err(|e| unavailable(e.to_string()))?;
        let handshake = async {
            let docker = docker.negotiate_version().await?;
            docker.ping().await?;
            Ok::<_, DockerError>(docker)
        };
        let docker = match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
            Ok(Ok(docker)) => docker,
            Ok(Err(e)) => return Err(unavailable(e.to_string())),
            Err(_) => return Err(unavailable(format!("no answer within {CONNECT_TIMEOUT:?}"))),
        };
        Ok(DockerRuntime { docker, socket })
    }

    /// The engine client, for tests that look at what was created.
    #[cfg(test)]
    pub(crate) fn client(&self) -> &Docker {
        &self.docker
    }

    /// The socket this runtime talks to.
    pub fn socket(&self) -> &str {
        &self.socket
    }

    /// The container name of `service` (the plan's, or the default one for
    /// a service the plan no longer has).
    fn container_name(plan: &Plan, service: &str) -> String {
        plan.service(service)
            .map(|s| s.container_name.clone())
            .unwrap_or_else(|| format!("{}-{}", plan.namespace, service))
    }

    /// Labels common to every resource of `plan`.
    fn project_labels(plan: &Plan) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_PROJECT.to_string(), plan.project_id.clone()),
            (LABEL_NAMESPACE.to_string(), plan.namespace.clone()),
        ])
    }

    /// A filter selecting what belongs to `plan`'s project.
    fn project_filter(plan: &Plan) -> HashMap<String, Vec<String>> {
        HashMap::from([(
            "label".to_string(),
            vec![format!("{LABEL_PROJECT}={}", plan.project_id)],
        )])
    }

    /// Pulls `image` (for `platform`, when the file names one),
    /// forwarding the engine's progress.
    async fn pull(
        &self,
        image: &str,
        platform: Option<&str>,
        progress: &ProgressFn,
    ) -> Result<(), RuntimeError> {
        let (from_image, tag) = split_reference(image);
        let options = CreateImageOptions {
            from_image: Some(from_image),
            tag,
            platform: platform.unwrap_or_default().to_string(),
            ..Default::default()
        };
        let fail = |why: String| {
            RuntimeError::new(
                RuntimeErrorKind::ImagePull,
                format!("pulling image {image} failed: {why}"),
            )
        };
        let mut stream = self.docker.create_image(Some(options), None, None);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| fail(reason(&e)))?;
            if let Some(detail) = info.error_detail {
                return Err(fail(
                    detail.message.unwrap_or_else(|| "unknown error".into()),
                ));
            }
            let (current, total) = info
                .progress_detail
                .map(|d| (d.current.unwrap_or(0), d.total.unwrap_or(0)))
                .unwrap_or((0, 0));
            progress(Progress::Image {
                image: image.to_string(),
                status: info.status.unwrap_or_default(),
                current: u64::try_from(current).unwrap_or(0),
                total: u64::try_from(total).unwrap_or(0),
            });
        }
        progress(Progress::Image {
            image: image.to_string(),
            status: "pulled".into(),
            current: 0,
            total: 0,
        });
        Ok(())
    }

    /// Creates `name` as a bridge network unless one of that exact name
    /// exists (the engine would otherwise make a second one: its name
    /// filter matches substrings and older engines allow duplicates).
    async fn ensure_network(&self, plan: &Plan, name: &str) -> Result<(), RuntimeError> {
        let filters = HashMap::from([("name".to_string(), vec![name.to_string()])]);
        let existing = self
            .docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(filters),
            }))
            .await
            .map_err(|e| engine_error(&format!("listing networks named {name}"), &e))?;
        if existing.iter().any(|n| n.name.as_deref() == Some(name)) {
            return Ok(());
        }
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            labels: Some(Self::project_labels(plan)),
            ..Default::default()
        };
        match self.docker.create_network(request).await {
            Ok(_) => Ok(()),
            Err(e) if status(&e) == Some(409) => Ok(()),
            Err(e) => Err(engine_error(&format!("creating network {name}"), &e)),
        }
    }

    /// The endpoint of `svc` on network `net`: reachable by its service
    /// name and the aliases the file gives it there.
    fn endpoint(svc: &PlannedService, net: &str) -> EndpointSettings {
        let mut aliases = vec![svc.name.clone()];
        if let Some(extra) = svc.container.network_aliases.get(net) {
            aliases.extend(extra.iter().filter(|a| **a != svc.name).cloned());
        }
        EndpointSettings {
            aliases: Some(aliases),
            ..Default::default()
        }
    }

    /// The networks `svc` joins: none when it shares another container's
    /// network (`network_mode: service:X`) or has none (`none`).
    fn joined_networks(svc: &PlannedService) -> &[String] {
        match svc.container.network_mode {
            Some(_) => &[],
            None => &svc.networks,
        }
    }

    /// The create request for `svc`.
    fn container_body(plan: &Plan, svc: &PlannedService, hash: &str) -> ContainerCreateBody {
        let c = &svc.container;
        // The file's labels first, so berth's own cannot be overridden.
        let mut labels: HashMap<String, String> = c
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.extend(Self::project_labels(plan));
        labels.insert(LABEL_SERVICE.into(), svc.name.clone());
        labels.insert(LABEL_CONFIG_HASH.into(), hash.to_string());

        let mut exposed = Vec::new();
        let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        for port in &svc.ports {
            let key = format!("{}/{}", port.container_port, port.protocol.as_str());
            if !exposed.contains(&key) {
                exposed.push(key.clone());
            }
            let binding = PortBinding {
                host_ip: Some(port.host_ip.clone()).filter(|ip| !ip.is_empty()),
                host_port: Some(port.host_port.to_string()),
            };
            bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(binding);
        }
        for port in &c.expose {
            if !exposed.contains(port) {
                exposed.push(port.clone());
            }
        }

        let (name, retries) = match svc.restart {
            RestartPolicy::No => (RestartPolicyNameEnum::NO, None),
            RestartPolicy::Always => (RestartPolicyNameEnum::ALWAYS, None),
            RestartPolicy::UnlessStopped => (RestartPolicyNameEnum::UNLESS_STOPPED, None),
            RestartPolicy::OnFailure(max) => (RestartPolicyNameEnum::ON_FAILURE, Some(max.into())),
        };

        let mounts = svc
            .mounts
            .iter()
            .map(|m| {
                let (typ, source) = match &m.source {
                    MountSource::Bind(path) => {
                        (MountType::BIND, path.to_string_lossy().into_owned())
                    }
                    MountSource::Volume(name) => (MountType::VOLUME, name.clone()),
                };
                Mount {
                    target: Some(m.target.clone()),
                    source: Some(source),
                    typ: Some(typ),
                    read_only: Some(m.read_only),
                    ..Default::default()
                }
            })
            .collect();

        // API 1.41 attaches a container to one network at create; the
        // others are connected before it starts.
        let first_network = Self::joined_networks(svc).first();
        let networking_config = first_network.map(|net| NetworkingConfig {
            endpoints_config: Some(HashMap::from([(net.clone(), Self::endpoint(svc, net))])),
        });

        let list = |v: &Vec<String>| Some(v.clone()).filter(|v| !v.is_empty());
        let map = |m: &std::collections::BTreeMap<String, String>| {
            Some(
                m.iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<HashMap<_, _>>(),
            )
            .filter(|m| !m.is_empty())
        };
        let ulimits = c
            .ulimits
            .iter()
            .map(|(name, soft, hard)| ResourcesUlimits {
                name: Some(name.clone()),
                soft: Some(*soft),
                hard: Some(*hard),
            })
            .collect();

        ContainerCreateBody {
            image: svc.image.clone(),
            entrypoint: svc.entrypoint.clone(),
            cmd: svc.command.clone(),
            env: Some(svc.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            working_dir: svc.working_dir.clone(),
            user: svc.user.clone(),
            hostname: c.hostname.clone(),
            domainname: c.domainname.clone(),
            tty: Some(c.tty),
            open_stdin: Some(c.stdin_open),
            labels: Some(labels),
            exposed_ports: Some(exposed).filter(|e| !e.is_empty()),
            // `docker stop` (ours included) sends this signal; the engine
            // reads SIGINT, INT and numbers alike.
            stop_signal: svc.stop_signal.clone().filter(|s| !s.is_empty()),
            stop_timeout: svc.stop_grace_period.map(|g| whole_seconds(g) as i64),
            host_config: Some(HostConfig {
                init: Some(svc.init),
                port_bindings: Some(bindings).filter(|b| !b.is_empty()),
                restart_policy: Some(bollard::models::RestartPolicy {
                    name: Some(name),
                    maximum_retry_count: retries,
                }),
                mounts: Some(mounts),
                network_mode: c.network_mode.clone().or_else(|| first_network.cloned()),
                dns: list(&c.dns),
                dns_search: list(&c.dns_search),
                dns_options: list(&c.dns_opt),
                extra_hosts: list(&c.extra_hosts),
                tmpfs: map(&c.tmpfs),
                volumes_from: list(&c.volumes_from),
                readonly_rootfs: Some(c.read_only),
                shm_size: c.shm_size,
                ulimits: Some(ulimits).filter(|u: &Vec<_>| !u.is_empty()),
                sysctls: map(&c.sysctls),
                storage_opt: map(&c.storage_opt),
                memory: c.memory,
                memory_reservation: c.memory_reservation,
                memory_swap: c.memory_swap,
                memory_swappiness: c.memory_swappiness,
                nano_cpus: c.nano_cpus,
                cpu_shares: c.cpu_shares,
                cpu_period: c.cpu_period,
                cpu_quota: c.cpu_quota,
                cpu_realtime_runtime: c.cpu_rt_runtime,
                cpu_realtime_period: c.cpu_rt_period,
                cpuset_cpus: c.cpuset.clone(),
                pids_limit: c.pids_limit,
                blkio_weight: c.blkio_weight,
                oom_kill_disable: c.oom_kill_disable,
                oom_score_adj: c.oom_score_adj,
                cap_add: list(&c.cap_add),
                cap_drop: list(&c.cap_drop),
                security_opt: list(&c.security_opt),
                group_add: list(&c.group_add),
                runtime: c.runtime.clone(),
                cgroup_parent: c.cgroup_parent.clone(),
                pid_mode: c.pid.clone(),
                ipc_mode: c.ipc.clone(),
                uts_mode: c.uts.clone(),
                userns_mode: c.userns_mode.clone(),
                cgroupns_mode: c
                    .cgroup_private
                    .then_some(HostConfigCgroupnsModeEnum::PRIVATE),
                ..Default::default()
            }),
            networking_config,
            ..Default::default()
        }
    }

    /// Creates the anonymous volumes of `svc` (plain local volumes with
    /// the project's labels, so `remove` finds them); existing ones are
    /// kept, as Compose keeps them across recreation.
    async fn ensure_anonymous_volumes(
        &self,
        plan: &Plan,
        svc: &PlannedService,
    ) -> Result<(), RuntimeError> {
        for name in &svc.container.anonymous_volumes {
            let mut labels = Self::project_labels(plan);
            labels.insert(LABEL_SERVICE.into(), svc.name.clone());
            let request = VolumeCreateRequest {
                name: Some(name.clone()),
                driver: Some("local".into()),
                labels: Some(labels),
                ..Default::default()
            };
            match self.docker.create_volume(request).await {
                Ok(_) => {}
                Err(e) if status(&e) == Some(409) => {}
                Err(e) => return Err(engine_error(&format!("creating volume {name}"), &e)),
            }
        }
        Ok(())
    }

    /// Creates, connects and starts `svc`'s container; returns its id.
    async fn create_and_start(
        &self,
        plan: &Plan,
        svc: &PlannedService,
        hash: &str,
    ) -> Result<String, RuntimeError> {
        let name = &svc.container_name;
        self.ensure_anonymous_volumes(plan, svc).await?;
        let body = Self::container_body(plan, svc, hash);
        let created = self
            .docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(name.clone()),
                    platform: svc.container.platform.clone().unwrap_or_default(),
                }),
                body,
            )
            .await
            .map_err(|e| match status(&e) {
                Some(404) => RuntimeError::new(
                    RuntimeErrorKind::ImagePull,
                    format!(
                        "creating container {name}: image {} is not present: {}",
                        svc.image.as_deref().unwrap_or("(none)"),
                        reason(&e)
                    ),
                ),
                _ => engine_error(&format!("creating container {name}"), &e),
            })?;
        let id = created.id;

        let result = async {
            for net in Self::joined_networks(svc).iter().skip(1) {
                let request = NetworkConnectRequest {
                    container: id.clone(),
                    endpoint_config: Some(Self::endpoint(svc, net)),
                };
                self.docker
                    .connect_network(net, request)
                    .await
                    .map_err(|e| {
                        engine_error(&format!("connecting container {name} to network {net}"), &e)
                    })?;
            }
            self.docker.start_container(name, None).await.map_err(|e| {
                let why = reason(&e);
                if port_taken(&why) {
                    RuntimeError::new(
                        RuntimeErrorKind::PortTaken,
                        format!("starting container {name}: a host port is taken: {why}"),
                    )
                } else {
                    engine_error(&format!("starting container {name}"), &e)
                }
            })
        }
        .await;
        if let Err(err) = result {
            // A container that never ran is of no use, and leaving it
            // would make the next start look at a stale one.
            let _ = self.remove_container(&id).await;
            return Err(err);
        }
        Ok(id)
    }

    /// Removes a container and its anonymous volumes, whatever its state.
    async fn remove_container(&self, id: &str) -> Result<(), DockerError> {
        match self
            .docker
            .remove_container(
                id,
                Some(RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                }),
            )
            .await
        {
            Err(e) if status(&e) == Some(404) => Ok(()),
            other => other,
        }
    }

    /// The tail of one container's logs, and the follow stream's
    /// parameters.
    async fn tail_of(
        &self,
        service: &str,
        container: &str,
        tail: usize,
    ) -> Result<Vec<LogEntry>, RuntimeError> {
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            timestamps: true,
            tail: tail.to_string(),
            ..Default::default()
        };
        let mut stream = self.docker.logs(container, Some(options));
        let mut entries = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(output) => entries.extend(log_entries(service, output)),
                Err(e) if status(&e) == Some(404) => return Ok(Vec::new()),
                Err(e) => {
                    return Err(engine_error(
                        &format!("reading logs of container {container}"),
                        &e,
                    ))
                }
            }
        }
        Ok(entries)
    }
}

#[async_trait::async_trait]
impl ProjectRuntime for DockerRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Docker
    }

    async fn prepare(&self, plan: &Plan, progress: &ProgressFn) -> Result<u32, RuntimeError> {
        let mut seen = BTreeSet::new();
        let mut pulled = 0;
        for svc in &plan.services {
            let Some(image) = svc.image.as_deref() else {
                continue;
            };
            if !seen.insert(image) {
                continue;
            }
            match self.docker.inspect_image(image).await {
                Ok(_) => progress(Progress::Image {
                    image: image.to_string(),
                    status: "present".into(),
                    current: 0,
                    total: 0,
                }),
                Err(e) if status(&e) == Some(404) => {
                    self.pull(image, svc.container.platform.as_deref(), progress)
                        .await?;
                    pulled += 1;
                }
                Err(e) => return Err(engine_error(&format!("inspecting image {image}"), &e)),
            }
        }
        Ok(pulled)
    }

    async fn create_resources(&self, plan: &Plan) -> Result<(), RuntimeError> {
        for name in &plan.networks {
            self.ensure_network(plan, name).await?;
        }
        for volume in &plan.volumes {
            tokio::fs::create_dir_all(&volume.dir).await.map_err(|e| {
                RuntimeError::other(format!(
                    "creating the directory {} of volume {}: {e}",
                    volume.dir.display(),
                    volume.name
                ))
            })?;
            let request = VolumeCreateRequest {
                name: Some(volume.name.clone()),
                driver: Some("local".into()),
                driver_opts: Some(HashMap::from([
                    ("type".to_string(), "none".to_string()),
                    ("o".to_string(), "bind".to_string()),
                    (
                        "device".to_string(),
                        volume.dir.to_string_lossy().into_owned(),
                    ),
                ])),
                labels: Some(Self::project_labels(plan)),
                ..Default::default()
            };
            self.docker
                .create_volume(request)
                .await
                .map_err(|e| engine_error(&format!("creating volume {}", volume.name), &e))?;
        }
        Ok(())
    }

    async fn start(&self, plan: &Plan, svc: &PlannedService) -> Result<String, RuntimeError> {
        let name = &svc.container_name;
        let hash = config_hash(svc);
        match self.docker.inspect_container(name, None).await {
            Ok(existing) => {
                let labels = existing
                    .config
                    .as_ref()
                    .and_then(|c| c.labels.as_ref())
                    .cloned()
                    .unwrap_or_default();
                let ours = labels.get(LABEL_PROJECT) == Some(&plan.project_id)
                    && labels.get(LABEL_SERVICE) == Some(&svc.name)
                    && labels.get(LABEL_CONFIG_HASH) == Some(&hash);
                let running = existing
                    .state
                    .as_ref()
                    .and_then(|s| s.running)
                    .unwrap_or(false);
                match existing.id {
                    Some(id) if ours && running => return Ok(id),
                    Some(id) => self.remove_container(&id).await.map_err(|e| {
                        engine_error(&format!("removing stale container {name}"), &e)
                    })?,
                    None => {}
                }
            }
            Err(e) if status(&e) == Some(404) => {}
            Err(e) => return Err(engine_error(&format!("inspecting container {name}"), &e)),
        }
        self.create_and_start(plan, svc, &hash).await
    }

    async fn freeze(&self, plan: &Plan) -> Result<Vec<String>, RuntimeError> {
        let mut paused = Vec::new();
        for svc in &plan.services {
            let name = Self::container_name(plan, &svc.name);
            let state = match self.docker.inspect_container(&name, None).await {
                Ok(info) => info.state.unwrap_or_default(),
                Err(e) if status(&e) == Some(404) => continue,
                Err(e) => {
                    self.thaw(plan, paused).await;
                    return Err(engine_error(&format!("inspecting container {name}"), &e));
                }
            };
            if !state.running.unwrap_or(false) || state.paused.unwrap_or(false) {
                continue;
            }
            match self.docker.pause_container(&name).await {
                Ok(()) => paused.push(name),
                // It ended between the inspection and the pause.
                Err(e) if matches!(status(&e), Some(404 | 409)) => {}
                Err(e) => {
                    self.thaw(plan, paused).await;
                    return Err(engine_error(&format!("pausing container {name}"), &e));
                }
            }
        }
        Ok(paused)
    }

    async fn thaw(&self, _plan: &Plan, frozen: Vec<String>) {
        for name in frozen {
            if let Err(e) = self.docker.unpause_container(&name).await {
                tracing::warn!(container = %name, "cannot unpause a container paused for a snapshot: {}", reason(&e));
            }
        }
    }

    async fn reattach(&self, plan: &Plan, svc: &PlannedService) -> Result<bool, RuntimeError> {
        let name = Self::container_name(plan, &svc.name);
        // A daemon that died during a snapshot left it paused.
        if let Ok(info) = self.docker.inspect_container(&name, None).await {
            if info.state.and_then(|s| s.paused).unwrap_or(false) {
                let _ = self.docker.unpause_container(&name).await;
            }
        }
        Ok(self
            .inspect(plan, &svc.name)
            .await?
            .is_some_and(|o| o.running))
    }

    async fn inspect(&self, plan: &Plan, service: &str) -> Result<Option<Observed>, RuntimeError> {
        let name = Self::container_name(plan, service);
        let info = match self.docker.inspect_container(&name, None).await {
            Ok(info) => info,
            Err(e) if status(&e) == Some(404) => return Ok(None),
            Err(e) => return Err(engine_error(&format!("inspecting container {name}"), &e)),
        };
        let state = info.state.unwrap_or_default();
        let running = state.running.unwrap_or(false);
        let started_at = state.started_at.as_deref().and_then(parse_rfc3339);
        Ok(Some(Observed {
            running,
            // A container that never ran has no exit code, only Docker's 0.
            exit_code: if running || started_at.is_none() {
                None
            } else {
                state.exit_code.and_then(|c| i32::try_from(c).ok())
            },
            started_at,
            restart_count: info
                .restart_count
                .and_then(|c| u32::try_from(c).ok())
                .unwrap_or(0),
            container_id: info.id.unwrap_or_default(),
        }))
    }

    async fn probe(
        &self,
        _plan: &Plan,
        svc: &PlannedService,
        probe: &Probe,
        timeout: Duration,
    ) -> Result<bool, RuntimeError> {
        let name = &svc.container_name;
        let options = CreateExecOptions {
            cmd: Some(probe.argv()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let exec = match self.docker.create_exec(name, options).await {
            Ok(exec) => exec,
            // Gone or not running: the probe cannot pass.
            Err(e) if matches!(status(&e), Some(404 | 409)) => return Ok(false),
            Err(e) => return Err(engine_error(&format!("probing container {name}"), &e)),
        };
        let run = async {
            let started = self
                .docker
                .start_exec(&exec.id, Some(StartExecOptions::default()))
                .await?;
            if let StartExecResults::Attached { mut output, .. } = started {
                // Drained so the process never blocks on a full pipe.
                while let Some(chunk) = output.next().await {
                    chunk?;
                }
            }
            self.docker.inspect_exec(&exec.id).await
        };
        match tokio::time::timeout(timeout, run).await {
            Err(_) => Ok(false),
            Ok(Ok(info)) => Ok(info.exit_code == Some(0)),
            Ok(Err(e)) if matches!(status(&e), Some(404 | 409)) => Ok(false),
            Ok(Err(e)) => Err(engine_error(&format!("probing container {name}"), &e)),
        }
    }

    async fn stop(
        &self,
        _plan: &Plan,
        svc: &PlannedService,
        timeout: Duration,
    ) -> Result<(), RuntimeError> {
        let name = &svc.container_name;
        let secs = whole_seconds(timeout);
        // The call returns only once the container stopped, so the
        // client's own timeout must outlast the grace.
        let docker = self
            .docker
            .clone()
            .with_timeout(Duration::from_secs(REQUEST_TIMEOUT_SECS.max(secs + 30)));
        let options = StopContainerOptions {
            t: Some(i32::try_from(secs).unwrap_or(i32::MAX)),
            ..Default::default()
        };
        match docker.stop_container(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if matches!(status(&e), Some(304 | 404)) => Ok(()),
            Err(e) => Err(engine_error(&format!("stopping container {name}"), &e)),
        }
    }

    async fn logs(
        &self,
        plan: &Plan,
        services: &[String],
        tail: usize,
        follow: bool,
    ) -> Result<(Vec<LogEntry>, Option<mpsc::Receiver<LogEntry>>), RuntimeError> {
        let asked_at = epoch_now();
        let mut all = Vec::new();
        let mut followers = Vec::new();
        for service in services {
            let container = Self::container_name(plan, service);
            let entries = self.tail_of(service, &container, tail).await?;
            // The follow stream starts at the last line of the tail (or at
            // the call) so no line falls between the two requests; lines
            // it repeats are skipped.
            let cutoff = match entries.last() {
                Some(last) => Cutoff {
                    at: last.timestamp,
                    seen: entries
                        .iter()
                        .filter(|e| e.timestamp == last.timestamp)
                        .map(|e| (e.stream, e.line.clone()))
                        .collect(),
                },
                None => Cutoff {
                    at: asked_at,
                    seen: Vec::new(),
                },
            };
            followers.push((service.clone(), container, cutoff));
            all.extend(entries);
        }
        all.sort_by(|a, b| a.timestamp.total_cmp(&b.timestamp));
        if !follow {
            return Ok((all, None));
        }
        let (tx, rx) = mpsc::channel(256);
        for (service, container, cutoff) in followers {
            tokio::spawn(follow_container(
                self.docker.clone(),
                service,
                container,
                cutoff,
                tx.clone(),
            ));
        }
        Ok((all, Some(rx)))
    }

    async fn remove(&self, plan: &Plan) -> Result<Vec<String>, RuntimeError> {
        let mut removed = Vec::new();
        let containers = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(Self::project_filter(plan)),
                ..Default::default()
            }))
            .await
            .map_err(|e| engine_error("listing the project's containers", &e))?;
        for c in containers {
            let Some(id) = c.id else { continue };
            let name = c
                .names
                .and_then(|n| n.into_iter().next())
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_else(|| id.clone());
            self.remove_container(&id)
                .await
                .map_err(|e| engine_error(&format!("removing container {name}"), &e))?;
            let short: String = id.chars().take(12).collect();
            removed.push(format!("container {name} ({short}…)"));
        }

        let networks = self
            .docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(Self::project_filter(plan)),
            }))
            .await
            .map_err(|e| engine_error("listing the project's networks", &e))?;
        for n in networks {
            let Some(id) = n.id else { continue };
            let name = n.name.unwrap_or_else(|| id.clone());
            match self.docker.remove_network(&id).await {
                Ok(()) => removed.push(format!("network {name}")),
                Err(e) if status(&e) == Some(404) => {}
                Err(e) => return Err(engine_error(&format!("removing network {name}"), &e)),
            }
        }

        let volumes = self
            .docker
            .list_volumes(Some(ListVolumesOptions {
                filters: Some(Self::project_filter(plan)),
            }))
            .await
            .map_err(|e| engine_error("listing the project's volumes", &e))?;
        // A bind-backed local volume only forgets its directory: the data
        // stays under state_path.
        for v in volumes.volumes.unwrap_or_default() {
            match self
                .docker
                .remove_volume(&v.name, Some(RemoveVolumeOptions { force: true }))
                .await
            {
                Ok(()) => removed.push(format!("volume {}", v.name)),
                Err(e) if status(&e) == Some(404) => {}
                Err(e) => return Err(engine_error(&format!("removing volume {}", v.name), &e)),
            }
        }
        Ok(removed)
    }
}

/// `d` in the whole seconds the Engine API takes, rounded up so a grace
/// under a second is not an immediate SIGKILL.
fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Where a follow stream takes over from what was already given (the tail,
/// then every line sent).
struct Cutoff {
    /// Lines older than this were (or were meant to be) given already.
    at: f64,
    /// The lines given that are stamped exactly `at`.
    seen: Vec<(LogStream, String)>,
}

/// How often a follower whose container is not running checks whether it
/// runs again (a `restart:` policy, or a later start).
const REFOLLOW_POLL: Duration = Duration::from_millis(250);

/// Follows one service's container until the receiver is dropped or the
/// container is removed. The engine ends a log stream when its container
/// stops, so each time the stream ends the follower waits for the
/// container to run again (a `restart:` policy restarting it, or a new
/// start) and follows on from the last line it sent, as the native
/// runtime's log files do.
async fn follow_container(
    docker: Docker,
    service: String,
    container: String,
    mut cutoff: Cutoff,
    tx: mpsc::Sender<LogEntry>,
) {
    loop {
        let options = LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            timestamps: true,
            since: cutoff.at.floor() as i32,
            tail: "all".into(),
            ..Default::default()
        };
        let stream = docker.logs(&container, Some(options));
        if !forward_logs(&service, stream, &mut cutoff, &tx).await {
            return;
        }
        loop {
            tokio::select! {
                _ = tx.closed() => return,
                _ = tokio::time::sleep(REFOLLOW_POLL) => {}
            }
            match docker.inspect_container(&container, None).await {
                Ok(info) if info.state.as_ref().and_then(|s| s.running) == Some(true) => break,
                Ok(_) => {}
                Err(e) if status(&e) == Some(404) => return,
                // The engine did not answer: try again.
                Err(_) => {}
            }
        }
    }
}

/// Forwards one log stream's lines into `tx` until the stream ends (true)
/// or the receiver is dropped (false). Lines `cutoff` says were given are
/// skipped; `cutoff` then covers every line sent.
async fn forward_logs<S>(
    service: &str,
    stream: S,
    cutoff: &mut Cutoff,
    tx: &mpsc::Sender<LogEntry>,
) -> bool
where
    S: Stream<Item = Result<LogOutput, DockerError>> + Send,
{
    let mut stream = std::pin::pin!(stream);
    // A reopened stream repeats the lines stamped `cutoff.at` once each.
    let mut repeats = cutoff.seen.clone();
    loop {
        let item = tokio::select! {
            _ = tx.closed() => return false,
            item = stream.next() => item,
        };
        let Some(Ok(output)) = item else { return true };
        for entry in log_entries(service, output) {
            if entry.timestamp < cutoff.at {
                continue;
            }
            let key = (entry.stream, entry.line.clone());
            if entry.timestamp == cutoff.at {
                if let Some(i) = repeats.iter().position(|s| *s == key) {
                    repeats.swap_remove(i);
                    continue;
                }
                cutoff.seen.push(key);
            } else {
                cutoff.at = entry.timestamp;
                cutoff.seen = vec![key];
                repeats.clear();
            }
            if tx.send(entry).await.is_err() {
                return false;
            }
        }
    }
}

/// The lines of one log frame (`<RFC 3339> <line>` each).
fn log_entries(service: &str, output: LogOutput) -> Vec<LogEntry> {
    let (stream, bytes) = match output {
        LogOutput::StdOut { message } | LogOutput::Console { message } => {
            (LogStream::Stdout, message)
        }
        LogOutput::StdErr { message } => (LogStream::Stderr, message),
        LogOutput::StdIn { .. } => return Vec::new(),
    };
    let text = String::from_utf8_lossy(&bytes);
    text.split_terminator('\n')
        .map(|raw| {
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            let (timestamp, line) = match raw.split_once(' ') {
                Some((ts, rest)) => match parse_rfc3339(ts) {
                    Some(t) => (t, rest),
                    None => (epoch_now(), raw),
                },
                None => match parse_rfc3339(raw) {
                    Some(t) => (t, ""),
                    None => (epoch_now(), raw),
                },
            };
            LogEntry {
                timestamp,
                service: service.to_string(),
                stream,
                line: line.to_string(),
            }
        })
        .collect()
}

/// Seconds since the epoch, now.
fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A stable hash of everything berth asks of a container: FNV-1a over the
/// service's `Debug` rendering, so any planned change makes it stale.
pub fn config_hash(svc: &PlannedService) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in format!("{svc:?}").bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// An image reference as `fromImage` and `tag`: the engine pulls every tag
/// of an untagged name, so `latest` is made explicit as the CLI does.
fn split_reference(image: &str) -> (String, Option<String>) {
    if image.contains('@') {
        return (image.to_string(), None);
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) => {
            let repo = &image[..image.len() - tag.len() - 1];
            (repo.to_string(), Some(tag.to_string()))
        }
        None => (image.to_string(), Some("latest".into())),
    }
}

/// Whether the engine's start error says a host port could not be bound.
fn port_taken(why: &str) -> bool {
    let why = why.to_ascii_lowercase();
    why.contains("port is already allocated") || why.contains("address already in use")
}

/// The HTTP status of an engine answer, when it was one.
fn status(e: &DockerError) -> Option<u16> {
    match e {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// The engine's own words for a failure.
fn reason(e: &DockerError) -> String {
    match e {
        DockerError::DockerResponseServerError { message, .. } => message.clone(),
        DockerError::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

/// A failure of `what`: `Unavailable` when the engine did not answer at
/// all, `Other` when it refused.
fn engine_error(what: &str, e: &DockerError) -> RuntimeError {
    let kind = match e {
        DockerError::DockerResponseServerError { .. }
        | DockerError::DockerStreamError { .. }
        | DockerError::JsonDataError { .. }
        | DockerError::JsonSerdeError { .. } => RuntimeErrorKind::Other,
        _ => RuntimeErrorKind::Unavailable,
    };
    RuntimeError::new(kind, format!("{what}: {}", reason(e)))
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn docker_host_must_be_a_unix_socket() {
        assert_eq!(socket_path(None).unwrap(), DEFAULT_SOCKET);
        assert_eq!(socket_path(Some("")).unwrap(), DEFAULT_SOCKET);
        assert_eq!(
            socket_path(Some("unix:///run/d.sock")).unwrap(),
            "/run/d.sock"
        );
        let err = socket_path(Some("tcp://10.0.0.1:2375")).unwrap_err();
        assert_eq!(err.kind, RuntimeErrorKind::Unavailable);
        assert!(
            err.message.contains("tcp://10.0.0.1:2375"),
            "{}",
            err.message
        );
    }

    #[test]
    fn rfc3339_timestamps_parse_to_epoch_seconds() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_rfc3339("2021-01-01T00:00:00Z"), Some(1_609_459_200.0));
        let t = parse_rfc3339("2021-01-01T00:00:01.5+01:00").unwrap();
        assert!((t - (1_609_459_201.5 - 3600.0)).abs() < 1e-6);
        let t = parse_rfc3339("2026-11-21T16:50:00.123456789Z").unwrap();
        assert!((t - 1_795_279_800.123).abs() < 1e-3, "{t}");
        assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("hello"), None);
    }

    #[test]
    fn references_get_an_explicit_tag() {
        assert_eq!(
            split_reference("busybox"),
            ("busybox".into(), Some("latest".into()))
        );
        assert_eq!(
            split_reference("localhost:5000/a/b:1.2"),
            ("localhost:5000/a/b".into(), Some("1.2".into()))
        );
        assert_eq!(
            split_reference("localhost:5000/a"),
            ("localhost:5000/a".into(), Some("latest".into()))
        );
        assert_eq!(split_reference("a@sha256:00"), ("a@sha256:00".into(), None));
    }

    #[test]
    fn log_frames_split_into_timestamped_lines() {
        let frame = LogOutput::StdErr {
            message: "2021-01-01T00:00:00.25Z oops\n2021-01-01T00:00:01Z again\n".into(),
        };
        let entries = log_entries("web", frame);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].stream, LogStream::Stderr);
        assert_eq!(entries[0].line, "oops");
        assert_eq!(entries[0].timestamp, 1_609_459_200.25);
        assert_eq!(entries[1].line, "again");
    }

    #[tokio::test]
    async fn follow_skips_what_the_tail_already_gave() {
        let frame = |ts: &str, line: &str| {
            Ok(LogOutput::StdOut {
                message: format!("{ts} {line}\n").into(),
            })
        };
        let items = vec![
            frame("2021-01-01T00:00:00Z", "older"),
            frame("2021-01-01T00:00:01Z", "in-tail"),
            frame("2021-01-01T00:00:01Z", "same-time-new"),
            frame("2021-01-01T00:00:02Z", "new"),
        ];
        let mut cutoff = Cutoff {
            at: 1_609_459_201.0,
            seen: vec![(LogStream::Stdout, "in-tail".into())],
        };
        let (tx, mut rx) = mpsc::channel(8);
        let stream = futures_util::stream::iter(items);
        assert!(forward_logs("web", stream, &mut cutoff, &tx).await);
        drop(tx);
        let mut lines = Vec::new();
        while let Some(e) = rx.recv().await {
            lines.push(e.line);
        }
        assert_eq!(lines, ["same-time-new", "new"]);
    }

    #[tokio::test]
    async fn a_reopened_follow_repeats_nothing() {
        let frame = |ts: &str, line: &str| {
            Ok(LogOutput::StdOut {
                message: format!("{ts} {line}\n").into(),
            })
        };
        let mut cutoff = Cutoff {
            at: 0.0,
            seen: Vec::new(),
        };
        let (tx, mut rx) = mpsc::channel(16);
        let first = vec![
            frame("2021-01-01T00:00:01Z", "run 1"),
            frame("2021-01-01T00:00:02Z", "a"),
            frame("2021-01-01T00:00:02Z", "b"),
        ];
        assert!(forward_logs("web", futures_util::stream::iter(first), &mut cutoff, &tx).await);
        // The engine replays from the second the follow resumes at, and
        // the same again when nothing new came in between.
        for _ in 0..2 {
            let again = vec![
                frame("2021-01-01T00:00:02Z", "a"),
                frame("2021-01-01T00:00:02Z", "b"),
            ];
            let stream = futures_util::stream::iter(again);
            assert!(forward_logs("web", stream, &mut cutoff, &tx).await);
        }
        let second = vec![
            frame("2021-01-01T00:00:02Z", "a"),
            frame("2021-01-01T00:00:02Z", "b"),
            frame("2021-01-01T00:00:02Z", "c"),
            frame("2021-01-01T00:00:03Z", "run 2"),
        ];
        assert!(forward_logs("web", futures_util::stream::iter(second), &mut cutoff, &tx).await);
        drop(tx);
        let mut lines = Vec::new();
        while let Some(e) = rx.recv().await {
            lines.push(e.line);
        }
        assert_eq!(lines, ["run 1", "a", "b", "c", "run 2"]);
    }

    #[test]
    fn port_conflicts_are_recognised() {
        assert!(port_taken("driver failed programming external connectivity on endpoint x: Bind for 0.0.0.0:8080 failed: port is already allocated"));
        assert!(port_taken(
            "listen tcp4 127.0.0.1:8080: bind: address already in use"
        ));
        assert!(!port_taken("no such image"));
    }
}
