//! The toolbox MCP server on the PMCP SDK (`pmcp`), served over streamable HTTP.
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
//! SIGTERM or Ctrl-C. Tools are written with pmcp's `#[mcp_tool]` macro (its
//! `s23_mcp_tool_macro` example) and served with the stateless configuration of its
//! `t05_streamable_http_stateless` example, through pmcp's axum router (`pmcp::axum`).

use std::env;
use std::sync::Arc;

use pmcp::server::axum_router::{RouterConfig, concurrent_router_with_config};
use pmcp::server::streamable_http_server::StreamableHttpServerConfig;
use pmcp::{ServerBuilder, ServerCapabilities, mcp_tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

#[derive(Debug, Deserialize, JsonSchema)]
struct AddArgs {
    /// The first integer
    a: i64,
    /// The second integer
    b: i64,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct GreetArgs {
    /// Who to greet
    name: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct WordCountArgs {
    /// The text whose words to count
    text: String,
}

/// What `secret_fingerprint` answers: `sha256_12` only when the secret is configured.
#[derive(Debug, Serialize, JsonSchema)]
struct Fingerprint {
    configured: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256_12: Option<String>,
}

#[mcp_tool(description = "Add two integers.")]
async fn add(args: AddArgs) -> pmcp::Result<Value> {
    Ok(json!(args.a + args.b))
}

#[mcp_tool(description = "Greet someone with the configured GREETING.")]
async fn greet(args: GreetArgs) -> pmcp::Result<Value> {
    let greeting = env::var("GREETING").unwrap_or_else(|_| "Hello".to_owned());
    Ok(json!(format!("{greeting}, {}!", args.name)))
}

#[mcp_tool(description = "Count the words in a text.")]
async fn word_count(args: WordCountArgs) -> pmcp::Result<Value> {
    Ok(json!(args.text.split_whitespace().count()))
}

/// A typed output: pmcp declares its outputSchema and returns it as structuredContent too.
#[mcp_tool(
    description = "Say whether TOOLBOX_API_KEY is set, with a short SHA-256 fingerprint of it."
)]
async fn secret_fingerprint() -> pmcp::Result<Fingerprint> {
    Ok(match env::var("TOOLBOX_API_KEY") {
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
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info".to_owned().into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();

    let server = ServerBuilder::new()
        .name("toolbox-pmcp")
        .version(env!("CARGO_PKG_VERSION"))
        .capabilities(ServerCapabilities::tools_only())
        .tool("add", add())
        .tool("greet", greet())
        .tool("word_count", word_count())
        .tool("secret_fingerprint", secret_fingerprint())
        .build()?;

    let host = env::var("HOST").unwrap_or_else(|_| "0.0.0.0".to_owned());
    let port = env::var("PORT").unwrap_or_else(|_| "8080".to_owned());

    // pmcp's `StreamableHttpServer` (its t05 example) answers only at `/`; its axum router is
    // the same MCP endpoint with the same security layers, ready to be mounted at `/mcp` and
    // served with a graceful shutdown.
    //
    // `StreamableHttpServerConfig::stateless()`: no session ids, no event store, JSON
    // responses (serverless-ready). `allowed_origins: None` keeps the SDK's default
    // DNS-rebinding protection (`AllowedOrigins::localhost()`: the Host must be localhost,
    // 127.0.0.1 or [::1], any port; a present Origin must be a loopback origin), as the t05
    // example does, instead of the allow-anything that `stateless()` alone would bring: a
    // reverse proxy in front must present a loopback Host such as 127.0.0.1:<port>.
    let config = RouterConfig {
        allowed_origins: None,
        server_config: StreamableHttpServerConfig::stateless(),
        ..RouterConfig::default()
    };
    // `concurrent_*`: requests share the server without a mutex, so a slow call does not hold
    // up the others (pmcp's advice for container deployments).
    let mcp = concurrent_router_with_config(Arc::new(server), config);
    let app = axum::Router::new().nest("/mcp", mcp);

    let listener = tokio::net::TcpListener::bind(format!("{host}:{port}")).await?;
    tracing::info!(
        "toolbox-pmcp listening on http://{}/mcp",
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}
