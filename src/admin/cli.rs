//! `wsgate sessions list|close`: the operator's side of the admin session API.
//!
//! Owns the subcommands' arguments (clap), turning them into a `GET /sessions` query or a
//! `POST /sessions/close` body, the table `list` prints, and the exit status: 0 on a 2xx answer,
//! [`EXIT_REFUSED`] with the server's message on any other, [`EXIT_UNAVAILABLE`] when the admin
//! endpoint cannot be reached. The bearer token comes from `WSGATE_ADMIN_TOKEN`. Does not own
//! the HTTP exchange (`super::client`) or the wire shapes (`super::sessions`).

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use hyper::Method;

use super::client::{AdminUrl, Reply, request};
use super::sessions::{CloseRequest, Closed, SessionView};

/// The environment variable holding the admin bearer token.
pub const TOKEN_ENV: &str = "WSGATE_ADMIN_TOKEN";
/// Exit status when the admin endpoint answered with an error.
pub const EXIT_REFUSED: u8 = 1;
/// Exit status when the admin endpoint could not be reached (EX_UNAVAILABLE).
pub const EXIT_UNAVAILABLE: u8 = 69;

/// `wsgate sessions ...`
#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List the live sessions as a table.
    List(ListArgs),
    /// Close the sessions that match every selector given; prints how many were asked to close.
    Close(CloseArgs),
}

/// Where the admin endpoint is.
#[derive(Debug, Args)]
pub struct Endpoint {
    /// The admin endpoint, e.g. http://127.0.0.1:9090 or unix:/run/wsgate/admin.sock (bearer
    /// token from WSGATE_ADMIN_TOKEN).
    #[arg(long)]
    pub admin: String,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub endpoint: Endpoint,
    /// Only sessions of this token subject.
    #[arg(long)]
    pub subject: Option<String>,
    /// Only sessions on this route label (e.g. `*/chat`).
    #[arg(long)]
    pub route: Option<String>,
}

#[derive(Debug, Args)]
pub struct CloseArgs {
    #[command(flatten)]
    pub endpoint: Endpoint,
    /// The session with this id.
    #[arg(long)]
    pub id: Option<u64>,
    /// Sessions of this token subject.
    #[arg(long)]
    pub subject: Option<String>,
    /// Sessions on this route label.
    #[arg(long)]
    pub route: Option<String>,
    /// Sessions from this client IP address.
    #[arg(long)]
    pub client: Option<String>,
    /// WebSocket close code (1000, 1001, 1008, 1011-1013, 4000-4999; default 1008).
    #[arg(long)]
    pub code: Option<u16>,
    /// Close reason (at most 123 bytes; default `closed by operator`).
    #[arg(long)]
    pub reason: Option<String>,
    /// Also close the matching sessions on every other instance of the fleet (`cluster:`).
    #[arg(long)]
    pub fleet: bool,
}

/// Run one `wsgate sessions` command; prints to stdout, errors to stderr.
pub fn main(command: SessionsCommand) -> ExitCode {
    let token = std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty());
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wsgate: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_UNAVAILABLE);
        }
    };
    match runtime.block_on(run(command, token.as_deref())) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err((code, message)) => {
            eprintln!("wsgate: {message}");
            ExitCode::from(code)
        }
    }
}

/// What the command prints, or its exit status and message.
async fn run(command: SessionsCommand, token: Option<&str>) -> Result<String, (u8, String)> {
    let unavailable = |m: String| (EXIT_UNAVAILABLE, m);
    match command {
        SessionsCommand::List(args) => {
            let url = AdminUrl::parse(&args.endpoint.admin).map_err(unavailable)?;
            let mut query = form_urlencoded::Serializer::new(String::new());
            if let Some(s) = &args.subject {
                query.append_pair("subject", s);
            }
            if let Some(r) = &args.route {
                query.append_pair("route", r);
            }
            let query = query.finish();
            let path = if query.is_empty() {
                "/sessions".to_owned()
            } else {
                format!("/sessions?{query}")
            };
            let reply = request(&url, Method::GET, &path, token, None)
                .await
                .map_err(unavailable)?;
            let sessions: Vec<SessionView> = decode(&reply)?;
            Ok(table(&sessions))
        }
        SessionsCommand::Close(args) => {
            let url = AdminUrl::parse(&args.endpoint.admin).map_err(unavailable)?;
            let body = CloseRequest {
                id: args.id,
                subject: args.subject,
                route: args.route,
                client: args.client,
                code: args.code,
                reason: args.reason,
                scope: args.fleet.then(|| "fleet".to_owned()),
            };
            let json = serde_json::to_vec(&body).map_err(|e| (EXIT_REFUSED, e.to_string()))?;
            let reply = request(&url, Method::POST, "/sessions/close", token, Some(json))
                .await
                .map_err(unavailable)?;
            let Closed { closed, published } = decode(&reply)?;
            let noun = if closed == 1 { "session" } else { "sessions" };
            let fleet = match published {
                Some(true) => "; published to the fleet",
                _ => "",
            };
            Ok(format!("closed {closed} {noun}{fleet}\n"))
        }
    }
}

/// The 2xx answer's JSON, or the server's message for any other status.
fn decode<T: serde::de::DeserializeOwned>(reply: &Reply) -> Result<T, (u8, String)> {
    if !(200..300).contains(&reply.status) {
        let message = serde_json::from_slice::<serde_json::Value>(&reply.body)
            .ok()
            .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&reply.body).trim().to_owned());
        return Err((EXIT_REFUSED, format!("{} {message}", reply.status)));
    }
    serde_json::from_slice(&reply.body).map_err(|e| {
        (
            EXIT_REFUSED,
            format!("unexpected answer from the admin endpoint: {e}"),
        )
    })
}

const HEADERS: [&str; 11] = [
    "ID",
    "SUBJECT",
    "CLIENT",
    "ROUTE",
    "BACKEND",
    "STARTED",
    "BYTES_TO_BACKEND",
    "BYTES_TO_CLIENT",
    "MSGS_TO_BACKEND",
    "MSGS_TO_CLIENT",
    "EXPIRES_AT",
];

/// The sessions as a table, columns padded to their widest cell; `-` for none.
pub fn table(sessions: &[SessionView]) -> String {
    let rows: Vec<[String; 11]> = sessions
        .iter()
        .map(|s| {
            [
                s.id.to_string(),
                s.subject.clone().unwrap_or_else(|| "-".into()),
                s.client.clone(),
                s.route.clone(),
                s.backend.clone(),
                s.started.clone(),
                s.bytes_to_backend.to_string(),
                s.bytes_to_client.to_string(),
                s.messages_to_backend.to_string(),
                s.messages_to_client.to_string(),
                s.expires_at.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let mut widths = HEADERS.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells.zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        let _ = writeln!(out, "{}", padded.join("  ").trim_end());
    };
    line(&mut HEADERS.iter().copied());
    for row in &rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_columns_and_marks_missing_values() {
        let s = SessionView {
            id: 7,
            subject: None,
            client: "10.0.0.1".into(),
            route: "*/chat".into(),
            backend: "ws://127.0.0.1:9000".into(),
            started: "2023-11-14T22:13:20Z".into(),
            bytes_to_backend: 10,
            bytes_to_client: 20,
            messages_to_backend: 1,
            messages_to_client: 2,
            expires_at: None,
            protocol: "h1".into(),
        };
        let t = table(&[s]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("ID  SUBJECT  CLIENT    "), "{t}");
        assert!(lines[1].starts_with("7   -        10.0.0.1  */chat"), "{t}");
        assert!(lines[1].ends_with('-'), "{t}");
    }
}
