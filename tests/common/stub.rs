//! An in-process HTTP stub for what a real Eureka server cannot be made to do: answer 500,
//! send garbage, hang. It records every request so tests can also prove what was NOT sent.

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
