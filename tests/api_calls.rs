//! salt-api's calls on a real master and minion: `POST /` with each client in Salt's answer
//! shapes, `/run` with the token in the body, `/minions`, `/jobs`, `/keys`, webhooks on the bus
//! without the caller's credentials, `external_auth` refusals, bad lowstates, a master that is
//! down, and `pepper` (Salt's own REST client) against it all.

use std::process::Command;
use std::time::Duration;

use halite::event::{Value, map_get};
use serde_json::{Value as Json, json};

use crate::support::{Cluster, Lab, MINION_ID, RawSubscriber, api_block, free_port};

/// The users of the tests' `external_auth`: alice may do everything, bob only `test.ping`.
const EAUTH: &str = "external_auth:
  auto:
    alice:
      - '.*'
      - '@runner'
      - '@wheel'
      - '@jobs'
    bob:
      - test.ping
    carol:
      - '*':
        - test.echo:
            args: ['ok.*']
      - '@test':
        - arg:
            kwargs: {color: blue}
";

/// An HTTP client of the lab's API.
struct Api {
    base: String,
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
}

/// An answer: status, content type, body as JSON (`Null` when it is not JSON).
#[derive(Debug)]
struct Answer {
    status: u16,
    text: String,
    json: Json,
    /// The body with its maps in the order sent.
    ordered: Value,
}

impl Api {
    fn new(port: u16) -> Self {
        // reqwest is built without a crypto provider of its own; plain HTTP needs none, but
        // the client wants one installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Api {
            base: format!("http://127.0.0.1:{port}"),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: reqwest::Client::new(),
        }
    }

    fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        self.runtime.block_on(async {
            let response = request
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            let json = serde_json::from_str(&text).unwrap_or(Json::Null);
            let ordered = serde_json::from_str(&text).unwrap_or(Value::Nil);
            Answer {
                status,
                text,
                json,
                ordered,
            }
        })
    }

    fn get(&self, path: &str, token: Option<&str>) -> Answer {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("X-Auth-Token", token);
        }
        self.send(request)
    }

    fn post(&self, path: &str, token: Option<&str>, body: &Json) -> Answer {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json")
            .body(body.to_string());
        if let Some(token) = token {
            request = request.header("X-Auth-Token", token);
        }
        self.send(request)
    }

    fn post_raw(&self, path: &str, token: Option<&str>, content_type: &str, body: &str) -> Answer {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("Content-Type", content_type)
            .body(body.to_owned());
        if let Some(token) = token {
            request = request.header("X-Auth-Token", token);
        }
        self.send(request)
    }
}

/// A lab with `external_auth`, its master, its minion (returning) and its API.
fn lab(extra: &str, minion: bool) -> (Lab, Api, RawSubscriber) {
    let port = free_port();
    let mut lab = Lab::with_config(&format!("{EAUTH}{}{extra}", api_block(port)), "");
    lab.start_master();
    let mut bus = RawSubscriber::connect(&lab.master_pub());
    if minion {
        lab.start_minion();
        bus.expect_tag(&format!("salt/minion/{MINION_ID}/start"));
    }
    lab.start_api(port);
    (lab, Api::new(port), bus)
}

/// The one entry of a `{"return": [entry]}` answer.
fn only(answer: &Answer) -> &Json {
    assert_eq!(answer.status, 200, "{}", answer.text);
    let returns = answer.json["return"].as_array().expect("a return list");
    assert_eq!(returns.len(), 1, "{}", answer.text);
    &returns[0]
}

/// The keys of the map at `path` (keys and list indexes) in an answer, in the order sent.
fn keys<'a>(answer: &'a Answer, path: &[&str]) -> Vec<&'a str> {
    let mut value = &answer.ordered;
    for step in path {
        value = match step.parse::<usize>() {
            Ok(index) => value.as_array().and_then(|items| items.get(index)),
            Err(_) => map_get(value, step),
        }
        .unwrap_or_else(|| panic!("no {path:?} in {}", answer.text));
    }
    keys_of(value)
}

/// The next event whose tag starts with `prefix`.
fn expect_prefix(bus: &mut RawSubscriber, prefix: &str) -> halite::event::Event {
    while let Some(event) = bus.next_event(Duration::from_secs(10)) {
        if event.tag.starts_with(prefix) {
            return event;
        }
    }
    panic!("no event under {prefix} arrived");
}

/// The text of a string field of an event's data.
fn text(value: Option<&Value>) -> String {
    value.and_then(Value::as_str).unwrap_or_default().to_owned()
}

#[test]
fn api_calls_each_client_answers_in_salts_shapes() {
    let (lab, api, mut bus) = lab("", true);
    let minted = lab.mint_token("alice", "auto", 600.0);
    let token = Some(minted.as_str());

    let welcome = api.get("/", None);
    assert_eq!(welcome.status, 200);
    assert_eq!(
        welcome.json,
        json!({"return": "Welcome", "clients": ["local", "local_async", "local_batch", "runner", "runner_async", "wheel"]})
    );

    let ping = api.post(
        "/",
        token,
        &json!({"client": "local", "tgt": "*", "fun": "test.ping"}),
    );
    assert_eq!(only(&ping), &json!({ MINION_ID: true }));
    assert_eq!(
        ping.text,
        format!(r#"{{"return": [{{"{MINION_ID}": true}}]}}"#)
    );

    // Two chunks, arg and kwarg, full returns.
    let two = api.post(
        "/",
        token,
        &json!([
            {"client": "local", "tgt": MINION_ID, "fun": "test.echo", "arg": "hello"},
            {"client": "local", "tgt": [MINION_ID], "tgt_type": "list", "fun": "test.ping", "full_return": true}
        ]),
    );
    assert_eq!(two.status, 200, "{}", two.text);
    assert_eq!(two.json["return"][0], json!({ MINION_ID: "hello" }));
    let full = &two.json["return"][1][MINION_ID];
    assert_eq!(full["ret"], json!(true));
    assert_eq!(full["retcode"], json!(0));
    assert!(full["jid"].is_string(), "{}", two.text);

    let none = api.post(
        "/",
        token,
        &json!({"client": "local", "tgt": "nosuch*", "fun": "test.ping"}),
    );
    assert_eq!(only(&none), &json!({}));

    let answer = api.post(
        "/",
        token,
        &json!({"client": "local_async", "tgt": "*", "fun": "test.ping"}),
    );
    let started = only(&answer);
    assert_eq!(keys(&answer, &["return", "0"]), ["jid", "minions"]);
    assert_eq!(started["minions"], json!([MINION_ID]));
    let jid = started["jid"].as_str().unwrap();
    bus.expect_tag(&format!("salt/job/{jid}/ret/{MINION_ID}"));

    let batch = api.post(
        "/",
        token,
        &json!({"client": "local_batch", "tgt": "*", "fun": "test.echo", "arg": ["b"], "batch": "1"}),
    );
    assert_eq!(
        batch.json,
        json!({"return": [{ MINION_ID: "b" }]}),
        "{}",
        batch.text
    );

    // A runner: its return, and its events on the bus.
    let runner = api.post(
        "/",
        token,
        &json!({"client": "runner", "fun": "test.arg", "arg": ["a", "n=1"], "kwarg": {"k": "v"}}),
    );
    let returned = only(&runner);
    assert_eq!(returned["args"], json!(["a"]), "{}", runner.text);
    assert_eq!(returned["kwargs"]["n"], json!(1), "{}", runner.text);
    assert_eq!(returned["kwargs"]["k"], json!("v"), "{}", runner.text);
    let new = expect_prefix(&mut bus, "salt/run/");
    assert!(new.tag.ends_with("/new"), "{}", new.tag);
    assert_eq!(text(new.get("fun")), "runner.test.arg");
    assert_eq!(text(new.get("user")), "alice");
    let ret = expect_prefix(&mut bus, "salt/run/");
    assert_eq!(ret.tag, new.tag.replace("/new", "/ret"));
    assert_eq!(ret.get("success"), Some(&Value::Boolean(true)));

    let full = api.post(
        "/",
        token,
        &json!({"client": "runner", "fun": "test.arg", "arg": ["x"], "full_return": true}),
    );
    only(&full);
    assert_eq!(keys(&full, &["return", "0"]), ["tag", "data"]);
    assert_eq!(
        keys(&full, &["return", "0", "data"]),
        [
            "fun", "jid", "user", "fun_args", "_stamp", "return", "success"
        ]
    );

    let later = api.post(
        "/",
        token,
        &json!({"client": "runner_async", "fun": "test.arg", "arg": ["later"]}),
    );
    assert_eq!(keys(&later, &["return", "0"]), ["tag", "jid"]);
    let later = only(&later);
    let jid = later["jid"].as_str().unwrap();
    assert_eq!(later["tag"], json!(format!("salt/run/{jid}")));
    bus.expect_tag(&format!("salt/run/{jid}/ret"));

    // The wheel: Salt's master's envelope, its data fired as new and ret.
    let wheel = api.post(
        "/",
        token,
        &json!({"client": "wheel", "fun": "key.list_all"}),
    );
    let envelope = only(&wheel);
    assert_eq!(keys(&wheel, &["return", "0"]), ["tag", "data"]);
    let data = &envelope["data"];
    assert_eq!(
        keys(&wheel, &["return", "0", "data"]),
        ["fun", "jid", "tag", "user", "_stamp", "return", "success"]
    );
    assert_eq!(data["fun"], json!("wheel.key.list_all"));
    assert_eq!(data["user"], json!("alice"));
    assert_eq!(data["tag"], envelope["tag"]);
    assert_eq!(data["return"]["minions"], json!([MINION_ID]));
    assert_eq!(data["success"], json!(true));
    let tag = envelope["tag"].as_str().unwrap();
    let new = bus.expect_tag(&format!("{tag}/new"));
    assert_eq!(
        new.get("_stamp").and_then(Value::as_str),
        data["_stamp"].as_str()
    );
    bus.expect_tag(&format!("{tag}/ret"));

    // Functions that do not exist: the minion's answer, the wheel's failure, the runner's 500.
    let missing = api.post(
        "/",
        token,
        &json!({"client": "local", "tgt": "*", "fun": "nosuch.fun"}),
    );
    assert!(
        only(&missing)[MINION_ID]
            .as_str()
            .unwrap()
            .contains("nosuch.fun")
    );
    let missing = api.post("/", token, &json!({"client": "wheel", "fun": "key.nosuch"}));
    assert_eq!(only(&missing)["data"]["success"], json!(false));
    let missing = api.post(
        "/",
        token,
        &json!({"client": "runner", "fun": "nosuch.fun"}),
    );
    assert_eq!(missing.status, 500, "{}", missing.text);
    assert_eq!(
        missing.json["return"],
        json!("'nosuch.fun' is not available.")
    );

    // /run: the token in the body, no session.
    let run = api.post(
        "/run",
        None,
        &json!([{"client": "local", "tgt": "*", "fun": "test.ping", "token": minted}]),
    );
    assert_eq!(only(&run), &json!({ MINION_ID: true }));
    // /run: the credentials in the body, checked by their eauth backend; no token is minted.
    let tokens = || {
        std::fs::read_dir(lab.path().join("cache/master/tokens"))
            .unwrap()
            .count()
    };
    let before = tokens();
    let run = api.post(
        "/run",
        None,
        &json!([{"client": "local", "tgt": "*", "fun": "test.ping",
                 "username": "alice", "password": "any", "eauth": "auto"}]),
    );
    assert_eq!(only(&run), &json!({ MINION_ID: true }));
    assert_eq!(tokens(), before);
    let run = api.post(
        "/run",
        None,
        &json!([{"client": "local", "tgt": "*", "fun": "test.ping",
                 "username": "alice", "password": "any", "eauth": "pam-not-configured"}]),
    );
    assert_eq!(run.status, 401, "{}", run.text);
    let run = api.post(
        "/run",
        None,
        &json!({"client": "local", "tgt": "*", "fun": "test.ping", "token": "nothex"}),
    );
    assert_eq!(
        (run.status, run.json["return"].clone()),
        (401, json!("Invalid token"))
    );
    let run = api.post(
        "/run",
        None,
        &json!({"client": "local", "tgt": "*", "fun": "test.ping", "token": "abcdef"}),
    );
    assert_eq!(run.status, 401, "{}", run.text);
    let run = api.post(
        "/run",
        None,
        &json!({"client": "local", "tgt": "*", "fun": "test.ping"}),
    );
    assert_eq!(
        (run.status, run.json["return"].clone()),
        (401, json!("No authentication credentials given"))
    );
}

#[test]
fn api_calls_bad_lowstates_are_refused_with_salts_status() {
    let (lab, api, _bus) = lab("", false);
    let token = lab.mint_token("alice", "auto", 600.0);
    let token = Some(token.as_str());
    let unknown = api.post("/", token, &json!({"client": "nope", "fun": "test.ping"}));
    assert_eq!(unknown.status, 400);
    assert_eq!(
        unknown.json,
        json!({"status": 400, "return": "Invalid client specified: 'nope'"})
    );
    let missing = api.post("/", token, &json!({"fun": "test.ping"}));
    assert_eq!(
        missing.json["return"],
        json!("Invalid client specified: 'None'")
    );
    // A few aliases in a small YAML body would build megabytes.
    let mut aliases = format!(
        "- client: local\n  tgt: x\n  fun: test.echo\n  a0: &a0 {}\n",
        "x".repeat(1000)
    );
    for n in 1..8 {
        aliases.push_str(&format!(
            "  a{n}: &a{n} [{}]\n",
            vec![format!("*a{}", n - 1); 10].join(", ")
        ));
    }
    for (content_type, body) in [
        ("application/json", "{not json"),
        ("application/json", r#""a string""#),
        ("application/json", "[1, 2]"),
        ("application/x-yaml", "- [unclosed"),
        ("application/json", ""),
        ("application/x-yaml", aliases.as_str()),
    ] {
        let answer = api.post_raw("/", token, content_type, body);
        assert_eq!(answer.status, 400, "{body}: {}", answer.text);
        assert_eq!(answer.json["status"], json!(400), "{body}: {}", answer.text);
    }
    let local = api.post("/", token, &json!({"client": "local", "fun": "test.ping"}));
    assert_eq!(local.status, 400, "{}", local.text);
    let batch = api.post(
        "/",
        token,
        &json!({"client": "local", "tgt": "*", "fun": "test.ping", "timeout": "soon"}),
    );
    assert_eq!(batch.status, 400, "{}", batch.text);
    // A target that cannot be used is the caller's mistake, not a master that is down.
    for (tgt, tgt_type) in [
        ("nosuch", "nodegroup"),
        ("m1 and", "compound"),
        ("m1", "bogus"),
    ] {
        for client in ["local", "local_async", "local_batch"] {
            let chunk =
                json!({"client": client, "tgt": tgt, "tgt_type": tgt_type, "fun": "test.ping"});
            let answer = api.post("/", token, &chunk);
            assert_eq!(answer.status, 400, "{chunk}: {}", answer.text);
            let reason = answer.json["return"].as_str().unwrap_or_default();
            assert!(
                !reason.is_empty() && !reason.contains("not available"),
                "{chunk}: {}",
                answer.text
            );
        }
    }
    assert!(
        !lab.log("api").contains("not reachable"),
        "{}",
        lab.log("api")
    );
    // No token at all.
    let anonymous = api.post(
        "/",
        None,
        &json!({"client": "local", "tgt": "*", "fun": "test.ping"}),
    );
    assert_eq!(anonymous.status, 401);
    assert!(
        lab.log("api")
            .lines()
            .all(|line| !line.contains("panicked"))
    );
}

#[test]
fn api_calls_external_auth_refuses_what_the_user_may_not_do() {
    let (lab, api, _bus) = lab("", true);
    let bob = lab.mint_token("bob", "auto", 600.0);
    let bob = Some(bob.as_str());
    let ping = api.post(
        "/",
        bob,
        &json!({"client": "local", "tgt": "*", "fun": "test.ping"}),
    );
    assert_eq!(only(&ping), &json!({ MINION_ID: true }));
    let echo = api.post(
        "/",
        bob,
        &json!({"client": "local", "tgt": "*", "fun": "test.echo", "arg": ["x"]}),
    );
    assert_eq!(
        echo.json,
        json!({"status": 401, "return": "Authorization error occurred."})
    );
    let refusal = json!({"status": 401, "return": "Authentication failure of type \"token\" occurred for user bob."});
    for chunk in [
        json!({"client": "runner", "fun": "jobs.list_jobs"}),
        json!({"client": "runner_async", "fun": "test.arg"}),
        json!({"client": "wheel", "fun": "key.list_all"}),
    ] {
        let answer = api.post("/", bob, &chunk);
        assert_eq!(answer.json, refusal, "{chunk}");
    }
    // With credentials in the call (/run), the failure is of type eauth, as Salt's master says.
    let run = api.post(
        "/run",
        None,
        &json!([{"client": "wheel", "fun": "key.list_all",
                 "username": "bob", "password": "any", "eauth": "auto"}]),
    );
    assert_eq!(
        run.json["return"],
        json!("Authentication failure of type \"eauth\" occurred for user bob.")
    );
    for path in ["/jobs", "/keys", "/keys/minion1", "/minions"] {
        let answer = api.get(path, bob);
        assert_eq!(answer.status, 401, "{path}: {}", answer.text);
    }
    // A chunk refused ends the request: nothing of it is answered.
    let mixed = api.post(
        "/",
        bob,
        &json!([{"client": "local", "tgt": "*", "fun": "test.ping"}, {"client": "wheel", "fun": "key.list_all"}]),
    );
    assert_eq!(mixed.status, 401);
    // Entries that restrict arguments see each call's arguments.
    let carol = lab.mint_token("carol", "auto", 600.0);
    let carol = Some(carol.as_str());
    let echo = |word: &str| {
        let chunk = json!({"client": "local", "tgt": "*", "fun": "test.echo", "arg": [word]});
        api.post("/", carol, &chunk)
    };
    assert_eq!(only(&echo("okay")), &json!({ MINION_ID: "okay" }));
    assert_eq!(echo("nope").status, 401);
    let arg = |color: &str| {
        let chunk = json!({"client": "runner", "fun": "test.arg", "kwarg": {"color": color}});
        api.post("/", carol, &chunk)
    };
    assert_eq!(arg("blue").status, 200, "{}", arg("blue").text);
    assert_eq!(arg("red").status, 401);
    // An expired token, and none.
    let expired = lab.mint_token("alice", "auto", -1.0);
    assert_eq!(api.get("/jobs", Some(&expired)).status, 401);
    assert_eq!(api.get("/keys", None).status, 401);
}

#[test]
fn api_calls_minions_jobs_and_keys_endpoints() {
    let (lab, api, mut bus) = lab("", true);
    let token = lab.mint_token("alice", "auto", 600.0);
    let token = Some(token.as_str());

    let all = api.get("/minions", token);
    let grains = &only(&all)[MINION_ID];
    assert_eq!(grains["id"], json!(MINION_ID), "{}", all.text);
    let one = api.get(&format!("/minions/{MINION_ID}"), token);
    only(&one);
    assert_eq!(keys(&one, &["return", "0"]), [MINION_ID]);

    let started = api.post(
        "/minions",
        token,
        &json!({"tgt": "*", "fun": "test.echo", "arg": "from-api"}),
    );
    assert_eq!(started.status, 202, "{}", started.text);
    let jid = started.json["return"][0]["jid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        started.json["_links"],
        json!({"jobs": [{"href": format!("/jobs/{jid}")}]})
    );
    bus.expect_tag(&format!("salt/job/{jid}/ret/{MINION_ID}"));

    let jobs = api.get("/jobs", token);
    assert!(only(&jobs).get(&jid).is_some(), "{}", jobs.text);
    let job = api.get(&format!("/jobs/{jid}"), token);
    assert_eq!(job.status, 200, "{}", job.text);
    assert_eq!(
        job.json["return"],
        json!([{ MINION_ID: "from-api" }]),
        "{}",
        job.text
    );
    assert_eq!(
        job.json["info"][0]["Function"],
        json!("test.echo"),
        "{}",
        job.text
    );

    let listed = api.get("/keys", token);
    assert_eq!(
        listed.json["return"]["minions"],
        json!([MINION_ID]),
        "{}",
        listed.text
    );
    let finger = api.get(&format!("/keys/{MINION_ID}"), token);
    assert!(
        finger.json["return"]["minions"][MINION_ID].is_string(),
        "{}",
        finger.text
    );

    // Keys change through the wheel client, as in Salt.
    let reject = api.post(
        "/",
        token,
        &json!({"client": "wheel", "fun": "key.reject", "match": MINION_ID, "include_accepted": true}),
    );
    assert_eq!(
        only(&reject)["data"]["success"],
        json!(true),
        "{}",
        reject.text
    );
    let listed = api.get("/keys", token);
    assert_eq!(
        listed.json["return"]["minions_rejected"],
        json!([MINION_ID]),
        "{}",
        listed.text
    );
    let accept = api.post(
        "/",
        token,
        &json!({"client": "wheel", "fun": "key.accept", "kwarg": {"match": MINION_ID, "include_rejected": true}}),
    );
    assert_eq!(
        only(&accept)["data"]["success"],
        json!(true),
        "{}",
        accept.text
    );
    let delete = api.post(
        "/",
        token,
        &json!({"client": "wheel", "fun": "key.delete", "arg": [format!("match={MINION_ID}")]}),
    );
    assert_eq!(
        only(&delete)["data"]["success"],
        json!(true),
        "{}",
        delete.text
    );
    let listed = api.get("/keys", token);
    assert_eq!(
        listed.json["return"]["minions"],
        json!([]),
        "{}",
        listed.text
    );
}

#[test]
fn api_calls_webhook_events_keep_salts_shape_without_the_callers_credentials() {
    let (lab, api, mut bus) = lab("", false);
    let token = lab.mint_token("alice", "auto", 600.0);
    let answer = api.send(
        api.client
            .post(format!("{}/hook/my/app", api.base))
            .header("X-Auth-Token", &token)
            .header("Cookie", format!("theme=dark; session_id={token}"))
            .header("X-GitHub-Event", "push")
            .header("Content-Type", "application/json")
            .body(format!(
                r#"{{"rev": "abc", "ok": true, "token": "{token}"}}"#
            )),
    );
    assert_eq!(
        (answer.status, answer.text.as_str()),
        (200, r#"{"success": true}"#)
    );
    let event = bus.expect_tag("salt/netapi/hook/my/app");
    assert_eq!(event.tag, "salt/netapi/hook/my/app");
    assert_eq!(keys_of(&event.data), ["body", "post", "headers", "_stamp"]);
    assert_eq!(text(event.get("body")), r#"{"rev": "abc", "ok": true}"#);
    let post = event.get("post").unwrap();
    assert_eq!(keys_of(post), ["rev", "ok"]);
    let headers = event.get("headers").unwrap();
    let mut names = keys_of(headers);
    assert_eq!(names.remove(0), "Remote-Addr", "CherryPy's first header");
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "Accept",
            "Content-Length",
            "Content-Type",
            "Cookie",
            "Host",
            "X-Github-Event"
        ]
    );
    assert_eq!(text(map_get(headers, "Remote-Addr")), "127.0.0.1");
    assert_eq!(text(map_get(headers, "Cookie")), "theme=dark");
    assert_eq!(text(map_get(headers, "X-Github-Event")), "push");
    assert!(map_get(headers, "Host").is_some());
    assert!(
        !format!("{}", event.data).contains(&token),
        "the caller's token is in the event: {}",
        event.data
    );

    // Credentials below the top level, the token anywhere in the body or a header, and a
    // session cookie written with spaces.
    let answer = api.send(
        api.client
            .post(format!("{}/hook/deep", api.base))
            .header("X-Auth-Token", &token)
            .header("Cookie", format!("theme=dark; session_id = {token}"))
            .header("X-Echo", format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .body(format!(
                r#"{{"nested": {{"token": "{token}", "keep": 1}}, "list": [{{"password": "pw"}}, "{token}", "x"], "copy": "{token}"}}"#
            )),
    );
    assert_eq!(answer.status, 200, "{}", answer.text);
    let event = bus.expect_tag("salt/netapi/hook/deep");
    let all = format!("{}", event.data);
    assert!(
        !all.contains(&token) && !all.contains("\"pw\""),
        "credentials in the event: {all}"
    );
    assert_eq!(
        event.get("post").unwrap().to_string(),
        r#"{"nested": {"keep": 1}, "list": [{}, "x"]}"#
    );
    let headers = event.get("headers").unwrap();
    assert_eq!(text(map_get(headers, "Cookie")), "theme=dark");
    assert!(map_get(headers, "X-Echo").is_none(), "{all}");
    // A body that is the token itself.
    let answer = api.post_raw(
        "/hook/bare",
        Some(&token),
        "application/json",
        &format!("\"{token}\""),
    );
    assert_eq!(answer.status, 200, "{}", answer.text);
    let event = bus.expect_tag("salt/netapi/hook/bare");
    assert!(
        !format!("{}", event.data).contains(&token),
        "{}",
        event.data
    );

    // A path that would break the bus's framing is refused, not reported fired.
    let forged = api.post_raw(
        "/hook/a%0A%0Aforged",
        Some(&token),
        "application/json",
        "{}",
    );
    assert_eq!(forged.status, 400, "{}", forged.text);
    assert!(
        forged.text.contains("control characters"),
        "{}",
        forged.text
    );

    // A form, and the bare webhook URL.
    let answer = api.post_raw(
        "/hook",
        Some(&token),
        "application/x-www-form-urlencoded",
        "a=1&password=x",
    );
    assert_eq!(answer.status, 200, "{}", answer.text);
    let event = bus.expect_tag("salt/netapi/hook");
    assert_eq!(event.tag, "salt/netapi/hook");
    assert_eq!(text(event.get("body")), "a=1");
    assert_eq!(event.get("post").unwrap().to_string(), r#"{"a": "1"}"#);

    // No token: refused, nothing fired.
    let refused = api.post_raw("/hook/x", None, "application/json", "{}");
    assert_eq!(refused.status, 401);
}

/// A map value's string keys, in order.
fn keys_of(value: &Value) -> Vec<&str> {
    value
        .as_map()
        .map(|entries| entries.iter().filter_map(|(k, _)| k.as_str()).collect())
        .unwrap_or_default()
}

#[test]
fn api_calls_webhooks_without_auth_when_configured_and_a_master_that_is_down() {
    let port = free_port();
    let block = format!(
        "{}  webhook_disable_auth: True\n  webhook_url: /incoming\n",
        api_block(port)
    );
    let mut lab = Lab::with_config(&format!("{EAUTH}{block}"), "");
    lab.start_master();
    let mut bus = RawSubscriber::connect(&lab.master_pub());
    lab.start_api(port);
    let api = Api::new(port);
    let answer = api.post_raw(
        "/incoming/ci/done",
        None,
        "application/json",
        r#"{"build": 7}"#,
    );
    assert_eq!(answer.status, 200, "{}", answer.text);
    let event = bus.expect_tag("salt/netapi/hook/ci/done");
    assert_eq!(event.get("post").unwrap().to_string(), r#"{"build": 7}"#);
    assert_eq!(
        api.post_raw("/hook/x", None, "application/json", "{}")
            .status,
        404
    );

    // The master goes away: every client and the webhook say so.
    let token = lab.mint_token("alice", "auto", 600.0);
    let (status, _) = lab.take_daemon_named("salt-master").stop();
    assert!(status.success());
    for chunk in [
        json!({"client": "local", "tgt": "*", "fun": "test.ping"}),
        json!({"client": "local_async", "tgt": "*", "fun": "test.ping"}),
        json!({"client": "runner", "fun": "test.arg"}),
        json!({"client": "wheel", "fun": "key.list_all"}),
    ] {
        let answer = api.post("/", Some(&token), &chunk);
        assert_eq!(
            answer.json,
            json!({"status": 503, "return": "Salt Master is not available."}),
            "{chunk}"
        );
    }
    let hook = api.post_raw("/incoming/x", None, "application/json", "{}");
    assert_eq!(hook.status, 503, "{}", hook.text);
}

/// `pepper`, from its venv beside Salt's, or why it cannot run.
fn pepper() -> Result<std::path::PathBuf, String> {
    let root = std::env::var_os("HALITE_SALT_ENVS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").expect("HOME"))
                .join(".cache/halite/salt-envs")
        });
    let venv = root.join("pepper");
    if venv.join(".halite-ok").exists() {
        Ok(venv.join("bin/pepper"))
    } else {
        Err(format!(
            "pepper is not installed in {} (tests/salt-env.sh installs it)",
            venv.display()
        ))
    }
}

#[test]
fn api_calls_pepper_runs_against_halites_api() {
    let pepper = match pepper() {
        Ok(pepper) => pepper,
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
    let (_lab, api, _bus) = lab("", true);
    let run = |args: &[&str]| -> Json {
        // pepper logs in through /login with these, as it does against Salt's API.
        let output = Command::new(&pepper)
            .args(args)
            .env("SALTAPI_URL", &api.base)
            .env("SALTAPI_USER", "alice")
            .env("SALTAPI_PASS", "any password: eauth auto")
            .env("SALTAPI_EAUTH", "auto")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "pepper {args:?}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_str(&stdout)
            .unwrap_or_else(|err| panic!("pepper {args:?}: {err}: {stdout}"))
    };
    let ping = run(&["*", "test.ping"]);
    assert_eq!(ping["return"][0][MINION_ID]["ret"], json!(true), "{ping}");
    let jobs = run(&["--client", "runner", "jobs.list_jobs"]);
    assert!(jobs["return"][0]["data"]["return"].is_object(), "{jobs}");
    let keys = run(&["--client", "wheel", "key.list_all"]);
    assert_eq!(
        keys["return"][0]["data"]["return"]["minions"],
        json!([MINION_ID]),
        "{keys}"
    );
}

#[test]
fn api_calls_netapi_enable_clients_refuses_the_clients_it_does_not_list() {
    let (lab, api, _bus) = lab("netapi_enable_clients: [local]\n", true);
    let token = lab.mint_token("alice", "auto", 600.0);
    let token = Some(token.as_str());
    let ping = api.post(
        "/",
        token,
        &json!({"client": "local", "tgt": "*", "fun": "test.ping"}),
    );
    assert_eq!(only(&ping), &json!({ MINION_ID: true }));
    let runner = api.post("/", token, &json!({"client": "runner", "fun": "test.arg"}));
    assert_eq!(
        runner.json,
        json!({"status": 400, "return": "Client disabled: 'runner'. Add to 'netapi_enable_clients' master config option to enable."})
    );
}

#[test]
fn local_batch_slides_its_window_and_answers_one_entry_per_minion() {
    let port = free_port();
    let ids = ["minion1", "minion2", "minion3"];
    let master = format!("auto_accept: True\n{EAUTH}{}", api_block(port));
    let mut cluster = Cluster::with_minions(&master, &ids);
    cluster.start_api(port);
    let api = Api::new(port);
    // The first minion to run the job sleeps 3 s; the others finish at once. Each returns the
    // time it finished.
    let lock = cluster.path().join("slow");
    let script = format!(
        "if mkdir {} 2>/dev/null; then sleep 3; fi; date +%s.%N",
        lock.display()
    );
    let started = std::time::Instant::now();
    let answer = api.post(
        "/run",
        None,
        &json!([{"client": "local_batch", "tgt": "*", "fun": "cmd.run", "arg": [script],
                 "kwarg": {"python_shell": true}, "batch": "2",
                 "username": "alice", "password": "any", "eauth": "auto"}]),
    );
    let took = started.elapsed();
    assert_eq!(answer.status, 200, "{}", answer.text);
    // Salt's shape: one `{minion: return}` entry per minion, in the order they returned.
    let entries = answer.json["return"].as_array().expect("a return list");
    let finished: Vec<(String, f64)> = entries
        .iter()
        .map(|entry| {
            let map = entry.as_object().expect("an entry per minion");
            assert_eq!(map.len(), 1, "{}", answer.text);
            let (id, time) = map.iter().next().unwrap();
            let time = time.as_str().and_then(|t| t.parse().ok());
            (
                id.clone(),
                time.unwrap_or_else(|| panic!("{}", answer.text)),
            )
        })
        .collect();
    let mut returned: Vec<&str> = finished.iter().map(|(id, _)| id.as_str()).collect();
    returned.sort_unstable();
    assert_eq!(returned, ids, "{}", answer.text);
    // The window slides: the third minion took the place of the first fast one to return and
    // finished while the slow one still slept, which returned last. A batch that waited for
    // the whole first pair would have started the third after the sleep.
    let (_, slow) = finished[2];
    for (id, time) in &finished[..2] {
        assert!(
            slow - time > 2.0,
            "{id} finished at {time}, the slow one at {slow}"
        );
    }
    assert!(took < Duration::from_secs(10), "{took:?}");
}
