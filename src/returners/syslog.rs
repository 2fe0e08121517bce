//! Salt's `syslog` returner: each return as one syslog message, `json.dumps(ret)`, sent to the
//! local syslog socket as glibc's `syslog(3)` sends what Salt hands Python's `syslog.syslog`:
//! one datagram `<PRI>Mmm dd hh:mm:ss TAG[PID]: MESSAGE` (RFC 3164, local time, `[PID]` with
//! `LOG_PID`), PRI being the facility and the level.
//!
//! Options, with Salt's names and defaults: `syslog.level` (`LOG_INFO`), `syslog.facility`
//! (`LOG_USER`; `LOG_KERN` means `LOG_USER`, as libc takes a facility of 0), `syslog.tag` (at
//! most 32 characters; default the program's name, as Python's) and `syslog.options`, a list of
//! `LOG_PID` (the pid after the tag), `LOG_PERROR` (each message on stderr too), `LOG_CONS`,
//! `LOG_NDELAY`, `LOG_ODELAY` and `LOG_NOWAIT` (accepted and without effect here: a message that
//! cannot be sent is answered as unavailable, to be retried, rather than written to the console;
//! the socket is opened at the first message). halite's own `syslog.socket` (default
//! `/dev/log`) names the socket. Where Salt logs a bad option and drops the return, halite
//! refuses the option when the returner is built.
//!
//! A batch is a datagram per return: one that fails after others were sent is retried whole, so
//! a syslog may see a message twice.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixDatagram;
use tokio::sync::Mutex;

use super::{Options, Pending, Returner, ReturnerError};
use crate::event::Value;
use crate::py::json::{self as pyjson, Format};

/// Where libc sends.
const DEFAULT_SOCKET: &str = "/dev/log";
/// How long a message waits for room in a busy syslog daemon's queue.
const SEND_WAIT: Duration = Duration::from_secs(10);
/// The longest tag Salt accepts.
const TAG_MAX: usize = 32;

/// Salt's level names (Python's `syslog` constants) and their values.
const LEVELS: &[(&str, libc::c_int)] = &[
    ("LOG_EMERG", libc::LOG_EMERG),
    ("LOG_ALERT", libc::LOG_ALERT),
    ("LOG_CRIT", libc::LOG_CRIT),
    ("LOG_ERR", libc::LOG_ERR),
    ("LOG_WARNING", libc::LOG_WARNING),
    ("LOG_NOTICE", libc::LOG_NOTICE),
    ("LOG_INFO", libc::LOG_INFO),
    ("LOG_DEBUG", libc::LOG_DEBUG),
];

/// Salt's facility names and their values (the code shifted past the level's three bits).
pub(crate) const FACILITIES: &[(&str, libc::c_int)] = &[
    ("LOG_KERN", libc::LOG_KERN),
    ("LOG_USER", libc::LOG_USER),
    ("LOG_MAIL", libc::LOG_MAIL),
    ("LOG_DAEMON", libc::LOG_DAEMON),
    ("LOG_AUTH", libc::LOG_AUTH),
    ("LOG_SYSLOG", libc::LOG_SYSLOG),
    ("LOG_LPR", libc::LOG_LPR),
    ("LOG_NEWS", libc::LOG_NEWS),
    ("LOG_UUCP", libc::LOG_UUCP),
    ("LOG_CRON", libc::LOG_CRON),
    ("LOG_AUTHPRIV", libc::LOG_AUTHPRIV),
    ("LOG_LOCAL0", libc::LOG_LOCAL0),
    ("LOG_LOCAL1", libc::LOG_LOCAL1),
    ("LOG_LOCAL2", libc::LOG_LOCAL2),
    ("LOG_LOCAL3", libc::LOG_LOCAL3),
    ("LOG_LOCAL4", libc::LOG_LOCAL4),
    ("LOG_LOCAL5", libc::LOG_LOCAL5),
    ("LOG_LOCAL6", libc::LOG_LOCAL6),
    ("LOG_LOCAL7", libc::LOG_LOCAL7),
];

/// Salt's `openlog` option names.
const OPTIONS: &[&str] = &[
    "LOG_PID",
    "LOG_CONS",
    "LOG_ODELAY",
    "LOG_NDELAY",
    "LOG_NOWAIT",
    "LOG_PERROR",
];

/// The `syslog` returner.
#[derive(Debug)]
pub struct Syslog {
    socket: PathBuf,
    /// The facility and the level, as PRI.
    priority: libc::c_int,
    tag: String,
    pid: bool,
    perror: bool,
    /// Opened at the first message, and again after a failure.
    connection: Mutex<Option<UnixDatagram>>,
}

/// Builds it from its options, checked here.
pub(super) fn build(options: &Options) -> Result<Arc<dyn Returner>, ReturnerError> {
    let named = |option: &str, default: &str, names: &[(&str, libc::c_int)]| {
        let name = options.text(option, default)?;
        match names.iter().find(|(known, _)| *known == name) {
            Some((_, value)) => Ok(*value),
            None => {
                let expected = format!("expected {}", one_of(names.iter().map(|(n, _)| *n)));
                Err(options.invalid(option, &expected, &name.into()))
            }
        }
    };
    let level = named("level", "LOG_INFO", LEVELS)?;
    let facility = match named("facility", "LOG_USER", FACILITIES)? {
        libc::LOG_KERN => libc::LOG_USER,
        facility => facility,
    };
    let tag = match options.get("tag") {
        None => program(),
        Some(Value::String(tag)) if tag.as_str().is_some_and(|t| t.chars().count() <= TAG_MAX) => {
            tag.into_str().unwrap_or_default()
        }
        Some(other) => {
            let expected = format!("expected text of at most {TAG_MAX} characters");
            return Err(options.invalid("tag", &expected, &other));
        }
    };
    let given = match options.get("options") {
        None => Vec::new(),
        Some(Value::Array(items)) => items,
        Some(name @ Value::String(_)) => vec![name],
        Some(other) => return Err(options.invalid("options", "expected a list", &other)),
    };
    let mut flags = Vec::new();
    for name in given {
        match name.as_str().filter(|name| OPTIONS.contains(name)) {
            Some(known) => flags.push(known.to_owned()),
            None => {
                let expected = format!("expected a list of {}", one_of(OPTIONS.iter().copied()));
                return Err(options.invalid("options", &expected, &name));
            }
        }
    }
    Ok(Arc::new(Syslog {
        socket: options.text("socket", DEFAULT_SOCKET)?.into(),
        priority: facility | level,
        tag,
        pid: flags.iter().any(|flag| flag == "LOG_PID"),
        perror: flags.iter().any(|flag| flag == "LOG_PERROR"),
        connection: Mutex::new(None),
    }))
}

fn one_of<'a>(names: impl Iterator<Item = &'a str>) -> String {
    format!("one of {}", names.collect::<Vec<_>>().join(", "))
}

/// The program's name, Python's default tag (`sys.argv[0]` without its directories).
fn program() -> String {
    std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|path| Some(path.file_name()?.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "halite".to_owned())
}

impl Syslog {
    /// `TAG[PID]: MESSAGE`, what follows the timestamp (and what `LOG_PERROR` prints).
    fn body(&self, message: &str) -> String {
        if self.pid {
            format!("{}[{}]: {message}", self.tag, std::process::id())
        } else {
            format!("{}: {message}", self.tag)
        }
    }

    /// The datagram of one message, stamped now in local time.
    fn datagram(&self, body: &str) -> String {
        let now = jiff::ZonedDateTime::now().strftime("%b %e %H:%M:%S");
        format!("<{}>{now} {body}", self.priority)
    }

    /// Sends one datagram; as libc, a connection that fails is opened again once (the syslog
    /// daemon may have restarted).
    async fn send(
        &self,
        connection: &mut Option<UnixDatagram>,
        datagram: &[u8],
    ) -> Result<(), ReturnerError> {
        let mut failure = None;
        for _ in 0..2 {
            let socket = match connection {
                Some(socket) => socket,
                None => connection.insert(self.connect()?),
            };
            match tokio::time::timeout(SEND_WAIT, socket.send(datagram)).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(err)) if err.raw_os_error() == Some(libc::EMSGSIZE) => {
                    return Err(ReturnerError::Rejected {
                        returner: "syslog",
                        problem: format!(
                            "a message of {} bytes is more than {} takes",
                            datagram.len(),
                            self.socket.display()
                        ),
                    });
                }
                Ok(Err(err)) => failure = Some(err.to_string()),
                Err(_) => failure = Some(format!("nothing taken for {SEND_WAIT:?}")),
            }
            *connection = None;
        }
        Err(self.unavailable(&failure.unwrap_or_default()))
    }

    fn connect(&self) -> Result<UnixDatagram, ReturnerError> {
        let socket = UnixDatagram::unbound().map_err(|err| self.unavailable(&err.to_string()))?;
        socket
            .connect(&self.socket)
            .map_err(|err| self.unavailable(&err.to_string()))?;
        Ok(socket)
    }

    fn unavailable(&self, err: &str) -> ReturnerError {
        ReturnerError::Unavailable {
            returner: "syslog",
            problem: format!(
                "cannot send to the syslog socket {}: {err}; start a syslog daemon \
                 (rsyslog, systemd-journald) or set syslog.socket",
                self.socket.display()
            ),
        }
    }
}

impl Returner for Syslog {
    fn name(&self) -> &'static str {
        "syslog"
    }

    fn returns<'a>(&'a self, returns: &'a [Value]) -> Pending<'a, ()> {
        Box::pin(async move {
            let mut connection = self.connection.lock().await;
            for ret in returns {
                let body = self.body(&pyjson::to_string(ret, Format::COMPACT));
                self.send(&mut connection, self.datagram(&body).as_bytes())
                    .await?;
                if self.perror {
                    // As libc: stderr is best effort.
                    let _ = writeln!(std::io::stderr().lock(), "{body}");
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Role};

    fn syslog(dir: &std::path::Path, yaml: &str) -> Result<Arc<dyn Returner>, ReturnerError> {
        std::fs::write(dir.join("minion"), yaml).unwrap();
        let config = Config::load(Role::Minion, Some(dir)).unwrap();
        build(&Options::new("syslog", &config))
    }

    #[tokio::test]
    async fn a_return_is_one_datagram_with_pri_time_tag_and_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let listener = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        let yaml = format!(
            "syslog:\n  facility: LOG_DAEMON\n  level: LOG_ERR\n  tag: mysalt\n  \
             options: [LOG_PID]\nsyslog.socket: {}\n",
            path.display()
        );
        let returner = syslog(dir.path(), &yaml).unwrap();
        let ret = crate::salt_yaml::load("{id: web1, 'return': ü}").unwrap();
        returner.returns(&[ret.clone(), ret]).await.unwrap();
        let mut buffer = [0; 1024];
        for _ in 0..2 {
            let size = listener.recv(&mut buffer).unwrap();
            let datagram = std::str::from_utf8(&buffer[..size]).unwrap();
            let (stamp, body) = datagram.strip_prefix("<27>").unwrap().split_at(15);
            assert!(
                jiff::fmt::strtime::parse("%b %e %H:%M:%S", stamp).is_ok(),
                "{datagram}"
            );
            assert_eq!(
                body,
                format!(
                    " mysalt[{}]: {{\"id\": \"web1\", \"return\": \"ü\"}}",
                    std::process::id()
                )
            );
        }
    }

    #[tokio::test]
    async fn bad_options_are_refused_and_a_missing_socket_named() {
        let dir = tempfile::tempdir().unwrap();
        for (yaml, said) in [
            (
                "syslog.level: LOG_WARN\n",
                "syslog.level: expected one of LOG_EMERG",
            ),
            (
                "syslog.facility: LOG_PID\n",
                "syslog.facility: expected one of",
            ),
            (
                "syslog.options: [LOG_PID, PID]\n",
                "syslog.options: expected a list of",
            ),
            (
                "syslog.tag: [a]\n",
                "syslog.tag: expected text of at most 32",
            ),
        ] {
            let err = syslog(dir.path(), yaml).unwrap_err().to_string();
            assert!(err.contains(said), "{yaml}: {err}");
        }
        let returner = syslog(dir.path(), "syslog.socket: /nonexistent/log\n").unwrap();
        let err = returner.returns(&[Value::Nil]).await.unwrap_err();
        assert!(err.retryable());
        assert!(
            err.to_string()
                .contains("cannot send to the syslog socket /nonexistent/log: "),
            "{err}"
        );
    }

    #[test]
    fn kern_is_user_as_libc_has_it() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("log");
        let listener = std::os::unix::net::UnixDatagram::bind(&socket).unwrap();
        let yaml = format!(
            "syslog.facility: LOG_KERN\nsyslog.level: LOG_DEBUG\nsyslog.socket: {}\n",
            socket.display()
        );
        let returner = syslog(dir.path(), &yaml).unwrap();
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(returner.returns(&[Value::Boolean(true)]))
            .unwrap();
        let mut buffer = [0; 256];
        let size = listener.recv(&mut buffer).unwrap();
        let datagram = String::from_utf8_lossy(&buffer[..size]).into_owned();
        assert!(datagram.starts_with("<15>"), "{datagram}");
        assert!(
            datagram.ends_with(&format!(" {}: true", program())),
            "{datagram}"
        );
    }
}
