//! UTC calendar time of a Unix timestamp, for `history` attributes and
//! progress lines. Pure: the caller supplies the time.

/// `YYYY-MM-DDTHH:MM:SSZ` for `secs` since 1970-01-01 UTC, with `.mmm`
/// milliseconds before the `Z` when `millis` is given.
pub fn iso_utc(secs: i64, millis: Option<u32>) -> String {
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let frac = millis.map(|ms| format!(".{ms:03}")).unwrap_or_default();
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{frac}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(iso_utc(0, None), "1970-01-01T00:00:00Z");
        // 2000-02-29 (a leap day of a century leap year) 12:34:56.
        assert_eq!(iso_utc(951_827_696, Some(7)), "2000-02-29T12:34:56.007Z");
        // 2100-03-01: 2100 is not a leap year.
        assert_eq!(iso_utc(4_107_542_400, None), "2100-03-01T00:00:00Z");
        assert_eq!(iso_utc(-1, None), "1969-12-31T23:59:59Z");
    }
}
