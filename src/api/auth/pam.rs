//! The `pam` eauth: a user name and password checked by the system's PAM stack
//! (`pam_authenticate` then `pam_acct_mgmt`, service `auth.pam.service`, Salt's default `login`),
//! as Salt's `salt/auth/pam.py` does through ctypes.
//!
//! `libpam.so.0` is loaded when a login needs it rather than linked: linking needs the
//! `libpam.so` that only the development package ships, and halite builds on a machine with
//! none. Every PAM call is here, in one blocking function run off the async workers.
#![allow(unsafe_code)]

use std::ffi::{CString, c_char, c_int, c_void};

/// The library's soname, present wherever PAM is (Debian's `libpam0g`).
const LIBRARY: &str = "libpam.so.0";
/// `PAM_SUCCESS`.
const SUCCESS: c_int = 0;
/// `PAM_CONV_ERR`: what the conversation answers when it cannot allocate.
const CONV_ERR: c_int = 19;
/// `PAM_PROMPT_ECHO_OFF`: a prompt for a secret, answered with the password.
const PROMPT_ECHO_OFF: c_int = 1;

/// `struct pam_message`.
#[repr(C)]
struct Message {
    style: c_int,
    text: *const c_char,
}

/// `struct pam_response`.
#[repr(C)]
struct Response {
    text: *mut c_char,
    code: c_int,
}

/// `struct pam_conv`.
#[repr(C)]
struct Conversation {
    conv: extern "C" fn(c_int, *mut *const Message, *mut *mut Response, *mut c_void) -> c_int,
    data: *mut c_void,
}

type Start = unsafe extern "C" fn(
    *const c_char,
    *const c_char,
    *const Conversation,
    *mut *mut c_void,
) -> c_int;
type Step = unsafe extern "C" fn(*mut c_void, c_int) -> c_int;

/// Whether `user` with `password` passes `service`'s `auth` and `account` stacks. Blocking
/// (PAM modules sleep after a failure); `false` when libpam cannot be loaded, logged.
pub(super) fn authenticate(service: &str, user: &str, password: &str) -> bool {
    let (Ok(service), Ok(user), Ok(password)) = (
        CString::new(service),
        CString::new(user),
        CString::new(password),
    ) else {
        return false;
    };
    match run(&service, &user, &password) {
        Ok(passed) => passed,
        Err(err) => {
            tracing::warn!("the pam eauth cannot use {LIBRARY}: {err}");
            false
        }
    }
}

fn run(service: &CString, user: &CString, password: &CString) -> Result<bool, libloading::Error> {
    // SAFETY: libpam's initialisers have no preconditions; it is a system library.
    let library = unsafe { libloading::Library::new(LIBRARY) }?;
    // SAFETY: the symbols are declared with libpam's C signatures (security/pam_appl.h).
    let (start, authenticate, account, end) = unsafe {
        (
            library.get::<Start>(b"pam_start\0")?,
            library.get::<Step>(b"pam_authenticate\0")?,
            library.get::<Step>(b"pam_acct_mgmt\0")?,
            library.get::<Step>(b"pam_end\0")?,
        )
    };
    let conversation = Conversation {
        conv: converse,
        data: password.as_ptr().cast_mut().cast(),
    };
    let mut handle: *mut c_void = std::ptr::null_mut();
    // SAFETY: the strings and the conversation outlive the handle, which pam_end frees below
    // before they are dropped; the conversation's data is the password, read only.
    unsafe {
        let mut status = start(service.as_ptr(), user.as_ptr(), &conversation, &mut handle);
        if status != SUCCESS {
            end(handle, status);
            return Ok(false);
        }
        status = authenticate(handle, 0);
        if status == SUCCESS {
            status = account(handle, 0);
        }
        end(handle, status);
        Ok(status == SUCCESS)
    }
}

/// The conversation: every secret prompt is answered with the password (`data`), others with
/// nothing, as Salt's. PAM frees the answers with `free`, so they come from `calloc`/`strdup`.
extern "C" fn converse(
    count: c_int,
    messages: *mut *const Message,
    responses: *mut *mut Response,
    data: *mut c_void,
) -> c_int {
    let Ok(count) = usize::try_from(count) else {
        return CONV_ERR;
    };
    if count == 0 || messages.is_null() || responses.is_null() {
        return CONV_ERR;
    }
    // SAFETY: Linux-PAM passes `count` message pointers and a place for the answer array,
    // which it owns and frees after; `data` is the NUL-terminated password set in `run`.
    unsafe {
        let answers = libc::calloc(count, std::mem::size_of::<Response>()).cast::<Response>();
        if answers.is_null() {
            return CONV_ERR;
        }
        for at in 0..count {
            let message = *messages.add(at);
            if !message.is_null() && (*message).style == PROMPT_ECHO_OFF {
                (*answers.add(at)).text = libc::strdup(data.cast::<c_char>());
            }
        }
        *responses = answers;
    }
    SUCCESS
}

/// The names of the system groups `user` is in (its primary group included), for `group%`
/// entries, as Salt's `get_group_list`.
pub(super) fn groups(user: &str) -> Vec<String> {
    use nix::unistd::{Group, User, getgrouplist};
    let Ok(Some(account)) = User::from_name(user) else {
        return Vec::new();
    };
    let Ok(name) = CString::new(user) else {
        return Vec::new();
    };
    let mut gids = getgrouplist(&name, account.gid).unwrap_or_default();
    gids.sort_by_key(|gid| gid.as_raw());
    gids.dedup();
    gids.into_iter()
        .filter_map(|gid| Group::from_gid(gid).ok().flatten())
        .map(|group| group.name)
        .collect()
}
