//! Output formatting shared by the read commands: `-o table|json|yaml`.

use std::io::Write;

use clap::ValueEnum;
use serde::Serialize;

use super::CliError;

/// The format of a read command's output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable text.
    #[default]
    Table,
    /// JSON, one document.
    Json,
    /// YAML, one document.
    Yaml,
}

/// Writes `value` as JSON or YAML, or calls `table` to write it for people.
pub fn emit<T: Serialize>(
    format: Format,
    value: &T,
    table: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), CliError> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = match format {
        Format::Table => table(&mut out),
        Format::Json => serde_json::to_writer_pretty(&mut out, value)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(out)),
        Format::Yaml => {
            let text = serde_saphyr::to_string(value).map_err(|err| {
                CliError::failed(format!("failed to encode output as YAML: {err}"))
            })?;
            out.write_all(text.as_bytes())
        }
    };
    match result {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(|err| CliError::failed(format!("failed to write output: {err}"))),
    }
}

/// Renders rows as aligned columns under a header.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let mut text = String::new();
    let line = |cells: &mut dyn Iterator<Item = &str>, text: &mut String| {
        let parts: Vec<String> = cells
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}", w = *w))
            .collect();
        text.push_str(parts.join("  ").trim_end());
        text.push('\n');
    };
    line(&mut header.iter().copied(), &mut text);
    for row in rows {
        line(&mut row.iter().map(String::as_str), &mut text);
    }
    text
}
