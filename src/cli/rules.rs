//! `rules check`: load rule files exactly as `record` and `replay` do, and summarise them.
//! (`rules test` lives in `rules_test.rs`.)

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::output::view::ViewArgs;
use crate::output::{Format, Output, Rows};
use crate::rules::sql::Dialect;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Validate rule files and summarise their rules (exit 2 if any is invalid).
    Check(CheckArgs),
    /// Test rules against recorded fixtures: each must fire on a positive sample, stay quiet on
    /// the benign baseline and match its golden alerts (exit 1 otherwise).
    Test(super::rules_test::TestArgs),
    /// Compile rule files into one SQL query over the Parquet export (`export --format
    /// parquet`) that returns exactly the alerts `replay` prints (exit 2 naming any rule that has
    /// no faithful translation).
    Sql(SqlArgs),
    /// Convert Sigma rules (file_event, file_access, file_rename, file_delete) into a rule file,
    /// refusing by name, with the reason, each rule that has no faithful translation (exit 1).
    ImportSigma(super::rules_sigma::ImportSigmaArgs),
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqlDialect {
    Duckdb,
    Spark,
}

#[derive(clap::Args, Debug)]
pub struct SqlArgs {
    /// Rule files (YAML), merged as `replay --rules` merges them.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The engine the query is for.
    #[arg(long, value_enum)]
    pub dialect: SqlDialect,
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Rule files (YAML), merged as `replay --rules` merges them.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output format [default: table on a terminal, jsonl otherwise].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    #[command(flatten)]
    pub view: ViewArgs,
}

pub fn run(_store: &Path, cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Check(a) => check(a),
        Command::Test(a) => super::rules_test::run(a),
        Command::Sql(a) => sql(a),
        Command::ImportSigma(a) => super::rules_sigma::run(a),
    }
}

fn sql(args: SqlArgs) -> anyhow::Result<()> {
    let set = super::load_rules(&args.files)?;
    let dialect = match args.dialect {
        SqlDialect::Duckdb => Dialect::Duckdb,
        SqlDialect::Spark => Dialect::Spark,
    };
    let query = set.to_sql(dialect).map_err(|refusals| {
        let lines: Vec<String> = refusals.iter().map(|r| r.to_string()).collect();
        super::BadInput(lines.join("\n"))
    })?;
    let mut out = super::stdout();
    std::io::Write::write_all(&mut out, query.as_bytes())?;
    std::io::Write::flush(&mut out)?;
    Ok(())
}

/// For a rule a later file changed, where each key of the effective rule was written:
/// `{"path": ["a.yaml:7:5", "b.yaml:4:5"], ...}` (null for a rule as defined).
fn layers(r: &crate::rules::Rule) -> serde_json::Value {
    if r.layers.is_empty() {
        return serde_json::Value::Null;
    }
    r.layers
        .iter()
        .map(|(k, at)| ((*k).to_owned(), json!(at)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn check(args: CheckArgs) -> anyhow::Result<()> {
    let set = super::load_rules(&args.files)?;
    for w in set.warnings() {
        eprintln!("open-forensics: warning: {w}");
    }
    let mut rows = Rows::new([
        "rule",
        "severity",
        "enabled",
        "conditions",
        "ops",
        "description",
        "defined_at",
        "tags",
        "throttle",
        "layers",
    ]);
    for r in set.rules() {
        rows.push(vec![
            json!(r.name),
            json!(r.severity.as_str()),
            json!(r.enabled),
            json!(r.summary),
            json!(r.ops),
            json!(r.description),
            json!(r.origin),
            json!(r.tags),
            json!(r.throttle.as_ref().map(|t| t.to_string())),
            layers(r),
        ]);
    }
    let view = args.view.view();
    let mut out = Output::open(view.page);
    rows.write_view(view.format(args.format), &view, &mut out)?;
    out.finish()?;
    eprintln!(
        "open-forensics: {} rules in {} files: OK",
        set.rules().len(),
        args.files.len()
    );
    Ok(())
}
