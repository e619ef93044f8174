//! Readiness probes as a kubelet runs them: an `exec` probe inside the container (through the
//! engine), an `httpGet` probe on the container's loopback, asked from a thread that enters the
//! container's network namespace (`setns`, which needs root: elsewhere the probe is not run and
//! that is said).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

/// A container's readiness probe, as far as the proof can run it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    Exec(Vec<String>),
    HttpGet { port: u16, path: String },
}

/// The container's readiness probe, if it has one the proof can run (an `httpGet` to another
/// host or over HTTPS, or a `tcpSocket`/`grpc` probe, is not run).
pub fn readiness(container: &Value) -> Option<Probe> {
    let probe = &container["readinessProbe"];
    if let Some(command) = probe["exec"]["command"].as_array() {
        let words = command
            .iter()
            .map(|w| w.as_str().map_or_else(|| w.to_string(), str::to_string))
            .collect();
        return Some(Probe::Exec(words));
    }
    let get = probe.get("httpGet")?;
    let local = get
        .get("host")
        .is_none_or(|h| h == "127.0.0.1" || h == "localhost");
    let plain = get.get("scheme").is_none_or(|s| s == "HTTP");
    if !(local && plain) {
        return None;
    }
    let port = match &get["port"] {
        Value::Number(n) => n.as_u64(),
        Value::String(name) => named_port(container, name),
        _ => None,
    }?;
    Some(Probe::HttpGet {
        port: u16::try_from(port).ok()?,
        path: get["path"].as_str().unwrap_or("/").to_string(),
    })
}

/// A probe's port given by name: the container's `ports` entry of that name.
fn named_port(container: &Value, name: &str) -> Option<u64> {
    container["ports"]
        .as_array()?
        .iter()
        .find(|p| p["name"].as_str() == Some(name))?["containerPort"]
        .as_u64()
}

/// Asks `GET path` on 127.0.0.1:`port` inside the network namespace of process `pid`: whether
/// it answered 200-399, or why it could not be asked (the namespace cannot be entered).
pub fn http_get_in(pid: i32, port: u16, path: &str, limit: Duration) -> Result<bool, String> {
    let namespace = format!("/proc/{pid}/ns/net");
    let path = path.to_string();
    std::thread::spawn(move || {
        enter_network_namespace(&namespace)?;
        Ok(http_ok(port, &path, limit))
    })
    .join()
    .unwrap_or_else(|_| Err("the probe's thread failed".into()))
}

/// Moves the calling thread (only it) into the network namespace at `path`.
fn enter_network_namespace(path: &str) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    // SAFETY: setns on a descriptor this function owns; it changes only this thread's network
    // namespace, and the thread ends after the probe.
    let done = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if done != 0 {
        return Err(format!(
            "cannot enter the container's network namespace: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// One HTTP/1.0 GET on loopback: whether the status is 200-399.
fn http_ok(port: u16, path: &str, limit: Duration) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, limit) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(limit));
    let _ = stream.set_write_timeout(Some(limit));
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: kube-probe/kube-harden\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    // The status line may come in pieces: read until its end (or 64 bytes, or the end).
    let mut head = Vec::new();
    let mut piece = [0u8; 64];
    while head.len() < 64 && !head.contains(&b'\n') {
        match stream.read(&mut piece) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&piece[..n]),
        }
    }
    let line = String::from_utf8_lossy(&head);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .is_some_and(|code| (200..400).contains(&code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn probes_the_proof_can_run() {
        let exec = json!({"readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]}}});
        assert_eq!(
            readiness(&exec),
            Some(Probe::Exec(vec!["cat".into(), "/tmp/ready".into()]))
        );
        let named = json!({
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}}
        });
        assert_eq!(
            readiness(&named),
            Some(Probe::HttpGet {
                port: 8080,
                path: "/healthz".into()
            })
        );
        let https = json!({"readinessProbe": {"httpGet": {"port": 8443, "scheme": "HTTPS"}}});
        assert_eq!(readiness(&https), None);
        let tcp = json!({"readinessProbe": {"tcpSocket": {"port": 8080}}});
        assert_eq!(readiness(&tcp), None);
    }

    #[test]
    fn an_http_answer_below_400_is_ready() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            for status in ["200 OK", "503 Service Unavailable"] {
                let (mut stream, _) = listener.accept().unwrap();
                let mut request = [0u8; 512];
                let _ = stream.read(&mut request);
                let _ = write!(stream, "HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
            }
        });
        let limit = Duration::from_secs(5);
        assert!(http_ok(port, "/", limit));
        assert!(!http_ok(port, "/", limit));
        server.join().unwrap();
    }
}
