//! The guest API (seed 002) end to end: a real `berth daemon` as the
//! guest, reached through `berth host-api`'s per-VM socket.

mod common;

use common::{wait_for, BERTH};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A guest daemon plus a host proxy for it, in one sandbox.
struct Vm {
    dir: tempfile::TempDir,
    daemon: Option<Child>,
    proxy: Option<Child>,
}

impl Vm {
    fn start() -> Self {
        Self::start_with(&[])
    }

    fn start_with(daemon_env: &[(&str, &str)]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-g")
            .tempdir_in("/tmp")
            .unwrap();
        for d in ["home", "data/applications", "outside"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        let mut vm = Vm {
            dir,
            daemon: None,
            proxy: None,
        };
        let log = std::fs::File::create(vm.dir.path().join("daemon.log")).unwrap();
        let mut c = vm.command(BERTH);
        c.arg("daemon")
            .env("BERTH_GUEST_VSOCK", "off")
            .env("BERTH_LOG", "debug");
        for (k, v) in daemon_env {
            c.env(k, v);
        }
        vm.daemon = Some(
            c.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        let guest = vm.guest_socket();
        assert!(
            wait_for(Duration::from_secs(10), || UnixStream::connect(&guest)
                .is_ok()),
            "guest.sock did not appear: {}",
            std::fs::read_to_string(vm.dir.path().join("daemon.log")).unwrap_or_default()
        );
        let connect = format!("unix://{}", guest.display());
        vm.proxy = Some(vm.spawn_proxy(&["--vm", "dev", "--connect", &connect]));
        let host = vm.host_socket("dev");
        assert!(wait_for(Duration::from_secs(10), || UnixStream::connect(
            &host
        )
        .is_ok()));
        vm
    }

    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let p = self.dir.path();
        let mut c = Command::new(program);
        c.env_remove("BERTH_SOCKET")
            .env_remove("BERTH_SCOPE")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env("XDG_RUNTIME_DIR", p.join("run"))
            .env("XDG_STATE_HOME", p.join("state"))
            .env("XDG_DATA_HOME", p.join("data"))
            .env("XDG_DATA_DIRS", p.join("no-such-dir"))
            .env("BERTH_GUEST_FS_ROOTS", p.join("home"));
        c
    }

    fn spawn_proxy(&self, args: &[&str]) -> Child {
        self.command(BERTH)
            .arg("host-api")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn guest_socket(&self) -> PathBuf {
        self.dir.path().join("run/berth/guest.sock")
    }

    fn host_socket(&self, vm: &str) -> PathBuf {
        self.dir
            .path()
            .join(format!("run/berth/api/{vm}.berth.sock"))
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// One request through the host proxy.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Response {
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        request(&self.host_socket("dev"), method, path, &body)
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        for c in [self.proxy.take(), self.daemon.take()]
            .into_iter()
            .flatten()
        {
            stop(c);
        }
    }
}

fn stop(mut c: Child) {
    common::kill(c.id(), common::Signal::SIGTERM);
    if !wait_for(Duration::from_secs(5), || c.try_wait().unwrap().is_some()) {
        let _ = c.kill();
        let _ = c.wait();
    }
}

struct Response {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Response {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// Sends one HTTP/1.1 request and reads until the server closes (the
/// seed's connection lifecycle).
fn request(sock: &Path, method: &str, path: &str, body: &[u8]) -> Response {
    let mut s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // A refusal may close before the whole body is taken.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .expect("the server closes after answering");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Response {
        status,
        head,
        body: raw[split + 4..].to_vec(),
    }
}

fn have(prog: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {prog}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn the_seeds_examples_run_verbatim_against_the_host_socket() {
    let vm = Vm::start();
    let sock = vm.host_socket("dev");
    let sock = sock.to_str().unwrap();
    if have("curl") {
        let out = Command::new("curl")
            .args(["--unix-socket", sock, "http://localhost/health"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), r#"{"status":"ok"}"#);
        let out = Command::new("curl")
            .args([
                "--unix-socket",
                sock,
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
            ])
            .args([
                "-d",
                r#"{"command":"uname","args":["-a"]}"#,
                "http://localhost/api/v1/exec",
            ])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["exit_code"], 0);
        assert!(v["stdout"].as_str().unwrap().starts_with("Linux "), "{v}");
    } else {
        panic!("curl is needed for the seed's examples (apt install curl)");
    }
    if have("python3") {
        let script = r#"
import socket, os, json, sys

sock_path = os.path.expanduser(sys.argv[1])

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sock_path)

request = "GET /health HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n"
s.sendall(request.encode())

response = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    response += chunk

print(response.decode())
s.close()
"#;
        let out = Command::new("timeout")
            .args(["20", "python3", "-c", script, sock])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(
            text.to_ascii_lowercase().contains("content-length: 15\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\n\r\n{\"status\":\"ok\"}"), "{text}");
    } else {
        panic!("python3 is needed for the seed's Python example");
    }
}

#[test]
fn exec_runs_without_a_shell_and_takes_stdin_env_and_cwd() {
    let vm = Vm::start();
    let home = vm.home();
    let r = vm.call(
        "POST",
        "/api/v1/exec",
        Some(&json!({"command": "echo", "args": ["$HOME", "a b"]})),
    );
    assert_eq!(r.status, 200);
    assert!(r.head.to_ascii_lowercase().contains("connection: close"));
    let v = r.json();
    assert_eq!(v["stdout"], "$HOME a b\n", "no shell expanded anything");
    let v = vm
        .call(
            "POST",
            "/api/v1/exec",
            Some(
                &json!({"command": "echo \"$GREETING\" $1; pwd; cat; exit 3", "args": ["x"],
                "shell": true, "env": {"GREETING": "hi"}, "cwd": home, "stdin": "from stdin"}),
            ),
        )
        .json();
    assert_eq!(v["exit_code"], 3);
    assert_eq!(v["stdout"], format!("hi x\n{}\nfrom stdin", home.display()));
    assert_eq!(v["timed_out"], false);
    let r = vm.call(
        "POST",
        "/api/v1/exec",
        Some(&json!({"command": "no-such-program-berth"})),
    );
    assert_eq!(r.status, 404);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("no-such-program-berth"));
}

#[test]
fn an_exec_timeout_kills_the_whole_tree_and_output_is_cut_at_the_limit() {
    let vm = Vm::start();
    let pidfile = vm.dir.path().join("bg.pid");
    let started = std::time::Instant::now();
    let v = vm
        .call(
            "POST",
            "/api/v1/exec",
            Some(&json!({"command": "sh", "args": ["-c",
                format!("sleep 60 & echo $! > {}; sleep 60", pidfile.display())],
                "timeout_ms": 500})),
        )
        .json();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(v["timed_out"], true, "{v}");
    assert_eq!(v["signal"], 9);
    let bg: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(5), || !common::is_alive(bg)),
        "the background grandchild {bg} survived the timeout"
    );

    let v = vm
        .call(
            "POST",
            "/api/v1/exec",
            Some(&json!({"command": "head", "args": ["-c", "3000000", "/dev/zero"]})),
        )
        .json();
    assert_eq!(v["truncated"], true);
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["stdout"].as_str().unwrap().len(), 1 << 20);
}

#[test]
fn fs_lists_inside_the_roots_and_refuses_escapes() {
    let vm = Vm::start();
    let home = vm.home();
    std::fs::write(home.join("a.txt"), "hello").unwrap();
    std::fs::create_dir(home.join("sub")).unwrap();
    std::os::unix::fs::symlink(vm.dir.path().join("outside"), home.join("out")).unwrap();
    let r = vm.call("GET", &format!("/api/v1/fs?path={}", home.display()), None);
    assert_eq!(r.status, 200);
    let v = r.json();
    let entries = v["entries"].as_array().unwrap();
    let names: Vec<_> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a.txt", "out", "sub"]);
    assert_eq!(entries[0]["type"], "file");
    assert_eq!(entries[0]["size"], 5);
    assert!(entries[0]["mtime"].as_i64().unwrap() > 0);
    assert_eq!(entries[0]["mode"].as_str().unwrap().len(), 4);
    assert_eq!(entries[1]["type"], "symlink");
    assert_eq!(
        entries[1]["target"],
        vm.dir.path().join("outside").display().to_string()
    );
    assert_eq!(entries[2]["type"], "dir");

    for escape in [
        format!("{}/..", home.display()),
        format!("{}/sub/../../outside", home.display()),
        format!("{}/out", home.display()),
        "/etc".to_string(),
    ] {
        let r = vm.call("GET", &format!("/api/v1/fs?path={escape}"), None);
        assert_eq!(r.status, 403, "{escape} was not refused");
        assert!(r.json()["error"]
            .as_str()
            .unwrap()
            .contains("outside the allowed roots"));
    }
    let r = vm.call(
        "GET",
        &format!("/api/v1/fs?path={}/nope", home.display()),
        None,
    );
    assert_eq!(r.status, 404);
    let r = vm.call("GET", "/api/v1/fs", None);
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("path"));
}

#[test]
fn the_clipboard_is_kept_by_the_daemon_and_says_so_and_large_bodies_pass_byte_exact() {
    let vm = Vm::start();
    let v = vm.call("GET", "/api/v1/clipboard", None).json();
    assert_eq!(v["text"], "");
    assert_eq!(v["source"], "daemon");
    // 8 MiB of varied text through the proxy both ways.
    let big: String = (0..(8 << 20))
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    let r = vm.call("POST", "/api/v1/clipboard", Some(&json!({"text": big})));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = vm.call("GET", "/api/v1/clipboard", None).json();
    assert_eq!(v["text"].as_str().unwrap().len(), big.len());
    assert!(v["text"] == big.as_str(), "the text came back different");
    assert_eq!(v["mime_type"], "text/plain;charset=utf-8");
    assert!(v["note"].as_str().unwrap().contains("daemon"));
}

#[test]
fn shared_files_are_listed_downloaded_byte_exact_and_cleared() {
    let vm = Vm::start();
    let big = vm.dir.path().join("big.bin");
    let data: Vec<u8> = (0..(20u32 << 20))
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    std::fs::write(&big, &data).unwrap();
    let small = vm.home().join("note.txt");
    std::fs::write(&small, "note").unwrap();
    let out = vm
        .command(BERTH)
        .arg("share")
        .arg(&big)
        .arg(&small)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = vm.call("GET", "/api/v1/files", None).json();
    let files = v["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["name"], "big.bin");
    assert_eq!(files[0]["size"], data.len());
    assert_eq!(
        files[0]["path"],
        big.canonicalize().unwrap().display().to_string()
    );
    assert!(files[0]["queued_at"].as_f64().unwrap() > 1.6e9);

    let r = vm.call("GET", "/api/v1/files/big.bin", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), data.len());
    assert!(r.body == data, "the download differs from the file");
    assert_eq!(vm.call("GET", "/api/v1/files/nope", None).status, 404);

    let bad = vm
        .command(BERTH)
        .args(["share", "/no/such/file"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("/no/such/file"));

    let v = vm.call("DELETE", "/api/v1/files", None).json();
    assert_eq!(v["cleared"], 2);
    let v = vm.call("GET", "/api/v1/files", None).json();
    assert_eq!(v["files"], json!([]));
}

#[test]
fn open_and_window_actions_need_a_display() {
    let vm = Vm::start();
    let home = vm.home();
    let r = vm.call("POST", "/api/v1/open", Some(&json!({"path": home})));
    assert_eq!(r.status, 409);
    assert!(r.json()["error"].as_str().unwrap().contains("DISPLAY"));
    let r = vm.call(
        "POST",
        "/api/v1/open",
        Some(&json!({"path": home.join("nope")})),
    );
    assert_eq!(r.status, 404);
    let r = vm.call("GET", "/api/v1/apps/frontmost", None);
    assert_eq!(r.status, 409);
}

#[test]
fn apps_are_desktop_entries_matched_to_processes_and_quit_terminates_them() {
    let vm = Vm::start();
    // A real program with a desktop entry: a copy of sleep under its own
    // name, so it is matched by its executable.
    let prog = vm.dir.path().join("berth-test-app");
    std::fs::copy(
        String::from_utf8(
            Command::new("sh")
                .args(["-c", "command -v sleep"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
        .trim(),
        &prog,
    )
    .unwrap();
    std::fs::write(
        vm.dir
            .path()
            .join("data/applications/org.berth.TestApp.desktop"),
        format!(
            "[Desktop Entry]\nType=Application\nName=Test App\nExec={} 300 %U\n",
            prog.display()
        ),
    )
    .unwrap();
    let mut app = Command::new(&prog).arg("300").spawn().unwrap();
    let v = vm.call("GET", "/api/v1/apps", None).json();
    let apps = v["apps"].as_array().unwrap();
    let ours = apps
        .iter()
        .find(|a| a["bundle_id"] == "org.berth.TestApp")
        .unwrap_or_else(|| panic!("not listed: {v}"));
    assert_eq!(ours["name"], "Test App");
    assert!(ours["pids"].as_array().unwrap().contains(&json!(app.id())));

    let r = vm.call(
        "POST",
        "/api/v1/apps/launch",
        Some(&json!({"bundle_id": "org.berth.TestApp"})),
    );
    assert_eq!(r.status, 409, "launch needs a display");
    let r = vm.call(
        "POST",
        "/api/v1/apps/activate",
        Some(&json!({"bundle_id": "org.berth.TestApp"})),
    );
    assert_eq!(r.status, 409);
    let r = vm.call(
        "POST",
        "/api/v1/apps/quit",
        Some(&json!({"bundle_id": "no.such.App"})),
    );
    assert_eq!(r.status, 404);

    let r = vm.call(
        "POST",
        "/api/v1/apps/quit",
        Some(&json!({"bundle_id": "org.berth.TestApp"})),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["method"], "SIGTERM");
    let st = app.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(15));
    let r = vm.call(
        "POST",
        "/api/v1/apps/quit",
        Some(&json!({"bundle_id": "org.berth.TestApp"})),
    );
    assert_eq!(r.status, 409, "no longer running");
}

#[test]
fn malformed_requests_get_json_errors_and_disturb_no_one() {
    let vm = Vm::start();
    let sock = vm.host_socket("dev");
    let r = request(&sock, "POST", "/api/v1/exec", b"{not json");
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("JSON"));
    let r = vm.call("POST", "/api/v1/exec", Some(&json!({"args": ["x"]})));
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("command"));
    let r = vm.call("DELETE", "/health", None);
    assert_eq!(r.status, 405);
    assert!(r.json()["error"].as_str().unwrap().contains("DELETE"));
    let r = vm.call("GET", "/api/v1/nothing", None);
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].is_string());
    let huge = vec![b'x'; 17 << 20];
    let r = request(&sock, "POST", "/api/v1/clipboard", &huge);
    assert_eq!(r.status, 413);
    assert!(r.json()["error"].as_str().unwrap().contains("limit"));
    // A client that connects and says nothing holds up no one.
    let _idle = UnixStream::connect(&sock).unwrap();
    assert_eq!(
        vm.call("GET", "/health", None).json(),
        json!({"status": "ok"})
    );
}

#[test]
fn the_proxy_serves_several_vms_answers_503_replaces_stale_sockets_and_cleans_up() {
    let mut vm = Vm::start();
    let api = vm.dir.path().join("run/berth/api");
    // A stale socket of a dead proxy for "old".
    drop(std::os::unix::net::UnixListener::bind(api.join("old.berth.sock")).unwrap());
    let guest = format!("unix://{}", vm.guest_socket().display());
    let gone = format!("unix://{}", vm.dir.path().join("nobody.sock").display());
    let mut second = vm.spawn_proxy(&[
        "--vm",
        "old",
        "--connect",
        &guest,
        "--vm",
        "down",
        "--connect",
        &gone,
    ]);
    let (old, down) = (vm.host_socket("old"), vm.host_socket("down"));
    assert!(wait_for(Duration::from_secs(10), || UnixStream::connect(
        &down
    )
    .is_ok()));
    assert_eq!(
        request(&old, "GET", "/health", b"").json(),
        json!({"status": "ok"})
    );
    let r = request(&down, "GET", "/health", b"");
    assert_eq!(r.status, 503);
    assert!(r.json()["error"].as_str().unwrap().contains("\"down\""));
    assert_eq!(
        vm.call("GET", "/health", None).status,
        200,
        "the first proxy still serves"
    );

    use std::os::unix::fs::PermissionsExt;
    for dir in [
        api.clone(),
        vm.guest_socket().parent().unwrap().to_path_buf(),
    ] {
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{} is not private", dir.display());
    }
    let out = vm
        .command(BERTH)
        .args(["host-api", "--vm", "a", "--vm", "b", "--connect", &guest])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("one --connect per --vm"));

    // A live proxy's socket is not taken over.
    let out = vm
        .command(BERTH)
        .args(["host-api", "--vm", "old", "--connect", &guest])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("old.berth.sock"));

    common::kill(second.id(), common::Signal::SIGTERM);
    assert!(second.wait().unwrap().success());
    assert!(!old.exists() && !down.exists(), "sockets removed on exit");
    stop(vm.proxy.take().unwrap());
    assert!(!vm.host_socket("dev").exists());
}

#[test]
#[ignore = "needs vsock loopback (the vsock_loopback module, or a VM): see README"]
fn the_proxy_reaches_the_guest_over_vsock_where_the_kernel_has_it() {
    // Loopback vsock (CID 1) stands in for the host-to-guest link.
    let port = 20000 + std::process::id() % 20000;
    let port_s = port.to_string();
    let vm = Vm::start_with(&[
        ("BERTH_GUEST_VSOCK", &port_s),
        ("BERTH_GUEST_ALLOW_CIDS", "1"),
    ]);
    let log = std::fs::read_to_string(vm.dir.path().join("daemon.log")).unwrap_or_default();
    assert!(
        !log.contains("guest API not served on vsock"),
        "this kernel cannot bind vsock ({})",
        log.lines().find(|l| l.contains("vsock")).unwrap_or("")
    );
    let mut p = vm.spawn_proxy(&["--vm", "vs", "--connect", &format!("vsock://1:{port}")]);
    let sock = vm.host_socket("vs");
    assert!(wait_for(Duration::from_secs(10), || UnixStream::connect(
        &sock
    )
    .is_ok()));
    let r = request(&sock, "GET", "/health", b"");
    assert_ne!(
        r.status,
        503,
        "vsock loopback is not available: {}",
        String::from_utf8_lossy(&r.body)
    );
    {
        assert_eq!(r.json(), json!({"status": "ok"}));
        let v = request(
            &sock,
            "POST",
            "/api/v1/exec",
            br#"{"command":"echo","args":["over vsock"]}"#,
        )
        .json();
        assert_eq!(v["stdout"], "over vsock\n");
    }
    common::kill(p.id(), common::Signal::SIGTERM);
    let _ = p.wait();
}

/// An Xvfb server on a free display, killed on drop.
struct Xvfb(Child, String);

impl Xvfb {
    fn start() -> Option<Self> {
        if !have("Xvfb") {
            return None;
        }
        let mut c = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-nolisten",
                "tcp",
                "-screen",
                "0",
                "640x480x24",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut out = c.stdout.take().unwrap();
        let mut num = String::new();
        let mut b = [0u8; 1];
        while out.read(&mut b).ok()? == 1 && b[0] != b'\n' {
            num.push(b[0] as char);
        }
        Some(Xvfb(c, format!(":{}", num.trim())))
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "needs Xvfb and xeyes (apt install xvfb x11-apps): see README"]
fn apps_launch_activate_report_frontmost_and_quit_a_real_x_application_under_xvfb() {
    assert!(have("xeyes"), "xeyes (x11-apps) is not installed");
    let x = Xvfb::start().expect("Xvfb is not installed");
    let vm = Vm::start_with(&[("DISPLAY", &x.1)]);
    std::fs::write(
        vm.dir
            .path()
            .join("data/applications/org.berth.XEyes.desktop"),
        "[Desktop Entry]\nType=Application\nName=Eyes\nExec=xeyes -geometry 120x120 %F\n",
    )
    .unwrap();
    let id = json!({"bundle_id": "org.berth.XEyes"});
    let r = vm.call("POST", "/api/v1/apps/launch", Some(&id));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let pid = r.json()["pid"].as_u64().unwrap() as u32;

    // Activation succeeds once its window is mapped.
    let mut last = String::new();
    // A liveness bound, not a timing claim: the window maps when the
    // loaded machine gets to it.
    let activated = wait_for(Duration::from_secs(60), || {
        let r = vm.call("POST", "/api/v1/apps/activate", Some(&id));
        last = String::from_utf8_lossy(&r.body).into_owned();
        r.status == 200
    });
    assert!(
        activated,
        "never activated: {last}; xeyes {pid} alive: {}; daemon log: {}",
        common::is_alive(pid),
        std::fs::read_to_string(vm.dir.path().join("daemon.log")).unwrap_or_default()
    );
    let v = vm.call("GET", "/api/v1/apps", None).json();
    let app = v["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["bundle_id"] == "org.berth.XEyes")
        .unwrap_or_else(|| panic!("not listed: {v}"))
        .clone();
    assert!(app["pids"].as_array().unwrap().contains(&json!(pid)));
    let r = vm.call("GET", "/api/v1/apps/frontmost", None);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["bundle_id"], "org.berth.XEyes");

    // The clipboard is the display's CLIPBOARD selection there.
    let text: String = "héllo X — ".repeat(10_000);
    let r = vm.call("POST", "/api/v1/clipboard", Some(&json!({"text": text})));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["source"], "x11");
    let v = vm.call("GET", "/api/v1/clipboard", None).json();
    assert_eq!(v["source"], "x11", "{v}");
    assert!(
        v["text"] == text.as_str(),
        "the selection came back different"
    );
    if have("xclip") {
        let out = Command::new("xclip")
            .args(["-o", "-selection", "clipboard"])
            .env("DISPLAY", &x.1)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), text);
        // And another client's selection is what GET reads.
        let mut c = Command::new("xclip")
            .args(["-i", "-selection", "clipboard"])
            .env("DISPLAY", &x.1)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(b"from xclip").unwrap();
        c.wait().unwrap();
        // xclip takes the selection from a child it forks: poll for it.
        let mut last = Value::Null;
        let read = wait_for(Duration::from_secs(5), || {
            last = vm.call("GET", "/api/v1/clipboard", None).json()["text"].clone();
            last == "from xclip"
        });
        assert!(
            read,
            "GET never read xclip's selection (last: {:.80})",
            last.to_string()
        );
    }

    if !have("xdg-open") && !have("gio") {
        let r = vm.call("POST", "/api/v1/open", Some(&json!({"path": vm.home()})));
        assert_eq!(r.status, 409);
        assert!(r.json()["error"].as_str().unwrap().contains("xdg-open"));
    }

    let r = vm.call("POST", "/api/v1/apps/quit", Some(&id));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["method"], "window close", "{v}");
    assert!(wait_for(Duration::from_secs(5), || !common::is_alive(pid)));
}
