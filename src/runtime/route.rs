//! Route lookup: host + longest path prefix → [`Route`].
//!
//! Owns the specificity order (exact host over any host, then longest prefix, prefixes matched
//! on segment boundaries). The target arrives normalised (`wire::normalise`); the RFC 6455
//! checks are `validate`'s.

use std::sync::Arc;

use crate::admit::RoutePolicy;
use crate::config::policy::HttpMode;
use crate::upstream::Pool;

/// A configured route, ready for lookup.
pub struct Route {
    /// `None` matches any host.
    pub host: Option<String>,
    pub prefix: String,
    pub pool: Arc<Pool>,
    /// Who may open a tunnel here.
    pub policy: RoutePolicy,
    /// What becomes of requests that are not upgrades: 426, or proxied to the pool.
    pub http: HttpMode,
    /// `host + prefix`, for logs.
    pub label: Arc<str>,
}

/// Routes ordered by specificity.
#[derive(Default)]
pub struct RouteTable {
    routes: Vec<Arc<Route>>,
}

impl RouteTable {
    pub fn new(mut routes: Vec<Route>) -> Self {
        routes.sort_by(|a, b| {
            (a.host.is_none(), std::cmp::Reverse(a.prefix.len()))
                .cmp(&(b.host.is_none(), std::cmp::Reverse(b.prefix.len())))
        });
        RouteTable {
            routes: routes.into_iter().map(Arc::new).collect(),
        }
    }

    /// The route with this `host + prefix` label (to carry its state over a reload).
    /// Every route, most specific first.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.routes.iter()
    }

    pub fn by_label(&self, label: &str) -> Option<&Arc<Route>> {
        self.routes.iter().find(|r| &*r.label == label)
    }

    /// The most specific route for a lower-case host (no port) and a normalised path.
    pub fn find(&self, host: &str, path: &str) -> Option<&Arc<Route>> {
        self.routes.iter().find(|r| {
            r.host.as_deref().is_none_or(|h| h == host) && prefix_matches(&r.prefix, path)
        })
    }
}

/// `prefix` matches `path` on a segment boundary: `/echo` matches `/echo` and `/echo/x`, not
/// `/echoes`; a prefix ending in `/` matches everything below it.
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    path.starts_with(prefix)
        && (prefix.ends_with('/')
            || path.len() == prefix.len()
            || path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_on_segments() {
        assert!(prefix_matches("/", "/anything"));
        assert!(prefix_matches("/echo", "/echo"));
        assert!(prefix_matches("/echo", "/echo/x"));
        assert!(!prefix_matches("/echo", "/echoes"));
        assert!(prefix_matches("/echo/", "/echo/x"));
        assert!(!prefix_matches("/echo/", "/echo"));
    }
}
