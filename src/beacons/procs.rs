//! The host's processes as `/proc` shows them, named the way psutil (and so Salt's `ps` beacon)
//! names them: the name the kernel keeps (`/proc/<pid>/stat`, 15 bytes at most), or, when that
//! was cut short, the file name of the first argument that it begins.

use std::collections::HashSet;

use super::Host;

/// The kernel keeps a process name in 16 bytes with the final NUL.
const KERNEL_NAME_LEN: usize = 15;

/// One process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Process {
    /// psutil's name for it.
    pub name: String,
    /// The file name of its first argument, if it has arguments (kernel threads have none).
    pub program: Option<String>,
}

/// Every process running now; one that ends while it is read is left out.
pub(super) fn processes(host: &Host) -> Result<Vec<Process>, String> {
    let proc = host.path("/proc");
    let entries =
        std::fs::read_dir(&proc).map_err(|err| format!("cannot list {}: {err}", proc.display()))?;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let pid = entry.file_name();
        if !pid
            .to_str()
            .is_some_and(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        {
            continue;
        }
        let dir = entry.path();
        let Ok(stat) = std::fs::read(dir.join("stat")) else {
            continue;
        };
        let Some(kernel_name) = stat_name(&stat) else {
            continue;
        };
        let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        // Python's `os.path.basename`: what follows the last `/`.
        let program = first_argument(&cmdline)
            .map(|arg| arg.rsplit('/').next().unwrap_or_default().to_owned());
        let name = match &program {
            Some(program)
                if kernel_name.len() >= KERNEL_NAME_LEN && program.starts_with(&kernel_name) =>
            {
                program.clone()
            }
            _ => kernel_name,
        };
        found.push(Process { name, program });
    }
    Ok(found)
}

/// The names of the processes running now.
pub(super) fn names(host: &Host) -> Result<HashSet<String>, String> {
    Ok(processes(host)?.into_iter().map(|p| p.name).collect())
}

/// The name between the first `(` and the last `)` of `/proc/<pid>/stat` (the name may hold
/// parentheses and spaces itself).
fn stat_name(stat: &[u8]) -> Option<String> {
    let open = stat.iter().position(|&b| b == b'(')?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    (open < close).then(|| String::from_utf8_lossy(&stat[open + 1..close]).into_owned())
}

/// The first argument of `/proc/<pid>/cmdline`: arguments end in NULs, but a process that
/// rewrote its arguments may have joined them with spaces (psutil splits those on spaces).
fn first_argument(cmdline: &[u8]) -> Option<String> {
    if cmdline.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(cmdline);
    let nul_separated = text.ends_with('\0');
    let body = text.strip_suffix(['\0', ' ']).unwrap_or(&text);
    let first = if nul_separated && !body.contains('\0') && body.contains(' ') {
        body.split(' ').next()
    } else if nul_separated {
        body.split('\0').next()
    } else {
        body.split(' ').next()
    };
    first.map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_names_may_hold_parentheses() {
        assert_eq!(
            stat_name(b"42 (a (b) c) S 1 2 3").as_deref(),
            Some("a (b) c")
        );
        assert_eq!(stat_name(b"garbage"), None);
    }

    #[test]
    fn first_arguments_are_split_as_psutil_splits_them() {
        assert_eq!(
            first_argument(b"/bin/sleep\x00300\x00").as_deref(),
            Some("/bin/sleep")
        );
        assert_eq!(
            first_argument(b"nginx: master process\x00").as_deref(),
            Some("nginx:")
        );
        assert_eq!(
            first_argument(b"postgres: writer ").as_deref(),
            Some("postgres:")
        );
        assert_eq!(first_argument(b""), None);
    }

    #[test]
    fn names_cut_by_the_kernel_are_completed_from_the_first_argument() {
        let root = tempfile::tempdir().unwrap();
        let process = |pid: u32, name: &str, cmdline: &[u8]| {
            let dir = root.path().join(format!("proc/{pid}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("stat"), format!("{pid} ({name}) S 1 1 1")).unwrap();
            std::fs::write(dir.join("cmdline"), cmdline).unwrap();
        };
        process(
            10,
            "halite-long-nam",
            b"/opt/halite-long-name-here\x00x\x00",
        );
        process(11, "kworker/0:1", b"");
        process(12, "short", b"/usr/bin/other\x00");
        std::fs::write(root.path().join("proc/uptime"), "1 1").unwrap();
        let mut found = processes(&Host::at(root.path())).unwrap();
        found.sort_by(|a, b| a.name.cmp(&b.name));
        let names: Vec<_> = found.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["halite-long-name-here", "kworker/0:1", "short"]);
        assert_eq!(found[2].program.as_deref(), Some("other"));
    }
}
