//! A TCP forwarder in front of the real Eureka server that can be cut off and restored: the
//! registry then fails the way a network partition does (connections reset, new ones closed at
//! once), while every answer that does arrive is the real server's.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub struct Proxy {
    pub port: u16,
    /// Base path of the upstream URL (e.g. "/eureka/"), so `url()` has the same shape.
    path: String,
    down: Arc<AtomicBool>,
    closed: Arc<AtomicBool>,
    /// Every connection forwarded so far (both sides), to reset them when cut off.
    live: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// Forwards to the server of `upstream` (an http://127.0.0.1:PORT/eureka/ URL).
    pub fn start(upstream: &str) -> Proxy {
        let rest = upstream.strip_prefix("http://").expect("an http URL");
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let target = authority.to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let closed = Arc::new(AtomicBool::new(false));
        let live: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (is_down, is_closed, conns) = (down.clone(), closed.clone(), live.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if is_closed.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                if is_down.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                {
                    let mut conns = conns.lock().unwrap();
                    conns.push(client.try_clone().unwrap());
                    conns.push(server.try_clone().unwrap());
                }
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        Proxy {
            port,
            path: format!("/{path}"),
            down,
            closed,
            live,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}{}", self.port, self.path)
    }

    /// Cuts the registry off: open connections are reset, new ones closed at once.
    pub fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for conn in self.live.lock().unwrap().drain(..) {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::SeqCst);
        self.cut();
        // Wake the accept loop so it sees `closed`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Copies `from` into `to` on a thread of its own until either side closes.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
