//! The subset of Go templates that podman users write in `--format`
//! (`{{.State.Status}}`, `{{json .Config.Labels}}`,
//! `table {{.ID}}\t{{.Names}}`), evaluated over the JSON of what is printed.
//!
//! Supported: text; `\t` and `\n` escapes (as podman's format normalising);
//! actions `{{.}}`, `{{.A.B}}` (field paths; a field that is not there prints
//! `<no value>`, as Go does for maps), `{{json .X}}`, `{{index .X "key"}}`,
//! `{{join .X "sep"}}`, `{{upper .X}}`, `{{lower .X}}`; a leading `table`
//! (a header row, then columns aligned on tabs). Values print as Go prints
//! them: strings raw, lists as `[a b]`, maps as `map[k:v]`. Anything else
//! is an error that names the action and what is supported.

use anyhow::{bail, Result};
use serde_json::Value;

/// A parsed `--format` template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
    table: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Action {
        func: Func,
        path: Vec<String>,
        arg: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Func {
    Print,
    Json,
    Index,
    Join,
    Upper,
    Lower,
}

const SUPPORTED: &str =
    "{{.Field.Path}}, {{json .X}}, {{index .X \"key\"}}, {{join .X \"sep\"}}, {{upper .X}} or {{lower .X}}";

impl Template {
    /// Parses `text` (podman's `--format` value).
    pub fn parse(text: &str) -> Result<Template> {
        let (table, body) = match text.strip_prefix("table") {
            Some(rest) => (true, rest.trim_start()),
            None => (false, text),
        };
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        let mut parts = Vec::new();
        let mut rest = body.as_str();
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                bail!("invalid --format {text:?}: an action \"{{{{\" is not closed by \"}}}}\"");
            };
            parts.push(parse_action(text, after[..end].trim())?);
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts, table })
    }

    /// The template applied to one value.
    pub fn render(&self, v: &Value) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Action { func, path, arg } => {
                    let x = lookup(v, path);
                    out.push_str(&apply(*func, x, arg.as_deref()));
                }
            }
        }
        out
    }

    /// The header row of a `table` template: each action's field name,
    /// through `header` (e.g. `ID` → `CONTAINER ID`), text kept.
    pub fn header(&self, header: &dyn Fn(&str) -> String) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Action { path, .. } => {
                    let name = path.last().map_or(String::new(), |f| header(f));
                    out.push_str(&name);
                }
            }
        }
        out
    }

    /// Renders every value, one per line; with `table`, after a header row
    /// and with tab-separated columns aligned (two spaces between them).
    pub fn render_all(&self, values: &[Value], header: &dyn Fn(&str) -> String) -> String {
        let mut lines: Vec<String> = Vec::new();
        if self.table {
            lines.push(self.header(header));
        }
        lines.extend(values.iter().map(|v| self.render(v)));
        let mut out = if self.table {
            align(&lines)
        } else {
            lines.join("\n")
        };
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out
    }
}

fn parse_action(text: &str, action: &str) -> Result<Part> {
    let bad = || {
        anyhow::anyhow!(
            "unsupported action {{{{{action}}}}} in --format {text:?}: expected {SUPPORTED}"
        )
    };
    let words = split_words(action).ok_or_else(bad)?;
    let (func, target, arg) = match words.as_slice() {
        [w] if w.starts_with('.') => (Func::Print, w.as_str(), None),
        [f, w] if w.starts_with('.') => {
            let func = match f.as_str() {
                "json" => Func::Json,
                "upper" => Func::Upper,
                "lower" => Func::Lower,
                _ => return Err(bad()),
            };
            (func, w.as_str(), None)
        }
        [f, w, a] if w.starts_with('.') && a.starts_with('"') => {
            let func = match f.as_str() {
                "index" => Func::Index,
                "join" => Func::Join,
                _ => return Err(bad()),
            };
            let arg: String = serde_json::from_str(a).map_err(|_| bad())?;
            (func, w.as_str(), Some(arg))
        }
        _ => return Err(bad()),
    };
    let path: Vec<String> = target
        .split('.')
        .skip(1)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    if path
        .iter()
        .any(|s| !s.chars().all(|c| c.is_alphanumeric() || c == '_'))
    {
        return Err(bad());
    }
    Ok(Part::Action { func, path, arg })
}

/// Splits an action into words; a double-quoted string is one word.
fn split_words(action: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut chars = action.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            let mut w = String::from('"');
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                w.push(c);
                if c == '\\' {
                    w.push(chars.next()?);
                } else if c == '"' {
                    closed = true;
                    break;
                }
            }
            if !closed {
                return None;
            }
            words.push(w);
        } else {
            let mut w = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                w.push(c);
                chars.next();
            }
            words.push(w);
        }
    }
    Some(words)
}

/// The value at `path`: exact key first, else a key equal ignoring case
/// (podman's Go field names and JSON names differ only in case, e.g. `Id`/`ID`).
fn lookup<'v>(v: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut cur = v;
    for key in path {
        let obj = cur.as_object()?;
        cur = match obj.get(key) {
            Some(x) => x,
            None => obj
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, x)| x)?,
        };
    }
    Some(cur)
}

fn apply(func: Func, x: Option<&Value>, arg: Option<&str>) -> String {
    match (func, x) {
        (Func::Json, Some(v)) => serde_json::to_string(v).unwrap_or_default(),
        (Func::Json, None) => "null".into(),
        (_, None) => "<no value>".into(),
        (Func::Print, Some(v)) => go_format(v),
        (Func::Upper, Some(v)) => go_format(v).to_uppercase(),
        (Func::Lower, Some(v)) => go_format(v).to_lowercase(),
        (Func::Index, Some(v)) => match (v, arg) {
            (Value::Object(m), Some(k)) => m.get(k).map_or("<no value>".into(), go_format),
            _ => "<no value>".into(),
        },
        (Func::Join, Some(v)) => match v {
            Value::Array(a) => a
                .iter()
                .map(go_format)
                .collect::<Vec<_>>()
                .join(arg.unwrap_or("")),
            other => go_format(other),
        },
    }
}

/// A value as Go's `fmt` prints it with `%v`.
fn go_format(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(go_format).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, v)| format!("{k}:{}", go_format(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// Aligns tab-separated columns (two spaces between them), as podman's
/// table output does.
fn align(lines: &[String]) -> String {
    let rows: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    for r in &rows {
        for (i, c) in r.iter().enumerate().take(r.len().saturating_sub(1)) {
            let w = c.chars().count();
            if widths.len() <= i {
                widths.push(w);
            } else {
                widths[i] = widths[i].max(w);
            }
        }
    }
    rows.iter()
        .map(|r| {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate() {
                line.push_str(c);
                if i + 1 < r.len() {
                    let pad = widths[i] - c.chars().count() + 2;
                    line.push_str(&" ".repeat(pad));
                }
            }
            line.trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({"Id": "abc", "State": {"Status": "running", "Pid": 42, "Running": true},
               "Config": {"Labels": {"a": "1", "b": "x y"}, "Cmd": ["sh", "-c", "true"]},
               "Nothing": null})
    }

    #[test]
    fn fields_and_functions_render_as_go_does() {
        let r = |t: &str| Template::parse(t).unwrap().render(&doc());
        assert_eq!(
            r("{{.State.Status}} {{.State.Pid}} {{ .State.Running }}"),
            "running 42 true"
        );
        assert_eq!(r("{{.ID}}"), "abc", "case-insensitive fallback");
        assert_eq!(r("{{json .Config.Labels}}"), r#"{"a":"1","b":"x y"}"#);
        assert_eq!(r(r#"{{index .Config.Labels "b"}}"#), "x y");
        assert_eq!(r(r#"{{index .Config.Labels "zz"}}"#), "<no value>");
        assert_eq!(r(r#"{{join .Config.Cmd " "}}"#), "sh -c true");
        assert_eq!(
            r("{{.Config.Cmd}} {{.Config.Labels}}"),
            "[sh -c true] map[a:1 b:x y]"
        );
        assert_eq!(r("{{.Missing.Deeper}}|{{.Nothing}}"), "<no value>|<nil>");
        assert_eq!(r("{{upper .State.Status}}"), "RUNNING");
        assert_eq!(r("id=\\t{{.Id}}\\n"), "id=\tabc\n");
        assert_eq!(r("{{json .}}"), serde_json::to_string(&doc()).unwrap());
    }

    #[test]
    fn tables_have_a_header_and_aligned_columns() {
        let t = Template::parse("table {{.Id}}\\t{{.State.Status}}\\t{{.Id}}").unwrap();
        let rows = [
            doc(),
            json!({"Id": "longer-id", "State": {"Status": "exited"}, "x": 1}),
        ];
        let out = t.render_all(&rows, &|f: &str| f.to_uppercase());
        assert_eq!(
            out,
            "ID         STATUS   ID\nabc        running  abc\nlonger-id  exited   longer-id\n"
        );
    }

    #[test]
    fn unsupported_templates_are_errors_that_say_what_is_supported() {
        for bad in [
            "{{.State",
            "{{range .X}}",
            "{{printf \"%s\" .Id}}",
            "{{json}}",
            "{{.A-B}}",
            r#"{{index .X "unclosed}}"#,
        ] {
            let e = Template::parse(bad).unwrap_err().to_string();
            assert!(e.contains("--format"), "{bad}: {e}");
        }
        let e = Template::parse("{{range .X}}").unwrap_err().to_string();
        assert!(e.contains("expected {{.Field.Path}}"), "{e}");
    }
}
