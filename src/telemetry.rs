//! Logging. Log lines carry ids, OIDs, routes and outcomes — never SNILS, names or document
//! bodies: those are types that print `***` (see `egisz_contract::Personal`, `Snils`), and
//! request spans record the route template, not the path.

use tracing_subscriber::EnvFilter;

/// How log lines are written (`log.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `"human"`: coloured lines for a terminal (the default).
    Human,
    /// `"json"`: one JSON object per line, for collectors.
    Json,
}

/// `[log]`, declared here, where it is used.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// How log lines are written (`log.format`). Default: human.
    pub format: LogFormat,
    /// Filter in tracing's `EnvFilter` syntax, e.g. `info,egisz_gateway=debug` (`log.level`);
    /// `RUST_LOG`, when set, wins. Default: `info`.
    pub level: String,
}

/// Installs the global subscriber. `RUST_LOG`, when set, wins over `log.level`. Calling it
/// twice is harmless (the second call changes nothing).
pub fn init(config: &LogConfig) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match config.format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Human => builder.try_init(),
    };
}

/// Sends panics to the log (in its format) with their location only: a panic message may
/// quote data, and data may be personal.
pub fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        tracing::error!(%location, "panic");
    }));
}
