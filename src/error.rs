//! Error kinds every part can raise, and the exit code each maps to. The ground floor: it depends
//! on nothing else in the crate, so capture, store and cli all use it without importing each other.

/// Input the user must fix (a malformed file, a bad argument, an unsafe store, missing
/// privilege): exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// A command that ran but must report failure without an error chain (e.g. `rules test` found
/// failing rules, or some segments could not be read): exit code 1, message already printed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Failed(pub String);

pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;

/// The exit code of an error: 2 for anything the user must fix, else 1.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    let bad = e.chain().any(|c| {
        c.is::<BadInput>()
            || c.downcast_ref::<crate::store::StoreError>()
                .is_some_and(|s| s.is_unsafe())
    });
    if bad {
        EXIT_BAD_INPUT
    } else {
        EXIT_FAILURE
    }
}
