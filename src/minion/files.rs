//! The master's file server and pillar as a minion sees them: a [`FileSource`] and a
//! [`PillarFetch`] whose every call is a request over the link, answered by the master from its
//! own `file_roots` and `pillar_roots`.

use std::sync::Arc;

use crate::fileserver::{Cache, Chunk, Fetching, FileError, FileHash, FileSource};
use crate::link::requests::{AskError, Requests};
use crate::pillar::{Fetching as PillarFetching, PillarFetch};
use crate::proto::link::{Answer, Failure, Request};

/// Files from the master, over whichever session [`Requests`] has now.
#[derive(Debug, Clone)]
pub struct LinkFiles {
    requests: Arc<Requests>,
}

impl LinkFiles {
    /// Files asked for through `requests`.
    pub fn new(requests: Arc<Requests>) -> Self {
        Self { requests }
    }

    async fn ask(&self, what: String, request: Request) -> Result<Answer, FileError> {
        self.requests.ask(request).await.map_err(|err| match err {
            AskError::Failed(Failure::File(err)) => err,
            other => FileError::Unreachable {
                what,
                reason: other.to_string(),
            },
        })
    }
}

/// The minion's pillar, compiled by the master for the session's minion.
#[derive(Debug, Clone)]
pub struct LinkPillar {
    requests: Arc<Requests>,
}

impl LinkPillar {
    /// The pillar asked for through `requests`.
    pub fn new(requests: Arc<Requests>) -> Self {
        Self { requests }
    }
}

impl PillarFetch for LinkPillar {
    fn fetch(&self) -> PillarFetching<'_> {
        Box::pin(async move {
            match self.requests.ask(Request::Pillar { pillarenv: None }).await {
                Ok(Answer::Pillar(pillar)) => Ok(pillar),
                Ok(other) => Err(format!(
                    "the master answered with something else: {other:?}"
                )),
                Err(err) => Err(err.to_string()),
            }
        })
    }
}

/// The error for an answer of the wrong kind.
fn unexpected(what: String, answer: &Answer) -> FileError {
    FileError::Unreachable {
        what,
        reason: format!("the master answered with something else: {answer:?}"),
    }
}

impl FileSource for LinkFiles {
    fn read<'a>(
        &'a self,
        saltenv: &'a str,
        path: &'a str,
        offset: u64,
        len: u64,
    ) -> Fetching<'a, Chunk> {
        Box::pin(async move {
            let what = format!("salt://{path}?saltenv={saltenv}");
            let request = Request::FileRead {
                saltenv: saltenv.to_owned(),
                path: path.to_owned(),
                offset,
                len,
            };
            match self.ask(what.clone(), request).await? {
                Answer::Chunk(chunk) => Ok(chunk),
                other => Err(unexpected(what, &other)),
            }
        })
    }

    fn hash<'a>(&'a self, saltenv: &'a str, path: &'a str) -> Fetching<'a, FileHash> {
        Box::pin(async move {
            let what = format!("the hash of salt://{path}?saltenv={saltenv}");
            let request = Request::FileHash {
                saltenv: saltenv.to_owned(),
                path: path.to_owned(),
            };
            match self.ask(what.clone(), request).await? {
                Answer::Hash(hash) => Ok(hash),
                other => Err(unexpected(what, &other)),
            }
        })
    }

    fn list_files<'a>(&'a self, saltenv: &'a str) -> Fetching<'a, Vec<String>> {
        Box::pin(self.names(
            format!("the files of saltenv {saltenv}"),
            Request::FileList {
                saltenv: saltenv.to_owned(),
            },
        ))
    }

    fn list_dirs<'a>(&'a self, saltenv: &'a str) -> Fetching<'a, Vec<String>> {
        Box::pin(self.names(
            format!("the directories of saltenv {saltenv}"),
            Request::DirList {
                saltenv: saltenv.to_owned(),
            },
        ))
    }

    fn envs(&self) -> Fetching<'_, Vec<String>> {
        Box::pin(self.names("the environments".to_owned(), Request::Envs))
    }
}

impl LinkFiles {
    async fn names(&self, what: String, request: Request) -> Result<Vec<String>, FileError> {
        match self.ask(what.clone(), request).await? {
            Answer::Names(names) => Ok(names),
            other => Err(unexpected(what, &other)),
        }
    }
}

/// The minion's file cache (`<cachedir>/files`) over the master's file server.
pub fn cache(requests: Arc<Requests>, cachedir: &std::path::Path) -> Cache {
    Cache::new(Arc::new(LinkFiles::new(requests)), cachedir)
}
