//! Any byte stream, split anywhere, through the frame decoder and the
//! envelope decoders: no panic, no allocation beyond the frame limit.
#![no_main]

use berth_wire::daemon::{DaemonRequest, DaemonResponse, PipeStreamFrame, PtyInputFrame, PtyStreamFrame};
use berth_wire::envelope;
use berth_wire::frame::{FrameDecoder, MAX_FRAME_LEN};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map(|b| *b as usize + 1).unwrap_or(1);
    let mut dec = FrameDecoder::default();
    for chunk in data.chunks(split) {
        dec.push(chunk);
        loop {
            match dec.next_frame() {
                Ok(Some(body)) => {
                    assert!(body.len() <= MAX_FRAME_LEN);
                    if let Ok(req) = envelope::decode_request(&body) {
                        // Re-encoding what was decoded must round-trip. Compared
                        // as bytes: a NaN float field is not equal to itself.
                        let bytes = req.encode_to_vec();
                        let again = DaemonRequest::decode(&bytes[..]).unwrap();
                        assert_eq!(again.encode_to_vec(), bytes);
                        // The envelope checks every request goes through.
                        if let Some(ty) = envelope::request_type(&req) {
                            let _ = envelope::payload_field(ty);
                        }
                    }
                    let _ = DaemonResponse::decode(&body[..]);
                    let _ = PtyInputFrame::decode(&body[..]);
                    let _ = PtyStreamFrame::decode(&body[..]);
                    let _ = PipeStreamFrame::decode(&body[..]);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
