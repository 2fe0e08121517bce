//! `cp.*`: files from the master's file server (`salt://`) onto the minion, through its file
//! cache, with Salt's returns: a path, `''` or `False` when the master has no such file, lists
//! for directories.
//!
//! Different from Salt, on purpose: a path that leaves the file roots (`..`, an absolute path, a
//! symlink out) is an error naming it, where Salt answers as if the file were missing; `template=`
//! is refused (halite does not render file names), and `gzip=` is accepted and ignored.

use std::path::{Path, PathBuf};

use super::{Call, Context, FunctionError, Outcome, bind};
use crate::event::Value;
use crate::fileserver::{Cache, FileError, FileHash, SaltUrl, local_hash};
use crate::signature::{Bound, Signature, text, truthy};

/// `cp.get_file`.
pub const GET_FILE: Signature = Signature {
    name: "cp.get_file",
    summary: "Copy a file from the master (salt://) to a path on the minion; '' when the master has no such file",
    params: &["path", "dest", "saltenv", "makedirs", "template", "gzip"],
    required: 2,
    kwargs: true,
    usage: "cp.get_file salt://PATH DEST [saltenv=ENV] [makedirs=True]",
};

/// `cp.get_dir`.
pub const GET_DIR: Signature = Signature {
    name: "cp.get_dir",
    summary: "Copy a directory from the master (salt://) under a path on the minion",
    params: &["path", "dest", "saltenv", "template", "gzip"],
    required: 2,
    kwargs: true,
    usage: "cp.get_dir salt://DIR DEST [saltenv=ENV]",
};

/// `cp.cache_file`.
pub const CACHE_FILE: Signature = Signature {
    name: "cp.cache_file",
    summary: "Fetch a file from the master into the minion's file cache and return its path; False when missing",
    params: &["path", "saltenv", "source_hash", "verify_ssl", "use_etag"],
    required: 1,
    kwargs: false,
    usage: "cp.cache_file salt://PATH [saltenv=ENV]",
};

/// `cp.cache_files`.
pub const CACHE_FILES: Signature = Signature {
    name: "cp.cache_files",
    summary: "cp.cache_file for each of a list (or comma-separated string) of files",
    params: &["paths", "saltenv"],
    required: 1,
    kwargs: false,
    usage: "cp.cache_files salt://A,salt://B [saltenv=ENV]",
};

/// `cp.envs`.
pub const ENVS: Signature = Signature {
    name: "cp.envs",
    summary: "The environments of the master's file server",
    params: &[],
    required: 0,
    kwargs: false,
    usage: "cp.envs",
};

/// `cp.get_file_str`.
pub const GET_FILE_STR: Signature = Signature {
    name: "cp.get_file_str",
    summary: "The contents of a file from the master; False when missing",
    params: &["path", "saltenv"],
    required: 1,
    kwargs: false,
    usage: "cp.get_file_str salt://PATH [saltenv=ENV]",
};

/// `cp.hash_file`.
pub const HASH_FILE: Signature = Signature {
    name: "cp.hash_file",
    summary: "The hash of a file on the master (salt://) or on the minion (an absolute path); '' when missing",
    params: &["path", "saltenv"],
    required: 1,
    kwargs: false,
    usage: "cp.hash_file salt://PATH [saltenv=ENV]",
};

/// `cp.list_master`.
pub const LIST_MASTER: Signature = Signature {
    name: "cp.list_master",
    summary: "The files of the master's file server in an environment, optionally under a prefix",
    params: &["saltenv", "prefix"],
    required: 0,
    kwargs: false,
    usage: "cp.list_master [saltenv=ENV] [prefix=PREFIX]",
};

/// `cp.list_master_dirs`.
pub const LIST_MASTER_DIRS: Signature = Signature {
    name: "cp.list_master_dirs",
    summary: "The directories of the master's file server in an environment, optionally under a prefix",
    params: &["saltenv", "prefix"],
    required: 0,
    kwargs: false,
    usage: "cp.list_master_dirs [saltenv=ENV] [prefix=PREFIX]",
};

/// The minion's file cache, or why there is none.
fn files(ctx: &Context) -> Result<&Cache, FunctionError> {
    ctx.files.as_ref().ok_or(FunctionError::Invalid(
        "no file server here: cp.* functions run on a minion or with salt-call".to_owned(),
    ))
}

/// The `saltenv` argument, else the minion's `saltenv` option, else `base`, as Salt picks it.
fn saltenv(bound: &Bound, ctx: &Context) -> Result<String, FunctionError> {
    if let Some(env) = bound.get("saltenv").filter(|env| truthy(env)) {
        return Ok(text(env));
    }
    Ok(ctx
        .config
        .get_str("saltenv")?
        .filter(|env| !env.is_empty())
        .unwrap_or("base")
        .to_owned())
}

fn argument(bound: &Bound, name: &str) -> String {
    bound.get(name).map(text).unwrap_or_default()
}

/// Whether an answer means the file is not there (Salt's `''`/`False`), not a failure.
fn missing(err: &FileError) -> bool {
    matches!(err, FileError::NotFound { .. } | FileError::UnknownEnv(_))
}

fn hash_value(hash: &FileHash) -> Value {
    Value::Map(vec![
        (
            Value::from("hash_type"),
            Value::from(hash.hash_type.as_str()),
        ),
        (Value::from("hsum"), Value::from(hash.hsum.as_str())),
    ])
}

/// The master's hash of a `salt://` URL, `None` when it has no such file.
async fn master_hash(
    cache: &Cache,
    url: &str,
    saltenv: &str,
) -> Result<Option<(String, String, FileHash)>, FunctionError> {
    let (saltenv, path) = Cache::locate(url, saltenv)?;
    match cache.source().hash(&saltenv, &path).await {
        Ok(hash) => Ok(Some((saltenv, path, hash))),
        Err(err) if missing(&err) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// `cp.hash_file`: `{hash_type, hsum}` from the master, `{hsum, hash_type}` for a local file
/// (Salt's two orders), `''` when missing.
pub async fn hash_file(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    let bound = bind(call, &HASH_FILE)?;
    let path = argument(&bound, "path");
    let env = saltenv(&bound, ctx)?;
    if !path.starts_with("salt://") && Path::new(&path).is_absolute() {
        let hash_type = ctx.config.hash_type()?;
        return Ok(Outcome::ok(match local_hash(Path::new(&path), hash_type) {
            Some(hsum) => Value::Map(vec![
                (Value::from("hsum"), Value::from(hsum)),
                (Value::from("hash_type"), Value::from(hash_type)),
            ]),
            None => Value::from(""),
        }));
    }
    Ok(Outcome::ok(
        match master_hash(files(ctx)?, &path, &env).await? {
            Some((_, _, hash)) => hash_value(&hash),
            None => Value::from(""),
        },
    ))
}

/// One file into the cache: its path, or `None` when the master has no such file (logged as
/// Salt's `cp.cache_file` logs it when `log`). A local absolute path is its own copy.
async fn cache_one(
    ctx: &Context,
    url: &str,
    saltenv: &str,
    log: bool,
) -> Result<Option<PathBuf>, FunctionError> {
    if !url.contains("://") && Path::new(url).is_absolute() {
        return Ok(Path::new(url).is_file().then(|| PathBuf::from(url)));
    }
    match files(ctx)?.cache_file(url, saltenv).await {
        Ok(path) => Ok(Some(path)),
        Err(err) if missing(&err) => {
            if log {
                let (saltenv, path) = Cache::locate(url, saltenv)?;
                tracing::error!("Unable to cache file 'salt://{path}' from saltenv '{saltenv}'.");
            }
            Ok(None)
        }
        Err(err) => Err(err.into()),
    }
}

fn path_or_false(path: Option<PathBuf>) -> Value {
    match path {
        Some(path) => Value::from(path.display().to_string()),
        None => Value::Boolean(false),
    }
}

/// `cp.cache_file`: the cached path, `False` when the master has no such file.
pub async fn cache_file(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    let bound = bind(call, &CACHE_FILE)?;
    let env = saltenv(&bound, ctx)?;
    let path = cache_one(ctx, &argument(&bound, "path"), &env, true).await?;
    Ok(Outcome::ok(path_or_false(path)))
}

/// `cp.cache_files`: `cp.cache_file` of each, in order.
pub async fn cache_files(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    let bound = bind(call, &CACHE_FILES)?;
    let env = saltenv(&bound, ctx)?;
    let paths: Vec<String> = match bound.get("paths") {
        Some(Value::Array(items)) => items.iter().map(text).collect(),
        Some(one) => text(one).split(',').map(str::to_owned).collect(),
        None => Vec::new(),
    };
    let mut cached = Vec::new();
    for path in paths {
        cached.push(path_or_false(cache_one(ctx, &path, &env, false).await?));
    }
    Ok(Outcome::ok(Value::Array(cached)))
}

/// `cp.get_file_str`: the file's text, `False` when missing.
pub async fn get_file_str(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    let bound = bind(call, &GET_FILE_STR)?;
    let env = saltenv(&bound, ctx)?;
    Ok(Outcome::ok(
        match cache_one(ctx, &argument(&bound, "path"), &env, true).await? {
            Some(path) => match std::fs::read(&path) {
                Ok(bytes) => Value::from(String::from_utf8_lossy(&bytes).into_owned()),
                Err(_) => Value::Boolean(false),
            },
            None => Value::Boolean(false),
        },
    ))
}

/// Copies `url` to `dest` as Salt's file client does: a directory (or a name ending in `/`)
/// takes the file's own name; a missing parent is made only with `makedirs`, else `False`;
/// `''` when the master has no such file. An empty `dest` means the file cache.
async fn copy(
    ctx: &Context,
    url: &str,
    dest: &str,
    saltenv: &str,
    makedirs: bool,
) -> Result<Value, FunctionError> {
    let cache = files(ctx)?;
    let Some((saltenv, path, hash)) = master_hash(cache, url, saltenv).await? else {
        return Ok(Value::from(""));
    };
    let dest = if dest.is_empty() {
        cache.cached_path(&saltenv, &path)?
    } else if dest.ends_with('/') || Path::new(dest).is_dir() {
        let name = path.rsplit('/').next().unwrap_or(&path);
        Path::new(dest).join(name)
    } else {
        PathBuf::from(dest)
    };
    let parent = dest.parent().unwrap_or(Path::new("."));
    if !parent.as_os_str().is_empty() && !parent.is_dir() {
        if !makedirs {
            return Ok(Value::Boolean(false));
        }
        std::fs::create_dir_all(parent).map_err(|err| FileError::Io {
            path: parent.display().to_string(),
            reason: err.to_string(),
        })?;
    }
    cache.fetch_to(&saltenv, &path, &hash, &dest).await?;
    Ok(Value::from(dest.display().to_string()))
}

fn refuse_template(bound: &Bound, fun: &str) -> Result<(), FunctionError> {
    match bound.get("template").filter(|template| truthy(template)) {
        Some(_) => Err(FunctionError::Invalid(format!(
            "{fun}: template= is not supported by halite (it does not render file names); pass the names rendered"
        ))),
        None => Ok(()),
    }
}

/// `cp.get_file`: the destination's path; `''` when the master has no such file, `False` when
/// the destination's directory is missing and `makedirs` is not set.
pub async fn get_file(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    let bound = bind(call, &GET_FILE)?;
    refuse_template(&bound, GET_FILE.name)?;
    let env = saltenv(&bound, ctx)?;
    let makedirs = bound.get("makedirs").is_some_and(truthy);
    let copied = copy(
        ctx,
        &argument(&bound, "path"),
        &argument(&bound, "dest"),
        &env,
        makedirs,
    )
    .await?;
    Ok(Outcome::ok(copied))
}

/// `cp.get_dir`: every file under the directory copied to `dest/<dir>/…` (the directory's own
/// name kept), empty directories made, the paths listed; `[]` when there is nothing.
pub async fn get_dir(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    let bound = bind(call, &GET_DIR)?;
    refuse_template(&bound, GET_DIR.name)?;
    let env = saltenv(&bound, ctx)?;
    let url = SaltUrl::parse(&argument(&bound, "path"))?;
    let env = url.saltenv.unwrap_or(env);
    let dir = url.path;
    let dest = argument(&bound, "dest");
    let cache = files(ctx)?;
    let (files, dirs) = match (
        cache.source().list_files(&env).await,
        cache.source().list_dirs(&env).await,
    ) {
        (Ok(files), Ok(dirs)) => (files, dirs),
        (Err(err), _) | (_, Err(err)) if missing(&err) => {
            return Ok(Outcome::ok(Value::Array(Vec::new())));
        }
        (Err(err), _) | (_, Err(err)) => return Err(err.into()),
    };
    let inside = format!("{dir}/");
    // The directory's parent is left out of the names on the minion.
    let parent = dir.rsplit_once('/').map_or("", |(parent, _)| parent);
    let relative = |name: &str| format!("{dest}/{}", name[parent.len()..].trim_start_matches('/'));
    let mut copied = Vec::new();
    for name in files.iter().filter(|name| name.starts_with(&inside)) {
        let url = format!("salt://{name}?saltenv={env}");
        copied.push(copy(ctx, &url, &relative(name), &env, true).await?);
    }
    let empty = dirs.iter().filter(|name| {
        let below = format!("{name}/");
        name.starts_with(&inside)
            && !files
                .iter()
                .chain(&dirs)
                .any(|other| other.starts_with(&below))
    });
    for name in empty {
        let made = relative(name);
        std::fs::create_dir_all(&made).map_err(|err| FileError::Io {
            path: made.clone(),
            reason: err.to_string(),
        })?;
        copied.push(Value::from(made));
    }
    Ok(Outcome::ok(Value::Array(copied)))
}

/// The names of an environment under `prefix`; `[]` for an environment the master lacks.
async fn listing(
    call: &Call,
    ctx: &Context,
    signature: &Signature,
    dirs: bool,
) -> Result<Outcome, FunctionError> {
    let bound = bind(call, signature)?;
    let env = saltenv(&bound, ctx)?;
    let prefix = argument(&bound, "prefix");
    let source = files(ctx)?.source();
    let names = if dirs {
        source.list_dirs(&env).await
    } else {
        source.list_files(&env).await
    };
    let names = match names {
        Ok(names) => names,
        Err(err) if missing(&err) => Vec::new(),
        Err(err) => return Err(err.into()),
    };
    Ok(Outcome::ok(Value::Array(
        names
            .into_iter()
            .filter(|name| name.starts_with(&prefix))
            .map(Value::from)
            .collect(),
    )))
}

/// `cp.list_master`.
pub async fn list_master(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    listing(call, ctx, &LIST_MASTER, false).await
}

/// `cp.list_master_dirs`.
pub async fn list_master_dirs(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    listing(call, ctx, &LIST_MASTER_DIRS, true).await
}

/// `cp.envs`.
pub async fn envs(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    bind(call, &ENVS)?;
    let envs = files(ctx)?.source().envs().await?;
    Ok(Outcome::ok(Value::Array(
        envs.into_iter().map(Value::from).collect(),
    )))
}
