//! A broker of a test's own, for tests that stop, kill or pause it: `dev/kafka` in a temporary
//! folder on free ports, with the shared broker's (checksummed) jars. Its data survive a kill
//! and a restart, as a real broker's disk would.
//!
//! A test binary that uses it points the whole testkit at it ([`PrivateBroker::shared`] sets
//! `KAFKA_BOOTSTRAP` before [`broker`](crate::broker) is first asked), and serialises its tests
//! with [`PrivateBroker::exclusive`]: they take turns stopping the one broker.

// Signals to the broker's process, and a handler at exit that stops it.
#![allow(unsafe_code)]

use crate::repo;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The shared private broker's pid file, for [`stop_at_exit`].
static PID_FILE: OnceLock<PathBuf> = OnceLock::new();

/// Kills the shared private broker when the test process exits (it runs detached from it).
extern "C" fn stop_at_exit() {
    if let Some(pid) = PID_FILE.get().and_then(|f| std::fs::read_to_string(f).ok()).and_then(|t| t.trim().parse().ok())
    {
        // SAFETY: kill(2) on the broker's own process id; it holds nothing worth a clean stop.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    if let Some(dir) = PID_FILE.get().and_then(|f| f.parent()) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A broker in a temporary folder (see the module doc).
#[derive(Debug)]
pub struct PrivateBroker {
    dir: tempfile::TempDir,
    port: u16,
}

impl PrivateBroker {
    /// The process's private broker, started on first use; the testkit's
    /// [`broker`](crate::broker) answers its address from then on.
    pub fn shared() -> &'static PrivateBroker {
        static BROKER: OnceLock<PrivateBroker> = OnceLock::new();
        BROKER.get_or_init(|| {
            let b = PrivateBroker::new();
            b.start();
            // A static is never dropped: the broker is stopped when the test process exits.
            PID_FILE.set(b.pid_file()).unwrap();
            // SAFETY: registers a plain function with no captured state.
            unsafe { libc::atexit(stop_at_exit) };
            // SAFETY: set once, before any thread of this process reads it (`broker()` is first
            // asked after this returns; every test calls `shared()` first).
            unsafe { std::env::set_var("KAFKA_BOOTSTRAP", b.bootstrap()) };
            b
        })
    }

    /// One test at a time on the shared private broker (a failed test's poison is ignored).
    pub fn exclusive() -> MutexGuard<'static, ()> {
        static TURN: Mutex<()> = Mutex::new(());
        TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A broker not started yet, on a free port (and the next, for its controller).
    pub fn new() -> PrivateBroker {
        let port = loop {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = probe.local_addr().unwrap().port();
            if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
                break port;
            }
        };
        // The shared broker's jars, fetched and checked once: every command of this broker uses them.
        let shared_jars = Command::new(repo().join("dev/kafka")).arg("fetch").env_remove("KAFKA_BOOTSTRAP").status();
        assert!(shared_jars.is_ok_and(|s| s.success()), "dev/kafka fetch");
        PrivateBroker { dir: tempfile::tempdir().unwrap(), port }
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn dev_kafka(&self, command: &str) -> std::process::Output {
        let jars = std::env::var("IOCFLOW_KAFKA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/iocflow/kafka"))
            .join("jars");
        Command::new(repo().join("dev/kafka"))
            .arg(command)
            .env_remove("KAFKA_BOOTSTRAP")
            .env("IOCFLOW_KAFKA_DIR", self.dir.path())
            .env("IOCFLOW_KAFKA_PORT", self.port.to_string())
            .env("IOCFLOW_KAFKA_JARS", jars)
            .stderr(Stdio::inherit())
            .output()
            .expect("run dev/kafka")
    }

    /// Starts it (or restarts it on its data) and waits until it answers.
    pub fn start(&self) {
        let out = self.dev_kafka("start");
        assert!(out.status.success(), "dev/kafka start of the private broker failed");
    }

    /// Stops it cleanly.
    pub fn stop(&self) {
        assert!(self.dev_kafka("stop").status.success());
    }

    fn pid(&self) -> libc::pid_t {
        let text = std::fs::read_to_string(self.pid_file()).expect("the private broker runs");
        text.trim().parse().unwrap()
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.path().join("broker.pid")
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on the broker's own process id.
        assert_eq!(unsafe { libc::kill(self.pid(), signal) }, 0);
    }

    /// SIGKILL, as a crashed machine would; waits until the process is gone.
    pub fn kill(&self) {
        let pid = self.pid();
        self.signal(libc::SIGKILL);
        // SAFETY: kill(2) with signal 0 only asks whether the process exists.
        while unsafe { libc::kill(pid, 0) } == 0 {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = std::fs::remove_file(self.pid_file());
    }

    /// SIGSTOP: the broker holds its connections and answers nothing (a stalled machine).
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// SIGCONT after [`pause`](Self::pause).
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Default for PrivateBroker {
    fn default() -> Self {
        PrivateBroker::new()
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        if self.pid_file().exists() {
            let _ = self.dev_kafka("stop");
        }
    }
}
