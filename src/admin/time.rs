//! RFC 3339 timestamps (UTC, whole seconds: `2026-11-24T09:30:00Z`) for the admin API's JSON.
//!
//! A dozen lines of calendar arithmetic (Howard Hinnant's `civil_from_days`) instead of a date
//! crate: nothing else in wsgate formats dates. Does not parse, and knows no time zones.

use std::time::{SystemTime, UNIX_EPOCH};

/// The last second RFC 3339's four-digit year can write (9999-12-31T23:59:59Z).
const MAX_SECS: u64 = 253_402_300_799;

/// `at` as RFC 3339 UTC; a time before 1970 reads as the epoch.
pub fn rfc3339(at: SystemTime) -> String {
    let secs = at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339_secs(secs)
}

/// Unix seconds as RFC 3339 UTC; past year 9999 reads as its last second.
pub fn rfc3339_secs(secs: u64) -> String {
    let secs = secs.min(MAX_SECS);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so the leap day ends each 400-year era's year.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339_secs(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_secs(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_secs(951_868_799), "2000-02-29T23:59:59Z");
        assert_eq!(rfc3339_secs(951_868_800), "2000-03-01T00:00:00Z");
        assert_eq!(rfc3339_secs(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_secs(4_107_542_400), "2100-03-01T00:00:00Z");
        assert_eq!(rfc3339_secs(u64::MAX), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn system_time_before_the_epoch_reads_as_the_epoch() {
        let before = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(rfc3339(before), "1970-01-01T00:00:00Z");
        let after = UNIX_EPOCH + Duration::from_millis(1_700_000_000_999);
        assert_eq!(rfc3339(after), "2023-11-14T22:13:20Z");
    }
}
