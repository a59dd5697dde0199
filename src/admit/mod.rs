//! Admission: after a request passed the RFC 6455 checks and was routed, decide whether this
//! client may open this tunnel, before any backend is contacted.
//!
//! The checks are tower layers ([`stack`]), cheapest first: Origin, handshake rates (per
//! address, per route), connection caps (per address, per route; the permits travel with the
//! tunnel), the fleet-wide twins of those that have `scope: fleet` ([`fleet`], one Redis round
//! trip), then the token (JWT or an auth service), then sessions per token subject
//! (`per_subject`, locally and, with `scope: fleet`, in one more round trip). Each refusal has one [`Refusal`] and, for
//! rates and caps, a `Retry-After`.
//! The result, [`Admission`], says what the forwarded request must drop and add.

pub mod auth_request;
pub mod fleet;
pub mod jwks;
pub mod jwt;
pub mod jwt_cache;
pub mod limits;
pub mod origin;
pub mod stack;
pub mod subject;
pub mod token;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::cluster::Fleet;
use crate::config::policy::{AuthConfig, AuthMethod, Policy, SessionPolicy, TokenSource};
use crate::config::{PerSubject, Scope};
use crate::error::Refusal;
use crate::runtime::client_auth::ClientCert;
use crate::wire::Head;
use crate::wire::Target;
use jwt::{AuthFailure, JwtVerifier};
use limits::{PerIpLimits, Permit, RouteLimits};
use origin::OriginAllow;
use subject::SubjectCounts;

/// A route's policy, compiled once per runtime.
pub struct RoutePolicy {
    /// The route label (`host/path`), the route's name in fleet keys.
    pub label: String,
    pub origins: Option<OriginAllow>,
    pub auth: Option<Auth>,
    pub limits: RouteLimits,
    /// `rate.scope`.
    pub rate_scope: Scope,
    /// `per_subject`, and the sessions per subject counted here (kept across reloads).
    pub per_subject: Option<PerSubject>,
    pub subjects: Arc<SubjectCounts>,
    /// What the route's sessions are held to after the upgrade.
    pub session: SessionPolicy,
}

impl RoutePolicy {
    /// The clock skew admission allows on a JWT's `exp` (routes with `auth.jwt`).
    pub fn token_leeway(&self) -> Option<std::time::Duration> {
        match &self.auth.as_ref()?.config.method {
            AuthMethod::Jwt(j) => Some(j.leeway),
            AuthMethod::Request(_) => None,
        }
    }
}

/// How a route authenticates.
pub struct Auth {
    pub config: Arc<AuthConfig>,
    /// `Some` for `jwt:`.
    pub jwt: Option<Arc<JwtVerifier>>,
}

impl RoutePolicy {
    /// Compile a route's policy; errors are messages for the config report.
    /// With `previous` (the same route before a reload), its cap count and rate state carry over.
    pub fn build(
        label: &str,
        policy: &Policy,
        previous: Option<&RoutePolicy>,
    ) -> Result<RoutePolicy, Vec<String>> {
        let origins = match &policy.origins {
            Some(o) => Some(OriginAllow::new(o).map_err(|e| vec![e])?),
            None => None,
        };
        let auth = match &policy.auth {
            None => None,
            Some(cfg) => {
                let jwt = match &cfg.method {
                    AuthMethod::Jwt(j) => {
                        let before = previous.and_then(|p| p.auth.as_ref()?.jwt.as_deref());
                        Some(JwtVerifier::build(j, before)?)
                    }
                    AuthMethod::Request(_) => None,
                };
                Some(Auth {
                    config: Arc::clone(cfg),
                    jwt,
                })
            }
        };
        Ok(RoutePolicy {
            label: label.to_owned(),
            origins,
            auth,
            rate_scope: policy.rate_scope,
            per_subject: policy.per_subject,
            subjects: previous.map_or_else(Arc::default, |old| Arc::clone(&old.subjects)),
            limits: match previous {
                Some(old) => old.limits.reconfigured(policy.rate, policy.max_connections),
                None => RouteLimits::new(policy.rate, policy.max_connections),
            },
            session: policy.session.clone(),
        })
    }
}

/// Who the client is: from a verified token, else from a verified client certificate.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub subject: Option<String>,
    /// Unix seconds: the session is closed then (`session.close_at_token_expiry`).
    pub expires_at: Option<u64>,
    /// `URL#kid` of the JWKS key that verified the token: the session is closed when a refresh
    /// drops that key.
    pub key_id: Option<String>,
}

/// What admission decided, for the forwarded request and the tunnel.
#[derive(Default)]
pub struct Admission {
    /// Released when the tunnel ends.
    pub permits: Vec<Permit>,
    pub identity: Option<Identity>,
    /// Credential to remove from the forwarded request (unless `forward_token`).
    pub strip: Option<token::Found>,
    /// Request headers wsgate sets (from claims or the auth service); the client's values of
    /// these names are removed first.
    pub set_headers: Vec<(String, Vec<u8>)>,
    /// Lower-case names removed from the client's request (what wsgate sets itself).
    pub remove_headers: Vec<String>,
    /// The subprotocol marker to select towards the client when the token came in
    /// `Sec-WebSocket-Protocol` and the backend selects none of the remaining protocols.
    pub marker: Option<String>,
}

/// A refusal and the dynamic fields its answer carries.
#[derive(Debug)]
pub struct Denial {
    pub refusal: Refusal,
    pub retry_after: Option<Duration>,
    /// A `WWW-Authenticate` value from an auth service, relayed instead of wsgate's own.
    pub challenge: Option<Vec<u8>>,
}

impl From<Refusal> for Denial {
    fn from(refusal: Refusal) -> Denial {
        Denial {
            refusal,
            retry_after: None,
            challenge: None,
        }
    }
}

fn retry(refusal: Refusal, after: Duration) -> Denial {
    Denial {
        refusal,
        retry_after: Some(after),
        challenge: None,
    }
}

/// Everything admission looks at for one request.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    pub head: &'a Head,
    pub target: &'a Target,
    pub client_ip: IpAddr,
    /// The client's verified certificate (listeners with `client_auth`).
    pub client_cert: Option<&'a ClientCert>,
}

/// Run the admission stack ([`stack`]) for one request.
pub async fn admit(
    policy: &RoutePolicy,
    per_ip: &PerIpLimits,
    fleet: &Fleet,
    req: &Request<'_>,
) -> Result<Admission, Denial> {
    stack::run(stack::Handshake {
        policy,
        per_ip,
        fleet,
        req: *req,
        admission: Admission::default(),
    })
    .await
}

/// A verified client certificate names the session when no token did: its CN (else its SAN)
/// becomes the subject, for the session registry and `per_subject`.
fn certificate_subject(req: &Request<'_>, adm: &mut Admission) {
    let Some(name) = req.client_cert.and_then(ClientCert::identity) else {
        return;
    };
    let identity = adm.identity.get_or_insert_with(Identity::default);
    if identity.subject.is_none() {
        identity.subject = Some(name.to_owned());
    }
}

/// `Retry-After` for connection caps: a tunnel may close any moment; a second is a fair guess.
const CAP_RETRY: Duration = Duration::from_secs(1);

async fn authenticate(auth: &Auth, req: &Request<'_>, adm: &mut Admission) -> Result<(), Denial> {
    let cfg = &auth.config;
    adm.remove_headers.extend(
        cfg.claims_to_headers
            .iter()
            .map(|(_, h)| h.to_ascii_lowercase()),
    );
    if let AuthMethod::Request(rc) = &cfg.method {
        adm.remove_headers
            .extend(rc.copy_headers.iter().map(|h| h.to_ascii_lowercase()));
    }
    if let Some(verifier) = &auth.jwt {
        let found = token::find(req.head, req.target, &cfg.token_from)
            .map_err(|_| Refusal::DuplicateToken)?
            .ok_or(Refusal::TokenMissing)?;
        let identity = verifier.verify(&found.token).await.map_err(|e| match e {
            AuthFailure::Invalid(why) => {
                tracing::info!(reason = why, "token refused");
                Refusal::TokenInvalid
            }
            AuthFailure::Insufficient(why) => {
                tracing::info!(reason = why, "token lacks required claims");
                Refusal::ClaimsInsufficient
            }
        })?;
        for (claim, header) in &cfg.claims_to_headers {
            if let Some(value) = jwt::claim_as_header_value(&identity.claims, claim) {
                adm.set_headers.push((header.clone(), value.into_bytes()));
            }
        }
        if let TokenSource::Subprotocol { marker } = &found.source {
            adm.marker = Some(marker.clone());
        }
        adm.identity = Some(Identity {
            subject: identity.subject,
            expires_at: identity.expires_at,
            key_id: identity.key_id,
        });
        if !cfg.forward_token {
            adm.strip = Some(found);
        }
        return Ok(());
    }
    if let AuthMethod::Request(rc) = &cfg.method {
        match auth_request::ask(rc, req.head, req.client_ip).await {
            Ok(headers) => adm.set_headers.extend(headers),
            Err(auth_request::AuthRequestFailure::Denied {
                status,
                www_authenticate,
            }) => {
                let status = if status == 401 { 401 } else { 403 };
                return Err(Denial {
                    refusal: Refusal::AuthDenied(status),
                    retry_after: None,
                    challenge: www_authenticate.filter(|_| status == 401),
                });
            }
            Err(auth_request::AuthRequestFailure::Unavailable) => {
                return Err(Refusal::AuthUnavailable.into());
            }
        }
    }
    Ok(())
}
