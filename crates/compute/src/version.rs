//! Compute API microversions as one typed value, parsed once per request from
//! `OpenStack-API-Version: compute X.Y` or `X-OpenStack-Nova-API-Version: X.Y`.
//! Code that changes behaviour with the version asks `v.at_least(2, 47)`.

use std::fmt;

/// A compute microversion, `2.x`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    pub major: u16,
    pub minor: u16,
}

impl ApiVersion {
    pub const MIN: ApiVersion = ApiVersion { major: 2, minor: 1 };
    /// The newest version ferrostack implements (every change up to it is honoured).
    pub const MAX: ApiVersion = ApiVersion {
        major: 2,
        minor: 99,
    };

    pub const fn new(major: u16, minor: u16) -> ApiVersion {
        ApiVersion { major, minor }
    }

    pub fn at_least(self, major: u16, minor: u16) -> bool {
        self >= ApiVersion::new(major, minor)
    }

    /// Parses `2.47`, `latest` (= MAX); `None` for anything else.
    pub fn parse(s: &str) -> Option<ApiVersion> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("latest") {
            return Some(ApiVersion::MAX);
        }
        let (a, b) = s.split_once('.')?;
        if a.is_empty() || b.is_empty() || a.len() > 4 || b.len() > 4 {
            return None;
        }
        if !a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit()) {
            return None;
        }
        Some(ApiVersion::new(a.parse().ok()?, b.parse().ok()?))
    }

    pub fn supported(self) -> bool {
        self >= ApiVersion::MIN && self <= ApiVersion::MAX
    }
}

impl Default for ApiVersion {
    fn default() -> Self {
        ApiVersion::MIN
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions_and_latest() {
        assert_eq!(ApiVersion::parse("2.47"), Some(ApiVersion::new(2, 47)));
        assert_eq!(ApiVersion::parse(" 2.1 "), Some(ApiVersion::MIN));
        assert_eq!(ApiVersion::parse("latest"), Some(ApiVersion::MAX));
        assert_eq!(ApiVersion::parse("2"), None);
        assert_eq!(ApiVersion::parse("2.x"), None);
        assert_eq!(ApiVersion::parse("-2.1"), None);
        assert!(ApiVersion::new(2, 10) > ApiVersion::new(2, 9));
        assert!(!ApiVersion::new(3, 0).supported());
        assert!(!ApiVersion::new(2, 0).supported());
    }
}
