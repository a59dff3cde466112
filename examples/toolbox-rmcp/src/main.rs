//! The toolbox MCP server on the official Rust SDK (`rmcp`), served over streamable HTTP.
//!
//! Tools (the same as the Python `examples/toolbox`):
//! - `add(a, b)`: integer sum;
//! - `greet(name)`: `"{GREETING}, {name}!"` (GREETING from the environment, default "Hello");
//! - `word_count(text)`: number of whitespace-separated words;
//! - `secret_fingerprint()`: whether TOOLBOX_API_KEY is set, and the first 12 hex digits of its
//!   SHA-256 (never the value itself).
//!
//! It listens on `${HOST:-0.0.0.0}:${PORT:-8080}` at `/mcp`, statelessly (no Mcp-Session-Id:
//! any instance can answer any request) with plain JSON responses, and stops gracefully on
//! SIGTERM or Ctrl-C. The server is set up the way rmcp's own `counter_streamhttp` example and
//! its stateless JSON-response tests do it.

use std::env;

use rmcp::{
    Json, ServerHandler,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{Implementation, ServerCapabilities, ServerConfig},
    schemars, tool, tool_handler, tool_router,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct AddRequest {
    /// The first integer
    a: i64,
    /// The second integer
    b: i64,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct GreetRequest {
    /// Who to greet
    name: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct WordCountRequest {
    /// The text whose words to count
    text: String,
}

/// What `secret_fingerprint` answers: `sha256_12` only when the secret is configured.
#[derive(Debug, Serialize, schemars::JsonSchema)]
struct Fingerprint {
    configured: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256_12: Option<String>,
}

#[derive(Debug, Clone)]
struct Toolbox {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Toolbox {
    fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Add two integers.")]
    fn add(&self, Parameters(AddRequest { a, b }): Parameters<AddRequest>) -> Json<i64> {
        Json(a + b)
    }

    #[tool(description = "Greet someone with the configured GREETING.")]
    fn greet(&self, Parameters(GreetRequest { name }): Parameters<GreetRequest>) -> String {
        let greeting = env::var("GREETING").unwrap_or_else(|_| "Hello".to_owned());
        format!("{greeting}, {name}!")
    }

    #[tool(description = "Count the words in a text.")]
    fn word_count(
        &self,
        Parameters(WordCountRequest { text }): Parameters<WordCountRequest>,
    ) -> Json<usize> {
        Json(text.split_whitespace().count())
    }

    #[tool(
        description = "Say whether TOOLBOX_API_KEY is set, with a short SHA-256 fingerprint of it."
    )]
    fn secret_fingerprint(&self) -> Json<Fingerprint> {
        Json(match env::var("TOOLBOX_API_KEY") {
            Err(_) => Fingerprint {
                configured: false,
                sha256_12: None,
            },
            Ok(value) => {
                let digest = Sha256::digest(value.as_bytes());
                let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
                Fingerprint {
                    configured: true,
                    sha256_12: Some(hex[..12].to_owned()),
                }
            }
        })
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Toolbox {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "toolbox-rmcp",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions("Small arithmetic and text tools.")
    }
}

/// Resolves on SIGTERM (how a platform stops the server) or Ctrl-C.
async fn shutdown_signal() {
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = sigterm.recv() => {}
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // RUST_LOG overrides; by default rmcp's per-request INFO lines are left out.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rmcp=warn".to_owned().into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();

    let host = env::var("HOST").unwrap_or_else(|_| "0.0.0.0".to_owned());
    let port = env::var("PORT").unwrap_or_else(|_| "8080".to_owned());
    let ct = CancellationToken::new();

    // Stateless (`legacy_session_mode: false`): no Mcp-Session-Id, each POST is served on its
    // own, so requests may land on different instances (Lambda, Cloud Run). `json_response`
    // answers with `application/json` instead of an SSE stream. `allowed_hosts` keeps rmcp's
    // default DNS-rebinding protection (loopback names only: localhost, 127.0.0.1, ::1, any
    // port): a reverse proxy in front must present a loopback Host such as 127.0.0.1:<port>.
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_cancellation_token(ct.child_token());
    let service: StreamableHttpService<Toolbox, LocalSessionManager> =
        StreamableHttpService::new(|| Ok(Toolbox::new()), Default::default(), config);

    let router = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind(format!("{host}:{port}")).await?;
    tracing::info!(
        "toolbox-rmcp listening on http://{}/mcp",
        listener.local_addr()?
    );
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            ct.cancel();
        })
        .await?;
    Ok(())
}
