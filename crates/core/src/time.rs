//! Time helpers: one notion of "now" and the timestamp formats OpenStack APIs print.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The current time in UTC.
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Seconds since the Unix epoch, the form timestamps take in the database.
pub fn unix_now() -> i64 {
    now().unix_timestamp()
}

/// Microseconds since the Unix epoch, the form row timestamps (`*_us`) take.
pub fn now_us() -> i64 {
    i64::try_from(now().unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

/// `2015-11-07T02:58:43.000000Z`: Keystone's token times (sub-second part always zero).
pub fn keystone_time(unix: i64) -> String {
    let t = from_unix(unix);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000000Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `2015-11-07T02:58:43Z`: ISO 8601 without fractions (Nova, Glance, EC2).
pub fn iso_time(unix: i64) -> String {
    IsoTime(unix).to_string()
}

/// [`iso_time`] as a `Display`, to write it into a larger output without a
/// `String` of its own; `{:#}` leaves out the trailing `Z`.
#[derive(Debug, Clone, Copy)]
pub struct IsoTime(pub i64);

impl std::fmt::Display for IsoTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = from_unix(self.0);
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )?;
        if f.alternate() {
            Ok(())
        } else {
            f.write_str("Z")
        }
    }
}

/// Parses an ISO 8601 / RFC 3339 time as clients send it (`...Z`, an offset, or
/// no zone at all, which OpenStack reads as UTC); fractions are accepted and dropped.
pub fn parse_iso_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    // No zone designator: treat as UTC.
    let with_zone = format!("{s}Z");
    OffsetDateTime::parse(&with_zone, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

fn from_unix(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystone_time_has_zeroed_microseconds() {
        assert_eq!(keystone_time(1_446_864_723), "2015-11-07T02:52:03.000000Z");
    }

    #[test]
    fn iso_times_parse_with_and_without_zone() {
        assert_eq!(parse_iso_time("2015-11-07T02:52:03Z"), Some(1_446_864_723));
        assert_eq!(
            parse_iso_time("2015-11-07T02:52:03.123456Z"),
            Some(1_446_864_723)
        );
        assert_eq!(parse_iso_time("2015-11-07T02:52:03"), Some(1_446_864_723));
        assert_eq!(
            parse_iso_time("2015-11-07T04:52:03+02:00"),
            Some(1_446_864_723)
        );
        assert_eq!(parse_iso_time("yesterday"), None);
    }

    #[test]
    fn iso_time_round_trips() {
        assert_eq!(
            parse_iso_time(&iso_time(1_700_000_000)),
            Some(1_700_000_000)
        );
    }
}
