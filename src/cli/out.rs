//! What the subcommands print: through [`say!`](crate::say), which never panics on a closed
//! pipe (`reslab presets | head -1`: the rest is dropped and the command ends as usual, a
//! training goes on and saves) and shows control characters in text it did not write itself
//! (run names, notes, file names) as escapes, so a run file cannot drive the terminal.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes to stdout; after a write fails (the reader went away) everything else is dropped.
pub fn say(args: std::fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let text = printable(&args.to_string());
    let mut out = std::io::stdout().lock();
    if out
        .write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Writes an error line to stderr, ignoring a closed stderr.
pub fn complain(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "error: {}", printable(message));
}

/// `text` with every control character but line breaks and tabs written as an escape
/// (`\u{1b}` for ESC).
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `println!` for the subcommands: see [`say`].
#[macro_export]
macro_rules! say {
    () => { $crate::cli::out::say(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::out::say(format_args!("{}\n", format_args!($($arg)*))) };
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_escaped_but_lines_kept() {
        assert_eq!(
            super::printable("a\u{1b}[2Jb\nc\td\r"),
            "a\\u{1b}[2Jb\nc\td\\r"
        );
    }
}
