use std::fmt;

/// What went wrong, in the few categories a caller branches on.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The id does not exist in this namespace (or was soft-deleted).
    NotFound,
    /// The write collides with existing state (another namespace owns the id, or a race).
    Conflict,
    /// The request is malformed; the message names the field and the limit.
    InvalidInput,
    /// The backend cannot do this operation.
    Unsupported,
    /// The store's configuration or URL is wrong.
    ConfigInvalid,
    /// The backend cannot be reached right now.
    Unavailable,
    /// The operation took too long.
    Timeout,
    /// Anything else: a bug or an unexpected backend answer.
    Unexpected,
}

impl ErrorKind {
    /// A stable lower-case name, used in logs and HTTP bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::ConfigInvalid => "config_invalid",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Unexpected => "unexpected",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one error type of every store.
///
/// It carries the kind, a message, the backend and operation it came from, key/value context,
/// whether retrying may help, and the underlying cause.
#[derive(Debug, thiserror::Error)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    backend: &'static str,
    operation: &'static str,
    context: Vec<(&'static str, String)>,
    temporary: bool,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A new error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            backend: "",
            operation: "",
            context: Vec::new(),
            temporary: matches!(kind, ErrorKind::Unavailable | ErrorKind::Timeout),
            source: None,
        }
    }

    /// `NotFound` for an id in a namespace.
    pub fn not_found(namespace: &str, id: &str) -> Self {
        Error::new(
            ErrorKind::NotFound,
            format!("no item {id:?} in namespace {namespace:?}"),
        )
        .with_context("namespace", namespace)
        .with_context("id", id)
    }

    /// `InvalidInput` naming the offending field.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Error::new(
            ErrorKind::InvalidInput,
            format!("{field}: {}", message.into()),
        )
        .with_context("field", field)
    }

    /// `Unsupported` for an operation.
    pub fn unsupported(operation: &'static str, why: impl Into<String>) -> Self {
        Error::new(ErrorKind::Unsupported, why).with_operation(operation)
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without context.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The backend id, or "" when not set.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// The operation, or "" when not set.
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The key/value context.
    pub fn context(&self) -> &[(&'static str, String)] {
        &self.context
    }

    /// Whether retrying the same call later may succeed.
    pub fn is_temporary(&self) -> bool {
        self.temporary
    }

    /// Sets the backend id.
    pub fn with_backend(mut self, backend: &'static str) -> Self {
        self.backend = backend;
        self
    }

    /// Sets the operation.
    pub fn with_operation(mut self, operation: &'static str) -> Self {
        self.operation = operation;
        self
    }

    /// Adds a context pair.
    pub fn with_context(mut self, key: &'static str, value: impl fmt::Display) -> Self {
        self.context.push((key, value.to_string()));
        self
    }

    /// Marks the error as temporary or not.
    pub fn set_temporary(mut self, temporary: bool) -> Self {
        self.temporary = temporary;
        self
    }

    /// Sets the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if !self.backend.is_empty() || !self.operation.is_empty() {
            write!(f, " ({}", self.backend)?;
            if !self.operation.is_empty() {
                if !self.backend.is_empty() {
                    f.write_str(".")?;
                }
                f.write_str(self.operation)?;
            }
            f.write_str(")")?;
        }
        write!(f, ": {}", self.message)?;
        if self.temporary {
            f.write_str(" [temporary]")?;
        }
        if let Some(src) = &self.source {
            write!(f, ": {src}")?;
        }
        Ok(())
    }
}

/// The result of every store operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_backend_operation_and_field() {
        let e = Error::invalid("importance", "must be within 0..=1, got 2")
            .with_backend("sqlite")
            .with_operation("upsert");
        assert_eq!(
            e.to_string(),
            "invalid_input (sqlite.upsert): importance: must be within 0..=1, got 2"
        );
        assert!(!e.is_temporary());
        assert!(Error::new(ErrorKind::Unavailable, "down").is_temporary());
    }
}
