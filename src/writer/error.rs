//! [`Error`]: building a writer failed; what was being done, and why.

use std::fmt;
use std::io;

/// An error building a writer or one of its sinks: what was being done
/// (with the path or the connection string, credentials left out), and the
/// underlying error.
#[derive(Debug)]
pub struct Error {
    context: String,
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl Error {
    pub(crate) fn new(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Error {
            context: context.into(),
            source: source.into(),
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::new(context, source)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.source)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}
