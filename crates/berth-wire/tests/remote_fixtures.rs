//! The cross-validation fixtures of the remote protocol v3
//! (`fixtures/binary-protocol-v3.fixtures.json`): every entry must decode
//! from its hex to its expected JSON form, and encode from that form back
//! to the same hex; every error entry must be refused with its reason.
//!
//! `BERTH_REGEN_FIXTURES=1 cargo test -p berth-wire --test remote_fixtures`
//! rewrites the file from the cases below (then checks it like any run).

use berth_wire::remote::fixture::{self, from_hex, to_hex};
use berth_wire::remote::*;
use serde_json::{json, Value};

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../fixtures/binary-protocol-v3.fixtures.json"
);

fn s(v: &str) -> String {
    v.to_owned()
}

fn messages() -> Vec<AppMessage> {
    vec![
        AppMessage::Hello(Hello {
            protocol_version: 3,
            role: Role::Mobile,
            token: Some(s("mobile-token")),
            supported_versions: Some(vec![3]),
            machine_id: None,
            machine_name: None,
            client_name: Some(s("berth-remote/0.1")),
        }),
        AppMessage::HelloAck(HelloAck {
            protocol_version: 3,
            connection_id: Some(s("c-42")),
            ping_interval_ms: Some(15_000),
        }),
        AppMessage::CapReq(CapReq {
            grid: true,
            max_cols: Some(120),
            max_rows: Some(50),
        }),
        AppMessage::CapAck(CapAck {
            grid: true,
            max_cols: 120,
            max_rows: 50,
        }),
        AppMessage::SnapshotReq(SnapshotReq {
            session_id: s("s1"),
            last_seq: Some(17),
        }),
        AppMessage::GridFeatures(GridFeatures {
            underline_color: true,
        }),
        AppMessage::MachineList(MachineList {
            machines: vec![Machine {
                id: s("m1"),
                name: s("devbox"),
                online: true,
                sessions: vec![SessionInfo {
                    id: s("s1"),
                    title: s("bash"),
                    cols: 80,
                    rows: 24,
                }],
            }],
        }),
        AppMessage::SessionAttach(SessionAttach {
            machine_id: s("m1"),
            session_id: s("s1"),
        }),
        AppMessage::ConnectionStatus(ConnectionStatus {
            machine_id: s("m1"),
            status: LinkStatus::Disconnected,
        }),
        AppMessage::TerminalData(TerminalData {
            session_id: s("s1"),
            data: s("\u{1b}[32mok\u{1b}[0m\r\n"),
        }),
        AppMessage::ClaudeState(ClaudeState {
            session_id: s("s1"),
            state: AgentActivity::WaitingInput,
            detail: Some(s("Allow edit of main.rs?")),
        }),
        AppMessage::PtyStatus(PtyStatus {
            session_id: s("s1"),
            state: PtyState::Exited,
            exit_code: Some(0),
        }),
        AppMessage::GitResult(GitResult {
            request_id: s("r1"),
            ok: true,
            output: s("On branch main\n"),
        }),
        AppMessage::SessionReplay(SessionReplay {
            session_id: s("s1"),
            data: s("$ echo hi\r\nhi\r\n$ "),
        }),
        AppMessage::GridResizeCapped(GridResizeCapped {
            requested_cols: 400,
            requested_rows: 200,
            cols: 120,
            rows: 50,
        }),
        AppMessage::ProtocolMismatch(ProtocolMismatch {
            supported: vec![3],
            received: 2,
        }),
        AppMessage::Ping(Ping {
            ts: 1_700_000_000_000,
        }),
        AppMessage::Pong(Pong {
            ts: 1_700_000_000_000,
        }),
        AppMessage::Error(ErrorMessage {
            code: s("not_found"),
            message: s("no session s9 on m1"),
        }),
        AppMessage::Input(Input {
            session_id: s("s1"),
            data: s("ls -l\r"),
        }),
    ]
}

fn styled(text: &str, width: u8, fg: Color, bg: Color, attrs: u16) -> Cell {
    Cell {
        text: s(text),
        width,
        fg,
        bg,
        attrs,
        underline_color: Color::Default,
    }
}

fn frames() -> Vec<(String, Frame)> {
    let mut v = vec![
        (
            s("pty_data.text"),
            Frame::PtyData(b"hello \x1b[1mworld\x1b[0m\r\n".to_vec()),
        ),
        (s("pty_data.empty"), Frame::PtyData(Vec::new())),
        (
            s("pty_data.not_utf8"),
            Frame::PtyData(vec![0xe4, 0xb8, 0x1b, 0xff]),
        ),
    ];
    for m in messages() {
        v.push((format!("app_json.{}", m.type_name()), Frame::AppJson(m)));
    }
    v.extend([
        (s("resize.80x24"), Frame::Resize { cols: 80, rows: 24 }),
        (
            s("resize.oversized"),
            Frame::Resize {
                cols: 100_000,
                rows: u32::MAX,
            },
        ),
        (
            s("frame_snapshot.basic"),
            Frame::FrameSnapshot {
                id: s("s1"),
                ansi: b"\x1b[2J\x1b[H$ ls\r\nREADME.md".to_vec(),
            },
        ),
        (
            s("frame_snapshot.empty"),
            Frame::FrameSnapshot {
                id: String::new(),
                ansi: Vec::new(),
            },
        ),
    ]);

    let red = Color::Indexed(1);
    let mut grid = Grid::new(6, 2);
    grid.cursor = Cursor {
        x: 2,
        y: 1,
        visible: false,
    };
    let row0 = [
        styled("$", 1, Color::Default, Color::Default, 0),
        styled(" ", 1, Color::Default, Color::Default, 0),
        styled("中", 2, red, Color::Default, attr::BOLD),
        styled("", 0, red, Color::Default, attr::BOLD),
        styled(
            "é",
            1,
            Color::Rgb(255, 128, 0),
            Color::Indexed(236),
            attr::ITALIC | attr::UNDERLINE,
        ),
        styled("👍", 2, Color::Default, Color::Default, 0),
    ];
    grid.cells[..6].clone_from_slice(&row0);
    grid.cells[6] = styled("e\u{301}", 1, Color::Default, Color::Default, attr::INVERSE);
    v.push((
        s("grid_snapshot.styles_wide_and_combining"),
        Frame::GridSnapshot(GridSnapshot { seq: 41, grid }),
    ));
    // Protocol 3.1: underline styles in attribute bits 8-10, the underline
    // colour as a prefixed style (with and without an underline).
    let ul = |text: &str, style: u8, colour: Color| Cell {
        attrs: attr::with_underline_style(0, style),
        underline_color: colour,
        ..Cell::new(text, 1)
    };
    let mut grid = Grid::new(4, 1);
    grid.cells = vec![
        ul("c", 3, Color::Rgb(255, 0, 0)),
        ul("d", 2, Color::Indexed(9)),
        ul("-", 5, Color::Default),
        ul("n", 0, Color::Indexed(4)),
    ];
    v.push((
        s("grid_snapshot.underline_styles_and_colours"),
        Frame::GridSnapshot(GridSnapshot { seq: 3, grid }),
    ));
    v.push((
        s("grid_snapshot.blank_12x2"),
        Frame::GridSnapshot(GridSnapshot {
            seq: 0,
            grid: Grid::new(12, 2),
        }),
    ));

    let blank = Cell::default();
    v.push((
        s("grid_diff.every_op"),
        Frame::GridDiff(GridDiff {
            seq: 42,
            ops: vec![
                DiffOp::Resize { cols: 8, rows: 3 },
                DiffOp::ScrollUp {
                    top: 0,
                    bottom: 2,
                    n: 1,
                    fill: blank.clone(),
                },
                DiffOp::ScrollDown {
                    top: 1,
                    bottom: 3,
                    n: 1,
                    fill: styled(" ", 1, Color::Default, Color::Indexed(4), 0),
                },
                DiffOp::Fill {
                    x: 0,
                    y: 2,
                    w: 8,
                    h: 1,
                    cell: blank.clone(),
                },
                DiffOp::Cells {
                    x: 6,
                    y: 0,
                    cells: vec![
                        styled("o", 1, Color::Indexed(2), Color::Default, 0),
                        styled("k", 1, Color::Indexed(2), Color::Default, 0),
                        styled("$", 1, Color::Default, Color::Default, 0),
                        styled(" ", 1, Color::Default, Color::Default, 0),
                    ],
                },
                DiffOp::Cursor(Cursor {
                    x: 2,
                    y: 1,
                    visible: true,
                }),
            ],
        }),
    ));
    v.push((
        s("grid_diff.empty"),
        Frame::GridDiff(GridDiff {
            seq: u32::MAX,
            ops: Vec::new(),
        }),
    ));
    for code in (0..=9).chain([200]) {
        let r = Reason::from_code(code);
        v.push((
            format!("protocol_error.{}", r.name().to_ascii_lowercase()),
            Frame::ProtocolError(r),
        ));
    }
    v
}

/// Refused messages, written by hand, with the reason each must get.
fn errors() -> Vec<(&'static str, &'static str, Reason)> {
    vec![
        ("empty_message", "", Reason::Truncated),
        ("reserved_opcode_0x06", "06", Reason::UnknownOpcode),
        ("reserved_opcode_0x7f", "7f00", Reason::UnknownOpcode),
        ("reserved_opcode_0xfe", "fe", Reason::UnknownOpcode),
        ("resize.truncated", "020000005000", Reason::Truncated),
        (
            "resize.trailing_byte",
            "02000000500000001800",
            Reason::Malformed,
        ),
        ("app_json.bad_utf8", "017bff7d", Reason::BadUtf8),
        ("app_json.not_json", "017b", Reason::BadJson),
        // {"type":"teleport"}
        (
            "app_json.unknown_type",
            "017b2274797065223a2274656c65706f7274227d",
            Reason::UnknownMessageType,
        ),
        // {"type":"ping"}
        (
            "app_json.missing_field",
            "017b2274797065223a2270696e67227d",
            Reason::BadJson,
        ),
        // {"type":"ping","ts":1,"x":1}
        (
            "app_json.unknown_field",
            "017b2274797065223a2270696e67222c227473223a312c2278223a317d",
            Reason::BadJson,
        ),
        // {"ts":1}
        ("app_json.no_type", "017b227473223a317d", Reason::BadJson),
        ("frame_snapshot.id_over_cap", "0300000401", Reason::TooLarge),
        (
            "frame_snapshot.ansi_truncated",
            "030000000000000005414243",
            Reason::Truncated,
        ),
        (
            "frame_snapshot.id_not_utf8",
            "0300000001ff00000000",
            Reason::BadUtf8,
        ),
        (
            "grid_snapshot.cols_over_cap",
            "0400000000d00f01000001",
            Reason::TooLarge,
        ),
        (
            "grid_snapshot.zero_rows",
            "04000000000100000001",
            Reason::Malformed,
        ),
        (
            "grid_snapshot.cells_missing",
            "0400000000020100000101000000000002",
            Reason::Truncated,
        ),
        (
            "grid_snapshot.segment_overruns",
            "04000000000201000001010000000000000720",
            Reason::Malformed,
        ),
        (
            "grid_diff.unknown_op",
            "05000000000001 07",
            Reason::Malformed,
        ),
        (
            "grid_diff.cells_over_budget",
            "0500000000010000000001010000e0a712",
            Reason::TooLarge,
        ),
        ("protocol_error.no_reason", "ff", Reason::Truncated),
        (
            "grid_snapshot.default_underline_colour_sent",
            "04000000000101000001010300000000000261",
            Reason::Malformed,
        ),
        ("protocol_error.trailing_byte", "ff0100", Reason::Malformed),
        // {"type":"grid.features","underlineColor":1}: a bool, not a number
        (
            "app_json.grid_features_not_bool",
            "017b2274797065223a22677269642e6665617475726573222c22756e6465726c696e65436f6c6f72223a317d",
            Reason::BadJson,
        ),
    ]
}

fn generate() -> Value {
    let frames: Vec<Value> = frames()
        .into_iter()
        .map(|(name, f)| {
            let bytes = f.encode();
            json!({
                "name": name,
                "opcode": format!("0x{:02x}", bytes[0]),
                "hex": to_hex(&bytes),
                "expected": fixture::to_json(&f),
            })
        })
        .collect();
    let errors: Vec<Value> = errors()
        .into_iter()
        .map(|(name, hex, reason)| {
            json!({
                "name": name,
                "hex": hex.replace(' ', ""),
                "reason": reason.code(),
                "reasonName": reason.name(),
            })
        })
        .collect();
    json!({
        "description": "berth remote protocol v3 cross-validation fixtures: each frame's wire hex and its expected parse (JSON form per docs/remote-protocol-v3.md), and refused messages with their PROTOCOL_ERROR reason.",
        "protocolVersion": PROTOCOL_VERSION,
        "frames": frames,
        "errors": errors,
    })
}

fn load() -> Value {
    if std::env::var_os("BERTH_REGEN_FIXTURES").is_some() {
        let text = serde_json::to_string_pretty(&generate()).unwrap() + "\n";
        std::fs::write(PATH, text).unwrap();
    }
    let text = std::fs::read_to_string(PATH).unwrap_or_else(|e| panic!("{PATH}: {e}"));
    serde_json::from_str(&text).expect("fixtures are JSON")
}

#[test]
fn every_frame_fixture_round_trips_both_ways() {
    let file = load();
    let frames = file["frames"].as_array().expect("frames array");
    assert!(!frames.is_empty());
    for entry in frames {
        let name = entry["name"].as_str().expect("name");
        let bytes = from_hex(entry["hex"].as_str().expect("hex")).expect(name);
        let expected = &entry["expected"];

        let decoded = Frame::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&fixture::to_json(&decoded), expected, "{name}: decode");
        assert_eq!(
            entry["opcode"].as_str(),
            Some(format!("0x{:02x}", bytes[0]).as_str()),
            "{name}: opcode"
        );

        let built = fixture::from_json(expected.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(to_hex(&built.encode()), to_hex(&bytes), "{name}: encode");
    }
}

#[test]
fn every_error_fixture_gets_its_reason() {
    let file = load();
    let errors = file["errors"].as_array().expect("errors array");
    assert!(!errors.is_empty());
    for entry in errors {
        let name = entry["name"].as_str().expect("name");
        let bytes = from_hex(entry["hex"].as_str().expect("hex")).expect(name);
        let err = Frame::decode(&bytes).expect_err(name);
        assert_eq!(
            Some(u64::from(err.reason().code())),
            entry["reason"].as_u64(),
            "{name}: {err}"
        );
        assert_eq!(
            entry["reasonName"].as_str(),
            Some(err.reason().name()),
            "{name}"
        );
    }
}

#[test]
fn fixtures_cover_every_opcode_and_message_type() {
    let file = load();
    let frames = file["frames"].as_array().unwrap();
    for op in [
        "PTY_DATA",
        "APP_JSON",
        "RESIZE",
        "FRAME_SNAPSHOT",
        "GRID_SNAPSHOT",
        "GRID_DIFF",
        "PROTOCOL_ERROR",
    ] {
        assert!(
            frames.iter().any(|f| f["expected"]["opcode"] == op),
            "no fixture for {op}"
        );
    }
    for ty in MESSAGE_TYPES {
        assert!(
            frames
                .iter()
                .any(|f| f["expected"]["message"]["type"] == ty),
            "no fixture for APP_JSON type {ty}"
        );
    }
    for op in [
        "resize",
        "scrollUp",
        "scrollDown",
        "fill",
        "cells",
        "cursor",
    ] {
        assert!(
            frames
                .iter()
                .filter_map(|f| f["expected"]["ops"].as_array())
                .flatten()
                .any(|o| o["op"] == op),
            "no fixture for GRID_DIFF op {op}"
        );
    }
    let errors = file["errors"].as_array().unwrap();
    for reason in 1..=8u64 {
        if reason == 5 {
            continue; // UNSUPPORTED_VERSION is negotiated, never a decode error.
        }
        assert!(
            errors.iter().any(|e| e["reason"] == reason),
            "no error fixture for reason {reason}"
        );
    }
}
