//! Real database servers for tests: MariaDB and PostgreSQL, each a child process on a fresh data
//! directory in a temp dir and a free loopback port, with a database `salt` that user `salt`
//! (password `salt`) owns. A server stops when dropped, even when the test panics; `kill()`
//! (SIGKILL) and `restart()` (same data and port) are for outage tests.
//!
//! `start()` answers why a server cannot run here when its binaries are missing (Debian's
//! `mariadb-server` and `postgresql`, which tests/system-packages.sh installs); the test then
//! says SKIPPED with that reason ([`or_skip`]). The system's own database services are never
//! used.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{as_nobody, free_port, running_as_root, wait_until};

/// How long a server may take to start (crash recovery after `kill()` included).
const READY: Duration = Duration::from_secs(60);

/// `started`, or `None` after printing why the test is SKIPPED.
pub(crate) fn or_skip<T>(started: Result<T, String>) -> Option<T> {
    started.map_err(|why| eprintln!("SKIPPED: {why}")).ok()
}

/// The first of `names` found in `PATH` or in `dirs`.
fn find(names: &[&str], dirs: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(dirs.iter().cloned())
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

fn run(command: &mut Command, what: &str) -> String {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("{what}: {err}"));
    assert!(
        output.status.success(),
        "{what}: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Whether `child` became `ready` within [`READY`] (and is still running).
fn started(child: &mut Child, mut ready: impl FnMut() -> bool) -> bool {
    let mut exited = || child.try_wait().ok().flatten().is_some();
    wait_until(READY, || exited() || ready()) && !exited()
}

fn stop(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A MariaDB server.
pub(crate) struct Mariadb {
    dir: tempfile::TempDir,
    port: u16,
    server: PathBuf,
    client: PathBuf,
    child: Option<Child>,
}

impl Mariadb {
    /// A fresh server with database `salt` and user `salt`, or why none can run here.
    pub(crate) fn start() -> Result<Self, String> {
        let sbin = [PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")];
        let missing = "MariaDB is not installed (Debian's mariadb-server; tests/system-packages.sh \
                       installs it)";
        let server = find(&["mariadbd", "mysqld"], &sbin).ok_or(missing)?;
        let install = find(&["mariadb-install-db", "mysql_install_db"], &sbin).ok_or(missing)?;
        let client = find(&["mariadb", "mysql"], &sbin).ok_or(missing)?;
        let dir = tempfile::Builder::new()
            .prefix("hmdb")
            .tempdir_in("/tmp")
            .unwrap();
        let mut command = Command::new(install);
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.path().join("data").display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
        if running_as_root() {
            command.arg("--user=root");
        }
        run(&mut command, "mariadb-install-db");
        let mut db = Self {
            port: free_port(),
            dir,
            server,
            client,
            child: None,
        };
        db.spawn();
        db.sql(
            "",
            "CREATE USER 'salt'@'%' IDENTIFIED BY 'salt'; \
             CREATE DATABASE salt DEFAULT CHARACTER SET utf8 DEFAULT COLLATE utf8_general_ci; \
             GRANT ALL ON salt.* TO 'salt'@'%';",
        );
        Ok(db)
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    fn spawn(&mut self) {
        let dir = self.dir.path();
        let mut command = Command::new(&self.server);
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join("data").display()))
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!("--port={}", self.port))
            .arg(format!("--pid-file={}", dir.join("pid").display()))
            .arg(format!("--log-error={}", dir.join("error.log").display()))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--innodb-buffer-pool-size=32M",
            ]);
        if running_as_root() {
            command.arg("--user=root");
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd starts");
        let mut probe = self.admin();
        probe.args(["-e", "SELECT 1"]);
        let ready = started(&mut child, || {
            probe.output().is_ok_and(|out| out.status.success())
        });
        self.child = Some(child);
        assert!(
            ready,
            "MariaDB did not start: {}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
    }

    /// The client, as root over the server's socket.
    fn admin(&self) -> Command {
        let mut command = Command::new(&self.client);
        command
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["--user=root", "--batch", "--skip-column-names"]);
        command
    }

    /// Runs `sql` as root in `database` (none when empty); its rows, tab-separated.
    pub(crate) fn sql(&self, database: &str, sql: &str) -> String {
        let mut command = self.admin();
        command.arg("-e").arg(sql);
        if !database.is_empty() {
            command.arg(database);
        }
        run(&mut command, &format!("mariadb: {sql}"))
    }

    /// Creates database `name`, which user `salt` may use as it uses `salt`.
    pub(crate) fn create_database(&self, name: &str) {
        self.sql(
            "",
            &format!(
                "CREATE DATABASE `{name}` DEFAULT CHARACTER SET utf8 DEFAULT COLLATE \
                 utf8_general_ci; GRANT ALL ON `{name}`.* TO 'salt'@'%';"
            ),
        );
    }

    /// The loopback port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// `mysql://salt:salt@127.0.0.1:<port>/salt`.
    pub(crate) fn url(&self) -> String {
        format!("mysql://salt:salt@127.0.0.1:{}/salt", self.port)
    }

    /// Configuration lines pointing the `mysql` returner at database `database`.
    pub(crate) fn options(&self, database: &str) -> String {
        format!(
            "mysql.host: 127.0.0.1\nmysql.port: {}\nmysql.user: salt\nmysql.pass: salt\n\
             mysql.db: {database}\n",
            self.port
        )
    }

    /// Kills the server (SIGKILL): connections drop, the last transactions may be lost.
    pub(crate) fn kill(&mut self) {
        stop(&mut self.child);
    }

    /// Starts the server again on the same data and port (after `kill()`).
    pub(crate) fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        // Its data goes with the temp dir: nothing to shut down cleanly.
        stop(&mut self.child);
    }
}

/// A PostgreSQL server (run as `nobody` when the tests run as root: it refuses root).
pub(crate) struct Postgres {
    dir: tempfile::TempDir,
    port: u16,
    bin: PathBuf,
    child: Option<Child>,
}

impl Postgres {
    /// A fresh server with database `salt` owned by user `salt`, or why none can run here.
    pub(crate) fn start() -> Result<Self, String> {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path().join("bin"))
            .collect();
        versions.sort_by_key(|dir| {
            dir.parent()
                .and_then(|version| version.file_name()?.to_str()?.parse::<u32>().ok())
        });
        versions.reverse();
        let postgres = find(&["postgres"], &versions).ok_or(
            "PostgreSQL is not installed (Debian's postgresql; tests/system-packages.sh installs \
             it)",
        )?;
        // PATH may hold links to the programs (/usr/local/bin/postgres): the others are beside
        // the real one.
        let postgres = std::fs::canonicalize(&postgres).unwrap_or(postgres);
        let bin = postgres.parent().expect("a directory").to_owned();
        for tool in ["initdb", "psql", "pg_isready"] {
            if !bin.join(tool).is_file() {
                return Err(format!("{tool} is missing beside {}", postgres.display()));
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("hpg")
            .tempdir_in("/tmp")
            .unwrap();
        if running_as_root() {
            let nobody = Some(nix::unistd::Uid::from_raw(65534));
            nix::unistd::chown(dir.path(), nobody, Some(nix::unistd::Gid::from_raw(65534)))
                .unwrap();
        }
        let mut db = Self {
            port: free_port(),
            dir,
            bin,
            child: None,
        };
        let mut initdb = db.command("initdb");
        initdb
            .arg("-D")
            .arg(db.data())
            .args(["-U", "postgres", "-E", "UTF8", "--no-locale", "--no-sync"])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"]);
        run(&mut initdb, "initdb");
        db.spawn();
        db.sql("postgres", "CREATE ROLE salt LOGIN PASSWORD 'salt'");
        db.create_database("salt");
        Ok(db)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A PostgreSQL program, run as `nobody` when the tests run as root.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if running_as_root() {
            as_nobody(program)
        } else {
            Command::new(program)
        }
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("server.log")).unwrap();
        let mut child = self
            .command("postgres")
            .arg("-D")
            .arg(self.data())
            .arg("-k")
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            // After a kill, recovery syncs the data directory: one syncfs, not a file's fsync
            // at a time (seconds).
            .args(["-c", "recovery_init_sync_method=syncfs"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("postgres starts");
        let mut probe = Command::new(self.bin.join("pg_isready"));
        probe
            .arg("-q")
            .arg("-h")
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string()]);
        let ready = started(&mut child, || {
            probe.status().is_ok_and(|status| status.success())
        });
        self.child = Some(child);
        assert!(
            ready,
            "PostgreSQL did not start: {}",
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
    }

    /// Runs `sql` as the superuser in `database`; its rows, tab-separated.
    pub(crate) fn sql(&self, database: &str, sql: &str) -> String {
        let mut command = Command::new(self.bin.join("psql"));
        command
            .args(["-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(self.dir.path())
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                database,
            ])
            .arg("-c")
            .arg(sql);
        run(&mut command, &format!("psql: {sql}"))
    }

    /// Creates database `name`, owned by user `salt`.
    pub(crate) fn create_database(&self, name: &str) {
        self.sql(
            "postgres",
            &format!("CREATE DATABASE \"{name}\" OWNER salt ENCODING 'UTF8'"),
        );
    }

    /// The loopback port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// `postgresql://salt:salt@127.0.0.1:<port>/salt`.
    pub(crate) fn url(&self) -> String {
        format!("postgresql://salt:salt@127.0.0.1:{}/salt", self.port)
    }

    /// Configuration lines pointing the `pgjsonb` returner at database `database`.
    pub(crate) fn options(&self, database: &str) -> String {
        format!(
            "returner.pgjsonb.host: 127.0.0.1\nreturner.pgjsonb.port: {}\n\
             returner.pgjsonb.user: salt\nreturner.pgjsonb.pass: salt\n\
             returner.pgjsonb.db: {database}\n",
            self.port
        )
    }

    /// Kills the server and its backends (SIGKILL): connections drop, as in a crash.
    pub(crate) fn kill(&mut self) {
        let Some(child) = self.child.as_ref() else {
            return;
        };
        let backends = children(child.id());
        stop(&mut self.child);
        for pid in &backends {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        // Its shared memory is free once the backends are gone.
        wait_until(Duration::from_secs(10), || {
            backends.iter().all(|pid| !running(*pid))
        });
    }

    /// Starts the server again on the same data and port (after `kill()`).
    pub(crate) fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGQUIT: immediate shutdown, the backends with it; its data goes with the temp dir.
        if let Some(child) = self.child.as_mut() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGQUIT);
            let exited = wait_until(Duration::from_secs(10), || {
                child.try_wait().ok().flatten().is_some()
            });
            if !exited {
                self.kill();
            }
        }
        stop(&mut self.child);
    }
}

/// Whether process `pid` runs (exists and is not a zombie).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| Some(stat.rsplit_once(')')?.1.split_whitespace().next()? != "Z"))
        .unwrap_or(false)
}

/// The processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|candidate| {
            let stat =
                std::fs::read_to_string(format!("/proc/{candidate}/stat")).unwrap_or_default();
            // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                == Some(pid)
        })
        .collect()
}

#[test]
fn mariadb_serves_user_salt_and_comes_back_after_a_kill() {
    let Some(mut db) = or_skip(Mariadb::start()) else {
        return;
    };
    db.sql(
        "salt",
        "CREATE TABLE t (n INT) ENGINE=InnoDB; INSERT INTO t VALUES (1);",
    );
    let as_salt = |db: &Mariadb| {
        run(
            Command::new(&db.client)
                .args([
                    "--no-defaults",
                    "--protocol=tcp",
                    "-h",
                    "127.0.0.1",
                    "-usalt",
                    "-psalt",
                ])
                .arg(format!("--port={}", db.port()))
                .args([
                    "--batch",
                    "--skip-column-names",
                    "-e",
                    "SELECT n FROM t",
                    "salt",
                ]),
            "mariadb as salt",
        )
    };
    assert_eq!(as_salt(&db), "1\n");
    db.kill();
    assert!(std::net::TcpStream::connect(("127.0.0.1", db.port())).is_err());
    db.restart();
    assert_eq!(as_salt(&db), "1\n");
}

#[test]
fn postgres_serves_user_salt_and_comes_back_after_a_kill() {
    let Some(mut db) = or_skip(Postgres::start()) else {
        return;
    };
    db.sql(
        "salt",
        "SET ROLE salt; CREATE TABLE t (n INT); INSERT INTO t VALUES (1)",
    );
    let as_salt = |db: &Postgres| {
        run(
            Command::new(db.bin.join("psql"))
                .args(["-X", "-A", "-t", "-c", "SELECT n FROM t"])
                .arg(db.url().replace("salt:salt@", "salt@"))
                .env("PGPASSWORD", "salt"),
            "psql as salt",
        )
    };
    assert_eq!(as_salt(&db), "1\n");
    db.kill();
    assert!(std::net::TcpStream::connect(("127.0.0.1", db.port())).is_err());
    db.restart();
    assert_eq!(as_salt(&db), "1\n");
}
