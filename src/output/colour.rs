//! Colour on a terminal: `--color auto|always|never`, `NO_COLOR` (no-color.org) and `TERM=dumb`
//! honoured; severities each with their colour.

use anstyle::{AnsiColor, Style};

use crate::rules::Severity;

/// When to colour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    /// On a terminal, unless `NO_COLOR` is set (and not empty) or `TERM` is `dumb`.
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorWhen {
    /// Whether to colour output going to a terminal (`terminal`) or not.
    pub fn wanted(self, terminal: bool) -> bool {
        match self {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => {
                let set = |v: &str| std::env::var_os(v).is_some_and(|x| !x.is_empty());
                terminal && !set("NO_COLOR") && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
            }
        }
    }
}

/// A severity's style: the worse, the louder.
fn style(s: Severity) -> Style {
    match s {
        Severity::Critical => AnsiColor::Magenta.on_default().bold(),
        Severity::High => AnsiColor::Red.on_default().bold(),
        Severity::Medium => AnsiColor::Yellow.on_default(),
        Severity::Low => AnsiColor::Cyan.on_default(),
        Severity::Info => Style::new().dimmed(),
    }
}

/// `text` in the severity's colour, or as is.
pub fn paint(s: Severity, text: &str, colour: bool) -> String {
    if colour {
        let st = style(s);
        format!("{}{text}{}", st.render(), st.render_reset())
    } else {
        text.to_owned()
    }
}
