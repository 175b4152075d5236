//! A forest drawn like `ps --forest`: fixed columns, then each node's label under its parent's
//! with box-drawing branches (`├─`, `└─`, `│`), cut to the width.

use std::io::{self, Write};

use unicode_width::UnicodeWidthStr;

/// One drawn node, in depth-first order (a node's subtree follows it).
pub struct Row {
    pub depth: usize,
    /// One text per column of the header, right-aligned.
    pub cells: Vec<String>,
    /// The node's text after the branches (`exe argv`), cut to fit.
    pub label: String,
}

/// The branches in front of each node: for each level above it, `│  ` while that ancestor has
/// siblings still to come, then `├─ ` or `└─ ` (none for a root).
pub fn branches(depths: &[usize]) -> Vec<String> {
    let mut out = Vec::with_capacity(depths.len());
    // Whether the ancestor at each level has a later sibling.
    let mut open: Vec<bool> = Vec::new();
    for (i, &d) in depths.iter().enumerate() {
        let more = depths[i + 1..]
            .iter()
            .take_while(|&&e| e >= d)
            .any(|&e| e == d);
        open.truncate(d);
        let mut s = String::new();
        if d > 0 {
            for &o in open.iter().skip(1) {
                s.push_str(if o { "│  " } else { "   " });
            }
            s.push_str(if more { "├─ " } else { "└─ " });
        }
        open.resize(d, false);
        open.push(more);
        out.push(s);
    }
    out
}

/// Cuts `s` to at most `width` columns, ending in `…` when cut.
pub fn fit(s: &str, width: usize) -> String {
    if s.width() <= width {
        return s.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    if width > 0 {
        out.push('…');
    }
    out
}

/// Draws `rows` under `header` in `width` columns (labels are cut to fit; at least 20 columns
/// are left to them).
pub fn draw(out: &mut dyn Write, header: &[&str], rows: &[Row], width: usize) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.width()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(&r.cells) {
            *w = (*w).max(c.width());
        }
    }
    let fixed: usize = widths.iter().map(|w| w + 2).sum();
    let room = width.saturating_sub(fixed).max(20);
    let cells = |out: &mut dyn Write, cells: &[&str]| -> io::Result<()> {
        for (w, c) in widths.iter().zip(cells) {
            write!(out, "{}{c}  ", " ".repeat(w - c.width()))?;
        }
        Ok(())
    };
    cells(out, header)?;
    writeln!(out, "PROCESS")?;
    let depths: Vec<usize> = rows.iter().map(|r| r.depth).collect();
    for (r, b) in rows.iter().zip(branches(&depths)) {
        let texts: Vec<&str> = r.cells.iter().map(String::as_str).collect();
        cells(out, &texts)?;
        let label = fit(&r.label, room.saturating_sub(b.width()).max(8));
        writeln!(out, "{b}{label}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches_draw_like_ps_forest() {
        // 0
        // ├─ 1
        // │  ├─ 2
        // │  └─ 2
        // │     └─ 3
        // └─ 1
        // 0
        let got = branches(&[0, 1, 2, 2, 3, 1, 0]);
        assert_eq!(got, ["", "├─ ", "│  ├─ ", "│  └─ ", "│     └─ ", "└─ ", ""]);
    }

    #[test]
    fn labels_are_cut_to_the_width_with_an_ellipsis() {
        assert_eq!(fit("/usr/bin/python3 -m http.server", 12), "/usr/bin/py…");
        assert_eq!(fit("short", 12), "short");
        assert_eq!(fit("日本語のパス", 7), "日本語…");
        let rows = [
            Row {
                depth: 0,
                cells: vec!["1".into()],
                label: "init".into(),
            },
            Row {
                depth: 1,
                cells: vec!["1234".into()],
                label: "bash -c 'a very long command line that will not fit'".into(),
            },
        ];
        let mut out = Vec::new();
        draw(&mut out, &["PID"], &rows, 40).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            " PID  PROCESS\n   1  init\n1234  └─ bash -c 'a very long command l…\n"
        );
        assert!(text.lines().all(|l| l.width() <= 40));
    }
}
