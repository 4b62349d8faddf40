//! Provisioning, step by step, as `devcontainer up` does it: clone, read
//! devcontainer.json, `initializeCommand` on the host, image (present,
//! pulled or built), volume and network, container, the repository's files
//! into the volume, the git credential helper, then `onCreateCommand`,
//! `updateContentCommand`, `postCreateCommand`, `postStartCommand`,
//! `postAttachCommand`, each logged. A step that fails names itself.

use super::devcontainer::{Command, DevContainer, MountSpec, Source};
use super::docker as dk;
use super::log::ProvisionLog;
use super::model::{ForwardedPort, Workspace};
use bollard::models::{
    ContainerCreateBody, DeviceMapping, HostConfig, Mount, MountType, PortBinding,
};
use bollard::Docker;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where the credential helper lives in a workspace container.
pub const CREDENTIAL_HELPER: &str = "/usr/local/bin/berth-git-credential";
/// The tmpfs the short-lived git token is written to (memory only, gone
/// when the container stops; rewritten by berth when it starts again).
pub const TOKEN_DIR: &str = "/run/berth";

/// A failed step: its name and why.
#[derive(Debug)]
pub struct StepError {
    /// `clone`, `config`, `initializeCommand`, `image`, `container`…
    pub step: String,
    /// What went wrong.
    pub why: String,
}

fn fail(step: &str) -> impl Fn(String) -> StepError + '_ {
    move |why| StepError {
        step: step.to_string(),
        why,
    }
}

/// What provisioning needs besides the record.
pub struct Inputs<'a> {
    /// The engine.
    pub docker: &'a Docker,
    /// The socket (for `docker -H` in terminal commands; unused here).
    pub log: &'a ProvisionLog,
    /// `<state>/workspaces/<id>`.
    pub dir: PathBuf,
    /// The git token, if the request brought one.
    pub git_token: Option<String>,
    /// Host ports other workspaces hold.
    pub others_ports: Vec<u16>,
}

/// The container's name for workspace `id`.
pub fn container_name(id: &str) -> String {
    format!("berth-ws-{id}")
}

/// The last path segment of a repository URL or path, without `.git`.
pub fn repo_folder(repo: &str) -> String {
    let r = repo.trim_end_matches('/');
    let last = r.rsplit(['/', ':']).next().unwrap_or("workspace");
    let name = last.trim_end_matches(".git");
    if name.is_empty() {
        "workspace".into()
    } else {
        name.into()
    }
}

/// Reads `.devcontainer/devcontainer.json`, else `.devcontainer.json`;
/// returns the config and the folder paths in it are relative to.
pub fn read_config(src: &Path) -> Result<(DevContainer, PathBuf), String> {
    for (rel, base) in [
        (".devcontainer/devcontainer.json", src.join(".devcontainer")),
        (".devcontainer.json", src.to_path_buf()),
    ] {
        let p = src.join(rel);
        if p.is_file() {
            let text =
                std::fs::read_to_string(&p).map_err(|e| format!("cannot read {rel}: {e}"))?;
            let d = DevContainer::parse(rel, &text).map_err(|e| e.to_string())?;
            return Ok((d, base));
        }
    }
    Err("the repository has no .devcontainer/devcontainer.json and no .devcontainer.json".into())
}

/// A tar of folder `dir` with entries relative to it (symlinks kept).
pub fn tar_dir(dir: &Path) -> Result<Vec<u8>, String> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_dir_all(".", dir)
        .map_err(|e| format!("cannot pack {}: {e}", dir.display()))?;
    b.into_inner()
        .map_err(|e| format!("cannot pack {}: {e}", dir.display()))
}

/// A tar holding one executable file at `path` (parents included).
fn tar_file(path: &str, body: &[u8], mode: u32) -> Result<Vec<u8>, String> {
    let mut b = tar::Builder::new(Vec::new());
    let rel = path.trim_start_matches('/');
    let mut acc = String::new();
    let parts: Vec<&str> = rel.split('/').collect();
    for p in &parts[..parts.len() - 1] {
        acc.push_str(p);
        acc.push('/');
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_cksum();
        b.append_data(&mut h, &acc, std::io::empty())
            .map_err(|e| e.to_string())?;
    }
    let mut h = tar::Header::new_gnu();
    h.set_mode(mode);
    h.set_size(body.len() as u64);
    h.set_cksum();
    b.append_data(&mut h, rel, body)
        .map_err(|e| e.to_string())?;
    b.into_inner().map_err(|e| e.to_string())
}

/// The credential helper: answers git's `get` with the token berth keeps
/// in the container's tmpfs; never stores anything.
const HELPER: &str = "#!/bin/sh\n# berth: git credential helper (a short-lived token berth writes to a tmpfs)\n[ \"$1\" = get ] || exit 0\nt=$(cat /run/berth/git-token 2>/dev/null) || exit 0\n[ -n \"$t\" ] || exit 0\necho username=x-access-token\necho \"password=$t\"\n";

fn argv_of(c: &Command) -> Vec<String> {
    match c {
        Command::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
        Command::Argv(a) => a.clone(),
        Command::Parallel(_) => Vec::new(),
    }
}

/// Runs lifecycle hook `hook`'s command in the container (parallel for
/// the object form); a non-zero exit fails the step.
pub async fn run_hook(
    d: &Docker,
    w: &Workspace,
    dc: &DevContainer,
    hook: &str,
    log: &ProvisionLog,
) -> Result<(), StepError> {
    let Some(cmd) = dc.lifecycle.get(hook) else {
        return Ok(());
    };
    let env: Vec<String> = w
        .remote_env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let list: Vec<(String, Vec<String>)> = match cmd {
        Command::Parallel(named) => named.iter().map(|(n, c)| (n.clone(), argv_of(c))).collect(),
        c => vec![(hook.to_string(), argv_of(c))],
    };
    log.line(&format!("== {hook}"));
    let runs = list.iter().map(|(name, argv)| {
        let env = env.clone();
        async move {
            log.line(&format!("$ {}", argv.join(" ")));
            let code = dk::exec(
                d,
                &w.container,
                argv,
                &w.remote_user,
                &w.workspace_folder,
                &env,
                log,
            )
            .await?;
            if code != 0 {
                return Err(format!("{name} exited with status {code}"));
            }
            Ok(())
        }
    });
    for r in futures_util::future::join_all(runs).await {
        r.map_err(fail(hook))?;
    }
    Ok(())
}

/// `initializeCommand`, on the host, in the cloned repository.
pub async fn initialize(
    dc: &DevContainer,
    src: &Path,
    log: &ProvisionLog,
) -> Result<(), StepError> {
    let Some(cmd) = dc.lifecycle.get("initializeCommand") else {
        return Ok(());
    };
    log.line("== initializeCommand (host)");
    let list: Vec<Vec<String>> = match cmd {
        Command::Parallel(named) => named.iter().map(|(_, c)| argv_of(c)).collect(),
        c => vec![argv_of(c)],
    };
    for argv in list {
        log.line(&format!("$ {}", argv.join(" ")));
        let out = tokio::process::Command::new(&argv[0])
            .args(&argv[1..])
            .current_dir(src)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| fail("initializeCommand")(format!("cannot run {}: {e}", argv[0])))?;
        log.line(&String::from_utf8_lossy(&out.stdout));
        log.line(&String::from_utf8_lossy(&out.stderr));
        if !out.status.success() {
            return Err(fail("initializeCommand")(format!(
                "{} exited with {}",
                argv.join(" "),
                out.status
            )));
        }
    }
    Ok(())
}

/// The image step: present or pulled, or built from the Dockerfile.
/// Returns the image to run.
pub async fn image(
    d: &Docker,
    id: &str,
    owner: &str,
    dc: &DevContainer,
    base: &Path,
    log: &ProvisionLog,
) -> Result<String, StepError> {
    match dc.source.as_ref() {
        Some(Source::Image(img)) => {
            dk::ensure_image(d, img, log).await.map_err(fail("image"))?;
            Ok(img.clone())
        }
        Some(Source::Build {
            dockerfile,
            context,
            args,
            target,
        }) => {
            let ctx = base.join(context);
            let ctx = ctx
                .canonicalize()
                .map_err(|e| fail("build")(format!("build.context {context:?}: {e}")))?;
            let df = base.join(dockerfile);
            let df = df
                .canonicalize()
                .map_err(|e| fail("build")(format!("build.dockerfile {dockerfile:?}: {e}")))?;
            let rel = df.strip_prefix(&ctx).map_err(|_| {
                fail("build")(format!(
                    "build.dockerfile {dockerfile:?} is outside build.context {context:?}"
                ))
            })?;
            let tag = format!("berth-ws-{}:latest", id.to_ascii_lowercase());
            log.line(&format!("== build {tag} from {}", rel.display()));
            let tar = tar_dir(&ctx).map_err(fail("build"))?;
            let args: HashMap<String, String> =
                args.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            let labels = dk::labels(id, owner);
            dk::build(
                d,
                dk::BuildSpec {
                    tag: &tag,
                    dockerfile: &rel.to_string_lossy(),
                    args,
                    target,
                    labels,
                },
                tar,
                log,
            )
            .await
            .map_err(fail("build"))?;
            Ok(tag)
        }
        Some(Source::Compose { .. }) | None => Err(fail("config")(
            "a dockerComposeFile devcontainer goes through the Compose path".into(),
        )),
    }
}

fn mount(m: &MountSpec) -> Mount {
    Mount {
        target: Some(m.target.clone()),
        source: (!m.source.is_empty()).then(|| m.source.clone()),
        typ: Some(match m.kind.as_str() {
            "bind" => MountType::BIND,
            "tmpfs" => MountType::TMPFS,
            _ => MountType::VOLUME,
        }),
        read_only: Some(m.read_only),
        ..Default::default()
    }
}

/// The container to create for `w` from `dc`: labels, env, users, mounts
/// (the workspace volume at the workspace folder unless `workspaceMount`
/// says otherwise), the network, forwarded ports on 127.0.0.1, and the
/// `runArgs` berth maps.
pub fn container_body(
    w: &Workspace,
    owner: &str,
    dc: &DevContainer,
    image: &str,
    git_env: &[(String, String)],
) -> ContainerCreateBody {
    let mut labels = dk::labels(&w.id, owner);
    for (k, v) in &dc.run_args.labels {
        labels.insert(k.clone(), v.clone());
    }
    let mut env: Vec<String> = dc
        .container_env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    env.extend(dc.run_args.env.iter().map(|(k, v)| format!("{k}={v}")));
    env.extend(git_env.iter().map(|(k, v)| format!("{k}={v}")));
    let ws_mount = dc.workspace_mount.clone().unwrap_or(MountSpec {
        kind: "volume".into(),
        source: w.volume(),
        target: w.workspace_folder.clone(),
        read_only: false,
    });
    let mut mounts = vec![mount(&ws_mount)];
    mounts.extend(dc.mounts.iter().map(mount));
    let mut bindings = HashMap::new();
    let mut exposed = Vec::new();
    for p in &w.ports {
        let key = format!("{}/tcp", p.container_port);
        exposed.push(key.clone());
        bindings.insert(
            key,
            Some(vec![PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(p.host_port.to_string()),
            }]),
        );
    }
    let ra = &dc.run_args;
    let keepalive = "trap 'exit 0' TERM INT; while sleep 3600 & wait $!; do :; done";
    ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: dc
            .override_command
            .then(|| vec!["/bin/sh".into(), "-c".into(), keepalive.into(), "-".into()]),
        cmd: dc.override_command.then(Vec::new),
        user: dc.container_user.clone(),
        env: Some(env),
        labels: Some(labels),
        working_dir: Some(w.workspace_folder.clone()),
        hostname: ra.hostname.clone(),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        host_config: Some(HostConfig {
            mounts: Some(mounts),
            network_mode: Some(container_name(&w.id)),
            port_bindings: (!bindings.is_empty()).then_some(bindings),
            cap_add: (!ra.cap_add.is_empty()).then(|| ra.cap_add.clone()),
            cap_drop: (!ra.cap_drop.is_empty()).then(|| ra.cap_drop.clone()),
            security_opt: (!ra.security_opt.is_empty()).then(|| ra.security_opt.clone()),
            privileged: Some(ra.privileged),
            init: ra.init.then_some(true),
            extra_hosts: (!ra.add_host.is_empty()).then(|| ra.add_host.clone()),
            shm_size: ra.shm_size,
            memory: ra.memory,
            devices: (!ra.devices.is_empty()).then(|| {
                ra.devices
                    .iter()
                    .map(|d| {
                        let mut it = d.split(':');
                        let host = it.next().unwrap_or_default().to_string();
                        let cont = it.next().map(String::from).unwrap_or_else(|| host.clone());
                        let perm = it.next().unwrap_or("rwm").to_string();
                        DeviceMapping {
                            path_on_host: Some(host),
                            path_in_container: Some(cont),
                            cgroup_permissions: Some(perm),
                        }
                    })
                    .collect()
            }),
            tmpfs: Some(HashMap::from([(
                TOKEN_DIR.to_string(),
                "mode=0755".to_string(),
            )])),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Host ports for `wanted` container ports: the previous ones when still
/// usable, else from berth's allocator (the projects' one), never one
/// another workspace holds.
pub fn allocate_ports(
    id: &str,
    wanted: &[u16],
    previous: &[ForwardedPort],
    others: &[u16],
) -> Result<Vec<ForwardedPort>, String> {
    use crate::projects::plan::WantedPort;
    use crate::projects::{PortMapping, Protocol};
    let want: Vec<WantedPort> = wanted
        .iter()
        .map(|p| WantedPort {
            service: id.to_string(),
            container_port: *p,
            protocol: Protocol::Tcp,
            host_ip: "127.0.0.1".into(),
            host_port: None,
            host_range: None,
        })
        .collect();
    let prev: Vec<PortMapping> = previous
        .iter()
        .map(|p| PortMapping {
            service: id.to_string(),
            container_port: p.container_port,
            host_port: p.host_port,
            protocol: Protocol::Tcp,
            host_ip: "127.0.0.1".into(),
            requested: false,
        })
        .collect();
    let held: Vec<(String, PortMapping)> = others
        .iter()
        .map(|h| {
            (
                "another workspace".to_string(),
                PortMapping {
                    service: String::new(),
                    container_port: 0,
                    host_port: *h,
                    protocol: Protocol::Tcp,
                    host_ip: "127.0.0.1".into(),
                    requested: false,
                },
            )
        })
        .collect();
    let got = crate::projects::ports::allocate(&want, &prev, &held, true, false)
        .map_err(|e| e.to_string())?;
    Ok(got
        .into_iter()
        .map(|m| ForwardedPort {
            container_port: m.container_port,
            host_port: m.host_port,
        })
        .collect())
}

/// The env that makes git in the container use the credential helper
/// (no git needed at provisioning time, nothing written to a git config).
pub fn git_env() -> Vec<(String, String)> {
    vec![
        ("GIT_CONFIG_COUNT".into(), "1".into()),
        ("GIT_CONFIG_KEY_0".into(), "credential.helper".into()),
        ("GIT_CONFIG_VALUE_0".into(), CREDENTIAL_HELPER.into()),
    ]
}

/// Installs the credential helper and writes the token into the tmpfs,
/// readable by the remote user only.
pub async fn install_credentials(
    d: &Docker,
    w: &Workspace,
    token: &str,
    log: &ProvisionLog,
) -> Result<(), StepError> {
    let tar = tar_file(CREDENTIAL_HELPER, HELPER.as_bytes(), 0o755).map_err(fail("credentials"))?;
    dk::upload(d, &w.container, "/", tar)
        .await
        .map_err(fail("credentials"))?;
    // The token goes in through the exec's environment (not argv, not a
    // file in an image layer); the tmpfs copy dies with the container.
    let owner = if w.remote_user.is_empty() {
        String::new()
    } else {
        format!("chown {} {TOKEN_DIR}/git-token; ", w.remote_user)
    };
    let script =
        format!("umask 077; printf %s \"$BERTH_GIT_TOKEN\" > {TOKEN_DIR}/git-token; {owner}");
    let env = vec![format!("BERTH_GIT_TOKEN={token}")];
    let (code, out) = dk::exec_capture(
        d,
        &w.container,
        &["/bin/sh".into(), "-c".into(), script],
        "0",
        "/",
        &env,
    )
    .await
    .map_err(fail("credentials"))?;
    if code != 0 {
        return Err(fail("credentials")(format!(
            "writing the token failed ({code}): {}",
            log.redactor().apply(out.trim())
        )));
    }
    log.line("git credential helper installed");
    Ok(())
}

/// Copies the clone into the workspace folder (on the volume) and hands
/// it to the remote (or container) user.
pub async fn populate(
    d: &Docker,
    w: &Workspace,
    dc: &DevContainer,
    src: &Path,
    log: &ProvisionLog,
) -> Result<(), StepError> {
    log.line(&format!(
        "== copy the repository into {}",
        w.workspace_folder
    ));
    let tar = tar_dir(src).map_err(fail("copy"))?;
    let (code, out) = dk::exec_capture(
        d,
        &w.container,
        &["mkdir".into(), "-p".into(), w.workspace_folder.clone()],
        "0",
        "/",
        &[],
    )
    .await
    .map_err(fail("copy"))?;
    if code != 0 {
        return Err(fail("copy")(format!(
            "mkdir {}: {}",
            w.workspace_folder,
            out.trim()
        )));
    }
    dk::upload(d, &w.container, &w.workspace_folder, tar)
        .await
        .map_err(fail("copy"))?;
    let owner = if !w.remote_user.is_empty() {
        w.remote_user.clone()
    } else {
        dc.container_user.clone().unwrap_or_default()
    };
    if !owner.is_empty() && owner != "root" && owner != "0" {
        let (code, out) = dk::exec_capture(
            d,
            &w.container,
            &[
                "chown".into(),
                "-R".into(),
                owner.clone(),
                w.workspace_folder.clone(),
            ],
            "0",
            "/",
            &[],
        )
        .await
        .map_err(fail("copy"))?;
        if code != 0 {
            return Err(fail("copy")(format!("chown -R {owner}: {}", out.trim())));
        }
    }
    Ok(())
}

/// The first of bash, sh that exists in the container.
pub async fn find_shell(d: &Docker, container: &str) -> String {
    for sh in ["/bin/bash", "/bin/sh"] {
        if let Ok((0, _)) = dk::exec_capture(
            d,
            container,
            &["test".into(), "-x".into(), sh.into()],
            "0",
            "/",
            &[],
        )
        .await
        {
            return sh.into();
        }
    }
    "/bin/sh".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_folder_names() {
        assert_eq!(repo_folder("https://github.com/o/app.git"), "app");
        assert_eq!(repo_folder("/srv/git/app/"), "app");
        assert_eq!(repo_folder("git@github.com:o/r.git"), "r");
    }
}
