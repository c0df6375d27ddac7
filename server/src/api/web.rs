//! The web app's routes: `/` and `/app` redirect to `/app/`, `/app/` is `index.html`,
//! `/app/<file>` every file of the app, and `/enroll?token=…` the same `index.html` (outside
//! the service worker's scope, so a first visit needs no worker). Every answer carries the
//! app's headers ([`crate::web::headers`]); unknown names are 404.

use std::borrow::Cow;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use pushauth_proto::wire::ErrorCode;

use super::ApiError;
use crate::state::SharedState;
use crate::web::{self, headers, WebError};

/// `GET /` and `GET /app`: 302 to `/app/`.
pub async fn to_app() -> Response {
    let mut response = Redirect::to("/app/").into_response();
    // Redirect::to answers 303; a plain GET redirect is 302 (Found).
    *response.status_mut() = StatusCode::FOUND;
    headers::set_app_headers(response.headers_mut());
    response
}

/// `GET /app/`: the app's page.
pub async fn index(State(state): State<SharedState>, request: HeaderMap) -> Response {
    serve(&state, "index.html", &request)
}

/// `GET /enroll?token=…`: the app's page, which reads the token from its address. The query is
/// never logged (the request log records the path only).
pub async fn enroll(State(state): State<SharedState>, request: HeaderMap) -> Response {
    serve(&state, "index.html", &request)
}

/// `GET /app/{*path}`: one file of the app.
pub async fn file(
    State(state): State<SharedState>,
    Path(path): Path<String>,
    request: HeaderMap,
) -> Response {
    serve(&state, &path, &request)
}

fn serve(state: &SharedState, path: &str, request: &HeaderMap) -> Response {
    let found = web::lookup(state.config.web.app_dir.as_deref(), path);
    let file = match found {
        Ok(file) => file,
        Err(WebError::NotFound) => {
            let mut response =
                ApiError::new(ErrorCode::NotFound, "no such file in the app").into_response();
            headers::set_app_headers(response.headers_mut());
            return response;
        }
        Err(WebError::Refused(why)) => {
            let mut response = ApiError::internal(why).into_response();
            headers::set_app_headers(response.headers_mut());
            return response;
        }
    };
    let gzip = file.gzip.filter(|_| {
        request
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(headers::accepts_gzip)
    });
    // Each representation has its own strong tag: the file's SHA-256, `-gzip` for the variant.
    // Either representation's tag names the same content (a weak match, RFC 9110 §13.1.2).
    let plain_tag = format!("\"{}\"", file.sha256);
    let gzip_tag = format!("\"{}-gzip\"", file.sha256);
    let not_modified = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| headers::none_match(v, &plain_tag) || headers::none_match(v, &gzip_tag));
    let (status, body) = if not_modified {
        (StatusCode::NOT_MODIFIED, Body::empty())
    } else if let Some(gz) = gzip {
        (StatusCode::OK, Body::from(gz))
    } else {
        match file.bytes {
            Cow::Borrowed(bytes) => (StatusCode::OK, Body::from(bytes)),
            Cow::Owned(bytes) => (StatusCode::OK, Body::from(bytes)),
        }
    };
    let mut response = (status, body).into_response();
    let out = response.headers_mut();
    headers::set_app_headers(out);
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(file.content_type),
    );
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    let etag = if gzip.is_some() { gzip_tag } else { plain_tag };
    if let Ok(tag) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, tag);
    }
    if gzip.is_some() {
        out.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    if path == "sw.js" {
        // The worker controls the whole origin, so that no page the server sends outside
        // /app/ runs with the device's keys (the worker sandboxes those).
        out.insert(
            HeaderName::from_static("service-worker-allowed"),
            HeaderValue::from_static("/"),
        );
    }
    response
}
