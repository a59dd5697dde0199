//! The inbound data path, one module per stage; [`conn::handle`] calls them in order.

pub mod accept_set;
pub mod client_addr;
pub mod conn;
pub mod forward;
pub mod h1;
pub mod h2;
pub mod h2_leg;
pub mod listener;
pub mod pass;
pub mod plain;
pub mod proxy_protocol;
pub mod respond;
pub mod tls;
pub mod tls_conn;
pub mod validate;
pub mod verify;
