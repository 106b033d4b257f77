//! The fuzzing driver and the hostile-input generators shared by every `fuzz_*` harness: the
//! core's (`tests/fuzz.rs`), the proxy's (`proxy/tests/fuzz.rs`) and the sandbox's
//! (`sandbox/tests/fuzz.rs`), which include this file with `#[path]`.
//!
//! Why this shape: `cargo fuzz` needs nightly, which these machines do not have, so the harnesses
//! run on stable through proptest's generators and shrinker, driven by [`fuzz`] rather than by the
//! `proptest!` macro. The macro takes a fixed case count; a fuzzer also needs a time budget and a
//! count of what it tried, and it must survive a panic in the code under test to report it. So:
//! - `SALEBEACON_FUZZ_CASES` (default [`DEFAULT_CASES`], small enough for the normal `cargo test`)
//!   and `SALEBEACON_FUZZ_SECS` (a time budget per harness; with it and no case count, the run is
//!   bounded by time alone) say how long a harness runs; `SALEBEACON_FUZZ_SEED` repeats a run
//!   (every run prints its seed). `cargo xtask fuzz` sets them for the long run.
//! - A finding (a property that fails, or a panic, caught with `catch_unwind`) is shrunk with
//!   proptest's value trees to a minimal input, and the harness fails with it and the seed. A
//!   finding is then kept as a `regression_*` test next to its harness.
//! - Every harness prints `fuzz-report harness=NAME inputs=N findings=F seconds=S seed=X` on
//!   stderr (shown with `--nocapture`), which `cargo xtask fuzz` collects into its table.
//!
//! The generators produce arbitrary bytes, arbitrary JSON (duplicate keys, deep nesting, numbers
//! out of every range, unicode edge cases) and, most usefully, *near-valid* inputs: a sale or an
//! update that is right in most fields and hostile in a few, so the fuzzer gets past the first
//! check and into the rules behind it.
#![allow(dead_code)]

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::cell::{Cell, RefCell};
use std::fmt::Debug;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;
use std::time::{Duration, Instant};

/// Inputs per harness in a plain `cargo test`.
pub const DEFAULT_CASES: u64 = 256;
/// The longest a finding is shrunk.
const SHRINK_TIME: Duration = Duration::from_secs(60);
const SHRINK_STEPS: u32 = 10_000;

/// JavaScript's `Number.MAX_SAFE_INTEGER`, the largest amount or id the rules take.
pub const MAX_SAFE: u64 = (1 << 53) - 1;

/// How long a harness runs, from the environment.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub cases: u64,
    pub secs: Option<f64>,
    pub seed: u64,
}

impl Settings {
    pub fn from_env() -> Settings {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let secs = var("SALEBEACON_FUZZ_SECS").and_then(|v| v.trim().parse::<f64>().ok());
        let cases = match var("SALEBEACON_FUZZ_CASES").and_then(|v| v.trim().parse::<u64>().ok()) {
            Some(n) => n,
            None if secs.is_some() => u64::MAX,
            None => DEFAULT_CASES,
        };
        let seed = var("SALEBEACON_FUZZ_SEED")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0)
                    ^ u64::from(std::process::id())
            });
        Settings { cases, secs, seed }
    }
}

thread_local! {
    /// Set while a property runs: a panic is then a finding, not noise on stderr.
    static QUIET: Cell<bool> = const { Cell::new(false) };
    /// Where the last quiet panic happened.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

fn quiet_panics() {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if QUIET.with(Cell::get) {
                LAST_PANIC.with(|l| *l.borrow_mut() = Some(info.to_string()));
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `property` on one input; a panic is an `Err` with its message and place.
fn check<V, F>(property: &mut F, value: &V) -> Result<(), String>
where
    F: FnMut(&V) -> Result<(), String>,
{
    QUIET.with(|q| q.set(true));
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| property(value)));
    QUIET.with(|q| q.set(false));
    match outcome {
        Ok(result) => result,
        Err(_) => Err(format!(
            "panic: {}",
            LAST_PANIC
                .with(|l| l.borrow_mut().take())
                .unwrap_or_else(|| "(no message)".into())
        )),
    }
}

/// Runs the harness `name`: inputs from `strategy` until the case count or the time budget is
/// spent, each through `property` (an `Err` or a panic is a finding). Prints the report line;
/// fails with the shrunk input on a finding.
pub fn fuzz<S, F>(name: &str, strategy: S, mut property: F)
where
    S: Strategy,
    S::Value: Debug,
    F: FnMut(&S::Value) -> Result<(), String>,
{
    let settings = Settings::from_env();
    quiet_panics();
    let seed = settings.seed ^ fnv(name);
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&(seed.rotate_left(i as u32 * 17) ^ i as u64).to_le_bytes());
    }
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    );
    let started = Instant::now();
    let out_of_time = |now: Instant| {
        settings
            .secs
            .is_some_and(|s| now.duration_since(started).as_secs_f64() >= s)
    };
    let mut tried: u64 = 0;
    let mut rejected: u64 = 0;
    while tried < settings.cases && !out_of_time(Instant::now()) {
        let Ok(mut tree) = strategy.new_tree(&mut runner) else {
            rejected += 1;
            assert!(
                rejected < 10_000,
                "fuzz {name}: the generator rejects everything"
            );
            continue;
        };
        tried += 1;
        if let Err(first) = check(&mut property, &tree.current()) {
            let (minimal, why) = shrink(&mut tree, &mut property, first);
            report(name, tried, 1, started, settings.seed);
            panic!(
                "fuzz {name}: finding after {tried} inputs (repeat with SALEBEACON_FUZZ_SEED={}):\n{why}\nminimal input: {minimal:#?}",
                settings.seed
            );
        }
    }
    report(name, tried, 0, started, settings.seed);
}

fn shrink<T, F>(tree: &mut T, property: &mut F, first: String) -> (T::Value, String)
where
    T: ValueTree,
    F: FnMut(&T::Value) -> Result<(), String>,
{
    let mut best = (tree.current(), first);
    let deadline = Instant::now() + SHRINK_TIME;
    if !tree.simplify() {
        return best;
    }
    let mut steps = 0;
    while steps < SHRINK_STEPS && Instant::now() < deadline {
        steps += 1;
        let value = tree.current();
        match check(property, &value) {
            Err(why) => {
                best = (value, why);
                if !tree.simplify() {
                    break;
                }
            }
            Ok(()) => {
                if !tree.complicate() {
                    break;
                }
            }
        }
    }
    best
}

fn report(name: &str, inputs: u64, findings: u32, started: Instant, seed: u64) {
    eprintln!(
        "fuzz-report harness={name} inputs={inputs} findings={findings} seconds={:.1} seed={seed}",
        started.elapsed().as_secs_f64()
    );
}

/// FNV-1a, to give each harness its own stream from one seed.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// How often each kind of outcome came, to show what the inputs reached: printed as
/// `fuzz-outcomes harness=NAME kind=count ...` next to the report line.
#[derive(Default)]
pub struct Tally(RefCell<std::collections::BTreeMap<String, u64>>);

impl Tally {
    pub fn count(&self, what: impl Into<String>) {
        *self.0.borrow_mut().entry(what.into()).or_default() += 1;
    }

    pub fn print(&self, harness: &str) {
        let counts: Vec<String> = self
            .0
            .borrow()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        eprintln!("fuzz-outcomes harness={harness} {}", counts.join(" "));
    }
}

/// `Err(message)` unless `cond` (the harnesses include this file with `#[macro_use]`).
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

// ---------------------------------------------------------------------------------------------
// JSON as text, so that what serde_json would never write (duplicate keys, numbers out of range,
// lone surrogates, nesting) can be written.

/// A JSON value to render as text.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    /// Raw JSON text for a value: a number, a literal, or something invalid on purpose.
    Lit(String),
    /// A string, escaped when rendered.
    Str(String),
    Arr(Vec<Json>),
    /// Keys in order, duplicates allowed.
    Obj(Vec<(String, Json)>),
}

impl Json {
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_into(&mut out);
        out
    }

    fn render_into(&self, out: &mut String) {
        match self {
            Json::Lit(t) => out.push_str(t),
            Json::Str(s) => out.push_str(&serde_json::to_string(s).unwrap_or_default()),
            Json::Arr(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.render_into(out);
                }
                out.push(']');
            }
            Json::Obj(fields) => render_fields(fields, out),
        }
    }

    /// The value as a URL would carry it: strings as they are, anything else as its JSON text.
    pub fn as_text(&self) -> String {
        match self {
            Json::Str(s) => s.clone(),
            other => other.render(),
        }
    }
}

fn render_fields(fields: &[(String, Json)], out: &mut String) {
    out.push('{');
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(k).unwrap_or_default());
        out.push(':');
        v.render_into(out);
    }
    out.push('}');
}

/// `{"k":v,...}` with the keys in order.
pub fn object_text(fields: &[(String, Json)]) -> String {
    let mut out = String::new();
    render_fields(fields, &mut out);
    out
}

// ---------------------------------------------------------------------------------------------
// Leaves.

const HOSTILE: &[&str] = &[
    "",
    " ",
    "\t",
    "\n",
    "\r\n",
    "\u{0}",
    "a\u{0}b",
    "\u{7}",
    "\u{1b}[31m",
    "\u{7f}",
    "\u{85}",
    "\u{a0}",
    "\u{ad}",
    "\u{feff}",
    "\u{200b}",
    "\u{200d}",
    "\u{202e}",
    "\u{2028}",
    "\u{3000}",
    "\u{fffd}",
    "\u{fffe}",
    "\u{10ffff}",
    "é",
    "e\u{301}",
    "😀",
    "👩‍👩‍👧",
    "１２３",
    "٤٢",
    "ß",
    "İ",
    "ǅ",
    "null",
    "true",
    "[]",
    "{}",
    "NaN",
    "Infinity",
    "-0",
    "0x10",
    "1e3",
    "1_000",
    "%",
    "%0",
    "%00",
    "%zz",
    "%%41",
    "%C3%A9",
    "%FF",
    "+",
    "~",
    "~~",
    ";",
    "=",
    "&",
    "\"",
    "\\",
    "'",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "../../etc/passwd",
    "${jndi:ldap://x}",
    "__proto__",
    "constructor",
];

/// Strings from the hostile pool, arbitrary unicode, control characters, and texts just under
/// and over the 255-byte limit in one-, two- and four-byte characters.
pub fn hostile_string() -> BoxedStrategy<String> {
    prop_oneof![
        4 => prop::sample::select(HOSTILE).prop_map(str::to_owned),
        3 => "\\PC{0,24}",
        2 => any::<String>(),
        1 => "[\\x00-\\x1f\\x7f]{1,4}",
        1 => (prop::sample::select(&["x", "é", "😀", " "][..]), 240usize..=270)
            .prop_map(|(unit, target)| fill(unit, target)),
        1 => (prop::sample::select(HOSTILE), prop::sample::select(HOSTILE), "[a-z0-9]{0,6}")
            .prop_map(|(a, b, c)| format!("{a}{c}{b}")),
    ]
    .boxed()
}

/// `unit` repeated to at most `target` bytes.
pub fn fill(unit: &str, target: usize) -> String {
    let mut s = String::new();
    while s.len() + unit.len() <= target {
        s.push_str(unit);
    }
    s
}

const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "0.0",
    "-0.0",
    "1",
    "-1",
    "12999",
    "12999.0",
    "1.2999e4",
    "129.99",
    "0.1",
    "1e2",
    "1E2",
    "1e-7",
    "1e308",
    "-1e308",
    "1e309",
    "9007199254740991",
    "9007199254740992",
    "9007199254740993",
    "-9007199254740991",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "123456789012345678901234567890",
    "0.000000000000000000001",
    "5e-324",
    "2.5e-324",
    "253402300799",
    "253402300800",
    "1759276529",
    "01",
    "+1",
    ".5",
    "1.",
    "NaN",
    "Infinity",
    "\"\\ud800\"",
    "\"\\udc00\\ud800\"",
    "\"\\u0000\"",
    "\"\\uDBFF\\uDFFF\"",
];

/// JSON number texts: every range's edge, integers and floats of every size, and a few that are
/// not JSON at all.
pub fn number_text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => prop::sample::select(NUMBERS).prop_map(str::to_owned),
        2 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => (0..=MAX_SAFE + 2).prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_map(|f| format!("{f:?}")),
        1 => any::<f64>().prop_map(|f| format!("{f:e}")),
        1 => (any::<i32>(), 0u32..100_000).prop_map(|(w, f)| format!("{w}.{f}")),
    ]
    .boxed()
}

fn leaf() -> BoxedStrategy<Json> {
    prop_oneof![
        1 => Just(Json::Lit("null".into())),
        1 => any::<bool>().prop_map(|b| Json::Lit(b.to_string())),
        3 => number_text().prop_map(Json::Lit),
        4 => hostile_string().prop_map(Json::Str),
    ]
    .boxed()
}

/// Field names: every name the rules know, their aliases and near misses, and hostile text.
pub const KNOWN_KEYS: &[&str] = &[
    "order_id",
    "total",
    "subtotal",
    "currency",
    "campaign_affiliate_id",
    "growi_user_id",
    "growi_campaign_id",
    "occurred_at",
    "due_at",
    "customer_email",
    "customer_name",
    "visitor_uid",
    "sale_type",
    "commission",
    "status",
    "order_token",
    "amount",
    "value",
    "orderId",
    "ORDER_ID",
    "Order-Id",
    "ordr_id",
    "email",
    "name",
    "ref",
    "tag",
    "id",
    "update",
    "aff",
    "vid",
    "domain",
    "_",
    "cb",
];

pub fn key() -> BoxedStrategy<String> {
    prop_oneof![
        4 => prop::sample::select(KNOWN_KEYS).prop_map(str::to_owned),
        1 => hostile_string(),
    ]
    .boxed()
}

/// Any JSON value: nested lists and objects with duplicate keys, a few levels deep.
pub fn json_value() -> BoxedStrategy<Json> {
    leaf()
        .prop_recursive(5, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Arr),
                prop::collection::vec((key(), inner), 0..6).prop_map(Json::Obj),
            ]
        })
        .boxed()
}

/// Text nested far deeper than any parser's recursion limit, balanced or not.
pub fn deep_nesting() -> BoxedStrategy<String> {
    (
        1usize..5_000,
        prop::sample::select(&["[", "{\"a\":", "{\"order_id\":[", "[{\"x\":"][..]),
        any::<bool>(),
    )
        .prop_map(|(depth, open, balanced)| {
            let close: String = open
                .chars()
                .rev()
                .filter_map(|c| match c {
                    '[' => Some(']'),
                    '{' => Some('}'),
                    _ => None,
                })
                .collect();
            let mut s = open.repeat(depth);
            s.push('1');
            if balanced {
                s.push_str(&close.repeat(depth));
            }
            s
        })
        .boxed()
}

/// `text` with a few bytes replaced, inserted or removed (the result may not be UTF-8).
pub fn mutated(text: impl Strategy<Value = String> + 'static) -> BoxedStrategy<Vec<u8>> {
    (
        text,
        prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..4),
    )
        .prop_map(|(text, edits)| {
            let mut b = text.into_bytes();
            for (at, byte, op) in edits {
                let i = if b.is_empty() { 0 } else { at % (b.len() + 1) };
                match op {
                    0 if i < b.len() => b[i] = byte,
                    1 => b.insert(i, byte),
                    _ if i < b.len() => {
                        b.remove(i);
                    }
                    _ => b.push(byte),
                }
            }
            b
        })
        .boxed()
}

/// JSON text of every kind: any value, deep nesting, and near-valid sales.
pub fn json_text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => json_value().prop_map(|v| v.render()),
        1 => deep_nesting(),
        4 => sale_fields().prop_map(|f| object_text(&f)),
        2 => update_fields().prop_map(|f| object_text(&f)),
    ]
    .boxed()
}

/// A request body: bytes, shown as text (with escapes) in a finding.
#[derive(Clone, PartialEq)]
pub struct Body(pub Vec<u8>);

impl Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

impl From<String> for Body {
    fn from(s: String) -> Body {
        Body(s.into_bytes())
    }
}

/// Bodies as bytes: arbitrary bytes, any JSON text, and JSON text with bytes flipped.
pub fn body_bytes() -> BoxedStrategy<Body> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..256).prop_map(Body),
        4 => json_text().prop_map(Body::from),
        2 => mutated(json_text()).prop_map(Body),
        2 => mutated(sale_fields().prop_map(|f| object_text(&f))).prop_map(Body),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// Near-valid sales and updates: each field right most of the time, hostile otherwise.

fn s(v: impl Into<String>) -> Json {
    Json::Str(v.into())
}

fn other_types() -> BoxedStrategy<Json> {
    prop_oneof![
        Just(Json::Lit("null".into())),
        any::<bool>().prop_map(|b| Json::Lit(b.to_string())),
        Just(Json::Arr(vec![])),
        Just(Json::Obj(vec![])),
        json_value(),
    ]
    .boxed()
}

pub fn order_id() -> BoxedStrategy<Json> {
    prop_oneof![
        10 => "[A-Za-z0-9_-]{1,24}".prop_map(s),
        1 => (0u64..1_000_000).prop_map(|n| Json::Lit(n.to_string())),
        1 => " [A-Z0-9-]{1,10}\t".prop_map(s),
        1 => hostile_string().prop_map(s),
        1 => number_text().prop_map(Json::Lit),
        1 => other_types(),
    ]
    .boxed()
}

pub fn amount() -> BoxedStrategy<Json> {
    prop_oneof![
        10 => (0u64..10_000_000).prop_map(|n| Json::Lit(n.to_string())),
        1 => (0..=MAX_SAFE + 2).prop_map(|n| Json::Lit(n.to_string())),
        2 => number_text().prop_map(Json::Lit),
        1 => prop::sample::select(&["129.99", "12999", "", " 5 "][..]).prop_map(s),
        1 => other_types(),
    ]
    .boxed()
}

pub fn currency() -> BoxedStrategy<Json> {
    prop_oneof![
        10 => prop::sample::select(&["usd", "eur", "jpy", "kwd", "gbp", "clf", "USD", "Eur", "uyw"][..]).prop_map(s),
        2 => "[a-zA-Z]{3}".prop_map(s),
        1 => prop::sample::select(&[" usd ", "", "usdd", "us", "bgn", "xxx", "ü", "u\u{0}d", "ＵＳＤ"][..]).prop_map(s),
        1 => hostile_string().prop_map(s),
        1 => other_types(),
    ]
    .boxed()
}

pub fn tag() -> BoxedStrategy<Json> {
    prop_oneof![
        6 => prop::sample::select(&["creator42", "ana_lifestyle", "fixed_fred", "unknown_tag"][..]).prop_map(s),
        3 => "[A-Za-z0-9_.-]{1,64}".prop_map(s),
        1 => "[A-Za-z0-9_.-]{65,70}".prop_map(s),
        1 => hostile_string().prop_map(s),
        1 => number_text().prop_map(Json::Lit),
        1 => other_types(),
    ]
    .boxed()
}

pub fn growi_id() -> BoxedStrategy<Json> {
    prop_oneof![
        4 => (1u64..100).prop_map(|n| Json::Lit(n.to_string())),
        1 => (0..=MAX_SAFE + 2).prop_map(|n| Json::Lit(n.to_string())),
        1 => prop::sample::select(&["42", " 7 ", "0", "-1", "٤٢", "1e1", "007"][..]).prop_map(s),
        1 => number_text().prop_map(Json::Lit),
        1 => other_types(),
    ]
    .boxed()
}

fn attribution() -> BoxedStrategy<Vec<(String, Json)>> {
    let pair = prop_oneof![
        4 => prop::sample::select(&[(42u64, 7u64), (43, 7), (44, 8)][..])
            .prop_map(|(u, c)| (Json::Lit(u.to_string()), Json::Lit(c.to_string()))),
        2 => (growi_id(), growi_id()),
    ];
    prop_oneof![
        8 => tag().prop_map(|t| vec![("campaign_affiliate_id".to_owned(), t)]),
        4 => pair.prop_map(|(u, c)| vec![
            ("growi_user_id".to_owned(), u),
            ("growi_campaign_id".to_owned(), c),
        ]),
        1 => (tag(), growi_id(), growi_id()).prop_map(|(t, u, c)| vec![
            ("campaign_affiliate_id".to_owned(), t),
            ("growi_user_id".to_owned(), u),
            ("growi_campaign_id".to_owned(), c),
        ]),
        1 => growi_id().prop_map(|u| vec![("growi_user_id".to_owned(), u)]),
        1 => Just(Vec::new()),
    ]
    .boxed()
}

const TIMES: &[&str] = &[
    "2025-09-30T23:55:29Z",
    "2025-09-30T23:55:29.000Z",
    "2025-10-01T01:55:29.5+02:00",
    "2025-09-30 18:55:29.123456-05:00",
    "2025-09-30",
    "2025-09-30T23:55:29",
    "1970-01-01T00:00:00Z",
    "1970-01-01T00:00:00+01:00",
    "1970-01-01T00:59:59.999+01:00",
    "1969-12-31T23:59:59Z",
    "1969-12-31T23:00:00-01:00",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59.999Z",
    "9999-12-31T23:59:60Z",
    "9999-12-31T23:59:59-00:01",
    "9999-12-31T22:00:00-02:00",
    "10000-01-01T00:00:00Z",
    "2024-02-29T00:00:00Z",
    "2025-02-29T00:00:00Z",
    "2016-12-31T23:59:60Z",
    "2025-01-01T00:00:00.Z",
    "2025-01-01T00:00:00+0100",
    "2025-01-01T00:00:00+24:00",
    "2025-01-01T00:00:00Zjunk",
    "２０２５-01-01T00:00:00Z",
    "2025-01-01T00:00:00.12345678901234567890Z",
    "yesterday",
    "1759276529",
    "",
];

/// Timestamps: RFC 3339 built from parts around every edge (years 1969-10000, day 0 and 32,
/// hour 24, second 60, offsets that cross a year), texts that look like one, and numbers.
pub fn timestamp() -> BoxedStrategy<Json> {
    let built = (
        prop_oneof![
            6 => 2020i32..2030,
            1 => prop::sample::select(&[0, 1969, 1970, 9999, 10000][..]),
        ],
        prop_oneof![6 => 1u32..=12, 1 => 0u32..=13],
        prop_oneof![6 => 1u32..=28, 1 => 0u32..=32],
        prop_oneof![6 => 0u32..24, 1 => 0u32..=25],
        0u32..=60,
        prop_oneof![6 => 0u32..60, 1 => 0u32..=61],
        prop::sample::select(&["", ".", ".5", ".123", ".123456789", ".9999"][..]),
        prop::sample::select(
            &[
                "Z", "Z", "Z", "z", "+00:00", "-00:00", "+01:00", "-01:00", "+23:59", "-23:59",
                "+24:00", "+0100", "", "Zx",
            ][..],
        ),
        prop::sample::select(&["T", "T", "T", "t", " ", "_"][..]),
    )
        .prop_map(|(y, mo, d, h, mi, sec, frac, zone, sep)| {
            s(format!(
                "{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{sec:02}{frac}{zone}"
            ))
        });
    prop_oneof![
        6 => built,
        3 => prop::sample::select(TIMES).prop_map(s),
        1 => prop::sample::select(&["0", "-1", "253402300799", "253402300800", "1759276529", "1759276529.5", "1e10"][..])
            .prop_map(|n| Json::Lit(n.to_owned())),
        1 => hostile_string().prop_map(s),
        1 => other_types(),
    ]
    .boxed()
}

pub fn email() -> BoxedStrategy<Json> {
    prop_oneof![
        8 => "[a-z0-9._%+-]{1,12}@[a-z0-9-]{1,12}\\.[a-z]{2,6}".prop_map(s),
        1 => prop::sample::select(&[
            "a@b.co", "a@b", "@b.co", "a@.co", "a..b@c.co", ".a@b.co", "é@ü.de", "a@b.c1", "a@b.12",
            "a@-b.co", "a b@c.co", "a@b.co ", " a@b.co", "a@@b.co", "\"a\"@b.co",
        ][..])
        .prop_map(s),
        1 => (1usize..70, 1usize..70).prop_map(|(l, d)| s(format!("{}@{}.com", "a".repeat(l), "b".repeat(d)))),
        1 => hostile_string().prop_map(s),
        1 => other_types(),
    ]
    .boxed()
}

pub fn text() -> BoxedStrategy<Json> {
    prop_oneof![
        6 => "[A-Za-z][A-Za-z ]{0,30}".prop_map(s),
        2 => "\\PC{1,30}".prop_map(s),
        2 => hostile_string().prop_map(s),
        1 => other_types(),
    ]
    .boxed()
}

/// A UUID v4 from 16 random bytes, as the tracker makes them.
pub fn uuid_v4(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

pub fn visitor_uid() -> BoxedStrategy<Json> {
    prop_oneof![
        6 => any::<[u8; 16]>().prop_map(|b| s(uuid_v4(b))),
        1 => any::<[u8; 16]>().prop_map(|b| s(uuid_v4(b).to_ascii_uppercase())),
        1 => "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}".prop_map(s),
        1 => hostile_string().prop_map(s),
        1 => other_types(),
    ]
    .boxed()
}

pub fn sale_type() -> BoxedStrategy<Json> {
    prop_oneof![
        6 => prop::sample::select(&["one_time", "subscription"][..]).prop_map(s),
        1 => prop::sample::select(&["ONE_TIME", "one-time", "", "recurring"][..]).prop_map(s),
        1 => hostile_string().prop_map(s),
        1 => other_types(),
    ]
    .boxed()
}

pub fn status() -> BoxedStrategy<Json> {
    prop_oneof![
        6 => prop::sample::select(&["unpaid", "paid", "paid_externally", "cancelled", "canceled"][..]).prop_map(s),
        1 => prop::sample::select(&["refunded", "PAID", "", "due"][..]).prop_map(s),
        1 => hostile_string().prop_map(s),
        1 => other_types(),
    ]
    .boxed()
}

pub fn order_token() -> BoxedStrategy<Json> {
    prop_oneof![
        3 => "[0-9]{1,13}\\.[0-9a-fA-F]{0,70}".prop_map(s),
        1 => prop::sample::select(&["", "1.ab", ".", "2000000000.", "x.y"][..]).prop_map(s),
        1 => hostile_string().prop_map(s),
        1 => other_types(),
    ]
    .boxed()
}

fn extras() -> BoxedStrategy<Vec<(usize, String, Json)>> {
    prop_oneof![
        6 => Just(Vec::new()),
        2 => prop::collection::vec((any::<usize>(), key(), leaf()), 1..3),
        1 => prop::collection::vec((any::<usize>(), key(), json_value()), 1..3),
    ]
    .boxed()
}

fn assemble(
    parts: Vec<(&str, Option<Json>)>,
    extra: Vec<(usize, String, Json)>,
) -> Vec<(String, Json)> {
    let mut out: Vec<(String, Json)> = parts
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
        .collect();
    for (at, k, v) in extra {
        let i = at % (out.len() + 1);
        out.insert(i, (k, v));
    }
    out
}

/// A sale as a shop would hand it over: a valid one with zero to three fields changed, removed
/// or added (so that a good share gets through every rule and into what lies behind them), or
/// one drawn field by field from the wilder pools.
pub fn sale_fields() -> BoxedStrategy<Vec<(String, Json)>> {
    prop_oneof![
        3 => edited(valid_sale()),
        2 => wild_sale(),
    ]
    .boxed()
}

/// A valid sale as a page sends it (no server-side field), attributed to a seeded affiliate
/// most of the time.
pub fn valid_sale() -> BoxedStrategy<Vec<(String, Json)>> {
    use prop::option::weighted;
    let n = |v: u64| Json::Lit(v.to_string());
    let attribution = prop_oneof![
        6 => prop::sample::select(&["creator42", "ana_lifestyle", "fixed_fred"][..])
            .prop_map(|t| vec![("campaign_affiliate_id".to_owned(), s(t))]),
        2 => "[A-Za-z0-9_.-]{1,64}".prop_map(|t| vec![("campaign_affiliate_id".to_owned(), s(t))]),
        2 => prop::sample::select(&[(42u64, 7u64), (43, 7), (44, 8), (1, 1), (MAX_SAFE, MAX_SAFE)][..])
            .prop_map(move |(u, c)| vec![
                ("growi_user_id".to_owned(), n(u)),
                ("growi_campaign_id".to_owned(), n(c)),
            ]),
    ];
    let time = (
        2020i32..2031,
        1u32..=12,
        1u32..=28,
        0u32..24,
        0u32..60,
        0u32..60,
        prop::sample::select(&["Z", "Z", "+02:00", "-05:00", ".250Z"][..]),
    )
        .prop_map(|(y, mo, d, h, mi, sec, zone)| {
            s(format!(
                "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{sec:02}{zone}"
            ))
        });
    (
        (
            "[A-Za-z0-9_-]{1,24}",
            prop_oneof![
                8 => (0u64..10_000_000).prop_map(|t| (Some(t), None)),
                1 => (0u64..10_000_000, 0u64..10_000_000).prop_map(|(t, u)| (Some(t), Some(u))),
                1 => (0u64..10_000_000).prop_map(|u| (None, Some(u))),
            ],
            prop::sample::select(&["usd", "eur", "jpy", "kwd", "gbp", "USD", " Eur "][..]),
            attribution,
        ),
        (
            weighted(0.4, time),
            weighted(0.3, "[a-z0-9]{1,12}@[a-z0-9]{1,12}\\.[a-z]{2,6}"),
            weighted(0.3, "[A-Za-z][A-Za-z ]{0,30}"),
            weighted(0.5, any::<[u8; 16]>()),
            weighted(0.2, prop::sample::select(&["one_time", "subscription"][..])),
        ),
    )
        .prop_map(
            |((id, (total, subtotal), currency, attribution), (at, email, name, uid, kind))| {
                let mut f = vec![("order_id".to_owned(), s(id))];
                f.extend(total.map(|t| ("total".to_owned(), Json::Lit(t.to_string()))));
                f.extend(subtotal.map(|t| ("subtotal".to_owned(), Json::Lit(t.to_string()))));
                f.push(("currency".to_owned(), s(currency)));
                f.extend(attribution);
                f.extend(at.map(|t| ("occurred_at".to_owned(), t)));
                f.extend(email.map(|e| ("customer_email".to_owned(), s(e))));
                f.extend(name.map(|x| ("customer_name".to_owned(), s(x))));
                f.extend(uid.map(|b| ("visitor_uid".to_owned(), s(uuid_v4(b)))));
                f.extend(kind.map(|k| ("sale_type".to_owned(), s(k))));
                f
            },
        )
        .boxed()
}

/// One change to an object's fields.
#[derive(Clone, Debug)]
enum Edit {
    /// The value at this position becomes another.
    Replace(usize, Json),
    Remove(usize),
    /// A field (known or not, perhaps a repeat) is added here.
    Insert(usize, String, Json),
}

fn any_field_value() -> BoxedStrategy<Json> {
    prop_oneof![
        order_id(),
        amount(),
        currency(),
        tag(),
        growi_id(),
        timestamp(),
        email(),
        text(),
        visitor_uid(),
        sale_type(),
        status(),
        order_token(),
        leaf(),
    ]
    .boxed()
}

/// `fields` with zero to three edits.
pub fn edited(
    fields: impl Strategy<Value = Vec<(String, Json)>> + 'static,
) -> BoxedStrategy<Vec<(String, Json)>> {
    let edit = prop_oneof![
        4 => (any::<usize>(), any_field_value()).prop_map(|(i, v)| Edit::Replace(i, v)),
        1 => any::<usize>().prop_map(Edit::Remove),
        2 => (any::<usize>(), key(), any_field_value()).prop_map(|(i, k, v)| Edit::Insert(i, k, v)),
    ];
    let edits = prop_oneof![
        4 => Just(Vec::new()),
        4 => prop::collection::vec(edit.clone(), 1..2),
        2 => prop::collection::vec(edit, 2..4),
    ];
    (fields, edits)
        .prop_map(|(mut f, edits)| {
            for e in edits {
                match e {
                    Edit::Replace(i, v) if !f.is_empty() => {
                        let n = f.len();
                        f[i % n].1 = v;
                    }
                    Edit::Remove(i) if !f.is_empty() => {
                        let n = f.len();
                        f.remove(i % n);
                    }
                    Edit::Insert(i, k, v) => {
                        let n = f.len();
                        f.insert(i % (n + 1), (k, v));
                    }
                    _ => {}
                }
            }
            f
        })
        .boxed()
}

/// A sale drawn field by field: right in most fields and hostile in a few; extra and repeated
/// keys now and then.
fn wild_sale() -> BoxedStrategy<Vec<(String, Json)>> {
    use prop::option::weighted;
    let head = (
        weighted(0.97, order_id()),
        weighted(0.85, amount()),
        weighted(0.3, amount()),
        weighted(0.97, currency()),
        attribution(),
    );
    let tail = (
        weighted(0.4, timestamp()),
        weighted(0.05, timestamp()),
        weighted(0.3, email()),
        weighted(0.3, text()),
        weighted(0.4, visitor_uid()),
        weighted(0.2, sale_type()),
        weighted(0.05, amount()),
        weighted(0.03, status()),
        weighted(0.05, order_token()),
    );
    (head, tail, extras())
        .prop_map(
            |(
                (order_id, total, subtotal, currency, attribution),
                (occurred_at, due_at, email, name, uid, sale_type, commission, status, token),
                extra,
            )| {
                let mut out = assemble(
                    vec![
                        ("order_id", order_id),
                        ("total", total),
                        ("subtotal", subtotal),
                        ("currency", currency),
                    ],
                    Vec::new(),
                );
                out.extend(attribution);
                let rest = vec![
                    ("occurred_at", occurred_at),
                    ("due_at", due_at),
                    ("customer_email", email),
                    ("customer_name", name),
                    ("visitor_uid", uid),
                    ("sale_type", sale_type),
                    ("commission", commission),
                    ("status", status),
                    ("order_token", token),
                ];
                out.extend(assemble(rest, Vec::new()));
                let n = out.len();
                for (at, k, v) in extra {
                    out.insert(at % (n + 1), (k, v));
                }
                out
            },
        )
        .boxed()
}

/// A correction as a back office would send it: one to a few fields, `null` now and then.
pub fn update_fields() -> BoxedStrategy<Vec<(String, Json)>> {
    use prop::option::weighted;
    let null = || Just(Json::Lit("null".into()));
    (
        (
            weighted(0.3, amount()),
            weighted(0.15, amount()),
            weighted(0.15, currency()),
            weighted(0.2, prop_oneof![4 => timestamp(), 1 => (0i64..=253_402_300_800).prop_map(|n| Json::Lit(n.to_string()))]),
            weighted(0.15, prop_oneof![4 => timestamp(), 1 => null()]),
        ),
        (
            weighted(0.2, prop_oneof![4 => email(), 1 => null()]),
            weighted(0.2, prop_oneof![4 => text(), 1 => null()]),
            weighted(0.15, amount()),
            weighted(0.4, status()),
        ),
        extras(),
    )
        .prop_map(
            |((total, subtotal, currency, occurred_at, due_at), (email, name, commission, status), extra)| {
                assemble(
                    vec![
                        ("total", total),
                        ("subtotal", subtotal),
                        ("currency", currency),
                        ("occurred_at", occurred_at),
                        ("due_at", due_at),
                        ("customer_email", email),
                        ("customer_name", name),
                        ("commission", commission),
                        ("status", status),
                    ],
                    extra,
                )
            },
        )
        .boxed()
}

// ---------------------------------------------------------------------------------------------
// URLs.

/// `s` percent-encoded in full: every byte outside `A-Za-z0-9-._~` as `%XX`, a space as `+` or
/// `%20`.
pub fn percent_encode(s: &str, plus_for_space: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(b))
            }
            b' ' if plus_for_space => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Characters a query string may hold as they are (RFC 3986 `query`), `%` included so that
/// malformed escapes are tried too.
pub const QUERY_CHARS: &str = "[A-Za-z0-9._~!$&'()*+,;=:@/?%-]";

/// A query string's raw text: pairs encoded as a browser would, raw query characters, and
/// malformed escapes.
pub fn query_text(
    pairs: impl Strategy<Value = Vec<(String, String)>> + 'static,
) -> BoxedStrategy<String> {
    prop_oneof![
        4 => (pairs, any::<bool>()).prop_map(|(pairs, plus)| {
            pairs
                .iter()
                .map(|(k, v)| format!("{}={}", percent_encode(k, plus), percent_encode(v, plus)))
                .collect::<Vec<_>>()
                .join("&")
        }),
        1 => proptest::string::string_regex(&format!("{QUERY_CHARS}{{0,80}}"))
            .expect("a valid regex"),
        1 => prop::collection::vec(
            prop_oneof![
                Just("%".to_owned()),
                Just("%4".to_owned()),
                Just("%zz".to_owned()),
                Just("&&".to_owned()),
                Just("==".to_owned()),
                Just("%00".to_owned()),
                Just("%FF%FE".to_owned()),
                Just("%C3".to_owned()),
                "[a-z_]{1,12}=[A-Za-z0-9]{0,8}",
            ],
            0..8,
        )
        .prop_map(|parts| parts.concat()),
    ]
    .boxed()
}
