//! What listings share when they render: Docker's sizes, ages and durations, and its
//! aligned plain tables.

/// Sizes as Docker shows them: SI units, three significant digits (`4.26MB`).
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let digits = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    let mut shown = format!("{value:.digits$}");
    if shown.contains('.') {
        shown = shown
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string();
    }
    format!("{shown}{}", UNITS[unit])
}

/// How long ago an RFC 3339 time was, as Docker says it (`2 hours ago`).
pub(crate) fn human_age(created: Option<&str>) -> String {
    let Some(time) = created.and_then(|c| c.parse::<jiff::Timestamp>().ok()) else {
        return "N/A".into();
    };
    let seconds = (jiff::Timestamp::now().as_second() - time.as_second()).max(0);
    format!("{} ago", human_duration(seconds))
}

/// A duration as Docker says it (`3 seconds`, `About a minute`, `2 hours`).
pub(crate) fn human_duration(seconds: i64) -> String {
    match seconds {
        i64::MIN..=0 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        s if s < 120 => "About a minute".into(),
        s if s < 3600 => format!("{} minutes", s / 60),
        s if s < 7200 => "About an hour".into(),
        s if s < 48 * 3600 => format!("{} hours", s / 3600),
        s if s < 14 * 86400 => format!("{} days", s / 86400),
        s if s < 60 * 86400 => format!("{} weeks", s / (7 * 86400)),
        s if s < 2 * 365 * 86400 => format!("{} months", s / (30 * 86400)),
        s => format!("{} years", s / (365 * 86400)),
    }
}

/// Prints rows as aligned columns.
pub(crate) fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}   ", width = widths[i]));
            }
        }
        out.trim_end().to_string()
    };
    println!("{}", line(header.iter().map(|h| h.to_string()).collect()));
    for row in rows {
        println!("{}", line(row.clone()));
    }
}

/// What a prune removed, as Docker lists it: `Deleted KIND:` over one line each (each
/// after `line_prefix`), then, for the prunes that count, a blank line and
/// `Total reclaimed NOUN: N`.
pub(crate) fn print_pruned(kind: &str, line_prefix: &str, removed: &[String], total: Option<&str>) {
    if !removed.is_empty() {
        println!("Deleted {kind}:");
        for item in removed {
            println!("{line_prefix}{item}");
        }
        if total.is_some() {
            println!();
        }
    }
    if let Some(noun) = total {
        println!("Total reclaimed {noun}: {}", removed.len());
    }
}
