//! The screen grid carried by GRID_SNAPSHOT and GRID_DIFF, and the byte
//! layouts of those two payloads.
//!
//! Both payloads share one cell encoding: a per-frame style table (each
//! distinct colours + attributes once), then segments of cells that share a
//! style, either literal (one token per cell) or a repeat (one token for n
//! cells). Printable ASCII cells cost one byte; a blank line costs about
//! three. Integers are LEB128 varints except the fixed-width sequence
//! number and attribute bits.
//!
//! Protocol 3.1 (docs/remote-protocol-v3.md §3.1) adds the underline style
//! (attribute bits 8-10) and the underline colour (a style prefixed with
//! tag `0x03`); a frame without an underline colour is byte for byte a 3.0
//! frame.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::codec::{put_varint, Reader};
use super::{DecodeError, MAX_CELL_TEXT, MAX_GRID_CELLS, MAX_GRID_COLS, MAX_GRID_ROWS};

/// Attribute bits of [`Cell::attrs`]. Bits 8-10 hold the underline style
/// (protocol 3.1); bits 11-15 are reserved: senders keep them zero,
/// receivers carry them through and ignore them.
pub mod attr {
    /// Bold or increased intensity (SGR 1).
    pub const BOLD: u16 = 1 << 0;
    /// Faint (SGR 2).
    pub const DIM: u16 = 1 << 1;
    /// Italic (SGR 3).
    pub const ITALIC: u16 = 1 << 2;
    /// Underline (SGR 4).
    pub const UNDERLINE: u16 = 1 << 3;
    /// Blink (SGR 5).
    pub const BLINK: u16 = 1 << 4;
    /// Swap foreground and background (SGR 7).
    pub const INVERSE: u16 = 1 << 5;
    /// Concealed (SGR 8).
    pub const HIDDEN: u16 = 1 << 6;
    /// Crossed out (SGR 9).
    pub const STRIKE: u16 = 1 << 7;
    /// The underline style, bits 8-10 (protocol 3.1): the `N` of `SGR 4:N`
    /// (1 single, 2 double, 3 curly, 4 dotted, 5 dashed; 6 and 7 are
    /// reserved and shown as single). 0 with [`UNDERLINE`] set is a single
    /// underline (what a 3.0 sender writes). A sender sets [`UNDERLINE`]
    /// with every non-zero style, so a 3.0 receiver, which ignores these
    /// bits, still shows an underline.
    pub const UNDERLINE_STYLE: u16 = 0b111 << 8;
    const UNDERLINE_STYLE_SHIFT: u16 = 8;

    /// The underline style of `attrs`: 0 when not underlined, else 1-7
    /// (see [`UNDERLINE_STYLE`]; a 3.0 sender's plain underline reads as
    /// 1).
    pub const fn underline_style(attrs: u16) -> u8 {
        if attrs & UNDERLINE == 0 {
            return 0;
        }
        match (attrs & UNDERLINE_STYLE) >> UNDERLINE_STYLE_SHIFT {
            0 => 1,
            n => n as u8,
        }
    }

    /// `attrs` with underline style `style` (0-7, higher bits dropped):
    /// sets or clears [`UNDERLINE`] with it, so every receiver shows an
    /// underline exactly when the style is non-zero.
    pub const fn with_underline_style(attrs: u16, style: u8) -> u16 {
        let style = (style & 0b111) as u16;
        let attrs = attrs & !(UNDERLINE | UNDERLINE_STYLE);
        if style == 0 {
            attrs
        } else {
            attrs | UNDERLINE | (style << UNDERLINE_STYLE_SHIFT)
        }
    }
}

/// A cell colour as a terminal knows it; the client maps indexes to its
/// own palette, so themes stay the viewer's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    /// The terminal's default foreground or background.
    #[default]
    Default,
    /// One of the 256 palette entries (0-15 are the ANSI colours).
    Indexed(u8),
    /// A 24-bit colour.
    Rgb(u8, u8, u8),
}

/// One character position of the screen.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cell {
    /// The grapheme shown here; empty for the right half of a wide
    /// character. At most [`MAX_CELL_TEXT`] bytes go on the wire.
    pub text: String,
    /// Columns the grapheme occupies: 0 (continuation), 1, or 2 (wide).
    pub width: u8,
    /// Foreground colour.
    pub fg: Color,
    /// Background colour.
    pub bg: Color,
    /// [`attr`] bits.
    pub attrs: u16,
    /// Underline colour (SGR 58, protocol 3.1); [`Color::Default`] draws
    /// the underline in the foreground colour. Kept whether or not the
    /// cell is underlined, as terminals keep it. JSON `underlineColor`,
    /// left out when default (so 3.0 fixtures read unchanged).
    #[serde(
        rename = "underlineColor",
        default,
        skip_serializing_if = "Color::is_default"
    )]
    pub underline_color: Color,
}

impl Color {
    /// Whether this is [`Color::Default`].
    pub fn is_default(&self) -> bool {
        *self == Color::Default
    }
}

impl Default for Cell {
    /// A blank: one space in the default colours.
    fn default() -> Self {
        Self {
            text: String::from(" "),
            width: 1,
            fg: Color::Default,
            bg: Color::Default,
            attrs: 0,
            underline_color: Color::Default,
        }
    }
}

impl Cell {
    /// A cell in the default colours with no attributes.
    pub fn new(text: impl Into<String>, width: u8) -> Self {
        Self {
            text: text.into(),
            width,
            ..Self::default()
        }
    }

    fn style(&self) -> Style {
        Style {
            fg: self.fg,
            bg: self.bg,
            attrs: self.attrs,
            ul: self.underline_color,
        }
    }

    fn same_glyph(&self, other: &Cell) -> bool {
        self.width == other.width && self.text == other.text
    }
}

/// Where the cursor is and whether it is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    /// Column, from 0. Not required to be inside the grid.
    pub x: u16,
    /// Row, from 0. Not required to be inside the grid.
    pub y: u16,
    /// False while the program hides the cursor (DECTCEM off).
    pub visible: bool,
}

impl Default for Cursor {
    fn default() -> Self {
        Self {
            x: 0,
            y: 0,
            visible: true,
        }
    }
}

/// A whole screen: `cells` holds `cols * rows` cells in row-major order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grid {
    /// Width in cells.
    pub cols: u16,
    /// Height in cells.
    pub rows: u16,
    /// The cursor.
    pub cursor: Cursor,
    /// Row-major cells; index `y * cols + x`.
    pub cells: Vec<Cell>,
}

impl Grid {
    /// A blank grid with the cursor at the origin.
    pub fn new(cols: u16, rows: u16) -> Self {
        Self {
            cols,
            rows,
            cursor: Cursor::default(),
            cells: vec![Cell::default(); usize::from(cols) * usize::from(rows)],
        }
    }

    /// True when `cells` has exactly `cols * rows` entries, which the diff
    /// functions and the encoder expect.
    pub fn is_consistent(&self) -> bool {
        self.cells.len() == self.area()
    }

    /// `cols * rows`.
    pub fn area(&self) -> usize {
        usize::from(self.cols) * usize::from(self.rows)
    }

    /// The cells of row `y`; empty if `y` is outside the grid.
    pub fn row(&self, y: u16) -> &[Cell] {
        let w = usize::from(self.cols);
        let start = usize::from(y) * w;
        self.cells.get(start..start + w).unwrap_or(&[])
    }

    /// The cell at (`x`, `y`), if inside the grid.
    pub fn cell(&self, x: u16, y: u16) -> Option<&Cell> {
        if x >= self.cols || y >= self.rows {
            return None;
        }
        self.cells
            .get(usize::from(y) * usize::from(self.cols) + usize::from(x))
    }

    /// Mutable access to the cell at (`x`, `y`), if inside the grid.
    pub fn cell_mut(&mut self, x: u16, y: u16) -> Option<&mut Cell> {
        if x >= self.cols || y >= self.rows {
            return None;
        }
        self.cells
            .get_mut(usize::from(y) * usize::from(self.cols) + usize::from(x))
    }
}

/// One step of a GRID_DIFF, applied in order by [`super::apply`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", deny_unknown_fields)]
pub enum DiffOp {
    /// Overwrite cells from (x, y) onwards in row-major order; a run may
    /// continue onto the following rows.
    Cells {
        /// Starting column.
        x: u16,
        /// Starting row.
        y: u16,
        /// The new cells.
        cells: Vec<Cell>,
    },
    /// Set every cell of a rectangle to one cell (clears, blank lines).
    Fill {
        /// Left column.
        x: u16,
        /// Top row.
        y: u16,
        /// Width in cells.
        w: u16,
        /// Height in cells.
        h: u16,
        /// The cell written everywhere in the rectangle.
        cell: Cell,
    },
    /// Move rows `top..bottom` up by `n`; the `n` rows left at the bottom of
    /// the region become `fill`.
    ScrollUp {
        /// First row of the region.
        top: u16,
        /// One past the last row of the region.
        bottom: u16,
        /// Rows to move by.
        n: u16,
        /// The cell the vacated rows are filled with.
        fill: Cell,
    },
    /// Move rows `top..bottom` down by `n`; the `n` rows left at the top of
    /// the region become `fill`.
    ScrollDown {
        /// First row of the region.
        top: u16,
        /// One past the last row of the region.
        bottom: u16,
        /// Rows to move by.
        n: u16,
        /// The cell the vacated rows are filled with.
        fill: Cell,
    },
    /// Set the cursor.
    Cursor(Cursor),
    /// Change the grid size, keeping the overlapping top-left cells; new
    /// cells are blank ([`Cell::default`]).
    Resize {
        /// New width.
        cols: u16,
        /// New height.
        rows: u16,
    },
}

/// Which additions to the 3.0 grid layout an encoder may use: what the
/// receiver asked for with `grid.features` (docs/remote-protocol-v3.md §5).
///
/// Without [`Self::underline_color`] every cell is encoded with the default
/// underline colour, so the frame is byte for byte what a 3.0 sender
/// writes (the underline style bits 8-10 stay: 3.0 receivers ignore them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GridEncoding {
    /// Underline colours (the `0x03`-prefixed style of §3.1) may be sent.
    pub underline_color: bool,
}

impl GridEncoding {
    /// What a 3.0 receiver (or one that did not send `grid.features`)
    /// decodes: no underline colours.
    pub const V3_0: Self = Self {
        underline_color: false,
    };
    /// Everything this version defines (3.1).
    pub const FULL: Self = Self {
        underline_color: true,
    };
}

impl Grid {
    /// Whether any cell has an underline colour, i.e. whether encoding the
    /// grid for [`GridEncoding::V3_0`] drops something.
    pub fn has_underline_color(&self) -> bool {
        self.cells.iter().any(|c| !c.underline_color.is_default())
    }
}

impl DiffOp {
    /// Whether a cell this op writes has an underline colour.
    pub fn has_underline_color(&self) -> bool {
        match self {
            DiffOp::Cells { cells, .. } => cells.iter().any(|c| !c.underline_color.is_default()),
            DiffOp::Fill { cell, .. } => !cell.underline_color.is_default(),
            DiffOp::ScrollUp { fill, .. } | DiffOp::ScrollDown { fill, .. } => {
                !fill.underline_color.is_default()
            }
            DiffOp::Cursor(_) | DiffOp::Resize { .. } => false,
        }
    }
}

/// GRID_SNAPSHOT: the whole screen, and the sequence number the following
/// GRID_DIFFs continue from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridSnapshot {
    /// The next GRID_DIFF carries `seq + 1` (wrapping).
    pub seq: u32,
    /// The screen.
    pub grid: Grid,
}

/// GRID_DIFF: the operations turning the previous grid into the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridDiff {
    /// One more (wrapping) than the previous snapshot or diff; a receiver
    /// seeing anything else has missed a frame and sends `snapshot.req`.
    pub seq: u32,
    /// The operations, applied in order.
    pub ops: Vec<DiffOp>,
}

// ---------------------------------------------------------------------------
// Wire layout

const TOKEN_CONTINUATION: u8 = 0x00;
const TOKEN_WIDTH1: u8 = 0x01;
const TOKEN_WIDTH2: u8 = 0x02;
const TOKEN_WIDTH0: u8 = 0x03;

const COLOR_DEFAULT: u8 = 0;
const COLOR_INDEXED: u8 = 1;
const COLOR_RGB: u8 = 2;
/// Before a style's fg colour: the underline colour follows, then the
/// style as in 3.0 (protocol 3.1). A 3.0 decoder refuses it as an unknown
/// colour tag, so it fails clearly instead of misreading the table.
const UNDERLINE_COLOR_PREFIX: u8 = 3;

const OP_CELLS: u8 = 0x01;
const OP_FILL: u8 = 0x02;
const OP_SCROLL_UP: u8 = 0x03;
const OP_SCROLL_DOWN: u8 = 0x04;
const OP_CURSOR: u8 = 0x05;
const OP_RESIZE: u8 = 0x06;

const CURSOR_VISIBLE: u8 = 0x01;

/// Identical neighbours needed before a literal segment is split around a
/// repeat: the split costs about two segment headers.
const REPEAT_MIN: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Style {
    fg: Color,
    bg: Color,
    attrs: u16,
    ul: Color,
}

/// The styles of one frame, in first-use order.
struct StyleTable {
    list: Vec<Style>,
    index: HashMap<Style, u32>,
    last: Option<(Style, u32)>,
    encoding: GridEncoding,
}

impl StyleTable {
    fn new(encoding: GridEncoding) -> Self {
        Self {
            list: Vec::new(),
            index: HashMap::new(),
            last: None,
            encoding,
        }
    }

    /// The style `cell` is sent with: its own, less what the receiver did
    /// not ask for.
    fn style_of(&self, cell: &Cell) -> Style {
        let mut s = cell.style();
        if !self.encoding.underline_color {
            s.ul = Color::Default;
        }
        s
    }

    fn intern(&mut self, s: Style) -> u32 {
        if let Some((ls, li)) = self.last {
            if ls == s {
                return li;
            }
        }
        let next = self.list.len() as u32;
        let i = *self.index.entry(s).or_insert_with(|| {
            self.list.push(s);
            next
        });
        self.last = Some((s, i));
        i
    }

    fn intern_cells(&mut self, cells: &[Cell]) {
        for c in cells {
            self.intern(self.style_of(c));
        }
    }

    fn put(&self, out: &mut Vec<u8>) {
        put_varint(out, self.list.len() as u32);
        for s in &self.list {
            if s.ul != Color::Default {
                out.push(UNDERLINE_COLOR_PREFIX);
                put_color(out, s.ul);
            }
            put_color(out, s.fg);
            put_color(out, s.bg);
            out.extend_from_slice(&s.attrs.to_be_bytes());
        }
    }
}

fn put_color(out: &mut Vec<u8>, c: Color) {
    match c {
        Color::Default => out.push(COLOR_DEFAULT),
        Color::Indexed(i) => out.extend_from_slice(&[COLOR_INDEXED, i]),
        Color::Rgb(r, g, b) => out.extend_from_slice(&[COLOR_RGB, r, g, b]),
    }
}

/// `s` cut to at most [`MAX_CELL_TEXT`] bytes at a character boundary.
fn clip_text(s: &str) -> &str {
    if s.len() <= MAX_CELL_TEXT {
        return s;
    }
    let mut end = MAX_CELL_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Appends one cell's glyph: a printable ASCII byte for the common case,
/// 0x00 for a wide character's continuation, else a width tag, a length
/// byte and the UTF-8 text. Widths above 2 are sent as 2.
fn put_token(out: &mut Vec<u8>, cell: &Cell) {
    let text = clip_text(&cell.text);
    match (cell.width, text.as_bytes()) {
        (1, &[b]) if (0x20..=0x7E).contains(&b) => out.push(b),
        (0, []) => out.push(TOKEN_CONTINUATION),
        (w, bytes) => {
            out.push(match w {
                0 => TOKEN_WIDTH0,
                1 => TOKEN_WIDTH1,
                _ => TOKEN_WIDTH2,
            });
            out.push(bytes.len() as u8);
            out.extend_from_slice(bytes);
        }
    }
}

fn put_segment_header(out: &mut Vec<u8>, style: u32, n: usize, repeat: bool) {
    put_varint(out, style);
    put_varint(out, ((n as u32) << 1) | u32::from(repeat));
}

/// Appends `cells` as segments; every style must already be interned.
fn put_span(out: &mut Vec<u8>, cells: &[Cell], styles: &mut StyleTable) {
    let mut i = 0;
    while i < cells.len() {
        let style = styles.style_of(&cells[i]);
        let mut j = i + 1;
        while j < cells.len() && styles.style_of(&cells[j]) == style {
            j += 1;
        }
        put_style_run(out, styles.intern(style), &cells[i..j]);
        i = j;
    }
}

/// Appends cells that share one style, using repeat segments for long runs
/// of identical glyphs and literal segments for the rest.
fn put_style_run(out: &mut Vec<u8>, style: u32, cells: &[Cell]) {
    let mut literal_from = 0;
    let mut k = 0;
    while k < cells.len() {
        let mut r = k + 1;
        while r < cells.len() && cells[r].same_glyph(&cells[k]) {
            r += 1;
        }
        if r - k >= REPEAT_MIN {
            if literal_from < k {
                put_literal(out, style, &cells[literal_from..k]);
            }
            put_segment_header(out, style, r - k, true);
            put_token(out, &cells[k]);
            literal_from = r;
        }
        k = r;
    }
    if literal_from < cells.len() {
        put_literal(out, style, &cells[literal_from..]);
    }
}

fn put_literal(out: &mut Vec<u8>, style: u32, cells: &[Cell]) {
    put_segment_header(out, style, cells.len(), false);
    for c in cells {
        put_token(out, c);
    }
}

fn put_styled_token(out: &mut Vec<u8>, cell: &Cell, styles: &mut StyleTable) {
    let style = styles.style_of(cell);
    put_varint(out, styles.intern(style));
    put_token(out, cell);
}

pub(crate) fn encode_snapshot(out: &mut Vec<u8>, snap: &GridSnapshot, encoding: GridEncoding) {
    let g = &snap.grid;
    // A grid whose cell vector disagrees with its size is sent padded or
    // cut to `cols * rows`, so the frame always matches its header.
    let padded;
    let cells: &[Cell] = if g.is_consistent() {
        &g.cells
    } else {
        let mut v: Vec<Cell> = g.cells.iter().take(g.area()).cloned().collect();
        v.resize(g.area(), Cell::default());
        padded = v;
        &padded
    };
    let mut styles = StyleTable::new(encoding);
    styles.intern_cells(cells);

    // Mostly one byte per cell; a guess that avoids most regrowth.
    out.reserve(16 + 6 * styles.list.len() + cells.len());
    out.extend_from_slice(&snap.seq.to_be_bytes());
    put_varint(out, u32::from(g.cols));
    put_varint(out, u32::from(g.rows));
    put_varint(out, u32::from(g.cursor.x));
    put_varint(out, u32::from(g.cursor.y));
    out.push(if g.cursor.visible { CURSOR_VISIBLE } else { 0 });
    styles.put(out);
    put_span(out, cells, &mut styles);
}

pub(crate) fn encode_diff(out: &mut Vec<u8>, d: &GridDiff, encoding: GridEncoding) {
    let mut styles = StyleTable::new(encoding);
    for op in &d.ops {
        match op {
            DiffOp::Cells { cells, .. } => styles.intern_cells(cells),
            DiffOp::Fill { cell, .. } => {
                styles.intern(styles.style_of(cell));
            }
            DiffOp::ScrollUp { fill, .. } | DiffOp::ScrollDown { fill, .. } => {
                styles.intern(styles.style_of(fill));
            }
            DiffOp::Cursor(_) | DiffOp::Resize { .. } => {}
        }
    }
    out.extend_from_slice(&d.seq.to_be_bytes());
    styles.put(out);
    put_varint(out, d.ops.len() as u32);
    for op in &d.ops {
        match op {
            DiffOp::Cells { x, y, cells } => {
                out.push(OP_CELLS);
                put_varint(out, u32::from(*x));
                put_varint(out, u32::from(*y));
                put_varint(out, cells.len() as u32);
                put_span(out, cells, &mut styles);
            }
            DiffOp::Fill { x, y, w, h, cell } => {
                out.push(OP_FILL);
                for v in [x, y, w, h] {
                    put_varint(out, u32::from(*v));
                }
                put_styled_token(out, cell, &mut styles);
            }
            DiffOp::ScrollUp {
                top,
                bottom,
                n,
                fill,
            }
            | DiffOp::ScrollDown {
                top,
                bottom,
                n,
                fill,
            } => {
                out.push(if matches!(op, DiffOp::ScrollUp { .. }) {
                    OP_SCROLL_UP
                } else {
                    OP_SCROLL_DOWN
                });
                for v in [top, bottom, n] {
                    put_varint(out, u32::from(*v));
                }
                put_styled_token(out, fill, &mut styles);
            }
            DiffOp::Cursor(c) => {
                out.push(OP_CURSOR);
                put_varint(out, u32::from(c.x));
                put_varint(out, u32::from(c.y));
                out.push(if c.visible { CURSOR_VISIBLE } else { 0 });
            }
            DiffOp::Resize { cols, rows } => {
                out.push(OP_RESIZE);
                put_varint(out, u32::from(*cols));
                put_varint(out, u32::from(*rows));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Decoding

/// Refuses grid sizes that are empty or over the caps, before any cell
/// vector is sized from them.
pub(crate) fn check_dims(cols: u16, rows: u16) -> Result<(), DecodeError> {
    if cols == 0 || rows == 0 {
        return Err(DecodeError::Malformed("grid size has a zero dimension"));
    }
    if cols > MAX_GRID_COLS {
        return Err(DecodeError::TooLarge {
            what: "grid cols",
            len: u64::from(cols),
            max: u64::from(MAX_GRID_COLS),
        });
    }
    if rows > MAX_GRID_ROWS {
        return Err(DecodeError::TooLarge {
            what: "grid rows",
            len: u64::from(rows),
            max: u64::from(MAX_GRID_ROWS),
        });
    }
    let area = usize::from(cols) * usize::from(rows);
    if area > MAX_GRID_CELLS {
        return Err(DecodeError::TooLarge {
            what: "grid cells",
            len: area as u64,
            max: MAX_GRID_CELLS as u64,
        });
    }
    Ok(())
}

fn read_color(r: &mut Reader<'_>) -> Result<Color, DecodeError> {
    let tag = r.u8("colour tag")?;
    color_after_tag(tag, r)
}

fn color_after_tag(tag: u8, r: &mut Reader<'_>) -> Result<Color, DecodeError> {
    match tag {
        COLOR_DEFAULT => Ok(Color::Default),
        COLOR_INDEXED => Ok(Color::Indexed(r.u8("palette index")?)),
        COLOR_RGB => {
            let b = r.bytes(3, "rgb colour")?;
            Ok(Color::Rgb(b[0], b[1], b[2]))
        }
        _ => Err(DecodeError::Malformed("unknown colour tag")),
    }
}

fn read_styles(r: &mut Reader<'_>) -> Result<Vec<Style>, DecodeError> {
    let n = r.varint("style count")? as usize;
    if n > MAX_GRID_CELLS {
        return Err(DecodeError::TooLarge {
            what: "style count",
            len: n as u64,
            max: MAX_GRID_CELLS as u64,
        });
    }
    // Each style takes at least 4 bytes, so the message bounds the table.
    let mut styles = Vec::with_capacity(n.min(r.remaining() / 4));
    for _ in 0..n {
        let tag = r.u8("colour tag")?;
        let (ul, fg) = if tag == UNDERLINE_COLOR_PREFIX {
            let ul = read_color(r)?;
            if ul == Color::Default {
                // The encoder leaves the prefix out instead: one encoding
                // per style.
                return Err(DecodeError::Malformed("default underline colour sent"));
            }
            (ul, read_color(r)?)
        } else {
            (Color::Default, color_after_tag(tag, r)?)
        };
        let bg = read_color(r)?;
        let attrs = r.u16_be("style attrs")?;
        styles.push(Style { fg, bg, attrs, ul });
    }
    Ok(styles)
}

fn read_token(r: &mut Reader<'_>) -> Result<(String, u8), DecodeError> {
    let t = r.u8("cell")?;
    let width = match t {
        0x20..=0x7E => return Ok((String::from(t as char), 1)),
        TOKEN_CONTINUATION => return Ok((String::new(), 0)),
        TOKEN_WIDTH1 => 1,
        TOKEN_WIDTH2 => 2,
        TOKEN_WIDTH0 => 0,
        _ => return Err(DecodeError::Malformed("unknown cell tag")),
    };
    let len = usize::from(r.u8("cell text length")?);
    if len > MAX_CELL_TEXT {
        return Err(DecodeError::TooLarge {
            what: "cell text",
            len: len as u64,
            max: MAX_CELL_TEXT as u64,
        });
    }
    let bytes = r.bytes(len, "cell text")?;
    let text = std::str::from_utf8(bytes).map_err(|_| DecodeError::BadUtf8("cell text"))?;
    Ok((text.to_owned(), width))
}

fn styled(style: Style, text: String, width: u8) -> Cell {
    Cell {
        text,
        width,
        fg: style.fg,
        bg: style.bg,
        attrs: style.attrs,
        underline_color: style.ul,
    }
}

fn lookup(styles: &[Style], r: &mut Reader<'_>) -> Result<Style, DecodeError> {
    let i = r.varint("style index")? as usize;
    styles
        .get(i)
        .copied()
        .ok_or(DecodeError::Malformed("style index out of range"))
}

fn read_styled_token(r: &mut Reader<'_>, styles: &[Style]) -> Result<Cell, DecodeError> {
    let style = lookup(styles, r)?;
    let (text, width) = read_token(r)?;
    Ok(styled(style, text, width))
}

/// Reads segments until exactly `count` cells were appended to `out`.
fn read_span(
    r: &mut Reader<'_>,
    styles: &[Style],
    count: usize,
    out: &mut Vec<Cell>,
) -> Result<(), DecodeError> {
    let mut left = count;
    while left > 0 {
        let style = lookup(styles, r)?;
        let header = r.varint("segment length")?;
        let n = (header >> 1) as usize;
        if n == 0 {
            return Err(DecodeError::Malformed("empty cell segment"));
        }
        if n > left {
            return Err(DecodeError::Malformed("cell segment overruns its span"));
        }
        if header & 1 == 1 {
            let (text, width) = read_token(r)?;
            let cell = styled(style, text, width);
            out.extend(std::iter::repeat_n(cell, n));
        } else {
            for _ in 0..n {
                let (text, width) = read_token(r)?;
                out.push(styled(style, text, width));
            }
        }
        left -= n;
    }
    Ok(())
}

fn read_cursor(r: &mut Reader<'_>) -> Result<Cursor, DecodeError> {
    let x = r.varint_u16("cursor x")?;
    let y = r.varint_u16("cursor y")?;
    let flags = r.u8("cursor flags")?;
    if flags & !CURSOR_VISIBLE != 0 {
        return Err(DecodeError::Malformed("reserved cursor flag set"));
    }
    Ok(Cursor {
        x,
        y,
        visible: flags & CURSOR_VISIBLE != 0,
    })
}

pub(crate) fn decode_snapshot(payload: &[u8]) -> Result<GridSnapshot, DecodeError> {
    let mut r = Reader::new(payload);
    let seq = r.u32_be("snapshot seq")?;
    let cols = r.varint_u16("grid cols")?;
    let rows = r.varint_u16("grid rows")?;
    check_dims(cols, rows)?;
    let cursor = read_cursor(&mut r)?;
    let styles = read_styles(&mut r)?;
    let area = usize::from(cols) * usize::from(rows);
    let mut cells = Vec::with_capacity(area);
    read_span(&mut r, &styles, area, &mut cells)?;
    r.finish()?;
    Ok(GridSnapshot {
        seq,
        grid: Grid {
            cols,
            rows,
            cursor,
            cells,
        },
    })
}

pub(crate) fn decode_diff(payload: &[u8]) -> Result<GridDiff, DecodeError> {
    let mut r = Reader::new(payload);
    let seq = r.u32_be("diff seq")?;
    let styles = read_styles(&mut r)?;
    let count = r.varint("op count")? as usize;
    // The smallest op takes three bytes.
    let mut ops = Vec::with_capacity(count.min(r.remaining() / 3));
    let mut budget = MAX_GRID_CELLS;
    for _ in 0..count {
        let op = match r.u8("op tag")? {
            OP_CELLS => {
                let x = r.varint_u16("cells x")?;
                let y = r.varint_u16("cells y")?;
                let n = r.varint("cells count")? as usize;
                if n > budget {
                    return Err(DecodeError::TooLarge {
                        what: "cells in one GRID_DIFF",
                        len: (MAX_GRID_CELLS - budget + n) as u64,
                        max: MAX_GRID_CELLS as u64,
                    });
                }
                budget -= n;
                let mut cells = Vec::with_capacity(n);
                read_span(&mut r, &styles, n, &mut cells)?;
                DiffOp::Cells { x, y, cells }
            }
            OP_FILL => DiffOp::Fill {
                x: r.varint_u16("fill x")?,
                y: r.varint_u16("fill y")?,
                w: r.varint_u16("fill w")?,
                h: r.varint_u16("fill h")?,
                cell: read_styled_token(&mut r, &styles)?,
            },
            tag @ (OP_SCROLL_UP | OP_SCROLL_DOWN) => {
                let top = r.varint_u16("scroll top")?;
                let bottom = r.varint_u16("scroll bottom")?;
                let n = r.varint_u16("scroll n")?;
                let fill = read_styled_token(&mut r, &styles)?;
                if tag == OP_SCROLL_UP {
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
            }
            OP_CURSOR => DiffOp::Cursor(read_cursor(&mut r)?),
            OP_RESIZE => {
                let cols = r.varint_u16("resize cols")?;
                let rows = r.varint_u16("resize rows")?;
                check_dims(cols, rows)?;
                DiffOp::Resize { cols, rows }
            }
            _ => return Err(DecodeError::Malformed("unknown GRID_DIFF op")),
        };
        ops.push(op);
    }
    r.finish()?;
    Ok(GridDiff { seq, ops })
}
