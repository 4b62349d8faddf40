//! Differential tests of the screen model against a real terminal: tmux.
//!
//! Each corpus entry is a byte stream shaped like a real program's output
//! (vim/less/htop-like full-screen redraws with scroll regions, `git log
//! --color`, 256-colour and truecolor in every SGR form, underline styles
//! and colours, wide and combining characters, the alternate screen with
//! its saved cursor, charsets, titles, modes, tab stops, a resize in the
//! middle, bursts of MiB). It is fed to berth's model (whole and in random
//! chunkings) and to a tmux pane of the same size (`stty raw; cat`); the
//! screens are compared cell by cell (text, colours, attributes) from
//! `capture-pane -e -p -N`, and the modes from `display -p` flags. The
//! model's restore sequence is then played into a fresh tmux pane, which
//! must show the same screen and modes, and, for a program on the
//! alternate screen, the same normal screen once it leaves it.
//!
//! Skips (with a message) when tmux is missing, unless BERTH_REQUIRE_TMUX
//! is set.

use berth_engine::sessions::termfront::Front;
use berth_engine::sessions::{OutputStream, ScreenState};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

const ROWS: u16 = 24;
const COLS: u16 = 80;

struct Tmux {
    dir: tempfile::TempDir,
    sock: PathBuf,
    n: usize,
}

impl Tmux {
    fn start() -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            assert!(
                std::env::var_os("BERTH_REQUIRE_TMUX").is_none(),
                "tmux is required (BERTH_REQUIRE_TMUX) but not installed"
            );
            eprintln!("skipping: tmux is not installed");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("sock");
        Some(Tmux { dir, sock, n: 0 })
    }

    fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.sock)
            .arg("-f")
            .arg("/dev/null")
            .args(args)
            .output()
            .expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Plays `parts` into a new pane of `size`, resizing to `sizes[i]`
    /// before part i; returns the pane target.
    fn play(&mut self, parts: &[(&[u8], (u16, u16))]) -> String {
        self.n += 1;
        let name = format!("w{}", self.n);
        let mut script = String::from("stty raw -echo\n");
        for (i, (bytes, _)) in parts.iter().enumerate() {
            let f = self.dir.path().join(format!("{name}-{i}.bin"));
            std::fs::write(&f, bytes).unwrap();
            if i > 0 {
                script.push_str(&format!(
                    "tmux wait-for -S {name}-ready{i}; tmux wait-for {name}-go{i}\n"
                ));
            }
            script.push_str(&format!("cat {}\n", f.display()));
        }
        script.push_str(&format!("tmux wait-for -S {name}-done\nsleep 3600\n"));
        let sh = self.dir.path().join(format!("{name}.sh"));
        std::fs::write(&sh, script).unwrap();
        let (r0, c0) = parts[0].1;
        let target = format!("{name}:0.0");
        self.cmd(&[
            "new-session",
            "-d",
            "-s",
            &name,
            "-x",
            &c0.to_string(),
            "-y",
            &r0.to_string(),
            &format!("sh {}", sh.display()),
        ]);
        for (i, (_, (r, c))) in parts.iter().enumerate().skip(1) {
            self.cmd(&["wait-for", &format!("{name}-ready{i}")]);
            settle(self, &target);
            self.cmd(&[
                "resize-window",
                "-t",
                &name,
                "-x",
                &c.to_string(),
                "-y",
                &r.to_string(),
            ]);
            settle(self, &target);
            self.cmd(&["wait-for", "-S", &format!("{name}-go{i}")]);
        }
        self.cmd(&["wait-for", &format!("{name}-done")]);
        settle(self, &target);
        target
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.sock)
            .arg("kill-server")
            .output();
    }
}

/// Waits until the pane's capture stops changing (tmux parses output
/// asynchronously from the program that wrote it).
fn settle(t: &Tmux, target: &str) {
    let mut last = String::new();
    for _ in 0..200 {
        std::thread::sleep(std::time::Duration::from_millis(30));
        let now = t.cmd(&["capture-pane", "-e", "-p", "-N", "-t", target]) + &flags(t, target);
        if now == last {
            return;
        }
        last = now;
    }
}

const FLAGS: &str = "#{alternate_on} #{cursor_x} #{cursor_y} #{cursor_flag} #{keypad_cursor_flag} #{keypad_flag} #{mouse_standard_flag} #{mouse_button_flag} #{mouse_all_flag} #{mouse_sgr_flag} #{scroll_region_upper} #{scroll_region_lower} #{wrap_flag} #{origin_flag} #{pane_width} #{pane_height}|#{pane_title}";

fn flags(t: &Tmux, target: &str) -> String {
    t.cmd(&["display", "-p", "-t", target, FLAGS])
}

/// One cell as both sides can state it.
#[derive(Debug, Clone, PartialEq)]
struct CellView {
    text: String,
    fg: vt100::Color,
    bg: vt100::Color,
    bold: bool,
    dim: bool,
    italic: bool,
    underline: vt100::UnderlineStyle,
    underline_color: vt100::Color,
    inverse: bool,
}

fn cells(screen: &vt100::Screen) -> Vec<Vec<CellView>> {
    let (rows, cols) = screen.size();
    (0..rows)
        .map(|r| {
            (0..cols)
                .map(|c| {
                    let cell = screen.cell(r, c).unwrap();
                    let text = if cell.is_wide_continuation() {
                        "<wide>".to_string()
                    } else if cell.contents().is_empty() {
                        " ".to_string()
                    } else {
                        cell.contents().to_string()
                    };
                    CellView {
                        text,
                        fg: cell.fgcolor(),
                        bg: cell.bgcolor(),
                        bold: cell.bold(),
                        dim: cell.dim(),
                        italic: cell.italic(),
                        underline: cell.underline_style(),
                        underline_color: cell.underline_color(),
                        inverse: cell.inverse(),
                    }
                })
                .collect()
        })
        .collect()
}

/// The pane's screen as cells: the capture, parsed by a fresh model.
fn oracle_cells(t: &Tmux, target: &str, rows: u16, cols: u16) -> Vec<Vec<CellView>> {
    let cap = t.cmd(&["capture-pane", "-e", "-p", "-N", "-t", target]);
    let mut bytes = b"\x1b)0".to_vec();
    for (i, line) in cap.split('\n').take(rows as usize).enumerate() {
        bytes.extend_from_slice(format!("\x1b[{};1H\x1b[0m", i + 1).as_bytes());
        bytes.extend_from_slice(line.as_bytes());
    }
    let mut p = vt100::Parser::new(rows, cols, 0);
    let mut front = Front::new();
    let (mut out, mut q) = (Vec::new(), Vec::new());
    front.feed(&bytes, &mut out, &mut q);
    p.process(&out);
    cells(p.screen())
}

/// Modes of the model in the oracle's format.
fn model_flags(s: &ScreenState) -> String {
    let modes = s.modes();
    s.with_screen(|scr, _| {
        let (rows, cols) = scr.size();
        let (cy, cx) = scr.cursor_position();
        let mm = scr.mouse_protocol_mode();
        let (top, bottom) = modes
            .scroll_region
            .map(|(t, b)| (t - 1, if b == 0 { rows - 1 } else { b - 1 }))
            .unwrap_or((0, rows - 1));
        let title = modes
            .title
            .as_ref()
            .map(|t| String::from_utf8_lossy(t).into_owned());
        format!(
            "{} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {}|{}",
            scr.alternate_screen() as u8,
            cx,
            cy,
            !scr.hide_cursor() as u8,
            scr.application_cursor() as u8,
            scr.application_keypad() as u8,
            (mm == vt100::MouseProtocolMode::PressRelease) as u8,
            (mm == vt100::MouseProtocolMode::ButtonMotion) as u8,
            (mm == vt100::MouseProtocolMode::AnyMotion) as u8,
            (scr.mouse_protocol_encoding() == vt100::MouseProtocolEncoding::Sgr) as u8,
            top,
            bottom,
            modes.autowrap as u8,
            modes.origin as u8,
            cols,
            rows,
            title.unwrap_or_default()
        )
    })
}

/// Compares cells; returns the differences (row, col, model, oracle).
/// Cells past the last printed character of a row compare by text only:
/// tmux's capture does not show the colour of erased cells there.
fn diff(model: &[Vec<CellView>], oracle: &[Vec<CellView>]) -> Vec<String> {
    let mut out = Vec::new();
    for (r, (mr, or)) in model.iter().zip(oracle).enumerate() {
        let last = or
            .iter()
            .rposition(|c| c.text != " ")
            .max(mr.iter().rposition(|c| c.text != " "));
        for (c, (m, o)) in mr.iter().zip(or).enumerate() {
            let same = if last.is_none_or(|l| c > l) {
                m.text == o.text
            } else {
                m == o
            };
            if !same {
                out.push(format!("r{r} c{c}: model {m:?} / tmux {o:?}"));
            }
        }
    }
    out
}

fn title_matters(oracle_flags: &str, model_flags: &str) -> (String, String) {
    // tmux shows the host name as the title until a program sets one.
    let m = model_flags.to_string();
    if m.ends_with('|') {
        let o = oracle_flags.split('|').next().unwrap_or("").to_string() + "|";
        return (o, m);
    }
    (oracle_flags.to_string(), m)
}

struct Case {
    name: &'static str,
    /// Bytes, and the size before them (a change is a resize).
    parts: Vec<(Vec<u8>, (u16, u16))>,
}

/// Feeds a case to a fresh model in chunks cut by `cut`.
fn model_of(case: &Case, mut cut: impl FnMut(usize) -> usize) -> Arc<ScreenState> {
    let out = OutputStream::new(64 << 20);
    let (r0, c0) = case.parts[0].1;
    let s = ScreenState::new(out.clone(), r0, c0);
    s.with_screen(|_, _| ());
    for (bytes, (r, c)) in &case.parts {
        if s.with_screen(|scr, _| scr.size()) != (*r, *c) {
            s.resize(*r, *c);
        }
        let mut i = 0;
        while i < bytes.len() {
            let n = cut(bytes.len() - i).clamp(1, bytes.len() - i);
            out.append(&bytes[i..i + n]);
            s.catch_up();
            i += n;
        }
    }
    s.catch_up();
    s
}

/// Chooses the next chunk's length from the bytes left.
type Cutter = Box<dyn FnMut(usize) -> usize>;

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn check_case(t: &mut Tmux, case: &Case) -> Vec<String> {
    let mut problems = Vec::new();
    let parts: Vec<(&[u8], (u16, u16))> =
        case.parts.iter().map(|(b, s)| (b.as_slice(), *s)).collect();
    let target = t.play(&parts);
    let (rows, cols) = case.parts.last().unwrap().1;
    let oracle = oracle_cells(t, &target, rows, cols);
    let oflags = flags(t, &target).trim_end().to_string();
    let total: usize = case.parts.iter().map(|p| p.0.len()).sum();
    let mut rng = Lcg(total as u64 ^ 0x9e37);
    let chunkings: Vec<(&str, Cutter)> = vec![
        ("whole", Box::new(|n| n)),
        ("bytes", Box::new(|_| 1)),
        ("random", Box::new(move |_| 1 + (rng.next() % 977) as usize)),
    ];
    let mut model = None;
    for (how, cut) in chunkings {
        if how == "bytes" && total > 200_000 {
            continue;
        }
        let m = model_of(case, cut);
        let d = diff(&m.with_screen(|s, _| cells(s)), &oracle);
        if !d.is_empty() {
            problems.push(format!(
                "{} ({how}): {} cells differ, first: {}",
                case.name,
                d.len(),
                d[..d.len().min(3)].join("; ")
            ));
        }
        let (o, mf) = title_matters(&oflags, &model_flags(&m));
        if o != mf {
            problems.push(format!(
                "{} ({how}): modes differ: model {mf:?} / tmux {o:?}",
                case.name
            ));
        }
        model.get_or_insert(m);
    }
    // The restore, played into a fresh pane, must show the same terminal.
    let m = model.unwrap();
    let snap = m.snapshot();
    let restored = t.play(&[(&snap.restore, (rows, cols))]);
    let d = diff(&oracle_cells(t, &restored, rows, cols), &oracle);
    if !d.is_empty() {
        problems.push(format!(
            "{} (restore): {} cells differ, first: {}",
            case.name,
            d.len(),
            d[..d.len().min(3)].join("; ")
        ));
    }
    let rflags = flags(t, &restored).trim_end().to_string();
    let (o, r) = title_matters(&oflags, &rflags);
    let (o, r) = if m.modes().title.is_none() {
        (
            o.split('|').next().unwrap().to_string(),
            r.split('|').next().unwrap().to_string(),
        )
    } else {
        (o, r)
    };
    if o != r {
        problems.push(format!(
            "{} (restore): modes differ: restored {r:?} / original {o:?}",
            case.name
        ));
    }
    // A program on the alternate screen leaves it: the normal screen
    // beneath must be what the original terminal shows.
    if m.with_screen(|s, _| s.alternate_screen()) {
        let leave: &[u8] = b"\x1b[?1049lZ";
        let mut orig_parts = parts.clone();
        orig_parts.push((leave, (rows, cols)));
        let orig = t.play(&orig_parts);
        let rest = t.play(&[(&snap.restore, (rows, cols)), (leave, (rows, cols))]);
        let d = diff(
            &oracle_cells(t, &rest, rows, cols),
            &oracle_cells(t, &orig, rows, cols),
        );
        if !d.is_empty() {
            problems.push(format!(
                "{} (restore, then leave the alternate screen): {} cells differ, first: {}",
                case.name,
                d.len(),
                d[..d.len().min(3)].join("; ")
            ));
        }
        let (fo, fr) = (flags(t, &orig), flags(t, &rest));
        let strip = |s: &str| s.split('|').next().unwrap().to_string();
        if strip(&fo) != strip(&fr) {
            problems.push(format!(
                "{} (restore, then leave the alternate screen): modes differ: {fr:?} / {fo:?}",
                case.name
            ));
        }
    }
    problems
}

fn corpus() -> Vec<Case> {
    let one = |name, bytes: Vec<u8>| Case {
        name,
        parts: vec![(bytes, (ROWS, COLS))],
    };
    vec![
        one("git log --color", git_log(300)),
        one("vim-like editing", vim_like()),
        one("less-like pager", less_like()),
        one("htop-like redraws", htop_like()),
        one("colours in every SGR form", colours()),
        one("underline styles and colours in every form", underlines()),
        one("wide and combining characters", wide()),
        one("alternate screen with saved cursor", alt_saved_cursor()),
        one("charsets", charsets()),
        one("titles and modes", titles_and_modes()),
        one("tab stops", tab_stops()),
        one("scroll region with origin mode", origin()),
        Case {
            name: "resize: fewer rows in the middle of output",
            parts: vec![
                (git_log(40), (ROWS, COLS)),
                (git_log(3), (16, COLS)),
                (b"\x1b[3;1Hup here\x1b[10;1H".to_vec(), (12, COLS)),
                (b"after".to_vec(), (8, COLS)),
            ],
        },
        Case {
            name: "resize: more rows on the alternate screen",
            parts: vec![
                (vim_like(), (ROWS, COLS)),
                (b"\x1b[H\x1b[2Jredrawn\x1b[30;1Hbottom".to_vec(), (30, COLS)),
            ],
        },
        one("burst: 8 MiB of coloured log", {
            let mut v = Vec::new();
            while v.len() < 8 << 20 {
                v.extend_from_slice(&git_log(500));
            }
            v
        }),
        one("burst: 24 MiB of plain lines then a title", {
            let mut v = Vec::with_capacity(25 << 20);
            let mut i = 0u64;
            while v.len() < 24 << 20 {
                v.extend_from_slice(format!("line {i} of a long build log\r\n").as_bytes());
                i += 1;
            }
            v.extend_from_slice(b"\x1b]2;done\x07\x1b[1;32mok\x1b[0m");
            v
        }),
    ]
}

fn git_log(n: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..n {
        let deco = if i == 0 {
            " \x1b[33m(\x1b[1;36mHEAD -> \x1b[m\x1b[1;32mmain\x1b[m\x1b[33m, \x1b[m\x1b[1;31morigin/main\x1b[m\x1b[33m)\x1b[m"
        } else {
            ""
        };
        v.extend_from_slice(
            format!(
                "\x1b[33mcommit {:040x}\x1b[m{deco}\r\nAuthor: Dev {i} <dev{i}@example.org>\r\nDate:   Sun Nov 29 10:{:02}:00 2026 +0000\r\n\r\n    change number {i}: \x1b[1mbold\x1b[m and \x1b[3mitalic\x1b[m\r\n\r\n",
                (i as u128).wrapping_mul(0x9e3779b97f4a7c15f39cc0605cedc835),
                i % 60
            )
            .as_bytes(),
        );
    }
    v
}

fn vim_like() -> Vec<u8> {
    let mut v =
        b"\x1b[?1049h\x1b[22;0;0t\x1b[?1h\x1b=\x1b[H\x1b[2J\x1b]2;file.rs - VIM\x07".to_vec();
    v.extend_from_slice(b"\x1b[?25l");
    for r in 1..ROWS {
        v.extend_from_slice(
            format!(
                "\x1b[{r};1H\x1b[38;5;130m{r:>3} \x1b[m\x1b[38:2::200:100:50mfn\x1b[m line_{r}() {{}}"
            )
            .as_bytes(),
        );
    }
    v.extend_from_slice(format!("\x1b[{ROWS};1H\x1b[7m file.rs  [+]  \x1b[27m\x1b[K").as_bytes());
    // Scroll the text region up three lines, then down one (reverse index).
    v.extend_from_slice(format!("\x1b[1;{}r\x1b[{};1H\n\n\n", ROWS - 1, ROWS - 1).as_bytes());
    v.extend_from_slice(b"\x1b[1;1H\x1bMnew top line\x1b[r");
    // Insert and delete lines and characters.
    v.extend_from_slice(b"\x1b[5;1H\x1b[2L\x1b[48;5;22minserted\x1b[m\x1b[10;1H\x1b[3M");
    v.extend_from_slice(
        b"\x1b[12;5H\x1b[4P\x1b[12;2H\x1b[3@abc\x1b[14;10H\x1b[1K\x1b[15;1H\x1b[5X",
    );
    v.extend_from_slice(b"\x1b[?25h\x1b[8;12H");
    v
}

fn less_like() -> Vec<u8> {
    let mut v = b"prompt$ less file\r\n\x1b[?1049h\x1b[?1h\x1b=\r".to_vec();
    for page in 0..3 {
        v.extend_from_slice(b"\x1b[H\x1b[2J");
        for r in 0..ROWS - 1 {
            v.extend_from_slice(
                format!("page {page} line {r} \x1b[1mbold\x1b[m text\r\n").as_bytes(),
            );
        }
        v.extend_from_slice(b"\x1b[7m:\x1b[27m\x1b[K");
    }
    // Scroll forward one line at a time.
    for i in 0..5 {
        v.extend_from_slice(format!("\r\x1b[Kmore line {i}\r\n\x1b[7m:\x1b[27m").as_bytes());
    }
    v
}

fn htop_like() -> Vec<u8> {
    let mut v = b"\x1b[?1049h\x1b[?25l".to_vec();
    for frame in 0..20 {
        v.extend_from_slice(b"\x1b[H");
        for cpu in 0..4 {
            let bar = (frame * 7 + cpu * 13) % 40;
            v.extend_from_slice(
                format!(
                    "\x1b[{};1H\x1b[36m{cpu}\x1b[m[\x1b[32m{}\x1b[31m{}\x1b[m{}]",
                    cpu + 1,
                    "|".repeat(bar / 2),
                    "|".repeat(bar - bar / 2),
                    " ".repeat(40 - bar)
                )
                .as_bytes(),
            );
        }
        v.extend_from_slice(b"\x1b[6;1H\x1b[30;42m  PID USER      CPU%\x1b[K\x1b[m");
        for p in 0..15 {
            v.extend_from_slice(
                format!(
                    "\x1b[{};1H{:>5} user{p:<5} {:>4}.{}\x1b[K",
                    p + 7,
                    1000 + p * 3 + frame,
                    (p * frame) % 100,
                    frame % 10
                )
                .as_bytes(),
            );
        }
    }
    v
}

fn colours() -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..=255u32 {
        v.extend_from_slice(format!("\x1b[38;5;{i}m#").as_bytes());
        if i % 64 == 63 {
            v.extend_from_slice(b"\x1b[m\r\n");
        }
    }
    for i in 0..=255u32 {
        v.extend_from_slice(format!("\x1b[48:5:{i}m ").as_bytes());
        if i % 64 == 63 {
            v.extend_from_slice(b"\x1b[m\r\n");
        }
    }
    for i in 0..60u32 {
        let (r, g, b) = (i * 4, 255 - i * 4, (i * 37) % 256);
        let form = match i % 5 {
            0 => format!("\x1b[38;2;{r};{g};{b}m"),
            1 => format!("\x1b[38:2::{r}:{g}:{b}m"),
            2 => format!("\x1b[38:2:0:{r}:{g}:{b}m"),
            3 => format!("\x1b[38:2:{r}:{g}:{b}m"),
            _ => format!("\x1b[48:2::{r}:{g}:{b}m"),
        };
        v.extend_from_slice(form.as_bytes());
        v.push(b'x');
    }
    v.extend_from_slice(b"\x1b[m\r\n");
    for s in 0..=5 {
        v.extend_from_slice(format!("\x1b[4:{s}mu{s}\x1b[24m ").as_bytes());
    }
    v.extend_from_slice(b"\x1b[4m\x1b[58:2::255:0:0mred-underline\x1b[59m\x1b[58;5;4m;blue\x1b[58;2;1;2;3m\x1b[m\r\n");
    v.extend_from_slice(b"\x1b[1mB\x1b[2mD\x1b[22m\x1b[3mI\x1b[23m\x1b[7mR\x1b[27m\x1b[1;3;4;7;38;5;9;48;2;0;0;128mALL\x1b[m\r\n");
    v.extend_from_slice(b"\x1b[91mbright\x1b[102mbg\x1b[39;49m plain\r\n");
    v
}

/// Every underline form xterm, tmux and kitty accept: the styles `4:0` to
/// `4:5`, `4`, `21` (double in tmux), `24`; the underline colour in the
/// colon forms with and without a colour space, the `;` forms, indexed
/// and RGB, reset by `59` and by `SGR 0`; mixed with colours and other
/// attributes in one SGR; forms tmux ignores (`4:6`, `4:1:2`, `1:2`,
/// short colour groups); out of range values; erases under an underline
/// colour (terminals fill with the background only).
fn underlines() -> Vec<u8> {
    let mut v = Vec::new();
    for s in 0..=5 {
        v.extend_from_slice(format!("\x1b[4:{s}mu{s}\x1b[m ").as_bytes());
    }
    v.extend_from_slice(
        b"\x1b[4mplain\x1b[21mdouble\x1b[24mnone \x1b[4:3mcurly\x1b[4mback\x1b[4:0moff\x1b[m\r\n",
    );
    let forms: &[&str] = &[
        "58:2::255:0:0",
        "58:2:0:10:20:30",
        "58:2:1:40:50:60",
        "58:2:70:80:90",
        "58;2;100;110;120",
        "58:5:9",
        "58;5;3",
        "58:5:200",
        "58;5;16",
    ];
    for (i, f) in forms.iter().enumerate() {
        v.extend_from_slice(format!("\x1b[4:{}m\x1b[{f}m{i}\x1b[59m-", i % 5 + 1).as_bytes());
    }
    v.extend_from_slice(b"\x1b[m\r\n");
    // The colour without an underline, kept by the cell all the same; SGR 0
    // and 59 reset it; 4:0 and 24 keep it.
    v.extend_from_slice(b"\x1b[58;5;4mno-ul\x1b[4mul\x1b[4:0mkept\x1b[24m\x1b[4:2mback\x1b[0mreset \x1b[58:5:1;4ma\x1b[59mb\x1b[m\r\n");
    // Mixed in one SGR with colours and attributes.
    v.extend_from_slice(b"\x1b[1;58:5:1;4:4;38:2::1:2:3;48;5;100mmixed\x1b[0m \x1b[4:3;58:2::9:9:9;31mred\x1b[4:0mno\x1b[m \x1b[3;21;58;2;1;2;3;7mall\x1b[27;23;24mplain-ul-colour\x1b[m\r\n");
    // Forms tmux ignores, short groups and out of range values.
    v.extend_from_slice(b"\x1b[1:2ma\x1b[m \x1b[4mX\x1b[4:6mc\x1b[4:1:2md\x1b[m \x1b[3;4:6;1me\x1b[m \x1b[4;58:2:1:2mf\x1b[58:5mg\x1b[m \x1b[4;58;5;300;1mh\x1b[m \x1b[4;58:2::1:999:3;2mi\x1b[m \x1b[38:5:256;48:5:3mj\x1b[m\r\n");
    // Erases under an underline colour and a style: background only.
    v.extend_from_slice(
        b"some text to erase\r\x1b[4:3;58:5:2;44m\x1b[5X\x1b[10C\x1b[K\x1b[mafter\r\n",
    );
    v.extend_from_slice(b"\x1b[21;58:2::1:2:3mend of stream, attributes still set");
    v
}

fn wide() -> Vec<u8> {
    let mut v = "中文字符 and ｆｕｌｌ width, e\u{301} combining, n\u{303}, 🙂 face\r\n"
        .as_bytes()
        .to_vec();
    // A wide character that does not fit at the end of a line wraps.
    v.extend_from_slice(format!("{}中\r\n", "x".repeat(COLS as usize - 1)).as_bytes());
    // Overwriting half of a wide character.
    v.extend_from_slice("漢字漢字\x1b[3Gx\r\n".as_bytes());
    v.extend_from_slice("\x1b[31m赤\x1b[m末\r\n".as_bytes());
    v
}

fn alt_saved_cursor() -> Vec<u8> {
    let mut v = b"M normal screen line\r\n\x1b[32mgreen prompt$ \x1b[m".to_vec();
    v.extend_from_slice(b"\x1b[5;7H\x1b[1;34m");
    v.extend_from_slice(
        b"\x1b[?1049h\x1b[H\x1b[2J\x1b[0mon the alternate screen\x1b[10;10Hcursor here",
    );
    v
}

fn charsets() -> Vec<u8> {
    let mut v = b"\x1b(0lqqqk\r\nx   x\r\nmqqqj\x1b(B ascii again\r\n".to_vec();
    v.extend_from_slice(b"\x1b)0a\x0eqqq\x0fb\r\n");
    v.extend_from_slice(b"\x1b(0`afgjklmnopqrstuvwxyz{|}~\x1b(B\r\n");
    v
}

fn titles_and_modes() -> Vec<u8> {
    b"\x1b]0;first\x07\x1b[22t\x1b]2;second\x1b\\\x1b[23t\x1b]2;third\x07text\
      \x1b[?1000h\x1b[?1002h\x1b[?1006h\x1b[?2004h\x1b[?1h\x1b=\x1b[?25l\x1b[?1004h\x1b[4 q\x1b[?7l\
      a line longer than the screen is wide, which must not wrap with autowrap off, ......... end"
        .to_vec()
}

fn tab_stops() -> Vec<u8> {
    let mut v = b"a\tb\tc\td\r\n".to_vec();
    v.extend_from_slice(b"\x1b[3g\x1b[5G\x1bH\x1b[20G\x1bH\x1b[33G\x1bH\r");
    v.extend_from_slice(b"1\t2\t3\t4\r\n");
    v.extend_from_slice(b"\x1b[20G\x1b[0g\r1\t2\t3\r\n");
    v
}

fn origin() -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..ROWS {
        v.extend_from_slice(format!("row {i}\r\n").as_bytes());
    }
    v.extend_from_slice(
        b"\x1b[5;15r\x1b[?6h\x1b[1;1Hinside top\x1b[20;1Hclamped bottom\r\n\n\nscrolled",
    );
    v
}

fn tmux_or_skip() -> Option<Tmux> {
    Tmux::start()
}

/// Known difference, kept visible: when a screen grows, tmux pulls rows
/// back from its history (and a program on the alternate screen gets its
/// normal screen resized when it leaves); the model adds blank rows at the
/// bottom like xterm. Programs redraw on SIGWINCH, so only the rows above
/// a shell prompt differ. Run with `--ignored` to see the difference.
#[test]
#[ignore = "known difference: tmux refills grown rows from its history"]
fn growing_the_normal_screen_matches_tmux() {
    let Some(mut t) = tmux_or_skip() else { return };
    let case = Case {
        name: "resize: more rows after scrolling",
        parts: vec![
            (git_log(40), (ROWS, COLS)),
            (vim_like(), (30, COLS)),
            (b"\x1b[?1049l after\r\n".to_vec(), (20, COLS)),
        ],
    };
    let p = check_case(&mut t, &case);
    assert!(p.is_empty(), "{}", p.join("\n"));
}

/// The oracle is read through the model's own front end and parser, so a
/// fault shared by both sides (say, styles flattened to a single underline)
/// would hide; this pins what tmux 3.3a itself shows for each form, from
/// its capture's text and the cells it parses to.
#[test]
fn tmux_shows_every_underline_form_and_the_oracle_reads_it() {
    let Some(mut t) = tmux_or_skip() else { return };
    let target = t.play(&[(&underlines(), (ROWS, COLS))]);
    let cap = t.cmd(&["capture-pane", "-e", "-p", "-N", "-t", &target]);
    for want in [
        "4:2m",
        "4:3m",
        "4:4m",
        "4:5m",
        "58;2;255;0;0m",
        "58;2;40;50;60m",
        "58;5;200m",
    ] {
        assert!(cap.contains(want), "tmux capture lacks {want:?}: {cap:?}");
    }
    let cells = oracle_cells(&t, &target, ROWS, COLS);
    let at = |row: usize, text: &str| -> &CellView {
        cells[row]
            .iter()
            .find(|c| c.text == text)
            .unwrap_or_else(|| panic!("no {text:?} in row {row}"))
    };
    use vt100::UnderlineStyle as U;
    let styles = [
        U::None,
        U::Single,
        U::Double,
        U::Curly,
        U::Dotted,
        U::Dashed,
    ];
    for (n, style) in styles.iter().enumerate() {
        let c = cells[0]
            .iter()
            .zip(cells[0].iter().skip(1))
            .find(|(a, b)| a.text == "u" && b.text == n.to_string())
            .map(|(a, _)| a)
            .unwrap();
        assert_eq!(c.underline, *style, "4:{n}");
    }
    let colours = [
        vt100::Color::Rgb(255, 0, 0),
        vt100::Color::Rgb(10, 20, 30),
        vt100::Color::Rgb(40, 50, 60),
        vt100::Color::Rgb(70, 80, 90),
        vt100::Color::Rgb(100, 110, 120),
        vt100::Color::Idx(9),
        vt100::Color::Idx(3),
        vt100::Color::Idx(200),
        vt100::Color::Idx(16),
    ];
    for (i, colour) in colours.iter().enumerate() {
        let c = at(1, &i.to_string());
        assert_eq!(c.underline_color, *colour, "form {i}");
        assert_eq!(c.underline, styles[i % 5 + 1], "form {i}");
    }
    assert_eq!(at(1, "-").underline_color, vt100::Color::Default);
    // 21 is a double underline in tmux, not "bold off".
    assert_eq!(at(6, "e").underline, U::Double);
    assert!(at(6, "e").underline_color == vt100::Color::Rgb(1, 2, 3));
}

/// A restore played into a fresh emulator (what a re-attaching terminal
/// is) re-creates every underline style and colour, on the normal screen
/// beneath the alternate screen too, and the attributes still in effect.
#[test]
fn a_restore_re_creates_every_underline_form() {
    let mut bytes = underlines();
    bytes.extend_from_slice(b"\x1b[?1049h\x1b[H\x1b[4:5;58;2;7;8;9mon alt\x1b[21;58:5:77m");
    let case = Case {
        name: "underlines, then the alternate screen",
        parts: vec![(bytes, (ROWS, COLS))],
    };
    let m = model_of(&case, |n| n);
    let restore = m.snapshot().restore;
    let mut fresh = vt100::Parser::new(ROWS, COLS, 0);
    fresh.process(&restore);
    let current = |s: &vt100::Screen| (s.underline_style(), s.underline_color(), s.fgcolor());
    m.with_screen(|s, _| {
        assert_eq!(cells(fresh.screen()), cells(s));
        assert_eq!(current(fresh.screen()), current(s));
        assert_eq!(
            current(s),
            (
                vt100::UnderlineStyle::Double,
                vt100::Color::Idx(77),
                vt100::Color::Default
            )
        );
    });
    // Leave the alternate screen on both: the normal screen beneath.
    let mut original = vt100::Parser::new(ROWS, COLS, 0);
    *original.screen_mut() = m.with_screen(|s, _| s.clone());
    original.process(b"\x1b[?1049l");
    fresh.process(b"\x1b[?1049l");
    assert_eq!(cells(fresh.screen()), cells(original.screen()));
    let styled = cells(original.screen())
        .iter()
        .flatten()
        .filter(|c| c.underline_color != vt100::Color::Default)
        .count();
    assert!(styled > 20, "the normal screen keeps its underline colours");
}

#[test]
fn the_model_matches_tmux_on_the_corpus() {
    let Some(mut t) = tmux_or_skip() else { return };
    let mut problems = Vec::new();
    for case in corpus() {
        let p = check_case(&mut t, &case);
        eprintln!(
            "{}: {}",
            case.name,
            if p.is_empty() { "same" } else { "DIFFERS" }
        );
        problems.extend(p);
    }
    assert!(
        problems.is_empty(),
        "{} differences:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
