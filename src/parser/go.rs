//! Go's text forms, which Dockerfile flags and Docker's and BuildKit's command lines are
//! read with: a record of `encoding/csv` (`--mount`, `--output`, `--secret` values) and
//! `time.ParseDuration` (HEALTHCHECK's and `--health-*` durations, `--since`, filters).
//! One reading of each, so every flag takes the same spellings Docker takes.

/// The fields of one CSV record as Go's reader splits it: commas outside double quotes
/// separate, `""` inside quotes is one quote (`"target=/a,b",ro` is two fields). Empty
/// fields are dropped, as Docker's and BuildKit's flag readers skip them.
pub fn csv_fields(text: &str) -> Vec<String> {
    if !text.contains('"') {
        // Without quotes, a record is its text split at commas.
        return text
            .split(',')
            .filter(|field| !field.is_empty())
            .map(str::to_string)
            .collect();
    }
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields.retain(|f| !f.is_empty());
    fields
}

/// Go's `time.ParseDuration` in nanoseconds: an optional sign, then numbers (with
/// fractions), each with its unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`); `0` alone needs
/// none. `days_and_weeks` also takes `d` and `w`, as Docker's `--since`/`until=` do.
/// None for anything else, or what overflows Go's int64 of nanoseconds.
pub fn go_duration(text: &str, days_and_weeks: bool) -> Option<i128> {
    let (sign, mut rest) = match text.as_bytes().first()? {
        b'-' => (-1, &text[1..]),
        b'+' => (1, &text[1..]),
        _ => (1, text),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_end];
        if number.is_empty() || number == "." {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale: f64 = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "d" if days_and_weeks => 86_400e9,
            "w" if days_and_weeks => 7.0 * 86_400e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += value * scale;
    }
    (total <= i64::MAX as f64).then_some(sign * total as i128)
}

/// A duration that cannot be negative (HEALTHCHECK's, `--health-*`), in nanoseconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    go_duration(text, false).and_then(|nanos| u64::try_from(nanos).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_records() {
        assert_eq!(
            csv_fields("type=cache,target=/a"),
            vec!["type=cache", "target=/a"]
        );
        assert_eq!(csv_fields("\"target=/a,b\",ro"), vec!["target=/a,b", "ro"]);
        assert_eq!(csv_fields("\"a\"\"b\",,c"), vec!["a\"b", "c"]);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(30_000_000_000));
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("1.5ms"), Some(1_500_000));
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("1d"), None);
        assert_eq!(go_duration("-1.5h", false), Some(-5_400_000_000_000));
        assert_eq!(go_duration("2w", true), Some(14 * 86_400_000_000_000));
        assert_eq!(go_duration(".s", true), None);
        assert_eq!(go_duration("", true), None);
    }
}
