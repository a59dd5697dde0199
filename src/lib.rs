//! wsgate: a reverse proxy and TLS terminator for WebSocket upgrades.
//!
//! One connection travels one way through wsgate, stage by stage. Every stage can refuse with a
//! precise answer, and none of them runs again once the tunnel is up:
//!
//! ```text
//! client ─TLS─▶ accept ─▶ tls ─▶ head ─▶ route ─▶ validate ─▶ upstream ─▶ verify ─▶ tunnel ─TCP─▶ backend
//!                 │         │SNI    │bounds  │host+path │RFC 6455    │connect    │RFC 6455   │bytes both
//!                 │         │       │framing │          │§4.2.1      │rebuilt req│§4.1       │ways
//!                 ▼         ▼       ▼        ▼          ▼            ▼           ▼           ▼
//!               close     alert  400/408  404/421    400/405/426   502/504     502       idle/drain close
//!                                 /431
//! ```
//!
//! The path is readable in one function, [`proxy::conn::handle`]; each stage is its own module.
//! [`Gateway`] ties a validated [`config::Config`] to listeners and a shutdown signal.
#![forbid(unsafe_code)]

pub mod acme;
pub mod admin;
pub mod admit;
pub mod cluster;
pub mod config;
pub mod error;
pub mod gateway;
pub mod lifecycle;
pub mod metrics;
pub mod outbound;
pub mod proxy;
pub mod reload;
pub mod runtime;
pub mod session;
pub mod stats;
pub mod tunnel;
pub mod upstream;
pub mod wire;

pub use gateway::{BoundListener, Gateway, Shutdown};
pub use reload::Reloader;
pub use stats::Stats;
