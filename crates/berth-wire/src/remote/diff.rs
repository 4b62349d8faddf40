//! Computing and applying grid diffs.
//!
//! [`diff`] finds one scroll (a block of rows that moved up or down, as in
//! a shell printing a line or an editor scrolling inside its status bars),
//! then writes every remaining difference as rectangle fills (rows that
//! became one repeated cell, e.g. after a clear) or runs of cells. The
//! invariant, property-tested below, is `apply(old, diff(old, new)) == new`.

use super::grid::{check_dims, Cell, Color, DiffOp, Grid};

/// Unchanged cells tolerated inside one run of changed cells: cheaper to
/// resend a few cells than to start another op.
const MERGE_GAP: usize = 4;

/// Why [`apply`] stopped. The grid may be partly updated; a client should
/// ask for a fresh snapshot (`snapshot.req`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The grid's cell vector does not match its size.
    #[error("grid holds {cells} cells but is {cols}x{rows}")]
    Inconsistent {
        /// Width.
        cols: u16,
        /// Height.
        rows: u16,
        /// Cells actually held.
        cells: usize,
    },
    /// An op reaches outside the grid.
    #[error("{op} op reaches outside the {cols}x{rows} grid")]
    OutOfBounds {
        /// Which op.
        op: &'static str,
        /// Grid width when the op was applied.
        cols: u16,
        /// Grid height when the op was applied.
        rows: u16,
    },
    /// A resize to an empty size or beyond the caps.
    #[error("resize to {cols}x{rows} is outside the grid limits")]
    BadSize {
        /// Requested width.
        cols: u16,
        /// Requested height.
        rows: u16,
    },
}

/// Applies `ops` in order to `grid`.
pub fn apply(grid: &mut Grid, ops: &[DiffOp]) -> Result<(), ApplyError> {
    if !grid.is_consistent() {
        return Err(ApplyError::Inconsistent {
            cols: grid.cols,
            rows: grid.rows,
            cells: grid.cells.len(),
        });
    }
    for op in ops {
        apply_one(grid, op)?;
    }
    Ok(())
}

fn apply_one(grid: &mut Grid, op: &DiffOp) -> Result<(), ApplyError> {
    let cols = usize::from(grid.cols);
    let rows = usize::from(grid.rows);
    let oob = |op| ApplyError::OutOfBounds {
        op,
        cols: grid.cols,
        rows: grid.rows,
    };
    match op {
        DiffOp::Cells { x, y, cells } => {
            let (x, y) = (usize::from(*x), usize::from(*y));
            if x >= cols || y >= rows {
                return Err(oob("cells"));
            }
            let start = y * cols + x;
            let end = start + cells.len();
            if end > cols * rows {
                return Err(oob("cells"));
            }
            // clone_from reuses the target cells' text buffers.
            grid.cells[start..end].clone_from_slice(cells);
        }
        DiffOp::Fill { x, y, w, h, cell } => {
            let (x, y, w, h) = (
                usize::from(*x),
                usize::from(*y),
                usize::from(*w),
                usize::from(*h),
            );
            if x + w > cols || y + h > rows {
                return Err(oob("fill"));
            }
            for row in y..y + h {
                for c in &mut grid.cells[row * cols + x..row * cols + x + w] {
                    c.clone_from(cell);
                }
            }
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
            let (top, bottom) = (usize::from(*top), usize::from(*bottom));
            if top >= bottom || bottom > rows {
                return Err(oob("scroll"));
            }
            let k = usize::from(*n).min(bottom - top);
            let region = &mut grid.cells[top * cols..bottom * cols];
            let vacated = if matches!(op, DiffOp::ScrollUp { .. }) {
                region.rotate_left(k * cols);
                let len = region.len();
                &mut region[len - k * cols..]
            } else {
                region.rotate_right(k * cols);
                &mut region[..k * cols]
            };
            for c in vacated {
                c.clone_from(fill);
            }
        }
        DiffOp::Cursor(c) => grid.cursor = *c,
        DiffOp::Resize {
            cols: new_cols,
            rows: new_rows,
        } => {
            if check_dims(*new_cols, *new_rows).is_err() {
                return Err(ApplyError::BadSize {
                    cols: *new_cols,
                    rows: *new_rows,
                });
            }
            if (*new_cols, *new_rows) == (grid.cols, grid.rows) {
                return Ok(());
            }
            let (nc, nr) = (usize::from(*new_cols), usize::from(*new_rows));
            let mut cells = Vec::with_capacity(nc * nr);
            for y in 0..nr {
                for x in 0..nc {
                    cells.push(if x < cols && y < rows {
                        std::mem::take(&mut grid.cells[y * cols + x])
                    } else {
                        Cell::default()
                    });
                }
            }
            grid.cols = *new_cols;
            grid.rows = *new_rows;
            grid.cells = cells;
        }
    }
    Ok(())
}

/// What a row of the grid holds after the resize / scroll ops of a diff,
/// before its cell ops: a slice of an old row (cells past its end are
/// blank), or one cell repeated.
#[derive(Clone, Copy)]
enum Base<'a> {
    Row(&'a [Cell]),
    Uniform(&'a Cell),
}

impl<'a> Base<'a> {
    fn cell(self, x: usize, blank: &'a Cell) -> &'a Cell {
        match self {
            Base::Row(r) => r.get(x).unwrap_or(blank),
            Base::Uniform(c) => c,
        }
    }

    fn equals(self, row: &[Cell], blank: &Cell) -> bool {
        match self {
            Base::Row(r) if r.len() == row.len() => r == row,
            _ => row
                .iter()
                .enumerate()
                .all(|(x, c)| self.cell(x, blank) == c),
        }
    }
}

/// A scroll worth emitting: rows `top..bottom` move by `k` (up or down).
struct Scroll {
    up: bool,
    top: usize,
    bottom: usize,
    k: usize,
}

/// The ops that turn `old` into `new`. Both grids should be consistent
/// ([`Grid::is_consistent`]); an inconsistent `new` is treated as padded
/// with blanks or cut to its size, as the encoder would send it.
pub fn diff(old: &Grid, new: &Grid) -> Vec<DiffOp> {
    let normalized;
    let new = if new.is_consistent() {
        new
    } else {
        let mut g = new.clone();
        g.cells.truncate(g.area());
        g.cells.resize(g.area(), Cell::default());
        normalized = g;
        &normalized
    };
    let cols = usize::from(new.cols);
    let rows = usize::from(new.rows);
    let blank = Cell::default();
    let fill_cell;
    let mut ops = Vec::new();

    let resized = (old.cols, old.rows) != (new.cols, new.rows);
    if resized {
        ops.push(DiffOp::Resize {
            cols: new.cols,
            rows: new.rows,
        });
    }
    let mut base: Vec<Base<'_>> = (0..rows)
        .map(|y| {
            if y < usize::from(old.rows) {
                Base::Row(old.row(y as u16))
            } else {
                Base::Uniform(&blank)
            }
        })
        .collect();

    if cols == 0 || rows == 0 {
        if old.cursor != new.cursor {
            ops.push(DiffOp::Cursor(new.cursor));
        }
        return ops;
    }

    // Which rows are already right; each row is compared once here and
    // again only if a scroll moves it.
    let mut right: Vec<bool> = (0..rows)
        .map(|y| base[y].equals(new.row(y as u16), &blank))
        .collect();

    // Scroll detection, when the size is unchanged and several rows differ.
    if !resized && old.is_consistent() && rows >= 2 && right.iter().filter(|r| !**r).count() >= 2 {
        if let Some(s) = find_scroll(old, new, &right) {
            let fill_y = if s.up { s.bottom - 1 } else { s.top };
            fill_cell = new.cells[fill_y * cols + cols - 1].clone();
            let (top, bottom, k) = (s.top as u16, s.bottom as u16, s.k as u16);
            if s.up {
                for (y, b) in base.iter_mut().enumerate().take(s.bottom).skip(s.top) {
                    *b = if y + s.k < s.bottom {
                        Base::Row(old.row((y + s.k) as u16))
                    } else {
                        Base::Uniform(&fill_cell)
                    };
                }
                ops.push(DiffOp::ScrollUp {
                    top,
                    bottom,
                    n: k,
                    fill: fill_cell.clone(),
                });
            } else {
                for (y, b) in base.iter_mut().enumerate().take(s.bottom).skip(s.top) {
                    *b = if y >= s.top + s.k {
                        Base::Row(old.row((y - s.k) as u16))
                    } else {
                        Base::Uniform(&fill_cell)
                    };
                }
                ops.push(DiffOp::ScrollDown {
                    top,
                    bottom,
                    n: k,
                    fill: fill_cell.clone(),
                });
            }
            for y in s.top..s.bottom {
                right[y] = base[y].equals(new.row(y as u16), &blank);
            }
        }
    }

    // Rows that changed and are now one repeated cell become fills,
    // consecutive equal ones merged into one rectangle.
    let mut done = vec![false; rows];
    let mut y = 0;
    while y < rows {
        let row = new.row(y as u16);
        if right[y] || !is_uniform(row) {
            y += 1;
            continue;
        }
        let start = y;
        y += 1;
        while y < rows {
            let next = new.row(y as u16);
            if right[y] || next[0] != row[0] || !is_uniform(next) {
                break;
            }
            y += 1;
        }
        done[start..y].iter_mut().for_each(|d| *d = true);
        ops.push(DiffOp::Fill {
            x: 0,
            y: start as u16,
            w: new.cols,
            h: (y - start) as u16,
            cell: row[0].clone(),
        });
    }

    // Everything else as row-major runs of changed cells.
    let mut span: Option<(usize, usize)> = None; // [start, end) in cell index
    for y in 0..rows {
        let row = new.row(y as u16);
        if done[y] || right[y] {
            continue;
        }
        for (x, cell) in row.iter().enumerate() {
            if base[y].cell(x, &blank) == cell {
                continue;
            }
            let i = y * cols + x;
            span = match span {
                Some((s, e)) if i - e <= MERGE_GAP => Some((s, i + 1)),
                Some((s, e)) => {
                    ops.push(cells_op(new, s, e));
                    Some((i, i + 1))
                }
                None => Some((i, i + 1)),
            };
        }
    }
    if let Some((s, e)) = span {
        ops.push(cells_op(new, s, e));
    }

    if old.cursor != new.cursor {
        ops.push(DiffOp::Cursor(new.cursor));
    }
    ops
}

fn cells_op(new: &Grid, start: usize, end: usize) -> DiffOp {
    let cols = usize::from(new.cols);
    DiffOp::Cells {
        x: (start % cols) as u16,
        y: (start / cols) as u16,
        cells: new.cells[start..end].to_vec(),
    }
}

fn is_uniform(row: &[Cell]) -> bool {
    row.iter().all(|c| *c == row[0])
}

/// Mixes one word into a row fingerprint (rotate, xor, multiply): fast and
/// good enough, since a fingerprint match is always confirmed by comparing
/// the rows.
#[inline]
fn mix(h: u64, v: u64) -> u64 {
    (h.rotate_left(5) ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn color_word(c: Color) -> u64 {
    match c {
        Color::Default => 0,
        Color::Indexed(i) => 0x100_0000 | u64::from(i),
        Color::Rgb(r, g, b) => 0x200_0000 | u64::from(r) << 16 | u64::from(g) << 8 | u64::from(b),
    }
}

/// One fingerprint per row, from about three words per cell.
fn row_hashes(g: &Grid) -> Vec<u64> {
    (0..g.rows)
        .map(|y| {
            g.row(y).iter().fold(0u64, |mut h, c| {
                h = mix(h, color_word(c.fg) | color_word(c.bg) << 32);
                let text = c.text.as_bytes();
                h = mix(
                    h,
                    u64::from(c.attrs) | u64::from(c.width) << 16 | (text.len() as u64) << 24,
                );
                for chunk in text.chunks(8) {
                    let mut w = [0u8; 8];
                    w[..chunk.len()].copy_from_slice(chunk);
                    h = mix(h, u64::from_le_bytes(w));
                }
                h
            })
        })
        .collect()
}

/// The scroll that makes the most rows right, if any makes a row with
/// content right and gains more rows than it breaks.
///
/// For each shift `k` and direction, every maximal block of consecutive
/// rows where `new[y] == old[y ± k]` is a candidate region (the block plus
/// the `k` rows it vacates). Its gain is the rows in the block that were
/// wrong before, less the vacated rows that were right and will not equal
/// the fill. O(rows²) row-hash comparisons.
fn find_scroll(old: &Grid, new: &Grid, same: &[bool]) -> Option<Scroll> {
    let rows = same.len();
    let cols = usize::from(new.cols);
    let oh = row_hashes(old);
    let nh = row_hashes(new);
    let uniform: Vec<bool> = (0..rows).map(|y| is_uniform(new.row(y as u16))).collect();
    let eq = |ny: usize, oy: usize| nh[ny] == oh[oy] && new.row(ny as u16) == old.row(oy as u16);

    let mut best: Option<(isize, Scroll)> = None;
    for up in [true, false] {
        for k in 1..rows {
            // Candidate new rows y and their source old rows.
            let src = |y: usize| if up { y + k } else { y - k };
            let (lo, hi) = if up { (0, rows - k) } else { (k, rows) };
            let mut y = lo;
            while y < hi {
                if !eq(y, src(y)) {
                    y += 1;
                    continue;
                }
                let a = y;
                while y < hi && eq(y, src(y)) {
                    y += 1;
                }
                let b = y;
                let (top, bottom, vacated) = if up {
                    (a, b + k, b..b + k)
                } else {
                    (a - k, b, a - k..a)
                };
                let fill_y = if up { bottom - 1 } else { top };
                let fill = &new.cells[fill_y * cols + cols - 1];
                let fixed = (a..b).filter(|&r| !same[r]).count();
                let with_content = (a..b).any(|r| !same[r] && !uniform[r]);
                let broken = vacated
                    .filter(|&r| same[r] && !(uniform[r] && new.row(r as u16)[0] == *fill))
                    .count();
                let gain = fixed as isize - broken as isize;
                if with_content && gain > 0 && best.as_ref().is_none_or(|(g, _)| gain > *g) {
                    best = Some((gain, Scroll { up, top, bottom, k }));
                }
            }
        }
    }
    best.map(|(_, s)| s)
}
