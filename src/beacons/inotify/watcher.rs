//! The kernel's side of the `inotify` beacon: one inotify instance, its watches and what each
//! is for, the events read and turned into Salt's, and each watched path followed by name
//! from its directory, so that it is watched again whenever it comes to name another file.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use inotify::{EventOwned, EventStream, Inotify, WatchDescriptor, WatchMask};

use super::options::{Config, Spec, change_name};
use crate::event::Value;

/// What a watched path's directory is watched for: the path's name created, replaced,
/// removed, and the directory itself going.
const PARENT_MASK: u32 = libc::IN_CREATE
    | libc::IN_MOVED_TO
    | libc::IN_DELETE
    | libc::IN_MOVED_FROM
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF;
/// The events by which a watch learns its own inode is gone.
const SELF_EVENTS: u32 = libc::IN_DELETE_SELF | libc::IN_MOVE_SELF | libc::IN_IGNORED;
/// Bytes read from the kernel at once (each event is 16 bytes and its name).
const READ_BUFFER: usize = 64 * 1024;

/// One check's work: what it reports and what it has to say.
#[derive(Default)]
pub(super) struct Batch {
    out: Vec<Value>,
    problems: Vec<String>,
    /// Paths (by index) that reported an event, for `oneshot`.
    reported: HashSet<usize>,
    /// Directories moved out of a watched directory, until their arrival is read.
    moves: Vec<Move>,
}

struct Move {
    cookie: u32,
    root: usize,
    from: PathBuf,
}

impl Batch {
    /// A check's batch, after the events a previous check held back.
    pub(super) fn new(held: Vec<Value>) -> Self {
        Self {
            out: held,
            ..Self::default()
        }
    }

    /// The events to fire and the problems to say.
    pub(super) fn into_parts(self) -> (Vec<Value>, Vec<String>) {
        (self.out, self.problems)
    }

    fn report(&mut self, index: usize, spec: &Spec, tag: &Path, path: &Path, change: String) {
        if spec.excluded(path) || (spec.oneshot && !self.reported.insert(index)) {
            return;
        }
        self.out.push(Value::Map(vec![
            ("tag".into(), tag.to_string_lossy().as_ref().into()),
            ("path".into(), path.to_string_lossy().as_ref().into()),
            ("change".into(), change.into()),
        ]));
    }
}

/// An event as read from the kernel (or made up for what a new directory already holds).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Raw {
    wd: i32,
    mask: u32,
    cookie: u32,
    name: Option<OsString>,
}

impl From<EventOwned> for Raw {
    fn from(event: EventOwned) -> Self {
        Raw {
            wd: event.wd.get_watch_descriptor_id(),
            mask: event.mask.bits(),
            cookie: event.cookie,
            name: event.name,
        }
    }
}

/// The inotify instance and what each of its watches is for.
pub(super) struct Watcher {
    /// The instance's events, read by `wake` as they come and by checks without waiting.
    stream: EventStream<Vec<u8>>,
    /// Read by `wake`, for the next check.
    early: Vec<Raw>,
    /// Reading failed in `wake`: said by the next check.
    failed: Option<io::Error>,
    watches: HashMap<i32, Watch>,
    roots: Vec<Root>,
}

/// One kernel watch (one inode), which may serve several paths.
struct Watch {
    wd: WatchDescriptor,
    roles: Vec<Role>,
}

#[derive(Debug, Clone, PartialEq)]
struct Role {
    /// The configured path (its index) this watch serves.
    root: usize,
    kind: Kind,
    /// Where the inode is, as events name it.
    path: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// The configured path itself.
    Root,
    /// A directory below it (`recurse`, `auto_add`).
    Tree,
    /// Its directory, watched for its name.
    Parent,
}

/// What is known of one configured path.
#[derive(Default)]
struct Root {
    /// The file it names while watched: device and inode.
    identity: Option<(u64, u64)>,
    direct: Option<i32>,
    parent: Option<i32>,
    /// It was found missing since it was last watched: its appearance is news.
    was_absent: bool,
    /// The last word on its going was a move (else a deletion).
    moved: bool,
    /// The standing problem said last.
    said: Option<String>,
}

impl Watcher {
    /// A new inotify instance, registered with the runtime (the minion's: checks run on its
    /// blocking pool).
    pub(super) fn new(roots: usize) -> Result<Self, String> {
        tokio::runtime::Handle::try_current()
            .map_err(|err| format!("cannot start inotify outside the runtime: {err}"))?;
        let stream = Inotify::init()
            .and_then(|inotify| inotify.into_event_stream(vec![0; READ_BUFFER]))
            .map_err(|err| format!("cannot start inotify: {err}"))?;
        Ok(Self {
            stream,
            early: Vec::new(),
            failed: None,
            watches: HashMap::new(),
            roots: (0..roots).map(|_| Root::default()).collect(),
        })
    }

    /// One check: every event queued read and handled, without waiting, then each path
    /// compared with what is watched; a problem that stands is said once.
    pub(super) fn check(&mut self, config: &Config, batch: &mut Batch) {
        self.read(&config.specs, config.coalesce, batch);
        for (index, spec) in config.specs.iter().enumerate() {
            let standing = self.resync(index, spec, batch);
            let said = &mut self.roots[index].said;
            if standing.is_some() && *said != standing {
                batch.problems.extend(standing.clone());
            }
            *said = standing;
        }
    }

    /// Whether the next check has something to read or say already.
    pub(super) fn has_news(&self) -> bool {
        !self.early.is_empty() || self.failed.is_some()
    }

    /// Resolves when the kernel has an event (kept for the next check), `settle` later.
    pub(super) async fn wait(&mut self, settle: Duration) {
        // `next` loses nothing when the wait is dropped.
        match self.stream.next().await {
            Some(Ok(event)) => {
                self.early.push(Raw::from(event));
                tokio::time::sleep(settle).await;
            }
            Some(Err(err)) => {
                self.failed = Some(err);
                // Said by the next check; a failure that lasts is not retried in a loop.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            None => std::future::pending().await,
        }
    }

    /// Reads and handles every event queued, without waiting.
    fn read(&mut self, specs: &[Spec], coalesce: bool, batch: &mut Batch) {
        let mut read = std::mem::take(&mut self.early);
        if let Some(err) = self.failed.take() {
            batch
                .problems
                .push(format!("cannot read inotify events: {err}"));
        }
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            match Pin::new(&mut self.stream).poll_next(&mut cx) {
                Poll::Ready(Some(Ok(event))) => read.push(Raw::from(event)),
                Poll::Ready(Some(Err(err))) => {
                    batch
                        .problems
                        .push(format!("cannot read inotify events: {err}"));
                    break;
                }
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
        let mut queue = VecDeque::new();
        let mut seen = HashSet::new();
        let mut last = None;
        for raw in read {
            // The kernel merges an event into the same event still queued; read as soon as
            // they come, they are merged here as one later read would find them (an `echo >`
            // truncates and writes: one IN_MODIFY).
            if last.as_ref() == Some(&raw) {
                continue;
            }
            last = Some(raw.clone());
            // Salt's coalescing: the unique events of one read.
            if !coalesce || seen.insert(raw.clone()) {
                queue.push_back(raw);
            }
        }
        while let Some(raw) = queue.pop_front() {
            self.handle(&raw, specs, batch, &mut queue);
        }
        // Moved out of every watched directory: their watches would report wrong paths.
        for gone in std::mem::take(&mut batch.moves) {
            self.drop_roles(|role| {
                role.root == gone.root
                    && role.kind == Kind::Tree
                    && role.path.starts_with(&gone.from)
            });
        }
    }

    fn handle(&mut self, raw: &Raw, specs: &[Spec], batch: &mut Batch, queue: &mut VecDeque<Raw>) {
        if raw.mask & libc::IN_Q_OVERFLOW != 0 {
            batch.problems.push(
                "the kernel's queue of inotify events overflowed (fs.inotify.max_queued_events): changes were lost".into(),
            );
            return;
        }
        let Some(roles) = self.watches.get(&raw.wd).map(|watch| watch.roles.clone()) else {
            return;
        };
        let mut tags: Vec<PathBuf> = Vec::new();
        for role in roles {
            let index = role.root;
            let spec = &specs[index];
            if role.kind == Kind::Parent {
                let own = raw.name.as_deref() == spec.path.file_name();
                if own && raw.mask & (libc::IN_MOVED_FROM | libc::IN_DELETE) != 0 {
                    self.roots[index].moved = raw.mask & libc::IN_MOVED_FROM != 0;
                }
                if raw.mask & libc::IN_MOVE_SELF != 0 {
                    // The directory is elsewhere now: watched again where the path is.
                    self.roots[index].moved = true;
                    self.roots[index].parent = None;
                    self.drop_roles(|other| *other == role);
                }
                continue;
            }
            if role.kind == Kind::Root && raw.mask & SELF_EVENTS != 0 {
                // The path's own fate is told by `resync`, at the end of the check.
                if raw.mask & (libc::IN_MOVE_SELF | libc::IN_DELETE_SELF) != 0 {
                    self.roots[index].moved = raw.mask & libc::IN_MOVE_SELF != 0;
                }
                continue;
            }
            let path = match &raw.name {
                Some(name) => role.path.join(name),
                None => role.path.clone(),
            };
            if raw.mask & spec.reported() != 0 && !tags.contains(&role.path) {
                tags.push(role.path.clone());
                batch.report(index, spec, &role.path, &path, change_name(raw.mask));
            }
            if raw.mask & libc::IN_ISDIR != 0 && raw.name.is_some() {
                self.tree_changed(raw, &role, spec, path, batch, queue);
            }
        }
        if raw.mask & libc::IN_IGNORED != 0 {
            // The kernel dropped the watch.
            if let Some(watch) = self.watches.remove(&raw.wd) {
                for role in watch.roles {
                    let root = &mut self.roots[role.root];
                    match role.kind {
                        Kind::Root if root.direct == Some(raw.wd) => root.direct = None,
                        Kind::Parent if root.parent == Some(raw.wd) => root.parent = None,
                        _ => {}
                    }
                }
            }
        }
    }

    /// A directory created, moved in or moved out below a watched directory.
    fn tree_changed(
        &mut self,
        raw: &Raw,
        role: &Role,
        spec: &Spec,
        dir: PathBuf,
        batch: &mut Batch,
        queue: &mut VecDeque<Raw>,
    ) {
        let index = role.root;
        if raw.mask & libc::IN_MOVED_FROM != 0 && (spec.recurse || spec.auto_add) {
            batch.moves.push(Move {
                cookie: raw.cookie,
                root: index,
                from: dir,
            });
        } else if raw.mask & libc::IN_MOVED_TO != 0 {
            let known = batch
                .moves
                .iter()
                .position(|moved| moved.cookie == raw.cookie && moved.root == index);
            if let Some(known) = known {
                let from = batch.moves.swap_remove(known).from;
                self.rename(index, &from, &dir);
            } else if spec.auto_add && !spec.excluded(&dir) {
                // From outside: watched with all it holds, as Salt's.
                self.watch_tree(index, spec, &dir, batch);
            }
        } else if raw.mask & libc::IN_CREATE != 0 && spec.auto_add && !spec.excluded(&dir) {
            let role = Role {
                root: index,
                kind: Kind::Tree,
                path: dir.clone(),
            };
            // A link put in its place meanwhile is not followed (nor watched through).
            let wd = match self.add(&dir, role, spec.watch_mask() | libc::IN_DONT_FOLLOW) {
                Ok(wd) => wd,
                Err(err) => return batch.problems.push(watch_error(&dir, &err)),
            };
            // What it holds was made before the watch: reported as created, as Salt's
            // (its directories are then watched in turn).
            let Ok(entries) = std::fs::read_dir(&dir) else {
                return;
            };
            for entry in entries.flatten() {
                let inner = entry.path();
                if self.is_watched(index, &inner) {
                    continue;
                }
                // Not following links: a link to a directory above would be walked forever.
                let mask = match entry.file_type() {
                    Ok(kind) if kind.is_dir() => libc::IN_CREATE | libc::IN_ISDIR,
                    Ok(kind) if kind.is_file() || kind.is_symlink() => libc::IN_CREATE,
                    _ => continue,
                };
                queue.push_back(Raw {
                    wd,
                    mask,
                    cookie: 0,
                    name: Some(entry.file_name()),
                });
            }
        }
    }

    /// Renames the watched directories of root `index` moved from `from` to `to`.
    fn rename(&mut self, index: usize, from: &Path, to: &Path) {
        for watch in self.watches.values_mut() {
            for role in &mut watch.roles {
                if role.root == index && role.kind == Kind::Tree {
                    match role.path.strip_prefix(from) {
                        Ok(rest) if rest.as_os_str().is_empty() => role.path = to.to_owned(),
                        Ok(rest) => role.path = to.join(rest),
                        Err(_) => {}
                    }
                }
            }
        }
    }

    fn is_watched(&self, index: usize, path: &Path) -> bool {
        self.watches
            .values()
            .flat_map(|watch| &watch.roles)
            .any(|role| role.root == index && role.kind != Kind::Parent && role.path == path)
    }

    /// Compares what the path names now with what is watched, watches it again where it
    /// changed, reports its appearance, replacement or removal, and returns the problem that
    /// stands in the way of watching it.
    fn resync(&mut self, index: usize, spec: &Spec, batch: &mut Batch) -> Option<String> {
        let found = match std::fs::metadata(&spec.path) {
            Ok(meta) => Some(meta),
            Err(err) if missing(&err) => None,
            Err(err) => return Some(format!("cannot watch {}: {err}", spec.path.display())),
        };
        let mut problem = None;
        if let (None, Some(parent)) = (self.roots[index].parent, spec.path.parent()) {
            let role = Role {
                root: index,
                kind: Kind::Parent,
                path: parent.to_owned(),
            };
            match self.add(parent, role, PARENT_MASK) {
                Ok(wd) => self.roots[index].parent = Some(wd),
                Err(err) if found.is_none() && missing(&err) => {
                    problem = Some(format!(
                        "cannot watch {}: its directory {} does not exist (looked for again at every check)",
                        spec.path.display(),
                        parent.display()
                    ));
                }
                Err(err) if found.is_none() => {
                    problem = Some(format!(
                        "cannot watch {}: it does not exist and its directory cannot be watched: {}",
                        spec.path.display(),
                        watch_error(parent, &err)
                    ));
                }
                // Watched directly only: a replacement shows at the next check.
                Err(_) => {}
            }
        }
        let was = self.roots[index].identity;
        match (was, found) {
            (None, None) => self.roots[index].was_absent = true,
            (Some(_), None) => {
                let root = &mut self.roots[index];
                let moved = std::mem::take(&mut root.moved);
                root.identity = None;
                root.was_absent = true;
                self.unwatch(index);
                let gone = if moved {
                    libc::IN_MOVE_SELF
                } else {
                    libc::IN_DELETE_SELF
                };
                if spec.events & gone != 0 {
                    batch.report(index, spec, &spec.path, &spec.path, change_name(gone));
                }
                let ignored = change_name(libc::IN_IGNORED);
                batch.report(index, spec, &spec.path, &spec.path, ignored);
            }
            (Some(old), Some(meta)) if old == (meta.dev(), meta.ino()) => {
                // Its watch was dropped by the kernel: watched again.
                if self.roots[index].direct.is_none()
                    && let Err(message) = self.watch(index, spec, &meta, batch)
                {
                    self.roots[index].identity = None;
                    problem = Some(message);
                }
            }
            (old, Some(meta)) => {
                let news = old.is_some() || self.roots[index].was_absent;
                self.roots[index].moved = false;
                self.roots[index].identity = None;
                if old.is_some() {
                    self.unwatch(index);
                }
                match self.watch(index, spec, &meta, batch) {
                    Ok(()) => {
                        let root = &mut self.roots[index];
                        root.identity = Some((meta.dev(), meta.ino()));
                        root.was_absent = false;
                        let changes = if old.is_some() {
                            [libc::IN_MODIFY, libc::IN_CLOSE_WRITE, libc::IN_CREATE]
                        } else {
                            [libc::IN_CREATE, libc::IN_MODIFY, libc::IN_CLOSE_WRITE]
                        };
                        if let Some(change) = spec.news(meta.is_dir(), changes).filter(|_| news) {
                            batch.report(index, spec, &spec.path, &spec.path, change);
                        }
                    }
                    Err(message) => problem = Some(message),
                }
            }
        }
        problem
    }

    /// Watches the path itself, and with `recurse` the directories below it.
    fn watch(
        &mut self,
        index: usize,
        spec: &Spec,
        meta: &std::fs::Metadata,
        batch: &mut Batch,
    ) -> Result<(), String> {
        if spec.onlydir && !meta.is_dir() {
            return Err(format!(
                "cannot watch {}: it is not a directory, and its mask has onlydir",
                spec.path.display()
            ));
        }
        let role = Role {
            root: index,
            kind: Kind::Root,
            path: spec.path.clone(),
        };
        let mask = spec.watch_mask() | libc::IN_DELETE_SELF | libc::IN_MOVE_SELF;
        let wd = self
            .add(&spec.path, role, mask)
            .map_err(|err| watch_error(&spec.path, &err))?;
        self.roots[index].direct = Some(wd);
        if spec.recurse && meta.is_dir() {
            self.walk(index, spec, &spec.path, batch);
        }
        Ok(())
    }

    /// Watches `dir` and the directories below it as part of root `index`'s tree.
    fn watch_tree(&mut self, index: usize, spec: &Spec, dir: &Path, batch: &mut Batch) {
        let role = Role {
            root: index,
            kind: Kind::Tree,
            path: dir.to_owned(),
        };
        match self.add(dir, role, spec.watch_mask()) {
            Ok(_) => self.walk(index, spec, dir, batch),
            Err(err) => batch.problems.push(watch_error(dir, &err)),
        }
    }

    /// Watches the directories below `top` (not following links, skipping excluded ones).
    fn walk(&mut self, index: usize, spec: &Spec, top: &Path, batch: &mut Batch) {
        let mut stack = vec![top.to_owned()];
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(err) => {
                    batch
                        .problems
                        .push(format!("cannot watch below {}: {err}", dir.display()));
                    continue;
                }
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if !entry.file_type().is_ok_and(|kind| kind.is_dir()) || spec.excluded(&path) {
                    continue;
                }
                let role = Role {
                    root: index,
                    kind: Kind::Tree,
                    path: path.clone(),
                };
                match self.add(&path, role, spec.watch_mask()) {
                    Ok(_) => stack.push(path),
                    Err(err) => {
                        let full = err.raw_os_error() == Some(libc::ENOSPC);
                        batch.problems.push(watch_error(&path, &err));
                        if full {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Stops watching the path and its tree (not its directory).
    fn unwatch(&mut self, index: usize) {
        self.roots[index].direct = None;
        self.drop_roles(|role| role.root == index && role.kind != Kind::Parent);
    }

    /// Adds a watch for `role`, to the kernel's watch of the inode if there is one.
    fn add(&mut self, path: &Path, role: Role, mask: u32) -> io::Result<i32> {
        let wd = self
            .stream
            .watches()
            .add(path, WatchMask::from_bits_retain(mask | libc::IN_MASK_ADD))?;
        let id = wd.get_watch_descriptor_id();
        let watch = self.watches.entry(id).or_insert_with(|| Watch {
            wd,
            roles: Vec::new(),
        });
        if !watch.roles.contains(&role) {
            watch.roles.push(role);
        }
        Ok(id)
    }

    /// Forgets the roles `unwanted` picks, and the kernel's watches left without one.
    fn drop_roles(&mut self, mut unwanted: impl FnMut(&Role) -> bool) {
        let mut watches = self.stream.watches();
        self.watches.retain(|_, watch| {
            watch.roles.retain(|role| !unwanted(role));
            if watch.roles.is_empty() {
                // Gone already when the kernel dropped it meanwhile.
                let _ = watches.remove(watch.wd.clone());
                return false;
            }
            true
        });
    }
}

/// Not there: the path, or a directory on the way to it.
fn missing(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::NotFound || err.raw_os_error() == Some(libc::ENOTDIR)
}

fn watch_error(path: &Path, err: &io::Error) -> String {
    let why = if err.raw_os_error() == Some(libc::ENOSPC) {
        "the limit of inotify watches is reached (fs.inotify.max_user_watches)".to_owned()
    } else {
        err.to_string()
    };
    format!("cannot watch {}: {why}", path.display())
}
