//! A statement's own row limit: the `LIMIT N` that ends it. `query` asks for one row more, so
//! that it can say when the answer stopped there (a named query's `LIMIT 1000` is not the end
//! of the history), and `--limit` replaces it.

use std::ops::Range;

/// The byte span of N in the `LIMIT N` that ends `sql` (after blanks, `;` and `--` comment
/// lines), and N. It is the outermost statement's: an inner one sits in parentheses.
pub(super) fn trailing_limit(sql: &str) -> Option<(Range<usize>, u64)> {
    let mut end = sql.len();
    loop {
        let body = sql[..end].trim_end_matches(|c: char| c.is_whitespace() || c == ';');
        let line_start = body.rfind('\n').map_or(0, |i| i + 1);
        if body[line_start..].trim_start().starts_with("--") {
            end = line_start;
            continue;
        }
        end = body.len();
        break;
    }
    let body = &sql[..end];
    let digits = body.len() - body.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return None;
    }
    let start = end - digits;
    let before = body[..start].trim_end();
    if before.len() == start || before.len() < 5 {
        return None;
    }
    let (head, word) = before.split_at(before.len() - 5);
    let separated = head
        .chars()
        .next_back()
        .is_none_or(|c| c.is_whitespace() || c == ')');
    if !word.eq_ignore_ascii_case("limit") || !separated {
        return None;
    }
    let n = body[start..].parse().ok()?;
    Some((start..end, n))
}

/// `sql` with its trailing `LIMIT` (see [`trailing_limit`]) set to `n`.
pub(super) fn with_limit(sql: &str, span: Range<usize>, n: u64) -> String {
    format!("{}{n}{}", &sql[..span.start], &sql[span.end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_outermost_trailing_limit_only() {
        let n = |s: &str| trailing_limit(s).map(|(_, n)| n);
        assert_eq!(n("SELECT 1 LIMIT 1000"), Some(1000));
        assert_eq!(n("select 1\nlimit 5 ;\n-- the end\n"), Some(5));
        assert_eq!(n("SELECT * FROM (SELECT 1 LIMIT 3)"), None);
        assert_eq!(n("SELECT * FROM (SELECT 1) LIMIT 3"), Some(3));
        assert_eq!(n("SELECT 1 LIMIT 2 OFFSET 4"), None);
        assert_eq!(n("SELECT 1 LIMIT 2, 4"), None);
        assert_eq!(n("SELECT 20"), None);
        assert_eq!(n("SELECT xlimit 20"), None);
        assert_eq!(n("SELECT 1 AS nolimit"), None);
        let sql = "SELECT 1 LIMIT 1000;";
        let (span, _) = trailing_limit(sql).unwrap();
        assert_eq!(with_limit(sql, span, 1001), "SELECT 1 LIMIT 1001;");
    }

    /// Every named query that ends in a LIMIT is found (so each can say when it stopped there).
    #[test]
    fn named_queries_limits_are_found() {
        for (name, sql) in super::super::NAMED {
            if sql.to_ascii_uppercase().contains("\nLIMIT") {
                assert!(trailing_limit(sql).is_some(), "{name}");
            }
        }
    }
}
