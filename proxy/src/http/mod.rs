//! The HTTP edge: every route's handler, and nothing else.
//!
//! Handlers read a request (body, cookies, path), call into the proxy ([`crate::intake`], the
//! outbox), and turn the outcome into a response through [`crate::error::AppError`]. No rule lives
//! here.
//! - [`browser`]: `POST /sales`, `POST /touch`, `GET /touch` (the tracker's endpoints);
//! - [`edge`]: capture at the edge, `POST /touch` with the URL's parameters (the loader's call);
//! - [`pixel`]: `GET /pixel.gif`;
//! - [`ops`]: `GET /healthz`, `GET /metrics`;
//! - [`admin`]: the back office's API under `/admin` (bearer token or dashboard session);
//! - [`reconcile`]: `/admin/reconcile`, starting a reconciliation and reading its report;
//! - [`dashboard`], [`session`]: the merchant's dashboard at `/admin/` and its sign-in;
//! - [`files`]: the tracker's files and (for the demo) a site;
//! - [`body`], [`cookies`]: reading bodies and cookies, writing `Set-Cookie`.

pub mod admin;
pub mod api;
pub mod body;
pub mod browser;
pub mod cookies;
pub mod dashboard;
pub mod edge;
pub mod files;
pub mod ops;
pub mod pixel;
pub mod reconcile;
pub mod session;
