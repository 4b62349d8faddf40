//! The Docker calls of workspaces (bollard, the client projects use): image
//! present or pulled, Dockerfile builds, the volume and network, the
//! container, exec with captured output, file upload, removal. Everything
//! made carries `berth.workspace=<id>`, so a restarted daemon finds it.

use super::log::ProvisionLog;
use super::model::ContainerInfo;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, NetworkCreateRequest, VolumeCreateRequest};
use bollard::query_parameters::{
    BuildImageOptions, CreateContainerOptions, CreateImageOptions, ListContainersOptions,
    ListNetworksOptions, RemoveContainerOptions, RemoveVolumeOptions, UploadToContainerOptions,
};
use bollard::{ClientVersion, Docker};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::Duration;

/// The label every workspace resource carries: its workspace id.
pub const LABEL_WORKSPACE: &str = "berth.workspace";
/// The label naming the daemon (its store) that made a resource: a
/// daemon removes only its own leftovers, never another's on a shared
/// engine.
pub const LABEL_OWNER: &str = "berth.workspace.owner";

/// The labels of every resource of workspace `id` made by `owner`.
pub fn labels(id: &str, owner: &str) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_WORKSPACE.to_string(), id.to_string()),
        (LABEL_OWNER.to_string(), owner.to_string()),
    ])
}

/// API version spoken (the projects runtime's choice: Debian's 20.10
/// engine serves 1.41; negotiation only lowers it).
const API_VERSION: ClientVersion = ClientVersion {
    major_version: 1,
    minor_version: 41,
};

/// The socket `DOCKER_HOST` names (`unix://` only), else the default one.
pub fn socket_path(docker_host: Option<&str>) -> Result<String, String> {
    match docker_host.map(str::trim).filter(|h| !h.is_empty()) {
        None => Ok("/var/run/docker.sock".into()),
        Some(h) => match h.strip_prefix("unix://") {
            Some(p) if !p.is_empty() => Ok(p.to_string()),
            _ => Err(format!(
                "DOCKER_HOST={h} is not supported: berth reaches Docker over a unix socket only"
            )),
        },
    }
}

/// Connects and pings the engine on `socket`.
pub async fn connect(socket: &str) -> Result<Docker, String> {
    let why = |e: String| format!("Docker Engine at unix://{socket} does not answer: {e}");
    let d = Docker::connect_with_unix(socket, 600, &API_VERSION).map_err(|e| why(e.to_string()))?;
    let hs = async {
        let d = d.negotiate_version().await?;
        d.ping().await?;
        Ok::<_, bollard::errors::Error>(d)
    };
    match tokio::time::timeout(Duration::from_secs(5), hs).await {
        Ok(Ok(d)) => Ok(d),
        Ok(Err(e)) => Err(why(e.to_string())),
        Err(_) => Err(why("no answer within 5 s".into())),
    }
}

fn status(e: &bollard::errors::Error) -> Option<u16> {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// Docker's message of `e`.
pub fn reason(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// Makes sure `image` is present: used as it is when the engine has it,
/// else pulled (progress logged).
pub async fn ensure_image(d: &Docker, image: &str, log: &ProvisionLog) -> Result<(), String> {
    if d.inspect_image(image).await.is_ok() {
        log.line(&format!("image {image} is present"));
        return Ok(());
    }
    log.line(&format!("pulling {image}"));
    let (name, tag) = match image.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n.to_string(), t.to_string()),
        _ => (image.to_string(), "latest".to_string()),
    };
    let mut s = d.create_image(
        Some(CreateImageOptions {
            from_image: Some(name),
            tag: Some(tag),
            ..Default::default()
        }),
        None,
        None,
    );
    while let Some(item) = s.next().await {
        match item {
            Ok(info) => {
                if let Some(st) = info.status {
                    log.line(&st);
                }
            }
            Err(e) => return Err(format!("cannot pull image {image}: {}", reason(&e))),
        }
    }
    Ok(())
}

/// What to build: `build.*` of devcontainer.json, resolved.
pub struct BuildSpec<'a> {
    /// The image tag to make.
    pub tag: &'a str,
    /// The Dockerfile's path inside the context.
    pub dockerfile: &'a str,
    /// `build.args`.
    pub args: HashMap<String, String>,
    /// `build.target` (empty = last stage).
    pub target: &'a str,
    /// Labels of the image.
    pub labels: HashMap<String, String>,
}

/// Builds `spec.tag` from a tar of the build context (the engine's classic
/// builder: no registry needed when the base image is present), logging
/// the build output.
pub async fn build(
    d: &Docker,
    spec: BuildSpec<'_>,
    context_tar: Vec<u8>,
    log: &ProvisionLog,
) -> Result<(), String> {
    let opts = BuildImageOptions {
        dockerfile: spec.dockerfile.to_string(),
        t: Some(spec.tag.to_string()),
        rm: true,
        forcerm: true,
        buildargs: Some(spec.args),
        labels: Some(spec.labels),
        target: spec.target.to_string(),
        ..Default::default()
    };
    let mut s = d.build_image(
        opts,
        None,
        Some(bollard::body_full(bytes::Bytes::from(context_tar))),
    );
    while let Some(item) = s.next().await {
        match item {
            Ok(info) => {
                if let Some(line) = info.stream {
                    if !line.trim().is_empty() {
                        log.line(line.trim_end());
                    }
                }
                if let Some(err) = info.error_detail.and_then(|e| e.message) {
                    return Err(format!("the image build failed: {err}"));
                }
            }
            Err(e) => return Err(format!("the image build failed: {}", reason(&e))),
        }
    }
    Ok(())
}

/// Creates volume `name` if missing; `true` when it was made now.
pub async fn ensure_volume(
    d: &Docker,
    name: &str,
    labels: HashMap<String, String>,
) -> Result<bool, String> {
    if d.inspect_volume(name).await.is_ok() {
        return Ok(false);
    }
    d.create_volume(VolumeCreateRequest {
        name: Some(name.to_string()),
        labels: Some(labels),
        ..Default::default()
    })
    .await
    .map_err(|e| format!("cannot create volume {name}: {}", reason(&e)))?;
    Ok(true)
}

/// Creates bridge network `name` if missing.
pub async fn ensure_network(
    d: &Docker,
    name: &str,
    labels: HashMap<String, String>,
) -> Result<(), String> {
    if d.inspect_network(
        name,
        None::<bollard::query_parameters::InspectNetworkOptions>,
    )
    .await
    .is_ok()
    {
        return Ok(());
    }
    d.create_network(NetworkCreateRequest {
        name: name.to_string(),
        driver: Some("bridge".into()),
        labels: Some(labels),
        ..Default::default()
    })
    .await
    .map_err(|e| format!("cannot create network {name}: {}", reason(&e)))?;
    Ok(())
}

/// Creates and starts container `name`.
pub async fn create_and_start(
    d: &Docker,
    name: &str,
    body: ContainerCreateBody,
) -> Result<String, String> {
    let created = d
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.to_string()),
                platform: String::new(),
            }),
            body,
        )
        .await
        .map_err(|e| format!("cannot create container {name}: {}", reason(&e)))?;
    if let Err(e) = d.start_container(name, None).await {
        let _ = remove_container(d, name).await;
        return Err(format!("cannot start container {name}: {}", reason(&e)));
    }
    Ok(created.id)
}

/// Whether container `name` exists and runs: `None` if it does not exist.
pub async fn running(d: &Docker, name: &str) -> Option<bool> {
    let c = d.inspect_container(name, None).await.ok()?;
    Some(c.state.and_then(|s| s.running).unwrap_or(false))
}

/// Starts an existing, stopped container.
pub async fn start(d: &Docker, name: &str) -> Result<(), String> {
    d.start_container(name, None)
        .await
        .map_err(|e| format!("cannot start container {name}: {}", reason(&e)))
}

/// Removes container `name` (forced), whatever its state; a missing one
/// is fine.
pub async fn remove_container(d: &Docker, name: &str) -> Result<(), String> {
    match d
        .remove_container(
            name,
            Some(RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            }),
        )
        .await
    {
        Err(e) if status(&e) != Some(404) => {
            Err(format!("cannot remove container {name}: {}", reason(&e)))
        }
        _ => Ok(()),
    }
}

/// Removes network `name`; a missing one is fine.
pub async fn remove_network(d: &Docker, name: &str) -> Result<(), String> {
    match d.remove_network(name).await {
        Err(e) if status(&e) != Some(404) => {
            Err(format!("cannot remove network {name}: {}", reason(&e)))
        }
        _ => Ok(()),
    }
}

/// Removes volume `name`; a missing one is fine.
pub async fn remove_volume(d: &Docker, name: &str) -> Result<(), String> {
    match d
        .remove_volume(name, Some(RemoveVolumeOptions { force: true }))
        .await
    {
        Err(e) if status(&e) != Some(404) => {
            Err(format!("cannot remove volume {name}: {}", reason(&e)))
        }
        _ => Ok(()),
    }
}

/// Runs `argv` in `container` as `user` in `dir` with `env`, logging its
/// output line by line; returns the exit code.
pub async fn exec(
    d: &Docker,
    container: &str,
    argv: &[String],
    user: &str,
    dir: &str,
    env: &[String],
    log: &ProvisionLog,
) -> Result<i64, String> {
    let (code, out) = exec_capture(d, container, argv, user, dir, env).await?;
    if !out.trim().is_empty() {
        log.line(out.trim_end());
    }
    Ok(code)
}

/// Runs `argv` in `container` and returns (exit code, output).
pub async fn exec_capture(
    d: &Docker,
    container: &str,
    argv: &[String],
    user: &str,
    dir: &str,
    env: &[String],
) -> Result<(i64, String), String> {
    let created = d
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(argv.to_vec()),
                user: (!user.is_empty()).then(|| user.to_string()),
                working_dir: (!dir.is_empty()).then(|| dir.to_string()),
                env: (!env.is_empty()).then(|| env.to_vec()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| format!("cannot exec in {container}: {}", reason(&e)))?;
    let mut text = String::new();
    match d
        .start_exec(&created.id, Some(StartExecOptions::default()))
        .await
        .map_err(|e| format!("cannot exec in {container}: {}", reason(&e)))?
    {
        StartExecResults::Attached { mut output, .. } => {
            while let Some(chunk) = output.next().await {
                match chunk {
                    Ok(c) => text.push_str(&String::from_utf8_lossy(&c.into_bytes())),
                    Err(e) => {
                        text.push_str(&format!("\n(output lost: {})", reason(&e)));
                        break;
                    }
                }
            }
        }
        StartExecResults::Detached => {}
    }
    let info = d
        .inspect_exec(&created.id)
        .await
        .map_err(|e| format!("cannot read the exit code in {container}: {}", reason(&e)))?;
    Ok((info.exit_code.unwrap_or(-1), text))
}

/// Extracts `tar` into `path` inside `container`.
pub async fn upload(d: &Docker, container: &str, path: &str, tar: Vec<u8>) -> Result<(), String> {
    d.upload_to_container(
        container,
        Some(UploadToContainerOptions {
            path: path.to_string(),
            ..Default::default()
        }),
        bollard::body_full(bytes::Bytes::from(tar)),
    )
    .await
    .map_err(|e| format!("cannot copy files into {container}:{path}: {}", reason(&e)))
}

/// Every container labelled as a workspace's of `owner`, running or not.
pub async fn list_containers(d: &Docker, owner: &str) -> Result<Vec<ContainerInfo>, String> {
    let list = d
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([(
                "label".to_string(),
                vec![
                    LABEL_WORKSPACE.to_string(),
                    format!("{LABEL_OWNER}={owner}"),
                ],
            )])),
            ..Default::default()
        }))
        .await
        .map_err(|e| format!("cannot list containers: {}", reason(&e)))?;
    Ok(list
        .into_iter()
        .map(|c| ContainerInfo {
            id: c.id.unwrap_or_default(),
            name: c
                .names
                .and_then(|n| n.first().cloned())
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            workspace_id: c
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_WORKSPACE).cloned())
                .unwrap_or_default(),
            image: c.image.unwrap_or_default(),
            state: c.state.map(|s| s.to_string()).unwrap_or_default(),
            status: c.status.unwrap_or_default(),
            created: c.created.unwrap_or(0),
        })
        .collect())
}

/// Names of networks labelled as a workspace's of `owner`, with the
/// workspace id.
pub async fn list_networks(d: &Docker, owner: &str) -> Result<Vec<(String, String)>, String> {
    let list = d
        .list_networks(Some(ListNetworksOptions {
            filters: Some(HashMap::from([(
                "label".to_string(),
                vec![
                    LABEL_WORKSPACE.to_string(),
                    format!("{LABEL_OWNER}={owner}"),
                ],
            )])),
        }))
        .await
        .map_err(|e| format!("cannot list networks: {}", reason(&e)))?;
    Ok(list
        .into_iter()
        .filter_map(|n| {
            let id = n.labels.as_ref()?.get(LABEL_WORKSPACE)?.clone();
            Some((n.name?, id))
        })
        .collect())
}
