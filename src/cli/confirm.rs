//! The question a destructive command asks before it acts, as Docker's CLI asks it
//! (`prompt.Confirm`): on standard output, ending in `[y/N] `, answered by one line of
//! standard input. Anything but yes, and the end of input, is no: a script that pipes
//! nothing in never removes anything by accident.

use std::io::{BufRead, Write};

/// Whether to go on: true at once with `force`, else the answer to `question`.
pub(crate) fn confirm(question: &str, force: bool) -> std::io::Result<bool> {
    if force {
        return Ok(true);
    }
    let mut out = std::io::stdout().lock();
    write!(out, "{question} [y/N] ")?;
    out.flush()?;
    drop(out);
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(is_yes(&answer))
}

fn is_yes(answer: &str) -> bool {
    let answer = answer.trim();
    answer.eq_ignore_ascii_case("y") || answer.eq_ignore_ascii_case("yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_yes_is_yes() {
        for yes in ["y\n", "Y", " yes \n", "YES"] {
            assert!(is_yes(yes), "{yes:?}");
        }
        for no in ["", "\n", "n", "no", "yess", "y y", "ok"] {
            assert!(!is_yes(no), "{no:?}");
        }
    }
}
