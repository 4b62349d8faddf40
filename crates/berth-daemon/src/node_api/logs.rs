//! `GET /logs` (seed 004 "Log Retrieval Settings"): the node's logs from
//! several sources, merged newest first, filtered and paged. A source the
//! machine does not have (no journald, no Docker, no cloud-init) is
//! reported under `sources`, never an error.

use serde::Deserialize;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Query of `/logs`.
#[derive(Debug, Default, Deserialize)]
pub struct LogQuery {
    /// `all` (default), `agent`, `cloud-init`, `docker`, `systemd`.
    pub source: Option<String>,
    /// Minimum level: debug, info, warn, error.
    pub level: Option<String>,
    /// Docker container (docker source).
    pub container: Option<String>,
    /// RFC 3339 lower bound (inclusive).
    pub since: Option<String>,
    /// RFC 3339 upper bound (inclusive).
    pub until: Option<String>,
    /// Case-insensitive substring.
    pub search: Option<String>,
    /// From a previous page's `nextCursor`.
    pub cursor: Option<String>,
    /// Entries per page (default and maximum from the settings).
    pub limit: Option<usize>,
}

/// One entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// RFC 3339 (or the source's own text when it has no time).
    pub timestamp: String,
    /// debug, info, warn, error.
    pub level: &'static str,
    /// Which source.
    pub source: &'static str,
    /// The line.
    pub message: String,
}

/// Where the sources are read from.
pub struct Sources {
    /// The daemon's own log (`daemon.log` of a detached daemon).
    pub agent_log: PathBuf,
    /// cloud-init's output logs.
    pub cloud_init: Vec<PathBuf>,
    /// journalctl deadline.
    pub reader_timeout: Duration,
}

fn rank(level: &str) -> u8 {
    match level {
        "debug" | "trace" => 0,
        "info" => 1,
        "warn" | "warning" => 2,
        _ => 3,
    }
}

fn norm_level(s: &str) -> &'static str {
    match s.to_ascii_lowercase().as_str() {
        "trace" | "debug" => "debug",
        "warn" | "warning" => "warn",
        "error" | "err" | "fatal" | "crit" => "error",
        _ => "info",
    }
}

/// Reads, filters and pages. `Err` is a bad query (named).
pub async fn query(
    src: &Sources,
    q: &LogQuery,
    default: usize,
    max: usize,
) -> Result<Value, String> {
    let source = q.source.as_deref().unwrap_or("all");
    let all = ["agent", "cloud-init", "docker", "systemd"];
    if source != "all" && !all.contains(&source) {
        return Err(format!(
            "source {source:?}: use all, agent, cloud-init, docker or systemd"
        ));
    }
    if let Some(l) = &q.level {
        if !["debug", "info", "warn", "error"].contains(&l.as_str()) {
            return Err(format!("level {l:?}: use debug, info, warn or error"));
        }
    }
    let limit = q.limit.unwrap_or(default).clamp(1, max.max(1));
    let skip: usize = match &q.cursor {
        None => 0,
        Some(c) => c
            .parse()
            .map_err(|_| format!("cursor {c:?} is not one this server gave"))?,
    };
    let want = skip + limit + 1;
    let mut entries = Vec::new();
    let mut status = serde_json::Map::new();
    for s in all {
        if source != "all" && source != s {
            continue;
        }
        let r = match s {
            "agent" => file_lines(std::slice::from_ref(&src.agent_log), "agent", want * 4),
            "cloud-init" => file_lines(&src.cloud_init, "cloud-init", want * 4),
            "systemd" => journal(q, want * 4, src.reader_timeout).await,
            _ => docker(q, want * 4, src.reader_timeout).await,
        };
        match r {
            Ok(mut v) => {
                status.insert(s.into(), json!("ok"));
                entries.append(&mut v);
            }
            Err(why) => {
                status.insert(s.into(), json!(format!("unavailable: {why}")));
            }
        }
    }
    entries.retain(|e| keep(q, e));
    entries.sort_by(|a, b| b.timestamp.cmp(&a.timestamp));
    let has_more = entries.len() > skip + limit;
    let page: Vec<Value> = entries
        .into_iter()
        .skip(skip)
        .take(limit)
        .map(|e| json!({"timestamp": e.timestamp, "level": e.level, "source": e.source, "message": e.message}))
        .collect();
    Ok(json!({
        "entries": page,
        "nextCursor": if has_more { json!((skip + limit).to_string()) } else { Value::Null },
        "hasMore": has_more,
        "sources": status,
    }))
}

/// Whether `e` passes `q`'s level, time and search filters.
pub fn keep(q: &LogQuery, e: &Entry) -> bool {
    let min = q.level.as_deref().map(rank).unwrap_or(0);
    rank(e.level) >= min
        && q.since.as_deref().is_none_or(|s| e.timestamp.as_str() >= s)
        && q.until.as_deref().is_none_or(|u| e.timestamp.as_str() <= u)
        && q.search
            .as_deref()
            .is_none_or(|n| e.message.to_lowercase().contains(&n.to_lowercase()))
}

/// The last `max` lines of `files` (missing files: unavailable if none
/// exists). A leading RFC 3339 time and level word are taken apart.
fn file_lines(files: &[PathBuf], source: &'static str, max: usize) -> Result<Vec<Entry>, String> {
    let existing: Vec<&PathBuf> = files.iter().filter(|p| p.exists()).collect();
    if existing.is_empty() {
        return Err(format!(
            "no {}",
            files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" or ")
        ));
    }
    let mut out = Vec::new();
    for f in existing {
        let text = read_tail(f, 4 << 20).map_err(|e| format!("{}: {e}", f.display()))?;
        for line in text.lines().rev().take(max) {
            out.push(parse_line(line, source));
        }
    }
    Ok(out)
}

fn read_tail(p: &Path, max: u64) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(p)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(max);
    f.seek(SeekFrom::Start(start))?;
    let mut b = Vec::new();
    f.read_to_end(&mut b)?;
    if start > 0 {
        // Started inside a line (maybe inside a character): drop that
        // piece, keep whole lines only.
        let first = b
            .iter()
            .position(|c| *c == b'\n')
            .map_or(b.len(), |i| i + 1);
        b.drain(..first);
    }
    Ok(String::from_utf8_lossy(&b).into_owned())
}

/// One log line: a leading RFC 3339 time and level word taken apart
/// (tracing's format), else the whole line at `info`.
pub fn parse_line(line: &str, source: &'static str) -> Entry {
    // Strip colour codes tracing may have written.
    let clean: String = {
        let mut s = String::with_capacity(line.len());
        let mut it = line.chars().peekable();
        while let Some(c) = it.next() {
            if c == '\x1b' {
                for d in it.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                s.push(c);
            }
        }
        s
    };
    let t = clean.trim_start();
    let (first, rest) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
    if first.len() >= 19 && first.as_bytes()[4] == b'-' && first.contains('T') {
        let rest = rest.trim_start();
        let (second, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let lv = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&second);
        return Entry {
            timestamp: first.to_string(),
            level: if lv { norm_level(second) } else { "info" },
            source,
            message: if lv {
                tail.trim().to_string()
            } else {
                rest.trim().to_string()
            },
        };
    }
    Entry {
        timestamp: String::new(),
        level: "info",
        source,
        message: clean,
    }
}

async fn run(cmd: &str, args: &[String], timeout: Duration) -> Result<String, String> {
    let child = tokio::process::Command::new(cmd)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(timeout, child)
        .await
        .map_err(|_| format!("{cmd} took longer than {timeout:?}"))?
        .map_err(|e| format!("{cmd}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

async fn journal(q: &LogQuery, max: usize, timeout: Duration) -> Result<Vec<Entry>, String> {
    let mut args = vec![
        "-o".into(),
        "json".into(),
        "--no-pager".into(),
        "-n".into(),
        max.to_string(),
    ];
    if let Some(s) = &q.since {
        args.extend([
            "--since".into(),
            s.replace('T', " ").trim_end_matches('Z').into(),
        ]);
    }
    if let Some(u) = &q.until {
        args.extend([
            "--until".into(),
            u.replace('T', " ").trim_end_matches('Z').into(),
        ]);
    }
    let text = run("journalctl", &args, timeout).await?;
    let mut out = Vec::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let us: u64 = v["__REALTIME_TIMESTAMP"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let prio: u8 = v["PRIORITY"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(6);
        out.push(Entry {
            timestamp: crate::node_api::terminals::iso(us / 1000),
            level: match prio {
                0..=3 => "error",
                4 => "warn",
                5 | 6 => "info",
                _ => "debug",
            },
            source: "systemd",
            message: v["MESSAGE"].as_str().unwrap_or("").to_string(),
        });
    }
    if out.is_empty() && text.contains("No journal files") {
        return Err("no journal".into());
    }
    Ok(out)
}

async fn docker(q: &LogQuery, max: usize, timeout: Duration) -> Result<Vec<Entry>, String> {
    let Some(c) = &q.container else {
        // Which containers exist is the control plane's business; without
        // one named there is nothing to read, which is not an error.
        run(
            "docker",
            &[
                "version".into(),
                "--format".into(),
                "{{.Server.Version}}".into(),
            ],
            timeout,
        )
        .await?;
        return Ok(Vec::new());
    };
    let args = vec![
        "logs".into(),
        "--timestamps".into(),
        "--tail".into(),
        max.to_string(),
        c.clone(),
    ];
    let text = run("docker", &args, timeout).await?;
    Ok(text
        .lines()
        .map(|l| {
            let (ts, msg) = l.split_once(' ').unwrap_or(("", l));
            Entry {
                timestamp: ts.to_string(),
                level: "info",
                source: "docker",
                message: msg.to_string(),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracing_lines_split_into_time_level_and_message() {
        let e = parse_line("2026-11-29T10:00:00.123Z  WARN berth: disk low", "agent");
        assert_eq!(e.timestamp, "2026-11-29T10:00:00.123Z");
        assert_eq!(e.level, "warn");
        assert_eq!(e.message, "berth: disk low");
        assert_eq!(parse_line("plain", "cloud-init").message, "plain");
    }

    /// Issue 21, item 5: the 4 MiB window started at a byte offset, so the
    /// oldest entry could begin inside a character (U+FFFD).
    #[test]
    fn a_tail_window_starts_at_a_whole_line() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("agent.log");
        std::fs::write(&p, "ééééé\nsecond é\nthird\n").unwrap();
        // 20 bytes from the end starts inside the first line's `é`s.
        let text = read_tail(&p, 20).unwrap();
        assert_eq!(text, "second é\nthird\n");
        assert_eq!(read_tail(&p, 1 << 20).unwrap(), "ééééé\nsecond é\nthird\n");
    }
}
