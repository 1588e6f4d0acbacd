//! The checks every request passes before a handler reads its body: who is calling
//! (authentication), and whether a web page is (the browser guard). See `docs/security.md`.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::keys::KeyScope;
use crate::{ApiError, AppState};

/// Routes anyone may call: liveness, readiness and the API description.
fn is_public(path: &str) -> bool {
    matches!(path, "/health" | "/v1/health" | "/ready" | "/openapi.json")
}

/// An error in the shape the route's clients read: `{"detail"}` on the Agent Memory Server
/// routes, memlayer's own everywhere else.
fn refuse(path: &str, e: ApiError) -> Response {
    if path.starts_with("/v1/") {
        crate::ams::detail(e.status(), e.message().to_owned())
    } else {
        e.into_response()
    }
}

/// The scope a route needs: reads (including the searches and listings sent as POST) need
/// `read`, key management and metrics `admin`, every other write `write`. `/mcp` lets any
/// key in; each tool call checks its own scope.
fn needed(method: &Method, route: &str) -> KeyScope {
    match route {
        "/metrics" | "/keys" | "/keys/{id}" | "/keys/{id}/rotate" => KeyScope::Admin,
        "/ns/{ns}/search"
        | "/ns/{ns}/list"
        | "/ns/{ns}/conversations/window"
        | "/v1/long-term-memory/search"
        | "/v1/memory/prompt"
        | "/mcp" => KeyScope::Read,
        _ if method == Method::GET || method == Method::HEAD => KeyScope::Read,
        _ => KeyScope::Write,
    }
}

/// Resolves the request's credential into a [`Grant`] before anything reads its body (401
/// without a valid one), refuses a route above the grant's scope (403), and hands the grant
/// to the handlers, which check the namespaces where they know them.
pub(crate) async fn authenticate(
    State(st): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    if is_public(&path) {
        return next.run(request).await;
    }
    let grant = match st.config.auth.grant(request.headers()).await {
        Ok(grant) => grant,
        Err(e) => {
            st.metrics.observe_refused();
            return refuse(&path, e);
        }
    };
    if let Some(name) = &grant.key {
        st.metrics.observe_key(name);
    }
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(String::new, |m| m.as_str().to_owned());
    if let Err(e) = grant.check_scope(needed(request.method(), &route)) {
        return refuse(&path, e);
    }
    request.extensions_mut().insert(grant);
    next.run(request).await
}

/// The body types the API reads.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "application/json"
            | "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines"
    ) || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0)
}

/// `host[:port]` without the scheme's default port, lower-cased, for comparing origins.
fn authority(scheme: &str, authority: &str) -> String {
    let a = authority.trim().to_ascii_lowercase();
    let default = match scheme {
        "https" => ":443",
        _ => ":80",
    };
    a.strip_suffix(default).map(str::to_owned).unwrap_or(a)
}

/// The host name of a `Host` header value, without its port.
fn host_name(host: &str) -> &str {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    host.rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(name, _)| name)
}

fn is_loopback_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name == "::1"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn forbidden(message: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
}

/// What a web page's request may not do here, checked in order:
/// - come from another site (`Sec-Fetch-Site`) or another origin (`Origin`), so a page the user
///   visits cannot write, clear or forget through the user's browser;
/// - name a host other than a loopback one (or one allowed by configuration) when the server
///   runs without tokens, so DNS rebinding cannot turn a page into a same-origin reader;
/// - send a body that is not JSON or NDJSON (415), so no form or `text/plain` post gets in.
pub(crate) async fn browser(State(st): State<AppState>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let path = request.uri().path();
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return refuse(
            path,
            forbidden(format!(
                "a request from a web page of another site ({site}) is refused"
            )),
        );
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("null");
        let same = origin
            .split_once("://")
            .is_some_and(|(scheme, rest)| authority(scheme, rest) == authority(scheme, host));
        if !same {
            return refuse(
                path,
                forbidden(format!(
                    "a request from origin {origin:?} is refused: only this server's own \
                     origin may call it from a browser"
                )),
            );
        }
    }
    if !st.config.auth.is_enabled() && !host.is_empty() {
        let name = host_name(host);
        let allowed = is_loopback_name(name)
            || st
                .config
                .allowed_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name));
        if !allowed {
            return refuse(
                path,
                forbidden(format!(
                    "host {name:?} is refused: a server without tokens answers only loopback \
                     names (localhost, 127.0.0.1, [::1]); give tokens, or allow the name with \
                     --allow-host"
                )),
            );
        }
    }
    let wants_body = !matches!(*request.method(), Method::GET | Method::HEAD);
    if wants_body && has_body(headers) {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !is_json(content_type) {
            let shown = if content_type.is_empty() {
                "none".to_owned()
            } else {
                format!("{content_type:?}")
            };
            return refuse(
                path,
                ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    format!(
                        "content-type: {shown}; the body must be application/json (or \
                         application/x-ndjson for imports)"
                    ),
                ),
            );
        }
    }
    next.run(request).await
}

/// Answers axum's own refusals (a bad query string or path, a body over the limit, an
/// unknown route or method) in the same JSON shape as every other error, instead of plain
/// text: clients parse one error format.
pub(crate) async fn json_errors(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json);
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_owned()
    } else {
        text
    };
    let kind = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "unexpected",
        _ => "bad_request",
    };
    refuse(&path, ApiError::new(status, kind, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_origins_and_types() {
        assert_eq!(host_name("127.0.0.1:8000"), "127.0.0.1");
        assert_eq!(host_name("[::1]:8000"), "::1");
        assert_eq!(host_name("localhost"), "localhost");
        for name in ["localhost", "LOCALHOST.", "127.0.0.1", "127.8.9.1", "::1"] {
            assert!(is_loopback_name(name), "{name}");
        }
        for name in [
            "evil.example",
            "10.0.0.1",
            "localhost.evil.example",
            "0.0.0.0",
        ] {
            assert!(!is_loopback_name(name), "{name}");
        }
        assert_eq!(authority("http", "LocalHost:80"), "localhost");
        assert_eq!(authority("http", "127.0.0.1:8000"), "127.0.0.1:8000");
        for t in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/x-ndjson",
        ] {
            assert!(is_json(t), "{t}");
        }
        for t in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "",
        ] {
            assert!(!is_json(t), "{t}");
        }
    }
}
