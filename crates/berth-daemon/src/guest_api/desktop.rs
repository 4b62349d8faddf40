//! The desktop endpoints: `open` and `apps`. A bundle ID here is a
//! desktop entry ID (`org.gnome.Terminal` for
//! `applications/org.gnome.Terminal.desktop` in an XDG data dir).
//!
//! - `GET /api/v1/apps`: running processes of this user matched to desktop
//!   entries by their executable's name (the entry's `Exec` program).
//! - `POST /api/v1/apps/launch {bundle_id}`: runs the entry's `Exec`
//!   (field codes dropped), detached; 409 without a display.
//! - `POST /api/v1/apps/quit {bundle_id}`: on an X display its windows are
//!   asked to close (EWMH `_NET_CLOSE_WINDOW`, or ICCCM `WM_DELETE_WINDOW`
//!   without a window manager); what still runs after 2 s, or everything
//!   without a display, gets SIGTERM.
//! - `POST /api/v1/apps/activate`, `GET /api/v1/apps/frontmost`: EWMH on an
//!   X display (see [`super::x11`]); 409 without a display, 501 on a
//!   Wayland-only one.
//! - `POST /api/v1/open {path}`: `xdg-open` (or `gio open`) where a
//!   display session exists, else 409.

use super::error::Json;
use super::error::{ApiError, ApiResult};
use super::{x11, JsonBody};
use axum::http::StatusCode;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A desktop entry of type Application.
#[derive(Debug, Clone, PartialEq)]
pub struct DesktopEntry {
    /// Desktop entry ID: the path under `applications/`, `/` as `-`,
    /// without `.desktop`.
    pub id: String,
    /// `Name=`.
    pub name: String,
    /// `Exec=`, as written.
    pub exec: String,
}

impl DesktopEntry {
    /// The argv of `Exec` with field codes (`%f`, `%U`, ...) dropped and
    /// `%%` kept as `%`; double quotes group words.
    pub fn argv(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut quoted = false;
        let mut chars = self.exec.chars().peekable();
        let mut started = false;
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    quoted = !quoted;
                    started = true;
                }
                '\\' if quoted => {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                }
                '%' => {
                    if let Some('%') = chars.next() {
                        cur.push('%');
                    }
                }
                c if c.is_whitespace() && !quoted => {
                    if started || !cur.is_empty() {
                        out.push(std::mem::take(&mut cur));
                    }
                    started = false;
                }
                c => cur.push(c),
            }
        }
        if started || !cur.is_empty() {
            out.push(cur);
        }
        out.retain(|a| !a.is_empty());
        out
    }

    /// The program's file name, what running processes are matched on.
    pub fn program(&self) -> Option<String> {
        let argv = self.argv();
        let mut prog = argv.first()?.as_str();
        if prog == "env" {
            prog = argv.iter().skip(1).find(|a| !a.contains('='))?;
        }
        Path::new(prog)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
    }
}

/// The XDG data dirs' `applications/` directories, most important first.
pub fn application_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(d) => dirs.push(PathBuf::from(d)),
        None => {
            if let Some(h) = std::env::var_os("HOME") {
                dirs.push(PathBuf::from(h).join(".local/share"));
            }
        }
    }
    let data = std::env::var("XDG_DATA_DIRS")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "/usr/local/share:/usr/share".into());
    dirs.extend(data.split(':').filter(|d| !d.is_empty()).map(PathBuf::from));
    dirs.into_iter().map(|d| d.join("applications")).collect()
}

/// Every application entry of `dirs`; an ID found twice keeps the first.
pub fn desktop_entries(dirs: &[PathBuf]) -> Vec<DesktopEntry> {
    let mut out: Vec<DesktopEntry> = Vec::new();
    for dir in dirs {
        collect(dir, dir, &mut out);
    }
    out
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<DesktopEntry>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(root, &p, out);
            continue;
        }
        let Some(rel) = p.strip_prefix(root).ok().and_then(|r| r.to_str()) else {
            continue;
        };
        let Some(stem) = rel.strip_suffix(".desktop") else {
            continue;
        };
        let id = stem.replace('/', "-");
        if out.iter().any(|d| d.id == id) {
            continue;
        }
        if let Some(entry) = std::fs::read_to_string(&p)
            .ok()
            .and_then(|t| parse(&id, &t))
        {
            out.push(entry);
        }
    }
}

/// Parses the `[Desktop Entry]` group; `None` unless it is a shown
/// Application with an `Exec`.
pub fn parse(id: &str, text: &str) -> Option<DesktopEntry> {
    let mut in_group = false;
    let (mut name, mut exec, mut kind, mut hidden) = (None, None, None, false);
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_group = line == "[Desktop Entry]";
            continue;
        }
        if !in_group {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k.trim() {
            "Name" => name = Some(v.trim().to_string()),
            "Exec" => exec = Some(v.trim().to_string()),
            "Type" => kind = Some(v.trim().to_string()),
            "Hidden" => hidden = v.trim() == "true",
            _ => {}
        }
    }
    if hidden || kind.as_deref() != Some("Application") {
        return None;
    }
    Some(DesktopEntry {
        id: id.to_string(),
        name: name.unwrap_or_else(|| id.to_string()),
        exec: exec?,
    })
}

fn find_entry(id: &str) -> ApiResult<DesktopEntry> {
    desktop_entries(&application_dirs())
        .into_iter()
        .find(|d| d.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no desktop entry {id:?} in the XDG data dirs")))
}

/// The display the guest's desktop session uses, if any.
fn display() -> Option<String> {
    ["WAYLAND_DISPLAY", "DISPLAY"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

fn need_display(what: &str) -> ApiResult<String> {
    display().ok_or_else(|| {
        ApiError::conflict(format!(
            "{what} needs a desktop session, and the berth daemon has no display (neither DISPLAY nor WAYLAND_DISPLAY is set)"
        ))
    })
}

/// Processes of this user whose executable name is `program`.
fn pids_running(program: &str) -> Vec<u32> {
    use std::os::unix::fs::MetadataExt;
    let me = berth_os::dirs::uid();
    let daemon = std::process::id();
    berth_os::proc::all_pids()
        .into_iter()
        .filter(|&pid| pid != daemon)
        .filter(|&pid| {
            std::fs::metadata(format!("/proc/{pid}"))
                .map(|m| m.uid() == me)
                .unwrap_or(false)
        })
        .filter(|&pid| {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim().to_string())
                .unwrap_or_default();
            // comm is the name cut to 15 bytes (TASK_COMM_LEN - 1): it
            // matches only a name cut the same way, never a mere prefix.
            exe.as_deref() == Some(program) || comm == comm_of(program)
        })
        .collect()
}

/// What the kernel keeps of a program name as `comm`: its first 15 bytes.
fn comm_of(program: &str) -> &str {
    let mut end = program.len().min(15);
    while !program.is_char_boundary(end) {
        end -= 1;
    }
    &program[..end]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BundleRequest {
    bundle_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OpenRequest {
    path: String,
}

pub(super) async fn apps() -> ApiResult<Json<serde_json::Value>> {
    let list = tokio::task::spawn_blocking(|| {
        desktop_entries(&application_dirs())
            .into_iter()
            .filter_map(|d| {
                let pids = pids_running(&d.program()?);
                (!pids.is_empty())
                    .then(|| serde_json::json!({"bundle_id": d.id, "name": d.name, "pids": pids}))
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(serde_json::json!({ "apps": list })))
}

pub(super) async fn launch(
    JsonBody(req): JsonBody<BundleRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    let entry = find_entry(&req.bundle_id)?;
    need_display(&format!("launching {}", req.bundle_id))?;
    let spec = berth_os::spawn::SpawnSpec {
        argv: entry.argv(),
        cwd: None,
        env: std::env::vars().collect(),
    };
    let mut cmd = spec
        .command()
        .map_err(|e| ApiError::bad_request(format!("{}: Exec: {e}", entry.id)))?;
    berth_os::spawn::detach(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| ApiError::io(&format!("cannot launch {}", entry.id), &e))?;
    let pid = child.id();
    // Reaped in the background so it never lingers as a zombie.
    std::thread::spawn(move || child.wait());
    Ok(Json(serde_json::json!({"bundle_id": entry.id, "pid": pid})))
}

/// The X display for window actions: 409 without any display, 501 on a
/// Wayland-only session (it has no standard for one client to activate
/// or close another's windows).
fn x_display(what: &str) -> ApiResult<x11::Display> {
    need_display(what)?;
    if std::env::var("DISPLAY")
        .map(|d| d.is_empty())
        .unwrap_or(true)
    {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            format!(
                "{what}: Wayland has no standard way to do this; it needs an X display (DISPLAY)"
            ),
        ));
    }
    x11::Display::open().map_err(ApiError::conflict)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

/// The entry, its program and its running processes.
fn running_app(id: &str) -> ApiResult<(DesktopEntry, String, Vec<u32>)> {
    let entry = find_entry(id)?;
    let program = entry
        .program()
        .ok_or_else(|| ApiError::bad_request(format!("{}: its Exec names no program", entry.id)))?;
    let pids = pids_running(&program);
    Ok((entry, program, pids))
}

pub(super) async fn activate(
    JsonBody(req): JsonBody<BundleRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    blocking(move || {
        let (entry, program, pids) = running_app(&req.bundle_id)?;
        let d = x_display(&format!("activating {}", entry.id))?;
        let clients = d.clients().map_err(ApiError::conflict)?;
        let win = clients
            .iter()
            .find(|o| x11::owned_by(o, &pids, &program))
            .ok_or_else(|| {
                ApiError::conflict(format!("{} has no window on the display", entry.id))
            })?;
        let how = d.activate(win.window).map_err(ApiError::conflict)?;
        Ok(Json(serde_json::json!({
            "bundle_id": entry.id, "window": win.window, "method": how,
        })))
    })
    .await
}

pub(super) async fn frontmost() -> ApiResult<Json<serde_json::Value>> {
    blocking(|| {
        let d = x_display("finding the frontmost app")?;
        let owner = d
            .frontmost()
            .map_err(ApiError::conflict)?
            .ok_or_else(|| ApiError::conflict("no window is active or has the focus"))?;
        let exe = owner.pid.and_then(|p| {
            std::fs::read_link(format!("/proc/{p}/exe"))
                .ok()
                .and_then(|e| e.file_name().map(|n| n.to_string_lossy().into_owned()))
        });
        let entry = desktop_entries(&application_dirs()).into_iter().find(|e| {
            e.program().is_some_and(|prog| {
                exe.as_deref() == Some(prog.as_str()) || x11::owned_by(&owner, &[], &prog)
            })
        });
        Ok(Json(serde_json::json!({
            "bundle_id": entry.as_ref().map(|e| e.id.clone()),
            "name": entry.as_ref().map(|e| e.name.clone()),
            "pid": owner.pid,
            "wm_class": owner.class.as_ref().map(|(_, c)| c.clone()),
            "window": owner.window,
        })))
    })
    .await
}

/// How long windows asked to close have before SIGTERM.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

pub(super) async fn quit(
    JsonBody(req): JsonBody<BundleRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    blocking(move || {
        let (entry, program, pids) = running_app(&req.bundle_id)?;
        if pids.is_empty() {
            return Err(ApiError::conflict(format!("{} is not running", entry.id)));
        }
        // Politely first, where a display lets us: close its windows.
        let mut asked = 0;
        if std::env::var("DISPLAY").is_ok_and(|d| !d.is_empty()) {
            if let Ok(d) = x11::Display::open() {
                for o in d.clients().unwrap_or_default() {
                    if x11::owned_by(&o, &pids, &program) && d.close(o.window).unwrap_or(false) {
                        asked += 1;
                    }
                }
            }
        }
        let alive = |pids: &[u32]| {
            pids.iter()
                .copied()
                .filter(|p| berth_os::proc::ProcessIdentity::of(*p).is_ok_and(|i| i.is_running()))
                .collect::<Vec<_>>()
        };
        if asked > 0 {
            let deadline = std::time::Instant::now() + CLOSE_GRACE;
            while !alive(&pids).is_empty() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        let mut signalled = Vec::new();
        for pid in alive(&pids) {
            if let Ok(id) = berth_os::proc::ProcessIdentity::of(pid) {
                if berth_os::signal::send(id, berth_os::signal::Signal::SIGTERM).is_ok() {
                    signalled.push(pid);
                }
            }
        }
        let method = match (asked > 0, signalled.is_empty()) {
            (true, true) => "window close",
            (true, false) => "window close, then SIGTERM",
            (false, _) => "SIGTERM",
        };
        Ok(Json(serde_json::json!({
            "bundle_id": entry.id, "windows_closed": asked, "signalled": signalled, "method": method,
        })))
    })
    .await
}

pub(super) async fn open(
    JsonBody(req): JsonBody<OpenRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    let path = Path::new(&req.path);
    if !path.is_absolute() {
        return Err(ApiError::bad_request(format!(
            "{:?} is not an absolute path",
            req.path
        )));
    }
    std::fs::symlink_metadata(path).map_err(|e| ApiError::io(&req.path, &e))?;
    need_display(&format!("opening {}", req.path))?;
    let argv: Vec<String> = if which("xdg-open") {
        vec!["xdg-open".into(), req.path.clone()]
    } else if which("gio") {
        vec!["gio".into(), "open".into(), req.path.clone()]
    } else {
        return Err(ApiError::conflict(
            "neither xdg-open nor gio is installed in the guest",
        ));
    };
    let spec = berth_os::spawn::SpawnSpec {
        argv,
        cwd: None,
        env: std::env::vars().collect(),
    };
    let mut cmd = spec
        .command()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    berth_os::spawn::detach(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| ApiError::io("cannot run the desktop's opener", &e))?;
    std::thread::spawn(move || child.wait());
    Ok(Json(serde_json::json!({"opened": req.path})))
}

fn which(prog: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_field_codes_are_dropped_and_quotes_group() {
        let d = DesktopEntry {
            id: "x".into(),
            name: "X".into(),
            exec: r#"/usr/bin/xterm -T "a b" %U --pct=100%%"#.into(),
        };
        assert_eq!(d.argv(), ["/usr/bin/xterm", "-T", "a b", "--pct=100%"]);
        assert_eq!(d.program().as_deref(), Some("xterm"));
    }

    #[test]
    fn only_shown_applications_parse() {
        let t = "[Desktop Entry]\nType=Application\nName=Term\nExec=xterm\n[Desktop Action x]\nExec=no\n";
        let e = parse("org.x.Term", t).unwrap();
        assert_eq!((e.name.as_str(), e.exec.as_str()), ("Term", "xterm"));
        assert!(parse("l", "[Desktop Entry]\nType=Link\nExec=x\n").is_none());
        assert!(parse(
            "h",
            "[Desktop Entry]\nType=Application\nHidden=true\nExec=x\n"
        )
        .is_none());
    }
}
