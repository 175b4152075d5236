//! A rule's `output:` template (Falco's `output:`): the text a person reads for its alerts on a
//! terminal, `%field` replaced by the event's value. Field names are the columns' names
//! (`columns::Column`), the ones SQL and JSON use; `%%` is a `%`. Checked at load: an unknown
//! field is an error at the key's file:line:col.

use crate::columns::Column;
use crate::errno;
use crate::event::Event;

use super::access::access_names;

/// The fields a template may name, by their column names.
const FIELDS: &[Column] = &[
    Column::Pid,
    Column::Tid,
    Column::Ppid,
    Column::Uid,
    Column::Gid,
    Column::Euid,
    Column::Egid,
    Column::Auid,
    Column::Comm,
    Column::Syscall,
    Column::Op,
    Column::Path,
    Column::RawPath,
    Column::OldPath,
    Column::Flags,
    Column::Mode,
    Column::Ret,
    Column::Errno,
    Column::Result,
    Column::Access,
    Column::Exe,
    Column::Cmdline,
    Column::User,
    Column::ContainerId,
    Column::Tty,
    Column::ParentExe,
    Column::ParentComm,
    Column::ParentCmdline,
    Column::Cwd,
    Column::ProcAgeNs,
];

/// Other names for fields: `container`, as the `container:` condition and throttle keys say it.
const ALIASES: &[(&str, Column)] = &[("container", Column::ContainerId)];

/// What a field with no value shows (Falco's word for it).
pub const NO_VALUE: &str = "<NA>";

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(Column),
}

/// A checked `output:` template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// Every name a template may use, for error messages.
fn known() -> String {
    let mut names: Vec<&str> = FIELDS.iter().map(|c| c.name()).collect();
    names.extend(ALIASES.iter().map(|(n, _)| *n));
    names.join(", ")
}

fn field(name: &str) -> Option<Column> {
    FIELDS
        .iter()
        .copied()
        .find(|c| c.name() == name)
        .or_else(|| ALIASES.iter().find(|(n, _)| *n == name).map(|(_, c)| *c))
}

impl Template {
    /// Reads `%name` (letters, digits and `_`) and `%%`; anything else after a `%` is an error.
    pub fn parse(s: &str) -> Result<Template, String> {
        if s.trim().is_empty() {
            return Err("the template is empty".into());
        }
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut rest = s;
        while let Some(i) = rest.find('%') {
            text.push_str(&rest[..i]);
            rest = &rest[i + 1..];
            if let Some(r) = rest.strip_prefix('%') {
                text.push('%');
                rest = r;
                continue;
            }
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let name = &rest[..end];
            if name.is_empty() {
                return Err("`%` must start a field (%path, %exe…) or be doubled (%%)".into());
            }
            let Some(c) = field(name) else {
                return Err(format!(
                    "unknown field `%{name}`: expected one of {}",
                    known()
                ));
            };
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Field(c));
            rest = &rest[end..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Template { pieces })
    }

    /// The text for `e`, unescaped (the caller escapes it for where it goes).
    pub fn render(&self, e: &Event) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(c) => out.push_str(&value(*c, e).unwrap_or_else(|| NO_VALUE.into())),
            }
        }
        out
    }
}

/// A field's value in `e`, as text (lossy for bytes: this is for people); `None` when absent.
fn value(c: Column, e: &Event) -> Option<String> {
    let p = e.process.as_deref();
    let lossy = |s: Option<&crate::bytes::Str>| s.map(|s| s.lossy().into_owned());
    Some(match c {
        Column::Pid => e.pid.to_string(),
        Column::Tid => e.tid.to_string(),
        Column::Ppid => e.ppid.to_string(),
        Column::Uid => e.uid.to_string(),
        Column::Gid => e.gid.to_string(),
        Column::Euid => e.euid?.to_string(),
        Column::Egid => e.egid?.to_string(),
        Column::Auid => p?.auid?.to_string(),
        Column::Comm => e.comm.lossy().into_owned(),
        Column::Syscall => e.syscall.as_str().to_owned(),
        Column::Op => e.op.as_str().to_owned(),
        Column::Path => e.path.lossy().into_owned(),
        Column::RawPath => e.raw_path.lossy().into_owned(),
        Column::OldPath => lossy(e.old_path.as_ref())?,
        Column::Flags => format!("{:#o}", e.flags),
        Column::Mode => format!("{:#o}", e.mode),
        Column::Ret => e.ret.to_string(),
        Column::Errno => errno::name_of_ret(e.ret)?.to_owned(),
        Column::Result => {
            if e.ret >= 0 {
                "success".to_owned()
            } else {
                errno::describe_ret(e.ret)
            }
        }
        Column::Access => access_names(e),
        Column::Exe => lossy(p?.exe.as_ref())?,
        Column::Cmdline => {
            p?.argv.as_ref()?;
            String::from_utf8_lossy(&p?.cmdline()).into_owned()
        }
        Column::User => lossy(e.user.as_ref())?,
        Column::ContainerId => lossy(p?.container_id.as_ref())?,
        Column::Tty => lossy(p?.tty.as_ref())?,
        Column::ParentExe => lossy(p?.parent.as_ref()?.exe.as_ref())?,
        Column::ParentComm => p?.parent.as_ref()?.comm.lossy().into_owned(),
        Column::ParentCmdline => {
            let q = p?.parent.as_ref()?;
            q.argv.as_ref()?;
            String::from_utf8_lossy(&q.cmdline()).into_owned()
        }
        Column::Cwd => lossy(p?.cwd.as_ref())?,
        Column::ProcAgeNs => e.ts_ns.saturating_sub(p?.start_ns).to_string(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_has_a_value_mapping() {
        let e = Event {
            path: "/etc/shadow".into(),
            ..Event::default()
        };
        for c in FIELDS {
            // Absent process fields are None; the event's own are always there.
            let _ = value(*c, &e);
        }
        assert_eq!(value(Column::Path, &e).as_deref(), Some("/etc/shadow"));
    }

    #[test]
    fn fields_literals_and_percent_signs() {
        let t = Template::parse("%comm read %path (100%% sure) by %exe").unwrap();
        let e = Event {
            path: "/etc/shadow".into(),
            comm: "cat".into(),
            ..Event::default()
        };
        assert_eq!(t.render(&e), "cat read /etc/shadow (100% sure) by <NA>");
        let t = Template::parse("%container:%pid").unwrap();
        assert_eq!(t.render(&e), "<NA>:0");
    }

    #[test]
    fn unknown_fields_and_lone_percents_are_refused() {
        let e = Template::parse("opened %paht").unwrap_err();
        assert!(
            e.contains("unknown field `%paht`") && e.contains("path"),
            "{e}"
        );
        assert!(Template::parse("50% done").unwrap_err().contains("doubled"));
        assert!(Template::parse("  ").unwrap_err().contains("empty"));
    }
}
