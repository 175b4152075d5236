//! Exit codes: 0 success, 1 failure, 2 input the user must fix.

use crate::error::BadInput;
use crate::store::StoreError;

pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;

/// The exit code of an error: 2 for anything the user must fix (bad input, an unsafe store),
/// else 1.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    let bad = e.chain().any(|c| {
        c.is::<BadInput>()
            || c.downcast_ref::<StoreError>()
                .is_some_and(|s| s.is_unsafe())
    });
    if bad {
        EXIT_BAD_INPUT
    } else {
        EXIT_FAILURE
    }
}
