//! Terminal fidelity through the real `berth attach`, with tmux as the
//! user's terminal (issue 18): detach leaves the terminal's modes as they
//! were; re-attaching to a program on the alternate screen rebuilds the
//! normal screen beneath it; a detached program's DA1 is answered at once.
//!
//! Skipped (with a message) when tmux is missing.

mod common;

use berth_wire::daemon::*;
use common::*;
use std::time::{Duration, Instant};

fn have_tmux() -> bool {
    if std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .is_err()
    {
        eprintln!("skipped: tmux is not installed");
        return false;
    }
    true
}

/// A private tmux server (the user's terminal) in the daemon's sandbox.
struct Term<'a> {
    d: &'a Daemon,
    sock: String,
}

impl<'a> Term<'a> {
    fn new(d: &'a Daemon, name: &str) -> Self {
        Term {
            d,
            sock: format!("{}/{name}.sock", d.dir.path().display()),
        }
    }

    fn tmux(&self, args: &[&str]) -> String {
        let o = std::process::Command::new("tmux")
            .arg("-S")
            .arg(&self.sock)
            .arg("-f")
            .arg("/dev/null")
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Starts a shell-like pane of `cols`x`rows` that runs `script`.
    fn start(&self, cols: u16, rows: u16, script: &str) {
        let env = format!(
            "XDG_RUNTIME_DIR={} XDG_STATE_HOME={} BERTH={}",
            self.d.runtime_dir().display(),
            self.d.state_dir().display(),
            BERTH
        );
        self.tmux(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            &cols.to_string(),
            "-y",
            &rows.to_string(),
            &format!("env {env} sh -c '{script}'"),
        ]);
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "t"])
    }

    fn flags(&self) -> String {
        self.tmux(&["display", "-p", "-t", "t", FLAGS])
            .trim_end()
            .to_string()
    }

    fn wait_screen(&self, what: &str, f: impl Fn(&str) -> bool) {
        assert!(
            wait_for(Duration::from_secs(10), || f(&self.screen())),
            "{what}; the terminal shows:\n{}",
            self.screen()
        );
    }
}

impl Drop for Term<'_> {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
    }
}

/// Every mode tmux lets us read back from the pane.
const FLAGS: &str = "alt=#{alternate_on} cursor=#{cursor_flag} ckm=#{keypad_cursor_flag} kpam=#{keypad_flag} mouse=#{mouse_any_flag}/#{mouse_standard_flag}/#{mouse_button_flag}/#{mouse_all_flag}/#{mouse_sgr_flag}/#{mouse_utf8_flag} region=#{scroll_region_upper}-#{scroll_region_lower} wrap=#{wrap_flag} origin=#{origin_flag} insert=#{insert_flag} title=#{pane_title}";

fn spawn(d: &Daemon, name: &str, script: &str) -> String {
    d.client()
        .spawn_pty(SpawnPtySessionRequest {
            argv: vec!["sh".into(), "-c".into(), script.into()],
            rows: 20,
            cols: 60,
            name: name.into(),
            ..Default::default()
        })
        .unwrap()
        .session_id
}

#[test]
fn detach_leaves_the_terminal_in_the_modes_it_had() {
    if !have_tmux() {
        return;
    }
    let d = Daemon::start();
    // A program that turns on everything a full-screen program can.
    let id = spawn(
        &d,
        "modes",
        r#"printf '\033]2;inner title\007\033[?1049h\033[?1000h\033[?1002h\033[?1006h\033[?1004h\033[?1h\033=\033[?25l\033[?2004h\033[5 q\033[3;15r\033[?6h\033[?7l\033[1;31;44mMODES ON'; sleep 3600"#,
    );
    let t = Term::new(&d, "outer");
    t.start(
        60,
        20,
        r#"printf "\033]2;user title\007"; echo before; $BERTH attach modes; echo AFTER-DETACH; sleep 3600"#,
    );
    t.wait_screen("the session shows", |s| s.contains("MODES ON"));
    let on = t.flags();
    assert!(
        on.contains("alt=1") && on.contains("mouse=1/") && on.contains("kpam=1"),
        "the session's modes reach the terminal: {on}"
    );
    t.tmux(&["send-keys", "-t", "t", "C-\\"]);
    t.wait_screen("the shell continues after the detach", |s| {
        s.contains("AFTER-DETACH")
    });
    assert_eq!(
        t.flags(),
        "alt=0 cursor=1 ckm=0 kpam=0 mouse=0/0/0/0/0/0 region=0-19 wrap=1 origin=0 insert=0 title=user title",
        "every mode is back as attach found it"
    );
    // The shell's text after the detach is plain (SGR reset).
    let cap = t.tmux(&["capture-pane", "-e", "-p", "-t", "t"]);
    let line = cap.lines().find(|l| l.contains("AFTER-DETACH")).unwrap();
    assert!(
        !line.contains("\x1b[31m") && !line.contains("\x1b[44m"),
        "{line:?}"
    );
    d.client().terminate_pty(&id, 100).unwrap();
}

#[test]
fn reattach_to_the_alternate_screen_keeps_the_normal_screen_beneath() {
    if !have_tmux() {
        return;
    }
    let d = Daemon::start();
    // Prints M, switches to the alternate screen, waits for a line, leaves.
    let id = spawn(
        &d,
        "alt",
        r#"printf 'M marks the normal screen\r\nsecond line\r\n'; printf '\033[?1049h\033[H\033[2JALT SCREEN'; read x; printf '\033[?1049lBACK'; sleep 3600"#,
    );
    {
        let t = Term::new(&d, "first");
        t.start(60, 20, "$BERTH attach alt; sleep 3600");
        t.wait_screen("the alternate screen shows", |s| s.contains("ALT SCREEN"));
        t.tmux(&["send-keys", "-t", "t", "C-\\"]);
        assert!(
            wait_for(Duration::from_secs(5), || !d
                .client()
                .list_pty("")
                .unwrap()
                .iter()
                .any(|s| s.session_id == id && s.attached)),
            "detached"
        );
    }
    let t = Term::new(&d, "second");
    t.start(60, 20, "$BERTH attach alt; sleep 3600");
    t.wait_screen("the alternate screen is restored", |s| {
        s.contains("ALT SCREEN")
    });
    t.tmux(&["send-keys", "-t", "t", "Enter"]);
    t.wait_screen("the program left the alternate screen", |s| {
        s.contains("BACK")
    });
    let s = t.screen();
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines[0], "M marks the normal screen", "screen:\n{s}");
    assert_eq!(lines[1], "second line", "screen:\n{s}");
    // The cursor 1049 saved comes back too: BACK is written where the
    // program was when it switched.
    assert!(lines[2].starts_with("BACK"), "screen:\n{s}");
    d.client().terminate_pty(&id, 100).unwrap();
}

#[test]
fn a_detached_programs_da1_is_answered_within_milliseconds() {
    if std::process::Command::new("python3")
        .arg("-V")
        .output()
        .is_err()
    {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let d = Daemon::start();
    let report = d.dir.path().join("da1.txt");
    let script = format!(
        r#"
import os, select, time, tty
tty.setraw(0)
t0 = time.time()
os.write(1, b"\x1b[c")
buf = b""
while not buf.endswith(b"c") and time.time() < t0 + 10:
    r, _, _ = select.select([0], [], [], 0.01)
    if r:
        buf += os.read(0, 64)
open({path:?}, "w").write("%r %.1f" % (buf, (time.time() - t0) * 1000))
time.sleep(3600)
"#,
        path = report.display().to_string()
    );
    let id = d
        .client()
        .spawn_pty(SpawnPtySessionRequest {
            argv: vec!["python3".into(), "-c".into(), script],
            ..Default::default()
        })
        .unwrap()
        .session_id;
    let start = Instant::now();
    assert!(
        wait_for(Duration::from_secs(15), || std::fs::read_to_string(&report)
            .is_ok_and(|s| !s.is_empty())),
        "the program got no answer (waited {:?})",
        start.elapsed()
    );
    let got = std::fs::read_to_string(&report).unwrap();
    eprintln!("DA1 answer and latency in ms: {got}");
    assert!(got.starts_with("b'\\x1b[?"), "{got}");
    d.client().terminate_pty(&id, 100).unwrap();
}
