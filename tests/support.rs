//! The shared harness: a lab directory with master and minion configs, daemons that stop when
//! dropped (even when a test fails), the binaries, and raw socket clients.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use halite::event::{Event, Value};
use halite::wire::{self, FrameCodec, Framing};
use tokio_util::codec::Decoder;

/// The path of one of our binaries.
pub fn bin(name: &str) -> PathBuf {
    PathBuf::from(match name {
        "salt-master" => env!("CARGO_BIN_EXE_salt-master"),
        "salt-minion" => env!("CARGO_BIN_EXE_salt-minion"),
        "salt-call" => env!("CARGO_BIN_EXE_salt-call"),
        "salt-run" => env!("CARGO_BIN_EXE_salt-run"),
        "salt" => env!("CARGO_BIN_EXE_salt"),
        "salt-key" => env!("CARGO_BIN_EXE_salt-key"),
        "salt-api" => env!("CARGO_BIN_EXE_salt-api"),
        other => panic!("no binary {other}"),
    })
}

/// `program` run as `nobody` (uid and gid 65534, no other groups): another local user, for
/// attacks and for running without root's privileges. Needs root.
pub fn as_nobody(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(program);
    command
}

/// Whether the tests run as root, and so can act as other users.
pub fn running_as_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// Polls `ready` every 10 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    ready()
}

/// A directory with `etc/master` and `etc/minion` configs whose sockets live inside it.
pub struct Lab {
    dir: tempfile::TempDir,
    daemons: Vec<Daemon>,
}

/// Id of the lab's minion.
/// The seven commands, in the order `halite --help` lists them.
pub const COMMANDS: [&str; 7] = [
    "salt-master",
    "salt-minion",
    "salt-api",
    "salt",
    "salt-call",
    "salt-run",
    "salt-key",
];

pub const MINION_ID: &str = "minion1";
/// `sha256("minion1")[:10]`, naming the minion's sockets.
pub const MINION_HASH: &str = "1e9498c860";

impl Lab {
    /// A lab with default configs.
    pub fn new() -> Self {
        Self::with_config("", "")
    }

    /// A lab whose master and minion configs get extra YAML lines.
    pub fn with_config(master_extra: &str, minion_extra: &str) -> Self {
        // Unix socket paths are limited to 108 bytes: keep the lab near the root.
        let dir = tempfile::Builder::new()
            .prefix("hl")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let lab = Self {
            dir,
            daemons: Vec::new(),
        };
        std::fs::create_dir_all(lab.etc()).unwrap();
        let root = lab.path().display().to_string();
        let port = free_port();
        let auto_accept = if master_extra.contains("auto_accept:") {
            ""
        } else {
            "auto_accept: True\n"
        };
        std::fs::write(
            lab.etc().join("master"),
            format!("sock_dir: {root}/run/master\npki_dir: {root}/pki/master\ncachedir: {root}/cache/master\nret_port: {port}\ninterface: 127.0.0.1\nlog_file: {root}/log/master\nlog_level_logfile: debug\n{auto_accept}{master_extra}"),
        )
        .unwrap();
        std::fs::write(
            lab.etc().join("minion"),
            format!(
                "id: {MINION_ID}\nsock_dir: {root}/run/minion\npki_dir: {root}/pki/minion\ncachedir: {root}/cache/minion\nmaster: 127.0.0.1\nmaster_port: {port}\nacceptance_wait_time: 0.2\nrecon_default: 100\nrecon_max: 500\nlog_file: {root}/log/minion\nlog_level_logfile: debug\n{minion_extra}"
            ),
        )
        .unwrap();
        lab
    }

    /// The lab's root.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The config directory.
    pub fn etc(&self) -> PathBuf {
        self.path().join("etc")
    }

    /// The master's socket directory.
    pub fn master_sock_dir(&self) -> PathBuf {
        self.path().join("run/master")
    }

    /// The master's publish socket.
    pub fn master_pub(&self) -> PathBuf {
        self.master_sock_dir().join("master_event_pub.ipc")
    }

    /// The master's pull socket.
    pub fn master_pull(&self) -> PathBuf {
        self.master_sock_dir().join("master_event_pull.ipc")
    }

    /// The minion's publish socket.
    pub fn minion_pub(&self) -> PathBuf {
        self.path()
            .join(format!("run/minion/minion_event_{MINION_HASH}_pub.ipc"))
    }

    /// The minion's pull socket.
    pub fn minion_pull(&self) -> PathBuf {
        self.path()
            .join(format!("run/minion/minion_event_{MINION_HASH}_pull.ipc"))
    }

    /// Starts `salt-master` and waits for its sockets.
    pub fn start_master(&mut self) -> &mut Daemon {
        let daemon = self.spawn_daemon("salt-master", &[]);
        let (publish, pull) = (self.master_pub(), self.master_pull());
        assert!(
            wait_until(Duration::from_secs(10), || connectable(&publish)
                && connectable(&pull)),
            "salt-master did not bind its sockets; log:\n{}",
            self.log("master")
        );
        self.daemons.push(daemon);
        self.daemons.last_mut().unwrap()
    }

    /// Starts `salt-minion` (co-located with the lab's master) and waits for its sockets.
    pub fn start_minion(&mut self) -> &mut Daemon {
        let daemon = self.spawn_daemon("salt-minion", &[]);
        let (publish, pull) = (self.minion_pub(), self.minion_pull());
        assert!(
            wait_until(Duration::from_secs(10), || connectable(&publish)
                && connectable(&pull)),
            "salt-minion did not bind its sockets; log:\n{}",
            self.log("minion")
        );
        self.daemons.push(daemon);
        self.daemons.last_mut().unwrap()
    }

    /// Spawns a daemon of ours on the lab's config without waiting for it.
    pub fn spawn_daemon(&self, name: &str, extra: &[&str]) -> Daemon {
        self.spawn_daemon_with_env(name, extra, &[])
    }

    /// [`Lab::spawn_daemon`] with extra environment variables (`NOTIFY_SOCKET`).
    pub fn spawn_daemon_with_env(
        &self,
        name: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let child = Command::new(bin(name))
            .arg("-c")
            .arg(self.etc())
            .args(["-l", "info"])
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {name}: {err}"));
        Daemon {
            child: Some(child),
            name: name.to_owned(),
        }
    }

    /// Starts `salt-api` on the lab's master config, which must hold [`api_block`]'s
    /// `rest_cherrypy` block for `port`, and waits until it answers; its log is `log("api")`.
    pub fn start_api(&mut self, port: u16) -> &mut Daemon {
        let log = self.path().join("log").join("api");
        let daemon = self.spawn_daemon("salt-api", &["--log-file", log.to_str().unwrap()]);
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        assert!(
            wait_until(Duration::from_secs(10), || std::net::TcpStream::connect(
                address
            )
            .is_ok()),
            "salt-api did not listen on {address}; log:\n{}",
            self.log("api")
        );
        self.daemons.push(daemon);
        self.daemons.last_mut().unwrap()
    }

    /// A token for `user` as Salt's master mints one: a msgpack file in the master's
    /// `token_dir` (`<cachedir>/tokens`), valid for `seconds`.
    pub fn mint_token(&self, user: &str, eauth: &str, seconds: f64) -> String {
        let dir = self.path().join("cache/master/tokens");
        std::fs::create_dir_all(&dir).unwrap();
        let token: String = (0..40)
            .map(|_| char::from(b"0123456789abcdef"[fastrand_index(16)]))
            .collect();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let data = Value::Map(vec![
            (Value::from("start"), Value::F64(now)),
            (Value::from("expire"), Value::F64(now + seconds)),
            (Value::from("name"), Value::from(user)),
            (Value::from("eauth"), Value::from(eauth)),
            (Value::from("token"), Value::from(token.as_str())),
        ]);
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &data).unwrap();
        std::fs::write(dir.join(&token), bytes).unwrap();
        token
    }

    /// Takes the most recently started daemon out of the lab (to stop it by hand).
    pub fn take_daemon(&mut self) -> Daemon {
        self.daemons.pop().expect("a daemon")
    }

    /// Takes the daemon `name` (e.g. `salt-master`) started last out of the lab.
    pub fn take_daemon_named(&mut self, name: &str) -> Daemon {
        let at = self
            .daemons
            .iter()
            .rposition(|daemon| daemon.name == name)
            .unwrap_or_else(|| panic!("no {name} in the lab"));
        self.daemons.remove(at)
    }

    /// A daemon's log file so far.
    pub fn log(&self, role: &str) -> String {
        std::fs::read_to_string(self.path().join("log").join(role)).unwrap_or_default()
    }

    /// One of our binaries with `-c <lab>/etc`.
    pub fn cmd(&self, name: &str) -> Command {
        let mut command = Command::new(bin(name));
        command.arg("-c").arg(self.etc()).stdin(Stdio::null());
        command
    }

    /// Appends YAML to the lab's `master` or `minion` config.
    pub fn append_config(&self, role: &str, extra: &str) {
        let file = self.etc().join(role);
        let mut config = std::fs::read_to_string(&file).unwrap();
        config.push_str(extra);
        std::fs::write(file, config).unwrap();
    }

    /// Runs one of our binaries with `-c <lab>/etc` and the given arguments.
    pub fn run(&self, name: &str, args: &[&str]) -> Output {
        self.cmd(name).args(args).output().expect("run binary")
    }
}

impl Default for Lab {
    fn default() -> Self {
        Self::new()
    }
}

/// A `rest_cherrypy` block serving plain HTTP on loopback `port`, for [`Lab::with_config`].
pub fn api_block(port: u16) -> String {
    format!("rest_cherrypy:\n  host: 127.0.0.1\n  port: {port}\n  disable_ssl: True\n")
}

/// A random index below `n`, from the clock and a counter (tokens need only differ).
fn fastrand_index(n: usize) -> usize {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    (hasher.finish() % n as u64) as usize
}

/// A loopback port for a daemon to bind: free now, and this test's alone until its process
/// exits, so that nothing takes it before the daemon binds it, nor while a daemon restarts.
///
/// Two things could take it meanwhile. The kernel hands out ports of its ephemeral range
/// (`ip_local_port_range`) as connections' source ports and for port 0: ports are drawn below
/// that range. The other tests, running in parallel: each port is reserved by an exclusive lock
/// on a file named after it in a directory all tests share, held until the process exits
/// (nextest runs each test in its own), and a port whose file is locked is never handed out.
/// Binding port 0 and reading back where would not do: minions, clients and real Salt read
/// their master's ports from config files written before it starts, `ipc_mode: tcp` bus ports
/// are not reported, and a restarted master must get its port back.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    static RESERVED: std::sync::Mutex<Vec<nix::fcntl::Flock<std::fs::File>>> =
        std::sync::Mutex::new(Vec::new());
    let below = ephemeral_ports_start();
    let lowest = below.saturating_sub(12_000).max(1024);
    assert!(
        below > lowest,
        "no ports below the ephemeral range ({below} and up) to draw from"
    );
    let locks = Path::new(PORT_LOCKS);
    if std::fs::create_dir(locks).is_ok() {
        // Shared by every user's tests, as /tmp is.
        let shared = std::os::unix::fs::PermissionsExt::from_mode(0o1777);
        let _ = std::fs::set_permissions(locks, shared);
    }
    for _ in 0..10_000 {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        let port = lowest + (hasher.finish() % u64::from(below - lowest)) as u16;
        let Some(lock) = reserve(&locks.join(port.to_string())) else {
            continue;
        };
        // Something outside the tests may hold it.
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            RESERVED.lock().unwrap().push(lock);
            return port;
        }
    }
    panic!("no free loopback port between {lowest} and {below}; locks in {PORT_LOCKS}");
}

/// Where the tests' port locks are: one place for every test process, whatever its `TMPDIR`.
const PORT_LOCKS: &str = "/tmp/halite-test-ports";

/// The first port of the kernel's ephemeral range.
fn ephemeral_ports_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
}

/// An exclusive lock on `path`, unless another process holds one.
fn reserve(path: &Path) -> Option<nix::fcntl::Flock<std::fs::File>> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o666)
        .open(path)
        // Another user's file: a lock needs only reading.
        .or_else(|_| std::fs::File::open(path))
        .ok()?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).ok()
}

#[test]
fn free_ports_are_distinct_below_the_ephemeral_range_and_stay_reserved() {
    let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
    let distinct: std::collections::BTreeSet<_> = ports.iter().collect();
    assert_eq!(distinct.len(), ports.len(), "{ports:?}");
    let locks = Path::new(PORT_LOCKS);
    for port in ports {
        assert!(port < ephemeral_ports_start());
        // A lock taken through another open file conflicts as another process's would.
        assert!(
            reserve(&locks.join(port.to_string())).is_none(),
            "{port} is reserved"
        );
    }
}

/// Whether something accepts connections on a Unix socket.
pub fn connectable(path: &Path) -> bool {
    UnixStream::connect(path).is_ok()
}

/// A running daemon: SIGTERM on drop, SIGKILL if it has not exited within five seconds.
pub struct Daemon {
    child: Option<Child>,
    name: String,
}

impl Daemon {
    /// A started process, stopped when dropped.
    pub fn started(child: Child, name: &str) -> Self {
        Self {
            child: Some(child),
            name: name.to_owned(),
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends a signal.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid() as i32), signal).unwrap();
    }

    /// The process, for tests that wait on it themselves.
    pub fn into_child(mut self) -> Child {
        self.child.take().unwrap()
    }

    /// Waits for it to exit by itself (killing it after `timeout`) and returns its status.
    pub fn wait_exit(mut self, timeout: Duration) -> std::process::ExitStatus {
        wait_output(self.child.take().unwrap(), timeout).status
    }

    /// Kills it (SIGKILL) and reaps it.
    pub fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Stops it with SIGTERM and returns its exit status and stderr.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        let child = self.child.take().unwrap();
        let output = wait_output(child, Duration::from_secs(10));
        (
            output.status,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            wait_output(child, Duration::from_secs(5));
        }
    }
}

/// Runs the Python script `tests/<script>` with `python`, `input` on its stdin; its output,
/// once it has succeeded (a failure fails the test with its stderr).
pub fn python_script(python: &Path, script: &str, input: &[u8]) -> Output {
    let mut child = Command::new(python)
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests")
                .join(script),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", python.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input)
        .expect("the script reads its input");
    let output = child.wait_with_output().expect("the script's output");
    assert!(
        output.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Waits for a child to exit, killing it after `timeout`, and collects its output.
pub fn wait_output(mut child: Child, timeout: Duration) -> Output {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
    }
    child.wait_with_output().expect("child output")
}

/// Encodes one event as a complete frame.
pub fn frame(tag: &str, data: &Value, framing: Framing) -> Vec<u8> {
    let mut body = Vec::new();
    wire::encode_body(tag, data, &mut body);
    let mut out = Vec::new();
    wire::encode_frame(&body, framing, &mut out);
    out
}

/// A map value from string keys.
pub fn map(entries: &[(&str, Value)]) -> Value {
    Value::Map(
        entries
            .iter()
            .map(|(k, v)| (Value::from(*k), v.clone()))
            .collect(),
    )
}

/// The keys of a map value, in order, as strings.
pub fn keys(value: &Value) -> Vec<String> {
    value
        .as_map()
        .expect("a map")
        .iter()
        .map(|(k, _)| k.as_str().expect("a string key").to_owned())
        .collect()
}

/// A raw writer to a pull socket.
pub struct RawSender(pub UnixStream);

impl RawSender {
    /// Connects.
    pub fn connect(path: &Path) -> Self {
        Self(
            UnixStream::connect(path)
                .unwrap_or_else(|err| panic!("connect {}: {err}", path.display())),
        )
    }

    /// Writes bytes as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).unwrap();
        self.0.flush().unwrap();
    }

    /// Writes one event frame.
    pub fn fire(&mut self, tag: &str, data: &Value, framing: Framing) {
        self.send(&frame(tag, data, framing));
    }

    /// Whether the daemon has closed this connection (reads EOF or an error soon).
    pub fn closed_by_peer(&mut self) -> bool {
        self.0
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        let mut byte = [0u8; 1];
        matches!(self.0.read(&mut byte), Ok(0) | Err(_))
    }
}

/// A raw subscriber of a publish socket, decoding frames with the library's codec.
pub struct RawSubscriber {
    stream: UnixStream,
    codec: FrameCodec,
    buffer: BytesMut,
    /// Every byte received, for byte-level assertions.
    pub raw: Vec<u8>,
    eof: bool,
}

impl RawSubscriber {
    /// Connects and gives the daemon a moment to register the subscriber.
    pub fn connect(path: &Path) -> Self {
        let stream = UnixStream::connect(path)
            .unwrap_or_else(|err| panic!("connect {}: {err}", path.display()));
        std::thread::sleep(Duration::from_millis(100));
        Self::from_stream(stream)
    }

    /// Wraps a connection made earlier (for a subscriber that did not read until now).
    pub fn from_stream(stream: UnixStream) -> Self {
        Self {
            stream,
            codec: FrameCodec::new(1 << 26),
            buffer: BytesMut::new(),
            raw: Vec::new(),
            eof: false,
        }
    }

    /// Whether the daemon closed the connection.
    pub fn closed(&self) -> bool {
        self.eof
    }

    /// The next event, or `None` after `timeout` without one.
    pub fn next_event(&mut self, timeout: Duration) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(frame) = self.codec.decode(&mut self.buffer).expect("valid frames") {
                let frame = frame.expect("event frame");
                return Some(wire::decode_body(&frame.body()).expect("decodable body"));
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.eof = true;
                    return None;
                }
                Ok(n) => {
                    self.raw.extend_from_slice(&chunk[..n]);
                    self.buffer.extend_from_slice(&chunk[..n]);
                }
                Err(_) => return None,
            }
        }
    }

    /// The next event whose tag is `tag`, skipping others.
    pub fn expect_tag(&mut self, tag: &str) -> Event {
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.next_event(left) {
                Some(event) if event.tag == tag => return event,
                Some(_) => continue,
                None => break,
            }
        }
        panic!("no event {tag} arrived");
    }
}

/// Publishes `count` jobs to the minion, at most `WINDOW` waiting for their returns at once (the
/// minion's queue is bounded), and waits for every return on the master's bus; `midway` runs
/// once half of them returned.
pub fn returns(lab: &Lab, bus: &mut RawSubscriber, count: usize, mut midway: impl FnMut()) {
    const WINDOW: usize = 200;
    let config =
        halite::config::Config::load(halite::config::Role::Master, Some(&lab.etc())).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = halite::client::local::LocalClient::new(&config).unwrap();
    let mut returned = 0;
    let mut published = 0;
    let mut halfway = false;
    while returned < count {
        while published < count && published - returned < WINDOW {
            let request = halite::proto::PublishRequest {
                tgt: Value::from(MINION_ID),
                tgt_type: "glob".into(),
                fun: "test.echo".into(),
                arg: Value::Array(vec![Value::from(format!("return {published}"))]),
                ret: String::new(),
                user: "root".into(),
                jid: None,
                ret_config: None,
                ret_kwargs: None,
            };
            let reply = runtime.block_on(client.publish(&request)).unwrap();
            assert_eq!(reply.minions, [MINION_ID]);
            published += 1;
        }
        let event = bus
            .next_event(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("{returned} of {count} returns came"));
        if event.tag.starts_with("salt/job/") && event.tag.contains("/ret/") {
            returned += 1;
        }
        if !halfway && returned >= count / 2 {
            halfway = true;
            midway();
        }
    }
}

/// A running `state.event` watcher whose stdout lines are collected as they arrive.
pub struct Watcher {
    child: Option<Child>,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Watcher {
    /// Starts `command` (a `state.event` call) with stdout and stderr captured.
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn watcher");
        let stdout = child.stdout.take().unwrap();
        let stderr_pipe = child.stderr.take().unwrap();
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let collected = stderr.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let mut reader = std::io::BufReader::new(stderr_pipe);
            use std::io::BufRead;
            while reader.read_line(&mut text).unwrap_or(0) > 0 {
                collected.lock().unwrap().push_str(&text);
                text.clear();
            }
        });
        Self {
            child: Some(child),
            lines,
            stderr,
        }
    }

    /// The next stdout line, or `None` after `timeout`.
    pub fn line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// What the watcher wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Fires `sync/<n>` events on `pull` until the watcher prints one, proving it is attached,
    /// then drops any further sync lines already printed.
    pub fn sync(&self, pull: &Path) {
        self.sync_on(pull, "sync");
    }

    /// As [`Watcher::sync`], with events tagged `<prefix>/<n>`.
    pub fn sync_on(&self, pull: &Path, prefix: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut n = 0u32;
        while Instant::now() < deadline {
            n += 1;
            if let Ok(mut sender) = UnixStream::connect(pull) {
                let _ =
                    sender.write_all(&frame(&format!("{prefix}/{n}"), &map(&[]), Framing::Bare));
            }
            // Anything else printed meanwhile (a watcher may see its own runner start event, as
            // Salt's does) is not what the test is about.
            if self
                .line(Duration::from_millis(100))
                .is_some_and(|line| line.contains(prefix))
            {
                while self.line(Duration::from_millis(300)).is_some() {}
                return;
            }
        }
        panic!("the watcher never attached; stderr:\n{}", self.stderr());
    }

    /// Sends a signal to the watcher.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = self.child.as_ref().unwrap().id() as i32;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).unwrap();
    }

    /// Waits for the watcher to exit by itself and returns its status.
    pub fn wait(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the watcher did not exit; stderr:\n{}", self.stderr());
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// stdout of a finished command as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr of a finished command as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `wrapper… <binary>`, or the binary itself.
fn wrapped(wrapper: &[&str], name: &str) -> Command {
    match wrapper.split_first() {
        Some((first, rest)) => {
            let mut command = Command::new(first);
            command.args(rest).arg(bin(name));
            command
        }
        None => Command::new(bin(name)),
    }
}

/// A master and any number of minions, each with its own config, keys, cache and sockets in
/// one temporary directory, linked over a loopback port.
pub struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
    master: Option<Daemon>,
    minions: Vec<(String, Daemon)>,
    api: Option<Daemon>,
}

impl Cluster {
    /// A cluster whose master config gets `master_extra` (YAML lines). Jobs time out fast:
    /// `timeout: 2`, `gather_job_timeout: 1`.
    pub fn new(master_extra: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("hc")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let cluster = Self {
            dir,
            port: free_port(),
            master: None,
            minions: Vec::new(),
            api: None,
        };
        let root = cluster.path().display().to_string();
        std::fs::create_dir_all(cluster.etc()).unwrap();
        std::fs::write(
            cluster.etc().join("master"),
            format!(
                "root_dir: {root}/master\nsock_dir: {root}/master/run\ninterface: 127.0.0.1\nret_port: {}\ntimeout: 2\ngather_job_timeout: 1\nlog_file: {root}/master/log\nlog_level_logfile: debug\n{master_extra}",
                cluster.port
            ),
        )
        .unwrap();
        cluster
    }

    /// A started master (with `master_extra`) and the minions `ids`, all connected.
    pub fn with_minions(master_extra: &str, ids: &[&str]) -> Self {
        let mut cluster = Self::new(master_extra);
        cluster.start_master();
        for id in ids {
            cluster.start_minion(id, "");
        }
        cluster.wait_connected(ids);
        cluster
    }

    /// The cluster's directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The master's config directory.
    pub fn etc(&self) -> PathBuf {
        self.path().join("etc")
    }

    /// The master's port for minions.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The master's bus publish socket.
    pub fn master_pub(&self) -> PathBuf {
        self.path().join("master/run/master_event_pub.ipc")
    }

    /// The master's bus pull socket.
    pub fn master_pull(&self) -> PathBuf {
        self.path().join("master/run/master_event_pull.ipc")
    }

    /// The master's pki_dir.
    pub fn master_pki(&self) -> PathBuf {
        self.path().join("master/etc/salt/pki/master")
    }

    /// Starts the master and waits until it takes requests.
    pub fn start_master(&mut self) {
        self.start_master_under(&[]);
    }

    /// Starts the master through a wrapper command (`ip netns exec NS`, say).
    pub fn start_master_under(&mut self, wrapper: &[&str]) {
        let child = wrapped(wrapper, "salt-master")
            .arg("-c")
            .arg(self.etc())
            .args(["-l", "info"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start salt-master");
        let requests = self.path().join("master/run/master_request.ipc");
        let publish = self.master_pub();
        assert!(
            wait_until(Duration::from_secs(10), || connectable(&requests)
                && connectable(&publish)),
            "salt-master did not start; log:\n{}",
            self.master_log()
        );
        self.master = Some(Daemon {
            child: Some(child),
            name: "salt-master".into(),
        });
    }

    /// Starts `salt-api` on the master's config, which must hold [`api_block`]'s block for
    /// `port`, and waits until it answers.
    pub fn start_api(&mut self, port: u16) {
        let child = self
            .cmd("salt-api")
            .args(["-l", "info"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start salt-api");
        let api = Daemon {
            child: Some(child),
            name: "salt-api".into(),
        };
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        assert!(
            wait_until(Duration::from_secs(10), || std::net::TcpStream::connect(
                address
            )
            .is_ok()),
            "salt-api did not listen on {address}"
        );
        self.api = Some(api);
    }

    /// The master's process id.
    pub fn master_pid(&self) -> u32 {
        self.master.as_ref().expect("a started master").pid()
    }

    /// Stops the master (SIGTERM) and waits for it.
    pub fn stop_master(&mut self) {
        if let Some(master) = self.master.take() {
            master.stop();
        }
    }

    /// Sends a signal to the master.
    pub fn signal_master(&self, signal: nix::sys::signal::Signal) {
        self.master
            .as_ref()
            .expect("a started master")
            .signal(signal);
    }

    /// The master's log so far.
    pub fn master_log(&self) -> String {
        std::fs::read_to_string(self.path().join("master/log")).unwrap_or_default()
    }

    /// A minion's directory.
    pub fn minion_dir(&self, id: &str) -> PathBuf {
        self.path().join("m").join(id)
    }

    /// Writes a minion's config (with `extra` YAML lines) pointing at this master.
    pub fn configure_minion(&self, id: &str, extra: &str) {
        let root = self.minion_dir(id);
        std::fs::create_dir_all(root.join("etc")).unwrap();
        let root = root.display();
        std::fs::write(
            self.minion_dir(id).join("etc/minion"),
            format!(
                "id: {id}\nroot_dir: {root}\nsock_dir: {root}/run\nmaster: 127.0.0.1\nmaster_port: {}\nacceptance_wait_time: 0.3\nrecon_default: 100\nrecon_max: 500\nlog_file: {root}/log\nlog_level_logfile: debug\n{extra}",
                self.port
            ),
        )
        .unwrap();
    }

    /// Configures and starts a minion.
    pub fn start_minion(&mut self, id: &str, extra: &str) {
        self.configure_minion(id, extra);
        self.start_configured_minion(id);
    }

    /// Starts a minion configured already.
    pub fn start_configured_minion(&mut self, id: &str) {
        let daemon = self.spawn_minion(id);
        self.minions.push((id.to_owned(), daemon));
    }

    /// Starts a configured minion, handing the daemon to the caller.
    pub fn spawn_minion(&self, id: &str) -> Daemon {
        self.spawn_minion_under(id, &[])
    }

    /// Starts a configured minion through a wrapper command.
    pub fn spawn_minion_under(&self, id: &str, wrapper: &[&str]) -> Daemon {
        self.spawn_minion_with(id, wrapper, &[])
    }

    /// Starts a configured minion as a swarm of `size` minions, `<id>-0` and on.
    pub fn spawn_swarm(&self, id: &str, size: usize) -> Daemon {
        self.spawn_minion_with(id, &[], &["--swarm", &size.to_string()])
    }

    fn spawn_minion_with(&self, id: &str, wrapper: &[&str], args: &[&str]) -> Daemon {
        let child = wrapped(wrapper, "salt-minion")
            .arg("-c")
            .arg(self.minion_dir(id).join("etc"))
            .args(["-l", "info"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start salt-minion");
        Daemon {
            child: Some(child),
            name: format!("salt-minion {id}"),
        }
    }

    /// Replaces `from` with `to` in the master's config file.
    pub fn edit_master_config(&self, from: &str, to: &str) {
        let path = self.etc().join("master");
        let text = std::fs::read_to_string(&path).unwrap().replace(from, to);
        std::fs::write(path, text).unwrap();
    }

    /// A started minion's process id.
    pub fn minion_pid(&self, id: &str) -> u32 {
        self.minions
            .iter()
            .find(|(name, _)| name == id)
            .expect("a started minion")
            .1
            .pid()
    }

    /// Takes a started minion's daemon out of the cluster.
    pub fn take_minion(&mut self, id: &str) -> Daemon {
        let index = self
            .minions
            .iter()
            .position(|(name, _)| name == id)
            .expect("a started minion");
        self.minions.remove(index).1
    }

    /// A minion's log so far.
    pub fn minion_log(&self, id: &str) -> String {
        std::fs::read_to_string(self.minion_dir(id).join("log")).unwrap_or_default()
    }

    /// One of the master-side commands (`salt`, `salt-key`, `salt-run`) on this cluster.
    pub fn cmd(&self, name: &str) -> Command {
        let mut command = Command::new(bin(name));
        command.arg("-c").arg(self.etc()).stdin(Stdio::null());
        command
    }

    /// Runs a master-side command.
    pub fn run(&self, name: &str, args: &[&str]) -> Output {
        self.cmd(name).args(args).output().expect("run command")
    }

    /// `salt-call` on a minion.
    pub fn call(&self, id: &str, args: &[&str]) -> Output {
        Command::new(bin("salt-call"))
            .arg("-c")
            .arg(self.minion_dir(id).join("etc"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run salt-call")
    }

    /// A `salt-run state.event` watcher on the master bus, attached.
    pub fn watch(&self) -> Watcher {
        let mut command = self.cmd("salt-run");
        command.args(["state.event"]);
        let watcher = Watcher::spawn(command);
        watcher.sync(&self.master_pull());
        watcher
    }

    /// Waits until every id in `ids` is connected (each has answered a ping).
    pub fn wait_connected(&self, ids: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let target = ids.join(",");
        loop {
            let output = self.run(
                "salt",
                &["-L", &target, "test.ping", "-t", "1", "--out=json"],
            );
            let text = stdout(&output);
            if ids
                .iter()
                .all(|id| text.contains(&format!("\"{id}\": true")))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "minions {ids:?} did not connect: {text}\nmaster log:\n{}",
                self.master_log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Watcher {
    /// Lines until one whose tag is `tag` (the line itself), or a panic after `timeout`.
    pub fn expect(&self, tag: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.line(left) {
                Some(line) if line.split('\t').next() == Some(tag) => return line,
                Some(_) => continue,
                None => break,
            }
        }
        panic!(
            "no event {tag} within {timeout:?}; stderr: {}",
            self.stderr()
        );
    }

    /// Every line printed within `window`.
    pub fn drain(&self, window: Duration) -> Vec<String> {
        let deadline = Instant::now() + window;
        let mut lines = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.line(left) {
                Some(line) => lines.push(line),
                None => break,
            }
        }
        lines
    }
}

/// A small tmpfs mounted for one test (to fill a disk), unmounted on drop.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts one of `size` (`1m`), or says why it cannot (not root, no `CAP_SYS_ADMIN`).
    pub fn mount(size: &str) -> Result<Self, String> {
        if !running_as_root() {
            return Err("mounting a tmpfs needs root".into());
        }
        let dir = tempfile::Builder::new()
            .prefix("hl-disk")
            .tempdir_in("/tmp")
            .map_err(|err| err.to_string())?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|err| format!("cannot run mount: {err}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(Self { dir })
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Says `hello` (`fields` after the command) to the master's link on `port` with a new key from
/// `keys`, and returns the session and the master's answer, which must be a welcome.
pub async fn say_hello(
    port: u16,
    keys: &Path,
    fields: Vec<(Value, Value)>,
) -> (halite::link::Session, Value) {
    use halite::link::Connector;
    let key = halite::keys::KeyPair::load_or_create(keys, "minion").unwrap();
    let dialer = halite::link::tls::TlsDialer::new(
        format!("127.0.0.1:{port}"),
        &key,
        halite::link::tls::MasterPin::FirstUse,
        Duration::from_secs(10),
    );
    let mut session = dialer.connect().await.unwrap();
    session
        .tx
        .send(halite::proto::message("hello", fields).into())
        .await
        .unwrap();
    let welcome = session.rx.recv().await.expect("an answer");
    assert_eq!(
        halite::proto::command(&welcome),
        Some("welcome"),
        "{welcome}"
    );
    (session, welcome)
}

/// The minions that returned in `salt`'s nested output (unindented `id:` lines), sorted.
pub fn returned_ids(text: &str) -> Vec<String> {
    let mut ids: Vec<String> = text
        .lines()
        .filter(|line| !line.starts_with(' ') && line.ends_with(':'))
        .map(|line| line.trim_end_matches(':').to_owned())
        .collect();
    ids.sort();
    ids
}
