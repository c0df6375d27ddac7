//! The module's one outcome line per login (`pam_push: user=… service=… outcome=…`): its
//! fields, and how a value from outside is made safe for the log. No secrets ever go in.

/// One outcome line's fields: user, service, rhost, device, outcome, challenge id. No secrets.
pub(crate) struct Record<'a> {
    pub(crate) user: &'a str,
    pub(crate) service: String,
    pub(crate) rhost: String,
    pub(crate) device: String,
    pub(crate) challenge: String,
}

impl Record<'_> {
    pub(crate) fn line(&self, outcome: &str, detail: Option<&str>) -> String {
        let mut line = format!(
            "pam_push: user={} service={} rhost={} device={} outcome={outcome} challenge={}",
            quote(self.user),
            quote(&self.service),
            quote(&self.rhost),
            quote(&self.device),
            quote(&self.challenge),
        );
        if let Some(detail) = detail {
            line.push_str(" detail=");
            line.push_str(&quote(detail));
        }
        line
    }
}

/// A log value: `-` when empty, quoted when it holds spaces, never control, bidi or other
/// hidden characters (server messages end up here).
pub(crate) fn quote(value: &str) -> String {
    let clean: String = value
        .chars()
        .map(|c| {
            if c == '"' || pushauth_proto::text::is_hidden(c) {
                '?'
            } else {
                c
            }
        })
        .take(256)
        .collect();
    if clean.is_empty() {
        "-".to_owned()
    } else if clean.contains(' ') || clean.contains('=') {
        format!("\"{clean}\"")
    } else {
        clean
    }
}
