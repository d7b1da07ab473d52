//! `--format` with Go-template syntax, as Docker's CLI takes it (`{{.State.Status}}`,
//! `{{json .Config}}`, `{{index .Config.Labels "k"}}`, `{{range}}`), rendered by gtmpl
//! over the same JSON the command prints with `--format json`.

use anyhow::{anyhow, Result};
use gtmpl::{Context, FuncError, Template, Value};
use serde_json::Value as Json;

/// A compiled `--format` template.
pub(crate) struct Format {
    template: Template,
}

impl Format {
    pub(crate) fn parse(text: &str) -> Result<Format> {
        let mut template = Template::default();
        template.add_func("json", json_func);
        template.add_func("upper", upper_func);
        template.add_func("lower", lower_func);
        template
            .parse(text)
            .map_err(|e| anyhow!("invalid --format template {text:?}: {e}"))?;
        Ok(Format { template })
    }

    /// The template applied to one item, as one line of output.
    pub(crate) fn render(&self, item: &Json) -> Result<String> {
        self.template
            .render(&Context::from(to_template(item)))
            .map_err(|e| anyhow!("--format: {e}"))
    }
}

/// What `inspect` prints: every item found as one JSON array at the end (like Docker,
/// even when other items were not found), or each item through `--format` as it comes.
pub(crate) struct InspectOutput {
    template: Option<Format>,
    items: Vec<Json>,
}

impl InspectOutput {
    pub(crate) fn new(format: Option<&str>) -> Result<InspectOutput> {
        Ok(InspectOutput {
            template: format.map(Format::parse).transpose()?,
            items: Vec::new(),
        })
    }

    pub(crate) fn push(&mut self, item: Json) -> Result<()> {
        match &self.template {
            Some(template) => println!("{}", template.render(&item)?),
            None => self.items.push(item),
        }
        Ok(())
    }

    pub(crate) fn finish(self) -> Result<()> {
        if self.template.is_none() {
            println!("{}", serde_json::to_string_pretty(&self.items)?);
        }
        Ok(())
    }
}

fn to_template(json: &Json) -> Value {
    match json {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::from(i),
            (None, Some(u), _) => Value::from(u),
            (_, _, Some(f)) => Value::from(f),
            _ => Value::Nil,
        },
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => Value::Array(items.iter().map(to_template).collect()),
        Json::Object(map) => Value::Map(
            map.iter()
                .map(|(k, v)| (k.clone(), to_template(v)))
                .collect(),
        ),
    }
}

fn to_json(value: &Value) -> Json {
    match value {
        Value::NoValue | Value::Nil | Value::Function(_) => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::String(s) => Json::String(s.clone()),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Json::from(i),
            (None, Some(u), _) => Json::from(u),
            (_, _, Some(f)) => Json::from(f),
            _ => Json::Null,
        },
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Object(map) | Value::Map(map) => {
            let sorted: std::collections::BTreeMap<_, _> =
                map.iter().map(|(k, v)| (k.clone(), to_json(v))).collect();
            Json::Object(sorted.into_iter().collect())
        }
    }
}

fn one_arg<'a>(name: &str, args: &'a [Value]) -> Result<&'a Value, FuncError> {
    match args {
        [value] => Ok(value),
        _ => Err(FuncError::ExactlyXArgs(name.into(), 1)),
    }
}

/// `{{json .X}}`: the value as compact JSON.
fn json_func(args: &[Value]) -> Result<Value, FuncError> {
    let value = one_arg("json", args)?;
    Ok(Value::String(to_json(value).to_string()))
}

fn upper_func(args: &[Value]) -> Result<Value, FuncError> {
    match one_arg("upper", args)? {
        Value::String(s) => Ok(Value::String(s.to_uppercase())),
        _ => Err(FuncError::UnableToConvertFromValue),
    }
}

fn lower_func(args: &[Value]) -> Result<Value, FuncError> {
    match one_arg("lower", args)? {
        Value::String(s) => Ok(Value::String(s.to_lowercase())),
        _ => Err(FuncError::UnableToConvertFromValue),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_templates() {
        let item = serde_json::json!({
            "State": { "Status": "running", "Pid": 42 },
            "Config": { "Labels": { "team": "a" }, "Env": ["A=1", "B=2"] },
        });
        let render = |t: &str| Format::parse(t).unwrap().render(&item).unwrap();
        assert_eq!(render("{{.State.Status}}"), "running");
        assert_eq!(render("{{.State.Pid}}"), "42");
        assert_eq!(render(r#"{{index .Config.Labels "team"}}"#), "a");
        assert_eq!(render("{{range .Config.Env}}{{.}};{{end}}"), "A=1;B=2;");
        assert_eq!(render("{{json .Config.Labels}}"), r#"{"team":"a"}"#);
        assert!(Format::parse("{{.State").is_err());
    }
}
