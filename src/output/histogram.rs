//! A histogram drawn with bars: one line per bucket, its figures, a bar scaled to the width and
//! a mark (lost events, an outage) where the bucket is not the whole story.

use std::io::{self, Write};

use unicode_width::UnicodeWidthStr;

/// One bucket's line.
pub struct Bar {
    /// The bucket's time, as shown.
    pub label: String,
    /// One text per figure column of the header, right-aligned.
    pub cells: Vec<String>,
    /// What the bar's length shows.
    pub value: u64,
    /// Said after the bar (`lost 12`, `outage`), or empty.
    pub mark: String,
}

/// Bar lengths for `values` in `room` columns: the largest fills it; any non-zero value gets at
/// least one column, so a single event is never invisible.
pub fn lengths(values: &[u64], room: usize) -> Vec<usize> {
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    values
        .iter()
        .map(|&v| match v {
            0 => 0,
            v => ((v as u128 * room as u128).div_ceil(max as u128) as usize).max(1),
        })
        .collect()
}

/// Draws `bars` under `header` (the time column's name, then the figures') in `width` columns.
pub fn draw(out: &mut dyn Write, header: &[&str], bars: &[Bar], width: usize) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.width()).collect();
    for b in bars {
        let texts = std::iter::once(&b.label).chain(&b.cells);
        for (w, c) in widths.iter_mut().zip(texts) {
            *w = (*w).max(c.width());
        }
    }
    let marks = bars.iter().map(|b| b.mark.width()).max().unwrap_or(0);
    let fixed: usize = widths.iter().map(|w| w + 2).sum::<usize>() + marks + 1;
    let room = width.saturating_sub(fixed).max(10);
    let lens = lengths(&bars.iter().map(|b| b.value).collect::<Vec<_>>(), room);
    let line = |texts: &[&str]| -> String {
        let mut s = String::new();
        for (i, (w, c)) in widths.iter().zip(texts).enumerate() {
            let pad = " ".repeat(w - c.width());
            // The time reads left to right; figures line up on their last digit.
            if i == 0 {
                s.push_str(&format!("{c}{pad}  "));
            } else {
                s.push_str(&format!("{pad}{c}  "));
            }
        }
        s
    };
    writeln!(out, "{}", line(header).trim_end())?;
    for (b, len) in bars.iter().zip(lens) {
        let texts: Vec<&str> = std::iter::once(b.label.as_str())
            .chain(b.cells.iter().map(String::as_str))
            .collect();
        let mut text = line(&texts);
        text.push_str(&"█".repeat(len));
        if !b.mark.is_empty() {
            text.push_str(if len > 0 { " " } else { "" });
            text.push_str(&b.mark);
        }
        writeln!(out, "{}", text.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_room_and_a_single_event_shows() {
        assert_eq!(lengths(&[0, 1, 2000, 1000], 50), [0, 1, 50, 25]);
        assert_eq!(lengths(&[], 50), Vec::<usize>::new());
        assert_eq!(lengths(&[0, 0], 50), [0, 0]);
    }

    #[test]
    fn lines_hold_the_figures_the_bar_and_the_mark_within_the_width() {
        let bar = |label: &str, n: u64, mark: &str| Bar {
            label: label.into(),
            cells: vec![n.to_string()],
            value: n,
            mark: mark.into(),
        };
        let mut out = Vec::new();
        draw(
            &mut out,
            &["TIME", "EVENTS"],
            &[
                bar("12:00:00", 4, ""),
                bar("12:00:05", 2000, ""),
                bar("12:00:10", 0, "outage"),
            ],
            40,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "TIME      EVENTS");
        assert_eq!(lines[1], "12:00:00       4  █");
        assert!(lines[2].starts_with("12:00:05    2000  ███"), "{text}");
        assert_eq!(lines[3], "12:00:10       0  outage");
        assert!(lines.iter().all(|l| l.width() <= 40), "{text}");
    }
}
