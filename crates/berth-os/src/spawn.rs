//! Spawning processes detached from the daemon: a new session, no
//! controlling terminal, stdio on `/dev/null`, and the environment layering
//! of the running-process protocol.

use nix::sys::signal::{signal, sigprocmask, SigHandler, SigSet, SigmaskHow, Signal};
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// Builds the environment a child sees.
///
/// With `clear` false the child inherits `base` and `overrides` win ties;
/// with `clear` true it sees only `overrides`. When a key repeats in
/// `overrides`, the last entry wins. Order of first appearance is kept.
pub fn layer_env(
    base: impl IntoIterator<Item = (String, String)>,
    overrides: &[(String, String)],
    clear: bool,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = if clear {
        Vec::new()
    } else {
        base.into_iter().collect()
    };
    for (k, v) in overrides {
        match out.iter_mut().find(|(ek, _)| ek == k) {
            Some(slot) => slot.1 = v.clone(),
            None => out.push((k.clone(), v.clone())),
        }
    }
    out
}

/// The `PATH` of a fresh login (the customary `login(1)` default).
pub const LOGIN_DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The environment a fresh login of the daemon's user starts from, as the
/// running-process reference builds its `USER_BASELINE` policy on Unix:
/// `USER`, `LOGNAME`, `HOME`, `PATH` (the login default) and `SHELL` from
/// the passwd entry, plus the session variables `LANG`, `TZ`, `TMPDIR`,
/// `XDG_RUNTIME_DIR` and `LC_*` carried from `current`. Without a passwd
/// entry it is `current` unchanged (as the reference falls back).
pub fn user_baseline_env(
    current: impl IntoIterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    let current: Vec<(String, String)> = current.into_iter().collect();
    let user = match nix::unistd::User::from_uid(nix::unistd::getuid()) {
        Ok(Some(u)) if !u.name.is_empty() => u,
        _ => return current,
    };
    let mut env = vec![
        ("USER".to_string(), user.name.clone()),
        ("LOGNAME".to_string(), user.name.clone()),
        ("HOME".to_string(), user.dir.display().to_string()),
        ("PATH".to_string(), LOGIN_DEFAULT_PATH.to_string()),
    ];
    let shell = user.shell.display().to_string();
    if !shell.is_empty() {
        env.push(("SHELL".to_string(), shell));
    }
    env.extend(current.into_iter().filter(|(k, _)| {
        k == "LANG" || k == "TZ" || k == "TMPDIR" || k == "XDG_RUNTIME_DIR" || k.starts_with("LC_")
    }));
    env
}

/// What to run and how.
#[derive(Debug, Clone, Default)]
pub struct SpawnSpec {
    /// argv; `argv[0]` is looked up on the child's PATH.
    pub argv: Vec<String>,
    /// Working directory; the daemon's when `None`.
    pub cwd: Option<String>,
    /// The complete environment of the child (see [`layer_env`]).
    pub env: Vec<(String, String)>,
}

impl SpawnSpec {
    /// A command string run by `/bin/sh -c`, as the running-process
    /// `SPAWN_DAEMON` request carries it.
    pub fn shell(command: &str) -> Self {
        Self {
            argv: vec!["/bin/sh".into(), "-c".into(), command.into()],
            ..Default::default()
        }
    }

    /// The `Command` for this spec, env already replaced.
    pub fn command(&self) -> io::Result<Command> {
        let (prog, args) = self
            .argv
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "argv is empty"))?;
        let mut cmd = Command::new(prog);
        cmd.args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(cwd) = &self.cwd {
            cmd.current_dir(cwd);
        }
        Ok(cmd)
    }
}

/// Makes `cmd` start in a new session with stdio on `/dev/null`, so it
/// survives its requester and the daemon, and owns no terminal.
pub fn detach(cmd: &mut Command) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    new_session(cmd);
}

/// Makes `cmd` lead a new session and process group (so the whole group
/// can be signalled), with default signal dispositions and mask.
pub fn new_session(cmd: &mut Command) {
    // SAFETY: the closure runs between fork and exec and makes only
    // async-signal-safe calls (setsid, sigprocmask, signal); it touches no
    // Rust state that another thread could have left locked.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()?;
            reset_signals(&[
                Signal::SIGPIPE,
                Signal::SIGINT,
                Signal::SIGTERM,
                Signal::SIGHUP,
            ]);
            Ok(())
        });
    }
}

/// In a forked child before exec: an empty signal mask, and the default
/// disposition for `signals`, whatever the daemon set for itself.
///
/// # Safety
///
/// Call only in the child between fork and exec: `signal` must not race
/// another thread's handler changes, and only the forking thread exists
/// there.
pub(crate) unsafe fn reset_signals(signals: &[Signal]) {
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    for &sig in signals {
        // SAFETY: SIG_DFL installs no handler, so no Rust code can run from
        // it; the caller guarantees no other thread exists.
        let _ = unsafe { signal(sig, SigHandler::SigDfl) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: &str) -> (String, String) {
        (k.into(), v.into())
    }

    #[test]
    fn overrides_layer_and_last_wins() {
        let base = vec![kv("PATH", "/bin"), kv("HOME", "/root")];
        let env = layer_env(
            base.clone(),
            &[kv("A", "1"), kv("PATH", "/x"), kv("A", "2")],
            false,
        );
        assert_eq!(
            env,
            vec![kv("PATH", "/x"), kv("HOME", "/root"), kv("A", "2")]
        );
        let env = layer_env(base, &[kv("A", "1")], true);
        assert_eq!(env, vec![kv("A", "1")]);
    }

    #[test]
    fn user_baseline_has_the_login_identity_and_session_variables_only() {
        let env = user_baseline_env(vec![
            kv("LANG", "C.UTF-8"),
            kv("SECRET_OF_THE_DAEMON", "x"),
            kv("LC_TIME", "C"),
        ]);
        let get = |k: &str| env.iter().find(|(ek, _)| ek == k).map(|(_, v)| v.clone());
        assert!(get("HOME").is_some_and(|h| h.starts_with('/')), "{env:?}");
        assert_eq!(get("PATH").as_deref(), Some(LOGIN_DEFAULT_PATH));
        assert_eq!(get("LANG").as_deref(), Some("C.UTF-8"));
        assert_eq!(get("LC_TIME").as_deref(), Some("C"));
        assert_eq!(get("SECRET_OF_THE_DAEMON"), None);
    }

    #[test]
    fn detached_child_leads_its_own_session() {
        let mut spec = SpawnSpec::shell("sleep 5");
        spec.env = vec![kv("PATH", "/usr/bin:/bin")];
        let mut cmd = spec.command().unwrap();
        detach(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        let st = crate::proc::read_stat(child.id()).unwrap();
        assert_eq!(st.session, child.id() as i32);
        child.kill().ok();
        child.wait().ok();
    }
}
