//! Progress of `berth up` while images are made available: one bar per
//! image on a terminal, one line per image state change otherwise.

use berth_client::project::pb::ImageProgress;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::IsTerminal;

/// The bars of one `up`.
pub(super) struct Bars {
    quiet: bool,
    tty: bool,
    multi: MultiProgress,
    bars: RefCell<HashMap<String, (ProgressBar, String)>>,
}

impl Bars {
    /// Bars on stderr; nothing at all when `quiet`.
    pub(super) fn new(quiet: bool) -> Self {
        Self {
            quiet,
            tty: std::io::stderr().is_terminal(),
            multi: MultiProgress::new(),
            bars: RefCell::new(HashMap::new()),
        }
    }

    /// An image's progress.
    pub(super) fn image(&self, p: &ImageProgress) {
        if self.quiet {
            return;
        }
        let mut bars = self.bars.borrow_mut();
        let (bar, last) = bars.entry(p.image.clone()).or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new(0));
            bar.set_style(
                ProgressStyle::with_template("{prefix:30} {wide_bar} {bytes}/{total_bytes} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_prefix(p.image.clone());
            (bar, String::new())
        });
        if self.tty {
            if p.total > 0 {
                bar.set_length(p.total);
                bar.set_position(p.current.min(p.total));
            }
            bar.set_message(p.status.clone());
        } else if *last != p.status {
            eprintln!("image {}: {}", p.image, p.status);
        }
        *last = p.status.clone();
    }

    /// A note from the daemon.
    pub(super) fn note(&self, n: &str) {
        if !self.quiet {
            let _ = self.multi.println(n);
            if !self.tty {
                eprintln!("{n}");
            }
        }
    }

    /// Ends every bar.
    pub(super) fn finish(&self) {
        for (bar, _) in self.bars.borrow().values() {
            bar.finish();
        }
    }
}
