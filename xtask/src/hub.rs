//! The Hub (`examples/hub`) as a child process, for tasks that check it
//! from the outside: built in the debug profile, started on a free
//! loopback port, stopped with SIGTERM and expected to exit cleanly.
//!
//! A [`HubProcess`] that is dropped while the Hub still runs (a check
//! failed, `?` returned early) kills it, so no task leaves a Hub behind.
//!
//! ```ignore
//! // (xtask is a binary: its doc examples are not compiled)
//! HubProcess::build()?;
//! let hub = HubProcess::start()?;
//! let url = format!("http://{}/metrics", hub.addr());
//! hub.stop()?;
//! ```

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::free_loopback_addr;
use crate::{cargo, exec, root};

/// How long the Hub may take to listen after its start.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the Hub may take to exit after SIGTERM (it drains in-flight
/// requests and stops its actors first).
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `cortex-hub` binary; killed on drop unless [`stop`]ped.
///
/// [`stop`]: HubProcess::stop
#[derive(Debug)]
pub(crate) struct HubProcess {
    child: Child,
    addr: SocketAddr,
}

impl HubProcess {
    /// Builds `cortex-hub` in the debug profile (what [`start`] runs).
    ///
    /// [`start`]: HubProcess::start
    pub(crate) fn build() -> Result<(), String> {
        exec(&cargo(), &["build", "--quiet", "-p", "cortex-hub"])
    }

    /// Starts the built Hub on a free loopback port and waits until it
    /// accepts connections. A short drain delay keeps the final clean stop
    /// quick.
    pub(crate) fn start() -> Result<Self, String> {
        Self::start_with(&[("CORTEX_DRAIN_DELAY", "500ms")], None)
    }

    /// [`start`](Self::start) with extra environment variables, and with
    /// the soft `RLIMIT_NOFILE` set to `max_files` if given (through the
    /// shell's `ulimit -n`, so the limit is the Hub's alone).
    pub(crate) fn start_with(env: &[(&str, &str)], max_files: Option<u64>) -> Result<Self, String> {
        Self::spawn(env, max_files, None)
    }

    /// [`start_with`](Self::start_with) (no file limit), with the Hub's
    /// stdout and stderr (its log lines) written to the file `log`.
    pub(crate) fn start_logged(env: &[(&str, &str)], log: &Path) -> Result<Self, String> {
        Self::spawn(env, None, Some(log))
    }

    fn spawn(
        env: &[(&str, &str)],
        max_files: Option<u64>,
        log: Option<&Path>,
    ) -> Result<Self, String> {
        let addr = free_loopback_addr()?;
        let binary = binary();
        let mut command = match max_files {
            Some(limit) => {
                let mut command = Command::new("sh");
                command
                    .arg("-c")
                    .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                    .arg(&binary);
                command
            }
            None => Command::new(&binary),
        };
        command
            .args(["--addr", &addr.to_string()])
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null());
        if let Some(log) = log {
            let file = File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
            let stderr = file.try_clone().map_err(|e| e.to_string())?;
            command.stdout(file).stderr(stderr);
        }
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut hub = Self { child, addr };
        hub.wait_until_listening()?;
        eprintln!("hub: listening on {addr} (pid {})", hub.child.id());
        Ok(hub)
    }

    /// Where the Hub listens.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Hub's process id (for its `/proc` figures).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and expects a successful exit within [`STOP_TIMEOUT`].
    pub(crate) fn stop(mut self) -> Result<(), String> {
        self.terminate()?;
        self.wait_exit(STOP_TIMEOUT).map(|_| ())
    }

    /// SIGKILL, and waits for the process to be gone: a crash, not a
    /// shutdown.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM without waiting.
    pub(crate) fn terminate(&mut self) -> Result<(), String> {
        let pid = self.child.id().to_string();
        let signalled = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .map_err(|e| format!("cannot run kill: {e}"))?;
        if signalled.success() {
            Ok(())
        } else {
            Err(format!("kill -TERM {pid} failed with {signalled}"))
        }
    }

    /// Waits up to `timeout` for a successful exit; says how long it took.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> Result<Duration, String> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return if status.success() {
                    eprintln!("hub: clean exit after SIGTERM");
                    Ok(started.elapsed())
                } else {
                    Err(format!("hub exited with {status} after SIGTERM"))
                };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("hub did not stop within {timeout:?} of SIGTERM"))
    }

    /// Polls the port until it accepts a connection; fails at once if the
    /// Hub exits first (a bad flag, the port taken meanwhile).
    fn wait_until_listening(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("the hub exited with {status} before listening"));
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "the hub did not listen on {} within {START_TIMEOUT:?}",
            self.addr
        ))
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The debug binary, in `CARGO_TARGET_DIR` when that is set.
fn binary() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
        .join("debug")
        .join("cortex-hub")
}
