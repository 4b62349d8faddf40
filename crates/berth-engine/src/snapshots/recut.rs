//! Re-cutting a changed file from its previous chunk list, so a save
//! runs the content-defined chunker only over the changed regions.
//!
//! FastCDC decides each cut from the bytes after the previous cut and
//! the bytes left in the file, nothing else. So where the new file holds,
//! at a cut point, exactly the bytes of an old chunk (checked by BLAKE3,
//! cheaper than the chunker's gear hash) and enough bytes follow for the
//! chunker to have reached the same decision, the fresh cut would end at
//! the same place: that old chunk is reused without cutting. Where the
//! bytes differ, the chunker runs from there until one of its cuts lands
//! on an old chunk's start (at the same offset, or shifted by the
//! file's growth), and reuse resumes. The result is exactly the chunk
//! list a full cut gives (the test compares them), so digests do not
//! depend on what the previous save saw.

use super::model::ChunkRef;
use std::collections::HashMap;
use std::ops::Range;

/// One piece of a re-cut file: its byte range and, when its bytes are
/// those of an old chunk, that chunk's position in the old list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Piece {
    pub(crate) range: Range<usize>,
    pub(crate) old: Option<usize>,
}

/// FastCDC bounds (min, average, max) in bytes.
pub(crate) type Bounds = (u32, u32, u32);

/// Cuts `data` as FastCDC 2020 with `bounds` would, reusing the chunks of
/// `old` (the same file's previous chunk list) where their bytes are
/// unchanged. The pieces cover `data` in order.
pub(crate) fn recut(data: &[u8], old: &[ChunkRef], bounds: Bounds) -> Vec<Piece> {
    let (min, avg, max) = bounds;
    let hashes: Vec<Option<blake3::Hash>> = old
        .iter()
        .map(|c| blake3::Hash::from_hex(&c.hash).ok())
        .collect();
    let mut starts = HashMap::with_capacity(old.len());
    let mut off = 0i64;
    for (i, c) in old.iter().enumerate() {
        starts.insert(off, i);
        off += i64::from(c.len);
    }
    let delta = data.len() as i64 - off;
    // Whether old chunk `k` may stand at `pos`: same bytes, and the
    // chunker, given what is left from `pos`, would cut where it did.
    // Its loop stops before the last byte pair, so a non-final chunk
    // needs two bytes more after it (or none); the final chunk was
    // ended by the file's end and only stands where the file ends.
    let fits = |k: usize, pos: usize| -> bool {
        let Some(h) = hashes[k] else { return false };
        let len = old[k].len as usize;
        let rest = data.len() - pos;
        let last = k + 1 == old.len();
        (rest == len || (!last && rest >= len + 2)) && blake3::hash(&data[pos..pos + len]) == h
    };
    let mut out = Vec::new();
    let mut pos = 0usize;
    let mut next_old = (!old.is_empty()).then_some(0usize);
    while pos < data.len() {
        if let Some(k) = next_old.filter(|&k| k < old.len() && fits(k, pos)) {
            let end = pos + old[k].len as usize;
            out.push(Piece {
                range: pos..end,
                old: Some(k),
            });
            pos = end;
            next_old = Some(k + 1);
            continue;
        }
        next_old = None;
        let base = pos;
        for c in fastcdc::v2020::FastCDC::new(&data[base..], min, avg, max) {
            let end = base + c.offset + c.length;
            out.push(Piece {
                range: base + c.offset..end,
                old: None,
            });
            pos = end;
            if end == data.len() {
                break;
            }
            let resync = [end as i64, end as i64 - delta]
                .into_iter()
                .filter_map(|o| starts.get(&o).copied())
                .find(|&k| fits(k, end));
            if let Some(k) = resync {
                let stop = end + old[k].len as usize;
                out.push(Piece {
                    range: end..stop,
                    old: Some(k),
                });
                pos = stop;
                next_old = Some(k + 1);
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Bounds = (256, 1024, 4096);

    fn noise(n: usize, seed: &mut u64) -> Vec<u8> {
        (0..n)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                (*seed >> 24) as u8
            })
            .collect()
    }

    fn full(data: &[u8]) -> Vec<Range<usize>> {
        fastcdc::v2020::FastCDC::new(data, B.0, B.1, B.2)
            .map(|c| c.offset..c.offset + c.length)
            .collect()
    }

    fn refs(data: &[u8]) -> Vec<ChunkRef> {
        full(data)
            .into_iter()
            .map(|r| ChunkRef {
                hash: blake3::hash(&data[r.clone()]).to_hex().to_string(),
                len: r.len() as u32,
            })
            .collect()
    }

    /// Every kind of edit (overwrite, insert, delete, append, truncate,
    /// including by one or two bytes at the end): the re-cut equals a
    /// full cut, and an unchanged region is reused, not cut.
    #[test]
    fn recut_equals_a_full_cut_after_any_edit() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let base = noise(64 * 1024, &mut seed);
        let old = refs(&base);
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for at in [0usize, 1, 777, 20_000, 40_000, 65_000] {
            let mut over = base.clone();
            let n = 500.min(over.len() - at);
            over[at..at + n].copy_from_slice(&noise(n, &mut seed));
            cases.push(over);
            let mut ins = base.clone();
            ins.splice(at..at, noise(300, &mut seed));
            cases.push(ins);
            let mut del = base.clone();
            del.drain(at..(at + 300).min(base.len()));
            cases.push(del);
        }
        for cut in [1usize, 2, 3, 1000] {
            cases.push(base[..base.len() - cut].to_vec());
            let mut longer = base.clone();
            longer.extend(noise(cut, &mut seed));
            cases.push(longer);
        }
        // Truncated or grown exactly at, one and two bytes past an old
        // chunk's end.
        let first_end = old[0].len as usize;
        for extra in [0usize, 1, 2, 3] {
            cases.push(base[..first_end + extra].to_vec());
        }
        cases.push(base.clone());
        cases.push(Vec::new());
        for (i, data) in cases.iter().enumerate() {
            let pieces = recut(data, &old, B);
            let got: Vec<Range<usize>> = pieces.iter().map(|p| p.range.clone()).collect();
            assert_eq!(got, full(data), "case {i}: pieces differ from a full cut");
            for p in &pieces {
                if let Some(k) = p.old {
                    let bytes = &data[p.range.clone()];
                    assert_eq!(
                        old[k].hash,
                        blake3::hash(bytes).to_hex().as_str(),
                        "case {i}"
                    );
                    assert_eq!(old[k].len as usize, bytes.len(), "case {i}");
                }
            }
        }
        let same = recut(&base, &old, B);
        assert!(
            same.iter().all(|p| p.old.is_some()),
            "unchanged bytes are reused"
        );
        let mut one = base.clone();
        one[30_000] ^= 1;
        let reused = recut(&one, &old, B)
            .iter()
            .filter(|p| p.old.is_some())
            .count();
        assert!(
            reused + 3 >= old.len(),
            "a one-byte change re-cuts only around it ({reused} of {} reused)",
            old.len()
        );
    }
}
