//! Attribution: which creator gets credit for a visitor's purchase.
//!
//! A creator's link carries an affiliate tag (`?ref=creator42`, parameters configurable) or a
//! Growi id pair (`?growi_user_id=42&growi_campaign_id=7`). On capture the tracker keeps it, with
//! the model and the capture time, in the `sb_aff` cookie (mirrored in localStorage); the proxy's
//! `/touch` re-sets the same cookie server-side so it outlives Safari's 7-day cap on script-set
//! cookies. Both sides use [`Attribution::encode`] / [`Attribution::decode`] from here, so the
//! browser and the proxy can never disagree on the format.
//!
//! Values from a URL are hostile until checked: a tag is 1-64 of `[A-Za-z0-9_.-]`, Growi ids are
//! positive integers. Anything else is rejected (and the browser says so on the console).

#[allow(unused_imports)]
use crate::prelude::*;

use crate::text;
use crate::time::UnixMillis;

/// The URL parameters that carry a tag unless configured otherwise.
pub const DEFAULT_PARAMS: &[&str] = &["ref", "aff", "via"];
/// The Growi id pair, always recognised.
pub const GROWI_USER_PARAM: &str = "growi_user_id";
pub const GROWI_CAMPAIGN_PARAM: &str = "growi_campaign_id";
/// Attribution window bounds and default, in days.
pub const MIN_WINDOW_DAYS: u32 = 1;
pub const MAX_WINDOW_DAYS: u32 = 365;
pub const DEFAULT_WINDOW_DAYS: u32 = 30;
const DAY_MS: i64 = 86_400_000;

/// The creator to credit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Referral {
    /// A creator's affiliate tag, Growi's `campaign_affiliate_id`.
    Tag(String),
    /// Growi's own ids.
    Growi { user_id: u64, campaign_id: u64 },
}

/// Which click wins when a visitor follows several creators' links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Model {
    #[default]
    LastClick,
    FirstClick,
}

impl Model {
    /// `"last_click"` or `"first_click"`.
    pub fn parse(s: &str) -> Option<Model> {
        match s {
            "last_click" => Some(Model::LastClick),
            "first_click" => Some(Model::FirstClick),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Model::LastClick => "last_click",
            Model::FirstClick => "first_click",
        }
    }
}

/// A captured referral with its model and capture time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribution {
    pub referral: Referral,
    pub model: Model,
    pub captured_at: UnixMillis,
}

/// A URL value that was not stored, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub param: String,
    pub value: String,
    pub reason: &'static str,
}

/// What a page's URL held.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Captured {
    /// The referral to apply, if any valid one was found.
    pub referral: Option<Referral>,
    /// Values that failed the syntax, to report.
    pub rejected: Vec<Rejected>,
    /// Every recognised parameter present (valid or not), for `cleanUrl`.
    pub present: Vec<String>,
}

/// Whether `tag` is 1-64 of `[A-Za-z0-9_.-]`.
pub fn is_valid_tag(tag: &str) -> bool {
    (1..=64).contains(&tag.len())
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn parse_id(s: &str) -> Option<u64> {
    text::digits(s).filter(|n| s.len() <= 16 && *n > 0 && *n <= crate::money::MAX_AMOUNT)
}

/// Finds the referral in decoded query pairs. The Growi pair wins over a tag; among tag
/// parameters, the first in `params` order that holds a valid tag wins.
pub fn capture<S: AsRef<str>>(pairs: &[(String, String)], params: &[S]) -> Captured {
    let mut out = Captured::default();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let note = |out: &mut Captured, name: &str| {
        if !out.present.iter().any(|p| p == name) {
            out.present.push(name.to_owned());
        }
    };
    let (user, campaign) = (get(GROWI_USER_PARAM), get(GROWI_CAMPAIGN_PARAM));
    for (name, value) in [(GROWI_USER_PARAM, user), (GROWI_CAMPAIGN_PARAM, campaign)] {
        if value.is_some() {
            note(&mut out, name);
        }
        if let Some(v) = value {
            if parse_id(v).is_none() {
                out.rejected.push(Rejected {
                    param: name.to_owned(),
                    value: v.to_owned(),
                    reason: "a Growi id must be a positive integer",
                });
            }
        }
    }
    match (user.map(parse_id), campaign.map(parse_id)) {
        (Some(Some(user_id)), Some(Some(campaign_id))) => {
            out.referral = Some(Referral::Growi {
                user_id,
                campaign_id,
            });
        }
        (Some(Some(_)), None) | (None, Some(Some(_))) => {
            let (param, value) = match user {
                Some(v) => (GROWI_USER_PARAM, v),
                None => (GROWI_CAMPAIGN_PARAM, campaign.unwrap_or_default()),
            };
            out.rejected.push(Rejected {
                param: param.to_owned(),
                value: value.to_owned(),
                reason: "growi_user_id and growi_campaign_id must come together",
            });
        }
        _ => {}
    }
    for param in params {
        let param = param.as_ref();
        let Some(value) = get(param) else { continue };
        note(&mut out, param);
        if is_valid_tag(value) {
            if out.referral.is_none() {
                out.referral = Some(Referral::Tag(value.to_owned()));
            }
        } else {
            out.rejected.push(Rejected {
                param: param.to_owned(),
                value: value.chars().take(80).collect(),
                reason: "an affiliate tag must be 1-64 letters, digits, '_', '.' or '-'",
            });
        }
    }
    out
}

impl Attribution {
    /// Whether this attribution is past its window at `now`.
    pub fn is_expired(&self, now: UnixMillis, window_days: u32) -> bool {
        now.saturating_sub(self.captured_at) > i64::from(window_days) * DAY_MS
    }

    /// When it expires, for the cookie's `Expires`.
    pub fn expires_at(&self, window_days: u32) -> UnixMillis {
        self.captured_at
            .saturating_add(i64::from(window_days) * DAY_MS)
    }

    /// The compact, cookie-safe form: `1~l~<ms>~t~<tag>` or `1~f~<ms>~g~<user>~<campaign>`.
    pub fn encode(&self) -> String {
        let model = match self.model {
            Model::LastClick => 'l',
            Model::FirstClick => 'f',
        };
        let mut s = String::from("1~");
        s.push(model);
        s.push('~');
        text::push_int(&mut s, self.captured_at);
        match &self.referral {
            Referral::Tag(tag) => {
                s.push_str("~t~");
                s.push_str(tag);
            }
            Referral::Growi {
                user_id,
                campaign_id,
            } => {
                s.push_str("~g~");
                text::push_uint(&mut s, *user_id, 1);
                s.push('~');
                text::push_uint(&mut s, *campaign_id, 1);
            }
        }
        s
    }

    /// Reads [`Attribution::encode`]'s form; anything else (old, tampered, corrupt) is `None`.
    pub fn decode(s: &str) -> Option<Attribution> {
        let mut parts = s.split('~');
        if parts.next()? != "1" {
            return None;
        }
        let model = match parts.next()? {
            "l" => Model::LastClick,
            "f" => Model::FirstClick,
            _ => return None,
        };
        let captured_at = i64::try_from(text::digits(parts.next()?)?).ok()?;
        let referral = match parts.next()? {
            "t" => {
                let tag = parts.next()?;
                is_valid_tag(tag).then(|| Referral::Tag(tag.to_owned()))?
            }
            "g" => Referral::Growi {
                user_id: parse_id(parts.next()?)?,
                campaign_id: parse_id(parts.next()?)?,
            },
            _ => return None,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Attribution {
            referral,
            model,
            captured_at,
        })
    }
}

/// Combines what is stored with what this page captured, under `model`: last click replaces,
/// first click keeps a live attribution. An expired one counts as none.
pub fn apply(
    stored: Option<Attribution>,
    captured: Option<Referral>,
    model: Model,
    now: UnixMillis,
    window_days: u32,
) -> Option<Attribution> {
    let live = stored.filter(|a| !a.is_expired(now, window_days));
    match (live, captured) {
        (live, None) => live,
        (Some(live), Some(_)) if model == Model::FirstClick => Some(live),
        (_, Some(referral)) => Some(Attribution {
            referral,
            model,
            captured_at: now,
        }),
    }
}

/// Splits a query string (with or without `?`) into decoded pairs: `+` is a space, `%XX` a byte,
/// invalid UTF-8 is replaced. Malformed escapes are kept as text.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    let q = query.strip_prefix('?').unwrap_or(query);
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        parse_query(q)
    }

    #[test]
    fn captures_a_tag_from_the_default_params() {
        let c = capture(&pairs("?utm_source=x&ref=creator42"), DEFAULT_PARAMS);
        assert_eq!(c.referral, Some(Referral::Tag("creator42".into())));
        assert_eq!(c.present, vec!["ref"]);
        assert!(c.rejected.is_empty());
        let c = capture(&pairs("via=ana_lifestyle"), DEFAULT_PARAMS);
        assert_eq!(c.referral, Some(Referral::Tag("ana_lifestyle".into())));
        let c = capture(&pairs("partner=x"), &["partner"]);
        assert_eq!(c.referral, Some(Referral::Tag("x".into())));
        assert_eq!(capture(&pairs("partner=x"), DEFAULT_PARAMS).referral, None);
    }

    #[test]
    fn growi_pair_wins_and_half_pairs_are_rejected() {
        let c = capture(
            &pairs("ref=a&growi_user_id=42&growi_campaign_id=7"),
            DEFAULT_PARAMS,
        );
        assert_eq!(
            c.referral,
            Some(Referral::Growi {
                user_id: 42,
                campaign_id: 7
            })
        );
        let c = capture(&pairs("growi_user_id=42"), DEFAULT_PARAMS);
        assert_eq!(c.referral, None);
        assert_eq!(c.rejected.len(), 1);
        let c = capture(
            &pairs("growi_user_id=-4&growi_campaign_id=7"),
            DEFAULT_PARAMS,
        );
        assert_eq!(c.referral, None);
        assert_eq!(c.rejected[0].param, "growi_user_id");
    }

    #[test]
    fn hostile_values_are_rejected() {
        for q in [
            "ref=%3Cscript%3E",
            "ref=",
            "ref=a%20b",
            "ref=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "ref=x~y",
        ] {
            let c = capture(&pairs(q), DEFAULT_PARAMS);
            assert_eq!(c.referral, None, "{q}");
            assert_eq!(c.rejected.len(), 1, "{q}");
        }
        // A bad first param does not hide a good second one.
        let c = capture(&pairs("ref=%3C&aff=good"), DEFAULT_PARAMS);
        assert_eq!(c.referral, Some(Referral::Tag("good".into())));
    }

    #[test]
    fn encoding_round_trips_and_rejects_garbage() {
        let a = Attribution {
            referral: Referral::Tag("creator.42-x_y".into()),
            model: Model::FirstClick,
            captured_at: 1_759_276_529_000,
        };
        assert_eq!(a.encode(), "1~f~1759276529000~t~creator.42-x_y");
        assert_eq!(Attribution::decode(&a.encode()), Some(a));
        let g = Attribution {
            referral: Referral::Growi {
                user_id: 42,
                campaign_id: 7,
            },
            model: Model::LastClick,
            captured_at: 5,
        };
        assert_eq!(Attribution::decode(&g.encode()), Some(g));
        for bad in [
            "",
            "2~l~1~t~x",
            "1~x~1~t~x",
            "1~l~-1~t~x",
            "1~l~1~t~<b>",
            "1~l~1~g~0~7",
            "1~l~1~t~x~extra",
            "creator42",
        ] {
            assert_eq!(Attribution::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn models_and_windows() {
        let day = DAY_MS;
        let old = Attribution {
            referral: Referral::Tag("first".into()),
            model: Model::FirstClick,
            captured_at: 0,
        };
        let new = Some(Referral::Tag("second".into()));
        let kept = apply(Some(old.clone()), new.clone(), Model::FirstClick, day, 30);
        assert_eq!(kept, Some(old.clone()));
        let replaced = apply(Some(old.clone()), new.clone(), Model::LastClick, day, 30);
        assert_eq!(replaced.map(|a| a.referral), new.clone());
        // Past the window, even first click takes the new one.
        let after = apply(
            Some(old.clone()),
            new.clone(),
            Model::FirstClick,
            31 * day,
            30,
        );
        assert_eq!(after.map(|a| a.referral), new);
        assert_eq!(
            apply(Some(old.clone()), None, Model::LastClick, 31 * day, 30),
            None
        );
        assert_eq!(
            apply(Some(old.clone()), None, Model::LastClick, 30 * day, 30),
            Some(old)
        );
    }

    #[test]
    fn query_decoding() {
        assert_eq!(
            parse_query("?a=1+2&b=%41%zz&c&=x&d=%E2%82%AC"),
            vec![
                ("a".into(), "1 2".into()),
                ("b".into(), "A%zz".into()),
                ("c".into(), "".into()),
                ("".into(), "x".into()),
                ("d".into(), "€".into()),
            ]
        );
        assert_eq!(parse_query("x=%4"), vec![("x".into(), "%4".into())]);
    }
}
