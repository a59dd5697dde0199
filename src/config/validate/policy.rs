//! Route admission policy: the `defaults:` block and each route's `origins`, `require_origin`,
//! `auth`, `rate` (with its `scope`), `max_connections`, `per_subject`, `session` and `http`,
//! merged key by key into a [`Policy`]; and `trusted_proxies`. The syntax of one Origin pattern
//! is in [`super::origin`], `auth:` in [`super::auth`], rates and caps in [`super::limits`],
//! `scope` and `per_subject` in [`super::cluster`], `session:` in [`super::session`]. Whether a
//! route's `per_subject` has the subject it counts (`auth.jwt`, or a listener with
//! `tls.client_auth`) is judged here, after the merge.

use std::path::Path;
use std::sync::Arc;

use serde_saphyr::Location;

use super::limits::{connection_cap, rate};
use super::session::SessionParts;
use super::{Errors, auth, cluster, origin};
use crate::config::cluster::{PerSubject, Scope};
use crate::config::policy::{AuthConfig, AuthMethod, Cidr, HttpMode, OriginPolicy, Policy, Rate};
use crate::config::raw::{RawOrigin, RawPolicy, Spanned, SpannedList};

/// One policy block (`defaults:` or a route's own keys), each key `Some` when it was set and
/// valid.
#[derive(Default)]
pub(super) struct PolicyParts {
    origins: Option<Vec<String>>,
    /// Kept with its location for the "without `origins`" error.
    require_origin: Option<Spanned<bool>>,
    /// Shared: the `defaults:` auth block is parsed once and used by every route that omits it.
    auth: Option<Arc<AuthConfig>>,
    /// With its `scope`: a route's `rate` replaces the default one whole.
    rate: Option<(Rate, Scope)>,
    max_connections: Option<u32>,
    /// With its place, for the "needs `auth.jwt`" error.
    per_subject: Option<(PerSubject, Location)>,
    /// Merged with the other block's `session` key by key.
    session: SessionParts,
    http: Option<HttpMode>,
    /// Some key had an error (already reported): merging must not add follow-on errors.
    failed: bool,
}

impl PolicyParts {
    /// Checks the keys of one block; `at` is its field path (`defaults`, `routes[2]`).
    /// `has_cluster`: the file has a `cluster:` block (`scope: fleet` needs one).
    pub(super) fn parse(
        raw: RawPolicy,
        at: &str,
        base_dir: &Path,
        has_cluster: bool,
        errs: &mut Errors,
    ) -> Self {
        let before = errs.list.len();
        let origins = raw.origins.and_then(|o| origins(o, at, errs));
        let auth = (raw.auth).and_then(|a| auth::auth(a, &format!("{at}.auth"), base_dir, errs));
        let rate = raw.rate.and_then(|r| {
            let (r, at) = (r.value, format!("{at}.rate"));
            let per = rate(&r.handshakes, r.burst.as_ref(), &at, errs);
            let scope = cluster::scope(r.scope.as_ref(), &format!("{at}.scope"), has_cluster, errs);
            Some((per?, scope?))
        });
        let max_connections = raw
            .max_connections
            .and_then(|m| errs.check(&m, format!("{at}.max_connections"), connection_cap));
        let per_subject =
            (raw.per_subject).and_then(|p| cluster::per_subject(p, at, has_cluster, errs));
        let session = SessionParts::parse(raw.session, at, errs);
        let http = (raw.http).and_then(|h| errs.check(&h, format!("{at}.http"), HttpMode::parse));
        PolicyParts {
            origins,
            require_origin: raw.require_origin,
            auth: auth.map(Arc::new),
            rate,
            max_connections,
            per_subject,
            session,
            http,
            failed: errs.list.len() != before,
        }
    }

    /// This route's keys over `defaults` (per key, never deeper: a route's `auth` replaces the
    /// whole default `auth`; only `session` is merged one level down, per `session` key).
    /// `None` when the route's block had errors or one is found here.
    /// `certs`: some listener verifies client certificates, whose CN can be the subject.
    pub(super) fn merge(
        self,
        defaults: &PolicyParts,
        at: &str,
        certs: bool,
        errs: &mut Errors,
    ) -> Option<Policy> {
        if self.failed {
            return None;
        }
        let allowed = self.origins.or_else(|| defaults.origins.clone());
        if let (None, Some(require), false) = (&allowed, &self.require_origin, defaults.failed) {
            let msg =
                "has no effect without `origins` (set them on this route or under `defaults:`)";
            errs.at(&require.referenced, format!("{at}.require_origin"), msg);
            return None;
        }
        // A `defaults: { require_origin }` without default origins applies to routes that set
        // `origins`; on the others it has nothing to act on, which is not an error.
        let require = (self.require_origin.as_ref()).or(defaults.require_origin.as_ref());
        let auth = self.auth.or_else(|| defaults.auth.clone());
        let own_per_subject = self.per_subject.is_some();
        let per_subject = self.per_subject.or(defaults.per_subject);
        if let (Some((_, loc)), false) = (per_subject, defaults.failed)
            && !certs
            && let Err(msg) = has_subject(auth.as_deref(), own_per_subject)
        {
            errs.at(&loc, format!("{at}.per_subject"), msg);
            return None;
        }
        let session = (self.session).merge(
            &defaults.session,
            auth.as_deref(),
            defaults.failed,
            at,
            errs,
        )?;
        let rate = self.rate.or(defaults.rate);
        Some(Policy {
            origins: allowed.map(|allowed| OriginPolicy {
                allowed,
                require: require.is_none_or(|r| r.value),
            }),
            auth,
            rate: rate.map(|(r, _)| r),
            rate_scope: rate.map_or_else(Scope::default, |(_, s)| s),
            per_subject: per_subject.map(|(p, _)| p),
            max_connections: self.max_connections.or(defaults.max_connections),
            session,
            http: self.http.or(defaults.http).unwrap_or_default(),
        })
    }
}

/// `per_subject` counts sessions per token `sub`, which only a verified JWT carries (or, when a
/// listener has `tls.client_auth`, a client certificate's CN: then any route may count). `own`:
/// the key is the route's (else it comes from `defaults:`).
fn has_subject(auth: Option<&AuthConfig>, own: bool) -> Result<(), String> {
    let from = if own {
        ""
    } else {
        " (this `per_subject` comes from `defaults:`)"
    };
    match auth.map(|a| &a.method) {
        Some(AuthMethod::Jwt(_)) => Ok(()),
        None => Err(format!(
            "`per_subject` counts sessions per token `sub`: the route needs `auth:` (on the route or under `defaults:`){from}"
        )),
        Some(AuthMethod::Request(_)) => Err(format!(
            "`per_subject` counts sessions per token `sub`: the route needs `auth.jwt`; an `auth.request` answer carries no subject{from}"
        )),
    }
}

/// `origins`: a non-empty list of patterns, normalised and without duplicates.
fn origins(raw: Spanned<Vec<RawOrigin>>, at: &str, errs: &mut Errors) -> Option<Vec<String>> {
    let at = format!("{at}.origins");
    if raw.value.is_empty() {
        let msg =
            "is empty; list the allowed origins (e.g. `https://app.example.com`) or remove the key";
        errs.at(&raw.referenced, at, msg);
        return None;
    }
    let before = errs.list.len();
    let mut out: Vec<String> = Vec::new();
    for (i, o) in raw.value.into_iter().enumerate() {
        // An unquoted YAML `null` is what the operator meant by the `"null"` origin.
        match origin::pattern(o.value.as_deref().unwrap_or("null")) {
            Ok(p) if out.contains(&p) => {}
            Ok(p) => out.push(p),
            Err(msg) => errs.at(&o.referenced, format!("{at}[{i}]"), msg),
        }
    }
    (errs.list.len() == before).then_some(out)
}

/// `trusted_proxies`: CIDRs, in file order.
pub(super) fn trusted_proxies(raw: Option<SpannedList>, errs: &mut Errors) -> Vec<Cidr> {
    let Some(raw) = raw else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, c) in raw.value.iter().enumerate() {
        out.extend(errs.check(c, format!("trusted_proxies[{i}]"), Cidr::parse));
    }
    out
}
