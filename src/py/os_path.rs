//! Python's `os.path.expanduser`, which Salt applies to paths in states, functions and the
//! configuration's `include`.

/// `os.path.expanduser`: a leading `~` is the home directory (`HOME`, else the password
/// database's), a leading `~user` that user's; anything else, or a user nobody knows, is left
/// as it is.
pub(crate) fn expanduser(path: &str) -> String {
    let Some(rest) = path.strip_prefix('~') else {
        return path.to_owned();
    };
    let (user, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let home = if user.is_empty() {
        std::env::var("HOME").ok().or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::geteuid())
                .ok()
                .flatten()
                .map(|u| u.dir.display().to_string())
        })
    } else {
        nix::unistd::User::from_name(user)
            .ok()
            .flatten()
            .map(|u| u.dir.display().to_string())
    };
    match home {
        // `~` for a home of `/` is `/`, not nothing.
        Some(home) => match format!("{}{tail}", home.trim_end_matches('/')) {
            expanded if expanded.is_empty() => "/".to_owned(),
            expanded => expanded,
        },
        None => path.to_owned(),
    }
}
