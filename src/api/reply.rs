//! Answers as Salt's `rest_cherrypy` renders them: the content type chosen from `Accept`
//! (JSON unless YAML is asked for; `406` when neither can be given), Salt's JSON spacing, and
//! the CORS headers Salt adds to every answer, CherryPy's `Allow` on every answer of a resource
//! and `Cache-Control: private` on an authenticated one.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;

use crate::event::Value;
use crate::output::outputter::Outputter;
use crate::py::json::{self, Format};

/// The content types an answer can take, Salt's order of preference.
const TYPES: [(&str, Kind); 3] = [
    ("application/json", Kind::Json),
    ("application/x-yaml", Kind::Yaml),
    ("text/yaml", Kind::Yaml),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Json,
    Yaml,
}

/// An answer: a status and the data Salt would serialise.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body's data.
    pub data: Value,
    /// Headers of its own (`X-Auth-Token`, cookies).
    pub headers: HeaderMap,
}

impl Reply {
    /// A `200 OK` answer.
    pub fn ok(data: Value) -> Self {
        Reply {
            status: StatusCode::OK,
            data,
            headers: HeaderMap::new(),
        }
    }

    /// Marks an answer to an authenticated request, as Salt's `salt_auth` tool does (errors
    /// raised after it lose the header, as CherryPy's do).
    pub fn private(mut self) -> Self {
        self.headers
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
        self
    }

    /// An error as Salt's handler shapes one: `{"status": code, "return": message}`.
    pub fn error(status: StatusCode, message: impl Into<String>) -> Self {
        let data = Value::Map(vec![
            (Value::from("status"), Value::from(status.as_u16())),
            (Value::from("return"), Value::from(message.into())),
        ]);
        Reply {
            status,
            data,
            headers: HeaderMap::new(),
        }
    }

    /// Renders the answer in the type `accept` asks for.
    pub fn render(self, accept: &HeaderMap) -> Response {
        let Some((content_type, kind)) = negotiate(accept) else {
            return cors(
                (
                    StatusCode::NOT_ACCEPTABLE,
                    "Your client sent this Accept header: none of application/json, \
                     application/x-yaml, text/yaml is in it.",
                )
                    .into_response(),
            );
        };
        let body = match kind {
            Kind::Json => json::to_string(&self.data, Format::COMPACT),
            Kind::Yaml => Outputter::Yaml.render(&self.data, false),
        };
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.extend(self.headers);
        cors(response)
    }
}

/// `route` with CherryPy's `Allow: <methods>` on every answer, errors included, as its method
/// dispatcher sets it from the methods a resource defines (`HEAD` with `GET`).
pub(crate) fn allow<S>(methods: &'static str, route: MethodRouter<S>) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    route.layer(axum::middleware::map_response(
        move |mut response: Response| async move {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(methods));
            response
        },
    ))
}

/// Adds the CORS headers Salt's `cors_tool` adds to every answer.
pub(crate) fn cors(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("GET, POST"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    response
}

/// The methods and headers a CORS preflight may ask for, as Salt's `cors_tool` allows them.
const PREFLIGHT: [(header::HeaderName, &str); 3] = [
    (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST"),
    (
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        "Content-Type, X-Auth-Token, X-Requested-With",
    ),
    (header::ACCESS_CONTROL_MAX_AGE, "1400"),
];

/// Answers `OPTIONS` on any path as Salt's `cors_tool` does: `200`, no body, the CORS headers,
/// and what a preflight may ask when it asks for `GET` or `POST`.
pub(crate) async fn preflight(request: Request, next: Next) -> Response {
    if request.method() != Method::OPTIONS {
        return next.run(request).await;
    }
    let mut response = StatusCode::OK.into_response();
    let asks = request
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .is_some_and(|method| method == "GET" || method == "POST");
    if asks {
        for (name, value) in PREFLIGHT {
            response
                .headers_mut()
                .insert(name, HeaderValue::from_static(value));
        }
    }
    cors(response)
}

/// The content type to answer in: the first of Salt's types `Accept` allows, by its quality
/// values; no `Accept` (or `*/*`) is JSON.
fn negotiate(headers: &HeaderMap) -> Option<(&'static str, Kind)> {
    let Some(accept) = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
    else {
        return Some(TYPES[0]);
    };
    let mut best: Option<(f32, usize)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let quality = parts
            .filter_map(|param| param.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if quality <= 0.0 {
            continue;
        }
        let candidates = TYPES.iter().enumerate().filter(|(_, (name, _))| {
            media == *name
                || media == "*/*"
                || media
                    .strip_suffix("/*")
                    .is_some_and(|family| name.starts_with(&format!("{family}/")))
        });
        for (at, _) in candidates {
            let better = match best {
                None => true,
                Some((q, index)) => quality > q || (quality == q && at < index),
            };
            if better {
                best = Some((quality, at));
            }
        }
    }
    best.map(|(_, at)| TYPES[at])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn the_content_type_follows_accept_as_salts_does() {
        assert_eq!(negotiate(&HeaderMap::new()).unwrap().0, "application/json");
        assert_eq!(negotiate(&accept("*/*")).unwrap().0, "application/json");
        assert_eq!(
            negotiate(&accept("application/x-yaml")).unwrap().0,
            "application/x-yaml"
        );
        assert_eq!(
            negotiate(&accept("application/json;q=0.5, text/yaml"))
                .unwrap()
                .0,
            "text/yaml"
        );
        assert!(negotiate(&accept("text/html")).is_none());
    }

    #[test]
    fn errors_have_salts_shape() {
        let reply = Reply::error(StatusCode::UNAUTHORIZED, "Could not authenticate");
        assert_eq!(
            json::to_string(&reply.data, Format::COMPACT),
            r#"{"status": 401, "return": "Could not authenticate"}"#
        );
    }
}
