//! `rpod events`: podman's flags; all logic is in `rpod-events`.

use anyhow::Result;
use clap::{ArgAction, Args};
use rpod_events::{OutputFormat, ReadOptions};

use crate::global::GlobalOpts;

/// Arguments of `rpod events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Filter output, KEY=VALUE (type, event, container, pod, volume, label, image, network); repeatable
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// Output format: json (one object per line), or the default lines
    #[arg(long)]
    pub format: Option<String>,
    /// Show events created since this time (RFC 3339, unix seconds, or a duration like 10m)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Show events created until this time (RFC 3339, unix seconds, or a duration like 10m)
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Stream new events; --stream=false prints the recorded events and exits
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", require_equals = true, value_name = "BOOL")]
    pub stream: bool,
    /// Do not truncate IDs in the default lines
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", require_equals = true, value_name = "BOOL")]
    pub no_trunc: bool,
}

/// Runs `rpod events`.
pub fn run(g: &GlobalOpts, a: EventsArgs) -> Result<()> {
    let cfg = g.load_config()?;
    let format = OutputFormat::parse(a.format.as_deref().unwrap_or(""))?.no_trunc(a.no_trunc);
    let opts = ReadOptions::from_cli(a.since.as_deref(), a.until.as_deref(), &a.filter, a.stream)?;
    let eventer = rpod_events::open(&cfg)?;
    let mut out = std::io::stdout().lock();
    rpod_events::print_events(eventer.as_ref(), &opts, format, &mut out)?;
    Ok(())
}
