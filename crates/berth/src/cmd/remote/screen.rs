//! A grid as the terminal shows it: ANSI that paints it, and its text for
//! scripts (`--until`, `--dump text`).

use berth_wire::remote::{self, Color, Grid};

/// The screen as plain text (rows joined by newlines, trailing blanks cut).
pub(super) fn grid_text(g: &Grid) -> String {
    (0..g.rows)
        .map(|y| {
            let line: String = g.row(y).iter().map(|c| c.text.as_str()).collect();
            line.trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn sgr_color(out: &mut String, c: Color, fg: bool) {
    sgr_color_of(out, c, if fg { 38 } else { 48 });
}

/// `;`-separated colour parameter for `base` 38 (fg) or 48 (bg); 58 (the
/// underline colour) in its colon form, which a terminal that does not
/// know it skips whole.
fn sgr_color_of(out: &mut String, c: Color, base: u8) {
    use std::fmt::Write as _;
    if base == 58 {
        let _ = match c {
            Color::Default => write!(out, ";59"),
            Color::Indexed(i) => write!(out, ";58:5:{i}"),
            Color::Rgb(r, g, b) => write!(out, ";58:2::{r}:{g}:{b}"),
        };
        return;
    }
    match c {
        Color::Default => {
            let _ = write!(out, ";{}", base + 1);
        }
        Color::Indexed(i) => {
            let _ = write!(out, ";{base};5;{i}");
        }
        Color::Rgb(r, g, b) => {
            let _ = write!(out, ";{base};2;{r};{g};{b}");
        }
    }
}

/// ANSI that paints `g` over the whole terminal.
pub(super) fn render(g: &Grid) -> String {
    use remote::attr;
    let mut out = String::from("\x1b[?25l\x1b[H");
    for y in 0..g.rows {
        out.push_str(&format!("\x1b[{};1H", y + 1));
        let mut style = None;
        for c in g.row(y) {
            if c.width == 0 {
                continue;
            }
            let s = (c.fg, c.bg, c.attrs, c.underline_color);
            if style != Some(s) {
                style = Some(s);
                out.push_str("\x1b[0");
                for (bit, code) in [
                    (attr::BOLD, 1),
                    (attr::DIM, 2),
                    (attr::ITALIC, 3),
                    (attr::BLINK, 5),
                    (attr::INVERSE, 7),
                    (attr::HIDDEN, 8),
                    (attr::STRIKE, 9),
                ] {
                    if c.attrs & bit != 0 {
                        out.push_str(&format!(";{code}"));
                    }
                }
                match attr::underline_style(c.attrs) {
                    0 => {}
                    1 => out.push_str(";4"),
                    n => out.push_str(&format!(";4:{n}")),
                }
                sgr_color(&mut out, c.fg, true);
                sgr_color(&mut out, c.bg, false);
                if c.underline_color != Color::Default {
                    sgr_color_of(&mut out, c.underline_color, 58);
                }
                out.push('m');
            }
            out.push_str(if c.text.is_empty() { " " } else { &c.text });
        }
    }
    out.push_str(&format!(
        "\x1b[0m\x1b[{};{}H{}",
        g.cursor.y + 1,
        g.cursor.x + 1,
        if g.cursor.visible { "\x1b[?25h" } else { "" }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_paints_text_styles_and_the_cursor() {
        let mut g = Grid::new(3, 1);
        g.cells[0].text = "a".into();
        g.cells[0].attrs = remote::attr::BOLD;
        g.cells[1].fg = Color::Indexed(2);
        let s = render(&g);
        assert!(s.contains("\x1b[0;1;39;49ma"), "{s:?}");
        assert!(s.contains("\x1b[0;38;5;2;49m"), "{s:?}");
        assert!(s.ends_with("\x1b[1;1H\x1b[?25h"));
        g.cells[2].attrs = remote::attr::with_underline_style(0, 3);
        g.cells[2].underline_color = Color::Rgb(1, 2, 3);
        let s = render(&g);
        assert!(s.contains("\x1b[0;4:3;39;49;58:2::1:2:3m"), "{s:?}");
        assert_eq!(grid_text(&g), "a");
    }
}
