//! The Hub under the attacks its server runner exists for, replayed from
//! the outside against a Hub of their own (short timeouts, `ulimit -n
//! 1024`): slowloris, silent and idle sockets, descriptor exhaustion, and a
//! SIGTERM with half-sent requests held open.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::client::Client;
use super::json::str_field;
use crate::hub::HubProcess;

const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(3);
const IDLE_TIMEOUT: Duration = Duration::from_secs(4);
const DRAIN_DELAY: Duration = Duration::from_secs(2);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);
/// The Hub's descriptor limit in the exhaustion check, and how many idle
/// sockets it gets: more than it can hold.
const MAX_FILES: u64 = 1024;
const IDLE_SOCKETS: usize = 1100;
/// Slack for scheduling on a loaded 2-core CI machine.
const SLACK: Duration = Duration::from_millis(1500);

pub(crate) fn check() -> Result<(), String> {
    let mut hub = HubProcess::start_with(
        &[
            ("CORTEX_HEADER_READ_TIMEOUT", "3s"),
            ("CORTEX_IDLE_TIMEOUT", "4s"),
            ("CORTEX_DRAIN_DELAY", "2s"),
            ("CORTEX_SHUTDOWN_TIMEOUT", "3s"),
        ],
        Some(MAX_FILES),
    )?;
    let addr = hub.addr();
    descriptor_exhaustion(addr)?;
    slowloris(addr)?;
    idle_keep_alive(addr)?;
    shutdown_with_half_sent_requests(&mut hub)?;
    eprintln!("serving: all attacks handled");
    Ok(())
}

/// Whether the server has closed `stream` (EOF or reset), reading what it
/// sends first; `false` if it is still open after `within`.
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        if stream
            .set_read_timeout(Some(left.max(Duration::from_millis(10))))
            .is_err()
        {
            return true;
        }
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
    false
}

/// 1100 idle sockets against `ulimit -n 1024`: `/health/live` still
/// answers within a second (idle connections make room at the cap).
fn descriptor_exhaustion(addr: SocketAddr) -> Result<(), String> {
    let mut idle = Vec::with_capacity(IDLE_SOCKETS);
    for _ in 0..IDLE_SOCKETS {
        idle.push(TcpStream::connect(addr).map_err(|e| format!("idle socket: {e}"))?);
    }
    // Connections become evictable after a second of idleness.
    std::thread::sleep(Duration::from_millis(1200));
    let client = Client::new(addr);
    let started = Instant::now();
    let reply = client.get("/health/live")?;
    let took = started.elapsed();
    reply.expect_status(200)?;
    if took > Duration::from_secs(1) {
        return Err(format!(
            "/health/live took {took:?} with {IDLE_SOCKETS} idle sockets against ulimit -n {MAX_FILES}"
        ));
    }
    eprintln!(
        "serving: /health/live answered in {took:?} with {IDLE_SOCKETS} idle sockets (ulimit -n {MAX_FILES})"
    );
    drop(idle);
    Ok(())
}

/// Headers at one byte every 300 ms: disconnected after the header-read
/// timeout, and so is a socket that never says anything.
fn slowloris(addr: SocketAddr) -> Result<(), String> {
    let mut slow: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(addr).map_err(|e| format!("slow socket: {e}")))
        .collect::<Result<_, _>>()?;
    let mut silent = TcpStream::connect(addr).map_err(|e| format!("silent socket: {e}"))?;
    let started = Instant::now();
    let header =
        b"GET /health/live HTTP/1.1\r\nHost: hub\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    for byte in header.iter().take(10) {
        for stream in &mut slow {
            let _ = stream.write_all(&[*byte]);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let deadline = HEADER_READ_TIMEOUT + SLACK;
    let left = deadline.saturating_sub(started.elapsed());
    let mut still_open = 0;
    for stream in &mut slow {
        if !closed_within(stream, left) {
            still_open += 1;
        }
    }
    if still_open > 0 {
        return Err(format!(
            "{still_open} of 20 slowloris sockets still open {:?} after connecting",
            started.elapsed()
        ));
    }
    if !closed_within(&mut silent, Duration::from_millis(200)) {
        return Err(
            "a socket that never spoke is still open past the header-read timeout".to_owned(),
        );
    }
    eprintln!(
        "serving: 20 slowloris sockets and a silent one closed within {:?}",
        started.elapsed()
    );
    Ok(())
}

/// One request on a keep-alive connection, then silence: closed after the
/// idle timeout (or hyper's header-read timeout, whichever is first).
fn idle_keep_alive(addr: SocketAddr) -> Result<(), String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("keep-alive socket: {e}"))?;
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: hub\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let limit = IDLE_TIMEOUT.min(HEADER_READ_TIMEOUT) + SLACK;
    if !closed_within(&mut stream, limit) {
        return Err(format!(
            "an idle keep-alive connection is still open after {limit:?}"
        ));
    }
    eprintln!(
        "serving: idle keep-alive connection closed after {:?}",
        started.elapsed()
    );
    Ok(())
}

/// SIGTERM with five half-sent uploads held open: readiness fails during
/// the drain delay, the Hub exits within drain delay + shutdown timeout.
fn shutdown_with_half_sent_requests(hub: &mut HubProcess) -> Result<(), String> {
    let addr = hub.addr();
    let mut half_sent = Vec::new();
    for _ in 0..5 {
        let mut stream = TcpStream::connect(addr).map_err(|e| format!("upload socket: {e}"))?;
        stream
            .write_all(
                b"POST /api/upload HTTP/1.1\r\nHost: hub\r\nContent-Length: 100000\r\n\r\nthe first bytes only",
            )
            .map_err(|e| e.to_string())?;
        half_sent.push(stream);
    }
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    hub.terminate()?;
    std::thread::sleep(Duration::from_millis(300));
    let client = Client::new(addr);
    let ready = client.get("/health/ready")?;
    ready.expect_status(503)?;
    let output = str_field(&ready.json()?, "output")?.to_owned();
    if !output.contains("draining") {
        return Err(format!(
            "readiness during the drain delay says {output:?}, not draining"
        ));
    }
    drop(client);
    let budget = DRAIN_DELAY + SHUTDOWN_TIMEOUT + Duration::from_secs(1);
    hub.wait_exit(budget + SLACK)?;
    let took = started.elapsed();
    if took > budget + SLACK {
        return Err(format!("the hub took {took:?} to exit (budget {budget:?})"));
    }
    eprintln!(
        "serving: readiness 503 \"{output}\" while draining; exited {took:?} after SIGTERM with 5 half-sent requests"
    );
    drop(half_sent);
    Ok(())
}
