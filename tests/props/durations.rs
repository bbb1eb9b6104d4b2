//! Durations and grace periods: accepted ones are positive and bounded, a count and a unit mean
//! that many seconds, and huge values are refused rather than a panic.

use chrono::{Duration, Utc};
use gatehouse::api_keys::{MAX_DURATION, api::parse_grace, parse_duration};
use proptest::prelude::*;
use serde_json::json;

use crate::{duration_text, json_leaf, json_value};

proptest! {
    #[test]
    fn accepted_durations_are_positive_and_bounded(s in duration_text()) {
        if let Some(d) = parse_duration(&s) {
            prop_assert!(d > Duration::zero(), "{s:?} gave {d}");
            prop_assert!(d <= MAX_DURATION, "{s:?} gave {d}");
            // What callers do with it: add it to the current time.
            prop_assert!(Utc::now().naive_utc().checked_add_signed(d).is_some());
        }
    }

    #[test]
    fn a_count_and_a_unit_mean_that_many_seconds(n in 1i64..100_000_000, unit in "[smhdwy]?") {
        let unit_seconds = match unit.as_str() {
            "" | "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            "w" => 604_800,
            _ => 365 * 86_400,
        };
        let seconds = n * unit_seconds;
        let expected = (seconds <= MAX_DURATION.num_seconds()).then(|| Duration::seconds(seconds));
        prop_assert_eq!(parse_duration(&format!("{n}{unit}")), expected);
    }

    #[test]
    fn accepted_grace_periods_are_zero_to_seven_days(value in prop_oneof![json_leaf(), json_value()]) {
        if let Ok(grace) = parse_grace(Some(&value)) {
            prop_assert!(grace >= Duration::zero() && grace <= Duration::days(7), "{value} gave {grace}");
        }
    }
}

#[test]
fn huge_numeric_grace_periods_are_refused_not_a_panic() {
    for n in [i64::MAX, i64::MAX / 1000 + 1, 10_i64.pow(17)] {
        assert!(parse_grace(Some(&json!(n))).is_err(), "{n}");
    }
    assert!(parse_grace(Some(&json!(u64::MAX))).is_err());
    assert!(parse_grace(Some(&json!(1e300))).is_err());
}

#[test]
fn the_longest_durations_in_every_unit_are_refused_not_a_panic() {
    for s in ["99999999y", "99999999w", "99999999d"] {
        assert_eq!(parse_duration(s), None, "{s}");
    }
    assert_eq!(parse_duration("1000y"), Some(MAX_DURATION));
}
