//! Where a config file's TOML is wrong, without quoting it: the files this crate reads may hold
//! secrets inline, and an error message ends up in logs.

/// `line N (key): message` for a TOML parse error in `text` (`line N: message` when the line
/// has no plain `key =`, just the message when the error has no position). Never quotes the
/// line itself, which may hold an API key.
pub fn toml_error(text: &str, err: &toml::de::Error) -> String {
    let Some(span) = err.span() else {
        return err.message().to_owned();
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line_no = before.matches('\n').count() + 1;
    let key = text
        .lines()
        .nth(line_no - 1)
        .and_then(|line| line.split_once('='))
        .map(|(key, _)| key.trim())
        .filter(|key| {
            !key.is_empty()
                && key.len() <= 64
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
    match key {
        Some(key) => format!("line {line_no} ({key}): {}", err.message()),
        None => format!("line {line_no}: {}", err.message()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Conf {
        api_key: String,
        timeout: u64,
    }

    #[test]
    fn names_the_line_and_key_but_never_another_line() {
        let text = "api_key = \"s3cret-value\"\ntimeout = \"soon\"\n";
        let err = toml::from_str::<Conf>(text).unwrap_err();
        let message = toml_error(text, &err);
        assert!(message.starts_with("line 2 (timeout): "), "{message}");
        // The other lines are never shown (the parser's own message may name the bad value).
        assert!(!message.contains("s3cret"), "{message}");
        let text = "api_key = \"s3cret\"\n[[[\n";
        let message = toml_error(text, &toml::from_str::<Conf>(text).unwrap_err());
        assert!(message.starts_with("line 2: "), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
    }
}
