//! The default connection cap, and telling descriptor exhaustion apart from
//! other accept errors.

use std::io;

/// Descriptors kept free for everything that is not a client connection:
/// log files, pipes, outgoing connections, the listener itself.
const MIN_HEADROOM: usize = 64;

/// The soft `RLIMIT_NOFILE` minus a tenth (at least [`MIN_HEADROOM`]),
/// never below 1. An unlimited soft limit is treated as 65 536.
pub(crate) fn default_max_connections() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(65_536);
    cap_for(usize::try_from(limit).unwrap_or(usize::MAX))
}

fn cap_for(limit: usize) -> usize {
    let headroom = (limit / 10).max(MIN_HEADROOM);
    limit.saturating_sub(headroom).max(1)
}

/// `EMFILE` / `ENFILE`: the process or the system is out of descriptors.
pub(crate) fn is_fd_exhaustion(error: &io::Error) -> bool {
    error.raw_os_error().is_some_and(|code| {
        code == rustix::io::Errno::MFILE.raw_os_error()
            || code == rustix::io::Errno::NFILE.raw_os_error()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_a_tenth_and_at_least_64_descriptors() {
        assert_eq!(cap_for(1024), 922);
        assert_eq!(cap_for(65_536), 58_983);
        assert_eq!(cap_for(200), 136);
        assert_eq!(cap_for(10), 1);
        assert!(default_max_connections() >= 1);
    }

    #[test]
    fn descriptor_exhaustion_is_told_apart() {
        let emfile = io::Error::from_raw_os_error(rustix::io::Errno::MFILE.raw_os_error());
        let enfile = io::Error::from_raw_os_error(rustix::io::Errno::NFILE.raw_os_error());
        let aborted = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert!(is_fd_exhaustion(&emfile));
        assert!(is_fd_exhaustion(&enfile));
        assert!(!is_fd_exhaustion(&aborted));
    }
}
