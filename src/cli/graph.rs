//! `ferry graph`: the pipeline as text, Graphviz dot or Mermaid.

use clap::{Args, ValueEnum};

use super::validate::load_config;
use super::{CliError, Context};
use crate::pipeline::GraphFormat;

/// Draw the pipeline: its stages, upstream edges, fan-out and fan-in
#[derive(Debug, Args)]
pub struct GraphArgs {
    /// How to draw it
    #[arg(long, value_enum, default_value_t = Style::Text)]
    pub format: Style,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Style {
    /// A readable listing
    Text,
    /// Graphviz dot (pipe into `dot -Tsvg`)
    Dot,
    /// A Mermaid flowchart (paste into Markdown)
    Mermaid,
}

pub fn run(ctx: &Context, args: GraphArgs) -> Result<(), CliError> {
    let config = load_config(ctx)?;
    let format = match args.format {
        Style::Text => GraphFormat::Text,
        Style::Dot => GraphFormat::Dot,
        Style::Mermaid => GraphFormat::Mermaid,
    };
    print!("{}", config.pipeline.draw(format));
    Ok(())
}
