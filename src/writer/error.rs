//! [`Error`]: building a writer failed; what was being done, and why.

use std::fmt;
use std::io;

/// An error building a writer or one of its sinks: what was being done
/// (with the path or the connection string, credentials left out), and the
/// underlying error.
///
/// Printed with `{}`, it is one sentence with its cause:
/// `cannot create log directory /etc/services: File exists (os error 17)`.
/// `{:?}` prints the same sentence, so that a `main` returning
/// `Result<(), Box<dyn Error>>` shows it rather than a dump of fields;
/// `{:#?}` shows the fields. [`source`](std::error::Error::source) is the
/// underlying error, for code that looks at its kind.
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

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            f.debug_struct("Error")
                .field("context", &self.context)
                .field("source", &self.source)
                .finish()
        } else {
            fmt::Display::fmt(self, f)
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sentence_with_its_cause_in_display_and_debug() {
        let source = io::Error::from_raw_os_error(17);
        let cause = source.to_string();
        let error = Error::io("cannot create log directory /etc/services", source);
        let sentence = format!("cannot create log directory /etc/services: {cause}");
        assert_eq!(error.to_string(), sentence);
        assert_eq!(format!("{error:?}"), sentence);
        // What `fn main() -> Result<(), Box<dyn Error>>` prints after `Error: `.
        let boxed: Box<dyn std::error::Error> = Box::new(error);
        assert_eq!(format!("{boxed:?}"), sentence);
        let fields = format!("{boxed:#?}");
        assert!(
            fields.starts_with("Error {") && fields.contains("context"),
            "{fields}"
        );
        let kind = boxed
            .source()
            .and_then(|s| s.downcast_ref::<io::Error>())
            .map(io::Error::kind);
        assert_eq!(kind, Some(io::ErrorKind::AlreadyExists));
    }
}
