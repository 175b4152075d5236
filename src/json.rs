//! A JSON object written key by key, in the caller's order. Events and alerts are formatted with
//! it (serde_json's map would sort keys or allocate a tree per line); strings are escaped exactly
//! as serde_json escapes them, so every JSON line this tool writes spells strings one way.

use std::fmt::Write as _;

pub(crate) struct Obj(String);

impl Obj {
    pub fn new() -> Obj {
        let mut s = String::with_capacity(320);
        s.push('{');
        Obj(s)
    }

    pub fn raw_key(&mut self, k: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        escape_into(&mut self.0, k);
        self.0.push(':');
    }

    /// Appends JSON text as it is (after `raw_key`).
    pub fn push_raw(&mut self, v: &str) {
        self.0.push_str(v);
    }

    pub fn str(&mut self, k: &str, v: &str) {
        self.raw_key(k);
        escape_into(&mut self.0, v);
    }

    pub fn strs(&mut self, k: &str, vs: &[String]) {
        self.raw_key(k);
        self.0.push('[');
        for (i, v) in vs.iter().enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            escape_into(&mut self.0, v);
        }
        self.0.push(']');
    }

    pub fn num(&mut self, k: &str, v: impl std::fmt::Display) {
        self.raw_key(k);
        let _ = write!(self.0, "{v}");
    }

    pub fn opt_num(&mut self, k: &str, v: Option<impl std::fmt::Display>) {
        match v {
            Some(v) => self.num(k, v),
            None => self.null(k),
        }
    }

    pub fn bool(&mut self, k: &str, v: bool) {
        self.raw_key(k);
        self.0.push_str(if v { "true" } else { "false" });
    }

    pub fn null(&mut self, k: &str) {
        self.raw_key(k);
        self.0.push_str("null");
    }

    pub fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

/// A JSON string literal, escaped as serde_json escapes, and C1 controls (U+0080..U+009F, which
/// some terminals obey as escape sequences) as `\u00XX` too: a recorded path is attacker-chosen
/// text, and a JSON line may well be read on a terminal. Any JSON parser reads both forms.
pub(crate) fn escape_into(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc: &str = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\u{8}' => "\\b",
            '\u{c}' => "\\f",
            '\u{0}'..='\u{1f}' | '\u{80}'..='\u{9f}' => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push_str(esc);
        }
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c1_controls_are_escaped_and_still_parse() {
        let s = "a\u{9b}2Jb\u{85}";
        let mut out = String::new();
        escape_into(&mut out, s);
        assert_eq!(out, "\"a\\u009b2Jb\\u0085\"");
        assert_eq!(serde_json::from_str::<String>(&out).unwrap(), s);
    }

    #[test]
    fn escaping_matches_serde_json() {
        for s in [
            "plain",
            "quote\" back\\slash",
            "ctl\u{0}\u{1}\u{1f}\u{7f}\n\r\t\u{8}\u{c}",
            "ünïcødé \u{2028} ✓",
            "\u{fffd}",
        ] {
            let mut out = String::new();
            escape_into(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn objects_keep_key_order() {
        let mut o = Obj::new();
        o.num("b", 1);
        o.null("a");
        o.strs("c", &["x".into(), "y\n".into()]);
        o.bool("d", true);
        assert_eq!(o.finish(), r#"{"b":1,"a":null,"c":["x","y\n"],"d":true}"#);
    }
}
