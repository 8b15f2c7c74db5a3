//! Logging through `tracing`: human-readable by default, JSON lines with
//! `--log-format json`; level from `RUST_LOG` (default `info`). Every line of a
//! request carries its `request_id` (the span set up by the API layers). Colours only
//! when stderr is a terminal and `NO_COLOR` is unset, so log files and journald stay plain.

use std::io::IsTerminal;

pub fn init(format: &str) -> anyhow::Result<()> {
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let result = if format == "json" {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.try_init()
    };
    result.map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}
