//! An output that drops alerts is never reported `ok` (issue #26 part 6): its state is `degraded`
//! with the reason, in `--stats` lines and in the health file, while it drops and for
//! `DEGRADED_FOR` after.

use std::time::{Duration, Instant};

use open_forensics::alerts::{stats_text, Outputs, State, Target};
use open_forensics::rules::{Alerter, RuleSet};

use crate::helpers::event;

const RULE: &str = "rules:\n  - name: shadow\n    description: shadow read\n    severity: high\n    tags: [t1]\n    path: /etc/shadow\n";

/// health.json said `state: ok` for an output that had dropped 49,958 alerts: it was delivering
/// (slowly), so its last attempt had succeeded. A program that reads slowly does the same here.
#[test]
fn an_output_that_drops_alerts_is_degraded_not_ok() {
    let slow = "while IFS= read -r l; do sleep 0.05; done";
    let out = Outputs::start(&[Target::Program(slow.into())], 5).expect("start");
    let set = RuleSet::from_yaml("t.yaml", RULE).expect("rules");
    let mut a = Alerter::new(&set);
    for i in 0..3000 {
        a.eval(&event(i, "/etc/shadow"), |r| out.send(r));
    }
    let until = Instant::now() + Duration::from_secs(10);
    let s = loop {
        let s = out.states().remove(0);
        if s.sent > 0 || Instant::now() > until {
            break s;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(s.dropped > 0 && s.sent > 0, "{s:?}");
    assert_eq!(s.state, State::Degraded, "{s:?}");
    let reason = s.reason.clone().expect("a reason");
    assert!(reason.contains("dropped alert lines"), "{reason}");
    let line = stats_text(std::slice::from_ref(&s));
    assert!(line.contains("=degraded (dropped alert lines"), "{line}");
    let health = open_forensics::service::stats::OutputState::from(&s);
    let json = serde_json::to_value(&health).unwrap();
    assert_eq!(json["state"], "degraded");
    assert_eq!(json["reason"], reason.as_str());
    out.close_with_states();
}
