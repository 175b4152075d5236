//! `proc_age`: how long the opener had been running at the event (the event's `ts` minus its
//! process's start, as Falco's `proc.duration`), compared with a duration: `">5s"`, `"<1m"`,
//! `">=500ms"`, `"<=2h"`. The duration is `crate::timespec`'s (`ms`, `s`, `m`, `h`, `d`, `w`),
//! with its unit always written: `">5"` is refused, as it could mean any unit.

use crate::timespec::parse_duration;

/// How the age compares with the duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cmp {
    Gt,
    Ge,
    Lt,
    Le,
}

/// One `proc_age` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Age {
    pub cmp: Cmp,
    pub ns: i64,
}

impl Age {
    pub fn parse(text: &str) -> Result<Age, String> {
        let bad = |why: &str| {
            format!("invalid process age {text:?}: {why} (expected a comparison and a duration, such as \">5s\", \"<1m\", \">=500ms\")")
        };
        let (cmp, rest) = [
            (">=", Cmp::Ge),
            ("<=", Cmp::Le),
            (">", Cmp::Gt),
            ("<", Cmp::Lt),
        ]
        .iter()
        .find_map(|(op, c)| text.strip_prefix(op).map(|r| (*c, r.trim_start())))
        .ok_or_else(|| bad("it starts with none of >, >=, <, <="))?;
        if rest.is_empty() || rest.ends_with(|c: char| c.is_ascii_digit()) {
            return Err(bad("the duration needs a unit (ms, s, m, h, d, w)"));
        }
        let d = parse_duration(rest).map_err(|e| bad(&e))?;
        let ns = i64::try_from(d.as_nanos()).map_err(|_| bad("the duration is too large"))?;
        Ok(Age { cmp, ns })
    }

    /// Whether a process of age `age_ns` meets this value.
    pub fn holds(self, age_ns: i64) -> bool {
        match self.cmp {
            Cmp::Gt => age_ns > self.ns,
            Cmp::Ge => age_ns >= self.ns,
            Cmp::Lt => age_ns < self.ns,
            Cmp::Le => age_ns <= self.ns,
        }
    }

    /// The comparison in SQL (and Rust) syntax.
    pub fn op(self) -> &'static str {
        match self.cmp {
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_compare_with_durations_of_every_unit() {
        let a = Age::parse(">5s").unwrap();
        assert_eq!(
            a,
            Age {
                cmp: Cmp::Gt,
                ns: 5_000_000_000
            }
        );
        assert!(a.holds(5_000_000_001) && !a.holds(5_000_000_000));
        let a = Age::parse(">= 500ms").unwrap();
        assert!(a.holds(500_000_000) && !a.holds(499_999_999));
        assert!(Age::parse("<1m").unwrap().holds(59_999_999_999));
        assert!(!Age::parse("<=2h").unwrap().holds(7_200_000_000_001));
        assert_eq!(Age::parse(">1w").unwrap().ns, 604_800_000_000_000);
    }

    #[test]
    fn bad_ages_are_refused_with_the_reason() {
        for (text, why) in [
            ("5s", "starts with none of"),
            ("=5s", "starts with none of"),
            (">5", "needs a unit"),
            (">", "needs a unit"),
            (">5y", "unknown unit"),
            (">s", "expected a number"),
            (">99999999999w", "too large"),
        ] {
            let e = Age::parse(text).unwrap_err();
            assert!(
                e.contains(why) && e.contains(&format!("{text:?}")),
                "{text}: {e}"
            );
        }
    }
}
