//! How the `daas` binary reports a failure: one line on stderr — what failed, why, and what to do
//! — and the whole cause chain only with `-v`. Never a backtrace, whatever RUST_BACKTRACE says.

use std::fmt::Write as _;

/// Attaches what the user should do about `err`.
pub fn with_hint(err: anyhow::Error, hint: impl Into<String>) -> anyhow::Error {
    err.context(HintContext(hint.into()))
}

/// Context wrapper carrying a hint; it does not show in the message chain itself.
#[derive(Debug)]
struct HintContext(String);

impl std::fmt::Display for HintContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn flat(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The messages of the chain, hints left out, each on one line, repeats dropped (a context
/// that already quotes its cause).
fn messages(err: &anyhow::Error) -> Vec<String> {
    let hint = err.downcast_ref::<HintContext>().map(|h| h.0.as_str());
    let mut out: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if Some(text.as_str()) == hint {
            continue;
        }
        let m = flat(&text);
        if m.is_empty() || out.last().is_some_and(|prev| prev.ends_with(&m)) {
            continue;
        }
        out.push(m);
    }
    out
}

/// What to do: an attached hint, else one derived from the kind of the root cause.
fn hint(err: &anyhow::Error) -> Option<String> {
    if let Some(h) = err.downcast_ref::<HintContext>() {
        return Some(h.0.clone());
    }
    for cause in err.chain() {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            let h = match io.kind() {
                PermissionDenied => "run it as root or fix the file permissions",
                NotFound => "check the path",
                AddrInUse => {
                    "another process holds that address: stop it or pick another with --listen"
                }
                ConnectionRefused => "check that the endpoint is right and the service is running",
                _ => continue,
            };
            return Some(h.to_string());
        }
    }
    let text = err
        .chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let lower = text.to_lowercase();
    if lower.contains("connection refused")
        || lower.contains("error sending request")
        || lower.contains("dns error")
    {
        return Some(
            "check that the endpoint is right and the service is running (--chain / SUI_RPC_ENDPOINT, --server / NAUTILUS_ENDPOINT)"
                .to_string(),
        );
    }
    None
}

/// The one line printed for `err` (without a trailing newline): `error: <what failed>: <why>
/// (<what to do>; -v shows details)`.
pub fn one_line(err: &anyhow::Error) -> String {
    let msgs = messages(err);
    let mut line = String::from("error: ");
    match msgs.as_slice() {
        [] => line.push_str("failed"),
        [only] => line.push_str(only),
        [first, .., last] => {
            let _ = write!(line, "{first}: {last}");
        }
    }
    let more = msgs.len() > 2;
    match (hint(err), more) {
        (Some(h), true) => {
            let _ = write!(line, " ({h}; -v shows the details)");
        }
        (Some(h), false) => {
            let _ = write!(line, " ({h})");
        }
        (None, true) => line.push_str(" (-v shows the details)"),
        (None, false) => {}
    }
    line
}

/// The `-v` report: the one line, then every cause on its own line.
pub fn verbose(err: &anyhow::Error) -> String {
    let mut out = one_line(err);
    let msgs = messages(err);
    if msgs.len() > 1 {
        out.push_str("\ncaused by:");
        for (i, m) in msgs.iter().enumerate() {
            let _ = write!(out, "\n  {i}: {m}");
        }
    }
    out
}

/// A usage error from clap, as one line: its first line and where to look for help.
pub fn usage_line(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let first = rendered
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("invalid arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    format!("error: {} (see `daas --help`; -v shows usage)", flat(first))
}

/// Replaces the panic message with one line (no backtrace) unless `verbose`.
pub fn install_panic_hook(verbose: bool) {
    if verbose {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_string());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: internal error: {}{at} (a bug: please report it; -v shows a backtrace)",
            flat(&msg)
        );
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn chain_is_folded_into_one_line_with_a_hint() {
        let root = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused\nby peer");
        let err = Err::<(), _>(root)
            .context("connecting to 127.0.0.1:1")
            .context("reading the stake")
            .unwrap_err();
        let line = one_line(&err);
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.starts_with("error: reading the stake: refused by peer"),
            "{line}"
        );
        assert!(line.contains("service is running"), "{line}");
        assert!(line.contains("-v shows the details"), "{line}");
        let v = verbose(&err);
        assert!(v.contains("\n  1: connecting to 127.0.0.1:1"), "{v}");
    }

    #[test]
    fn explicit_hint_wins_and_is_not_a_cause() {
        let err = with_hint(
            anyhow::anyhow!("no staker config"),
            "write staker-config.json first",
        );
        assert_eq!(
            one_line(&err),
            "error: no staker config (write staker-config.json first)"
        );
        assert!(!verbose(&err).contains("caused by"));
    }

    #[test]
    fn a_context_repeating_its_cause_is_not_printed_twice() {
        let err = anyhow::anyhow!("x failed: boom").context("x failed: boom");
        assert_eq!(one_line(&err), "error: x failed: boom");
    }
}
