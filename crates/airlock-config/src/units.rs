//! Durations (`"1h"`, `"30s"`) and rates (`"60/min"`).

use std::time::Duration;

/// A duration, size or rate that cannot be used; `value` is the text as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnitError {
    /// Not a duration ([`parse_duration`]).
    #[error(
        "invalid duration \"{}\"; expected a duration such as \"30s\", \"15m\", \"1h\", \"1h30m\" or \"2d\"",
        value.escape_debug()
    )]
    InvalidDuration {
        /// The text as given.
        value: String,
    },
    /// A duration of zero.
    #[error("duration \"{}\" must be greater than zero", value.escape_debug())]
    ZeroDuration {
        /// The text as given.
        value: String,
    },
    /// A duration over 365 days.
    #[error("duration \"{}\" is longer than 365 days", value.escape_debug())]
    DurationTooLong {
        /// The text as given.
        value: String,
    },
    /// Not a size ([`parse_size`]).
    #[error(
        "invalid size \"{}\"; expected bytes such as 1048576, \"512KiB\" or \"10MiB\"",
        value.escape_debug()
    )]
    InvalidSize {
        /// The text as given.
        value: String,
    },
    /// A size of zero or over 1 GiB.
    #[error("size \"{}\" must be between 1 byte and 1 GiB", value.escape_debug())]
    SizeOutOfRange {
        /// The text as given.
        value: String,
    },
    /// Not a rate ([`parse_rate`]).
    #[error(
        "invalid rate \"{}\"; expected COUNT/UNIT such as \"60/min\", \"5/s\", \"1000/h\" or \"10000/day\"",
        value.escape_debug()
    )]
    InvalidRate {
        /// The text as given.
        value: String,
    },
    /// A rate whose count is 0 or over 1 000 000.
    #[error("rate \"{}\": the count must be between 1 and 1000000", value.escape_debug())]
    RateCountOutOfRange {
        /// The text as given.
        value: String,
    },
}

/// Parses a friendly duration such as `30s`, `15m`, `1h`, `1h30m`, `2d`.
/// Must be positive and at most 365 days.
pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    let value = || s.to_string();
    let bad = || UnitError::InvalidDuration { value: value() };
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let unit_len = rest[digits..]
            .bytes()
            .take_while(u8::is_ascii_alphabetic)
            .count();
        if digits == 0 || unit_len == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let unit: u64 = match &rest[digits..digits + unit_len] {
            "s" | "sec" | "secs" => 1,
            "m" | "min" | "mins" => 60,
            "h" | "hr" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            _ => return Err(bad()),
        };
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        rest = &rest[digits + unit_len..];
    }
    if total == 0 {
        return Err(UnitError::ZeroDuration { value: value() });
    }
    if total > 365 * 86_400 {
        return Err(UnitError::DurationTooLong { value: value() });
    }
    Ok(Duration::from_secs(total))
}

/// Parses a size: a number of bytes, optionally with `KiB`, `MiB` or `GiB`
/// (`"512KiB"`, `"10MiB"`). At least 1 byte, at most 1 GiB.
pub fn parse_size(s: &str) -> Result<u64, UnitError> {
    let bad = || UnitError::InvalidSize {
        value: s.to_string(),
    };
    let t = s.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = t[..digits].parse().map_err(|_| bad())?;
    let mult: u64 = match t[digits..].trim() {
        "" | "B" => 1,
        "KiB" | "K" | "KB" => 1024,
        "MiB" | "M" | "MB" => 1024 * 1024,
        "GiB" | "G" | "GB" => 1024 * 1024 * 1024,
        _ => return Err(bad()),
    };
    let v = n.checked_mul(mult).ok_or_else(bad)?;
    if v == 0 || v > 1 << 30 {
        return Err(UnitError::SizeOutOfRange {
            value: s.to_string(),
        });
    }
    Ok(v)
}

/// A rate limit: `count` requests per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed per period (also the burst size).
    pub count: u32,
    /// The period.
    pub per: Duration,
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "s",
            60 => "min",
            3600 => "h",
            _ => "d",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

/// Parses `N/s`, `N/min`, `N/h` or `N/day` (long forms `second`, `minute`,
/// `hour` accepted), `1 ≤ N ≤ 1 000 000`.
pub fn parse_rate(s: &str) -> Result<Rate, UnitError> {
    let bad = || UnitError::InvalidRate {
        value: s.to_string(),
    };
    let (n, unit) = s.trim().split_once('/').ok_or_else(bad)?;
    let count: u32 = n.trim().parse().map_err(|_| bad())?;
    if !(1..=1_000_000).contains(&count) {
        return Err(UnitError::RateCountOutOfRange {
            value: s.to_string(),
        });
    }
    let secs = match unit.trim() {
        "s" | "sec" | "second" => 1,
        "m" | "min" | "minute" => 60,
        "h" | "hour" => 3600,
        "d" | "day" => 86_400,
        _ => return Err(bad()),
    };
    Ok(Rate {
        count,
        per: Duration::from_secs(secs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        for bad in [
            "",
            "0s",
            "-1h",
            "1 fortnight",
            "h",
            "400d",
            "1h 2",
            "99999999999999999999s",
            "1.5h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_size("512KiB").unwrap(), 512 << 10);
        assert_eq!(parse_size("10MiB").unwrap(), 10 << 20);
        for bad in ["", "0", "-1", "10 parsecs", "2GiB", "MiB"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rates() {
        let r = parse_rate("60/min").unwrap();
        assert_eq!((r.count, r.per), (60, Duration::from_secs(60)));
        assert_eq!(r.to_string(), "60/min");
        assert_eq!(parse_rate("5/s").unwrap().per, Duration::from_secs(1));
        for bad in [
            "",
            "60",
            "/min",
            "0/min",
            "x/min",
            "60/fortnight",
            "-1/s",
            "9999999/s",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn messages_name_the_value() {
        assert_eq!(
            parse_duration("0s").unwrap_err(),
            UnitError::ZeroDuration { value: "0s".into() }
        );
        for (err, message) in [
            (
                parse_duration("1 fortnight").unwrap_err(),
                "invalid duration \"1 fortnight\"; expected a duration such as \"30s\", \"15m\", \"1h\", \"1h30m\" or \"2d\"",
            ),
            (
                parse_duration("400d").unwrap_err(),
                "duration \"400d\" is longer than 365 days",
            ),
            (
                parse_size("2GiB").unwrap_err(),
                "size \"2GiB\" must be between 1 byte and 1 GiB",
            ),
            (
                parse_rate("0/min").unwrap_err(),
                "rate \"0/min\": the count must be between 1 and 1000000",
            ),
            (
                parse_rate("60/fortnight\n").unwrap_err(),
                "invalid rate \"60/fortnight\\n\"; expected COUNT/UNIT such as \"60/min\", \"5/s\", \"1000/h\" or \"10000/day\"",
            ),
        ] {
            assert_eq!(err.to_string(), message);
        }
    }
}
