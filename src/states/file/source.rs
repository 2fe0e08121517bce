//! Where `file.managed` gets a file from: Salt's `source_list` (the first of several sources
//! that exists), `get_managed` (a local copy of `salt://`, a local path or an HTTP(S) URL,
//! rendered when it is a template) and `get_source_sum` (the hash a download must have).
//!
//! `salt://` goes through the minion's file cache, whose file server refuses any path that
//! leaves its roots; such a path is reported as Salt reports a missing file.

use std::path::PathBuf;

use super::super::StateContext;
use crate::event::Value;
use crate::fileserver::{Cache, FileError};
use crate::py::value::py_str;

/// The hash types Salt knows, with their hex lengths.
const HASHES: &[(&str, usize)] = &[
    ("sha512", 128),
    ("sha384", 96),
    ("sha256", 64),
    ("sha224", 56),
    ("sha1", 40),
    ("md5", 32),
];

/// A hash a file must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Sum {
    pub hash_type: String,
    pub hsum: String,
}

/// A local copy of a source; a temporary one (a download, a rendered template) is removed when
/// this is dropped.
#[derive(Debug)]
pub(super) struct Fetched {
    pub path: PathBuf,
    _temp: Option<tempfile::TempPath>,
}

impl Fetched {
    fn local(path: PathBuf) -> Self {
        Self { path, _temp: None }
    }

    fn temporary(temp: tempfile::TempPath) -> Self {
        Self {
            path: temp.to_path_buf(),
            _temp: Some(temp),
        }
    }
}

/// The URL scheme of `source`, as `urlparse` finds it (empty for a path).
pub(super) fn scheme(source: &str) -> &str {
    match source.split_once("://") {
        Some((scheme, _)) if !scheme.contains('/') => scheme,
        _ => "",
    }
}

/// Salt's `source_list`: a single source as given; of a list, the first that exists (a
/// `salt://` file or directory of its environment, an existing local path, an HTTP(S) URL that
/// answers), each item a URL or a one-entry map `{url: source_hash}`.
pub(super) async fn pick(
    ctx: &StateContext,
    source: &Value,
    source_hash: Option<String>,
    saltenv: &str,
) -> Result<(String, Option<String>), String> {
    let Value::Array(items) = source else {
        return Ok((py_str(source).into_owned(), source_hash));
    };
    for item in items {
        let (url, hash) = match item {
            Value::Map(entries) if entries.len() == 1 => {
                let (url, hash) = &entries[0];
                let hash = Some(hash)
                    .filter(|h| crate::py::value::truthy(h))
                    .map(|h| py_str(h).into_owned());
                (
                    py_str(url).into_owned(),
                    hash.or_else(|| source_hash.clone()),
                )
            }
            Value::Map(_) => continue,
            other => (py_str(other).into_owned(), source_hash.clone()),
        };
        if exists(ctx, &url, saltenv).await {
            return Ok((url, hash));
        }
    }
    Err("none of the specified sources were found".to_owned())
}

async fn exists(ctx: &StateContext, url: &str, saltenv: &str) -> bool {
    match scheme(url) {
        "salt" => {
            let (Some(files), Ok((env, path))) = (&ctx.files, Cache::locate(url, saltenv)) else {
                return false;
            };
            let listed = |list: Result<Vec<String>, FileError>| {
                list.is_ok_and(|names| names.contains(&path))
            };
            listed(files.source().list_files(&env).await)
                || listed(files.source().list_dirs(&env).await)
        }
        "file" => std::path::Path::new(&url["file://".len()..]).exists(),
        "http" | "https" => match http_client() {
            Ok(client) => client
                .head(url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success()),
            Err(_) => false,
        },
        _ => url.starts_with('/') && std::path::Path::new(url).exists(),
    }
}

/// Salt's `get_source_sum` for a `source_hash` given as `type=hex` or bare hex; a hash file
/// (path or URL) is read for the line naming the file or, failing that, its only hash.
pub(super) async fn source_sum(
    ctx: &StateContext,
    name: &str,
    source: &str,
    source_hash: &str,
    saltenv: &str,
) -> Result<Sum, String> {
    let invalid = || {
        let mut types: Vec<(usize, &str)> = HASHES.iter().map(|(t, l)| (*l, *t)).collect();
        types.sort_unstable();
        format!(
            "Source hash {source_hash} format is invalid. The supported formats are: 1) a hash, 2) an expression in the format <hash_type>=<hash>, or 3) either a path to a local file containing hashes, or a URI of a remote hash file. Supported protocols for remote hash files are: salt, file, http, https, ftp, swift, s3. The hash may also not be of a valid length, the following are supported hash types and lengths: {}.",
            types
                .iter()
                .map(|(len, t)| format!("{t} ({len})"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    if source_hash.starts_with('/') || !scheme(source_hash).is_empty() {
        let hashes = match scheme(source_hash) {
            "" | "salt" | "file" | "http" | "https" => {
                let fetched = fetch(ctx, source_hash, saltenv)
                    .await
                    .map_err(|_| format!("Source hash file {source_hash} not found"))?;
                std::fs::read(&fetched.path)
                    .map_err(|_| format!("Source hash file {source_hash} not found"))?
            }
            _ => return Err(invalid()),
        };
        return extract_hash(&String::from_utf8_lossy(&hashes), name, source).ok_or_else(invalid);
    }
    let (hash_type, hsum) = match source_hash.split_once('=') {
        Some((t, h)) => (t.trim().to_owned(), h.trim().to_owned()),
        None => {
            if source_hash.is_empty() || !source_hash.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(invalid());
            }
            let hash_type = HASHES
                .iter()
                .find(|(_, len)| *len == source_hash.len())
                .ok_or_else(invalid)?
                .0;
            (hash_type.to_owned(), source_hash.to_owned())
        }
    };
    let Some((_, wanted)) = HASHES.iter().find(|(t, _)| *t == hash_type) else {
        return Err(format!(
            "Invalid hash type '{hash_type}'. Supported hash types are: {}. Either remove the hash type and simply use '{hsum}' as the source_hash, or change the hash type to a supported type.",
            HASHES
                .iter()
                .map(|(t, _)| *t)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    match HASHES.iter().find(|(_, len)| *len == hsum.len()) {
        None => Err(invalid()),
        Some((other, len)) if len != wanted => Err(format!(
            "Invalid length ({len}) for hash type '{hash_type}'. Either remove the hash type and simply use '{hsum}' as the source_hash, or change the hash type to '{other}'"
        )),
        Some(_) => Ok(Sum {
            hash_type,
            hsum: hsum.to_lowercase(),
        }),
    }
}

/// A hash from a hash file: on the line naming the file (`name`'s or `source`'s base name),
/// else the file's only hash; its type from its length.
fn extract_hash(text: &str, name: &str, source: &str) -> Option<Sum> {
    let base = |path: &str| path.rsplit('/').next().unwrap_or(path).to_owned();
    let hashes_on = |line: &str| -> Vec<String> {
        line.split(|c: char| !c.is_ascii_hexdigit())
            .filter(|word| HASHES.iter().any(|(_, len)| *len == word.len()))
            .map(str::to_owned)
            .collect()
    };
    let named = [base(name), base(source)];
    let found = text
        .lines()
        .find(|line| {
            named
                .iter()
                .any(|n| !n.is_empty() && line.contains(n.as_str()))
        })
        .and_then(|line| hashes_on(line).into_iter().next())
        .or_else(|| {
            let all: Vec<String> = text.lines().flat_map(hashes_on).collect();
            (all.len() == 1).then(|| all[0].clone())
        })?;
    let hash_type = HASHES.iter().find(|(_, len)| *len == found.len())?.0;
    Some(Sum {
        hash_type: hash_type.to_owned(),
        hsum: found.to_lowercase(),
    })
}

/// A local copy of `source`: the cache's for `salt://`, the path itself for a local file, a
/// download for HTTP(S). The error is the comment Salt fails the state with.
pub(super) async fn fetch(
    ctx: &StateContext,
    source: &str,
    saltenv: &str,
) -> Result<Fetched, String> {
    match scheme(source) {
        "salt" => {
            let not_found = || format!("Source file {source} not found in saltenv '{saltenv}'");
            let Some(files) = &ctx.files else {
                return Err(not_found());
            };
            match files.cache_file(source, saltenv).await {
                Ok(path) => Ok(Fetched::local(path)),
                Err(
                    FileError::NotFound { .. }
                    | FileError::Traversal { .. }
                    | FileError::UnknownEnv(_)
                    | FileError::BadUrl { .. },
                ) => Err(not_found()),
                Err(err) => Err(format!("Failed to cache {source}: {err}")),
            }
        }
        "http" | "https" => download(source).await.map(Fetched::temporary),
        "file" => local(&source["file://".len()..]),
        "" => local(source),
        other => Err(format!(
            "Unable to manage file: halite does not fetch {other}:// sources (use salt://, a local path or http(s)://)"
        )),
    }
}

fn local(path: &str) -> Result<Fetched, String> {
    let path = PathBuf::from(path);
    if path.exists() {
        Ok(Fetched::local(path))
    } else {
        Err(format!(
            "Local file source {} does not exist",
            path.display()
        ))
    }
}

/// One HTTP client for the process.
fn http_client() -> Result<&'static reqwest::Client, String> {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    if let Some(client) = CLIENT.get() {
        return Ok(client);
    }
    // The link configures its own provider per connection; HTTPS here uses the process default.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .user_agent(concat!("halite/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(20))
        .build()
        .map_err(|err| format!("cannot set up the HTTP client: {err}"))?;
    Ok(CLIENT.get_or_init(|| client))
}

/// Downloads `url` into a temporary file, streamed.
async fn download(url: &str) -> Result<tempfile::TempPath, String> {
    use std::io::Write;
    let failed = |err: &dyn std::fmt::Display| format!("Failed to cache {url}: {err}");
    let mut response = http_client()?
        .get(url)
        .send()
        .await
        .map_err(|err| failed(&err))?;
    if !response.status().is_success() {
        return Err(failed(&format!("HTTP {}", response.status())));
    }
    let mut temp = tempfile::NamedTempFile::new().map_err(|err| failed(&err))?;
    while let Some(chunk) = response.chunk().await.map_err(|err| failed(&err))? {
        temp.write_all(&chunk).map_err(|err| failed(&err))?;
    }
    Ok(temp.into_temp_path())
}

/// `text` as a temporary file (a rendered template).
pub(super) fn temporary(text: &[u8]) -> Result<Fetched, String> {
    use std::io::Write;
    let mut temp = tempfile::NamedTempFile::new().map_err(|err| err.to_string())?;
    temp.write_all(text).map_err(|err| err.to_string())?;
    Ok(Fetched::temporary(temp.into_temp_path()))
}

/// The hash of a local file, with Salt's default type when none is asked.
pub(super) fn file_hash(path: &std::path::Path, hash_type: &str) -> Option<String> {
    crate::config::hexdigest(&std::fs::read(path).ok()?, hash_type)
}
