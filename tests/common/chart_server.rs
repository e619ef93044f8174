//! A Helm chart repository on loopback for the tests: a minimal HTTP/1.1 server on a thread
//! that serves a folder (an `index.yaml` and `.tgz` archives), answers some paths with bytes of
//! the test's choosing (a tampered archive, a page that is not an index), logs the paths it was
//! asked for, and stops on request so that its port then refuses connections.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Default)]
struct Shared {
    overrides: HashMap<String, Vec<u8>>,
    log: Vec<String>,
}

pub struct ChartServer {
    port: u16,
    shared: Arc<Mutex<Shared>>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ChartServer {
    /// Serves the files under `root` at `/`.
    pub fn start(root: &Path) -> ChartServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let stopping = Arc::new(AtomicBool::new(false));
        let thread = {
            let (root, shared, stopping) = (root.to_path_buf(), shared.clone(), stopping.clone());
            std::thread::spawn(move || serve(listener, &root, &shared, &stopping))
        };
        ChartServer {
            port,
            shared,
            stopping,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Answers `path` (such as `/index.yaml`) with `body` instead of the file.
    pub fn answer(&self, path: &str, body: Vec<u8>) {
        let mut shared = self.shared.lock().unwrap();
        shared.overrides.insert(path.to_string(), body);
    }

    /// The paths asked for so far, in order.
    pub fn log(&self) -> Vec<String> {
        self.shared.lock().unwrap().log.clone()
    }

    /// Stops serving; the port refuses connections afterwards.
    pub fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the accept call up so that the loop sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        thread.join().unwrap();
    }
}

impl Drop for ChartServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(listener: TcpListener, root: &Path, shared: &Mutex<Shared>, stopping: &AtomicBool) {
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(stream) = stream {
            answer(stream, root, shared);
        }
    }
}

/// Reads one request and answers it, then closes the connection.
fn answer(mut stream: TcpStream, root: &Path, shared: &Mutex<Shared>) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let Some(path) = request_path(&mut stream) else {
        return;
    };
    let body = {
        let mut shared = shared.lock().unwrap();
        shared.log.push(path.clone());
        shared.overrides.get(&path).cloned()
    };
    let body = body.or_else(|| file_under(root, &path));
    let head = match &body {
        Some(b) => format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n", b.len()),
        None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n".to_string(),
    };
    let _ = stream.write_all(format!("{head}Connection: close\r\n\r\n").as_bytes());
    let _ = stream.write_all(body.as_deref().unwrap_or_default());
}

/// The path of a `GET` request (query string dropped), after reading its head.
fn request_path(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let target = head.lines().next()?.split_whitespace().nth(1)?;
    Some(target.split('?').next().unwrap_or_default().to_string())
}

/// The file at a request path below `root`; None for anything else.
fn file_under(root: &Path, path: &str) -> Option<Vec<u8>> {
    let relative = PathBuf::from(path.trim_start_matches('/'));
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return None;
    }
    std::fs::read(root.join(relative)).ok()
}
