//! [`AppState`]: what every handler shares (configuration, outbox, metrics, rate limiter).
//!
//! It lives in its own module so that handlers, the intake pipeline and the admin API depend on
//! this small type, not on the crate root that assembles the server.

use crate::config::ProxyConfig;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::reconcile::run::Reconciler;
use crate::sender::Reads;
use crate::trust::RateLimiter;
use std::sync::Arc;

/// What every handler shares; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<ProxyConfig>,
    pub outbox: Outbox,
    pub metrics: Arc<Metrics>,
    pub limiter: Arc<RateLimiter>,
    /// Reconciliation runs, whose reads the sender makes at its pace.
    pub reconcile: Reconciler,
}

impl AppState {
    pub fn new(config: ProxyConfig, outbox: Outbox) -> Self {
        let limiter = Arc::new(RateLimiter::new(config.rate_limit));
        let reconcile = Reconciler::new(Reads::new(outbox.changed()));
        AppState {
            config: Arc::new(config),
            reconcile,
            outbox,
            metrics: Arc::new(Metrics::default()),
            limiter,
        }
    }

    /// What a reconciliation run works with.
    pub fn reconcile_parts(&self) -> crate::reconcile::run::Parts {
        crate::reconcile::run::Parts {
            outbox: self.outbox.clone(),
            config: self.config.clone(),
            metrics: self.metrics.clone(),
        }
    }
}
