//! Questions a minion asks its master over a session, each waiting for its own reply.
//!
//! [`Requests`] gives every [`Request`] an id, sends it on the session attached now and parks
//! the caller until the [`Message::Reply`] with that id arrives, the wait times out, or the
//! session ends; replies are taken out of the session's incoming messages before the minion's
//! logic sees them. It knows nothing of what is asked: a new kind of question is one more
//! variant of [`Request`] and [`crate::proto::link::Answer`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot};

use super::{SESSION_QUEUE, Session};
use crate::event::Value;
use crate::proto::link::{Answer, Failure, Request, request_id};
use crate::proto::{Message, command};

/// Requests a session may have in progress at once, on either side: the minion waits for a
/// free place before asking, the master answers any further one with [`Failure::Busy`].
pub const IN_FLIGHT: usize = 16;

/// How long an answer is waited for: a file chunk or a listing takes far less.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AskError {
    /// No session with the master now.
    #[error("not connected to the master now (the minion reconnects by itself; try again)")]
    NotConnected,
    /// The session ended before the answer came.
    #[error("the connection to the master was lost before it answered")]
    Lost,
    /// No answer in time.
    #[error("the master did not answer within {0:?}")]
    TimedOut(Duration),
    /// The master answered that it could not.
    #[error(transparent)]
    Failed(#[from] Failure),
}

type Waiting = oneshot::Sender<Result<Answer, Failure>>;

/// The requests of one minion (or `salt-call`), over whichever session is attached now.
#[derive(Debug)]
pub struct Requests {
    state: Mutex<State>,
    places: Semaphore,
    timeout: Duration,
}

#[derive(Debug, Default)]
struct State {
    /// The attached session's sender and its attachment number.
    session: Option<(u64, mpsc::Sender<super::Outgoing>)>,
    attachments: u64,
    next_rid: u64,
    waiting: HashMap<u64, Waiting>,
}

impl Default for Requests {
    fn default() -> Self {
        Self::with_timeout(REPLY_TIMEOUT)
    }
}

impl Requests {
    /// No session attached yet; answers are waited for `timeout`.
    pub fn with_timeout(timeout: Duration) -> Self {
        Self {
            state: Mutex::default(),
            places: Semaphore::new(IN_FLIGHT),
            timeout,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("not poisoned")
    }

    /// Asks the master and waits for its answer.
    pub async fn ask(&self, request: Request) -> Result<Answer, AskError> {
        let _place = self.places.acquire().await.map_err(|_| AskError::Lost)?;
        let (answer, rid, tx) = {
            let mut state = self.lock();
            let tx = state
                .session
                .as_ref()
                .map(|(_, tx)| tx.clone())
                .ok_or(AskError::NotConnected)?;
            state.next_rid += 1;
            let rid = state.next_rid;
            let (waiting, answer) = oneshot::channel();
            state.waiting.insert(rid, waiting);
            (answer, rid, tx)
        };
        // A caller that gives up (timeout, cancelled job) leaves no entry behind.
        let _forget = Forget {
            requests: self,
            rid,
        };
        if tx
            .send(Message::Request { rid, request }.to_value().into())
            .await
            .is_err()
        {
            return Err(AskError::Lost);
        }
        match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(reply)) => Ok(reply?),
            Ok(Err(_)) => Err(AskError::Lost),
            Err(_) => Err(AskError::TimedOut(self.timeout)),
        }
    }

    /// Attaches `session`: requests go out on it, and its replies are taken out of its incoming
    /// messages, which the returned session carries on. Requests waiting on an earlier session
    /// fail as lost; so do this session's once it ends or the returned session is dropped.
    pub fn attach(self: &Arc<Self>, session: Session) -> Session {
        let Session {
            peer,
            peer_key,
            tx,
            mut rx,
            limit,
            ticket,
        } = session;
        let attachment = {
            let mut state = self.lock();
            state.attachments += 1;
            state.session = Some((state.attachments, tx.clone()));
            state.waiting.clear();
            state.attachments
        };
        let (forward, forwarded) = mpsc::channel(SESSION_QUEUE);
        let requests = Arc::clone(self);
        // Lives as long as the session: it ends when the peer's messages end or the logic drops
        // the session it was given.
        tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    _ = forward.closed() => break,
                    message = rx.recv() => match message {
                        Some(message) => message,
                        None => break,
                    },
                };
                if command(&message) != Some("_reply") {
                    if forward.send(message).await.is_err() {
                        break;
                    }
                    continue;
                }
                requests.deliver(message);
            }
            requests.detach(attachment);
        });
        Session {
            peer,
            peer_key,
            tx,
            rx: forwarded,
            limit,
            ticket,
        }
    }

    /// Hands a `_reply` to the request waiting for it.
    fn deliver(&self, message: Value) {
        let rid = request_id(&message);
        let (rid, reply) = match Message::from_value(message) {
            Ok(Message::Reply { rid, reply }) => (rid, reply),
            Err(err) => match rid {
                // The request learns its answer was unreadable instead of waiting it out.
                Some(rid) => (
                    rid,
                    Err(Failure::Malformed {
                        reason: format!("the master's reply is unreadable: {err}"),
                    }),
                ),
                None => {
                    tracing::warn!("ignored a reply from the master: {err}");
                    return;
                }
            },
            Ok(_) => return,
        };
        match self.lock().waiting.remove(&rid) {
            Some(waiting) => {
                let _ = waiting.send(reply);
            }
            None => tracing::debug!("a reply to request {rid}, which no longer waits"),
        }
    }

    /// Forgets the session of `attachment` unless another replaced it; its requests fail.
    fn detach(&self, attachment: u64) {
        let mut state = self.lock();
        if state
            .session
            .as_ref()
            .is_some_and(|(current, _)| *current == attachment)
        {
            state.session = None;
            state.waiting.clear();
        }
    }
}

/// Removes a request's entry when its caller stops waiting, however it stops.
struct Forget<'a> {
    requests: &'a Requests,
    rid: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.requests.lock().waiting.remove(&self.rid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fileserver::{FileError, FileHash};
    use crate::link::Trust;

    fn pair() -> (Session, Session) {
        let (ours, theirs) = tokio::io::duplex(1 << 20);
        let keepalive = Duration::from_secs(10);
        let minion = Session::over(
            ours,
            "master".into(),
            String::new(),
            keepalive,
            Trust::Trusted,
        );
        let master = Session::over(
            theirs,
            "minion".into(),
            String::new(),
            keepalive,
            Trust::Trusted,
        );
        (minion, master)
    }

    fn hash_request() -> Request {
        Request::FileHash {
            saltenv: "base".into(),
            path: "a".into(),
        }
    }

    #[tokio::test]
    async fn replies_find_their_requests_and_other_messages_pass_through() {
        let (minion, mut master) = pair();
        let requests = Arc::new(Requests::default());
        let mut minion = requests.attach(minion);
        let answering = tokio::spawn(async move {
            let mut asked = Vec::new();
            for _ in 0..2 {
                let Ok(Message::Request { rid, request }) =
                    Message::from_value(master.rx.recv().await.unwrap())
                else {
                    panic!("a request")
                };
                asked.push((rid, request));
            }
            // Answered in the opposite order, with a job in between.
            let publish = crate::proto::message("publish", Vec::new());
            master.tx.send(publish.into()).await.unwrap();
            for (rid, request) in asked.into_iter().rev() {
                let reply = match request {
                    Request::FileHash { path, .. } => Ok(Answer::Hash(FileHash {
                        hsum: path,
                        hash_type: "sha256".into(),
                    })),
                    _ => Err(Failure::File(FileError::Traversal { path: "..".into() })),
                };
                master
                    .tx
                    .send(Message::Reply { rid, reply }.to_value().into())
                    .await
                    .unwrap();
            }
            master
        });
        let (first, second) =
            tokio::join!(requests.ask(hash_request()), requests.ask(Request::Envs));
        assert_eq!(
            first,
            Ok(Answer::Hash(FileHash {
                hsum: "a".into(),
                hash_type: "sha256".into()
            }))
        );
        assert_eq!(
            second,
            Err(AskError::Failed(Failure::File(FileError::Traversal {
                path: "..".into()
            })))
        );
        let other = minion.rx.recv().await.unwrap();
        assert_eq!(command(&other), Some("publish"), "not a reply: passed on");
        drop(answering.await);
        assert!(requests.lock().waiting.is_empty());
    }

    #[tokio::test]
    async fn a_lost_session_fails_waiting_requests_at_once() {
        let (minion, mut master) = pair();
        let requests = Arc::new(Requests::default());
        let _minion = requests.attach(minion);
        let closing = tokio::spawn(async move {
            master.rx.recv().await.unwrap();
            drop(master);
        });
        let answer = tokio::time::timeout(Duration::from_secs(5), requests.ask(hash_request()))
            .await
            .expect("failed at once, not after the reply timeout");
        assert_eq!(answer, Err(AskError::Lost));
        closing.await.unwrap();
        // Once the session is gone, nothing is sent anywhere.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            requests.ask(hash_request()).await,
            Err(AskError::NotConnected)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_unanswered_request_times_out_and_is_forgotten() {
        let (minion, _master) = pair();
        let requests = Arc::new(Requests::with_timeout(Duration::from_secs(3)));
        let _minion = requests.attach(minion);
        assert_eq!(
            requests.ask(hash_request()).await,
            Err(AskError::TimedOut(Duration::from_secs(3)))
        );
        assert!(requests.lock().waiting.is_empty());
    }

    #[tokio::test]
    async fn an_unreadable_reply_fails_its_request_naming_the_field() {
        let (minion, mut master) = pair();
        let requests = Arc::new(Requests::default());
        let _minion = requests.attach(minion);
        tokio::spawn(async move {
            let message = master.rx.recv().await.unwrap();
            let rid = request_id(&message).unwrap();
            let bad = crate::proto::message(
                "_reply",
                vec![
                    (Value::from("rid"), Value::from(rid)),
                    (Value::from("kind"), Value::from("hash")),
                ],
            );
            master.tx.send(bad.into()).await.unwrap();
            master
        });
        let answer = requests.ask(hash_request()).await;
        assert_eq!(
            answer,
            Err(AskError::Failed(Failure::Malformed {
                reason: "the master's reply is unreadable: _reply has no hsum".into()
            }))
        );
    }
}
