//! An alert as one line for a person at a terminal (live on `record`'s stdout, and `replay
//! --format table` there): time, severity (coloured), rule, then the rule's `output:` template,
//! else who did what to which path. Everywhere else an alert is its JSON line, unchanged.

use super::clock::Clock;
use super::colour::paint;
use crate::event::{Event, Op};
use crate::rules::Raised;
use crate::text::printable;

/// How alert lines look.
#[derive(Clone, Copy, Debug)]
pub struct LineStyle {
    pub clock: Clock,
    pub colour: bool,
}

/// One line, no newline; hostile bytes escaped.
pub fn line(r: &Raised, style: &LineStyle) -> String {
    let rule = r.rule();
    let (ts, what) = match r {
        Raised::Alert(a) => (
            a.event.ts_ns,
            match &rule.output {
                Some(t) => t.render(a.event),
                None => default_text(a.event),
            },
        ),
        Raised::Summary(s) => (
            s.ts_ns,
            format!("{} more suppressed ({})", s.suppressed, s.key_text()),
        ),
    };
    let severity = format!("{:<8}", rule.severity.as_str().to_uppercase());
    format!(
        "{} {} {} {}",
        style.clock.short(ts),
        paint(rule.severity, &severity, style.colour),
        printable(&rule.name),
        printable(&what)
    )
}

/// `exe[pid] op path` (the comm when the exe is not known), a rename's or link's old name
/// before the new, a symlink's target after it, and the errno when it failed.
pub(super) fn default_text(e: &Event) -> String {
    let who = e
        .process
        .as_ref()
        .and_then(|p| p.exe.as_ref())
        .unwrap_or(&e.comm)
        .lossy();
    let path = e.path.lossy();
    let what = match (e.op, &e.old_path) {
        (Op::Symlink, Some(target)) => format!("{path} -> {}", target.lossy()),
        (_, Some(old)) => format!("{} -> {path}", old.lossy()),
        (_, None) => path.into_owned(),
    };
    let failed = if e.ret < 0 {
        format!(" ({})", crate::errno::describe_ret(e.ret))
    } else {
        String::new()
    };
    format!("{who}[{}] {} {what}{failed}", e.pid, e.op.as_str())
}
