//! salt-api side by side with Salt 3007.8's own `rest_cherrypy` (from the test venv, CherryPy
//! added by `tests/salt-env.sh`): each with its master and minion, the same `external_auth`, the
//! same requests — `POST /login`, `POST /hook/<path>`, `POST /` with the `local`,
//! `local_async`, `runner` and `wheel` clients — and the answers compared: status, headers
//! (but `Date`, `Server`, `Content-Length` and token values), bodies with their keys in order,
//! jids, times and tokens normalised, and the webhook's event on each master's bus. Where halite
//! differs on purpose (its README says so) the difference is spelled out here.

use std::time::Duration;

use halite::event::{Event, Value, map_get};

use crate::conformance::SaltLab;
use crate::support::{Lab, RawSubscriber, api_block, free_port};

const EAUTH: &str = r#"{"auto": {"alice": [".*", "@runner", "@wheel", "@jobs"]}}"#;
const CLIENTS: &str = r#"["local", "local_async", "runner", "wheel"]"#;

/// An answer, normalised for comparison.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    /// Lower-case names, sorted; values with tokens and dates replaced.
    headers: Vec<(String, String)>,
    /// The body with jids, times and tokens replaced (the raw text when it is not JSON).
    body: String,
}

fn request(
    runtime: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    content_type: &str,
    body: &str,
) -> Answer {
    runtime.block_on(async {
        let mut request = client
            .post(url)
            .header("Accept", "application/json")
            .header("Content-Type", content_type)
            .body(body.to_owned())
            .timeout(Duration::from_secs(30));
        if let Some(token) = token {
            request = request.header("X-Auth-Token", token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let mut headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .filter(|(name, _)| !["date", "server", "content-length"].contains(&name.as_str()))
            .map(|(name, value)| {
                let value = value.to_str().unwrap_or_default();
                (
                    name.as_str().to_owned(),
                    normal_header(name.as_str(), value),
                )
            })
            .collect();
        headers.sort();
        let text = response.text().await.unwrap();
        let body = match serde_json::from_str::<Value>(&text) {
            Ok(value) => normal(&value, "").to_string(),
            Err(_) => text,
        };
        Answer {
            status,
            headers,
            body,
        }
    })
}

fn normal_header(name: &str, value: &str) -> String {
    match name {
        "x-auth-token" => "<token>".into(),
        // session_id=<token>; expires=<date>; Max-Age=36000; Path=/
        "set-cookie" => value
            .split("; ")
            .map(|part| match part.split_once('=') {
                Some(("session_id", _)) => "session_id=<token>".to_owned(),
                Some(("expires", _)) => "expires=<date>".to_owned(),
                _ => part.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => value.to_owned(),
    }
}

fn is_jid(text: &str) -> bool {
    text.len() == 20 && text.bytes().all(|b| b.is_ascii_digit())
}

/// `value` with what differs from run to run replaced by a placeholder: jids (as keys too),
/// tokens, floats (times), and the time strings under `key`s `_stamp` and `StartTime`.
fn normal(value: &Value, key: &str) -> Value {
    match value {
        Value::Map(entries) => Value::Map(
            entries
                .iter()
                .map(|(k, v)| {
                    let name = k.as_str().unwrap_or_default();
                    let k = if is_jid(name) {
                        Value::from("<jid>")
                    } else {
                        k.clone()
                    };
                    (k, normal(v, name))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| normal(v, key)).collect()),
        Value::F64(_) | Value::F32(_) => Value::from("<float>"),
        Value::String(text) => {
            let text = text.as_str().unwrap_or_default();
            if key == "_stamp" || key == "StartTime" {
                Value::from("<time>")
            } else if key == "token" {
                Value::from("<token>")
            } else if is_jid(text) {
                Value::from("<jid>")
            } else if text.strip_prefix("salt/wheel/").is_some_and(is_jid) {
                Value::from("salt/wheel/<jid>")
            } else {
                value.clone()
            }
        }
        _ => value.clone(),
    }
}

/// Removes from `halite` and `salt` the headers halite documents as different on purpose:
/// `Vary: Accept-Encoding` (CherryPy's gzip tool; halite does not compress) and, outside
/// `/login`, the `session_id` cookie CherryPy refreshes on every answer (halite's token is the
/// session: it is set once, by `/login`, and does not slide).
fn documented_header_differences(halite: &mut Answer, salt: &mut Answer, login: bool) {
    salt.headers.retain(|(name, value)| {
        !(name == "vary" && value == "Accept-Encoding" || name == "set-cookie" && !login)
    });
    assert!(
        !halite.headers.iter().any(|(name, _)| name == "vary"),
        "{halite:?}"
    );
    // halite's login cookie is HttpOnly and SameSite=Strict (README, "Differences from Salt's
    // login"); Salt's is neither.
    for (name, value) in halite.headers.iter_mut() {
        if name == "set-cookie" {
            let plain = value
                .strip_suffix("; HttpOnly; SameSite=Strict")
                .unwrap_or_else(|| panic!("halite's cookie is HttpOnly and SameSite: {value}"));
            *value = plain.to_owned();
        }
    }
}

/// The webhook event's data, compared by its keys in order, `body`, `post`, and the names of
/// the request headers it carries.
fn hook_shape(event: &Event) -> (Vec<String>, Value, Value, Vec<String>) {
    let keys = match &event.data {
        Value::Map(entries) => entries
            .iter()
            .map(|(k, _)| k.as_str().unwrap_or_default().to_owned())
            .collect(),
        _ => Vec::new(),
    };
    let mut names: Vec<String> = match map_get(&event.data, "headers") {
        Some(Value::Map(entries)) => entries
            .iter()
            .map(|(k, _)| k.as_str().unwrap_or_default().to_owned())
            .collect(),
        _ => Vec::new(),
    };
    names.sort();
    (
        keys,
        map_get(&event.data, "body").cloned().unwrap_or(Value::Nil),
        map_get(&event.data, "post").cloned().unwrap_or(Value::Nil),
        names,
    )
}

#[test]
fn api_salt_rest_cherrypy_and_halite_answer_alike() {
    let venv = match crate::conformance::installed("3007.8") {
        Ok(venv) => venv,
        Err(missing) => {
            eprintln!("SKIPPED: {missing}");
            return;
        }
    };
    // CherryPy is beside the venv, for salt-api alone (tests/salt-env.sh says why).
    let cherrypy_dir = venv.parent().unwrap().join("cherrypy-3007.8");
    let cherrypy = std::process::Command::new(venv.join("bin/python"))
        .args(["-c", "import cherrypy"])
        .env("PYTHONPATH", &cherrypy_dir)
        .output()
        .unwrap();
    if !cherrypy.status.success() {
        eprintln!(
            "SKIPPED: no CherryPy in {}: run `bash tests/salt-env.sh`",
            cherrypy_dir.display()
        );
        return;
    }

    // Salt's side.
    let salt_port = free_port();
    let rest = format!(
        r#"rest_cherrypy={{"port": {salt_port}, "host": "127.0.0.1", "disable_ssl": true}}"#
    );
    let salt_lab = SaltLab::up_with(
        "3007.8",
        true,
        &[
            "--api",
            "--master-opt",
            &rest,
            "--master-opt",
            &format!("external_auth={EAUTH}"),
            "--master-opt",
            &format!("netapi_enable_clients={CLIENTS}"),
        ],
    );
    // halite's side.
    let port = free_port();
    let mut lab = Lab::with_config(
        &format!(
            "external_auth: {EAUTH}\nnetapi_enable_clients: {CLIENTS}\n{}",
            api_block(port)
        ),
        "",
    );
    lab.start_master();
    lab.start_minion();
    lab.start_api(port);
    // halite's first, Salt's second: the APIs and their masters' buses.
    let bases = [
        format!("http://127.0.0.1:{port}"),
        format!("http://127.0.0.1:{salt_port}"),
    ];
    let mut buses = [
        RawSubscriber::connect(&lab.master_pub()),
        RawSubscriber::connect(&salt_lab.master_pub()),
    ];
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let form = "application/x-www-form-urlencoded";
    let json = "application/json";
    let pair = |path: &str, token: [Option<&str>; 2], content_type: &str, body: &str| {
        let [halite, salt] = [0, 1].map(|side| {
            let url = format!("{}{path}", bases[side]);
            request(&runtime, &client, &url, token[side], content_type, body)
        });
        (halite, salt)
    };

    // POST /login, as a form and as JSON.
    let credentials = "username=alice&password=secret&eauth=auto";
    for (content_type, body) in [
        (form, credentials),
        (
            json,
            r#"{"username": "alice", "password": "secret", "eauth": "auto"}"#,
        ),
    ] {
        let (mut halite, mut salt) = pair("/login", [None, None], content_type, body);
        documented_header_differences(&mut halite, &mut salt, true);
        assert_eq!(halite, salt, "POST /login ({content_type})");
        assert_eq!(halite.status, 200);
    }
    // The tokens, from a login on each side.
    let tokens: Vec<String> = bases
        .iter()
        .map(|base| {
            runtime.block_on(async {
                let text = client
                    .post(format!("{base}/login"))
                    .header("Accept", "application/json")
                    .header("Content-Type", form)
                    .body(credentials)
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                let value: serde_json::Value = serde_json::from_str(&text).unwrap();
                value["return"][0]["token"].as_str().unwrap().to_owned()
            })
        })
        .collect();
    let tokens = [Some(tokens[0].as_str()), Some(tokens[1].as_str())];

    // POST /hook/<path>: the answer, and the event on each master's bus.
    let (mut halite, mut salt) = pair("/hook/ci/build", tokens, form, "branch=main&ok=1");
    documented_header_differences(&mut halite, &mut salt, false);
    assert_eq!(halite, salt, "POST /hook/ci/build");
    assert_eq!(halite.body, r#"{"success": true}"#);
    let shapes: Vec<_> = buses
        .iter_mut()
        .map(|bus| hook_shape(&bus.expect_tag("salt/netapi/hook/ci/build")))
        .collect();
    let (mut halite_shape, salt_shape) = (shapes[0].clone(), shapes[1].clone());
    assert!(
        salt_shape.3.contains(&"X-Auth-Token".to_owned()),
        "{salt_shape:?}"
    );
    // Documented: halite leaves the caller's token out of the event.
    assert!(
        !halite_shape.3.contains(&"X-Auth-Token".to_owned()),
        "{halite_shape:?}"
    );
    halite_shape.3.push("X-Auth-Token".to_owned());
    halite_shape.3.sort();
    assert_eq!(halite_shape, salt_shape, "the webhook event's data");

    // Without a token: 401 on both; Salt's body is CherryPy's HTML page, halite's Salt's JSON
    // error shape (documented).
    let (halite, salt) = pair("/hook/ci/build", [None, None], form, "branch=main");
    assert_eq!((halite.status, salt.status), (401, 401));
    assert_eq!(
        halite.body,
        r#"{"status": 401, "return": "No permission -- see authorization schemes"}"#
    );
    assert!(
        salt.body
            .contains("No permission -- see authorization schemes")
    );

    // POST / with each client.
    let lowstates = [
        r#"{"client": "local", "tgt": "*", "fun": "test.ping"}"#,
        r#"{"client": "local_async", "tgt": "*", "fun": "test.ping"}"#,
        r#"{"client": "runner", "fun": "test.arg", "arg": ["a", 1], "kwarg": {"k": "v"}}"#,
        r#"{"client": "wheel", "fun": "key.list_all"}"#,
    ];
    for lowstate in lowstates {
        let (mut halite, mut salt) = pair("/", tokens, json, lowstate);
        documented_header_differences(&mut halite, &mut salt, false);
        assert_eq!(halite, salt, "POST / {lowstate}");
        assert_eq!(halite.status, 200, "{halite:?}");
    }
    // jobs.list_jobs: the two test.ping jobs each side published, in the same shape. (Salt's
    // job cache also lists the runner job; halite's jobs runner lists the minions' jobs.)
    let (mut halite, mut salt) = pair(
        "/",
        tokens,
        json,
        r#"{"client": "runner", "fun": "jobs.list_jobs"}"#,
    );
    documented_header_differences(&mut halite, &mut salt, false);
    assert_eq!(halite.headers, salt.headers);
    let pings = |answer: &Answer| {
        let value: Value = serde_json::from_str(&answer.body).unwrap();
        let jobs = map_get(&value, "return")
            .and_then(|list| list.as_array())
            .and_then(|list| list.first())
            .cloned()
            .unwrap_or(Value::Nil);
        match jobs {
            Value::Map(entries) => entries
                .into_iter()
                .filter(|(_, job)| {
                    map_get(job, "Function").and_then(Value::as_str) == Some("test.ping")
                })
                .map(|(_, job)| job.to_string())
                .collect::<Vec<_>>(),
            _ => Vec::new(),
        }
    };
    assert_eq!(pings(&halite).len(), 2, "{halite:?}");
    assert_eq!(pings(&halite), pings(&salt), "jobs.list_jobs");
}
