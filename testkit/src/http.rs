//! One raw HTTP call and its answer, whatever the status.

use std::time::Duration;

use serde_json::Value;

/// An HTTP answer: status, body text, the body as JSON (`Null` when it is not JSON) and the
/// `Content-Type` header (empty when absent).
#[derive(Debug)]
pub struct Resp {
    /// HTTP status code.
    pub status: u16,
    /// The body as text.
    pub text: String,
    /// The body parsed as JSON, or `Value::Null`.
    pub json: Value,
    /// The `Content-Type` header, or "".
    pub content_type: String,
}

impl Resp {
    /// The API error code of an error response (`error` in the body), or `"<none>"`.
    pub fn error(&self) -> &str {
        self.json["error"].as_str().unwrap_or("<none>")
    }

    /// Panics unless the status is 2xx; the answer otherwise.
    #[track_caller]
    pub fn ok(self) -> Resp {
        assert!(
            (200..300).contains(&self.status),
            "HTTP {}: {}",
            self.status,
            self.text
        );
        self
    }
}

/// A new agent as the kit uses one: the default TLS roots, 60 s per call.
pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .build()
}

/// `method url` with an optional `Authorization` value (the whole header value, e.g.
/// `Bearer KEY`) and an optional JSON body, through a fresh agent with a 60 s timeout.
/// Any HTTP status is an answer; only a transport failure (no connection, TLS) panics.
pub fn call(method: &str, url: &str, auth: Option<&str>, body: Option<&[u8]>) -> Resp {
    call_with(&agent(), method, url, auth, body)
}

/// [`call`] through `agent` (one that trusts a private CA, or has its own timeout).
pub fn call_with(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    auth: Option<&str>,
    body: Option<&[u8]>,
) -> Resp {
    let mut req = agent.request(method, url);
    if let Some(auth) = auth {
        req = req.set("Authorization", auth);
    }
    let result = match body {
        Some(body) => req.set("Content-Type", "application/json").send_bytes(body),
        None => req.call(),
    };
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = response.status();
    let content_type = response.header("content-type").unwrap_or("").to_owned();
    let text = response
        .into_string()
        .unwrap_or_else(|e| panic!("{method} {url}: reading the body: {e}"));
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        text,
        json,
        content_type,
    }
}

/// Asserts an API error answer: `status`, the stable `error` code, and a `message` string.
#[track_caller]
pub fn assert_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.error(), code, "{}", r.text);
    assert!(r.json["message"].is_string(), "{}", r.text);
}
