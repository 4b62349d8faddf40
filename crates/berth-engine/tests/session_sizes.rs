//! The size follows the clients that remain (issue 18, item 5): the latest
//! client's size wins, and a leaving client gives the PTY back to the
//! latest remaining one.

use berth_engine::sessions::{
    AttachOptions, ClientInfo, PtySpawn, Replay, SessionConfig, Sessions, StreamId,
};
use berth_engine::store::Store;
use std::sync::Arc;

fn opts(read_only: bool) -> AttachOptions {
    AttachOptions {
        stream: StreamId::Output,
        steal: false,
        read_only,
        replay: Replay::Screen,
        client: ClientInfo {
            is_tty: true,
            ..Default::default()
        },
        label: "test".into(),
    }
}

#[tokio::test]
async fn a_leaving_client_gives_the_size_back_to_the_remaining_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("berth.db"), 0).unwrap());
    let e = Arc::new(Sessions::open(store, SessionConfig::default()).unwrap());
    let s = e
        .spawn_pty(&PtySpawn {
            argv: vec!["sleep".into(), "60".into()],
            ..Default::default()
        })
        .unwrap();
    let size = || {
        let i = s.info();
        (i.size.rows, i.size.cols)
    };
    let desk = e.attach(s.id(), opts(false)).unwrap();
    desk.resize(30, 100).unwrap();
    assert_eq!(size(), (30, 100));
    // A phone joins through the relay (a viewer) with a small screen.
    let phone = e.attach(s.id(), opts(true)).unwrap();
    phone.resize(12, 50).unwrap();
    assert_eq!(size(), (12, 50));
    assert_eq!(s.screen().unwrap().snapshot().size, (12, 50));
    drop(phone);
    assert_eq!(size(), (30, 100), "the desk terminal's size is back");
    assert_eq!(s.screen().unwrap().snapshot().size, (30, 100));
    // The desk resizes its window, then leaves: nobody claims, size stays.
    desk.resize(40, 120).unwrap();
    drop(desk);
    assert_eq!(size(), (40, 120));
    e.terminate(s.id(), None).unwrap();
}
