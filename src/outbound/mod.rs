//! Outbound HTTP: the requests wsgate makes on its own behalf (not the proxied traffic).
//!
//! Owns: [`client`], one pooled HTTP/1.1 client (http and https) with per-call timeouts and body
//! caps. Used by `admit::jwks` (JWKS documents) and `admit::auth_request` (the auth service).
//! Depends on nothing in `admit`. Does not own backend connections (`upstream`), which are
//! upgraded to tunnels and never pooled.

pub mod client;
