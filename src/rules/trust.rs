//! Which conditions trust what a process says about itself. A name (`comm`) is whatever the
//! process set (`prctl(PR_SET_NAME)`); an executable path is what the kernel ran, but a file can
//! bear that path in a chroot or a private mount namespace. So an `exe` match that would exempt
//! an event holds only for an image the recorder verified as the host's own file at that path
//! (`Process::exe_verified`), and `rules check` warns about exemptions keyed on names alone.

use super::diag::{Ctx, Origin};
use super::raw::Items;

/// Whether an `exe` condition's match exempts the event (so it needs a verified image): a rule's
/// `not_exe` (a match keeps the rule from firing) and an `except` block's `exe` (a match makes
/// the exception hold). A rule's `exe` and an exception's `not_exe` match by path alone: a fake
/// there only makes the rule fire more.
pub(super) fn exe_exempts(in_except: bool, neg: bool) -> bool {
    in_except != neg
}

const COMM_KEYS: &[&str] = &["comm", "parent_comm", "ancestor_comm"];
const EXE_KEYS: &[&str] = &["exe", "parent_exe", "ancestor_exe"];

fn given(conds: &[(&'static str, &Items)], keys: &[&str]) -> Option<&'static str> {
    conds
        .iter()
        .find(|(k, i)| i.present && keys.contains(k))
        .map(|(k, _)| *k)
}

fn warn_name_trust(ctx: &mut Ctx, at: &Origin, rule: &str, what: &str) {
    ctx.warn(
        at,
        format!(
            "rule `{rule}`: {what} trusts the process name alone, which any process sets for itself (prctl PR_SET_NAME); key it on the executable (`exe`, `not_exe`), which holds only for the host's own file at that path"
        ),
    );
}

/// Warns about a rule's exemptions that hold on names alone: a `not_comm` (or `not_parent_comm`,
/// `not_ancestor_comm`) of the rule, and an `except` block with a name condition and no
/// executable condition.
pub(super) fn lint(
    ctx: &mut Ctx,
    rule: &str,
    conds: &[(&'static str, &Items)],
    excepts: &[(Origin, Vec<(&'static str, &Items)>)],
    at: &Origin,
) {
    for (key, items) in conds {
        let name_key = key
            .strip_prefix("not_")
            .is_some_and(|k| COMM_KEYS.contains(&k));
        if items.present && name_key {
            warn_name_trust(ctx, &items.key_at(at, key), rule, &format!("`{key}`"));
        }
    }
    for (block_at, e) in excepts {
        if let (Some(key), None) = (given(e, COMM_KEYS), given(e, EXE_KEYS)) {
            let at = block_at.key(key);
            warn_name_trust(ctx, &at, rule, "this exception");
        }
    }
}

/// The same for the proof of concept's `open_monitor`: `deny_comm` exempts by name, and a
/// non-empty `allow_comm` exempts every other name.
pub(super) fn lint_open_monitor(ctx: &mut Ctx, allow: &Items, deny: &Items, at: &Origin) {
    for (key, items) in [("allow_comm", allow), ("deny_comm", deny)] {
        if !items.items.is_empty() {
            warn_name_trust(ctx, &at.key(key), "open_sensitive", &format!("`{key}`"));
        }
    }
}

/// What replay and query print (once) when [`super::Engine::trusted_unverified`]: the store's
/// images lack identities, so an allow-list of executables trusted their paths.
pub const UNVERIFIED_EXE_NOTICE: &str = "some process images in this range have no recorded executable identity (segments written before identities were recorded): `not_exe` and `except: exe` trusted their path alone, which a chroot or a private mount namespace can fake";
