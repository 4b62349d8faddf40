//! Process facts read from `/proc`: identity (pid + start time), state,
//! parentage, command line, and whole-table snapshots for tree queries.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The fields of `/proc/<pid>/stat` berth uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    /// Process id.
    pub pid: u32,
    /// Executable name as the kernel reports it (at most 15 bytes).
    pub comm: String,
    /// One-letter state (`R`, `S`, `D`, `Z`, `T`, ...).
    pub state: char,
    /// Parent process id.
    pub ppid: u32,
    /// Process group id.
    pub pgrp: i32,
    /// Session id.
    pub session: i32,
    /// Start time in clock ticks since boot; with the pid, a unique identity.
    pub start_ticks: u64,
}

impl ProcStat {
    /// True for a process that has exited but not been reaped.
    pub fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses the text of `/proc/<pid>/stat`. The command name may contain
/// spaces and parentheses, so fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> io::Result<ProcStat> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed /proc stat");
    let open = text.find('(').ok_or_else(bad)?;
    let close = text.rfind(')').ok_or_else(bad)?;
    let pid = text[..open].trim().parse().map_err(|_| bad())?;
    let comm = text[open + 1..close].to_string();
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // rest[0] is field 3 (state); field N is rest[N - 3].
    let field = |n: usize| rest.get(n - 3).copied().ok_or_else(bad);
    Ok(ProcStat {
        pid,
        comm,
        state: field(3)?.chars().next().ok_or_else(bad)?,
        ppid: field(4)?.parse().map_err(|_| bad())?,
        pgrp: field(5)?.parse().map_err(|_| bad())?,
        session: field(6)?.parse().map_err(|_| bad())?,
        start_ticks: field(22)?.parse().map_err(|_| bad())?,
    })
}

/// Reads `/proc/<pid>/stat`; `NotFound` once the process is gone.
pub fn read_stat(pid: u32) -> io::Result<ProcStat> {
    if pid == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "pid 0 is not a process",
        ));
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&text)
}

/// Kernel clock ticks per second (`_SC_CLK_TCK`).
pub fn clock_ticks() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(
        || match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
            Ok(Some(t)) if t > 0 => t as u64,
            _ => 100,
        },
    )
}

/// Boot time as seconds since the Unix epoch (`btime` of `/proc/stat`).
pub fn boot_time() -> f64 {
    static BOOT: OnceLock<f64> = OnceLock::new();
    *BOOT.get_or_init(|| {
        std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("btime "))
                    .and_then(|v| v.trim().parse::<f64>().ok())
            })
            .unwrap_or(0.0)
    })
}

/// Converts a start time in ticks to seconds since the Unix epoch.
pub fn ticks_to_epoch(start_ticks: u64) -> f64 {
    boot_time() + start_ticks as f64 / clock_ticks() as f64
}

/// Seconds since the Unix epoch, now.
pub fn now_epoch() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A process as the kernel identifies it over time: a pid alone can be
/// reused, a pid plus its start time cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProcessIdentity {
    /// Process id.
    pub pid: u32,
    /// Start time in clock ticks since boot.
    pub start_ticks: u64,
}

/// What became of a process identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// The same process is running (or stopped).
    Alive,
    /// The same process has exited but is not yet reaped.
    Zombie,
    /// No process has this pid.
    Gone,
    /// The pid now belongs to a different process.
    Reused,
}

impl ProcessIdentity {
    /// The identity of the process that holds `pid` now.
    pub fn of(pid: u32) -> io::Result<Self> {
        let st = read_stat(pid)?;
        Ok(Self {
            pid,
            start_ticks: st.start_ticks,
        })
    }

    /// Start time as seconds since the Unix epoch.
    pub fn started_at(&self) -> f64 {
        ticks_to_epoch(self.start_ticks)
    }

    /// Whether this exact process still exists.
    pub fn liveness(&self) -> Liveness {
        match read_stat(self.pid) {
            Ok(st) if st.start_ticks != self.start_ticks => Liveness::Reused,
            Ok(st) if st.is_zombie() => Liveness::Zombie,
            Ok(_) => Liveness::Alive,
            Err(_) => Liveness::Gone,
        }
    }

    /// True while this exact process runs (zombies count as ended).
    pub fn is_running(&self) -> bool {
        self.liveness() == Liveness::Alive
    }
}

/// The command line of `pid`, arguments joined by spaces; falls back to
/// `[comm]` for kernel threads and processes whose cmdline is unreadable.
pub fn command_line(pid: u32) -> String {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(raw) if !raw.is_empty() => raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect::<Vec<_>>()
            .join(" "),
        _ => read_stat(pid)
            .map(|s| format!("[{}]", s.comm))
            .unwrap_or_default(),
    }
}

/// The working directory of `pid`, when permitted.
pub fn cwd(pid: u32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/cwd")).ok()
}

/// Every pid currently in `/proc`.
pub fn all_pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// A snapshot of every process and its children, for tree queries.
#[derive(Debug, Default)]
pub struct ProcessTable {
    stats: HashMap<u32, ProcStat>,
    children: HashMap<u32, Vec<u32>>,
}

impl ProcessTable {
    /// Reads all of `/proc` once.
    pub fn snapshot() -> Self {
        let mut table = Self::default();
        for pid in all_pids() {
            if let Ok(st) = read_stat(pid) {
                table.children.entry(st.ppid).or_default().push(pid);
                table.stats.insert(pid, st);
            }
        }
        for kids in table.children.values_mut() {
            kids.sort_unstable();
        }
        table
    }

    /// The stat of `pid` in this snapshot.
    pub fn get(&self, pid: u32) -> Option<&ProcStat> {
        self.stats.get(&pid)
    }

    /// Every process whose session id is `sid`, leader included.
    pub fn session_members(&self, sid: i32) -> Vec<ProcessIdentity> {
        let mut out: Vec<ProcessIdentity> = self
            .stats
            .values()
            .filter(|s| s.session == sid && !s.is_zombie())
            .map(|s| ProcessIdentity {
                pid: s.pid,
                start_ticks: s.start_ticks,
            })
            .collect();
        out.sort_by_key(|p| p.pid);
        out
    }

    /// Every process whose process group id is `pgid`, leader included.
    pub fn group_members(&self, pgid: i32) -> Vec<ProcessIdentity> {
        let mut out: Vec<ProcessIdentity> = self
            .stats
            .values()
            .filter(|s| s.pgrp == pgid && !s.is_zombie())
            .map(|s| ProcessIdentity {
                pid: s.pid,
                start_ticks: s.start_ticks,
            })
            .collect();
        out.sort_by_key(|p| p.pid);
        out
    }

    /// Direct children of `pid`.
    pub fn children(&self, pid: u32) -> &[u32] {
        self.children.get(&pid).map(Vec::as_slice).unwrap_or(&[])
    }

    /// All descendants of `pid` (not `pid` itself), deepest first, so that
    /// signalling in this order never lets a parent respawn a child it lost.
    pub fn descendants_deepest_first(&self, pid: u32) -> Vec<ProcessIdentity> {
        let mut levels: Vec<(usize, u32)> = Vec::new();
        let mut stack = vec![(0usize, pid)];
        while let Some((depth, p)) = stack.pop() {
            for &c in self.children(p) {
                if c != pid && !levels.iter().any(|(_, x)| *x == c) {
                    levels.push((depth + 1, c));
                    stack.push((depth + 1, c));
                }
            }
        }
        levels.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        levels
            .into_iter()
            .filter_map(|(_, p)| {
                self.get(p).map(|s| ProcessIdentity {
                    pid: p,
                    start_ticks: s.start_ticks,
                })
            })
            .collect()
    }

    /// Renders `pid` and its descendants as an indented tree, one process a
    /// line: pid, state and command line.
    pub fn render_tree(&self, pid: u32) -> Option<String> {
        let st = self.get(pid)?;
        let mut out = format!("{} [{}] {}\n", pid, st.state, command_line(pid));
        self.render_children(pid, "", &mut out);
        Some(out)
    }

    /// Renders `pid` and its descendants in the running-process reference
    /// daemon's `GET_PROCESS_TREE` format, which its tools print: the root as
    /// `NAME (pid=PID) ARGS`, each descendant as `NAME (pid=PID)` under
    /// `├── ` / `└── ` connectors (`│   ` / four spaces of indent), lines
    /// joined by `\n` with no trailing newline; `Process PID not found` when
    /// no process has the pid. NAME is the kernel's `comm`; children are in
    /// pid order.
    pub fn render_tree_reference(&self, pid: u32) -> String {
        let Some(st) = self.get(pid) else {
            return format!("Process {pid} not found");
        };
        let args = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|raw| {
                raw.split(|b| *b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let mut lines = vec![format!("{} (pid={pid}) {args}", st.comm)];
        self.reference_children(pid, "", &mut lines);
        lines.join("\n")
    }

    fn reference_children(&self, pid: u32, prefix: &str, lines: &mut Vec<String>) {
        let kids = self.children(pid);
        for (i, &c) in kids.iter().enumerate() {
            let last = i + 1 == kids.len();
            let name = self.get(c).map(|s| s.comm.as_str()).unwrap_or("?");
            lines.push(format!(
                "{prefix}{}{name} (pid={c})",
                if last { "└── " } else { "├── " }
            ));
            let next = format!("{prefix}{}", if last { "    " } else { "│   " });
            self.reference_children(c, &next, lines);
        }
    }

    fn render_children(&self, pid: u32, prefix: &str, out: &mut String) {
        let kids = self.children(pid);
        for (i, &c) in kids.iter().enumerate() {
            let last = i + 1 == kids.len();
            let state = self.get(c).map(|s| s.state).unwrap_or('?');
            out.push_str(&format!(
                "{prefix}{}{} [{}] {}\n",
                if last { "└─ " } else { "├─ " },
                c,
                state,
                command_line(c)
            ));
            let next = format!("{prefix}{}", if last { "   " } else { "│  " });
            self.render_children(c, &next, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_and_parens_in_comm() {
        let line = "4242 (we (ird) name) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1 1 1 1";
        let st = parse_stat(line).unwrap();
        assert_eq!(st.pid, 4242);
        assert_eq!(st.comm, "we (ird) name");
        assert_eq!(st.state, 'S');
        assert_eq!(st.ppid, 1);
        assert_eq!(st.start_ticks, 987654);
    }

    #[test]
    fn own_identity_is_alive_and_recent() {
        let me = ProcessIdentity::of(std::process::id()).unwrap();
        assert_eq!(me.liveness(), Liveness::Alive);
        let age = now_epoch() - me.started_at();
        assert!((-5.0..3600.0).contains(&age), "started {age}s ago");
        let other = ProcessIdentity {
            start_ticks: me.start_ticks + 1,
            ..me
        };
        assert_eq!(other.liveness(), Liveness::Reused);
    }

    #[test]
    fn tree_lists_a_grandchild_deepest_first() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & wait"])
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut found = Vec::new();
        for _ in 0..100 {
            found = ProcessTable::snapshot().descendants_deepest_first(pid);
            if !found.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(found.len(), 1, "the sleep grandchild");
        let text = ProcessTable::snapshot().render_tree(pid).unwrap();
        assert!(text.contains("sleep 30"), "{text}");
        assert!(text.contains("└─ "), "{text}");
        let text = ProcessTable::snapshot().render_tree_reference(pid);
        let grandchild = found[0].pid;
        assert_eq!(
            text,
            format!("sh (pid={pid}) sh -c sleep 30 & wait\n└── sleep (pid={grandchild})"),
        );
        assert_eq!(
            ProcessTable::snapshot().render_tree_reference(u32::MAX - 1),
            format!("Process {} not found", u32::MAX - 1)
        );
        for id in &found {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(id.pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        child.kill().ok();
        child.wait().ok();
    }
}
