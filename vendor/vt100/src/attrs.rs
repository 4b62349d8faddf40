use crate::term::BufWrite as _;

/// Represents a foreground or background color for cells.
#[derive(Eq, PartialEq, Debug, Copy, Clone, Default)]
pub enum Color {
    /// The default terminal color.
    #[default]
    Default,

    /// An indexed terminal color.
    Idx(u8),

    /// An RGB terminal color. The parameters are (red, green, blue).
    Rgb(u8, u8, u8),
}

/// The style of a cell's underline (berth: `SGR 4:N`, kitty/tmux/VTE).
///
/// `SGR 4` is [`Single`](Self::Single), `SGR 21` is
/// [`Double`](Self::Double) (as tmux and xterm read it), `SGR 24` and
/// `SGR 4:0` are [`None`](Self::None). The discriminant is the `N` of
/// `SGR 4:N`.
#[derive(Eq, PartialEq, Debug, Copy, Clone, Default)]
pub enum UnderlineStyle {
    /// Not underlined.
    #[default]
    None = 0,
    /// A single straight line (`SGR 4`, `SGR 4:1`).
    Single = 1,
    /// Two lines (`SGR 4:2`, `SGR 21`).
    Double = 2,
    /// A wavy line (`SGR 4:3`).
    Curly = 3,
    /// A dotted line (`SGR 4:4`).
    Dotted = 4,
    /// A dashed line (`SGR 4:5`).
    Dashed = 5,
}

impl UnderlineStyle {
    /// The style of `SGR 4:n`, or `None` for an `n` no terminal defines
    /// (tmux ignores those, and so does the parser).
    #[must_use]
    pub fn from_number(n: u16) -> Option<Self> {
        Some(match n {
            0 => Self::None,
            1 => Self::Single,
            2 => Self::Double,
            3 => Self::Curly,
            4 => Self::Dotted,
            5 => Self::Dashed,
            _ => return None,
        })
    }

    /// The `N` of `SGR 4:N`.
    #[must_use]
    pub fn number(self) -> u8 {
        self as u8
    }
}

const TEXT_MODE_INTENSITY: u8 = 0b0000_0011;
const TEXT_MODE_BOLD: u8 = 0b0000_0001;
const TEXT_MODE_DIM: u8 = 0b0000_0010;
const TEXT_MODE_ITALIC: u8 = 0b0000_0100;
// berth: bit 3 held the single underline flag; the underline is now the
// style number in bits 5-7 (0 = none), so bit 3 is unused.
const TEXT_MODE_INVERSE: u8 = 0b0001_0000;
const TEXT_MODE_UNDERLINE_STYLE: u8 = 0b1110_0000;
const TEXT_MODE_UNDERLINE_SHIFT: u8 = 5;

#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
pub struct Attrs {
    pub fgcolor: Color,
    pub bgcolor: Color,
    /// berth: the underline colour (`SGR 58`, reset by `SGR 59`).
    pub ulcolor: Color,
    pub mode: u8,
    /// berth: always zero; keeps `Attrs` at 16 bytes. At 13, copying the
    /// drawing attributes into each printed cell compiled to overlapping
    /// 8-byte moves that defeat store-to-load forwarding: full-screen
    /// redraws parsed 10% slower (vendor/vt100/BERTH-PATCH.md).
    _pad: [u8; 3],
}

impl Attrs {
    pub fn bold(&self) -> bool {
        self.mode & TEXT_MODE_BOLD != 0
    }

    pub fn dim(&self) -> bool {
        self.mode & TEXT_MODE_DIM != 0
    }

    fn intensity(&self) -> u8 {
        self.mode & TEXT_MODE_INTENSITY
    }

    pub fn set_bold(&mut self) {
        self.mode &= !TEXT_MODE_INTENSITY;
        self.mode |= TEXT_MODE_BOLD;
    }

    pub fn set_dim(&mut self) {
        self.mode &= !TEXT_MODE_INTENSITY;
        self.mode |= TEXT_MODE_DIM;
    }

    pub fn set_normal_intensity(&mut self) {
        self.mode &= !TEXT_MODE_INTENSITY;
    }

    pub fn italic(&self) -> bool {
        self.mode & TEXT_MODE_ITALIC != 0
    }

    pub fn set_italic(&mut self, italic: bool) {
        if italic {
            self.mode |= TEXT_MODE_ITALIC;
        } else {
            self.mode &= !TEXT_MODE_ITALIC;
        }
    }

    pub fn underline(&self) -> bool {
        self.mode & TEXT_MODE_UNDERLINE_STYLE != 0
    }

    pub fn underline_style(&self) -> UnderlineStyle {
        match (self.mode & TEXT_MODE_UNDERLINE_STYLE) >> TEXT_MODE_UNDERLINE_SHIFT
        {
            0 => UnderlineStyle::None,
            1 => UnderlineStyle::Single,
            2 => UnderlineStyle::Double,
            3 => UnderlineStyle::Curly,
            4 => UnderlineStyle::Dotted,
            _ => UnderlineStyle::Dashed,
        }
    }

    pub fn set_underline_style(&mut self, style: UnderlineStyle) {
        self.mode &= !TEXT_MODE_UNDERLINE_STYLE;
        self.mode |= style.number() << TEXT_MODE_UNDERLINE_SHIFT;
    }

    pub fn inverse(&self) -> bool {
        self.mode & TEXT_MODE_INVERSE != 0
    }

    pub fn set_inverse(&mut self, inverse: bool) {
        if inverse {
            self.mode |= TEXT_MODE_INVERSE;
        } else {
            self.mode &= !TEXT_MODE_INVERSE;
        }
    }

    pub fn write_escape_code_diff(
        &self,
        contents: &mut Vec<u8>,
        other: &Self,
    ) {
        if self != other && self == &Self::default() {
            crate::term::ClearAttrs.write_buf(contents);
            return;
        }

        let attrs = crate::term::Attrs::default();

        let attrs = if self.fgcolor == other.fgcolor {
            attrs
        } else {
            attrs.fgcolor(self.fgcolor)
        };
        let attrs = if self.bgcolor == other.bgcolor {
            attrs
        } else {
            attrs.bgcolor(self.bgcolor)
        };
        let attrs = if self.intensity() == other.intensity() {
            attrs
        } else {
            attrs.intensity(match self.intensity() {
                0 => crate::term::Intensity::Normal,
                TEXT_MODE_BOLD => crate::term::Intensity::Bold,
                TEXT_MODE_DIM => crate::term::Intensity::Dim,
                _ => unreachable!(),
            })
        };
        let attrs = if self.italic() == other.italic() {
            attrs
        } else {
            attrs.italic(self.italic())
        };
        let attrs = if self.underline_style() == other.underline_style() {
            attrs
        } else {
            attrs.underline_style(self.underline_style())
        };
        let attrs = if self.ulcolor == other.ulcolor {
            attrs
        } else {
            attrs.ulcolor(self.ulcolor)
        };
        let attrs = if self.inverse() == other.inverse() {
            attrs
        } else {
            attrs.inverse(self.inverse())
        };

        attrs.write_buf(contents);
    }
}
