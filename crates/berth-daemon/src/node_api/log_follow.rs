//! What `/logs/stream` follows after its catch-up (seed 004 "Log
//! Retrieval Settings"): new lines of the file sources (the daemon's own
//! log, cloud-init's) the moment inotify says their directory changed, and
//! `journalctl -f` / `docker logs -f` where those exist. Every follower
//! sends parsed entries into one channel and ends with it. `stream`
//! serves the WebSocket: catch-up from `logs::query`, then the followers.

use super::logs::{keep, parse_line, query, Entry, LogQuery, Sources};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use serde_json::{json, Value};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

/// Where to follow, and which sources the query asked for.
pub struct Follow {
    /// (file, source name) pairs to tail.
    pub files: Vec<(PathBuf, &'static str)>,
    /// Follow journald (`journalctl -f`).
    pub journal: bool,
    /// Follow this container (`docker logs -f`).
    pub container: Option<String>,
}

/// Starts the followers; entries arrive on the returned channel until it
/// is dropped (which ends them: the tasks notice a closed channel, child
/// processes are killed on drop). Files are read from their current end.
pub fn start(f: Follow) -> mpsc::Receiver<Entry> {
    let (tx, rx) = mpsc::channel(256);
    if !f.files.is_empty() {
        // The watch and the starting positions are taken here, before the
        // caller's catch-up, so no line written after it is missed.
        let tails: Vec<Tail> = f
            .files
            .into_iter()
            .map(|(path, source)| Tail {
                pos: std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
                path,
                source,
                partial: String::new(),
            })
            .collect();
        let w = watch(&tails);
        tokio::spawn(tail_files(tails, w, tx.clone()));
    }
    if f.journal {
        let args = ["-f", "-o", "json", "-n", "0", "--no-pager"].map(String::from);
        tokio::spawn(follow_command(
            "journalctl",
            args.to_vec(),
            tx.clone(),
            journal_line,
        ));
    }
    if let Some(c) = f.container {
        let args = ["logs", "-f", "--timestamps", "--tail", "0", &c].map(String::from);
        tokio::spawn(follow_command("docker", args.to_vec(), tx, docker_line));
    }
    rx
}

/// Serves `/logs/stream` on `sock` (the route is in `mod.rs`): the
/// newest `LOG_STREAM_BUFFER_SIZE` entries oldest first, then each new
/// entry as its source writes it (pushed, see `log_follow`).
pub async fn stream(
    sock: axum::extract::ws::WebSocket,
    src: Sources,
    mut q: LogQuery,
    cfg: crate::node_api::config::NodeApiConfig,
) {
    use axum::extract::ws::Message;
    use futures_util::{SinkExt, StreamExt};
    let (mut tx, mut rx) = sock.split();
    q.cursor = None;
    let source = q.source.clone().unwrap_or_else(|| "all".into());
    let wants = |s: &str| source == "all" || source == s;
    let mut files = Vec::new();
    if wants("agent") {
        files.push((src.agent_log.clone(), "agent"));
    }
    if wants("cloud-init") {
        files.extend(src.cloud_init.iter().map(|p| (p.clone(), "cloud-init")));
    }
    // Followers start before the catch-up so nothing written in between
    // is lost; what the catch-up already sent is skipped by its time.
    let mut follow = start(Follow {
        files,
        journal: wants("systemd"),
        container: q.container.clone().filter(|_| wants("docker")),
    });
    let limit = cfg.log_stream_buffer.max(1);
    let mut caught_up = String::new();
    if let Ok(v) = query(&src, &q, limit, limit.max(cfg.log_max_limit)).await {
        let mut entries: Vec<Value> = v["entries"].as_array().cloned().unwrap_or_default();
        entries.reverse(); // oldest first
        for e in entries {
            let ts = e["timestamp"].as_str().unwrap_or("").to_string();
            caught_up = caught_up.max(ts);
            let m = json!({"type": "log", "entry": e}).to_string();
            if tx.send(Message::Text(m.into())).await.is_err() {
                return;
            }
        }
    }
    let mut following = true;
    let mut ping = tokio::time::interval(cfg.log_stream_ping.max(Duration::from_secs(1)));
    let mut last_pong = tokio::time::Instant::now();
    loop {
        tokio::select! {
            e = follow.recv(), if following => {
                let Some(e) = e else { following = false; continue };
                if !keep(&q, &e) || (!e.timestamp.is_empty() && e.timestamp <= caught_up) {
                    continue;
                }
                let entry = json!({"timestamp": e.timestamp, "level": e.level, "source": e.source, "message": e.message});
                let m = json!({"type": "log", "entry": entry}).to_string();
                if tx.send(Message::Text(m.into())).await.is_err() {
                    return;
                }
            }
            _ = ping.tick() => {
                if last_pong.elapsed() > cfg.log_stream_pong_timeout {
                    break;
                }
                if tx.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
            m = rx.next() => match m {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => last_pong = tokio::time::Instant::now(),
            },
        }
    }
    let _ = tx.close().await;
}

/// An inotify instance, and a duplicate of its descriptor registered with
/// tokio for readiness (both name one open file description).
struct Watch {
    ino: Inotify,
    ready: tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
}

/// One tailed file: where its next unread byte is, and a partial line.
struct Tail {
    path: PathBuf,
    source: &'static str,
    pos: u64,
    partial: String,
}

impl Tail {
    /// Complete lines added since the last call. A file that shrank was
    /// truncated or replaced: it is read again from its start.
    fn read_new(&mut self) -> Vec<Entry> {
        use std::io::{Read, Seek, SeekFrom};
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.pos {
            self.pos = 0;
            self.partial.clear();
        }
        if len == self.pos || file.seek(SeekFrom::Start(self.pos)).is_err() {
            return Vec::new();
        }
        let mut buf = Vec::new();
        if file.read_to_end(&mut buf).is_err() {
            return Vec::new();
        }
        self.pos += buf.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&buf));
        let mut out = Vec::new();
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if !line.is_empty() {
                out.push(parse_line(line, self.source));
            }
        }
        out
    }
}

/// Tails `files`, woken by inotify on their directories (creation,
/// writes, renames: rotation is seen). Without inotify (no instance left
/// for this user), polls every 2 s instead.
async fn tail_files(mut tails: Vec<Tail>, watch: Result<Watch, String>, tx: mpsc::Sender<Entry>) {
    if let Err(e) = &watch {
        tracing::warn!("log stream: no inotify ({e}); polling the log files every 2 s");
    }
    let mut watch = watch.ok();
    loop {
        for t in &mut tails {
            for e in t.read_new() {
                if tx.send(e).await.is_err() {
                    return;
                }
            }
        }
        match &mut watch {
            Some(w) => {
                tokio::select! {
                    _ = tx.closed() => return,
                    r = w.ready.readable() => match r {
                        Ok(mut g) => {
                            // Drain the events; which file changed does
                            // not matter, each tail checks its size.
                            let ino = &w.ino;
                            let _ = g.try_io(|_| ino.read_events().map_err(std::io::Error::from));
                        }
                        Err(_) => return,
                    },
                }
            }
            None => {
                tokio::select! {
                    _ = tx.closed() => return,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
                }
            }
        }
    }
}

/// An inotify watch on each tailed file's directory.
fn watch(tails: &[Tail]) -> Result<Watch, String> {
    let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
        .map_err(|e| format!("inotify_init: {e}"))?;
    let mut any = false;
    for t in tails {
        let Some(dir) = t.path.parent() else { continue };
        let flags = AddWatchFlags::IN_MODIFY
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_CLOSE_WRITE;
        if ino.add_watch(dir, flags).is_ok() {
            any = true;
        }
    }
    if !any {
        return Err("none of the log directories exists".into());
    }
    let dup = ino
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| e.to_string())?;
    let ready = berth_os::async_fd::register(dup, tokio::io::Interest::READABLE)
        .map_err(|e| e.to_string())?;
    Ok(Watch { ino, ready })
}

/// Runs `cmd args` (killed when this ends) and sends each stdout and
/// stderr line it prints, parsed by `parse`. A command that cannot start
/// ends quietly: the catch-up already reported the source unavailable.
async fn follow_command(
    cmd: &'static str,
    args: Vec<String>,
    tx: mpsc::Sender<Entry>,
    parse: fn(&str) -> Option<Entry>,
) {
    let child = tokio::process::Command::new(cmd)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let Ok(mut child) = child else { return };
    let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
        return;
    };
    let mut out = tokio::io::BufReader::new(out).lines();
    let mut err = tokio::io::BufReader::new(err).lines();
    let (mut out_open, mut err_open) = (true, true);
    while out_open || err_open {
        let line = tokio::select! {
            _ = tx.closed() => break,
            l = out.next_line(), if out_open => match l {
                Ok(Some(l)) => l,
                _ => { out_open = false; continue }
            },
            l = err.next_line(), if err_open => match l {
                Ok(Some(l)) => l,
                _ => { err_open = false; continue }
            },
        };
        if let Some(e) = parse(&line) {
            if tx.send(e).await.is_err() {
                break;
            }
        }
    }
    let _ = child.kill().await;
}

/// One `journalctl -o json` line.
fn journal_line(line: &str) -> Option<Entry> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let us: u64 = v["__REALTIME_TIMESTAMP"].as_str()?.parse().ok()?;
    let prio: u8 = v["PRIORITY"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    Some(Entry {
        timestamp: crate::node_api::terminals::iso(us / 1000),
        level: match prio {
            0..=3 => "error",
            4 => "warn",
            5 | 6 => "info",
            _ => "debug",
        },
        source: "systemd",
        message: v["MESSAGE"].as_str().unwrap_or("").to_string(),
    })
}

/// One `docker logs --timestamps` line.
fn docker_line(line: &str) -> Option<Entry> {
    let (ts, msg) = line.split_once(' ').unwrap_or(("", line));
    Some(Entry {
        timestamp: ts.to_string(),
        level: "info",
        source: "docker",
        message: msg.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_gives_complete_new_lines_and_rereads_a_truncated_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        std::fs::write(&p, "old line\n").unwrap();
        let mut t = Tail {
            pos: 9,
            path: p.clone(),
            source: "agent",
            partial: String::new(),
        };
        assert!(t.read_new().is_empty());
        std::fs::write(&p, "old line\n2026-11-29T10:00:00Z  WARN one\ntwo-par").unwrap();
        let got = t.read_new();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].level, "warn");
        assert_eq!(got[0].message, "one");
        std::fs::write(&p, "new\n").unwrap();
        let got = t.read_new();
        assert_eq!(got.len(), 1, "a truncated file is read from its start");
        assert_eq!(got[0].message, "new");
    }
}
