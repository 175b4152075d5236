//! A Sigma rule file as read: the metadata kept in the output, the log source and the detection.

use serde_yaml::Value;

/// The Sigma log source categories with a rule form here (`file_event`, `file_access`,
/// `file_rename`, `file_delete`, `process_creation`; what each matches: `emit::ops`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Category {
    Created,
    Accessed,
    Renamed,
    Deleted,
    /// `process_creation`: exec events, whose process is the new image.
    Exec,
}

pub(super) struct SigmaRule {
    pub title: String,
    pub id: String,
    pub level: String,
    pub author: Option<String>,
    pub tags: Vec<String>,
    pub references: Vec<String>,
    pub logsource: serde_yaml::Mapping,
    /// Selections by name, in file order.
    pub selections: Vec<(String, Value)>,
    pub condition: Value,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn strings(v: Option<&Value>, what: &str) -> Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Sequence(s)) => s
            .iter()
            .map(|x| text(x).ok_or_else(|| format!("`{what}` holds a value that is not a string")))
            .collect(),
        Some(x) => text(x)
            .map(|s| vec![s])
            .ok_or_else(|| format!("`{what}` is not a list of strings")),
    }
}

pub(super) fn parse(yaml: &str) -> Result<SigmaRule, String> {
    let v: Value = serde_yaml::from_str(yaml).map_err(|e| format!("not YAML: {e}"))?;
    let Value::Mapping(m) = v else {
        return Err("not a Sigma rule (expected a mapping)".to_owned());
    };
    let get = |k: &str| m.get(k);
    let required = |k: &str| -> Result<String, String> {
        get(k)
            .and_then(text)
            .ok_or_else(|| format!("no `{k}` (a Sigma rule needs one)"))
    };
    if get("correlation").is_some() {
        return Err("a correlation rule (counts over time) has no rule form".to_owned());
    }
    let Some(Value::Mapping(logsource)) = get("logsource") else {
        return Err("no `logsource` mapping".to_owned());
    };
    let Some(Value::Mapping(detection)) = get("detection") else {
        return Err("no `detection` mapping".to_owned());
    };
    let mut selections = Vec::new();
    let mut condition = None;
    for (k, v) in detection {
        let k = text(k).ok_or("a detection key is not a string")?;
        if k == "condition" {
            condition = Some(v.clone());
        } else if k == "timeframe" {
            return Err("`timeframe` (an aggregation window) has no rule form".to_owned());
        } else {
            selections.push((k, v.clone()));
        }
    }
    Ok(SigmaRule {
        title: required("title")?,
        id: required("id")?,
        level: required("level")?,
        author: get("author").and_then(text),
        tags: strings(get("tags"), "tags")?,
        references: strings(get("references"), "references")?,
        logsource: logsource.clone(),
        selections,
        condition: condition.ok_or("no `detection.condition`")?,
    })
}

impl SigmaRule {
    /// The log source, if its events are recorded here.
    pub fn category(&self) -> Result<Category, String> {
        let field = |k: &str| self.logsource.get(k).and_then(text);
        if let Some(p) = field("product") {
            if p != "linux" {
                return Err(format!(
                    "logsource product `{p}`: only `linux` is recorded here"
                ));
            }
        }
        if let Some(s) = field("service") {
            return Err(format!(
                "logsource service `{s}`: its log is not what the recorder sees"
            ));
        }
        match field("category").as_deref() {
            Some("file_event") => Ok(Category::Created),
            Some("file_access") => Ok(Category::Accessed),
            Some("file_rename") => Ok(Category::Renamed),
            Some("file_delete") => Ok(Category::Deleted),
            Some("process_creation") => Ok(Category::Exec),
            Some(c) => Err(format!("logsource category `{c}` is not recorded here (file_event, file_access, file_rename, file_delete and process_creation are)")),
            None => Err("the logsource has no category".to_owned()),
        }
    }
}
