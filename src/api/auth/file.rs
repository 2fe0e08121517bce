//! The `file` eauth, as Salt's `salt/auth/file.py`: users and passwords in a file named by the
//! `^` options of `external_auth: file:`:
//!
//! * `^filename` (required), `^filetype`: `text` (default), `htpasswd` or `htdigest`;
//! * `text`: lines of fields split by `^field_separator` (`:`), the user in field
//!   `^username_field` (1), the password in `^password_field` (2), compared as is
//!   (`^hashtype: plaintext`, the default) or as the hex digest `md5`, `sha256` or `sha512`
//!   (Salt's `hashutil.digest` has no other). As Salt's, a line too short for the fields
//!   (a blank line too) before the user's line fails the login;
//! * `htpasswd` (Apache's): `user:hash` lines, the hash bcrypt (`$2y$`, `$2a$`, `$2b$`), MD5-crypt
//!   (`$apr1$`, `$1$`), SHA-crypt (`$5$`, `$6$`), `{SHA}` or plain text, as passlib verifies them
//!   for Salt; the old DES `crypt` form is refused;
//! * `htdigest`: `user:realm:md5(user:realm:password)` lines, with `^realm` required.

use base64::Engine;
use md5::{Digest, Md5};

use crate::event::{Value, map_get};
use crate::py::value::py_str;

/// Whether `user` with `password` is in the file `block` (the `file` entry of `external_auth`)
/// names. Blocking: it reads the file and may run bcrypt.
pub(super) fn authenticate(block: &Value, user: &str, password: &str) -> bool {
    let option =
        |key: &str| map_get(block, &format!("^{key}")).map(|value| py_str(value).into_owned());
    let Some(filename) = option("filename") else {
        tracing::warn!("the file eauth needs external_auth:file:^filename");
        return false;
    };
    let Ok(text) = std::fs::read_to_string(&filename) else {
        tracing::warn!("the file eauth cannot read {filename}");
        return false;
    };
    match option("filetype")
        .unwrap_or_else(|| "text".to_owned())
        .as_str()
    {
        "htpasswd" => htpasswd(&text, user, password),
        "htdigest" => match option("realm") {
            Some(realm) => htdigest(&text, user, &realm, password),
            None => {
                tracing::warn!("the file eauth's htdigest needs external_auth:file:^realm");
                false
            }
        },
        _ => {
            let field = |key: &str, default: usize| {
                option(key).map_or(Some(default), |value| value.trim().parse().ok())
            };
            let (Some(user_field), Some(password_field)) =
                (field("username_field", 1), field("password_field", 2))
            else {
                return false;
            };
            let text_file = TextFile {
                separator: option("field_separator").unwrap_or_else(|| ":".to_owned()),
                user_field,
                password_field,
                hashtype: option("hashtype").unwrap_or_else(|| "plaintext".to_owned()),
            };
            text_file.check(&text, user, password)
        }
    }
}

/// A `text` file's layout.
struct TextFile {
    separator: String,
    /// 1-based.
    user_field: usize,
    /// 1-based.
    password_field: usize,
    hashtype: String,
}

impl TextFile {
    fn check(&self, text: &str, user: &str, password: &str) -> bool {
        let (Some(user_at), Some(password_at)) = (
            self.user_field.checked_sub(1),
            self.password_field.checked_sub(1),
        ) else {
            return false;
        };
        if self.separator.is_empty() {
            return false;
        }
        for line in text.lines() {
            let fields: Vec<&str> = line.trim().split(self.separator.as_str()).collect();
            let (Some(this_user), Some(this_password)) =
                (fields.get(user_at), fields.get(password_at))
            else {
                return false;
            };
            if *this_user == user {
                return match self.hashtype.as_str() {
                    "plaintext" => constant_eq(this_password.as_bytes(), password.as_bytes()),
                    hashtype => digest(hashtype, password)
                        .is_some_and(|hex| constant_eq(this_password.as_bytes(), hex.as_bytes())),
                };
            }
        }
        false
    }
}

/// Salt's `hashutil.digest`: the hex digest, for the three it has.
fn digest(hashtype: &str, text: &str) -> Option<String> {
    match hashtype {
        "md5" | "sha256" | "sha512" => crate::config::hexdigest(text.as_bytes(), hashtype),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Compares without stopping at the first difference.
fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An htpasswd file: the user's line, its hash checked by its scheme.
fn htpasswd(text: &str, user: &str, password: &str) -> bool {
    let Some(hash) = text.lines().find_map(|line| {
        let (name, hash) = line.trim_end_matches('\r').split_once(':')?;
        (name == user).then_some(hash)
    }) else {
        return false;
    };
    verify_hash(hash, password)
}

/// One htpasswd hash against a password.
fn verify_hash(hash: &str, password: &str) -> bool {
    if hash.starts_with("$2y$") || hash.starts_with("$2a$") || hash.starts_with("$2b$") {
        bcrypt::verify(password, hash).unwrap_or(false)
    } else if let Some(rest) = hash.strip_prefix("$apr1$") {
        md5_crypt(password, rest, "$apr1$")
            .is_some_and(|made| constant_eq(made.as_bytes(), hash.as_bytes()))
    } else if let Some(rest) = hash.strip_prefix("$1$") {
        md5_crypt(password, rest, "$1$")
            .is_some_and(|made| constant_eq(made.as_bytes(), hash.as_bytes()))
    } else if hash.starts_with("$5$") || hash.starts_with("$6$") {
        use sha_crypt::PasswordVerifier;
        sha_crypt::ShaCrypt::default()
            .verify_password(password.as_bytes(), hash)
            .is_ok()
    } else if let Some(encoded) = hash.strip_prefix("{SHA}") {
        let made = base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(password));
        constant_eq(made.as_bytes(), encoded.as_bytes())
    } else if is_des_crypt(hash) {
        tracing::warn!(
            "the file eauth does not take DES crypt htpasswd entries: rehash with bcrypt"
        );
        false
    } else {
        constant_eq(hash.as_bytes(), password.as_bytes())
    }
}

/// The old 13-character DES `crypt` form.
fn is_des_crypt(hash: &str) -> bool {
    hash.len() == 13
        && hash
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'.' || byte == b'/')
}

/// MD5-crypt (`$1$`, and Apache's `$apr1$` which differs only in its magic): the full hash
/// string for `salt_and_rest` (the salt is what comes before the next `$`, 8 characters at most).
fn md5_crypt(password: &str, salt_and_rest: &str, magic: &str) -> Option<String> {
    let salt = salt_and_rest.split('$').next()?;
    let salt = &salt.as_bytes()[..salt.len().min(8)];
    let password = password.as_bytes();
    let mut alternate = Md5::new();
    alternate.update(password);
    alternate.update(salt);
    alternate.update(password);
    let alternate = alternate.finalize();
    let mut context = Md5::new();
    context.update(password);
    context.update(magic.as_bytes());
    context.update(salt);
    for chunk in (0..password.len()).step_by(16) {
        context.update(&alternate[..(password.len() - chunk).min(16)]);
    }
    let mut length = password.len();
    while length > 0 {
        if length & 1 == 1 {
            context.update([0u8]);
        } else {
            context.update(&password[..1]);
        }
        length >>= 1;
    }
    let mut digest = context.finalize();
    for round in 0..1000 {
        let mut next = Md5::new();
        if round & 1 == 1 {
            next.update(password);
        } else {
            next.update(digest);
        }
        if round % 3 != 0 {
            next.update(salt);
        }
        if round % 7 != 0 {
            next.update(password);
        }
        if round & 1 == 1 {
            next.update(digest);
        } else {
            next.update(password);
        }
        digest = next.finalize();
    }
    const ALPHABET: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = String::from(magic);
    out.push_str(std::str::from_utf8(salt).ok()?);
    out.push('$');
    let mut push = |value: u32, count: usize| {
        let mut value = value;
        for _ in 0..count {
            out.push(char::from(ALPHABET[(value & 0x3f) as usize]));
            value >>= 6;
        }
    };
    let d = |at: usize| u32::from(digest[at]);
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        push((d(a) << 16) | (d(b) << 8) | d(c), 4);
    }
    push(d(11), 2);
    Some(out)
}

/// An htdigest file: `user:realm:hex md5 of user:realm:password`.
fn htdigest(text: &str, user: &str, realm: &str, password: &str) -> bool {
    let made = hex(&Md5::digest(format!("{user}:{realm}:{password}")));
    text.lines().any(|line| {
        let mut fields = line.trim_end_matches('\r').splitn(3, ':');
        fields.next() == Some(user)
            && fields.next() == Some(realm)
            && fields
                .next()
                .is_some_and(|hash| constant_eq(hash.as_bytes(), made.as_bytes()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htpasswd_hashes_of_each_scheme_verify() {
        // Made with `openssl passwd -apr1/-1/-5/-6` for the password "secret".
        let file = "\
ann:$apr1$r31xyzab$othKcUy6Q8aVRLV2fNvld1
amy:$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1
sid:$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1
stu:$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA
sam:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=
tom:secret
des:abJnggxhB/yWI
";
        assert!(!htpasswd(file, "des", "secret"));
        for user in ["ann", "amy", "sid", "stu", "sam", "tom"] {
            assert!(htpasswd(file, user, "secret"), "{user}");
            assert!(!htpasswd(file, user, "Secret"), "{user}");
        }
        assert!(!htpasswd(file, "eve", "secret"));
        let bcrypt = bcrypt::hash_with_salt("secret", 4, [7; 16]).unwrap();
        let bcrypt = bcrypt.format_for_version(bcrypt::Version::TwoY);
        assert!(verify_hash(&bcrypt, "secret"));
        assert!(!verify_hash(&bcrypt, "secret2"));
    }

    #[test]
    fn text_files_read_as_salts() {
        let layout = |hashtype: &str| TextFile {
            separator: ":".to_owned(),
            user_field: 1,
            password_field: 2,
            hashtype: hashtype.to_owned(),
        };
        assert!(layout("plaintext").check("ann:pw\nbob:x\n", "bob", "x"));
        assert!(!layout("plaintext").check("ann:pw\nbob:x\n", "bob", "pw"));
        // A short line before the user's fails the login, as Salt's IndexError does.
        assert!(!layout("plaintext").check("ann:pw\n\nbob:x\n", "bob", "x"));
        let md5 = "bob:5ebe2294ecd0e0f08eab7690d2a6ee69\n";
        assert!(layout("md5").check(md5, "bob", "secret"));
        assert!(!layout("sha1").check(md5, "bob", "secret"));
    }

    #[test]
    fn htdigest_lines_verify() {
        let file = format!("bob:web:{}\n", hex(&Md5::digest("bob:web:secret")));
        assert!(htdigest(&file, "bob", "web", "secret"));
        assert!(!htdigest(&file, "bob", "other", "secret"));
    }
}
