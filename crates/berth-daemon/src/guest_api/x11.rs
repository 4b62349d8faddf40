//! Window actions on an X display for the apps endpoints, through the
//! window manager's standard hints (EWMH) when one runs, else directly.
//!
//! - activate: a `_NET_ACTIVE_WINDOW` client message to the root (an EWMH
//!   window manager acts on it); without one, the window is raised and
//!   given the input focus.
//! - frontmost: the root's `_NET_ACTIVE_WINDOW`; without a window manager,
//!   the window with the input focus.
//! - close: `_NET_CLOSE_WINDOW` to the root; without a window manager, the
//!   ICCCM `WM_DELETE_WINDOW` message to each window that takes it.
//!
//! An app's windows are its top-level windows whose `_NET_WM_PID` is one of
//! its processes or whose `WM_CLASS` names its program. Every call is
//! blocking (run it off the async runtime) and opens its own connection to
//! `$DISPLAY`.

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    Atom, AtomEnum, ClientMessageEvent, ConfigureWindowAux, ConnectionExt as _, EventMask,
    InputFocus, MapState, StackMode, Window,
};
use x11rb::rust_connection::RustConnection;
use x11rb::CURRENT_TIME;

/// An open display: the connection and its root window.
pub struct Display {
    conn: RustConnection,
    root: Window,
}

/// What identifies a window's owner.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowOwner {
    /// The window.
    pub window: u32,
    /// `_NET_WM_PID`, when set.
    pub pid: Option<u32>,
    /// `WM_CLASS` instance and class, when set.
    pub class: Option<(String, String)>,
}

type Res<T> = Result<T, String>;

fn err(e: impl std::fmt::Display) -> String {
    format!("X11: {e}")
}

impl Display {
    /// Connects to `$DISPLAY`.
    pub fn open() -> Res<Self> {
        let (conn, screen) =
            x11rb::connect(None).map_err(|e| format!("cannot connect to the X display: {e}"))?;
        let root = conn.setup().roots[screen].root;
        Ok(Self { conn, root })
    }

    fn atom(&self, name: &str) -> Res<Atom> {
        Ok(self
            .conn
            .intern_atom(false, name.as_bytes())
            .map_err(err)?
            .reply()
            .map_err(err)?
            .atom)
    }

    fn prop32(&self, win: Window, name: &str) -> Res<Vec<u32>> {
        let atom = self.atom(name)?;
        let r = self
            .conn
            .get_property(false, win, atom, AtomEnum::ANY, 0, 4096)
            .map_err(err)?
            .reply()
            .map_err(err)?;
        Ok(r.value32().map(|v| v.collect()).unwrap_or_default())
    }

    fn class(&self, win: Window) -> Res<Option<(String, String)>> {
        let r = self
            .conn
            .get_property(false, win, AtomEnum::WM_CLASS, AtomEnum::STRING, 0, 1024)
            .map_err(err)?
            .reply()
            .map_err(err)?;
        let mut parts = r
            .value
            .split(|b| *b == 0)
            .map(|p| String::from_utf8_lossy(p).into_owned());
        Ok(match (parts.next(), parts.next()) {
            (Some(i), Some(c)) if !i.is_empty() || !c.is_empty() => Some((i, c)),
            _ => None,
        })
    }

    /// True when an EWMH window manager announces itself on the root.
    pub fn has_wm(&self) -> Res<bool> {
        Ok(self
            .prop32(self.root, "_NET_SUPPORTING_WM_CHECK")?
            .first()
            .is_some_and(|w| *w != 0))
    }

    fn owner(&self, window: Window) -> Res<WindowOwner> {
        Ok(WindowOwner {
            window,
            pid: self.prop32(window, "_NET_WM_PID")?.first().copied(),
            class: self.class(window)?,
        })
    }

    /// Top-level client windows: the window manager's `_NET_CLIENT_LIST`,
    /// else the root's mapped children (and theirs, one level down, for
    /// reparenting window managers without EWMH).
    pub fn clients(&self) -> Res<Vec<WindowOwner>> {
        let listed = self.prop32(self.root, "_NET_CLIENT_LIST")?;
        let mut wins = listed;
        if wins.is_empty() {
            let top = self
                .conn
                .query_tree(self.root)
                .map_err(err)?
                .reply()
                .map_err(err)?;
            for w in top.children {
                let mapped = self
                    .conn
                    .get_window_attributes(w)
                    .map_err(err)?
                    .reply()
                    .map(|a| a.map_state == MapState::VIEWABLE && !a.override_redirect)
                    .unwrap_or(false);
                if !mapped {
                    continue;
                }
                wins.push(w);
                if let Ok(sub) = self.conn.query_tree(w).map_err(err)?.reply() {
                    wins.extend(sub.children);
                }
            }
        }
        wins.into_iter().map(|w| self.owner(w)).collect()
    }

    /// The frontmost window's owner, walking up from a focused child to
    /// the first window that says who owns it; `None` when no window is
    /// active or focused.
    pub fn frontmost(&self) -> Res<Option<WindowOwner>> {
        let mut win = if self.has_wm()? {
            self.prop32(self.root, "_NET_ACTIVE_WINDOW")?
                .first()
                .copied()
                .unwrap_or(0)
        } else {
            self.conn
                .get_input_focus()
                .map_err(err)?
                .reply()
                .map_err(err)?
                .focus
        };
        // 0 is None and 1 PointerRoot: no window has the focus.
        while win > 1 && win != self.root {
            let o = self.owner(win)?;
            if o.pid.is_some() || o.class.is_some() {
                return Ok(Some(o));
            }
            win = self
                .conn
                .query_tree(win)
                .map_err(err)?
                .reply()
                .map_err(err)?
                .parent;
        }
        Ok(None)
    }

    /// Brings `win` to the front (see the module doc).
    pub fn activate(&self, win: Window) -> Res<&'static str> {
        let how = if self.has_wm()? {
            let ev = ClientMessageEvent::new(
                32,
                win,
                self.atom("_NET_ACTIVE_WINDOW")?,
                [2, CURRENT_TIME, 0, 0, 0],
            );
            self.conn
                .send_event(
                    false,
                    self.root,
                    EventMask::SUBSTRUCTURE_REDIRECT | EventMask::SUBSTRUCTURE_NOTIFY,
                    ev,
                )
                .map_err(err)?;
            "_NET_ACTIVE_WINDOW"
        } else {
            self.conn
                .configure_window(win, &ConfigureWindowAux::new().stack_mode(StackMode::ABOVE))
                .map_err(err)?;
            self.conn
                .set_input_focus(InputFocus::PARENT, win, CURRENT_TIME)
                .map_err(err)?;
            "raise and focus (no EWMH window manager)"
        };
        self.round_trip()?;
        Ok(how)
    }

    /// Asks `win` to close; false when it takes no close request (no
    /// window manager and no `WM_DELETE_WINDOW` protocol).
    pub fn close(&self, win: Window) -> Res<bool> {
        if self.has_wm()? {
            let ev = ClientMessageEvent::new(
                32,
                win,
                self.atom("_NET_CLOSE_WINDOW")?,
                [CURRENT_TIME, 2, 0, 0, 0],
            );
            self.conn
                .send_event(
                    false,
                    self.root,
                    EventMask::SUBSTRUCTURE_REDIRECT | EventMask::SUBSTRUCTURE_NOTIFY,
                    ev,
                )
                .map_err(err)?;
        } else {
            let delete = self.atom("WM_DELETE_WINDOW")?;
            if !self.prop32(win, "WM_PROTOCOLS")?.contains(&delete) {
                return Ok(false);
            }
            let ev = ClientMessageEvent::new(
                32,
                win,
                self.atom("WM_PROTOCOLS")?,
                [delete, CURRENT_TIME, 0, 0, 0],
            );
            self.conn
                .send_event(false, win, EventMask::NO_EVENT, ev)
                .map_err(err)?;
        }
        self.round_trip()?;
        Ok(true)
    }

    /// Waits until the server has handled everything sent so far.
    fn round_trip(&self) -> Res<()> {
        self.conn.flush().map_err(err)?;
        self.conn
            .get_input_focus()
            .map_err(err)?
            .reply()
            .map_err(err)?;
        Ok(())
    }
}

/// True when `o` belongs to the app whose processes are `pids` and whose
/// program is `program`.
pub fn owned_by(o: &WindowOwner, pids: &[u32], program: &str) -> bool {
    o.pid.is_some_and(|p| pids.contains(&p))
        || o.class.as_ref().is_some_and(|(i, c)| {
            i.eq_ignore_ascii_case(program) || c.eq_ignore_ascii_case(program)
        })
}
