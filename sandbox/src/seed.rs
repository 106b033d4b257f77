//! The world the sandbox starts from: campaigns, their affiliates, and pre-existing sales.
//!
//! Growi knows which affiliate tags and which (Growi user, campaign) pairs exist; the sandbox
//! needs the same to answer "Campaign affiliate not found." and to compute commissions, so they
//! come from a seed. The seed is a JSON file (`--seed FILE`) or the built-in default below.
//!
//! # Seed format
//!
//! ```json
//! {
//!   "campaigns": [
//!     { "id": 7, "name": "Autumn launch", "commission": { "type": "percent", "bps": 1000 } },
//!     { "id": 8, "commission": { "type": "fixed", "amount": 500 } }
//!   ],
//!   "affiliates": [
//!     { "tag": "creator42", "growi_user_id": 42, "campaign_id": 7 },
//!     { "tag": "fixed_fred", "growi_user_id": 44, "campaign_id": 8 }
//!   ],
//!   "sales": [
//!     { "id": 1947000, "external_id": "SHOP-1001", "platform": "shopify",
//!       "occurred_at": "2025-09-01T12:00:00.000Z", "total": 5000, "commission": 500,
//!       "currency": "usd", "campaign_affiliate_id": "creator42",
//!       "growi_user_id": 42, "growi_campaign_id": 7 }
//!   ],
//!   "first_sale_id": 1947457
//! }
//! ```
//!
//! - `campaigns[].commission` is `{"type":"percent","bps":N}` (basis points of the sale's total,
//!   or subtotal when there is no total; 1000 = 10 %, at most 10000) or
//!   `{"type":"fixed","amount":N}` (minor units per sale).
//! - `affiliates[]` ties a tag (what `campaign_affiliate_id` carries) to a Growi user and a
//!   campaign. Tags and (user, campaign) pairs must be unique; the campaign must exist.
//! - `sales[]` (optional) are sales that exist from the start, in the same shape the API answers
//!   (`platform` defaults to `website`, `status` to `unpaid`, missing optional fields to null).
//!   Use them for sales the public API cannot create, such as a `shopify` sale.
//! - `first_sale_id` (optional, default 1947457) is the id of the first created sale; ids then
//!   increase by one (and always stay above every seeded id).
//!
//! Every key is optional; unknown keys are rejected so a typo does not go unnoticed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::money::{is_currency_code, CommissionRule};
use crate::sale::{SaleStatus, SaleType, SandboxSale};
use crate::timefmt;

/// The id of the first sale created when the seed does not say otherwise.
pub const DEFAULT_FIRST_SALE_ID: u64 = 1_947_457;

fn default_first_id() -> u64 {
    DEFAULT_FIRST_SALE_ID
}

/// A campaign and its commission rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    /// Growi campaign id (`growi_campaign_id`).
    pub id: u64,
    /// A human name, for documentation only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// How commissions are computed.
    pub commission: CommissionRule,
}

/// An affiliate of a campaign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Affiliate {
    /// The affiliate tag (`campaign_affiliate_id`).
    pub tag: String,
    /// The creator's Growi user id.
    pub growi_user_id: u64,
    /// The campaign the tag belongs to.
    pub campaign_id: u64,
}

/// Campaigns, affiliates and pre-existing sales (see the module docs for the JSON format).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// Campaigns.
    #[serde(default)]
    pub campaigns: Vec<Campaign>,
    /// Affiliates.
    #[serde(default)]
    pub affiliates: Vec<Affiliate>,
    /// Sales present from the start.
    #[serde(default)]
    pub sales: Vec<SandboxSale>,
    /// The id of the first created sale.
    #[serde(default = "default_first_id")]
    pub first_sale_id: u64,
}

/// What is wrong with a seed.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The file could not be read.
    #[error("cannot read seed file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid seed JSON.
    #[error("seed is not valid JSON of the seed format: {0}")]
    Parse(#[from] serde_json::Error),
    /// Valid JSON, inconsistent content.
    #[error("invalid seed: {0}")]
    Invalid(String),
}

impl Default for Seed {
    /// Campaign 7 at 10 % with affiliates `creator42` (user 42) and `ana_lifestyle` (user 43);
    /// campaign 8 at a fixed 500 with `fixed_fred` (user 44); and one pre-existing `shopify`
    /// sale (id 1947000, order `SHOP-1001`) so PATCH's website-only rule can be exercised.
    fn default() -> Self {
        Seed {
            campaigns: vec![
                Campaign {
                    id: 7,
                    name: Some("Ten percent campaign".to_owned()),
                    commission: CommissionRule::Percent { bps: 1000 },
                },
                Campaign {
                    id: 8,
                    name: Some("Fixed-fee campaign".to_owned()),
                    commission: CommissionRule::Fixed { amount: 500 },
                },
            ],
            affiliates: vec![
                Affiliate {
                    tag: "creator42".to_owned(),
                    growi_user_id: 42,
                    campaign_id: 7,
                },
                Affiliate {
                    tag: "ana_lifestyle".to_owned(),
                    growi_user_id: 43,
                    campaign_id: 7,
                },
                Affiliate {
                    tag: "fixed_fred".to_owned(),
                    growi_user_id: 44,
                    campaign_id: 8,
                },
            ],
            sales: vec![SandboxSale {
                id: 1_947_000,
                external_id: "SHOP-1001".to_owned(),
                platform: "shopify".to_owned(),
                status: SaleStatus::Unpaid,
                occurred_at: "2025-09-01T12:00:00.000Z".to_owned(),
                total: Some(5000),
                subtotal: Some(4500),
                commission: 500,
                currency: "usd".to_owned(),
                customer_email: None,
                customer_name: None,
                visitor_uid: None,
                campaign_affiliate_id: Some("creator42".to_owned()),
                growi_user_id: Some(42),
                growi_campaign_id: Some(7),
                sale_type: SaleType::OneTime,
                due_at: None,
            }],
            first_sale_id: DEFAULT_FIRST_SALE_ID,
        }
    }
}

impl Seed {
    /// Parses and validates a seed from JSON text.
    pub fn from_json(text: &str) -> Result<Seed, SeedError> {
        let mut seed: Seed = serde_json::from_str(text)?;
        seed.validate()?;
        Ok(seed)
    }

    /// Reads, parses and validates a seed file.
    pub fn load(path: &Path) -> Result<Seed, SeedError> {
        let text = std::fs::read_to_string(path).map_err(|source| SeedError::Read {
            path: path.to_owned(),
            source,
        })?;
        Seed::from_json(&text)
    }

    /// Checks consistency and normalises seeded sales' timestamps.
    pub fn validate(&mut self) -> Result<(), SeedError> {
        let bad = |m: String| Err(SeedError::Invalid(m));
        let mut campaign_ids = HashSet::new();
        for c in &self.campaigns {
            if !campaign_ids.insert(c.id) {
                return bad(format!("campaign {} is listed twice", c.id));
            }
            match c.commission {
                CommissionRule::Percent { bps } if bps > 10_000 => {
                    return bad(format!("campaign {}: bps must be at most 10000", c.id))
                }
                CommissionRule::Fixed { amount } if amount < 0 => {
                    return bad(format!(
                        "campaign {}: fixed amount must not be negative",
                        c.id
                    ))
                }
                _ => {}
            }
        }
        let mut tags = HashSet::new();
        let mut pairs = HashSet::new();
        for a in &self.affiliates {
            if a.tag.is_empty() {
                return bad("an affiliate has an empty tag".to_owned());
            }
            if !tags.insert(a.tag.as_str()) {
                return bad(format!("affiliate tag {:?} is listed twice", a.tag));
            }
            if !pairs.insert((a.growi_user_id, a.campaign_id)) {
                return bad(format!(
                    "user {} has two affiliates in campaign {}",
                    a.growi_user_id, a.campaign_id
                ));
            }
            if !campaign_ids.contains(&a.campaign_id) {
                return bad(format!(
                    "affiliate {:?} refers to unknown campaign {}",
                    a.tag, a.campaign_id
                ));
            }
        }
        let mut ids = HashSet::new();
        let mut orders = HashSet::new();
        for s in &mut self.sales {
            if !ids.insert(s.id) {
                return bad(format!("sale id {} is listed twice", s.id));
            }
            if s.external_id.is_empty() || !orders.insert(s.external_id.clone()) {
                return bad(format!("sale {}: external_id empty or listed twice", s.id));
            }
            if !is_currency_code(&s.currency) {
                return bad(format!("sale {}: currency must be a lowercase code", s.id));
            }
            s.occurred_at = match timefmt::parse_iso(&s.occurred_at) {
                Some(ts) => timefmt::format_ts(ts),
                None => return bad(format!("sale {}: occurred_at is not ISO 8601", s.id)),
            };
            if let Some(due) = &s.due_at {
                s.due_at = match timefmt::parse_iso(due) {
                    Some(ts) => Some(timefmt::format_ts(ts)),
                    None => return bad(format!("sale {}: due_at is not ISO 8601", s.id)),
                };
            }
        }
        Ok(())
    }

    /// The campaign with this id.
    pub fn campaign(&self, id: u64) -> Option<&Campaign> {
        self.campaigns.iter().find(|c| c.id == id)
    }

    /// The affiliate with this tag.
    pub fn affiliate_by_tag(&self, tag: &str) -> Option<&Affiliate> {
        self.affiliates.iter().find(|a| a.tag == tag)
    }

    /// The affiliate of this Growi user in this campaign.
    pub fn affiliate_by_ids(&self, growi_user_id: u64, campaign_id: u64) -> Option<&Affiliate> {
        self.affiliates
            .iter()
            .find(|a| a.growi_user_id == growi_user_id && a.campaign_id == campaign_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_seed_is_valid_and_round_trips() {
        let mut seed = Seed::default();
        assert!(seed.validate().is_ok());
        let json = serde_json::to_string(&seed).unwrap_or_default();
        let back = Seed::from_json(&json).ok();
        assert_eq!(back, Some(seed));
    }

    #[test]
    fn rejects_unknown_campaign_and_unknown_keys() {
        let e =
            Seed::from_json(r#"{"affiliates":[{"tag":"x","growi_user_id":1,"campaign_id":9}]}"#);
        assert!(matches!(e, Err(SeedError::Invalid(_))));
        let e = Seed::from_json(r#"{"campaign":[]}"#);
        assert!(matches!(e, Err(SeedError::Parse(_))));
    }

    #[test]
    fn parses_the_documented_example() {
        let seed = Seed::from_json(
            r#"{"campaigns":[{"id":8,"commission":{"type":"fixed","amount":500}}],
                "affiliates":[{"tag":"f","growi_user_id":44,"campaign_id":8}],
                "sales":[{"id":5,"external_id":"S-1","platform":"shopify",
                          "occurred_at":"2025-09-01T12:00:00Z","commission":1,"currency":"usd"}]}"#,
        );
        let seed = match seed {
            Ok(s) => s,
            Err(e) => panic!("seed rejected: {e}"),
        };
        assert_eq!(seed.first_sale_id, DEFAULT_FIRST_SALE_ID);
        assert_eq!(seed.sales[0].occurred_at, "2025-09-01T12:00:00.000Z");
        assert_eq!(seed.sales[0].status, SaleStatus::Unpaid);
    }
}
