//! Checking numbered output lines as a load bench's clients receive them
//! (`relay_load`, `node_load`): each writer prints `TAG:NNNNNN ...` lines
//! in order and then an end marker.

/// One client's line check, fed output as it arrives (bytes, no decoding:
/// it runs for every frame of a thousand clients on one thread).
#[derive(Default)]
pub(crate) struct LineCheck {
    partial: Vec<u8>,
    next: Option<usize>,
    /// Lines of `tag` seen.
    pub(crate) lines: usize,
    /// Lines that did not follow the previous one (lost or reordered).
    pub(crate) gaps: usize,
    /// Whether a line ending in the end marker was seen.
    pub(crate) ended: bool,
}

impl LineCheck {
    /// After a screen repaint the next line may be any number: the
    /// order check starts again from it.
    pub(crate) fn restart(&mut self) {
        self.next = None;
    }

    /// Reads the whole lines of `data` (a partial last line waits for
    /// the next call): `tag:NNNNNN` lines are counted and checked for
    /// order, and a line ending with `end` marks the end.
    pub(crate) fn feed(&mut self, data: &[u8], tag: &[u8], end: &[u8]) {
        self.partial.extend_from_slice(data);
        let mut start = 0;
        while let Some(i) = self.partial[start..].iter().position(|&b| b == b'\n') {
            let line = &self.partial[start..start + i];
            start += i + 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if let Some(rest) = line.strip_prefix(tag).and_then(|l| l.strip_prefix(b":")) {
                let Some(n) = rest.get(..6).and_then(|d| {
                    d.iter().try_fold(0usize, |acc, &c| {
                        c.is_ascii_digit().then(|| acc * 10 + usize::from(c - b'0'))
                    })
                }) else {
                    continue;
                };
                if self.next.is_some_and(|want| want != n) || (self.next.is_none() && n != 0) {
                    self.gaps += 1;
                }
                self.next = Some(n + 1);
                self.lines += 1;
            } else if line.ends_with(end) {
                self.ended = true;
            }
        }
        self.partial.drain(..start);
    }
}
