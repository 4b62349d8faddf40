//! Terminal queries of a PTY session's program: answered by the screen
//! model while no terminal is attached (fish waits 10 s for DA1 otherwise),
//! and exactly once — by the attached terminal — while one is.

use berth_engine::sessions::{
    AttachOptions, Attachment, ClientInfo, Next, PtySpawn, Replay, SessionConfig, Sessions,
    StreamId,
};
use berth_engine::store::Store;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn engine(dir: &std::path::Path) -> Arc<Sessions> {
    let store = Arc::new(Store::open(&dir.join("berth.db"), 0).unwrap());
    Arc::new(Sessions::open(store, SessionConfig::default()).unwrap())
}

/// A program that waits for one byte of input, then writes `query` and
/// reports (hex) everything it receives in the next `listen` seconds.
fn asker(query: &str, listen: f64) -> Vec<String> {
    let hex: String = query.bytes().map(|b| format!("{b:02x}")).collect();
    let script = format!(
        r#"
import os, select, sys, time, tty
tty.setraw(0)
os.write(1, b"ready\r\n")
os.read(0, 1)
os.write(1, b"abc" + bytes.fromhex("{hex}"))
t0 = time.time()
buf = b""
first = None
end = t0 + {listen}
while time.time() < end:
    r, _, _ = select.select([0], [], [], 0.05)
    if r:
        buf += os.read(0, 100)
        if first is None:
            first = time.time() - t0
os.write(1, b"\r\nGOT:" + buf.hex().encode() + b":AFTER:" + str(first).encode() + b":END\r\n")
"#
    );
    vec!["python3".into(), "-c".into(), script]
}

async fn collect_until(a: &mut Attachment, needle: &str) -> String {
    let mut got = a.initial.clone();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !String::from_utf8_lossy(&got).contains(needle) && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(200), a.next(1 << 20)).await {
            Ok(Next::Data { bytes, .. }) => got.extend_from_slice(&bytes),
            Ok(Next::Eof) | Ok(Next::Evicted(_)) => break,
            Err(_) => {}
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

fn opts(is_tty: bool, read_only: bool) -> AttachOptions {
    AttachOptions {
        stream: StreamId::Output,
        steal: false,
        read_only,
        replay: Replay::Raw,
        client: ClientInfo {
            is_tty,
            term: "xterm-256color".into(),
            meta: Vec::new(),
        },
        label: "test".into(),
    }
}

fn got(text: &str) -> (Vec<u8>, String) {
    let g = text.split("GOT:").nth(1).expect("the program reported");
    let hex = g.split(':').next().unwrap();
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let after = g
        .split(":AFTER:")
        .nth(1)
        .unwrap()
        .split(':')
        .next()
        .unwrap();
    (bytes, after.to_string())
}

fn have_python() -> bool {
    std::process::Command::new("python3")
        .arg("-V")
        .output()
        .is_ok()
}

async fn ask_detached(query: &str) -> (Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let s = e
        .spawn_pty(&PtySpawn {
            argv: asker(query, 1.0),
            ..Default::default()
        })
        .unwrap();
    // A read-only viewer watches; it is no terminal that answers.
    let mut a = e.attach(s.id(), opts(false, true)).unwrap();
    collect_until(&mut a, "ready").await;
    s.write_input(b"g").await.unwrap();
    let text = collect_until(&mut a, ":END").await;
    got(&text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_programs_queries_are_answered_by_the_model() {
    if !have_python() {
        eprintln!("skipping: python3 is not installed");
        return;
    }
    let (da1, after) = ask_detached("\x1b[c").await;
    assert!(
        da1.starts_with(b"\x1b[?") && da1.ends_with(b"c"),
        "DA1 answer {:?}",
        String::from_utf8_lossy(&da1)
    );
    eprintln!("DA1 answered after {after} s");
    let (da2, _) = ask_detached("\x1b[>c").await;
    assert!(da2.starts_with(b"\x1b[>") && da2.ends_with(b"c"));
    let (dsr, _) = ask_detached("\x1b[5n").await;
    assert_eq!(dsr, b"\x1b[0n");
    // The cursor is after "ready\r\n" and "abc": row 2, column 4.
    let (cpr, _) = ask_detached("\x1b[6n").await;
    assert_eq!(String::from_utf8_lossy(&cpr), "\x1b[2;4R");
    let (ver, _) = ask_detached("\x1b[>q").await;
    assert!(String::from_utf8_lossy(&ver).starts_with("\x1bP>|berth "));
    // Two queries in one write get two answers, in order.
    let (two, _) = ask_detached("\x1b[6n\x1b[5n").await;
    assert_eq!(String::from_utf8_lossy(&two), "\x1b[2;4R\x1b[0n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attached_terminal_answers_and_the_model_stays_quiet() {
    if !have_python() {
        eprintln!("skipping: python3 is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let s = e
        .spawn_pty(&PtySpawn {
            argv: asker("\x1b[c", 1.0),
            ..Default::default()
        })
        .unwrap();
    let mut a = e.attach(s.id(), opts(true, false)).unwrap();
    collect_until(&mut a, "ready").await;
    s.write_input(b"g").await.unwrap();
    // The attached "terminal" sees the query and answers it itself.
    collect_until(&mut a, "abc\x1b[c").await;
    s.write_input(b"\x1b[?1;2c").await.unwrap();
    let text = collect_until(&mut a, ":END").await;
    let (answers, _) = got(&text);
    assert_eq!(
        String::from_utf8_lossy(&answers),
        "\x1b[?1;2c",
        "exactly the terminal's one answer reaches the program"
    );
    assert_eq!(s.screen().unwrap().answered(), 0);
}
