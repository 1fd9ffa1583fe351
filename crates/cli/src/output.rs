//! Printing helpers shared by commands.

use anyhow::Result;
use serde::Serialize;

/// Prints `value` as indented JSON, as podman's `--format json`.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Whether a `--format` value asks for JSON.
pub fn is_json(format: Option<&str>) -> bool {
    matches!(format, Some(f) if f.eq_ignore_ascii_case("json") || f == "{{json .}}")
}

/// The Go template of a `--format` value that is not `json`, parsed (so
/// that a bad template is refused before any work).
pub fn template(format: Option<&str>) -> Result<Option<crate::template::Template>> {
    format
        .filter(|f| !is_json(Some(f)))
        .map(crate::template::Template::parse)
        .transpose()
}

/// Prints `docs` through a template, one per line (`table`: with a header
/// made of `header(field)`).
pub fn print_template<T: Serialize>(
    t: &crate::template::Template,
    docs: &[T],
    header: &dyn Fn(&str) -> String,
) -> Result<()> {
    let docs = docs
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()?;
    print!("{}", t.render_all(&docs, header));
    Ok(())
}

/// The default `table` header of a field: its name in capitals.
pub fn upper_header(field: &str) -> String {
    field.to_uppercase()
}
