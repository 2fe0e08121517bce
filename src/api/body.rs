//! Request bodies as Salt's `hypermedia_in` reads them: by `Content-Type`, form fields
//! (`application/x-www-form-urlencoded`, a repeated field a list), JSON (`application/json`,
//! also `text/plain`), YAML (`application/x-yaml`, `text/yaml`); an unknown type is `415`, a body
//! that does not parse `400`. [`Lowstate`] is the list of commands `POST /` and `/run` take.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::Shared;
use super::reply::Reply;
use crate::event::Value;

/// A request body: the bytes as sent and the data they hold (`Nil` when empty).
#[derive(Debug)]
pub(crate) struct Body {
    /// The bytes.
    pub raw: Bytes,
    /// The data.
    pub data: Value,
}

impl FromRequest<Arc<Shared>> for Body {
    type Rejection = Response;

    async fn from_request(request: Request, shared: &Arc<Shared>) -> Result<Self, Response> {
        let headers = request.headers().clone();
        let raw = Bytes::from_request(request, shared)
            .await
            .map_err(|err| Reply::error(err.status(), err.body_text()).render(&headers))?;
        let data = parse(&headers, &raw).map_err(|reply| reply.render(&headers))?;
        Ok(Body { raw, data })
    }
}

/// The commands of a `POST`: a list of maps; one map alone (a form, a JSON object) is a list of
/// one, and its `arg` a list, as Salt's `lowdata_fmt` makes them.
#[derive(Debug)]
pub(crate) struct Lowstate(pub Vec<Value>);

impl FromRequest<Arc<Shared>> for Lowstate {
    type Rejection = Response;

    async fn from_request(request: Request, shared: &Arc<Shared>) -> Result<Self, Response> {
        let headers = request.headers().clone();
        let body = Body::from_request(request, shared).await?;
        match body.data {
            Value::Map(mut entries) => {
                for (key, value) in entries.iter_mut() {
                    if key.as_str() == Some("arg") && !matches!(value, Value::Array(_)) {
                        *value = Value::Array(vec![std::mem::replace(value, Value::Nil)]);
                    }
                }
                Ok(Lowstate(vec![Value::Map(entries)]))
            }
            Value::Array(items) => Ok(Lowstate(items)),
            // No body at all is no list either, as Salt answers.
            _ => Err(
                Reply::error(StatusCode::BAD_REQUEST, "Lowstates must be a list").render(&headers),
            ),
        }
    }
}

/// How many times its size a YAML body may be once built.
const YAML_GROWTH: u64 = 40;

/// The data of a body, by its content type.
fn parse(headers: &HeaderMap, raw: &[u8]) -> Result<Value, Box<Reply>> {
    if raw.is_empty() {
        return Ok(Value::Nil);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("application/x-www-form-urlencoded");
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let text = || {
        std::str::from_utf8(raw)
            .map_err(|_| refused(StatusCode::BAD_REQUEST, "The request body is not UTF-8"))
    };
    match media.as_str() {
        "application/x-www-form-urlencoded" => Ok(form(raw)),
        "application/json" | "text/plain" => {
            serde_json::from_str::<Value>(text()?).map_err(|err| {
                refused(
                    StatusCode::BAD_REQUEST,
                    format!("Invalid JSON document: {err}"),
                )
            })
        }
        // Built, a document without aliases is at most about 33 times its text (64 bytes a
        // node, a node in every two bytes): more is aliases multiplying a small request.
        "application/x-yaml" | "text/yaml" => {
            let limit = (raw.len() as u64).saturating_mul(YAML_GROWTH) + (64 << 10);
            crate::salt_yaml::load_within(text()?, limit).map_err(|err| {
                refused(
                    StatusCode::BAD_REQUEST,
                    format!("Invalid YAML document: {err}"),
                )
            })
        }
        _ => Err(refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content type {media} is not one of application/x-www-form-urlencoded, \
                 application/json, application/x-yaml, text/yaml, text/plain"
            ),
        )),
    }
}

/// A refused body's answer (boxed: the common case is a body that parses).
fn refused(status: StatusCode, message: impl Into<String>) -> Box<Reply> {
    Box::new(Reply::error(status, message))
}

/// Form fields as CherryPy reads them: a map in the fields' order, a repeated field a list.
fn form(raw: &[u8]) -> Value {
    let mut entries: Vec<(Value, Value)> = Vec::new();
    for (key, value) in form_urlencoded::parse(raw) {
        let value = Value::from(value.into_owned());
        match entries.iter_mut().find(|(k, _)| k.as_str() == Some(&key)) {
            Some((_, Value::Array(items))) => items.push(value),
            Some((_, first)) => {
                *first = Value::Array(vec![std::mem::replace(first, Value::Nil), value])
            }
            None => entries.push((Value::from(key.into_owned()), value)),
        }
    }
    Value::Map(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn typed(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).unwrap(),
        );
        headers
    }

    #[test]
    fn bodies_are_read_by_their_type_as_salts_are() {
        let form = parse(
            &typed("application/x-www-form-urlencoded"),
            b"fun=test.arg&arg=a&arg=b%20c",
        );
        assert_eq!(
            form.unwrap().to_string(),
            r#"{"fun": "test.arg", "arg": ["a", "b c"]}"#
        );
        let json = parse(
            &typed("application/json; charset=utf-8"),
            br#"[{"fun": "x"}]"#,
        );
        assert_eq!(json.unwrap().to_string(), r#"[{"fun": "x"}]"#);
        let yaml = parse(&typed("application/x-yaml"), b"- fun: x\n");
        assert_eq!(yaml.unwrap().to_string(), r#"[{"fun": "x"}]"#);
        assert_eq!(
            parse(&typed("image/png"), b"x").unwrap_err().status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(
            parse(&typed("application/json"), b"{").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert!(parse(&HeaderMap::new(), b"").unwrap().is_nil());
    }
}
