//! An OS failure as the engines report it: what berth was doing, and the
//! `io::Error` the kernel gave, kept as the error's source rather than
//! flattened into text.

use std::fmt;
use std::io;

/// An operating-system call that failed, with what berth was doing.
///
/// Displays as `"{context}: {source}"` (just the source when the context is
/// empty); [`std::error::Error::source`] gives the `io::Error`, so its kind
/// and errno survive to whoever handles the error.
#[derive(Debug)]
pub struct OsError {
    context: String,
    source: io::Error,
}

impl OsError {
    /// `source`, met while doing `context` (e.g. `"openpty"`, or
    /// `"cannot create the log spools"`).
    pub fn new(context: impl Into<String>, source: io::Error) -> Self {
        Self {
            context: context.into(),
            source,
        }
    }

    /// A closure for `map_err`: `open().map_err(OsError::with("openpty"))?`.
    pub fn with(context: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let context = context.into();
        move |source| Self::new(context, source)
    }

    /// What berth was doing.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The underlying error.
    pub fn io(&self) -> &io::Error {
        &self.source
    }

    /// The error's kind, as `io::Error::kind` names it.
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }
}

impl fmt::Display for OsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.context.is_empty() {
            write!(f, "{}", self.source)
        } else {
            write!(f, "{}: {}", self.context, self.source)
        }
    }
}

impl std::error::Error for OsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl From<io::Error> for OsError {
    fn from(source: io::Error) -> Self {
        Self::new("", source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn display_keeps_the_text_and_source_keeps_the_errno() {
        let e = OsError::new("pipe", io::Error::from_raw_os_error(libc::EMFILE));
        assert!(e.to_string().starts_with("pipe: "), "{e}");
        assert!(e.to_string().contains("Too many open files"), "{e}");
        let src = e.source().unwrap().downcast_ref::<io::Error>().unwrap();
        assert_eq!(src.raw_os_error(), Some(libc::EMFILE));
        let bare = OsError::from(io::Error::other("the daemon is shutting down"));
        assert_eq!(bare.to_string(), "the daemon is shutting down");
    }
}
