//! The restart policy, as pure functions: what to do when a service's
//! process exits by itself. Same semantics as pm2 and supervisord: a run
//! shorter than `min_uptime` is unstable; consecutive unstable exits back off
//! exponentially up to a cap and, past `max_restarts`, give up; a stable run
//! resets the streak.

use super::config::{ServiceSpec, DEFAULT_UNSTABLE_DELAY, MAX_BACKOFF};
use std::time::Duration;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// `exit(code)`.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
    /// It ended while not our child (adopted, or while the daemon was
    /// down), so its status could not be collected.
    Unknown,
}

impl Exit {
    /// The `last_exit_code` convention: the code, or minus the signal
    /// number (as Python's `returncode`), or 0 when unknown.
    pub fn code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => -s,
            Exit::Unknown => 0,
        }
    }

    /// True for `exit(0)`.
    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }

    /// Reverses [`code`](Self::code) for a value read back from storage.
    pub fn from_code(code: i32) -> Self {
        if code < 0 {
            Exit::Signal(-code)
        } else {
            Exit::Code(code)
        }
    }

    /// "exit code 3", "signal 9 (SIGKILL)", "an unknown status".
    pub fn describe(self) -> String {
        match self {
            Exit::Code(c) => format!("exit code {c}"),
            Exit::Signal(s) => match signal_name(s) {
                Some(n) => format!("signal {s} ({n})"),
                None => format!("signal {s}"),
            },
            Exit::Unknown => "an unknown status (it was not berth's child)".into(),
        }
    }
}

/// Conventional name of a common signal.
pub fn signal_name(sig: i32) -> Option<&'static str> {
    Some(match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        _ => return None,
    })
}

/// What the supervisor does after an exit it did not ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start again after `delay`.
    Restart {
        /// How long to wait first.
        delay: Duration,
        /// Whether this exit was unstable (counts towards `max_restarts`).
        unstable: bool,
    },
    /// Give up: a crash loop exhausted `max_restarts`.
    CrashLoop,
    /// Autorestart is off: leave it down.
    Leave,
}

/// Delay before the `n`-th consecutive unstable restart (`n` >= 1):
/// `restart_delay` (or 100 ms if that is 0) doubled `n - 1` times, capped at
/// 15 s or at `restart_delay` if that is longer.
pub fn backoff(spec: &ServiceSpec, n: u32) -> Duration {
    let base = match spec.restart_delay() {
        Duration::ZERO => DEFAULT_UNSTABLE_DELAY,
        d => d,
    };
    let cap = MAX_BACKOFF.max(base);
    let factor = 1u32 << n.saturating_sub(1).min(20);
    base.checked_mul(factor).unwrap_or(cap).min(cap)
}

/// Decides what follows an exit after `uptime`, given `unstable_so_far`
/// consecutive unstable restarts already made. Returns the decision and the
/// new streak length.
pub fn decide(spec: &ServiceSpec, uptime: Duration, unstable_so_far: u32) -> (Decision, u32) {
    if !spec.autorestart {
        return (Decision::Leave, unstable_so_far);
    }
    if uptime >= spec.min_uptime() {
        let d = Decision::Restart {
            delay: spec.restart_delay(),
            unstable: false,
        };
        return (d, 0);
    }
    if spec.max_restarts != 0 && unstable_so_far >= spec.max_restarts {
        return (Decision::CrashLoop, unstable_so_far);
    }
    let n = unstable_so_far + 1;
    let d = Decision::Restart {
        delay: backoff(spec, n),
        unstable: true,
    };
    (d, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(delay: u32, max: u32) -> ServiceSpec {
        ServiceSpec {
            name: "x".into(),
            cmd: vec!["true".into()],
            autorestart: true,
            restart_delay_ms: delay,
            max_restarts: max,
            min_uptime_ms: 1000,
            ..Default::default()
        }
    }

    #[test]
    fn backoff_doubles_then_caps() {
        let s = spec(100, 0);
        let steps: Vec<u64> = (1..=10)
            .map(|n| backoff(&s, n).as_millis() as u64)
            .collect();
        assert_eq!(
            steps,
            [100, 200, 400, 800, 1600, 3200, 6400, 12800, 15000, 15000]
        );
        assert_eq!(backoff(&spec(0, 0), 1), DEFAULT_UNSTABLE_DELAY);
        assert_eq!(backoff(&spec(60_000, 0), 5), Duration::from_secs(60));
        assert_eq!(backoff(&s, u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn crash_loop_gives_up_after_exactly_max_restarts() {
        let s = spec(10, 3);
        let fast = Duration::from_millis(5);
        let mut streak = 0;
        let mut restarts = 0;
        loop {
            let (d, n) = decide(&s, fast, streak);
            streak = n;
            match d {
                Decision::Restart { unstable: true, .. } => restarts += 1,
                Decision::CrashLoop => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(restarts, 3);
    }

    #[test]
    fn a_stable_run_resets_the_streak() {
        let s = spec(10, 2);
        let (_, n) = decide(&s, Duration::ZERO, 1);
        assert_eq!(n, 2);
        let (d, n) = decide(&s, Duration::from_secs(2), n);
        assert_eq!(
            d,
            Decision::Restart {
                delay: Duration::from_millis(10),
                unstable: false
            }
        );
        assert_eq!(n, 0);
        assert_eq!(decide(&s, Duration::ZERO, 2).0, Decision::CrashLoop);
        let mut off = s.clone();
        off.autorestart = false;
        assert_eq!(decide(&off, Duration::ZERO, 0).0, Decision::Leave);
        assert!(matches!(
            decide(&spec(10, 0), Duration::ZERO, 1000).0,
            Decision::Restart { .. }
        ));
    }

    #[test]
    fn exit_codes_round_trip() {
        assert_eq!(Exit::from_code(Exit::Signal(9).code()), Exit::Signal(9));
        assert_eq!(Exit::from_code(Exit::Code(3).code()), Exit::Code(3));
        assert_eq!(Exit::Signal(9).describe(), "signal 9 (SIGKILL)");
    }
}
