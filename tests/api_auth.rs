//! salt-api's authentication against a real salt-api and master: `/login` and `/logout` as Salt
//! 3007.8 answers them (status, headers, JSON shape), the eauth backends, and the requests that
//! must be refused (no token, a wrong one, an expired one, one in the query when that is off, a
//! body over `max_request_body_size`).

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::support::{Lab, api_block, free_port};

/// A `curl -i` answer: the status, the headers (lowercased names) and the body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|err| panic!("{err}: {}", self.body))
    }
}

fn curl(port: u16, path: &str, args: &[&str]) -> Answer {
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "15"])
        .args(args)
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no answer: {text} {}", String::from_utf8_lossy(&out.stderr)));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn login(port: u16, fields: &[&str]) -> Answer {
    let mut args = Vec::new();
    for field in fields {
        args.extend(["-d", field]);
    }
    curl(port, "/login", &args)
}

/// A lab with salt-api on `external_auth` (`api_extra`: more lines of the API's block), master
/// and API started.
fn lab(external_auth: &str, api_extra: &str) -> (Lab, u16) {
    let port = free_port();
    let mut lab = Lab::with_config(
        &format!(
            "{}{api_extra}external_auth:\n{external_auth}",
            api_block(port)
        ),
        "",
    );
    lab.start_master();
    lab.start_api(port);
    (lab, port)
}

#[test]
fn api_login_answers_as_salts_and_logout_removes_the_token() {
    let users = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(users.path(), "ann:secret\n").unwrap();
    let (lab, port) = lab(
        &format!(
            "  auto:\n    saltdev:\n      - '@wheel'\n      - .*\n      - '@runner'\n    '*':\n      - test.ping\n  file:\n    ^filename: {}\n    ann:\n      - grains.*\n",
            users.path().display()
        ),
        "",
    );

    // GET /login: Salt's 200 with a WWW-Authenticate and a null status.
    let form = curl(port, "/login", &[]);
    assert_eq!(form.status, 200);
    assert_eq!(form.header("www-authenticate"), Some("Session"));
    assert_eq!(form.body, r#"{"status": null, "return": "Please log in"}"#);

    let answer = login(port, &["username=saltdev", "password=x", "eauth=auto"]);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let json = answer.json();
    let entry = &json["return"][0];
    let keys: Vec<&str> = entry
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let token = entry["token"].as_str().unwrap();
    assert_eq!(token.len(), 64, "a sha256 digest");
    assert_eq!(answer.header("x-auth-token"), Some(token));
    let cookie = answer.header("set-cookie").unwrap();
    assert!(
        cookie.starts_with(&format!("session_id={token}; expires="))
            && cookie.ends_with(" GMT; Max-Age=36000; Path=/; HttpOnly; SameSite=Strict"),
        "{cookie}"
    );
    let body_order = answer.body.find("\"token\"").unwrap()
        < answer.body.find("\"expire\"").unwrap()
        && answer.body.find("\"start\"").unwrap() < answer.body.find("\"user\"").unwrap();
    assert!(body_order, "Salt's key order: {}", answer.body);
    assert_eq!(keys.len(), 6, "{keys:?}");
    assert_eq!(entry["user"], "saltdev");
    assert_eq!(entry["eauth"], "auto");
    assert_eq!(
        entry["perms"].to_string(),
        r#"[".*","@runner","@wheel","test.ping"]"#
    );
    let (start, expire) = (
        entry["start"].as_f64().unwrap(),
        entry["expire"].as_f64().unwrap(),
    );
    assert!((expire - start - 43_200.0).abs() < 0.01, "{start} {expire}");
    // The token file: Salt's localfs msgpack, mode 0600.
    let file = lab.path().join("cache/master/tokens").join(token);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let bytes = std::fs::read(&file).unwrap();
    let data = rmpv::decode::read_value(&mut bytes.as_slice()).unwrap();
    assert_eq!(
        data.as_map()
            .unwrap()
            .iter()
            .map(|(k, _)| k.as_str().unwrap())
            .collect::<Vec<_>>(),
        ["start", "expire", "name", "eauth", "token"]
    );

    // A user with no entries of its own gets `*`'s; JSON and YAML bodies work too.
    let json_login = curl(
        port,
        "/login",
        &[
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"username": "fred", "password": "p", "eauth": "auto"}"#,
        ],
    );
    assert_eq!(
        json_login.json()["return"][0]["perms"].to_string(),
        r#"["test.ping"]"#
    );
    let yaml_login = curl(
        port,
        "/login",
        &[
            "-H",
            "Content-Type: application/x-yaml",
            "-d",
            "username: ann\npassword: secret\neauth: file\n",
        ],
    );
    assert_eq!(yaml_login.status, 200, "{}", yaml_login.body);
    assert_eq!(
        yaml_login.json()["return"][0]["perms"].to_string(),
        r#"["grains.*"]"#
    );

    // Refusals: a wrong password, an eauth not in external_auth, no credentials.
    for fields in [
        &["username=ann", "password=wrong", "eauth=file"][..],
        &["username=ann", "password=secret", "eauth=pam"],
        &["username=ann", "password=secret"],
    ] {
        let refused = login(port, fields);
        assert_eq!(refused.status, 401, "{fields:?}");
        assert_eq!(
            refused.body,
            r#"{"status": 401, "return": "Could not authenticate using provided credentials"}"#
        );
    }

    // Logout: Salt's answer, the cookie expired, the token gone for good.
    let out = curl(
        port,
        "/logout",
        &["-X", "POST", "-H", &format!("X-Auth-Token: {token}")],
    );
    assert_eq!(out.status, 200);
    assert_eq!(out.body, r#"{"return": "Your token has been cleared"}"#);
    let cookie = out.header("set-cookie").unwrap();
    assert!(
        cookie.starts_with("session_id=; expires=") && !cookie.contains("Max-Age"),
        "{cookie}"
    );
    assert!(!file.exists());
    let again = curl(
        port,
        "/logout",
        &["-X", "POST", "-b", &format!("session_id={token}")],
    );
    assert_eq!(again.status, 401);
}

#[test]
fn api_requests_without_a_valid_token_are_refused() {
    let (lab, port) = lab("  auto:\n    saltdev:\n      - .*\n", "");
    let logout =
        |args: &[&str]| curl(port, "/logout", &[&["-X", "POST"][..], args].concat()).status;
    assert_eq!(logout(&[]), 401, "no token");
    assert_eq!(
        logout(&["-H", "X-Auth-Token: 0123abcd"]),
        401,
        "a wrong token"
    );
    assert_eq!(logout(&["-H", "X-Auth-Token: ../../etc"]), 401, "a path");
    let expired = lab.mint_token("saltdev", "auto", -5.0);
    assert_eq!(
        logout(&["-H", &format!("X-Auth-Token: {expired}")]),
        401,
        "expired"
    );
    assert!(
        !lab.path()
            .join("cache/master/tokens")
            .join(&expired)
            .exists(),
        "an expired token is removed"
    );
    // token_in_query is off by default: a query token is not looked at.
    let token = lab.mint_token("saltdev", "auto", 60.0);
    let query = curl(port, &format!("/logout?token={token}"), &["-X", "POST"]);
    assert_eq!(query.status, 401);
    assert_eq!(
        query.body,
        r#"{"status": 401, "return": "No permission -- see authorization schemes"}"#
    );
    let cookie = format!("session_id={token}");
    assert_eq!(logout(&["-b", &cookie]), 200, "the cookie is");

    // A body over max_request_body_size is refused before it is read.
    let big = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(big.path(), "x".repeat(2 << 20)).unwrap();
    let data = format!("@{}", big.path().display());
    let answer = curl(
        port,
        "/login",
        &[
            "-H",
            "Content-Type: text/plain",
            "-H",
            "Expect:",
            "--data-binary",
            &data,
        ],
    );
    assert_eq!(answer.status, 413);
}

#[test]
fn api_query_tokens_are_taken_when_token_in_query_is_on() {
    let (lab, port) = lab(
        "  auto:\n    saltdev:\n      - .*\n",
        "  token_in_query: True\n",
    );
    let token = lab.mint_token("saltdev", "auto", 60.0);
    let answer = curl(port, &format!("/logout?token={token}"), &["-X", "POST"]);
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[test]
fn api_pam_logs_in_a_system_user() {
    if !nix::unistd::Uid::effective().is_root() {
        return eprintln!("pam login: SKIPPED (needs root to create a throwaway user)");
    }
    if !std::path::Path::new("/etc/pam.d/login").exists() {
        return eprintln!("pam login: SKIPPED (no /etc/pam.d/login)");
    }
    let user = format!("hlpam{}", std::process::id());
    let created = Command::new("useradd")
        .args(["-M", "-s", "/usr/sbin/nologin", "-G", "adm", &user])
        .status()
        .is_ok_and(|status| status.success());
    if !created {
        return eprintln!("pam login: SKIPPED (useradd failed)");
    }
    struct Remove(String);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = Command::new("userdel").arg(&self.0).status();
        }
    }
    let _remove = Remove(user.clone());
    let mut chpasswd = Command::new("chpasswd")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let stdin = chpasswd.stdin.as_mut().unwrap();
    writeln!(stdin, "{user}:Pam-pass-1").unwrap();
    assert!(chpasswd.wait().unwrap().success());

    let (_lab, port) = lab("  pam:\n    adm%:\n      - test.*\n", "");
    let answer = login(
        port,
        &[
            &format!("username={user}"),
            "password=Pam-pass-1",
            "eauth=pam",
        ],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let entry = &answer.json()["return"][0];
    assert_eq!(entry["user"], user.as_str());
    assert_eq!(
        entry["perms"].to_string(),
        r#"["test.*"]"#,
        "from the adm% group"
    );
    let wrong = login(
        port,
        &[&format!("username={user}"), "password=nope", "eauth=pam"],
    );
    assert_eq!(wrong.status, 401);
}

/// A master, a minion and salt-api with `master_extra` and an `auto` eauth user `carol` whose
/// ACL is `acl` (YAML lines under her name); the lab and a `POST /` of a JSON body as carol.
fn carol_api(master_extra: &str, acl: &str) -> (Lab, impl Fn(&str) -> Answer) {
    let port = free_port();
    let mut lab = Lab::with_config(
        &format!(
            "{}{master_extra}external_auth:\n  auto:\n    carol:\n{acl}",
            api_block(port)
        ),
        "",
    );
    lab.start_master();
    lab.start_minion();
    lab.start_api(port);
    let token = lab.mint_token("carol", "auto", 60.0);
    let post = move |body: &str| {
        curl(
            port,
            "/",
            &[
                "-H",
                &format!("X-Auth-Token: {token}"),
                "-H",
                "Content-Type: application/json",
                "-d",
                body,
            ],
        )
    };
    (lab, post)
}

#[test]
fn api_acl_target_entries_and_runner_modules_are_salts() {
    let (_lab, post) = carol_api(
        "",
        "      - minion1:\n          - test.ping\n      - other*:\n          - test.echo\n      - '@jobs'\n",
    );
    let wait = crate::support::wait_until(std::time::Duration::from_secs(10), || {
        post(r#"{"client": "local", "tgt": "*", "fun": "test.ping"}"#).body
            == r#"{"return": [{"minion1": true}]}"#
    });
    assert!(
        wait,
        "every targeted minion is one minion1 matches: allowed"
    );
    // test.echo is allowed on other* only, and `*` targets minion1.
    let echo = post(r#"{"client": "local", "tgt": "*", "fun": "test.echo", "arg": "x"}"#);
    assert_eq!(echo.status, 401, "{}", echo.body);
    // `@jobs` opens the jobs runner, and no other.
    let jobs = post(r#"{"client": "runner", "fun": "jobs.list_jobs"}"#);
    assert_eq!(jobs.status, 200, "{}", jobs.body);
    let manage = post(r#"{"client": "runner", "fun": "manage.up"}"#);
    assert_eq!(manage.status, 401, "{}", manage.body);
}

/// A websocket handshake on `/ws` with `headers`: the status line answered.
fn ws_status(port: u16, headers: &str) -> String {
    use std::io::{BufRead, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{headers}\r\n"
    )
    .unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stream)
        .read_line(&mut line)
        .unwrap();
    line.trim().to_owned()
}

#[test]
fn api_cors_preflights_and_cross_site_cookie_websockets() {
    let (lab, port) = lab("  auto:\n    saltdev:\n      - .*\n", "");
    // A preflight on any path: Salt's cors_tool answer.
    for path in ["/run", "/nowhere"] {
        let answer = curl(
            port,
            path,
            &[
                "-X",
                "OPTIONS",
                "-H",
                "Origin: http://elsewhere.example",
                "-H",
                "Access-Control-Request-Method: POST",
            ],
        );
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        assert_eq!(
            answer.header("access-control-allow-methods"),
            Some("GET, POST")
        );
        assert_eq!(
            answer.header("access-control-allow-headers"),
            Some("Content-Type, X-Auth-Token, X-Requested-With")
        );
        assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
        assert_eq!(answer.body, "");
    }
    let plain = curl(port, "/", &["-X", "OPTIONS"]);
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("access-control-allow-methods"), None);

    // A cookie-authenticated /ws from another site's page is refused; from the API's own
    // page, without an Origin, or with a header token it opens.
    let token = lab.mint_token("saltdev", "auto", 600.0);
    let cookie = format!("Cookie: session_id={token}\r\n");
    let header = format!("X-Auth-Token: {token}\r\n");
    let evil = "Origin: http://elsewhere.example\r\n";
    let own = format!("Origin: http://127.0.0.1:{port}\r\n");
    assert!(ws_status(port, &format!("{cookie}{evil}")).starts_with("HTTP/1.1 403"));
    for headers in [
        format!("{cookie}{own}"),
        cookie.clone(),
        format!("{header}{evil}"),
    ] {
        let status = ws_status(port, &headers);
        assert!(status.starts_with("HTTP/1.1 101"), "{headers}: {status}");
    }
}

#[test]
fn api_login_ignores_a_token_expire_that_is_not_a_number_of_seconds() {
    let (_lab, port) = lab(
        "  auto:\n    saltdev:\n      - .*\n",
        "token_expire_user_override: True\n",
    );
    let lifetime = |extra: &[&str]| {
        let mut fields = vec!["username=saltdev", "password=x", "eauth=auto"];
        fields.extend(extra);
        let answer = login(port, &fields);
        assert_eq!(answer.status, 200, "{extra:?}: {}", answer.body);
        let json = answer.json();
        let entry = &json["return"][0];
        match (entry["expire"].as_f64(), entry["start"].as_f64()) {
            (Some(expire), Some(start)) => Some((expire - start).round()),
            _ => None,
        }
    };
    assert_eq!(lifetime(&["token_expire=120"]), Some(120.0));
    let default = lifetime(&[]);
    assert!(
        default.is_some_and(|seconds| seconds > 120.0),
        "{default:?}"
    );
    for asked in ["token_expire=nan", "token_expire=inf", "token_expire=-5"] {
        assert_eq!(lifetime(&[asked]), default, "{asked}");
    }
}

#[test]
fn api_acl_refuses_targets_that_reach_other_minions_through_groups_or_unknown_facts() {
    let (lab, post) = carol_api(
        "nodegroups:\n  pair: L@m2,m3\n  solo: minion1\n",
        "      - minion1:\n          - test.ping\n",
    );
    let solo = r#"{"client": "local", "tgt": "solo", "tgt_type": "nodegroup", "fun": "test.ping"}"#;
    let wait = crate::support::wait_until(std::time::Duration::from_secs(10), || {
        post(solo).body == r#"{"return": [{"minion1": true}]}"#
    });
    assert!(wait, "a group that is only minion1 is allowed");
    // Two more accepted minions (never connected) that carol may not reach.
    let accepted = lab.path().join("pki/master/minions");
    for id in ["m2", "m3"] {
        std::fs::copy(accepted.join("minion1"), accepted.join(id)).unwrap();
    }
    for (tgt, tgt_type) in [
        ("pair", "nodegroup"),
        ("N@pair or minion1", "compound"),
        ("not I@role:nonexistent", "compound"),
        ("not J@role:^x", "compound"),
        ("minion1 or not G@os:nothing", "compound"),
    ] {
        let body = format!(
            r#"{{"client": "local", "tgt": "{tgt}", "tgt_type": "{tgt_type}", "fun": "test.ping"}}"#
        );
        let answer = post(&body);
        assert_eq!(answer.status, 401, "{tgt} ({tgt_type}): {}", answer.body);
    }
    // A target no one could use is a bad request, whatever the ACL.
    for (tgt, tgt_type) in [("N@nosuchgroup", "compound"), ("minion1", "Glob")] {
        let body = format!(
            r#"{{"client": "local", "tgt": "{tgt}", "tgt_type": "{tgt_type}", "fun": "test.ping"}}"#
        );
        let answer = post(&body);
        assert_eq!(answer.status, 400, "{tgt} ({tgt_type}): {}", answer.body);
    }
    let answer = post(solo);
    assert_eq!(answer.body, r#"{"return": [{"minion1": true}]}"#);
}

/// An argument an entry pins is checked as the function gets it: a keyword given twice (in
/// `arg` and `kwarg`, or in `kwarg` and as a key of the chunk) is checked with the value that
/// wins, the last. And an entry may name a node group.
#[test]
fn api_acl_checks_pinned_arguments_as_the_function_gets_them() {
    let (_lab, post) = carol_api(
        "nodegroups:\n  solo: minion1\n",
        "      - N@solo:\n          - test.ping\n      - minion1:\n          - test.arg:\n              kwargs:\n                x: '^ok$'\n      - '@wheel':\n          - key.finger:\n              kwargs:\n                match: '^minion1$'\n",
    );
    let ping = r#"{"client": "local", "tgt": "minion1", "fun": "test.ping"}"#;
    let wait = crate::support::wait_until(std::time::Duration::from_secs(10), || {
        post(ping).body == r#"{"return": [{"minion1": true}]}"#
    });
    assert!(wait, "an N@ entry allows the minions of its group");
    // kwarg comes last, so its x is the one test.arg gets.
    let overridden = post(
        r#"{"client": "local", "tgt": "minion1", "fun": "test.arg",
            "arg": [{"__kwarg__": true, "x": "evil"}], "kwarg": {"x": "ok"}}"#,
    );
    assert_eq!(overridden.status, 200, "{}", overridden.body);
    assert!(
        overridden
            .body
            .contains(r#""kwargs": {"x": "ok", "__pub_fun""#),
        "{}",
        overridden.body
    );
    for body in [
        // The last of two keyword maps in arg wins: not the pinned value.
        r#"{"client": "local", "tgt": "minion1", "fun": "test.arg",
            "arg": [{"__kwarg__": true, "x": "ok"}, {"__kwarg__": true, "x": "evil"}]}"#,
        // A `key=value` string is a keyword too, as Salt's minion reads it.
        r#"{"client": "local", "tgt": "minion1", "fun": "test.arg",
            "arg": [{"__kwarg__": true, "x": "ok"}, "x=evil"]}"#,
        // A chunk key naming a parameter comes after kwarg.
        r#"{"client": "wheel", "fun": "key.finger", "kwarg": {"match": "minion1"}, "match": "*"}"#,
    ] {
        let answer = post(body);
        assert_eq!(answer.status, 401, "{body}: {}", answer.body);
    }
    let strings =
        post(r#"{"client": "local", "tgt": "minion1", "fun": "test.arg", "arg": ["a", "x=ok"]}"#);
    assert!(
        strings
            .body
            .contains(r#"{"args": ["a"], "kwargs": {"x": "ok", "__pub_fun""#),
        "{}",
        strings.body
    );
    let finger = post(r#"{"client": "wheel", "fun": "key.finger", "kwarg": {"match": "minion1"}}"#);
    assert_eq!(finger.status, 200, "{}", finger.body);
}
