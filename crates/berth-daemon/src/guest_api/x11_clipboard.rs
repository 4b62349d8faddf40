//! The X11 `CLIPBOARD` selection as text, for the clipboard endpoints
//! when the daemon has an X display.
//!
//! Setting it starts a thread that owns the selection with its own
//! invisible window and answers other clients' requests (`TARGETS`,
//! `UTF8_STRING`, `STRING`, `TEXT` and the given MIME type) until another
//! client takes the selection. Reading converts the selection to
//! `UTF8_STRING` on a window of our own. Transfers are single-request:
//! text larger than the server's largest request is refused (no `INCR`).

use std::time::{Duration, Instant};
use x11rb::connection::{Connection, RequestConnection as _};
use x11rb::protocol::xproto::{
    Atom, AtomEnum, ConnectionExt as _, CreateWindowAux, EventMask, PropMode, SelectionNotifyEvent,
    SelectionRequestEvent, Window, WindowClass, SELECTION_NOTIFY_EVENT,
};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;
use x11rb::{COPY_DEPTH_FROM_PARENT, COPY_FROM_PARENT, CURRENT_TIME, NONE};

type Res<T> = Result<T, String>;

fn err(e: impl std::fmt::Display) -> String {
    format!("X11 clipboard: {e}")
}

/// How long a read waits for the selection's owner to answer.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

struct Conn {
    conn: RustConnection,
    win: Window,
}

fn open() -> Res<Conn> {
    let (conn, screen) =
        x11rb::connect(None).map_err(|e| format!("cannot connect to the X display: {e}"))?;
    let root = conn.setup().roots[screen].root;
    let win = conn.generate_id().map_err(err)?;
    conn.create_window(
        COPY_DEPTH_FROM_PARENT,
        win,
        root,
        0,
        0,
        1,
        1,
        0,
        WindowClass::INPUT_OUTPUT,
        COPY_FROM_PARENT,
        &CreateWindowAux::new().event_mask(EventMask::PROPERTY_CHANGE),
    )
    .map_err(err)?;
    Ok(Conn { conn, win })
}

fn atom(c: &RustConnection, name: &str) -> Res<Atom> {
    Ok(c.intern_atom(false, name.as_bytes())
        .map_err(err)?
        .reply()
        .map_err(err)?
        .atom)
}

/// Reads the clipboard as UTF-8 text; empty when no client owns it.
pub fn get() -> Res<String> {
    let Conn { conn, win } = open()?;
    let clipboard = atom(&conn, "CLIPBOARD")?;
    let owner = conn
        .get_selection_owner(clipboard)
        .map_err(err)?
        .reply()
        .map_err(err)?
        .owner;
    if owner == NONE {
        return Ok(String::new());
    }
    let utf8 = atom(&conn, "UTF8_STRING")?;
    let prop = atom(&conn, "BERTH_CLIPBOARD")?;
    conn.convert_selection(win, clipboard, utf8, prop, CURRENT_TIME)
        .map_err(err)?;
    conn.flush().map_err(err)?;
    let deadline = Instant::now() + READ_TIMEOUT;
    loop {
        match conn.poll_for_event().map_err(err)? {
            Some(Event::SelectionNotify(n)) if n.requestor == win => {
                if n.property == NONE {
                    return Err("the clipboard's owner cannot give it as text".into());
                }
                break;
            }
            Some(_) => {}
            None if Instant::now() >= deadline => {
                return Err(format!(
                    "the clipboard's owner did not answer within {} ms",
                    READ_TIMEOUT.as_millis()
                ))
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    let r = conn
        .get_property(true, win, prop, AtomEnum::ANY, 0, u32::MAX / 4)
        .map_err(err)?
        .reply()
        .map_err(err)?;
    if r.type_ == atom(&conn, "INCR")? {
        return Err(
            "the clipboard's owner sends it incrementally (INCR), which berth does not read".into(),
        );
    }
    Ok(String::from_utf8_lossy(&r.value).into_owned())
}

/// Takes the clipboard with `text`, served by a thread until another
/// client takes it.
pub fn set(text: String, mime: &str) -> Res<()> {
    let Conn { conn, win } = open()?;
    // Room for the request header of ChangeProperty.
    if text.len() + 64 > conn.maximum_request_bytes() {
        return Err(format!(
            "{} bytes is more than this X server takes in one request ({} bytes)",
            text.len(),
            conn.maximum_request_bytes()
        ));
    }
    let clipboard = atom(&conn, "CLIPBOARD")?;
    let targets = [
        atom(&conn, "TARGETS")?,
        atom(&conn, "UTF8_STRING")?,
        AtomEnum::STRING.into(),
        atom(&conn, "TEXT")?,
        atom(&conn, mime)?,
        atom(&conn, "text/plain")?,
    ];
    conn.set_selection_owner(win, clipboard, CURRENT_TIME)
        .map_err(err)?;
    let owner = conn
        .get_selection_owner(clipboard)
        .map_err(err)?
        .reply()
        .map_err(err)?
        .owner;
    if owner != win {
        return Err("another client kept the clipboard".into());
    }
    std::thread::Builder::new()
        .name("x11-clipboard".into())
        .spawn(move || serve(conn, clipboard, targets, text))
        .map_err(err)?;
    Ok(())
}

fn serve(conn: RustConnection, clipboard: Atom, targets: [Atom; 6], text: String) {
    while let Ok(ev) = conn.wait_for_event() {
        match ev {
            Event::SelectionRequest(req) if req.selection == clipboard => {
                let _ = answer(&conn, &req, &targets, &text);
            }
            Event::SelectionClear(c) if c.selection == clipboard => return,
            _ => {}
        }
    }
}

fn answer(
    conn: &RustConnection,
    req: &SelectionRequestEvent,
    targets: &[Atom; 6],
    text: &str,
) -> Res<()> {
    // Obsolete clients name no property: use the target, as ICCCM says.
    let prop = if req.property == NONE {
        req.target
    } else {
        req.property
    };
    let property = if req.target == targets[0] {
        conn.change_property32(
            PropMode::REPLACE,
            req.requestor,
            prop,
            AtomEnum::ATOM,
            targets,
        )
        .map_err(err)?;
        prop
    } else if targets[1..].contains(&req.target) {
        conn.change_property8(
            PropMode::REPLACE,
            req.requestor,
            prop,
            req.target,
            text.as_bytes(),
        )
        .map_err(err)?;
        prop
    } else {
        NONE
    };
    let ev = SelectionNotifyEvent {
        response_type: SELECTION_NOTIFY_EVENT,
        sequence: 0,
        time: req.time,
        requestor: req.requestor,
        selection: req.selection,
        target: req.target,
        property,
    };
    conn.send_event(false, req.requestor, EventMask::NO_EVENT, ev)
        .map_err(err)?;
    conn.flush().map_err(err)?;
    Ok(())
}
