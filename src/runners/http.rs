//! `http.query`: one HTTP request, Salt's webhook runner, so that a reaction can tell a chat
//! channel or a build server what happened.
//!
//! Salt's parameters are kept (`method`, `params`, `data`, `header_dict`, `header_list`,
//! `username`/`password`, `status`, `headers`, `decode`), and so is its return: `body` always,
//! `status`/`headers`/`dict` when asked, `error` when the request failed. halite adds `json`
//! (any value, sent as a JSON body) and `timeout` (seconds for the whole request).

use std::sync::OnceLock;
use std::time::Duration;

use super::RunnerError;
use crate::config::Config;
use crate::event::Value;
use crate::py::json::{self as pyjson, Format};
use crate::py::value::py_str;
use crate::salt_yaml::CliArgs;
use crate::signature::{Signature, text, truthy};

pub(super) const QUERY: Signature = Signature {
    name: "http.query",
    summary: "One HTTP request (Salt's webhook runner): body, and status, headers or error",
    params: &[
        "url",
        "method",
        "params",
        "data",
        "json",
        "header_dict",
        "header_list",
        "username",
        "password",
        "status",
        "headers",
        "decode",
        "timeout",
    ],
    required: 1,
    // Salt passes unknown keywords through to its HTTP layer, which ignores most of them.
    kwargs: true,
    usage: "salt-run http.query URL [method=POST] [data=TEXT|{form: fields}] [json=VALUE] [header_dict={Name: value}] [status=True] [decode=True] [timeout=SECONDS]",
};

/// Salt's `http_request_timeout` default: an hour (reactions have their own, shorter, limit).
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(3600);

/// Salt's `http_connect_timeout` default.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// One client for the process: it keeps connections and TLS sessions across reactions.
fn client(connect_timeout: Duration) -> Result<&'static reqwest::Client, RunnerError> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(client) = CLIENT.get() {
        return Ok(client);
    }
    // The link configures its own provider per connection; HTTPS here uses the process default.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .user_agent(concat!("halite/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(connect_timeout)
        .build()
        .map_err(|err| RunnerError::Failed(format!("cannot set up the HTTP client: {err}")))?;
    Ok(CLIENT.get_or_init(|| client))
}

/// A timeout given as `what` (an argument or option), its default when unset or 0; anything
/// else that is not a number of seconds is an error naming it.
fn timeout_of(
    value: Option<&Value>,
    what: &str,
    default: Duration,
) -> Result<Duration, RunnerError> {
    match value {
        None | Some(Value::Nil) => Ok(default),
        Some(value) => crate::config::seconds(value)
            .map(|d| if d.is_zero() { default } else { d })
            .ok_or_else(|| {
                RunnerError::Arguments(format!(
                    "http.query: {what} {value} is not a number of seconds"
                ))
            }),
    }
}

fn pairs(value: &Value) -> Vec<(String, String)> {
    value
        .as_map()
        .map(|entries| {
            entries
                .iter()
                .map(|(k, v)| (py_str(k).into_owned(), py_str(v).into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// `http.query URL ...`.
pub(super) async fn query(config: &Config, args: &CliArgs) -> Result<Value, RunnerError> {
    let bound = QUERY.bind(args)?;
    let url = bound.get("url").map(text).unwrap_or_default();
    let method = bound
        .get("method")
        .map(text)
        .unwrap_or_else(|| "GET".to_owned())
        .to_uppercase();
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|_| {
        RunnerError::Arguments(format!("http.query: '{method}' is not an HTTP method"))
    })?;
    let default = timeout_of(
        config.get("http_request_timeout"),
        "the option http_request_timeout",
        DEFAULT_REQUEST_TIMEOUT,
    )?;
    let timeout = timeout_of(bound.get("timeout"), "timeout", default)?;
    let connect_timeout = timeout_of(
        config.get("http_connect_timeout"),
        "the option http_connect_timeout",
        DEFAULT_CONNECT_TIMEOUT,
    )?;
    // A string of parameters is appended as given, a map is encoded.
    let url = match bound.get("params") {
        Some(Value::Map(_)) | Some(Value::Nil) | None => url,
        Some(other) => {
            let separator = if url.contains('?') { '&' } else { '?' };
            format!("{url}{separator}{}", text(other))
        }
    };
    let mut request = client(connect_timeout)?
        .request(method, &url)
        .timeout(timeout);
    if let Some(map @ Value::Map(_)) = bound.get("params") {
        request = request.query(&pairs(map));
    }
    if let Some(headers) = bound.get("header_dict") {
        for (name, value) in pairs(headers) {
            request = request.header(name, value);
        }
    }
    for line in bound
        .get("header_list")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        if let Some((name, value)) = text(line).split_once(':') {
            request = request.header(name.trim(), value.trim());
        }
    }
    if let Some(user) = bound.get("username") {
        request = request.basic_auth(text(user), bound.get("password").map(text));
    }
    if let Some(json) = bound.get("json") {
        request = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(pyjson::to_string(json, Format::COMPACT));
    } else {
        match bound.get("data") {
            Some(map @ Value::Map(_)) => request = request.form(&pairs(map)),
            Some(Value::Nil) | None => {}
            Some(body) => request = request.body(text(body)),
        }
    }
    let flag = |name: &str| bound.get(name).is_some_and(truthy);
    let mut ret: Vec<(Value, Value)> = Vec::new();
    let response = match request.send().await {
        Ok(response) => response,
        Err(err) => {
            if flag("status") {
                ret.push((Value::from("status"), Value::from(0)));
            }
            ret.push((Value::from("error"), Value::from(describe(&err, &url))));
            return Ok(Value::Map(ret));
        }
    };
    let status = response.status();
    let headers: Vec<(Value, Value)> = response
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                Value::from(name.as_str()),
                Value::from(String::from_utf8_lossy(value.as_bytes()).into_owned()),
            )
        })
        .collect();
    let body = match read_body(response, &url).await {
        Ok(body) => body,
        Err(error) => {
            ret.push((Value::from("error"), Value::from(error)));
            return Ok(Value::Map(ret));
        }
    };
    if status.is_client_error() || status.is_server_error() {
        // As Salt's HTTPError branch: the status and an error, whatever was asked.
        ret.push((Value::from("status"), Value::from(status.as_u16())));
        ret.push((
            Value::from("error"),
            Value::from(format!(
                "HTTP {}: {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("Unknown")
            )),
        ));
        ret.push((Value::from("body"), Value::from(body)));
        return Ok(Value::Map(ret));
    }
    ret.push((Value::from("body"), Value::from(body.as_str())));
    if flag("status") {
        ret.push((Value::from("status"), Value::from(status.as_u16())));
    }
    if flag("headers") {
        ret.push((Value::from("headers"), Value::Map(headers)));
    }
    if flag("decode") {
        let decoded = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|json| rmpv::ext::to_value(json).ok())
            .unwrap_or(Value::from(body.as_str()));
        ret.push((Value::from("dict"), decoded));
    }
    Ok(Value::Map(ret))
}

/// The largest response body kept: a return goes on the bus, which is no place for downloads.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// The response body as text (invalid UTF-8 replaced), or why it cannot be had.
async fn read_body(mut response: reqwest::Response, url: &str) -> Result<String, String> {
    let too_big = || format!("{url}: the response body is over {} MiB", MAX_BODY >> 20);
    if response
        .content_length()
        .is_some_and(|length| length > MAX_BODY as u64)
    {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|err| describe(&err, url))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The error with its causes, on one line (reqwest's own message omits them).
fn describe(err: &reqwest::Error, url: &str) -> String {
    let mut message = if err.is_timeout() {
        format!("{url}: timed out")
    } else {
        format!("{url}: {err}")
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}
