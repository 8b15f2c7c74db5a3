//! Guest paths as injection accepts them: absolute, normalised, no `.`/`..`, no
//! empty components, no control characters, nothing the `debugfs` command parser
//! would split or unquote. Parsing is the first line of defence; the second is the
//! per-component check against the guest filesystem (no symlinks, no special
//! files) in [`super::inject`].

use super::InjectError;

/// A validated absolute guest path (`/etc/network/interfaces`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GuestPath(String);

/// Upstream's limit for a personality file path.
pub const MAX_PATH: usize = 255;

impl GuestPath {
    pub fn parse(raw: &str) -> Result<GuestPath, InjectError> {
        let bad = |reason: &str| InjectError::UnsafePath {
            path: raw.chars().take(80).collect(),
            reason: reason.to_string(),
        };
        if raw.len() > MAX_PATH {
            return Err(bad("longer than 255 bytes"));
        }
        if !raw.starts_with('/') {
            return Err(bad("not an absolute path"));
        }
        if raw
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '"' | '\'' | '\\'))
        {
            return Err(bad(
                "control, space, quote or backslash characters are not accepted",
            ));
        }
        let parts: Vec<&str> = raw[1..].split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad("empty path component"));
        }
        if parts.iter().any(|p| *p == "." || *p == "..") {
            return Err(bad("'.' and '..' are not accepted"));
        }
        Ok(GuestPath(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Every proper ancestor, outermost first (`/etc`, `/etc/network`), without `/`.
    pub fn ancestors(&self) -> Vec<GuestPath> {
        let mut out = Vec::new();
        let mut at = 0;
        while let Some(i) = self.0[at + 1..].find('/') {
            at += 1 + i;
            out.push(GuestPath(self.0[..at].to_string()));
        }
        out
    }
}

impl std::fmt::Display for GuestPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_absolute_paths() {
        let p = GuestPath::parse("/etc/network/interfaces").unwrap();
        let a: Vec<String> = p.ancestors().iter().map(|g| g.to_string()).collect();
        assert_eq!(a, vec!["/etc", "/etc/network"]);
        assert!(GuestPath::parse("/meta.js").unwrap().ancestors().is_empty());
    }

    #[test]
    fn refuses_tricks() {
        for p in [
            "etc/passwd",
            "/etc/../../host",
            "/./etc",
            "//etc",
            "/etc/",
            "/a b",
            "/a\nb",
            "/a\"b",
            "/a\\b",
            "",
        ] {
            let e = GuestPath::parse(p).unwrap_err();
            assert!(matches!(e, InjectError::UnsafePath { .. }), "{p}: {e}");
        }
        assert!(GuestPath::parse(&format!("/{}", "a".repeat(300))).is_err());
    }
}
