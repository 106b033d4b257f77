//! The proxy's configuration: one [`ProxyConfig`] built from defaults, a TOML file, flags and the
//! environment, checked once at start-up.
//!
//! Precedence is flag (or its `SALEBEACON_*` environment variable) over file over default. The
//! three secrets (`GROWI_API_KEY`, `SALEBEACON_ADMIN_TOKEN`, `SALEBEACON_ORDER_TOKEN_SECRET`) are
//! read from the environment only: a secret in a config file or on a command line ends up in
//! backups, shell history and `ps`. They are held in [`Secret`], whose `Debug` prints nothing of
//! the value, so a `{config:?}` in a log line cannot leak them. Every check happens in
//! [`ProxyConfig::validate`], so a bad setting is one clear error at start-up naming the setting,
//! never a surprise at the first sale.

use clap::{Args, ValueEnum};
use salebeacon::attribution::{MAX_WINDOW_DAYS, MIN_WINDOW_DAYS};
use salebeacon::retry::Backoff;
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Growi's production API.
pub const DEFAULT_UPSTREAM: &str = "https://api.growi.io/api/public/v1";
/// Environment variable holding the Growi API key.
pub const ENV_API_KEY: &str = "GROWI_API_KEY";
/// Environment variable holding the admin API's bearer token.
pub const ENV_ADMIN_TOKEN: &str = "SALEBEACON_ADMIN_TOKEN";
/// Environment variable holding the order-token HMAC secret.
pub const ENV_ORDER_TOKEN_SECRET: &str = "SALEBEACON_ORDER_TOKEN_SECRET";

/// A secret string: usable through [`Secret::expose`], invisible in `Debug`, no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The value, for the one place that needs it (a header, an HMAC key).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// When cookies set by `/touch` carry `Secure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum SecureCookies {
    /// When the request came over https (`X-Forwarded-Proto: https` from the reverse proxy).
    #[default]
    Auto,
    Always,
    Never,
}

/// SQLite `synchronous` for the outbox (always in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum DbSync {
    /// fsync at every commit: a `202` survives a power cut.
    #[default]
    Full,
    /// fsync at checkpoints only: a `202` survives a process crash (kill -9), not a power cut.
    Normal,
}

/// A per-IP token bucket: `per_minute` tokens a minute, at most `burst` saved up. `per_minute = 0`
/// turns it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_minute: u32,
    pub burst: u32,
}

/// Everything the proxy needs to run.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Where the HTTP server listens.
    pub listen: SocketAddr,
    /// Growi's API base, without a trailing slash.
    pub upstream: String,
    /// The outbox: a SQLite file, or a PostgreSQL URL (several proxies sharing one queue).
    pub db: crate::database::Database,
    pub db_sync: DbSync,
    /// Minimum time between the starts of two upstream requests.
    pub pace: Duration,
    /// Whole-request timeout for one upstream request.
    pub upstream_timeout: Duration,
    /// Retry schedule for network errors and 5xx.
    pub backoff: Backoff,
    /// How long the sender pauses after Growi refuses the key (401/403) before trying again.
    pub auth_pause: Duration,
    /// Path prefix of every route, e.g. `/salebeacon` (empty: the root).
    pub base_path: String,
    /// Origins (`https://shop.example.com`) allowed to call the browser endpoints cross-origin.
    pub allowed_origins: Vec<String>,
    /// Attribution window in days (cookie lifetime, and how old an `sb_aff` may be).
    pub window_days: u32,
    /// Largest accepted request body, bytes.
    pub body_limit: usize,
    pub rate_limit: RateLimit,
    /// Take the client IP from `X-Forwarded-For` (and https from `X-Forwarded-Proto`): only
    /// behind a reverse proxy that sets them.
    pub trust_forwarded_for: bool,
    /// Refuse browser sales without a valid signed `order_token`.
    pub require_order_token: bool,
    pub secure_cookies: SecureCookies,
    /// `Domain=` of the cookies `/touch` sets (none: host-only).
    pub cookie_domain: Option<String>,
    /// Lifetime of the `sb_vid` cookie, days.
    pub visitor_cookie_days: u32,
    /// If set, the proxy sets `due_at` = `occurred_at` + this many days on browser sales.
    pub due_days: Option<u32>,
    /// How far in the future a browser's `occurred_at` may be (clock skew).
    pub max_future_skew: Duration,
    /// Most sales committed in one SQLite transaction (group commit).
    pub batch_max: usize,
    /// Sent jobs older than this many days are deleted (refunds and corrections need them
    /// until then); `0` keeps them forever.
    pub retention_days: u32,
    pub growi_api_key: Secret,
    pub admin_token: Option<Secret>,
    pub order_token_secret: Option<Secret>,
    /// Serve this folder's files (the built package: loader, module, wasm) under the base path.
    pub static_dir: Option<PathBuf>,
    /// Serve this folder as the site at `/` (the demo storefront; a shop normally has its own).
    pub site_dir: Option<PathBuf>,
    /// Bind the outbox to this upstream even though it holds Growi ids from another one,
    /// forgetting them (each sale is looked up again before its first update).
    pub forget_upstream_ids: bool,
}

impl ProxyConfig {
    /// Defaults everywhere, with this Growi key.
    pub fn new(growi_api_key: Secret) -> Self {
        ProxyConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            upstream: DEFAULT_UPSTREAM.to_owned(),
            db: crate::database::Database::Sqlite(PathBuf::from("salebeacon-outbox.sqlite3")),
            db_sync: DbSync::Full,
            pace: Duration::from_millis(2000),
            upstream_timeout: Duration::from_secs(15),
            backoff: Backoff::PROXY,
            auth_pause: Duration::from_secs(60),
            base_path: "/salebeacon".to_owned(),
            allowed_origins: Vec::new(),
            window_days: salebeacon::attribution::DEFAULT_WINDOW_DAYS,
            body_limit: 16 * 1024,
            rate_limit: RateLimit {
                per_minute: 60,
                burst: 20,
            },
            trust_forwarded_for: false,
            require_order_token: false,
            secure_cookies: SecureCookies::Auto,
            cookie_domain: None,
            visitor_cookie_days: 400,
            due_days: None,
            max_future_skew: Duration::from_secs(300),
            batch_max: 512,
            retention_days: 400,
            growi_api_key,
            admin_token: None,
            static_dir: None,
            site_dir: None,
            forget_upstream_ids: false,
            order_token_secret: None,
        }
    }

    /// Names this upstream and key without revealing the key: the first 16 hex digits of
    /// SHA-256 over a label, the upstream URL and the key. The outbox keeps it so that Growi ids
    /// recorded against one upstream are never used against another.
    pub fn upstream_fingerprint(&self) -> String {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(b"salebeacon upstream fingerprint v1\0");
        ctx.update(self.upstream.as_bytes());
        ctx.update(b"\0");
        ctx.update(self.growi_api_key.expose().as_bytes());
        ctx.finish().as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Checks and normalises every setting; the error names the setting.
    pub fn validate(mut self) -> Result<Self, ConfigError> {
        self.upstream = check_upstream(&self.upstream)?;
        self.base_path = check_base_path(&self.base_path)?;
        self.allowed_origins = self
            .allowed_origins
            .iter()
            .map(|o| check_origin(o))
            .collect::<Result<_, _>>()?;
        if !(MIN_WINDOW_DAYS..=MAX_WINDOW_DAYS).contains(&self.window_days) {
            return Err(ConfigError::Invalid(
                "window_days",
                format!("must be {MIN_WINDOW_DAYS}-{MAX_WINDOW_DAYS}"),
            ));
        }
        if !(256..=1024 * 1024).contains(&self.body_limit) {
            return Err(ConfigError::Invalid(
                "body_limit",
                "must be 256 bytes to 1 MiB".into(),
            ));
        }
        if self.rate_limit.per_minute > 0 && self.rate_limit.burst == 0 {
            return Err(ConfigError::Invalid(
                "rate_limit_burst",
                "must be at least 1 when the rate limit is on".into(),
            ));
        }
        if self.pace.is_zero() {
            return Err(ConfigError::Invalid("pace_ms", "must be at least 1".into()));
        }
        if self.upstream_timeout.is_zero() {
            return Err(ConfigError::Invalid(
                "timeout_ms",
                "must be at least 1".into(),
            ));
        }
        if self.backoff.base_ms == 0 || self.backoff.cap_ms < self.backoff.base_ms {
            return Err(ConfigError::Invalid(
                "backoff_base_ms",
                "must be at least 1 and not above backoff_cap_ms".into(),
            ));
        }
        if self.batch_max == 0 {
            return Err(ConfigError::Invalid(
                "batch_max",
                "must be at least 1".into(),
            ));
        }
        if let Some(d) = &self.cookie_domain {
            let d = d.trim().trim_start_matches('.').to_ascii_lowercase();
            if d.is_empty()
                || !d
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            {
                return Err(ConfigError::Invalid(
                    "cookie_domain",
                    "must be a host name such as example.com".into(),
                ));
            }
            self.cookie_domain = Some(d);
        }
        if self.visitor_cookie_days == 0 || self.visitor_cookie_days > 400 {
            return Err(ConfigError::Invalid(
                "visitor_cookie_days",
                "must be 1-400 (browsers cap cookies at 400 days)".into(),
            ));
        }
        if matches!(self.due_days, Some(0) | Some(3651..)) {
            return Err(ConfigError::Invalid("due_days", "must be 1-3650".into()));
        }
        check_secret(ENV_API_KEY, &self.growi_api_key, 1)?;
        if let Some(t) = &self.admin_token {
            check_secret(ENV_ADMIN_TOKEN, t, 16)?;
        }
        if let Some(s) = &self.order_token_secret {
            check_secret(ENV_ORDER_TOKEN_SECRET, s, 16)?;
        }
        if self.require_order_token && self.order_token_secret.is_none() {
            return Err(ConfigError::Missing(
                ENV_ORDER_TOKEN_SECRET,
                "require_order_token is on",
            ));
        }
        Ok(self)
    }

    /// Builds the configuration from parsed flags, an optional TOML file named by them, and the
    /// environment (`env` looks a variable up; the binary passes `std::env::var`).
    pub fn load(
        args: &RunArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ProxyConfig, ConfigError> {
        let file = match &args.config {
            Some(path) => FileConfig::read(path)?,
            None => FileConfig::default(),
        };
        let key = env(ENV_API_KEY)
            .filter(|k| !k.is_empty())
            .ok_or(ConfigError::Missing(
                ENV_API_KEY,
                "the proxy cannot deliver sales without it",
            ))?;
        let mut c = ProxyConfig::new(Secret::new(key));
        c.admin_token = env(ENV_ADMIN_TOKEN)
            .filter(|s| !s.is_empty())
            .map(Secret::new);
        c.order_token_secret = env(ENV_ORDER_TOKEN_SECRET)
            .filter(|s| !s.is_empty())
            .map(Secret::new);

        macro_rules! pick {
            ($field:ident) => {
                args.$field.clone().or(file.$field.clone())
            };
        }
        if let Some(v) = pick!(listen) {
            c.listen = v
                .parse()
                .map_err(|_| ConfigError::Invalid("listen", format!("{v:?} is not an IP:port")))?;
        }
        if let Some(v) = pick!(upstream) {
            c.upstream = v;
        }
        c.static_dir = pick!(static_dir);
        c.site_dir = pick!(site_dir);
        c.forget_upstream_ids = args.forget_upstream_ids;
        if let Some(v) = pick!(db) {
            // Where the value came from decides whether it may hold a password: only the
            // environment (a file is backed up, a command line is visible to `ps`).
            let from_env = env("SALEBEACON_DB").as_deref() == Some(v.as_str());
            let place = match (&args.db, from_env) {
                (Some(_), true) => DbPlace::Environment,
                (Some(_), false) => DbPlace::CommandLine,
                (None, _) => DbPlace::File,
            };
            c.db = check_db(&v, place)?;
        }
        if let Some(v) = pick!(db_sync) {
            c.db_sync = v;
        }
        if let Some(v) = pick!(pace_ms) {
            c.pace = Duration::from_millis(v);
        }
        if let Some(v) = pick!(timeout_ms) {
            c.upstream_timeout = Duration::from_millis(v);
        }
        if let Some(v) = pick!(backoff_base_ms) {
            c.backoff.base_ms = v;
        }
        if let Some(v) = pick!(backoff_cap_ms) {
            c.backoff.cap_ms = v;
        }
        if let Some(v) = pick!(auth_pause_ms) {
            c.auth_pause = Duration::from_millis(v);
        }
        if let Some(v) = pick!(base_path) {
            c.base_path = v;
        }
        if !args.allow_origin.is_empty() {
            c.allowed_origins = args.allow_origin.clone();
        } else if let Some(v) = &file.allowed_origins {
            c.allowed_origins = v.clone();
        }
        if let Some(v) = pick!(window_days) {
            c.window_days = v;
        }
        if let Some(v) = pick!(body_limit) {
            c.body_limit = v;
        }
        if let Some(v) = pick!(rate_limit_per_minute) {
            c.rate_limit.per_minute = v;
        }
        if let Some(v) = pick!(rate_limit_burst) {
            c.rate_limit.burst = v;
        }
        if let Some(v) = pick!(trust_forwarded_for) {
            c.trust_forwarded_for = v;
        }
        if let Some(v) = pick!(require_order_token) {
            c.require_order_token = v;
        }
        if let Some(v) = pick!(secure_cookies) {
            c.secure_cookies = v;
        }
        if let Some(v) = pick!(cookie_domain) {
            c.cookie_domain = Some(v);
        }
        if let Some(v) = pick!(visitor_cookie_days) {
            c.visitor_cookie_days = v;
        }
        if let Some(v) = pick!(due_days) {
            c.due_days = Some(v);
        }
        if let Some(v) = pick!(retention_days) {
            c.retention_days = v;
        }
        if let Some(v) = pick!(batch_max) {
            c.batch_max = v;
        }
        c.validate()
    }
}

/// The flags of `salebeacon-proxy [run]`. Each also reads a `SALEBEACON_*` environment variable;
/// each also exists as a key of the TOML file (same name, `_` for `-`, `allowed_origins` a list).
#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    /// TOML configuration file.
    #[arg(long, env = "SALEBEACON_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "SALEBEACON_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Growi API base URL [default: https://api.growi.io/api/public/v1].
    #[arg(long, env = "SALEBEACON_UPSTREAM", value_name = "URL")]
    pub upstream: Option<String>,
    /// The outbox: a SQLite file, or a postgres:// URL shared by several proxies
    /// [default: salebeacon-outbox.sqlite3].
    #[arg(long, env = "SALEBEACON_DB", value_name = "PATH|URL")]
    pub db: Option<String>,
    /// SQLite synchronous mode: full (fsync per commit) or normal [default: full].
    #[arg(long, env = "SALEBEACON_DB_SYNC", value_enum)]
    pub db_sync: Option<DbSync>,
    /// Minimum milliseconds between upstream request starts [default: 2000].
    #[arg(long, env = "SALEBEACON_PACE_MS", value_name = "N")]
    pub pace_ms: Option<u64>,
    /// Upstream request timeout, milliseconds [default: 15000].
    #[arg(long, env = "SALEBEACON_TIMEOUT_MS", value_name = "N")]
    pub timeout_ms: Option<u64>,
    /// First retry delay after a network error or 5xx, milliseconds [default: 2000].
    #[arg(long, env = "SALEBEACON_BACKOFF_BASE_MS", value_name = "N")]
    pub backoff_base_ms: Option<u64>,
    /// Longest retry delay, milliseconds [default: 600000].
    #[arg(long, env = "SALEBEACON_BACKOFF_CAP_MS", value_name = "N")]
    pub backoff_cap_ms: Option<u64>,
    /// Pause after Growi refuses the API key (401/403), milliseconds [default: 60000].
    #[arg(long, env = "SALEBEACON_AUTH_PAUSE_MS", value_name = "N")]
    pub auth_pause_ms: Option<u64>,
    /// Path prefix of every route [default: /salebeacon].
    #[arg(long, env = "SALEBEACON_BASE_PATH", value_name = "PATH")]
    pub base_path: Option<String>,
    /// An origin allowed to call the browser endpoints cross-origin (repeat, or comma-separate).
    #[arg(
        long,
        env = "SALEBEACON_ALLOW_ORIGIN",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    pub allow_origin: Vec<String>,
    /// Attribution window, days [default: 30].
    #[arg(long, env = "SALEBEACON_WINDOW_DAYS", value_name = "N")]
    pub window_days: Option<u32>,
    /// Largest request body, bytes [default: 16384].
    #[arg(long, env = "SALEBEACON_BODY_LIMIT", value_name = "BYTES")]
    pub body_limit: Option<usize>,
    /// Per-IP requests a minute on the browser endpoints, 0 = off [default: 60].
    #[arg(long, env = "SALEBEACON_RATE_LIMIT_PER_MINUTE", value_name = "N")]
    pub rate_limit_per_minute: Option<u32>,
    /// Per-IP burst [default: 20].
    #[arg(long, env = "SALEBEACON_RATE_LIMIT_BURST", value_name = "N")]
    pub rate_limit_burst: Option<u32>,
    /// Trust X-Forwarded-For / X-Forwarded-Proto / X-Forwarded-Host (only behind a reverse proxy).
    #[arg(long, env = "SALEBEACON_TRUST_FORWARDED_FOR", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub trust_forwarded_for: Option<bool>,
    /// Refuse browser sales without a valid signed order_token.
    #[arg(long, env = "SALEBEACON_REQUIRE_ORDER_TOKEN", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub require_order_token: Option<bool>,
    /// Secure attribute of /touch cookies [default: auto].
    #[arg(long, env = "SALEBEACON_SECURE_COOKIES", value_enum)]
    pub secure_cookies: Option<SecureCookies>,
    /// Domain attribute of /touch cookies (default: host-only).
    #[arg(long, env = "SALEBEACON_COOKIE_DOMAIN", value_name = "DOMAIN")]
    pub cookie_domain: Option<String>,
    /// Lifetime of the sb_vid cookie, days [default: 400].
    #[arg(long, env = "SALEBEACON_VISITOR_COOKIE_DAYS", value_name = "N")]
    pub visitor_cookie_days: Option<u32>,
    /// Set due_at = occurred_at + N days on browser sales (a return window).
    #[arg(long, env = "SALEBEACON_DUE_DAYS", value_name = "N")]
    pub due_days: Option<u32>,
    /// Delete sent jobs older than N days, 0 = never [default: 400].
    #[arg(long, env = "SALEBEACON_RETENTION_DAYS", value_name = "N")]
    pub retention_days: Option<u32>,
    /// Most sales per commit [default: 512].
    #[arg(long, env = "SALEBEACON_BATCH_MAX", value_name = "N")]
    pub batch_max: Option<usize>,
    /// Serve the tracker's files (the built package, e.g. pkg/) under the base path.
    #[arg(long, env = "SALEBEACON_STATIC_DIR", value_name = "DIR")]
    pub static_dir: Option<PathBuf>,
    /// Serve a site (e.g. the demo storefront) at `/`.
    #[arg(long, env = "SALEBEACON_SITE_DIR", value_name = "DIR")]
    pub site_dir: Option<PathBuf>,
    /// Start against an upstream or API key other than the one the outbox's Growi ids belong to:
    /// keep the queue, forget those ids (each sale is looked up again before its first update).
    #[arg(long)]
    pub forget_upstream_ids: bool,
}

/// The TOML file: the same keys as the flags, all optional. Unknown keys are an error, so a typo
/// is not silently ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub upstream: Option<String>,
    pub db: Option<String>,
    pub db_sync: Option<DbSync>,
    pub pace_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub backoff_base_ms: Option<u64>,
    pub backoff_cap_ms: Option<u64>,
    pub auth_pause_ms: Option<u64>,
    pub base_path: Option<String>,
    pub allowed_origins: Option<Vec<String>>,
    pub window_days: Option<u32>,
    pub body_limit: Option<usize>,
    pub rate_limit_per_minute: Option<u32>,
    pub rate_limit_burst: Option<u32>,
    pub trust_forwarded_for: Option<bool>,
    pub require_order_token: Option<bool>,
    pub secure_cookies: Option<SecureCookies>,
    pub cookie_domain: Option<String>,
    pub visitor_cookie_days: Option<u32>,
    pub due_days: Option<u32>,
    pub retention_days: Option<u32>,
    pub batch_max: Option<usize>,
    pub static_dir: Option<PathBuf>,
    pub site_dir: Option<PathBuf>,
}

impl FileConfig {
    fn read(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        for secret in [
            "growi_api_key",
            "api_key",
            "admin_token",
            "order_token_secret",
        ] {
            if text.lines().any(|l| l.trim_start().starts_with(secret)) {
                return Err(ConfigError::File {
                    path: path.to_owned(),
                    message: format!(
                        "{secret} does not belong in a file: set {ENV_API_KEY}, {ENV_ADMIN_TOKEN} \
                         and {ENV_ORDER_TOKEN_SECRET} in the environment"
                    ),
                });
            }
        }
        toml::from_str(&text).map_err(|e| ConfigError::File {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }
}

/// A setting that stops the proxy from starting. Messages name the setting, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set ({1})")]
    Missing(&'static str, &'static str),
    #[error("invalid {0}: {1}")]
    Invalid(&'static str, String),
    #[error("config file {}: {message}", path.display())]
    File { path: PathBuf, message: String },
}

fn check_secret(name: &'static str, s: &Secret, min_len: usize) -> Result<(), ConfigError> {
    let v = s.expose();
    if v.len() < min_len {
        return Err(ConfigError::Invalid(
            name,
            format!("must be at least {min_len} characters"),
        ));
    }
    if !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::Invalid(
            name,
            "must be printable ASCII without spaces".into(),
        ));
    }
    Ok(())
}

/// Where the `db` setting was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DbPlace {
    Environment,
    CommandLine,
    File,
}

/// A SQLite path, or a PostgreSQL URL the driver reads, without TLS (not supported yet) and with
/// a password only when it came from the environment. Messages never repeat the URL.
fn check_db(value: &str, place: DbPlace) -> Result<crate::database::Database, ConfigError> {
    let db = crate::database::Database::parse(value);
    let crate::database::Database::Postgres(url) = &db else {
        return Ok(db);
    };
    let config: tokio_postgres::Config = url.parse().map_err(|e| {
        ConfigError::Invalid("db", format!("not a PostgreSQL URL the driver reads ({e})"))
    })?;
    if config.get_password().is_some() && place != DbPlace::Environment {
        let why = match place {
            DbPlace::File => "a config file ends up in backups",
            _ => "a command line is visible to every user through ps",
        };
        return Err(ConfigError::Invalid(
            "db",
            format!(
                "the URL holds a password, and {why}: put the URL in SALEBEACON_DB (environment) \
                 instead, or use a password-less local connection (a Unix socket)"
            ),
        ));
    }
    if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
        return Err(ConfigError::Invalid(
            "db",
            "sslmode=require: TLS to PostgreSQL is not supported yet; reach the server over a \
             Unix socket (postgres://user@%2Frun%2Fpostgresql/db), localhost or a private network"
                .into(),
        ));
    }
    Ok(db)
}

fn check_upstream(url: &str) -> Result<String, ConfigError> {
    let parsed = reqwest::Url::parse(url.trim())
        .map_err(|e| ConfigError::Invalid("upstream", format!("{url:?} is not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ConfigError::Invalid(
            "upstream",
            format!("{url:?} must be an http(s) URL with a host"),
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() || parsed.query().is_some() {
        return Err(ConfigError::Invalid(
            "upstream",
            "must not carry credentials or a query (the API key comes from GROWI_API_KEY)".into(),
        ));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

fn check_base_path(p: &str) -> Result<String, ConfigError> {
    let p = p.trim().trim_end_matches('/');
    if p.is_empty() {
        return Ok(String::new());
    }
    let ok = p.starts_with('/')
        && !p.contains("//")
        && p[1..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'));
    if ok {
        Ok(p.to_owned())
    } else {
        Err(ConfigError::Invalid(
            "base_path",
            format!("{p:?} must look like /salebeacon"),
        ))
    }
}

/// Normalises an origin to `scheme://host[:port]`, lower case.
fn check_origin(o: &str) -> Result<String, ConfigError> {
    let bad = || {
        ConfigError::Invalid(
            "allowed_origins",
            format!("{o:?} must be an origin such as https://shop.example.com (no path, no *)"),
        )
    };
    let url = reqwest::Url::parse(o.trim()).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || url.path() != "/"
        || url.query().is_some()
        || o.contains('*')
    {
        return Err(bad());
    }
    Ok(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with(key: Option<&'static str>) -> impl Fn(&str) -> Option<String> {
        move |name| match name {
            ENV_API_KEY => key.map(str::to_owned),
            _ => None,
        }
    }

    #[test]
    fn a_database_password_comes_from_the_environment_only() {
        let url = "postgres://shop:s3cret-pw@db.internal/salebeacon";
        let env = |name: &str| match name {
            ENV_API_KEY => Some("sk_live_abc".to_owned()),
            "SALEBEACON_DB" => Some(url.to_owned()),
            _ => None,
        };
        let args = RunArgs {
            db: Some(url.into()),
            ..RunArgs::default()
        };
        // From SALEBEACON_DB (clap puts it in `db`): fine, and never shown.
        let c = ProxyConfig::load(&args, env).unwrap();
        assert!(matches!(&c.db, crate::database::Database::Postgres(u) if u == url));
        assert!(!format!("{c:?}").contains("s3cret-pw"));
        // On the command line: refused, without repeating it.
        let e = ProxyConfig::load(&args, env_with(Some("sk_live_abc"))).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("invalid db") && text.contains("SALEBEACON_DB"),
            "{e}"
        );
        assert!(!text.contains("s3cret-pw"), "{e}");
        // In the TOML file: refused.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("proxy.toml");
        std::fs::write(&file, format!("db = \"{url}\"\n")).unwrap();
        let args = RunArgs {
            config: Some(file),
            ..RunArgs::default()
        };
        let e = ProxyConfig::load(&args, env_with(Some("sk_live_abc"))).unwrap_err();
        assert!(
            e.to_string().contains("backups") && !e.to_string().contains("s3cret-pw"),
            "{e}"
        );
        // Without a password, anywhere; TLS is refused with what to do instead.
        let args = RunArgs {
            db: Some("postgres://shop@%2Frun%2Fpostgresql/salebeacon".into()),
            ..RunArgs::default()
        };
        assert!(ProxyConfig::load(&args, env_with(Some("sk_live_abc"))).is_ok());
        let args = RunArgs {
            db: Some("postgres://shop@db.internal/salebeacon?sslmode=require".into()),
            ..RunArgs::default()
        };
        let e = ProxyConfig::load(&args, env_with(Some("sk_live_abc"))).unwrap_err();
        assert!(e.to_string().contains("Unix socket"), "{e}");
    }

    #[test]
    fn missing_key_is_named() {
        let e = ProxyConfig::load(&RunArgs::default(), env_with(None)).unwrap_err();
        assert!(e.to_string().contains("GROWI_API_KEY"), "{e}");
    }

    #[test]
    fn bad_upstream_is_named_and_secrets_hidden() {
        let args = RunArgs {
            upstream: Some("ftp:/nope".into()),
            ..RunArgs::default()
        };
        let e = ProxyConfig::load(&args, env_with(Some("sk_live_abc"))).unwrap_err();
        assert!(e.to_string().contains("upstream"), "{e}");
        let c = ProxyConfig::load(&RunArgs::default(), env_with(Some("sk_live_abc"))).unwrap();
        assert!(!format!("{c:?}").contains("sk_live_abc"));
        assert_eq!(c.upstream, DEFAULT_UPSTREAM);
    }

    #[test]
    fn origins_and_paths_normalise() {
        assert_eq!(
            check_origin("HTTPS://Shop.Example.com/").unwrap(),
            "https://shop.example.com"
        );
        assert_eq!(
            check_origin("http://localhost:5173").unwrap(),
            "http://localhost:5173"
        );
        assert!(check_origin("https://x.com/path").is_err());
        assert!(check_origin("*").is_err());
        assert_eq!(check_base_path("/salebeacon/").unwrap(), "/salebeacon");
        assert_eq!(check_base_path("/").unwrap(), "");
        assert!(check_base_path("salebeacon").is_err());
    }

    #[test]
    fn token_requirement_needs_secret() {
        let args = RunArgs {
            require_order_token: Some(true),
            ..RunArgs::default()
        };
        let e = ProxyConfig::load(&args, env_with(Some("k"))).unwrap_err();
        assert!(e.to_string().contains(ENV_ORDER_TOKEN_SECRET), "{e}");
    }
}
