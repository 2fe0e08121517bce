//! The `salt-api` daemon itself: TLS with HTTP/2 and HTTP/1.1, a configuration it cannot use,
//! and stopping with streams open.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{Lab, api_block, free_port, stderr};

/// `curl` over TLS (the test's self-signed certificate accepted): the HTTP version it spoke and
/// the status.
fn curl(args: &[&str]) -> String {
    let output = Command::new("curl")
        .args([
            "-sk",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
        ])
        .args(args)
        .output()
        .expect("curl");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A self-signed certificate for localhost (valid until 2126) and its key, copied into `dir`.
/// Made once with `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes
/// -days 36500 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1`.
fn self_signed(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (crt, key) = (dir.join("api.crt"), dir.join("api.key"));
    std::fs::write(&crt, include_str!("tls/localhost.crt")).unwrap();
    std::fs::write(&key, include_str!("tls/localhost.key")).unwrap();
    (crt, key)
}

#[test]
fn api_serves_tls_with_http2_and_http1() {
    let port = free_port();
    let files = tempfile::tempdir().unwrap();
    let (crt, key) = self_signed(files.path());
    let block = format!(
        "rest_cherrypy:\n  host: 127.0.0.1\n  port: {port}\n  ssl_crt: {}\n  ssl_key: {}\n\
         external_auth:\n  auto:\n    alice: ['.*']\n",
        crt.display(),
        key.display()
    );
    let mut lab = Lab::with_config(&block, "");
    lab.start_master();
    lab.start_api(port);
    let url = format!("https://127.0.0.1:{port}/login");
    let login = [
        "-d",
        "username=alice",
        "-d",
        "password=x",
        "-d",
        "eauth=auto",
    ];
    let over = |version: &str| {
        let mut args = vec![version, url.as_str()];
        args.extend(login);
        curl(&args)
    };
    assert_eq!(over("--http2"), "2 200");
    assert_eq!(over("--http1.1"), "1.1 200");
    // Plain HTTP to the TLS port is not served.
    let plain = curl(&[&format!("http://127.0.0.1:{port}/")]);
    assert!(!plain.ends_with("200"), "{plain}");
}

#[test]
fn a_configuration_salt_api_cannot_use_stops_it_naming_the_option() {
    let port = free_port();
    for (block, named) in [
        (
            format!("rest_cherrypy:\n  port: {port}\n"),
            "rest_cherrypy.ssl_crt",
        ),
        (
            format!(
                "rest_cherrypy:\n  port: {port}\n  ssl_crt: /nonexistent.crt\n  ssl_key: /nonexistent.key\n"
            ),
            "/nonexistent.crt",
        ),
        (
            "rest_cherrypy:\n  port: 99999\n  disable_ssl: True\n".to_owned(),
            "rest_cherrypy.port",
        ),
        (
            "rest_cherrypy:\n  host: somewhere\n  disable_ssl: True\n".to_owned(),
            "rest_cherrypy.host",
        ),
        // Webhooks where the API's own routes are: two routes for one path.
        (
            format!("rest_cherrypy:\n  port: {port}\n  disable_ssl: True\n  webhook_url: /\n"),
            "rest_cherrypy.webhook_url",
        ),
        (
            format!("rest_cherrypy:\n  port: {port}\n  disable_ssl: True\n  webhook_url: /login\n"),
            "rest_cherrypy.webhook_url",
        ),
        (
            format!("rest_cherrypy:\n  port: {port}\n  disable_ssl: True\n  webhook_url: /keys/\n"),
            "rest_cherrypy.webhook_url",
        ),
    ] {
        let lab = Lab::with_config(&block, "");
        let output = lab.run("salt-api", &[]);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{block}: {message}");
        assert!(message.contains(named), "{block}: {message}");
        assert_eq!(message.trim().lines().count(), 1, "{message}");
    }
    // A chain file that is not there.
    let files = tempfile::tempdir().unwrap();
    let (crt, key) = self_signed(files.path());
    let block = format!(
        "rest_cherrypy:\n  port: {port}\n  ssl_crt: {}\n  ssl_key: {}\n  ssl_chain: /nonexistent.chain\n",
        crt.display(),
        key.display()
    );
    let output = Lab::with_config(&block, "").run("salt-api", &[]);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(message.contains("/nonexistent.chain"), "{message}");

    // A port already in use.
    let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    let lab = Lab::with_config(&api_block(port), "");
    let output = lab.run("salt-api", &[]);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{message}"
    );
    assert_eq!(message.matches("os error").count(), 1, "{message}");
}

#[test]
fn salt_api_stops_promptly_on_sigterm_with_event_streams_open() {
    let port = free_port();
    let mut lab = Lab::with_config(&api_block(port), "");
    lab.start_master();
    lab.start_api(port);
    let token = lab.mint_token("alice", "auto", 600.0);
    let streams: Vec<std::process::Child> = (0..3)
        .map(|_| {
            Command::new("curl")
                .args(["-sN", "-H", &format!("X-Auth-Token: {token}")])
                .arg(format!("http://127.0.0.1:{port}/events"))
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let api = lab.take_daemon_named("salt-api");
    let started = Instant::now();
    let (status, log) = api.stop();
    assert!(status.success(), "{status:?}: {log}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    for mut stream in streams {
        let _ = stream.kill();
        let _ = stream.wait();
    }
}
