//! `cargo run -p trace-conformance -- [--addr HOST:PORT]` (default
//! `127.0.0.1:5000`), then point the W3C harness at `http://HOST:PORT/test`:
//! `SPEC_LEVEL=2 STRICT_LEVEL=2 python3 test.py http://127.0.0.1:5000/test`
//! from the suite's `test/` folder (it needs `pip install aiohttp`).

use std::net::SocketAddr;

use opentelemetry_sdk::trace::SdkTracerProvider;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:5000".to_owned();
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--addr", Some(value)) => addr = value,
            _ => {
                eprintln!("usage: trace-conformance [--addr HOST:PORT]");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    let addr: SocketAddr = match addr.parse() {
        Ok(addr) => addr,
        Err(error) => {
            eprintln!("invalid address {addr:?}: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let provider = SdkTracerProvider::builder().build();
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("cannot bind {addr}: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    tracing::info!("trace-conformance listening on http://{addr}/test");
    let served = axum::serve(listener, trace_conformance::app(&provider))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    let _ = provider.shutdown();
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("serving failed: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
