//! Test harness: a real `berth daemon` process in a private XDG sandbox.
#![allow(dead_code)]

pub(crate) mod docker;
pub(crate) mod jwt;
pub(crate) mod workspace;

use berth_client::Client;
pub(crate) use nix::sys::signal::Signal;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// A daemon under test and the sandbox it lives in.
pub(crate) struct Daemon {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
    pub socket: PathBuf,
    pub compat: PathBuf,
    /// The project API (gRPC) socket.
    pub project_socket: PathBuf,
}

impl Daemon {
    pub(crate) fn start() -> Self {
        Self::start_with(&[])
    }

    pub(crate) fn start_with(extra: &[&str]) -> Self {
        let mut d = Self::unstarted(extra);
        d.spawn(extra);
        d
    }

    /// The sandbox, with no daemon running yet.
    pub(crate) fn unstarted(extra: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-t")
            .tempdir_in("/tmp")
            .unwrap();
        let scope = extra
            .iter()
            .position(|a| *a == "--scope")
            .map(|i| extra[i + 1]);
        let name = match scope {
            Some(s) => format!("daemon-{s}.sock"),
            None => "daemon.sock".to_string(),
        };
        let project_name = match scope {
            Some(s) => format!("project-{s}.sock"),
            None => "project.sock".to_string(),
        };
        Daemon {
            project_socket: dir.path().join("run/berth").join(project_name),
            socket: dir.path().join("run/berth").join(&name),
            compat: dir.path().join("run/running-process").join(&name),
            dir,
            child: None,
        }
    }

    pub(crate) fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    pub(crate) fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Environment that points berth and running-process clients here.
    pub(crate) fn env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("XDG_RUNTIME_DIR", self.runtime_dir()),
            ("XDG_STATE_HOME", self.state_dir()),
        ]
    }

    pub(crate) fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env_remove("BERTH_SOCKET").env_remove("BERTH_SCOPE");
        for (k, v) in self.env() {
            c.env(k, v);
        }
        c
    }

    /// (Re)starts the daemon process and waits for its socket.
    pub(crate) fn spawn(&mut self, extra: &[&str]) {
        self.spawn_with_env(extra, &[]);
    }

    /// As [`spawn`](Self::spawn), with extra variables in the daemon's
    /// environment.
    pub(crate) fn spawn_with_env(&mut self, extra: &[&str], env: &[(&str, &str)]) {
        let log = std::fs::File::create(self.dir.path().join("daemon.log")).unwrap();
        let child = self
            .command(BERTH)
            .args(["daemon", "--dead-retention-secs", "1"])
            .args(extra)
            .envs(env.iter().copied())
            // Relative paths a client sends resolve here, not in the tree.
            .current_dir(self.dir.path())
            .env("BERTH_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        assert!(
            wait_for(Duration::from_secs(10), || Client::connect(&self.socket)
                .is_ok()),
            "daemon did not start: {}",
            self.log()
        );
        // The project and guest APIs bind just after the process API
        // answers (each bind tightens run/berth to 0700 again): a test that
        // uses them right away, or opens that directory, must not race them.
        // Not fatal: a daemon whose guest socket is taken logs and goes on.
        let guest = self.socket.with_file_name(
            self.socket
                .file_name()
                .unwrap()
                .to_string_lossy()
                .replacen("daemon", "guest", 1),
        );
        wait_for(Duration::from_secs(5), || {
            self.project_socket.exists() && guest.exists()
        });
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    pub(crate) fn client(&self) -> Client {
        Client::connect(&self.socket).unwrap()
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGKILL, no cleanup: what a crash looks like.
    pub(crate) fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Waits for the daemon process to exit by itself.
    pub(crate) fn wait_exit(&mut self, within: Duration) -> bool {
        let Some(c) = self.child.as_mut() else {
            return true;
        };
        let ok = wait_for(within, || c.try_wait().unwrap().is_some());
        if ok {
            self.child = None;
        }
        ok
    }

    /// Runs the CLI against this daemon.
    pub(crate) fn berth(&self, args: &[&str]) -> Output {
        self.command(BERTH).args(args).output().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill(c.id(), Signal::SIGTERM);
            if !wait_for(Duration::from_secs(5), || c.try_wait().unwrap().is_some()) {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

pub(crate) fn wait_for(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A `sleep` child that dies with the test.
pub(crate) struct Sleeper(pub Child);

impl Sleeper {
    pub(crate) fn new(secs: u32) -> Self {
        Sleeper(Command::new("sleep").arg(secs.to_string()).spawn().unwrap())
    }
    pub(crate) fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
                .unwrap_or(false)
        })
        .unwrap_or(false)
}

/// Sends `sig` to `pid` (a child of the test, so the pid is still ours);
/// a process already gone is fine.
pub(crate) fn kill(pid: u32, sig: Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
}

pub(crate) fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}
