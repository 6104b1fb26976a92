//! A string that must never be printed: passwords, connection strings, shared access keys.

use std::fmt;

/// A secret value. `Debug` and `Display` print `***`; read it with [`Secret::expose`]
/// only where it is handed to librdkafka or compared.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself. Call sites are the places a secret can leak: keep them few.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_value() {
        let s = Secret::new("SharedAccessKey=abc123");
        assert!(!format!("{s:?} {s}").contains("abc123"));
        assert_eq!(s.expose(), "SharedAccessKey=abc123");
    }
}
