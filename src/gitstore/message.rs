//! Commit messages with git trailers: `Key: value` lines in the last paragraph.

use super::GitStoreError;

/// `message`, a blank line, and one `Key: value` line per trailer.
pub(super) fn compose(message: &str, trailers: &[(&str, &str)]) -> Result<String, GitStoreError> {
    let message = message.trim_end();
    if message.trim().is_empty() {
        return Err(GitStoreError::InvalidMessage {
            reason: "it is empty",
        });
    }
    let mut out = String::with_capacity(message.len() + 64 * trailers.len() + 2);
    out.push_str(message);
    out.push('\n');
    if !trailers.is_empty() {
        out.push('\n');
    }
    for (key, value) in trailers {
        validate_trailer(key, value)?;
        out.push_str(key);
        out.push_str(": ");
        out.push_str(value.trim());
        out.push('\n');
    }
    Ok(out)
}

fn validate_trailer(key: &str, value: &str) -> Result<(), GitStoreError> {
    let invalid = |reason| GitStoreError::InvalidTrailer {
        key: key.to_string(),
        reason,
    };
    if !is_trailer_key(key) {
        return Err(invalid("keys are letters, digits and '-'"));
    }
    if value.contains(['\n', '\r']) {
        return Err(invalid("the value spans several lines"));
    }
    if value.trim().is_empty() {
        return Err(invalid("the value is empty"));
    }
    Ok(())
}

fn is_trailer_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Splits a commit message into its text and its trailers: the last paragraph, when it is not
/// the only one and every line of it is a `Key: value` trailer (or an indented continuation).
pub(super) fn parse(message: &str) -> (String, Vec<(String, String)>) {
    let text = message.trim_end();
    let Some((body, block)) = split_last_paragraph(text) else {
        return (text.to_string(), Vec::new());
    };
    match parse_block(block) {
        Some(trailers) => (body.trim_end().to_string(), trailers),
        None => (text.to_string(), Vec::new()),
    }
}

/// The text before the last blank line, and the paragraph after it.
fn split_last_paragraph(text: &str) -> Option<(&str, &str)> {
    let mut offset = 0;
    let mut split = None;
    for line in text.split_inclusive('\n') {
        if line.trim().is_empty() {
            split = Some((offset, offset + line.len()));
        }
        offset += line.len();
    }
    let (body_end, block_start) = split?;
    let body = &text[..body_end];
    (!body.trim().is_empty()).then_some((body, &text[block_start..]))
}

fn parse_block(block: &str) -> Option<Vec<(String, String)>> {
    let mut trailers: Vec<(String, String)> = Vec::new();
    for line in block.lines() {
        if line.starts_with([' ', '\t']) {
            let (_, value) = trailers.last_mut()?;
            value.push(' ');
            value.push_str(line.trim());
            continue;
        }
        let (key, value) = line.split_once(':')?;
        if !is_trailer_key(key) {
            return None;
        }
        trailers.push((key.to_string(), value.trim().to_string()));
    }
    (!trailers.is_empty()).then_some(trailers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composed_messages_parse_back() {
        let trailers = [("Ferry-Stage", "qa"), ("Ferry-Revision", "r-0123456789ab")];
        let message = compose("Promote r-0123456789ab to qa\n\nBody text.\n", &trailers).unwrap();
        assert_eq!(
            message,
            "Promote r-0123456789ab to qa\n\nBody text.\n\n\
             Ferry-Stage: qa\nFerry-Revision: r-0123456789ab\n"
        );
        let (text, parsed) = parse(&message);
        assert_eq!(text, "Promote r-0123456789ab to qa\n\nBody text.");
        assert_eq!(
            parsed,
            [("Ferry-Stage", "qa"), ("Ferry-Revision", "r-0123456789ab")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
        );
    }

    #[test]
    fn a_message_without_trailers_has_none() {
        assert_eq!(compose("Subject", &[]).unwrap(), "Subject\n");
        assert_eq!(parse("Subject\n"), ("Subject".to_string(), vec![]));
        assert_eq!(parse("Key: value\n"), ("Key: value".to_string(), vec![]));
        let prose = "Subject\n\nThis is: not a trailer block\nbecause of this line\n";
        assert_eq!(parse(prose).1, vec![]);
    }

    #[test]
    fn continuation_lines_and_blank_lines_with_spaces_are_understood() {
        let (text, trailers) = parse("Subject\n  \nSigned-off-by: A\nNote: one\n  two\n");
        assert_eq!(text, "Subject");
        assert_eq!(trailers[1], ("Note".to_string(), "one two".to_string()));
    }

    #[test]
    fn invalid_trailers_and_messages_are_refused() {
        assert!(matches!(
            compose(" \n", &[]),
            Err(GitStoreError::InvalidMessage { .. })
        ));
        for (key, value) in [
            ("Bad Key", "v"),
            ("", "v"),
            ("K:", "v"),
            ("K", "a\nb"),
            ("K", " "),
        ] {
            let err = compose("m", &[(key, value)]).unwrap_err();
            assert!(
                matches!(err, GitStoreError::InvalidTrailer { .. }),
                "{key:?}: {err}"
            );
        }
    }
}
