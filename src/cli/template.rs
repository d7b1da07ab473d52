//! `--format` with Go-template syntax, as Docker's CLI takes it (`{{.State.Status}}`,
//! `{{json .Config}}`, `{{index .Config.Labels "k"}}`, `{{range}}`), rendered by gtmpl
//! over the same JSON the command prints with `--format json`.
//!
//! A template is code its user runs: gtmpl (kept in `vendor/gtmpl` with fixes) bounds
//! how deep it nests and recurses, how many steps it takes, how wide a `printf` pads and
//! how much its functions make; here each rendering's output is bounded too, and every
//! error becomes one line of bounded length.

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
        template.parse(text).map_err(|e| {
            anyhow!(
                "invalid --format template {}: {}",
                one_line(&format!("{text:?}")),
                one_line(&e.to_string())
            )
        })?;
        Ok(Format { template })
    }

    /// The template applied to one item, as one line of output.
    pub(crate) fn render(&self, item: &Json) -> Result<String> {
        let mut output = BoundedOutput::default();
        self.template
            .execute(&mut output, &Context::from(to_template(item)))
            .map_err(|e| anyhow!("--format: {}", one_line(&e.to_string())))?;
        String::from_utf8(output.bytes)
            .map_err(|_| anyhow!("--format: the template made text that is not UTF-8"))
    }
}

/// The most one rendering of a template may print: far past any real `--format`, short
/// of what would fill a terminal's scroll-back or the memory of a small machine.
const MAX_OUTPUT: usize = 16 << 20;

/// The most bytes of a template's text, or of the engine's message, an error quotes.
const MAX_ERROR: usize = 400;

/// A rendering's output, refused past [`MAX_OUTPUT`] bytes.
#[derive(Default)]
struct BoundedOutput {
    bytes: Vec<u8>,
}

impl std::io::Write for BoundedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_OUTPUT {
            return Err(std::io::Error::other(format!(
                "the template prints more than {MAX_OUTPUT} bytes"
            )));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `text` on one line (line breaks and other control characters escaped), cut after
/// [`MAX_ERROR`] bytes: an error may quote a template or a value of any size.
fn one_line(text: &str) -> String {
    let mut line = String::new();
    for c in text.chars() {
        if line.len() >= MAX_ERROR {
            line.push_str("...");
            break;
        }
        if c.is_control() {
            line.extend(c.escape_default());
        } else {
            line.push(c);
        }
    }
    line
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

    /// The template parsed and rendered over a small item: its output, or its error.
    fn outcome(text: &str) -> Result<String> {
        let item = serde_json::json!({
            "Names": "web", "State": { "Status": "running" }, "Labels": { "a": "b" },
            "Env": ["A=1", "B=2"],
        });
        Format::parse(text)?.render(&item)
    }

    fn error_of(text: &str) -> String {
        match outcome(text) {
            Ok(output) => panic!("{text:?} rendered {} bytes", output.len()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn unclosed_actions_end_in_an_error() {
        for text in [
            "{{.",
            "{{ .",
            "{{- .",
            "{{$",
            "{{.Names",
            "{{ $x := .",
            "{{-",
            "{{(",
        ] {
            let error = error_of(text);
            assert!(!error.contains('\n'), "{text:?}: {error}");
        }
        assert!(error_of("{{.").contains("unclosed action"));
    }

    #[test]
    fn printf_widths_and_precisions_are_bounded() {
        assert!(error_of(r#"{{printf "%999999999d" 1}}"#).contains("65535"));
        assert!(error_of(r#"{{printf "%.999999999f" 1.5}}"#).contains("65535"));
        assert!(error_of(r#"{{printf "%*d" 999999999 1}}"#).contains("65535"));
        assert!(error_of(r#"{{printf "%[0]d" 1}}"#).contains("index"));
        assert_eq!(
            outcome(r#"{{printf "%5d|%-3s|" 42 "a"}}"#).unwrap(),
            "   42|a  |"
        );
    }

    #[test]
    fn recursion_and_nesting_are_bounded() {
        let error = error_of(r#"{{define "x"}}{{template "x"}}{{end}}{{template "x"}}"#);
        assert!(error.contains("deep"), "{error}");
        let nested = format!("{}x{}", "{{if .}}".repeat(500), "{{end}}".repeat(500));
        assert!(error_of(&nested).contains("deep"));
        let parens = format!("{{{{{}.{}}}}}", "(".repeat(500), ")".repeat(500));
        assert!(error_of(&parens).contains("deep"));
        let ok = format!("{}x{}", "{{if .}}".repeat(20), "{{end}}".repeat(20));
        assert_eq!(outcome(&ok).unwrap(), "x");
    }

    #[test]
    fn multiplying_work_and_values_are_bounded() {
        // Each call makes two more until a string is 40 long: 2^40 calls, no output.
        let calls = r#"{{define "x"}}{{if lt (len .) 40}}{{template "x" (print . "a")}}{{template "x" (print . "a")}}{{end}}{{end}}{{template "x" ""}}"#;
        assert!(error_of(calls).contains("steps"));
        let doubling =
            r#"{{define "d"}}{{template "d" (print . .)}}{{end}}{{template "d" "xxxxxxxx"}}"#;
        assert!(error_of(doubling).contains("bytes"));
        let printing = r#"{{define "x"}}{{if lt (len .) 40}}{{printf "%65535d" 1}}{{template "x" (print . "a")}}{{template "x" (print . "a")}}{{end}}{{end}}{{template "x" ""}}"#;
        assert!(error_of(printing).contains("prints more than"));
    }

    /// Templates of Docker's kind, whose every truncation and random splice the fuzz
    /// tests feed the engine.
    const SEEDS: &[&str] = &[
        "{{.Names}}\t{{.State.Status}}",
        r#"{{- range $k, $v := .Labels -}} {{ $k }}={{ printf "%-8s|%q" $v $v }} {{- end }}"#,
        r#"{{ if eq .Names "web" }}{{ json .Env }}{{ else if .State }}{{ upper .Names }}{{ end }}"#,
        r#"{{define "t"}}{{ index . 0 | lower }}{{end}}{{ with .Env }}{{ template "t" . }}{{ end }}"#,
        "{{/* note */}}{{ len .Env }} {{ (index .Labels `a`) }} {{ printf \"%[1]*.[2]*[3]f\" 4 2 1.5 }}",
        "{{ 'x' }} {{ -1.5e3 }} {{ 0x1F }} {{ true }} {{ nil }} {{ .Missing.Deeper }}",
    ];

    /// Runs one template, as a command would; true when no panic and the output stayed
    /// within bounds (the hang the lexer had would keep the test from ever ending).
    fn survives(text: &str) -> bool {
        match std::panic::catch_unwind(|| outcome(text)) {
            Ok(Ok(output)) => output.len() <= MAX_OUTPUT,
            Ok(Err(error)) => !error.to_string().contains('\n'),
            Err(_) => false,
        }
    }

    #[test]
    fn every_truncation_of_a_valid_template_ends() {
        for seed in SEEDS {
            for (cut, _) in seed.char_indices() {
                assert!(survives(&seed[..cut]), "{:?}", &seed[..cut]);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn spliced_templates_end(
            picks in proptest::collection::vec((0..SEEDS.len(), 0usize..200, 0usize..200), 1..4),
            noise in "[{}().$\"`'%*a-z0-9 |:=-]{0,12}",
        ) {
            let mut text = String::new();
            for (seed, from, to) in picks {
                let seed = SEEDS[seed];
                let bounds: Vec<usize> = seed.char_indices().map(|(i, _)| i).chain([seed.len()]).collect();
                let (a, b) = (bounds[from % bounds.len()], bounds[to % bounds.len()]);
                text.push_str(&seed[a.min(b)..a.max(b)]);
                text.push_str(&noise);
            }
            proptest::prop_assert!(survives(&text), "{:?}", text);
        }
    }
}
