//! Text shown to people: hostile bytes (paths, comms, rule files) must not drive the terminal.
//! The ground floor: output, rules and alerts all escape the same way.

use std::borrow::Cow;

/// Escapes control characters (C0, DEL, C1: `\u{1b}`, `\n`…) so that a hostile path cannot move the
/// cursor, clear the screen or break a table row on a terminal. Text without any is returned as is.
pub fn printable(s: &str) -> String {
    escape_controls(s).into_owned()
}

/// [`printable`] without a copy when there is nothing to escape.
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}
