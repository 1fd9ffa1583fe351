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
