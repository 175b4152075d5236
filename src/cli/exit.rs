//! Exit codes: 0 success, 1 failure, 2 input the user must fix.

use crate::error::BadInput;
use crate::safe_path::PathError;
use crate::store::StoreError;

pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;

/// The exit code of an error: 2 for anything the user must fix (bad input, an unsafe or missing
/// store, an output path another user could redirect), else 1.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    let bad = e.chain().any(|c| {
        c.is::<BadInput>()
            || matches!(
                c.downcast_ref::<PathError>(),
                Some(PathError::Refused { .. })
            )
            || c.downcast_ref::<StoreError>()
                .is_some_and(|s| s.is_bad_input())
    });
    if bad {
        EXIT_BAD_INPUT
    } else {
        EXIT_FAILURE
    }
}

/// The error as one line: each cause after the message it explains, except a cause the message
/// already ends with (`path: Permission denied` caused by `Permission denied` is said once).
pub fn message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for c in e.chain() {
        let c = c.to_string();
        if out.ends_with(&c) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_denied_is_said_once() {
        let io = std::io::Error::from_raw_os_error(libc::EACCES);
        let e = anyhow::Error::from(StoreError::Io {
            path: "s".into(),
            source: io,
        })
        .context("open the store");
        assert_eq!(
            message(&e),
            "open the store: s: Permission denied (os error 13)"
        );
    }
}
