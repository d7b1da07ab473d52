//! The `lade` binary: parses the command line and hands it to `lade::cli`.

fn main() -> std::process::ExitCode {
    // Started by `lade run -d` or `lade start` as a container's monitor.
    if let Some(code) = lade::container::maybe_run_monitor() {
        std::process::exit(code);
    }
    match lade::cli::parse() {
        Ok(cli) => lade::cli::run(cli),
        Err(code) => code,
    }
}
