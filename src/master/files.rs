//! The master's answers to minions' requests: its own `file_roots`, and nothing else, served a
//! chunk at a time.

use crate::fileserver::{CHUNK, FileError, FileSource, LocalFiles};
use crate::proto::link::{Answer, Failure, Request};

/// The answer to `request` from `files`. A read gets at most [`CHUNK`] bytes whatever it asks,
/// so that no reply comes near the link's message limit; a listing that would is refused.
pub(super) async fn answer(files: &LocalFiles, request: Request) -> Result<Answer, Failure> {
    let answer = match request {
        Request::FileRead {
            saltenv,
            path,
            offset,
            len,
        } => Answer::Chunk(files.read(&saltenv, &path, offset, len.min(CHUNK)).await?),
        Request::FileHash { saltenv, path } => Answer::Hash(files.hash(&saltenv, &path).await?),
        Request::FileList { saltenv } => Answer::Names(files.list_files(&saltenv).await?),
        Request::DirList { saltenv } => Answer::Names(files.list_dirs(&saltenv).await?),
        Request::Envs => Answer::Names(files.envs().await?),
        Request::Pillar { .. } => {
            return Err(Failure::Malformed {
                reason: "a pillar request is not a file request".to_owned(),
            });
        }
    };
    if let Answer::Names(names) = &answer {
        let size: usize = names.iter().map(|name| name.len() + 5).sum();
        if size > crate::proto::MAX_MESSAGE - 1024 {
            return Err(FileError::Io {
                path: "file_roots".to_owned(),
                reason: format!(
                    "{} names do not fit in one message of the link; split the roots into environments",
                    names.len()
                ),
            }
            .into());
        }
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fileserver::Roots;

    /// Every form of traversal a minion can send is refused by the master before any disk
    /// access outside its roots.
    #[tokio::test]
    async fn traversal_over_the_link_is_refused_in_every_form() {
        let dir = tempfile::tempdir().unwrap();
        let roots = dir.path().join("roots");
        std::fs::create_dir(&roots).unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        std::fs::write(roots.join("ok"), "fine").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), roots.join("link")).unwrap();
        let files = LocalFiles::new(
            Roots::new(vec![("base".into(), vec![roots.clone()])]),
            "sha256",
        );
        for path in [
            "../secret",
            "../../etc/shadow",
            "a/../../secret",
            "/etc/shadow",
            &dir.path().join("secret").display().to_string(),
            "link",
        ] {
            for request in [
                Request::FileRead {
                    saltenv: "base".into(),
                    path: path.into(),
                    offset: 0,
                    len: CHUNK,
                },
                Request::FileHash {
                    saltenv: "base".into(),
                    path: path.into(),
                },
            ] {
                assert_eq!(
                    answer(&files, request).await,
                    Err(Failure::File(FileError::Traversal { path: path.into() })),
                    "{path}"
                );
            }
        }
        let read = Request::FileRead {
            saltenv: "base".into(),
            path: "ok".into(),
            offset: 1,
            len: u64::MAX,
        };
        let Ok(Answer::Chunk(chunk)) = answer(&files, read).await else {
            panic!("served")
        };
        assert_eq!(chunk.data, b"ine");
    }
}
