//! Translation of the session engine's vt100 screen into the remote
//! protocol's [`Grid`]: the only place that knows both models.

use berth_wire::remote::{
    attr, Cell, Color, Cursor, Grid, MAX_GRID_CELLS, MAX_GRID_COLS, MAX_GRID_ROWS,
};

fn color(c: vt100::Color) -> Color {
    match c {
        vt100::Color::Default => Color::Default,
        vt100::Color::Idx(i) => Color::Indexed(i),
        vt100::Color::Rgb(r, g, b) => Color::Rgb(r, g, b),
    }
}

fn cell(c: &vt100::Cell) -> Cell {
    let (text, width) = if c.is_wide_continuation() {
        (String::new(), 0)
    } else if !c.has_contents() {
        (String::from(" "), 1)
    } else {
        (c.contents().to_owned(), if c.is_wide() { 2 } else { 1 })
    };
    let mut attrs = 0;
    for (on, bit) in [
        (c.bold(), attr::BOLD),
        (c.dim(), attr::DIM),
        (c.italic(), attr::ITALIC),
        (c.inverse(), attr::INVERSE),
    ] {
        if on {
            attrs |= bit;
        }
    }
    // The style number is the `N` of `SGR 4:N` on both sides; any style
    // also sets UNDERLINE, for receivers of protocol 3.0.
    let attrs = attr::with_underline_style(attrs, c.underline_style().number());
    Cell {
        text,
        width,
        fg: color(c.fgcolor()),
        bg: color(c.bgcolor()),
        attrs,
        underline_color: color(c.underline_color()),
    }
}

/// The visible screen as a grid (clipped to the protocol's size caps).
///
/// An empty vt100 cell becomes a blank (`" "`, width 1), so a cleared cell
/// and a space typed by a program compare equal, as they look the same.
pub fn screen_to_grid(screen: &vt100::Screen) -> Grid {
    let (rows, cols) = screen.size();
    let cols = cols.clamp(1, MAX_GRID_COLS);
    // Also within the cell cap, which a 1024 x 1024 terminal would pass.
    let max_rows = (MAX_GRID_CELLS / usize::from(cols)).min(usize::from(MAX_GRID_ROWS)) as u16;
    let rows = rows.clamp(1, max_rows);
    let mut cells = Vec::with_capacity(usize::from(rows) * usize::from(cols));
    for y in 0..rows {
        for x in 0..cols {
            cells.push(screen.cell(y, x).map(cell).unwrap_or_default());
        }
    }
    let (cy, cx) = screen.cursor_position();
    Grid {
        cols,
        rows,
        cursor: Cursor {
            x: cx,
            y: cy,
            visible: !screen.hide_cursor(),
        },
        cells,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sgr_colour_form_reaches_the_grid() {
        use berth_engine::sessions::{OutputStream, ScreenState};
        let out = OutputStream::new(1 << 16);
        let s = ScreenState::new(out.clone(), 2, 8);
        out.append(
            b"\x1b[38:2::10:20:30mA\x1b[38:2:0:1:2:3mB\x1b[48:2::4:5:6mC\x1b[0;38:5:200mD\x1b[4:3;58:2::1:1:1mE",
        );
        let g = s.with_screen(|screen, _| screen_to_grid(screen));
        assert_eq!(g.cells[0].fg, Color::Rgb(10, 20, 30));
        assert_eq!(g.cells[1].fg, Color::Rgb(1, 2, 3));
        assert_eq!(g.cells[2].bg, Color::Rgb(4, 5, 6));
        assert_eq!(g.cells[3].fg, Color::Indexed(200));
        assert_eq!(g.cells[3].bg, Color::Default);
        assert_eq!(g.cells[4].fg, Color::Indexed(200));
        assert_ne!(g.cells[4].attrs & attr::UNDERLINE, 0);
        assert_eq!(attr::underline_style(g.cells[4].attrs), 3);
        assert_eq!(g.cells[4].underline_color, Color::Rgb(1, 1, 1));
    }

    /// Every underline form a program may write reaches the grid: the
    /// styles `4:0`-`4:5`, `4`, `21`, `24`, the underline colour in the
    /// colon and `;` forms with and without a colour space, `59` and
    /// `SGR 0` resetting it.
    #[test]
    fn every_underline_form_reaches_the_grid() {
        use berth_engine::sessions::{OutputStream, ScreenState};
        let cases: &[(&str, u8, Color)] = &[
            ("\x1b[4:0m", 0, Color::Default),
            ("\x1b[4:1m", 1, Color::Default),
            ("\x1b[4:2m", 2, Color::Default),
            ("\x1b[4:3m", 3, Color::Default),
            ("\x1b[4:4m", 4, Color::Default),
            ("\x1b[4:5m", 5, Color::Default),
            ("\x1b[4m", 1, Color::Default),
            ("\x1b[21m", 2, Color::Default),
            ("\x1b[4:3;24m", 0, Color::Default),
            ("\x1b[4:4;58:2::1:2:3m", 4, Color::Rgb(1, 2, 3)),
            ("\x1b[4;58:2:0:4:5:6m", 1, Color::Rgb(4, 5, 6)),
            ("\x1b[4;58:2:7:8:9m", 1, Color::Rgb(7, 8, 9)),
            ("\x1b[4;58;2;10;11;12m", 1, Color::Rgb(10, 11, 12)),
            ("\x1b[4;58:5:200m", 1, Color::Indexed(200)),
            ("\x1b[4;58;5;9m", 1, Color::Indexed(9)),
            ("\x1b[58;5;9m", 0, Color::Indexed(9)),
            ("\x1b[4;58;5;9;59m", 1, Color::Default),
            ("\x1b[4:2;58;5;9m\x1b[0m", 0, Color::Default),
        ];
        let out = OutputStream::new(1 << 16);
        let s = ScreenState::new(out.clone(), 1, cases.len() as u16);
        for (sgr, _, _) in cases {
            out.append(format!("\x1b[0m{sgr}x").as_bytes());
        }
        let g = s.with_screen(|screen, _| screen_to_grid(screen));
        for (i, (sgr, style, colour)) in cases.iter().enumerate() {
            let c = &g.cells[i];
            assert_eq!(attr::underline_style(c.attrs), *style, "{sgr:?}");
            assert_eq!(c.attrs & attr::UNDERLINE != 0, *style != 0, "{sgr:?}");
            assert_eq!(c.underline_color, *colour, "{sgr:?}");
        }
    }

    #[test]
    fn colours_attributes_and_wide_characters_translate() {
        let mut p = vt100::Parser::new(2, 6, 0);
        p.process("\x1b[1;31ma\x1b[0m中\x1b[48;2;1;2;3mb\x1b[?25l".as_bytes());
        let g = screen_to_grid(p.screen());
        assert_eq!((g.cols, g.rows, g.cells.len()), (6, 2, 12));
        assert_eq!(g.cells[0].text, "a");
        assert_eq!(g.cells[0].fg, Color::Indexed(1));
        assert_eq!(g.cells[0].attrs, attr::BOLD);
        assert_eq!((g.cells[1].text.as_str(), g.cells[1].width), ("中", 2));
        assert_eq!((g.cells[2].text.as_str(), g.cells[2].width), ("", 0));
        assert_eq!(g.cells[3].bg, Color::Rgb(1, 2, 3));
        assert_eq!(g.cells[4], Cell::default());
        assert_eq!((g.cursor.x, g.cursor.y, g.cursor.visible), (4, 0, false));
    }

    #[test]
    fn a_huge_terminal_is_clipped_to_the_protocol_caps() {
        let p = vt100::Parser::new(2000, 2000, 0);
        let g = screen_to_grid(p.screen());
        assert_eq!((g.cols, g.rows), (1024, 256));
        assert!(g.area() <= MAX_GRID_CELLS && g.is_consistent());
    }
}
