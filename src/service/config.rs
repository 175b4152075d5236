//! The config file (`/etc/open-forensics/config.yaml`): a YAML mapping whose keys are `record`'s
//! long flag names (`ring-mb: 64`, `rules: [a.yaml, b.yaml]`, `stats: true`).
//!
//! Every key is fed to clap as `--key value` for each flag *not* given on the command line or in
//! the environment (clap's `ArgMatches::value_source`), so flags win, values are validated by the
//! very parsers the flags use, and every new flag is a config key with no code here. An error clap
//! raises about a flag that came from the file is mapped back to its key's `file:line:col` (the
//! positions come from `yaml_pos`, one index per file); unknown keys and values of the
//! wrong shape are caught here, positioned the same way. All of them are [`BadInput`] (exit 2).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue};
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};
use serde_yaml::Value;

use crate::error::BadInput;
use crate::yaml_pos::{PosIndex, Seg};

/// Where the recorder looks for its configuration when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/open-forensics/config.yaml";

/// Config files are small; a larger one is a mistake (or hostile).
const MAX_BYTES: u64 = 1 << 20;

/// Flags that are no config keys.
const NOT_KEYS: &[&str] = &["help", "version", "config"];

/// A loaded config file.
pub struct ConfigFile {
    pub path: PathBuf,
    text: String,
    /// Top-level keys in file order, with their values.
    entries: Vec<(String, Value)>,
    index: PosIndex,
}

impl ConfigFile {
    /// Reads and parses `path` (a YAML mapping; an empty file is an empty config).
    pub fn load(path: &Path) -> Result<ConfigFile, BadInput> {
        let f = std::fs::File::open(path)
            .map_err(|e| BadInput(format!("config {}: {e}", path.display())))?;
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::Read::take(f, MAX_BYTES + 1), &mut text)
            .map_err(|e| BadInput(format!("config {}: {e}", path.display())))?;
        if text.len() as u64 > MAX_BYTES {
            return Err(BadInput(format!(
                "config {}: larger than {MAX_BYTES} bytes",
                path.display()
            )));
        }
        Self::parse(path, text)
    }

    pub fn parse(path: &Path, text: String) -> Result<ConfigFile, BadInput> {
        let name = path.display().to_string();
        let value: Value = serde_yaml::from_str(&text).map_err(|e| {
            let (l, c) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
            BadInput(format!("{name}:{l}:{c}: {e}"))
        })?;
        let entries = match value {
            Value::Null => Vec::new(),
            Value::Mapping(m) => {
                let mut out = Vec::new();
                for (k, v) in m {
                    match k {
                        Value::String(k) => out.push((k, v)),
                        other => {
                            return Err(BadInput(format!(
                                "{name}:1:1: keys must be flag names, not {}",
                                describe(&other)
                            )))
                        }
                    }
                }
                out
            }
            other => {
                return Err(BadInput(format!(
                    "{name}:1:1: expected a mapping of record flags to values, found {}",
                    describe(&other)
                )))
            }
        };
        Ok(ConfigFile {
            path: path.to_owned(),
            text,
            entries,
            index: PosIndex::default(),
        })
    }

    /// `file:line:col` of `key`'s value.
    fn at(&mut self, key: &str) -> String {
        let pos = self.index.get(&self.text, &[Seg::Key(key.to_owned())]);
        match pos {
            Some((l, c)) => format!("{}:{l}:{c}", self.path.display()),
            None => self.path.display().to_string(),
        }
    }

    /// The keys, in file order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Which config key produced which flag, for mapping clap's errors back.
pub struct Provenance {
    flags: Vec<(String, String)>,
}

/// The arguments `config` adds to a command line whose subcommand `sub` (already built, so that
/// global flags are listed) parsed into `m`: `--key value…` for every key whose flag was not
/// given on the command line or in the environment.
pub fn args_for(
    config: &mut ConfigFile,
    sub: &Command,
    m: &ArgMatches,
) -> Result<(Vec<OsString>, Provenance), BadInput> {
    let mut out = Vec::new();
    let mut prov = Provenance { flags: Vec::new() };
    let entries = config.entries.clone();
    for (key, value) in &entries {
        let long = key.replace('_', "-");
        let arg = sub
            .get_arguments()
            .find(|a| a.get_long() == Some(long.as_str()))
            .filter(|a| !NOT_KEYS.contains(&a.get_id().as_str()));
        let Some(arg) = arg else {
            return Err(BadInput(format!(
                "{}: unknown key {key:?}: keys are `{}` flags without their dashes (see `open-forensics {} --help`)",
                config.at(key),
                sub.get_name(),
                sub.get_name()
            )));
        };
        let source = m.value_source(arg.get_id().as_str());
        if matches!(
            source,
            Some(ValueSource::CommandLine) | Some(ValueSource::EnvVariable)
        ) {
            continue; // flags (and the environment) win
        }
        let flag = format!("--{long}");
        let wrong = |config: &mut ConfigFile, want: &str| {
            BadInput(format!(
                "{}: {key}: expected {want}, found {}",
                config.at(key),
                describe(value)
            ))
        };
        if matches!(arg.get_action(), ArgAction::SetTrue) {
            match value {
                Value::Bool(true) => out.push(OsString::from(&flag)),
                Value::Bool(false) => {}
                _ => return Err(wrong(config, "true or false")),
            }
            prov.flags.push((flag, key.clone()));
            continue;
        }
        let many = arg.get_num_args().is_some_and(|r| r.max_values() > 1)
            || matches!(arg.get_action(), ArgAction::Append);
        let values: Vec<String> = match value {
            Value::Sequence(items) if many => {
                let mut vs = Vec::new();
                for item in items {
                    match scalar(item) {
                        Some(s) => vs.push(s),
                        None => return Err(wrong(config, "a list of values")),
                    }
                }
                vs
            }
            Value::Sequence(_) => return Err(wrong(config, "one value")),
            v => match scalar(v) {
                Some(s) => vec![s],
                None if many => return Err(wrong(config, "a value or a list of values")),
                None => return Err(wrong(config, "a value")),
            },
        };
        if values.is_empty() {
            continue;
        }
        // `--key=value` keeps a value that starts with a dash a value.
        if matches!(arg.get_action(), ArgAction::Append) || !many {
            for v in values {
                out.push(OsString::from(format!("{flag}={v}")));
            }
        } else {
            out.push(OsString::from(&flag));
            out.extend(values.into_iter().map(OsString::from));
        }
        prov.flags.push((flag, key.clone()));
    }
    Ok((out, prov))
}

/// Maps an error clap raised over the command line plus the config's arguments to the config
/// key it concerns, when it concerns one; otherwise clap's own message.
pub fn explain(config: &mut ConfigFile, prov: &Provenance, err: &clap::Error) -> BadInput {
    let rendered = err.render().to_string();
    // Up to clap's blank line (before "Usage:"), on one line.
    let first = rendered
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
        .trim_start_matches("error: ")
        .to_owned();
    let flag = match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.split([' ', '=']).next().map(str::to_owned),
        _ => None,
    };
    let key = flag.and_then(|f| {
        prov.flags
            .iter()
            .find(|(pf, _)| *pf == f)
            .map(|(_, k)| k.clone())
    });
    match key {
        Some(k) => BadInput(format!("{}: {k}: {first}", config.at(&k))),
        None => BadInput(format!(
            "{first} (with the settings of {})",
            config.path.display()
        )),
    }
}

/// The config file to read: `explicit` (`--config`, `OPEN_FORENSICS_CONFIG`), which must exist,
/// else [`DEFAULT_PATH`] if it exists.
pub fn locate(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(p) => Some(p.to_owned()),
        None => Some(PathBuf::from(DEFAULT_PATH)).filter(|p| p.exists()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches, Parser};

    #[derive(Parser, Debug)]
    struct T {
        #[arg(long, default_value_t = 16)]
        ring_mb: u32,
        #[arg(long, num_args = 1..)]
        rules: Vec<PathBuf>,
        #[arg(long)]
        stats: bool,
        #[arg(long, requires = "rules")]
        alerts: Option<PathBuf>,
    }

    fn run(cli: &[&str], yaml: &str) -> Result<T, String> {
        let mut cmd = T::command();
        cmd.build();
        let m = cmd
            .clone()
            .try_get_matches_from(cli)
            .map_err(|e| e.to_string())?;
        let mut cf = ConfigFile::parse(Path::new("c.yaml"), yaml.into()).map_err(|e| e.0)?;
        let (extra, prov) = args_for(&mut cf, &cmd, &m).map_err(|e| e.0)?;
        let argv: Vec<OsString> = cli.iter().map(OsString::from).chain(extra).collect();
        let m = cmd
            .try_get_matches_from(argv)
            .map_err(|e| explain(&mut cf, &prov, &e).0)?;
        T::from_arg_matches(&m).map_err(|e| e.to_string())
    }

    #[test]
    fn keys_become_flags_and_flags_win() {
        let t = run(
            &["t"],
            "ring-mb: 64\nrules: [a.yaml, b.yaml]\nstats: true\n",
        )
        .unwrap();
        assert_eq!(t.ring_mb, 64);
        assert_eq!(t.rules, vec![PathBuf::from("a.yaml"), "b.yaml".into()]);
        assert!(t.stats);
        let t = run(&["t", "--ring-mb", "8"], "ring_mb: 64\n").unwrap();
        assert_eq!(t.ring_mb, 8);
        assert_eq!(run(&["t"], "").unwrap().ring_mb, 16);
    }

    #[test]
    fn errors_name_the_key_and_its_position() {
        let e = run(&["t"], "stats: true\nring-mb: lots\n").unwrap_err();
        assert!(
            e.starts_with("c.yaml:2:10: ring-mb: invalid value 'lots'"),
            "{e}"
        );
        let e = run(&["t"], "ring-mb: 1\nrulez: [a]\n").unwrap_err();
        assert!(e.starts_with("c.yaml:2:8: unknown key \"rulez\""), "{e}");
        let e = run(&["t"], "stats: yes please\n").unwrap_err();
        assert!(
            e.starts_with("c.yaml:1:8: stats: expected true or false"),
            "{e}"
        );
        let e = run(&["t"], "ring-mb: [1, 2]\n").unwrap_err();
        assert!(
            e.starts_with("c.yaml:1:10: ring-mb: expected one value"),
            "{e}"
        );
        let e = run(&["t"], "alerts: /tmp/x\n").unwrap_err();
        assert!(e.contains("--rules") && e.contains("c.yaml"), "{e}");
        let e = run(&["t"], "- a\n").unwrap_err();
        assert!(e.contains("expected a mapping"), "{e}");
        let e = run(&["t"], "a: [\n").unwrap_err();
        assert!(e.starts_with("c.yaml:"), "{e}");
    }
}
