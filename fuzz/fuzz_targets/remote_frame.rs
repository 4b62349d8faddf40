//! Any message through the remote protocol v3 decoder: no panic, allocation
//! bounded by the caps, canonical re-encoding, and grid ops that either
//! apply or are refused without breaking the grid.
#![no_main]

use berth_wire::remote::{apply, diff, split, Frame, Grid, GridEncoding};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = split(data);
    let frame = match Frame::decode(data) {
        Ok(f) => f,
        Err(e) => {
            let _ = (e.reason().code(), e.to_string());
            return;
        }
    };
    // What was decoded encodes to bytes that decode to the same frame.
    let again = frame.encode();
    assert_eq!(Frame::decode(&again).as_ref(), Ok(&frame));
    // For a receiver that did not ask for underline colours (3.0): a frame
    // that decodes, holds none, and is the same bytes when there were none.
    let old = frame.encode_for(GridEncoding::V3_0);
    let back = Frame::decode(&old).expect("a 3.0 encoding decodes");
    assert!(!back.differs_for(GridEncoding::V3_0));
    assert_eq!(frame.differs_for(GridEncoding::V3_0), old != again);

    match &frame {
        Frame::GridDiff(d) => {
            let mut g = Grid::new(8, 4);
            let _ = apply(&mut g, &d.ops);
            assert!(g.is_consistent());
        }
        Frame::GridSnapshot(s) => {
            // Diffs to and from a small blank grid rebuild both ends.
            let blank = Grid::new(3, 2);
            let mut g = blank.clone();
            apply(&mut g, &diff(&blank, &s.grid)).expect("diff applies");
            assert_eq!(g, s.grid);
            apply(&mut g, &diff(&s.grid, &blank)).expect("diff applies");
            assert_eq!(g, blank);
        }
        _ => {}
    }
});
