//! Rendering daemon answers for people (tables, text) and scripts (JSON).

use berth_wire::daemon::{ProcessState, StatusResponse, TrackedProcess, ZombieReport};
use serde_json::json;

fn state_name(s: i32) -> &'static str {
    match ProcessState::try_from(s).unwrap_or(ProcessState::Unknown) {
        ProcessState::Unknown => "unknown",
        ProcessState::Alive => "alive",
        ProcessState::Dead => "dead",
        ProcessState::Zombie => "zombie",
    }
}

/// `1h02m`, `3m04s`, `12s`.
pub(crate) fn duration(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86400, (s % 86400) / 3600),
    }
}

/// `text` as one line for a table cell or a line-oriented record:
/// `\`, newlines, tabs and other control characters escaped (`\\`,
/// `\n`, `\t`, `\u{1b}`), so each item stays on its row and a terminal
/// never receives control sequences from user-supplied text.
pub(crate) fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Left-aligned columns, the last one unpadded; one row per item (a cell
/// holding a control character is made [`one_line`]; others are printed
/// as they are, so a command line quoted by [`shell_join`] stays
/// pasteable rather than having its backslashes doubled).
pub(crate) fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| {
            r.iter()
                .map(|c| {
                    if c.chars().any(char::is_control) {
                        one_line(c)
                    } else {
                        c.clone()
                    }
                })
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let last = cells.len() - 1;
        let mut s = String::new();
        for (i, c) in cells.into_iter().enumerate() {
            if i == last {
                s.push_str(&c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

/// `berth ps` table.
pub(crate) fn processes_table(rows: &[TrackedProcess]) -> String {
    if rows.is_empty() {
        return "no tracked processes (`berth ps` lists processes registered by clients; services: `berth svc ls`, sessions: `berth sessions`, projects: `berth projects`)\n".into();
    }
    table(
        &[
            "PID",
            "STATE",
            "UPTIME",
            "PARENT",
            "ORIGINATOR",
            "KIND",
            "COMMAND",
        ],
        rows.iter()
            .map(|p| {
                vec![
                    p.pid.to_string(),
                    state_name(p.state).into(),
                    duration(p.uptime_seconds),
                    if p.parent_alive { "alive" } else { "gone" }.into(),
                    p.originator.clone(),
                    p.kind.clone(),
                    p.command.clone(),
                ]
            })
            .collect(),
    )
}

/// `berth ps --json`.
pub(crate) fn processes_json(rows: &[TrackedProcess]) -> String {
    let v: Vec<_> = rows
        .iter()
        .map(|p| {
            json!({
                "pid": p.pid, "created_at": p.created_at, "kind": p.kind, "command": p.command,
                "cwd": p.cwd, "originator": p.originator, "containment": p.containment,
                "registered_at": p.registered_at, "uptime_seconds": p.uptime_seconds,
                "parent_alive": p.parent_alive, "state": state_name(p.state),
                "last_validated_at": p.last_validated_at,
            })
        })
        .collect();
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

/// `berth zombies` table.
pub(crate) fn zombies_table(z: &[ZombieReport], killing: bool) -> String {
    if z.is_empty() {
        return "no orphaned processes\n".into();
    }
    let mut out = table(
        &["PID", "KILLED", "REASON", "COMMAND"],
        z.iter()
            .map(|r| {
                vec![
                    r.pid.to_string(),
                    if r.killed { "yes" } else { "no" }.into(),
                    r.reason.clone(),
                    r.command.clone(),
                ]
            })
            .collect(),
    );
    if !killing {
        out.push_str("(dry run: use --kill to end them)\n");
    }
    out
}

/// `berth zombies --json`.
pub(crate) fn zombies_json(z: &[ZombieReport]) -> String {
    let v: Vec<_> = z
        .iter()
        .map(
            |r| json!({"pid": r.pid, "command": r.command, "reason": r.reason, "killed": r.killed}),
        )
        .collect();
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

/// `berth status`.
pub(crate) fn status_text(s: &StatusResponse) -> String {
    format!(
        "version:           {}\nuptime:            {}\ntracked processes: {}\nconnections:       {}\n\
         socket:            {}\ndatabase:          {}\nscope:             {}\nscope cwd:         {}\n\
         emergency reserve: {}\n",
        s.version,
        duration(s.uptime_seconds as f64),
        s.tracked_process_count,
        s.active_connections,
        s.socket_path,
        s.db_path,
        s.scope,
        s.scope_cwd,
        s.emergency_reserve
    )
}

/// `berth status --json`.
pub(crate) fn status_json(s: &StatusResponse) -> String {
    serde_json::to_string_pretty(&json!({
        "version": s.version, "uptime_seconds": s.uptime_seconds,
        "tracked_process_count": s.tracked_process_count, "active_connections": s.active_connections,
        "socket_path": s.socket_path, "db_path": s.db_path, "scope": s.scope,
        "scope_hash": s.scope_hash, "scope_cwd": s.scope_cwd, "emergency_reserve": s.emergency_reserve,
    }))
    .unwrap_or_default()
        + "\n"
}

/// Joins argv into one shell command line a user can paste into bash or
/// zsh: plain words as they are, others in single quotes, and a word
/// holding a newline or another control character in ANSI-C quotes
/// (`$'a\nb'`), so the line never spans rows or carries raw controls.
pub(crate) fn shell_join(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
            {
                a.clone()
            } else if a.chars().any(char::is_control) {
                let mut q = String::from("$'");
                for c in a.chars() {
                    match c {
                        '\\' => q.push_str("\\\\"),
                        '\'' => q.push_str("\\'"),
                        '\n' => q.push_str("\\n"),
                        '\t' => q.push_str("\\t"),
                        '\r' => q.push_str("\\r"),
                        c if c.is_control() => q.push_str(&format!("\\u{:04x}", c as u32)),
                        c => q.push(c),
                    }
                }
                q.push('\'');
                q
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_join_quotes_what_the_shell_would_split() {
        assert_eq!(
            shell_join(&["echo".into(), "a b".into(), "it's".into()]),
            "echo 'a b' 'it'\\''s'"
        );
        assert_eq!(
            shell_join(&["sh".into(), "-c".into(), "echo 'a'\nexit 1".into()]),
            "sh -c $'echo \\'a\\'\\nexit 1'"
        );
        // What bash reads back is the argv itself.
        let argv: Vec<String> = vec![
            "printf".into(),
            "%s|".into(),
            "a b".into(),
            "it's".into(),
            "x\ny\t\u{1b}z\\".into(),
        ];
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(shell_join(&argv))
            .output()
            .expect("bash runs");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "a b|it's|x\ny\t\u{1b}z\\|"
        );
        // A quoted command line is printed in a table as it is: pasteable.
        let t = table(&["COMMAND"], vec![vec![shell_join(&["it's".into()])]]);
        assert_eq!(t, "COMMAND\n'it'\\''s'\n");
        assert_eq!(duration(3725.0), "1h02m");
    }
}
