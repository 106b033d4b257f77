//! `salebeacon-proxy reconcile`: a client of a running proxy's admin API.
//!
//! The reconciliation itself runs inside the proxy, because only its sender may make requests to
//! Growi (they share the pace; see `reconcile::run`). This command asks the proxy to start one
//! (`POST {proxy}/admin/reconcile`), follows it (`GET {proxy}/admin/reconcile` every two seconds,
//! progress on stderr) and prints the finished report: a table on stdout, or the report's JSON
//! with `--json`. Behind a load balancer over several instances, a standing-by instance answers
//! `503` and the command asks again until it reaches the sender; the polls may land on any
//! instance, since the run's record lives in the shared database.
//!
//! Exit codes, like `diff(1)`: 0 when everything agrees, 1 when something differs, 2 when the
//! reconciliation could not run (bad arguments, no token, proxy unreachable or refusing, Growi
//! refusing, the run stopped or timed out). The admin token comes from `SALEBEACON_ADMIN_TOKEN`,
//! never from the command line, and is never printed.

use reqwest::header::{HeaderValue, AUTHORIZATION, RETRY_AFTER};
use reqwest::StatusCode;
use salebeacon_proxy::config::ENV_ADMIN_TOKEN;
use salebeacon_proxy::reconcile::run::{Record, RunState, RunStatus};
use salebeacon_proxy::reconcile::{Day, Report};
use serde_json::{json, Value};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Exit code: everything agrees.
pub const AGREE: u8 = 0;
/// Exit code: something differs.
pub const DIFFER: u8 = 1;
/// Exit code: the reconciliation could not run.
pub const COULD_NOT_RUN: u8 = 2;

/// How often the run is polled.
const POLL: Duration = Duration::from_secs(2);
/// One HTTP request to the proxy may take this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Polls that may fail in a row (a proxy restarting, a database hiccup) before giving up.
const POLL_FAILURES: u32 = 15;

/// The subcommand's arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// First day compared, YYYY-MM-DD (UTC). Default: 29 days before --until.
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// Last day compared, YYYY-MM-DD (UTC). Default: today.
    #[arg(long, value_name = "DATE")]
    until: Option<String>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// The running proxy's base URL (its base path included).
    #[arg(
        long,
        env = "SALEBEACON_PROXY_URL",
        value_name = "URL",
        default_value = "http://127.0.0.1:8080/salebeacon"
    )]
    proxy: String,
    /// Give up following the run after this many seconds (it goes on in the proxy).
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    timeout_secs: u64,
}

/// Runs the subcommand; the exit code says how it went.
pub async fn main(args: Args) -> ExitCode {
    match reconcile(&args).await {
        Ok(report) => {
            if args.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(text) => println!("{text}"),
                    Err(e) => {
                        eprintln!("salebeacon-proxy reconcile: cannot write the report: {e}");
                        return ExitCode::from(COULD_NOT_RUN);
                    }
                }
            } else {
                print!("{}", report.table());
            }
            ExitCode::from(if report.agree { AGREE } else { DIFFER })
        }
        Err(message) => {
            eprintln!("salebeacon-proxy reconcile: {message}");
            ExitCode::from(COULD_NOT_RUN)
        }
    }
}

fn day(name: &str, value: Option<&str>) -> Result<Option<Day>, String> {
    match value {
        None => Ok(None),
        Some(v) => Day::parse(v)
            .map(Some)
            .ok_or_else(|| format!("--{name} must be a date, YYYY-MM-DD (got {v:?})")),
    }
}

struct Proxy {
    http: reqwest::Client,
    base: String,
    auth: HeaderValue,
}

impl Proxy {
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, Option<u64>, Value), String> {
        let resp = request
            .header(AUTHORIZATION, self.auth.clone())
            .send()
            .await
            .map_err(|e| format!("cannot reach the proxy at {}: {}", self.base, causes(&e)))?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        Ok((status, retry_after, body))
    }

    fn refused(&self, status: StatusCode, body: &Value) -> String {
        let reason = body
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("no reason given");
        match status {
            StatusCode::UNAUTHORIZED => format!(
                "the proxy at {} refused the admin token (401): check {ENV_ADMIN_TOKEN}",
                self.base
            ),
            StatusCode::NOT_FOUND => format!(
                "the proxy at {} has no reconciliation endpoint (404): check --proxy (its base \
                 path included) and the proxy's version",
                self.base
            ),
            _ => format!("the proxy at {} answered {status}: {reason}", self.base),
        }
    }
}

/// A reqwest error with its causes ("error sending request: connection refused").
fn causes(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

async fn reconcile(args: &Args) -> Result<Report, String> {
    let since = day("since", args.since.as_deref())?;
    let until = day("until", args.until.as_deref())?;
    if let (Some(s), Some(u)) = (since, until) {
        if s > u {
            return Err(format!("--since ({s}) is after --until ({u})"));
        }
    }
    let token = std::env::var(ENV_ADMIN_TOKEN)
        .ok()
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| format!("{ENV_ADMIN_TOKEN} is not set: the admin API needs it"))?;
    let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
        .map_err(|_| format!("{ENV_ADMIN_TOKEN} cannot be sent in an HTTP header"))?;
    auth.set_sensitive(true);
    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        // The token must not follow a redirect anywhere.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!(
            "salebeacon-proxy-reconcile/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let proxy = Proxy {
        http,
        base: args.proxy.trim_end_matches('/').to_owned(),
        auth,
    };
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    let run = start(&proxy, since, until, deadline).await?;
    eprintln!(
        "reconciling {} to {} (run {}), at the sender's pace",
        run.since, run.until, run.id
    );
    follow(&proxy, &run.id, deadline).await
}

/// Starts a run, asking again while the proxy stands by or runs another one.
async fn start(
    proxy: &Proxy,
    since: Option<Day>,
    until: Option<Day>,
    deadline: Instant,
) -> Result<RunStatus, String> {
    let url = format!("{}/admin/reconcile", proxy.base);
    let mut body = json!({});
    if let Some(s) = since {
        body["since"] = json!(s);
    }
    if let Some(u) = until {
        body["until"] = json!(u);
    }
    let mut said_standby = false;
    let mut said_busy = false;
    loop {
        let (status, retry_after, answer) = proxy.call(proxy.http.post(&url).json(&body)).await?;
        let wait = match status {
            StatusCode::ACCEPTED => {
                return serde_json::from_value(answer["run"].clone())
                    .map_err(|e| format!("the proxy's answer is not a run: {e}"));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                if !said_standby {
                    eprintln!(
                        "the proxy stands by (it is not the sender, or its outbox is \
                         unavailable); asking again"
                    );
                    said_standby = true;
                }
                Duration::from_secs(retry_after.unwrap_or(2).clamp(1, 30))
            }
            StatusCode::CONFLICT => {
                if !said_busy {
                    eprintln!(
                        "another reconciliation is running (run {}); starting ours when it ends",
                        answer["run"]["id"].as_str().unwrap_or("?")
                    );
                    said_busy = true;
                }
                POLL
            }
            _ => return Err(proxy.refused(status, &answer)),
        };
        if Instant::now() + wait > deadline {
            return Err("timed out before the proxy would start a reconciliation".into());
        }
        tokio::time::sleep(wait).await;
    }
}

/// Polls the run until it ends; its report.
async fn follow(proxy: &Proxy, id: &str, deadline: Instant) -> Result<Report, String> {
    let url = format!("{}/admin/reconcile", proxy.base);
    let mut failures = 0u32;
    let mut shown = (0u32, None);
    loop {
        tokio::time::sleep(POLL).await;
        if Instant::now() > deadline {
            return Err(format!(
                "gave up following run {id}; it goes on in the proxy (GET /admin/reconcile \
                 shows it)"
            ));
        }
        let polled = proxy.call(proxy.http.get(&url)).await;
        let record: Record = match polled {
            Ok((StatusCode::OK, _, body)) => serde_json::from_value(body)
                .map_err(|e| format!("the proxy's answer is not a reconciliation record: {e}"))?,
            Ok((StatusCode::UNAUTHORIZED, _, body)) => {
                return Err(proxy.refused(StatusCode::UNAUTHORIZED, &body))
            }
            other => {
                failures += 1;
                if failures >= POLL_FAILURES {
                    return Err(match other {
                        Ok((status, _, body)) => proxy.refused(status, &body),
                        Err(e) => e,
                    });
                }
                continue;
            }
        };
        failures = 0;
        let Some(run) = record.run.filter(|r| r.id == id) else {
            return match record.last.filter(|r| r.id == id) {
                Some(report) => Ok(report),
                None => Err(format!(
                    "run {id} is no longer the proxy's record (another run replaced it)"
                )),
            };
        };
        match run.state {
            RunState::Running if run.stale => {
                return Err(format!(
                    "run {id} stopped making progress (last heard of at {}): its proxy instance \
                     may have stopped; run the command again",
                    run.updated_at
                ))
            }
            RunState::Running => {
                if (run.pages_read, run.page_count) != shown {
                    shown = (run.pages_read, run.page_count);
                    match run.page_count {
                        Some(n) => {
                            eprintln!("read {} of {n} pages of Growi's sales", run.pages_read)
                        }
                        None => eprintln!("read {} pages of Growi's sales", run.pages_read),
                    }
                }
            }
            RunState::Failed => {
                return Err(format!(
                    "the reconciliation failed: {}",
                    run.error.as_deref().unwrap_or("no reason given")
                ))
            }
            RunState::Done => {
                return record
                    .last
                    .filter(|r| r.id == id)
                    .ok_or_else(|| format!("run {id} is done but its report is not kept"));
            }
        }
    }
}
