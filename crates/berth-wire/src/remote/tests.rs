//! Byte-exact layouts, error paths, and property tests for the remote
//! protocol codec and the grid diff.

use super::fixture::{from_hex, to_hex};
use super::*;
use proptest::collection::vec;
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    from_hex(&s.replace(' ', "")).unwrap()
}

fn round_trip(f: &Frame) -> Vec<u8> {
    let bytes = f.encode();
    assert_eq!(Frame::decode(&bytes).as_ref(), Ok(f), "{}", to_hex(&bytes));
    bytes
}

fn row_of(text: &str, cols: u16) -> Vec<Cell> {
    let mut cells: Vec<Cell> = text.chars().map(|c| Cell::new(c.to_string(), 1)).collect();
    cells.resize(usize::from(cols), Cell::default());
    cells
}

fn grid_of(lines: &[&str], cols: u16) -> Grid {
    Grid {
        cols,
        rows: lines.len() as u16,
        cursor: Cursor::default(),
        cells: lines.iter().flat_map(|l| row_of(l, cols)).collect(),
    }
}

fn applied(old: &Grid, ops: &[DiffOp]) -> Grid {
    let mut g = old.clone();
    apply(&mut g, ops).unwrap();
    g
}

// ---------------------------------------------------------------------------
// Byte layouts, checked by hand against docs/remote-protocol-v3.md

#[test]
fn simple_opcodes_have_the_documented_bytes() {
    assert_eq!(round_trip(&Frame::PtyData(b"hi".to_vec())), hex("00 6869"));
    assert_eq!(
        round_trip(&Frame::Resize { cols: 80, rows: 24 }),
        hex("02 00000050 00000018")
    );
    assert_eq!(
        round_trip(&Frame::FrameSnapshot {
            id: "s1".into(),
            ansi: b"\x1b[H".to_vec()
        }),
        hex("03 00000002 7331 00000003 1b5b48")
    );
    assert_eq!(
        round_trip(&Frame::ProtocolError(Reason::UnknownOpcode)),
        hex("ff 01")
    );
    let ping = round_trip(&Frame::AppJson(AppMessage::Ping(Ping { ts: 5 })));
    assert_eq!(ping[0], 0x01);
    assert_eq!(&ping[1..], br#"{"type":"ping","ts":5}"#);

    let mut out = vec![0xAA];
    encode_pty_data_into(b"x", &mut out);
    assert_eq!(out, [0xAA, 0x00, b'x']);
    assert_eq!(split(&hex("00 6869")), Ok((Opcode::PtyData, &b"hi"[..])));
}

#[test]
fn grid_snapshot_has_the_documented_bytes() {
    let bold = |text: &str, width| Cell {
        attrs: attr::BOLD,
        ..Cell::new(text, width)
    };
    let snap = GridSnapshot {
        seq: 7,
        grid: Grid {
            cols: 3,
            rows: 1,
            cursor: Cursor {
                x: 1,
                y: 0,
                visible: true,
            },
            cells: vec![Cell::new("a", 1), bold("中", 2), bold("", 0)],
        },
    };
    let bytes = round_trip(&Frame::GridSnapshot(snap));
    assert_eq!(
        bytes,
        hex(concat!(
            "04 00000007",        // opcode, seq
            "03 01 01 00 01",     // cols 3, rows 1, cursor (1,0) visible
            "02",                 // two styles
            "00 00 0000",         // default/default, no attrs
            "00 00 0001",         // default/default, bold
            "00 02 61",           // style 0, 1 literal cell: 'a'
            "01 04 02 03 e4b8ad", // style 1, 2 literal cells: wide '中' ...
            "00",                 // ... and its continuation
        ))
    );
}

/// Protocol 3.1: a style with an underline colour is prefixed with tag
/// 0x03 (which a 3.0 decoder refuses as an unknown colour tag, as
/// `grid_sizes_and_counts_are_capped` shows for any unknown
/// tag); the underline style sits in attribute bits 8-10 with UNDERLINE
/// set, which a 3.0 decoder carries and shows as a plain underline.
#[test]
fn underline_style_and_colour_have_the_documented_bytes() {
    let curly_red = Cell {
        attrs: attr::with_underline_style(attr::BOLD, 3),
        underline_color: Color::Rgb(255, 0, 0),
        ..Cell::new("c", 1)
    };
    let dashed = Cell {
        attrs: attr::with_underline_style(0, 5),
        ..Cell::new("d", 1)
    };
    assert_eq!(curly_red.attrs, attr::BOLD | attr::UNDERLINE | 0x0300);
    assert_eq!(attr::underline_style(curly_red.attrs), 3);
    assert_eq!(attr::underline_style(attr::UNDERLINE), 1, "a 3.0 underline");
    assert_eq!(attr::underline_style(0x0300), 0, "no UNDERLINE, no style");
    assert_eq!(attr::with_underline_style(curly_red.attrs, 0), attr::BOLD);
    let snap = GridSnapshot {
        seq: 1,
        grid: Grid {
            cols: 2,
            rows: 1,
            cursor: Cursor::default(),
            cells: vec![curly_red, dashed],
        },
    };
    let bytes = round_trip(&Frame::GridSnapshot(snap));
    assert_eq!(
        bytes,
        hex(concat!(
            "04 00000001",
            "02 01 00 00 01",
            "02",                      // two styles
            "03 02 ff0000 00 00 0309", // ul rgb(255,0,0); default/default; bold+ul, style 3
            "00 00 0508",              // default/default; ul, style 5
            "00 02 63",                // style 0: 'c'
            "01 02 64",                // style 1: 'd'
        ))
    );
    // The same cells without an underline colour are a 3.0 frame.
    let plain = Cell::new("x", 1);
    let bytes = round_trip(&Frame::GridSnapshot(GridSnapshot {
        seq: 0,
        grid: Grid {
            cols: 1,
            rows: 1,
            cursor: Cursor::default(),
            cells: vec![plain],
        },
    }));
    assert!(!bytes[10..].contains(&0x03));
}

/// A cell whose underline colour is the default, everything else kept.
fn without_colour(c: &Cell) -> Cell {
    Cell {
        underline_color: Color::Default,
        ..c.clone()
    }
}

/// The frame a 3.0 receiver should get: every underline colour dropped.
fn stripped(f: &Frame) -> Frame {
    let strip = |cells: &[Cell]| cells.iter().map(without_colour).collect::<Vec<_>>();
    match f {
        Frame::GridSnapshot(s) => Frame::GridSnapshot(GridSnapshot {
            seq: s.seq,
            grid: Grid {
                cells: strip(&s.grid.cells),
                ..s.grid.clone()
            },
        }),
        Frame::GridDiff(d) => Frame::GridDiff(GridDiff {
            seq: d.seq,
            ops: d
                .ops
                .iter()
                .map(|op| match op {
                    DiffOp::Cells { x, y, cells } => DiffOp::Cells {
                        x: *x,
                        y: *y,
                        cells: strip(cells),
                    },
                    DiffOp::Fill { x, y, w, h, cell } => DiffOp::Fill {
                        x: *x,
                        y: *y,
                        w: *w,
                        h: *h,
                        cell: without_colour(cell),
                    },
                    DiffOp::ScrollUp {
                        top,
                        bottom,
                        n,
                        fill,
                    } => DiffOp::ScrollUp {
                        top: *top,
                        bottom: *bottom,
                        n: *n,
                        fill: without_colour(fill),
                    },
                    DiffOp::ScrollDown {
                        top,
                        bottom,
                        n,
                        fill,
                    } => DiffOp::ScrollDown {
                        top: *top,
                        bottom: *bottom,
                        n: *n,
                        fill: without_colour(fill),
                    },
                    other => other.clone(),
                })
                .collect(),
        }),
        other => other.clone(),
    }
}

/// A receiver that did not send `grid.features` gets the 3.0 bytes: no
/// `0x03` style (so a 3.0 decoder accepts the frame), the underline style
/// bits kept, and the styles that differed only by underline colour
/// merged into one.
#[test]
fn encoding_for_a_3_0_receiver_leaves_the_underline_colour_out() {
    let curly = |colour| Cell {
        attrs: attr::with_underline_style(0, 3),
        underline_color: colour,
        ..Cell::new("e", 1)
    };
    let snap = Frame::GridSnapshot(GridSnapshot {
        seq: 2,
        grid: Grid {
            cols: 3,
            rows: 1,
            cursor: Cursor::default(),
            cells: vec![
                curly(Color::Rgb(255, 0, 0)),
                curly(Color::Indexed(9)),
                curly(Color::Default),
            ],
        },
    });
    assert!(snap.differs_for(GridEncoding::V3_0));
    assert!(!snap.differs_for(GridEncoding::FULL));
    let old = snap.encode_for(GridEncoding::V3_0);
    assert_eq!(
        old,
        hex(concat!(
            "04 00000002",
            "03 01 00 00 01",
            "01",         // one style: the colours are gone ...
            "00 00 0308", // ... the curly underline (bits 8-10) is not
            "00 06 656565",
        ))
    );
    assert_eq!(old, stripped(&snap).encode());
    assert_eq!(snap.encode_for(GridEncoding::FULL), snap.encode());
    assert_ne!(snap.encode(), old);

    let diff = Frame::GridDiff(GridDiff {
        seq: 3,
        ops: vec![
            DiffOp::Fill {
                x: 0,
                y: 0,
                w: 3,
                h: 1,
                cell: curly(Color::Indexed(1)),
            },
            DiffOp::ScrollUp {
                top: 0,
                bottom: 1,
                n: 1,
                fill: curly(Color::Indexed(2)),
            },
        ],
    });
    let old = diff.encode_for(GridEncoding::V3_0);
    assert_eq!(old, stripped(&diff).encode());
    let Ok(Frame::GridDiff(d)) = Frame::decode(&old) else {
        panic!("a 3.0 diff decodes");
    };
    assert!(d.ops.iter().all(|op| !op.has_underline_color()));
    // Frames without an underline colour are the same bytes either way.
    let plain = stripped(&diff);
    assert!(!plain.differs_for(GridEncoding::V3_0));
    assert_eq!(plain.encode_for(GridEncoding::V3_0), plain.encode());
}

#[test]
fn grid_diff_has_the_documented_bytes() {
    let d = GridDiff {
        seq: 8,
        ops: vec![
            DiffOp::Cursor(Cursor {
                x: 2,
                y: 0,
                visible: false,
            }),
            DiffOp::Fill {
                x: 0,
                y: 0,
                w: 3,
                h: 1,
                cell: Cell {
                    bg: Color::Rgb(1, 2, 3),
                    ..Cell::default()
                },
            },
            DiffOp::Cells {
                x: 1,
                y: 0,
                cells: vec![Cell::new("x", 1); 5],
            },
            DiffOp::ScrollUp {
                top: 0,
                bottom: 2,
                n: 1,
                fill: Cell {
                    fg: Color::Indexed(9),
                    ..Cell::default()
                },
            },
            DiffOp::Resize { cols: 300, rows: 2 },
        ],
    };
    let bytes = round_trip(&Frame::GridDiff(d));
    assert_eq!(
        bytes,
        hex(concat!(
            "05 00000008",          // opcode, seq
            "03",                   // three styles
            "00 02010203 0000",     // 0: default fg, rgb bg
            "00 00 0000",           // 1: default
            "0109 00 0000",         // 2: fg palette 9
            "05",                   // five ops
            "05 02 00 00",          // cursor (2,0) hidden
            "02 00 00 03 01 00 20", // fill (0,0) 3x1 with style 0 ' '
            "01 01 00 05 01 0b 78", // cells at (1,0), 5 cells: style 1, repeat 5 'x'
            "03 00 02 01 02 20",    // scroll up rows 0..2 by 1, fill style 2 ' '
            "06 ac02 02",           // resize 300x2
        ))
    );
}

#[test]
fn a_blank_screen_is_one_repeat_segment() {
    let bytes = round_trip(&Frame::GridSnapshot(GridSnapshot {
        seq: 0,
        grid: Grid::new(80, 24),
    }));
    assert_eq!(
        bytes,
        hex("04 00000000 50 18 00 00 01 01 00 00 0000 00 811e 20")
    );
    assert_eq!(bytes.len(), 19);
}

#[test]
fn cell_tokens_cover_every_width_and_clip_long_text() {
    let cells = vec![
        Cell::new("", 1),
        Cell::new("", 2),
        Cell::new("x", 0),
        Cell::new("x", 2),
        Cell::new("é", 1),
        Cell::new("e\u{301}", 1),
        Cell::new("~", 1),
        Cell::new("\u{7f}", 1),
    ];
    let g = Grid {
        cols: cells.len() as u16,
        rows: 1,
        cursor: Cursor::default(),
        cells,
    };
    round_trip(&Frame::GridSnapshot(GridSnapshot { seq: 0, grid: g }));

    // 40 bytes of 'é' (2 bytes each) are cut to 32 bytes, on a boundary.
    let long = GridSnapshot {
        seq: 0,
        grid: Grid {
            cols: 1,
            rows: 1,
            cursor: Cursor::default(),
            cells: vec![Cell::new("é".repeat(20), 1)],
        },
    };
    let Ok(Frame::GridSnapshot(back)) = Frame::decode(&Frame::GridSnapshot(long).encode()) else {
        panic!("long cell text must still encode");
    };
    assert_eq!(back.grid.cells[0].text, "é".repeat(16));
}

#[test]
fn inconsistent_grids_encode_at_their_announced_size() {
    let mut g = Grid::new(3, 2);
    g.cells.truncate(4);
    g.cells[0] = Cell::new("a", 1);
    let Ok(Frame::GridSnapshot(back)) =
        Frame::decode(&Frame::GridSnapshot(GridSnapshot { seq: 1, grid: g }).encode())
    else {
        panic!("padded grid must decode");
    };
    assert!(back.grid.is_consistent());
    assert_eq!(back.grid.cells[0].text, "a");
}

// ---------------------------------------------------------------------------
// Error paths and their PROTOCOL_ERROR reasons

fn reason_of(bytes: &[u8]) -> Reason {
    Frame::decode(bytes).unwrap_err().reason()
}

#[test]
fn reserved_opcodes_and_short_frames_are_refused() {
    assert_eq!(Frame::decode(&[]), Err(DecodeError::Truncated("opcode")));
    assert_eq!(reason_of(&[]), Reason::Truncated);
    for op in 0x06..=0xFE {
        assert_eq!(
            Frame::decode(&[op, 1, 2]),
            Err(DecodeError::UnknownOpcode(op))
        );
    }
    assert_eq!(reason_of(&[0x06]).code(), 1);
    assert_eq!(reason_of(&hex("02 00000050 000000")), Reason::Truncated);
    assert_eq!(
        reason_of(&hex("02 00000050 00000018 00")),
        Reason::Malformed
    );
    assert_eq!(reason_of(&hex("ff")), Reason::Truncated);
    assert_eq!(reason_of(&hex("ff 0102")), Reason::Malformed);
    assert_eq!(
        Frame::decode(&hex("ff c8")),
        Ok(Frame::ProtocolError(Reason::Other(200)))
    );
    assert_eq!(Reason::Other(200).code(), 200);
}

#[test]
fn frame_snapshot_lengths_are_checked() {
    assert_eq!(reason_of(&hex("03 ffffffff")), Reason::TooLarge);
    assert_eq!(reason_of(&hex("03 00000004 7331")), Reason::Truncated);
    assert_eq!(reason_of(&hex("03 00000001 ff 00000000")), Reason::BadUtf8);
    assert_eq!(
        reason_of(&hex("03 00000000 ffffffff 41")),
        Reason::Truncated
    );
    assert_eq!(
        reason_of(&hex("03 00000000 00000000 41")),
        Reason::Malformed
    );
    // Non-UTF-8 ANSI is carried as is.
    round_trip(&Frame::FrameSnapshot {
        id: String::new(),
        ansi: vec![0xff, 0x00],
    });
}

#[test]
fn oversized_messages_are_refused_before_copying() {
    let mut big = vec![0u8; MAX_MESSAGE_LEN + 1];
    big[0] = 0x00;
    assert_eq!(reason_of(&big), Reason::TooLarge);
    big.truncate(MAX_MESSAGE_LEN);
    assert!(matches!(Frame::decode(&big), Ok(Frame::PtyData(d)) if d.len() == MAX_MESSAGE_LEN - 1));
}

#[test]
fn app_json_errors_are_classified() {
    let dec = |s: &[u8]| {
        let mut m = vec![0x01];
        m.extend_from_slice(s);
        Frame::decode(&m)
    };
    assert_eq!(
        dec(b"{\"type\":\"ping\",\"ts\":1\xff}"),
        Err(DecodeError::BadUtf8("APP_JSON payload"))
    );
    assert_eq!(dec(b"{").unwrap_err().reason(), Reason::BadJson);
    assert_eq!(dec(b"[1]").unwrap_err().reason(), Reason::BadJson);
    let unknown = dec(br#"{"type":"teleport","to":"mars"}"#).unwrap_err();
    assert_eq!(unknown, DecodeError::UnknownMessageType("teleport".into()));
    assert_eq!(unknown.reason(), Reason::UnknownMessageType);
    assert!(unknown.to_string().contains("teleport"), "{unknown}");
    let missing = dec(br#"{"ts":1}"#).unwrap_err();
    assert!(missing.to_string().contains("\"type\""), "{missing}");
    let extra = dec(br#"{"type":"ping","ts":1,"extra":true}"#).unwrap_err();
    assert_eq!(extra.reason(), Reason::BadJson);
    assert!(extra.to_string().contains("extra"), "{extra}");
    let wrong = dec(br#"{"type":"ping","ts":-1}"#).unwrap_err();
    assert!(
        wrong.to_string().starts_with("bad APP_JSON: ping:"),
        "{wrong}"
    );
    let snake = dec(br#"{"type":"hello","protocol_version":3,"role":"agent"}"#).unwrap_err();
    assert_eq!(snake.reason(), Reason::BadJson);
    let role = dec(br#"{"type":"hello","protocolVersion":3,"role":"robot"}"#).unwrap_err();
    assert_eq!(role.reason(), Reason::BadJson);
    let long = format!(r#"{{"type":"{}"}}"#, "x".repeat(500));
    let DecodeError::UnknownMessageType(name) = dec(long.as_bytes()).unwrap_err() else {
        panic!("long unknown type");
    };
    assert!(name.len() < 80);
}

#[test]
fn grid_sizes_and_counts_are_capped() {
    // cols 2000
    assert_eq!(reason_of(&hex("04 00000000 d00f 01")), Reason::TooLarge);
    // 1024 x 1024 cells > MAX_GRID_CELLS
    assert_eq!(reason_of(&hex("04 00000000 8008 8008")), Reason::TooLarge);
    // a zero dimension
    assert_eq!(
        reason_of(&hex("04 00000000 00 01 00 00 01")),
        Reason::Malformed
    );
    // cols above u16
    assert_eq!(reason_of(&hex("04 00000000 ffff7f")), Reason::TooLarge);
    // repeat segment longer than the grid (2x1 grid, repeat 3)
    let base = "04 00000000 02 01 00 00 01 01 00 00 0000";
    assert_eq!(
        reason_of(&hex(&format!("{base} 00 07 20"))),
        Reason::Malformed
    );
    // empty segment
    assert_eq!(reason_of(&hex(&format!("{base} 00 00"))), Reason::Malformed);
    // style index out of range
    assert_eq!(
        reason_of(&hex(&format!("{base} 01 05 20"))),
        Reason::Malformed
    );
    // unknown cell tag, over-long cell text, bad UTF-8 in a cell
    assert_eq!(
        reason_of(&hex(&format!("{base} 00 05 7f"))),
        Reason::Malformed
    );
    assert_eq!(
        reason_of(&hex(&format!("{base} 00 05 01 21"))),
        Reason::TooLarge
    );
    assert_eq!(
        reason_of(&hex(&format!("{base} 00 04 01 01 ff 20"))),
        Reason::BadUtf8
    );
    // valid, then a trailing byte
    assert!(Frame::decode(&hex(&format!("{base} 00 05 20"))).is_ok());
    assert_eq!(
        reason_of(&hex(&format!("{base} 00 05 20 00"))),
        Reason::Malformed
    );
    // reserved cursor flag, unknown colour tag
    assert_eq!(
        reason_of(&hex("04 00000000 02 01 00 00 03")),
        Reason::Malformed
    );
    assert_eq!(
        reason_of(&hex("04 00000000 02 01 00 00 01 01 07")),
        Reason::Malformed
    );
    // a style count the message cannot hold
    assert_eq!(
        reason_of(&hex("04 00000000 02 01 00 00 01 ffff1f")),
        Reason::TooLarge
    );
    assert_eq!(
        reason_of(&hex("04 00000000 02 01 00 00 01 ff7f")),
        Reason::Truncated
    );
}

#[test]
fn grid_diff_cell_budget_bounds_allocation() {
    // 4 billion ops claimed, none present.
    assert_eq!(
        reason_of(&hex("05 00000000 00 ffffffff0f")),
        Reason::Truncated
    );
    // One Cells op claiming 300000 cells.
    assert_eq!(
        reason_of(&hex("05 00000000 01 00 00 0000 01 01 00 00 e0a712")),
        Reason::TooLarge
    );
    // Two repeat-encoded Cells ops of 200000 cells each: tiny message, but
    // together over the per-diff budget.
    let op = "01 00 00 c09a0c 00 81b51820"; // x 0, y 0, 200000 cells: style 0, repeat ' '
    let one = hex(&format!("05 00000000 01 00 00 0000 01 {op}"));
    assert!(
        matches!(Frame::decode(&one), Ok(Frame::GridDiff(d)) if matches!(&d.ops[0], DiffOp::Cells { cells, .. } if cells.len() == 200_000))
    );
    let two = hex(&format!("05 00000000 01 00 00 0000 02 {op} {op}"));
    assert_eq!(reason_of(&two), Reason::TooLarge);
    // Unknown op tag; bad resize size.
    assert_eq!(reason_of(&hex("05 00000000 00 01 07")), Reason::Malformed);
    assert_eq!(
        reason_of(&hex("05 00000000 00 01 06 00 05")),
        Reason::Malformed
    );
    assert_eq!(
        reason_of(&hex("05 00000000 00 01 06 8108 01")),
        Reason::TooLarge
    );
}

// ---------------------------------------------------------------------------
// APP_JSON messages

fn samples() -> Vec<AppMessage> {
    vec![
        AppMessage::Hello(Hello {
            protocol_version: 3,
            role: Role::Mobile,
            token: Some("t".into()),
            supported_versions: Some(vec![2, 3]),
            machine_id: None,
            machine_name: None,
            client_name: Some("phone".into()),
        }),
        AppMessage::HelloAck(HelloAck {
            protocol_version: 3,
            connection_id: Some("c1".into()),
            ping_interval_ms: Some(15000),
        }),
        AppMessage::CapReq(CapReq {
            grid: true,
            max_cols: Some(200),
            max_rows: None,
        }),
        AppMessage::CapAck(CapAck {
            grid: true,
            max_cols: 200,
            max_rows: 100,
        }),
        AppMessage::SnapshotReq(SnapshotReq {
            session_id: "s".into(),
            last_seq: Some(4),
        }),
        AppMessage::GridFeatures(GridFeatures {
            underline_color: true,
        }),
        AppMessage::MachineList(MachineList {
            machines: vec![Machine {
                id: "m".into(),
                name: "box".into(),
                online: true,
                sessions: vec![SessionInfo {
                    id: "s".into(),
                    title: "bash".into(),
                    cols: 80,
                    rows: 24,
                }],
            }],
        }),
        AppMessage::SessionAttach(SessionAttach {
            machine_id: "m".into(),
            session_id: "s".into(),
        }),
        AppMessage::ConnectionStatus(ConnectionStatus {
            machine_id: "m".into(),
            status: LinkStatus::Reconnecting,
        }),
        AppMessage::TerminalData(TerminalData {
            session_id: "s".into(),
            data: "\u{1b}[1mhi\r\n".into(),
        }),
        AppMessage::ClaudeState(ClaudeState {
            session_id: "s".into(),
            state: AgentActivity::WaitingInput,
            detail: None,
        }),
        AppMessage::PtyStatus(PtyStatus {
            session_id: "s".into(),
            state: PtyState::Exited,
            exit_code: Some(-1),
        }),
        AppMessage::GitResult(GitResult {
            request_id: "r".into(),
            ok: false,
            output: "fatal".into(),
        }),
        AppMessage::SessionReplay(SessionReplay {
            session_id: "s".into(),
            data: "$ ".into(),
        }),
        AppMessage::GridResizeCapped(GridResizeCapped {
            requested_cols: 500,
            requested_rows: 300,
            cols: 200,
            rows: 100,
        }),
        AppMessage::ProtocolMismatch(ProtocolMismatch {
            supported: vec![3],
            received: 2,
        }),
        AppMessage::Ping(Ping { ts: u64::MAX }),
        AppMessage::Pong(Pong { ts: 0 }),
        AppMessage::Error(ErrorMessage {
            code: "not_found".into(),
            message: "no such session".into(),
        }),
        AppMessage::Input(Input {
            session_id: "s".into(),
            data: "ls\r".into(),
        }),
    ]
}

#[test]
fn every_message_type_round_trips_under_its_name() {
    let samples = samples();
    let names: Vec<&str> = samples.iter().map(AppMessage::type_name).collect();
    assert_eq!(names, MESSAGE_TYPES);
    for m in samples {
        let bytes = round_trip(&Frame::AppJson(m.clone()));
        let v: serde_json::Value = serde_json::from_slice(&bytes[1..]).unwrap();
        assert_eq!(v["type"], m.type_name());
    }
}

#[test]
fn fields_are_camel_case_and_absent_options_are_omitted() {
    let hello = AppMessage::Hello(Hello {
        protocol_version: 3,
        role: Role::Agent,
        token: None,
        supported_versions: None,
        machine_id: Some("m".into()),
        machine_name: None,
        client_name: None,
    });
    let mut out = Vec::new();
    hello.write_json(&mut out);
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        r#"{"type":"hello","protocolVersion":3,"role":"agent","machineId":"m"}"#
    );
    // The seed's own example parses.
    assert!(matches!(
        AppMessage::from_json(br#"{"type":"hello","protocolVersion":3,"role":"mobile"}"#),
        Ok(AppMessage::Hello(Hello {
            protocol_version: 3,
            ..
        }))
    ));
}

// ---------------------------------------------------------------------------
// diff / apply

#[test]
fn identical_grids_need_no_ops() {
    let g = grid_of(&["hello", "world"], 8);
    assert!(diff(&g, &g).is_empty());
}

#[test]
fn a_line_printed_at_the_bottom_is_a_scroll_plus_one_line() {
    let old = grid_of(&["l0 aaaa", "l1 bbbb", "l2 cccc", "l3 dddd", "$ "], 10);
    let new = grid_of(&["l1 bbbb", "l2 cccc", "l3 dddd", "$ ls", "$ "], 10);
    let ops = diff(&old, &new);
    // The prompt line is the same before and after, so it stays out of the
    // region: rows 0..4 move up and only row 3 is rewritten.
    assert!(
        matches!(
            ops[0],
            DiffOp::ScrollUp {
                top: 0,
                bottom: 4,
                n: 1,
                ..
            }
        ),
        "{ops:?}"
    );
    assert_eq!(ops.len(), 2, "{ops:?}");
    assert_eq!(applied(&old, &ops), new);
}

#[test]
fn an_editor_scroll_keeps_the_status_line_out_of_the_region() {
    let old = grid_of(
        &["fn a()", "fn b()", "fn c()", "fn d()", "-- NORMAL --"],
        12,
    );
    let new = grid_of(
        &["fn b()", "fn c()", "fn d()", "fn e()", "-- NORMAL --"],
        12,
    );
    let ops = diff(&old, &new);
    assert!(
        matches!(
            ops[0],
            DiffOp::ScrollUp {
                top: 0,
                bottom: 4,
                n: 1,
                ..
            }
        ),
        "{ops:?}"
    );
    assert_eq!(applied(&old, &ops), new);
    // Scrolling back is a scroll down.
    let back = diff(&new, &old);
    assert!(
        matches!(
            back[0],
            DiffOp::ScrollDown {
                top: 0,
                bottom: 4,
                n: 1,
                ..
            }
        ),
        "{back:?}"
    );
    assert_eq!(applied(&new, &back), old);
}

#[test]
fn a_clear_screen_is_one_fill() {
    let old = grid_of(&["a", "bb", "ccc"], 4);
    let mut new = Grid::new(4, 3);
    new.cursor = old.cursor;
    let ops = diff(&old, &new);
    assert_eq!(
        ops,
        vec![DiffOp::Fill {
            x: 0,
            y: 0,
            w: 4,
            h: 3,
            cell: Cell::default()
        }]
    );
}

#[test]
fn a_keystroke_diff_is_a_few_bytes() {
    let old = grid_of(&["$ l", "", ""], 80);
    let mut new = grid_of(&["$ ls", "", ""], 80);
    new.cursor.x = 4;
    let ops = diff(&old, &new);
    assert_eq!(ops.len(), 2, "{ops:?}");
    let bytes = Frame::GridDiff(GridDiff { seq: 1, ops }).encode();
    // seq 4 + style table 5 + op count 1 + cells op 7 + cursor op 4.
    assert_eq!(bytes.len(), 22, "{} bytes: {}", bytes.len(), to_hex(&bytes));
}

#[test]
fn a_resize_keeps_the_overlap_and_blanks_the_rest() {
    let old = grid_of(&["abc", "def"], 3);
    let new = grid_of(&["ab", "de", "gh"], 2);
    let ops = diff(&old, &new);
    assert_eq!(ops[0], DiffOp::Resize { cols: 2, rows: 3 });
    assert_eq!(applied(&old, &ops), new);
    let mut g = old.clone();
    apply(&mut g, &[DiffOp::Resize { cols: 4, rows: 1 }]).unwrap();
    assert_eq!(g, grid_of(&["abc "], 4));
}

#[test]
fn apply_refuses_ops_outside_the_grid() {
    let mut g = Grid::new(3, 2);
    let c = Cell::default();
    for op in [
        DiffOp::Cells {
            x: 3,
            y: 0,
            cells: vec![],
        },
        DiffOp::Cells {
            x: 2,
            y: 1,
            cells: vec![c.clone(), c.clone()],
        },
        DiffOp::Fill {
            x: 1,
            y: 0,
            w: 3,
            h: 1,
            cell: c.clone(),
        },
        DiffOp::ScrollUp {
            top: 1,
            bottom: 1,
            n: 1,
            fill: c.clone(),
        },
        DiffOp::ScrollDown {
            top: 0,
            bottom: 3,
            n: 1,
            fill: c.clone(),
        },
    ] {
        assert!(
            matches!(
                apply(&mut g, std::slice::from_ref(&op)),
                Err(ApplyError::OutOfBounds { .. })
            ),
            "{op:?}"
        );
    }
    assert_eq!(
        apply(&mut g, &[DiffOp::Resize { cols: 0, rows: 1 }]),
        Err(ApplyError::BadSize { cols: 0, rows: 1 })
    );
    g.cells.pop();
    assert!(matches!(
        apply(&mut g, &[]),
        Err(ApplyError::Inconsistent { cells: 5, .. })
    ));
}

#[test]
fn scrolling_by_more_than_the_region_clears_it() {
    let mut g = grid_of(&["a", "b", "c"], 1);
    let fill = Cell::new("-", 1);
    apply(
        &mut g,
        &[DiffOp::ScrollDown {
            top: 1,
            bottom: 3,
            n: 9,
            fill: fill.clone(),
        }],
    )
    .unwrap();
    assert_eq!(g, grid_of(&["a", "-", "-"], 1));
}

// ---------------------------------------------------------------------------
// Properties

fn color() -> impl Strategy<Value = Color> {
    prop_oneof![
        Just(Color::Default),
        any::<u8>().prop_map(Color::Indexed),
        any::<(u8, u8, u8)>().prop_map(|(r, g, b)| Color::Rgb(r, g, b)),
    ]
}

fn any_cell() -> BoxedStrategy<Cell> {
    (
        prop_oneof![
            Just(String::new()),
            Just(" ".to_string()),
            "[ -~]",
            "\\PC{0,3}",
            Just("中".to_string()),
            Just("e\u{301}".to_string()),
        ],
        0u8..=2,
        color(),
        color(),
        any::<u16>(),
        color(),
    )
        .prop_map(|(text, width, fg, bg, attrs, underline_color)| Cell {
            text,
            width,
            fg,
            bg,
            attrs,
            underline_color,
        })
        .boxed()
}

/// Few distinct values, so that equal rows, repeats and scrolls happen.
fn small_cell() -> BoxedStrategy<Cell> {
    (
        prop_oneof![Just(""), Just(" "), Just("a"), Just("b")],
        prop_oneof![Just(Color::Default), Just(Color::Indexed(1))],
        prop_oneof![Just(0u16), Just(attr::BOLD)],
    )
        .prop_map(|(text, bg, attrs)| Cell {
            text: text.into(),
            width: u8::from(!text.is_empty()),
            fg: Color::Default,
            bg,
            attrs,
            underline_color: Color::Default,
        })
        .boxed()
}

fn cursor() -> impl Strategy<Value = Cursor> {
    (0u16..10, 0u16..10, any::<bool>()).prop_map(|(x, y, visible)| Cursor { x, y, visible })
}

fn grid(cell: BoxedStrategy<Cell>, max: u16) -> BoxedStrategy<Grid> {
    (1..=max, 1..=max)
        .prop_flat_map(move |(cols, rows)| {
            (
                vec(cell.clone(), usize::from(cols) * usize::from(rows)),
                cursor(),
            )
                .prop_map(move |(cells, cursor)| Grid {
                    cols,
                    rows,
                    cursor,
                    cells,
                })
        })
        .boxed()
}

/// `old`, and `old` with a block of rows moved (written row by row here,
/// independently of `apply`), some cells edited, and the cursor moved.
fn related_pair() -> BoxedStrategy<(Grid, Grid)> {
    grid(small_cell(), 9)
        .prop_flat_map(|old| {
            let (cols, rows) = (old.cols, old.rows);
            (
                Just(old),
                (0..rows, 0..=rows, 1..=rows, any::<bool>()),
                vec((0..cols, 0..rows, small_cell()), 0..5),
                small_cell(),
                cursor(),
            )
        })
        .prop_map(|(old, (a, b, k, up), edits, fill, cursor)| {
            let cols = usize::from(old.cols);
            let mut lines: Vec<Vec<Cell>> = old.cells.chunks(cols).map(<[Cell]>::to_vec).collect();
            let (top, bottom) = (usize::from(a.min(b)), usize::from(a.max(b)));
            let k = usize::from(k).min(bottom - top);
            if k > 0 {
                let region: Vec<Vec<Cell>> = lines[top..bottom].to_vec();
                for (y, line) in lines.iter_mut().enumerate().take(bottom).skip(top) {
                    let src = if up { y + k } else { y.wrapping_sub(k) };
                    *line = if (top..bottom).contains(&src) {
                        region[src - top].clone()
                    } else {
                        vec![fill.clone(); cols]
                    };
                }
            }
            let mut new = old.clone();
            new.cells = lines.concat();
            for (x, y, c) in edits {
                *new.cell_mut(x, y).unwrap() = c;
            }
            new.cursor = cursor;
            (old, new)
        })
        .boxed()
}

fn diff_op() -> impl Strategy<Value = DiffOp> {
    prop_oneof![
        (any::<u16>(), any::<u16>(), vec(any_cell(), 0..8))
            .prop_map(|(x, y, cells)| DiffOp::Cells { x, y, cells }),
        (any::<(u16, u16, u16, u16)>(), any_cell()).prop_map(|((x, y, w, h), cell)| DiffOp::Fill {
            x,
            y,
            w,
            h,
            cell
        }),
        (any::<(u16, u16, u16)>(), any_cell(), any::<bool>()).prop_map(
            |((top, bottom, n), fill, up)| if up {
                DiffOp::ScrollUp {
                    top,
                    bottom,
                    n,
                    fill,
                }
            } else {
                DiffOp::ScrollDown {
                    top,
                    bottom,
                    n,
                    fill,
                }
            }
        ),
        cursor().prop_map(DiffOp::Cursor),
        (1u16..=MAX_GRID_COLS, 1u16..=256).prop_map(|(cols, rows)| DiffOp::Resize { cols, rows }),
    ]
}

fn text() -> impl Strategy<Value = String> {
    any::<String>()
}

fn app_message() -> impl Strategy<Value = AppMessage> {
    prop_oneof![
        (
            any::<u32>(),
            any::<bool>(),
            proptest::option::of(text()),
            proptest::option::of(vec(any::<u32>(), 0..4)),
            proptest::option::of(text()),
        )
            .prop_map(|(v, agent, token, sv, client)| AppMessage::Hello(Hello {
                protocol_version: v,
                role: if agent { Role::Agent } else { Role::Mobile },
                token,
                supported_versions: sv,
                machine_id: None,
                machine_name: client.clone(),
                client_name: client,
            })),
        (text(), text()).prop_map(|(session_id, data)| AppMessage::TerminalData(TerminalData {
            session_id,
            data
        })),
        (text(), text())
            .prop_map(|(session_id, data)| AppMessage::Input(Input { session_id, data })),
        (text(), text(), any::<bool>(), text(), any::<(u32, u32)>()).prop_map(
            |(id, name, online, title, (cols, rows))| AppMessage::MachineList(MachineList {
                machines: vec![Machine {
                    id: id.clone(),
                    name,
                    online,
                    sessions: vec![SessionInfo {
                        id,
                        title,
                        cols,
                        rows
                    }],
                }],
            })
        ),
        (text(), proptest::option::of(any::<i32>())).prop_map(|(session_id, exit_code)| {
            AppMessage::PtyStatus(PtyStatus {
                session_id,
                state: PtyState::Exited,
                exit_code,
            })
        }),
        (text(), text())
            .prop_map(|(code, message)| AppMessage::Error(ErrorMessage { code, message })),
        any::<u64>().prop_map(|ts| AppMessage::Ping(Ping { ts })),
        (vec(any::<u32>(), 0..4), any::<u32>()).prop_map(|(supported, received)| {
            AppMessage::ProtocolMismatch(ProtocolMismatch {
                supported,
                received,
            })
        }),
        any::<bool>()
            .prop_map(|underline_color| AppMessage::GridFeatures(GridFeatures { underline_color })),
        (text(), proptest::option::of(any::<u32>())).prop_map(|(session_id, last_seq)| {
            AppMessage::SnapshotReq(SnapshotReq {
                session_id,
                last_seq,
            })
        }),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        vec(any::<u8>(), 0..64).prop_map(Frame::PtyData),
        app_message().prop_map(Frame::AppJson),
        any::<(u32, u32)>().prop_map(|(cols, rows)| Frame::Resize { cols, rows }),
        ("\\PC{0,12}", vec(any::<u8>(), 0..64))
            .prop_map(|(id, ansi)| Frame::FrameSnapshot { id, ansi }),
        (any::<u32>(), grid(any_cell(), 12))
            .prop_map(|(seq, grid)| Frame::GridSnapshot(GridSnapshot { seq, grid })),
        (any::<u32>(), vec(diff_op(), 0..6))
            .prop_map(|(seq, ops)| Frame::GridDiff(GridDiff { seq, ops })),
        any::<u8>().prop_map(|b| Frame::ProtocolError(Reason::from_code(b))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_frame_round_trips(f in frame()) {
        let bytes = f.encode();
        prop_assert_eq!(bytes[0], f.opcode() as u8);
        prop_assert_eq!(Frame::decode(&bytes), Ok(f));
    }

    /// For a 3.0 receiver every frame is the frame without underline
    /// colours, byte for byte, and `differs_for` says exactly when that
    /// changes the bytes.
    #[test]
    fn a_3_0_encoding_is_the_frame_without_underline_colours(f in frame()) {
        let old = f.encode_for(GridEncoding::V3_0);
        prop_assert_eq!(&old, &stripped(&f).encode());
        prop_assert_eq!(f.differs_for(GridEncoding::V3_0), old != f.encode());
        prop_assert_eq!(f.encode_for(GridEncoding::FULL), f.encode());
    }

    #[test]
    fn diff_then_apply_rebuilds_related_grids((old, new) in related_pair()) {
        let ops = diff(&old, &new);
        prop_assert_eq!(&applied(&old, &ops), &new);
        // The same through the wire.
        let bytes = Frame::GridDiff(GridDiff { seq: 1, ops }).encode();
        let Ok(Frame::GridDiff(d)) = Frame::decode(&bytes) else {
            return Err(TestCaseError::fail("diff did not decode"));
        };
        prop_assert_eq!(applied(&old, &d.ops), new);
    }

    #[test]
    fn diff_then_apply_rebuilds_unrelated_grids(old in grid(small_cell(), 7), new in grid(any_cell(), 7)) {
        let ops = diff(&old, &new);
        prop_assert_eq!(applied(&old, &ops), new);
    }

    #[test]
    fn diff_against_itself_is_empty(g in grid(any_cell(), 8)) {
        prop_assert!(diff(&g, &g).is_empty());
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in vec(any::<u8>(), 0..64), op in 0u8..6) {
        let mut msg = vec![op];
        msg.extend_from_slice(&bytes);
        if let Ok(f) = Frame::decode(&msg) {
            prop_assert_eq!(Frame::decode(&f.encode()), Ok(f));
        }
    }
}

#[test]
fn the_fixture_json_form_is_strict() {
    use serde_json::json;
    let ok =
        json!({"opcode": "GRID_DIFF", "seq": 1, "ops": [{"op": "resize", "cols": 2, "rows": 1}]});
    assert_eq!(
        fixture::from_json(ok),
        Ok(Frame::GridDiff(GridDiff {
            seq: 1,
            ops: vec![DiffOp::Resize { cols: 2, rows: 1 }]
        }))
    );
    for bad in [
        json!({"opcode": "GRID_DIFF", "seq": 1, "ops": [{"op": "resize", "cols": 2, "rows": 1, "x": 0}]}),
        json!({"opcode": "GRID_DIFF", "seq": 1, "ops": [], "extra": 1}),
        json!({"opcode": "PTY_DATA", "data": "a", "dataHex": "61"}),
        json!({"opcode": "PTY_DATA", "dataHex": "6"}),
        json!({"opcode": "PROTOCOL_ERROR", "reason": 1, "reasonName": "TRUNCATED"}),
        json!({"opcode": "NOPE"}),
    ] {
        assert!(fixture::from_json(bad.clone()).is_err(), "{bad}");
    }
    assert_eq!(
        fixture::to_json(&Frame::PtyData(vec![0xff])),
        json!({"opcode": "PTY_DATA", "dataHex": "ff"})
    );
}
