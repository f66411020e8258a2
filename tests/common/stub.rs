//! An in-process HTTP stub for what a real Eureka server cannot be made to do: answer 500,
//! send garbage, hang, redirect, send a body that never ends or stops arriving. It records
//! every request so tests can also prove what was NOT sent.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
    /// Which TCP connection carried it (to see keep-alive at work).
    pub connection: usize,
}

pub enum Reply {
    Status(u16, &'static str),
    /// Never answer (until the stub is dropped or `hang` elapses).
    Hang(Duration),
    /// A 3xx with this Location header.
    Redirect(u16, String),
    /// 200 with a chunked body that never ends (until the client goes away or the stub drops).
    Endless,
    /// 200 announcing a long body, a few bytes of it, then nothing (for at most this long).
    Stall(Duration),
    /// 200 with this body sent as `Content-Encoding: gzip` (see [`gzip_stored`]).
    Gzip(Vec<u8>),
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

pub struct Stub {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<Request>>>,
    closed: Arc<AtomicBool>,
}

impl Stub {
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let closed = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (reqs, done) = (requests.clone(), closed.clone());
        std::thread::spawn(move || {
            for (connection, stream) in listener.incoming().enumerate() {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (reqs, handler, done) = (reqs.clone(), handler.clone(), done.clone());
                std::thread::spawn(move || serve(stream, connection, &reqs, &*handler, &done));
            }
        });
        Stub {
            port,
            requests,
            closed,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/eureka/", self.port)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(
    stream: TcpStream,
    connection: usize,
    reqs: &Mutex<Vec<Request>>,
    handler: &Handler,
    done: &AtomicBool,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let request = Request {
            method,
            path,
            headers,
            body,
            at: Instant::now(),
            connection,
        };
        reqs.lock().unwrap().push(request.clone());
        match handler(&request) {
            Reply::Status(code, body) => {
                let response = format!(
                    "HTTP/1.1 {code} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                if writer.write_all(response.as_bytes()).is_err() {
                    return;
                }
            }
            Reply::Redirect(code, location) => {
                let response = format!(
                    "HTTP/1.1 {code} X\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n"
                );
                if writer.write_all(response.as_bytes()).is_err() {
                    return;
                }
            }
            Reply::Endless => {
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                            Transfer-Encoding: chunked\r\n\r\n";
                if writer.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let chunk = format!("10000\r\n{}\r\n", "x".repeat(0x10000));
                while !done.load(Ordering::SeqCst) {
                    if writer.write_all(chunk.as_bytes()).is_err() {
                        return;
                    }
                }
                return;
            }
            Reply::Stall(limit) => {
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                            Content-Length: 1000000\r\n\r\n{\"applicat";
                if writer.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let until = Instant::now() + limit;
                while Instant::now() < until && !done.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                return;
            }
            Reply::Gzip(packed) => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                     Content-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
                    packed.len()
                );
                if writer.write_all(head.as_bytes()).is_err() || writer.write_all(&packed).is_err()
                {
                    return;
                }
            }
            Reply::Hang(limit) => {
                let until = Instant::now() + limit;
                while Instant::now() < until && !done.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                return;
            }
        }
    }
}

/// Answers like a healthy Eureka: 204 to POST, 200 to PUT and DELETE.
pub fn healthy(request: &Request) -> Reply {
    match request.method.as_str() {
        "POST" => Reply::Status(204, ""),
        _ => Reply::Status(200, ""),
    }
}

/// A valid gzip stream of `data` made of stored (uncompressed) deflate blocks: enough to prove
/// the client decodes `Content-Encoding: gzip` without a compression library in the tests.
pub fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let mut chunks = data.chunks(65_535).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        out.push(u8::from(chunks.peek().is_none()));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    out.extend_from_slice(&(!crc).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}
