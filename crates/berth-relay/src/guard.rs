//! Token guessing is rate-limited per source address: a relay token is
//! both the credential and the namespace, so an address that keeps
//! presenting unknown tokens is locked out for the rest of a window
//! (`docs/security.md`, "Remote relay"). Pure state, no I/O: the server
//! asks it before an upgrade and tells it of each refused token.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Unknown tokens one address may present within [`WINDOW`] before it is
/// locked out until the window ends.
pub(crate) const MAX_FAILURES: u32 = 10;
/// The counting window (and so the longest lockout).
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at most; past it, expired windows are dropped and, if
/// the table is still full, the oldest window is forgotten, so a flood of
/// source addresses cannot grow the relay's memory without bound.
const MAX_TRACKED: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Failed-token counts per source address.
#[derive(Debug, Default)]
pub(crate) struct TokenGuard {
    windows: HashMap<IpAddr, Window>,
}

impl TokenGuard {
    /// `Some(wait)` when `ip` used up its failures in the current window:
    /// every attempt, with any token, is refused until `wait` has passed.
    pub(crate) fn locked(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let w = self.windows.get(&ip)?;
        let end = w.started + WINDOW;
        (w.failures >= MAX_FAILURES && now < end).then(|| end - now)
    }

    /// Records one unknown token presented by `ip`.
    pub(crate) fn failed(&mut self, ip: IpAddr, now: Instant) {
        if self.windows.len() >= MAX_TRACKED && !self.windows.contains_key(&ip) {
            self.windows.retain(|_, w| now < w.started + WINDOW);
            if self.windows.len() >= MAX_TRACKED {
                if let Some(oldest) = self
                    .windows
                    .iter()
                    .min_by_key(|(_, w)| w.started)
                    .map(|(k, _)| *k)
                {
                    self.windows.remove(&oldest);
                }
            }
        }
        let w = self.windows.entry(ip).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now >= w.started + WINDOW {
            *w = Window {
                started: now,
                failures: 0,
            };
        }
        w.failures = w.failures.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_locked_after_its_failures_until_the_window_ends() {
        let mut g = TokenGuard::default();
        let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            g.failed(a, t0);
        }
        assert_eq!(g.locked(a, t0), None);
        g.failed(a, t0);
        assert_eq!(g.locked(a, t0), Some(WINDOW));
        assert_eq!(g.locked(b, t0), None, "other addresses are not affected");
        assert_eq!(g.locked(a, t0 + WINDOW), None, "the lockout ends");
        // A new window counts from zero.
        g.failed(a, t0 + WINDOW);
        assert_eq!(g.locked(a, t0 + WINDOW), None);
    }

    #[test]
    fn the_table_stays_bounded() {
        let mut g = TokenGuard::default();
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED as u32 + 10) {
            g.failed(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert!(g.windows.len() <= MAX_TRACKED);
    }
}
