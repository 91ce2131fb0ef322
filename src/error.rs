//! Errors a user can act on carry a hint; the CLI prints the error on one line and the hint on the next.

use std::fmt;

/// An error with advice on what to do about it.
#[derive(Debug)]
pub struct Hinted {
    pub error: anyhow::Error,
    pub hint: String,
}

impl Hinted {
    pub fn new(error: anyhow::Error, hint: impl Into<String>) -> Self {
        Self {
            error,
            hint: hint.into(),
        }
    }
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", one_line(&self.error))
    }
}

impl std::error::Error for Hinted {}

/// Adds a hint to any error result.
pub trait HintExt<T> {
    fn hint(self, hint: impl Into<String>) -> anyhow::Result<T>;
}

impl<T, E: Into<anyhow::Error>> HintExt<T> for Result<T, E> {
    fn hint(self, hint: impl Into<String>) -> anyhow::Result<T> {
        self.map_err(|e| anyhow::Error::new(Hinted::new(e.into(), hint)))
    }
}

/// The first hint anywhere in an error's chain.
pub fn hint_of(err: &anyhow::Error) -> Option<&str> {
    err.chain()
        .find_map(|c| c.downcast_ref::<Hinted>())
        .map(|h| h.hint.as_str())
}

/// An error's message and causes on one line, as the CLI prints it: `outer: cause: root`, with a cause
/// left out when the message before it already says it (an OS error quoted in a message and also
/// chained as its source), and line breaks inside a message (some decoders end theirs with one)
/// turned into spaces.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() || parts.last().is_some_and(|p| p.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_the_message_already_quotes_is_said_once_and_newlines_go() {
        let os = std::io::Error::from_raw_os_error(21);
        let err = anyhow::Error::new(std::io::Error::new(os.kind(), os.to_string()))
            .context(format!("photo.png: cannot read: {os}"));
        assert_eq!(one_line(&err), format!("photo.png: cannot read: {os}"));
        let err = anyhow::anyhow!("bad marker\n").context("photo.jpg");
        assert_eq!(one_line(&err), "photo.jpg: bad marker");
    }
}
