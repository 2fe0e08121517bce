//! The `file` module's everyday functions: read and write a file, ask whether a file or a
//! directory exists, hash a file, remove a path; with Salt's returns.

use super::{Call, FunctionError, Outcome, bind};
use crate::event::Value;
use crate::py::value::py_str;
use crate::signature::Signature;

pub(super) const DIRECTORY_EXISTS: Signature = Signature {
    name: "file.directory_exists",
    summary: "Whether PATH is a directory",
    params: &["path"],
    required: 1,
    kwargs: false,
    usage: "file.directory_exists PATH",
};

pub(super) const FILE_EXISTS: Signature = Signature {
    name: "file.file_exists",
    summary: "Whether PATH is a file",
    params: &["path"],
    required: 1,
    kwargs: false,
    usage: "file.file_exists PATH",
};

pub(super) const GET_HASH: Signature = Signature {
    name: "file.get_hash",
    summary: "The hex digest of a file (sha256, or the FORM given)",
    params: &["path", "form", "chunk_size"],
    required: 1,
    kwargs: false,
    usage: "file.get_hash PATH [FORM]",
};

pub(super) const READ: Signature = Signature {
    name: "file.read",
    summary: "A file's contents",
    params: &["path", "binary"],
    required: 1,
    kwargs: false,
    usage: "file.read PATH [binary=True]",
};

pub(super) const REMOVE: Signature = Signature {
    name: "file.remove",
    summary: "Removes a file, link or directory (recursively): True, or False when absent",
    params: &["path"],
    required: 1,
    kwargs: true,
    usage: "file.remove PATH",
};

pub(super) const WRITE: Signature = Signature {
    name: "file.write",
    summary: "Writes each argument as a line, replacing the file's contents",
    params: &[],
    required: 0,
    kwargs: true,
    usage: "file.write PATH [LINE ...]",
};

/// A path argument with `~` expanded as Python's `os.path.expanduser` does.
fn path_arg(value: Option<&Value>) -> String {
    let path = value.map(|v| py_str(v).into_owned()).unwrap_or_default();
    crate::py::os_path::expanduser(&path)
}

/// An I/O failure as Python words it.
fn os_error(err: &std::io::Error, path: &str) -> FunctionError {
    let code = err.raw_os_error().unwrap_or(0);
    FunctionError::Invalid(format!(
        "[Errno {code}] {}: '{path}'",
        nix::errno::Errno::from_raw(code).desc()
    ))
}

/// `file.read path binary=False`.
pub(super) fn read(call: &Call) -> Result<Outcome, FunctionError> {
    let bound = bind(call, &READ)?;
    let path = path_arg(bound.get("path"));
    let data = std::fs::read(&path).map_err(|err| os_error(&err, &path))?;
    if bound.get("binary") == Some(&Value::Boolean(true)) {
        return Ok(Outcome::ok(Value::Binary(data)));
    }
    Ok(Outcome::ok(String::from_utf8_lossy(&data).into_owned()))
}

/// `file.write path *args`: each argument a line; `args=` as a keyword is a list of lines or
/// one line.
pub(super) fn write(call: &Call) -> Result<Outcome, FunctionError> {
    let mut positional = call.args.args.iter();
    let keyword = |key: &str| {
        call.args
            .kwargs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    };
    let Some(path) = positional.next().or_else(|| keyword("path")) else {
        return Err(FunctionError::Arguments {
            fun: call.fun.clone(),
            problem: "write() missing 1 required positional argument: 'path'".to_owned(),
        });
    };
    let path = path_arg(Some(path));
    let lines: Vec<&Value> = match keyword("args") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one) => vec![one],
        None => positional.collect(),
    };
    let text: String = lines
        .iter()
        .map(|line| format!("{}\n", py_str(line)))
        .collect();
    std::fs::write(&path, text).map_err(|err| os_error(&err, &path))?;
    Ok(Outcome::ok(format!(
        "Wrote {} lines to \"{path}\"",
        lines.len()
    )))
}

/// `file.file_exists path`.
pub(super) fn file_exists(call: &Call) -> Result<Outcome, FunctionError> {
    let bound = bind(call, &FILE_EXISTS)?;
    Ok(Outcome::ok(
        std::path::Path::new(&path_arg(bound.get("path"))).is_file(),
    ))
}

/// `file.directory_exists path`.
pub(super) fn directory_exists(call: &Call) -> Result<Outcome, FunctionError> {
    let bound = bind(call, &DIRECTORY_EXISTS)?;
    Ok(Outcome::ok(
        std::path::Path::new(&path_arg(bound.get("path"))).is_dir(),
    ))
}

/// `file.get_hash path form=sha256`.
pub(super) fn get_hash(call: &Call) -> Result<Outcome, FunctionError> {
    let bound = bind(call, &GET_HASH)?;
    let path = path_arg(bound.get("path"));
    let form = bound
        .get("form")
        .map_or_else(|| "sha256".to_owned(), |f| py_str(f).into_owned());
    let data = std::fs::read(&path).map_err(|err| os_error(&err, &path))?;
    crate::config::hexdigest(&data, &form)
        .map(Outcome::ok)
        .ok_or_else(|| FunctionError::Invalid(format!("Invalid hash type: {form}")))
}

/// `file.remove path`: True when removed, False when there was nothing.
pub(super) fn remove(call: &Call) -> Result<Outcome, FunctionError> {
    let bound = bind(call, &REMOVE)?;
    let path = path_arg(bound.get("path"));
    if !path.starts_with('/') {
        return Err(FunctionError::Arguments {
            fun: call.fun.clone(),
            problem: format!("File path must be absolute: {path}"),
        });
    }
    let target = std::path::Path::new(&path);
    let Ok(meta) = std::fs::symlink_metadata(target) else {
        return Ok(Outcome::ok(false));
    };
    let removed = if meta.is_dir() {
        std::fs::remove_dir_all(target)
    } else {
        std::fs::remove_file(target)
    };
    removed.map_err(|err| {
        FunctionError::Invalid(format!(
            "Could not remove '{path}': {}",
            match os_error(&err, &path) {
                FunctionError::Invalid(message) => message,
                other => other.to_string(),
            }
        ))
    })?;
    Ok(Outcome::ok(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salt_yaml::CliArgs;

    fn call(fun: &str, args: &[&str]) -> Call {
        Call {
            fun: fun.to_owned(),
            args: CliArgs {
                args: args.iter().map(|a| Value::from(*a)).collect(),
                ..CliArgs::default()
            },
        }
    }

    /// Returns as Salt 3007.8's `salt-call --local file.*` prints them.
    #[test]
    fn file_functions_return_what_salt_returns() {
        let dir = tempfile::tempdir().unwrap();
        let w = dir.path().join("w").display().to_string();
        let d = dir.path().display().to_string();
        assert_eq!(
            write(&call("file.write", &[&w, "one", "two"])).unwrap().ret,
            Value::from(format!("Wrote 2 lines to \"{w}\""))
        );
        assert_eq!(
            read(&call("file.read", &[&w])).unwrap().ret,
            Value::from("one\ntwo\n")
        );
        assert_eq!(
            file_exists(&call("file.file_exists", &[&w])).unwrap().ret,
            Value::Boolean(true)
        );
        assert_eq!(
            file_exists(&call("file.file_exists", &[&d])).unwrap().ret,
            Value::Boolean(false)
        );
        assert_eq!(
            directory_exists(&call("file.directory_exists", &[&d]))
                .unwrap()
                .ret,
            Value::Boolean(true)
        );
        assert_eq!(
            directory_exists(&call("file.directory_exists", &[&w]))
                .unwrap()
                .ret,
            Value::Boolean(false)
        );
        assert_eq!(
            get_hash(&call("file.get_hash", &[&w])).unwrap().ret,
            Value::from("c3f9c8c283a2b1f2f1896f27a01cbe3cddc0c9d93f752e4639035a0f5b36f6e8")
        );
        assert_eq!(
            get_hash(&call("file.get_hash", &[&w, "md5"])).unwrap().ret,
            Value::from("2094b601daac3d68f5aed51d3c20f7cd")
        );
        assert_eq!(
            remove(&call("file.remove", &[&w])).unwrap().ret,
            Value::Boolean(true)
        );
        assert_eq!(
            remove(&call("file.remove", &[&w])).unwrap().ret,
            Value::Boolean(false)
        );
        assert_eq!(
            remove(&call("file.remove", &["rel"]))
                .unwrap_err()
                .to_string(),
            "Passed invalid arguments to file.remove: File path must be absolute: rel"
        );
        assert_eq!(
            read(&call("file.read", &[&w])).unwrap_err().to_string(),
            format!("[Errno 2] No such file or directory: '{w}'")
        );
    }
}
