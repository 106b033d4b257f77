//! Where the outbox lives, as `--db` says: a SQLite file path, or a PostgreSQL URL, and how it is
//! shown: a URL carries a password, a secret like the Growi key, so every message, log line and
//! `/healthz` answer shows it masked ([`Database::shown`]).
//!
//! A file of its own because both the configuration (which reads it) and the outbox (which opens
//! it) use it, and neither should import the other for it.

/// Where the outbox lives, as `--db` says: a file path, or a PostgreSQL URL.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    Sqlite(std::path::PathBuf),
    /// The URL, which may hold a password: shown only through [`Database::shown`].
    Postgres(String),
}

impl Database {
    /// `postgres://` and `postgresql://` URLs are PostgreSQL; anything else is a SQLite file.
    pub fn parse(value: &str) -> Database {
        let v = value.trim();
        if v.starts_with("postgres://") || v.starts_with("postgresql://") {
            Database::Postgres(v.to_owned())
        } else {
            Database::Sqlite(std::path::PathBuf::from(value))
        }
    }

    /// For messages and logs: the path, or the URL with its password masked.
    pub fn shown(&self) -> String {
        match self {
            Database::Sqlite(p) => p.display().to_string(),
            Database::Postgres(url) => mask_password(url),
        }
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`; a `password=` query
/// parameter is masked too.
pub fn mask_password(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    if scheme.is_empty() {
        format!("{authority}{tail}")
    } else {
        format!("{scheme}://{authority}{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_their_password() {
        assert_eq!(
            mask_password("postgres://shop:s3cret@db.internal:5432/salebeacon"),
            "postgres://shop:***@db.internal:5432/salebeacon"
        );
        assert_eq!(
            mask_password("postgresql://shop@db/salebeacon?sslmode=require&password=s3cret"),
            "postgresql://shop@db/salebeacon?sslmode=require&password=***"
        );
        assert_eq!(mask_password("postgres://db/x"), "postgres://db/x");
        assert_eq!(
            mask_password("postgres://a:b:c@h/d"),
            "postgres://a:***@h/d"
        );
        let db = Database::parse("postgres://u:pw@h/d");
        assert!(!format!("{db:?} {}", db.shown()).contains("pw"));
        assert_eq!(
            Database::parse("./outbox.sqlite3"),
            Database::Sqlite("./outbox.sqlite3".into())
        );
    }
}
