//! Child processes the tasks start on loopback (the Hub, Prometheus,
//! redis-server, servers under valgrind): a free port for them, and a stop
//! by PID that cannot hang.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Binds port 0, reads the port, and releases it for a child to listen
/// on. Another process could take it in between; on a CI machine that
/// window is negligible, and the child then fails to start rather than
/// hangs.
pub(crate) fn free_loopback_addr() -> Result<SocketAddr, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener.local_addr().map_err(|e| e.to_string())
}

/// Sends SIGTERM and waits up to `grace` for the child to exit; then
/// SIGKILL. Returns whether it exited on SIGTERM (a child that already
/// exited counts as having done so).
pub(crate) fn stop_by_pid(child: &mut Child, grace: Duration) -> bool {
    if !matches!(child.try_wait(), Ok(None)) {
        return true;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// Spawns `command` (stdin closed) and waits up to 10 s until `ready`
/// says it serves (a protocol greeting, a `PING`): the child, or why not.
/// A child that is not ready in time is killed.
pub(crate) fn spawn_until_ready(
    command: &mut Command,
    ready: impl Fn() -> bool,
) -> Result<Child, String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .stdin(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{program} was not ready within 10 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(child)
}

/// The first line `program flag` prints (a version), or empty.
pub(crate) fn version_of(program: &str, flag: &str) -> String {
    Command::new(program)
        .arg(flag)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}
