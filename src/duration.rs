//! Durations on the command line: a number with a unit, e.g. `250ns`, `1.5ms`, `2s`.

use std::time::Duration;

const UNITS: [(&str, u64); 5] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
];

/// Parses `250ns`, `10us`, `1.5ms`, `2s`. The unit is required; decimals are exact down to
/// the nanosecond.
pub fn parse(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let examples = "examples: 250ns, 10us, 1.5ms, 2s";
    if num.is_empty() {
        return Err(format!("`{s}` is not a duration ({examples})"));
    }
    let Some(&(_, mul)) = UNITS.iter().find(|(u, _)| *u == unit) else {
        return Err(if unit.is_empty() {
            format!("`{s}` has no unit: write ns, us, ms or s ({examples})")
        } else {
            format!("unknown unit `{unit}` in `{s}`: use ns, us, ms or s")
        });
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if frac.contains('.') || (int.is_empty() && frac.is_empty()) {
        return Err(format!("`{s}` is not a duration ({examples})"));
    }
    let too_large = || format!("duration `{s}` is too large");
    let int: u64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| too_large())?
    };
    let mut ns = int.checked_mul(mul).ok_or_else(too_large)?;
    // The fraction, digit by digit, exactly.
    let mut place = mul;
    for d in frac.bytes() {
        let digit = u64::from(d - b'0');
        if place % 10 != 0 {
            if digit != 0 {
                return Err(format!("`{s}` is finer than a nanosecond"));
            }
            continue;
        }
        place /= 10;
        ns = ns.checked_add(digit * place).ok_or_else(too_large)?;
    }
    Ok(Duration::from_nanos(ns))
}

/// Writes `d` in the largest unit that keeps it exact, as [`parse`] reads it.
pub fn format(d: Duration) -> String {
    let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    for (unit, mul) in [("s", 1_000_000_000u64), ("ms", 1_000_000), ("us", 1_000)] {
        if ns != 0 && ns % mul == 0 {
            return format!("{}{unit}", ns / mul);
        }
    }
    format!("{ns}ns")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit_and_take_exact_decimals() {
        assert_eq!(parse("1.5ms"), Ok(Duration::from_micros(1500)));
        assert_eq!(parse("250ns"), Ok(Duration::from_nanos(250)));
        assert_eq!(parse("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("10µs"), Ok(Duration::from_micros(10)));
        assert!(parse("5").expect_err("refused").contains("no unit"));
        assert!(parse("1.5ns")
            .expect_err("refused")
            .contains("finer than a nanosecond"));
        assert!(parse("1.2.3ms").is_err());
        assert!(parse("3h")
            .expect_err("refused")
            .contains("unknown unit `h`"));
        assert!(parse("99999999999999999999s")
            .expect_err("refused")
            .contains("too large"));
    }

    #[test]
    fn format_reads_back_as_the_same_duration() {
        for d in ["1500us", "2s", "7ns", "1ms", "0ns", "1.25s"] {
            let parsed = parse(d).expect("valid");
            assert_eq!(parse(&format(parsed)), Ok(parsed), "{d}");
        }
        assert_eq!(format(Duration::from_micros(1500)), "1500us");
    }
}
