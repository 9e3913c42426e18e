//! A tiny HTTP/1.1 server on 127.0.0.1 for the unit tests (std threads, one request per
//! connection): `reply(head, n)` gets the n-th (0-based) request's head and returns the whole raw
//! response; every head is kept for the test to look at.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

pub struct TestServer {
    pub url: String,
    pub heads: Arc<Mutex<Vec<String>>>,
}

impl TestServer {
    pub fn start(reply: impl Fn(&str, usize) -> String + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let heads: Arc<Mutex<Vec<String>>> = Arc::default();
        let (seen, reply) = (heads.clone(), Arc::new(reply));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (seen, reply) = (seen.clone(), reply.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut head = String::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                            break;
                        }
                        head.push_str(&line);
                    }
                    let len = head
                        .lines()
                        .filter_map(|l| l.split_once(':'))
                        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                        .and_then(|(_, v)| v.trim().parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0; len];
                    let _ = reader.read_exact(&mut body);
                    let n = {
                        let mut seen = seen.lock().unwrap();
                        seen.push(head.clone());
                        seen.len() - 1
                    };
                    let _ = stream.write_all(reply(&head, n).as_bytes());
                });
            }
        });
        TestServer { url, heads }
    }

    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

/// A server that answers every request with a chunked 200 body that never ends (64 KiB chunks
/// until the client hangs up, or 1 GiB); each connection's byte count is sent on the channel
/// once the client has gone.
pub fn endless_reply() -> (String, std::sync::mpsc::Receiver<u64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut len = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        if k.trim().eq_ignore_ascii_case("content-length") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let _ = reader.read_exact(&mut vec![0; len]);
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                let chunk = [
                    format!("{:x}\r\n", 64 << 10).into_bytes(),
                    vec![b' '; 64 << 10],
                    b"\r\n".to_vec(),
                ]
                .concat();
                let mut sent = 0u64;
                if stream.write_all(head.as_bytes()).is_ok() {
                    while sent < 1 << 30 && stream.write_all(&chunk).is_ok() {
                        sent += 64 << 10;
                    }
                }
                let _ = tx.send(sent);
            });
        }
    });
    (url, rx)
}

/// A raw response with `status`, extra header lines and a body.
pub fn response(status: u16, headers: &[(&str, &str)], body: &str) -> String {
    let mut out = format!(
        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out
}

/// A chat-completions reply saying `content`.
pub fn chat_response(content: &str) -> String {
    let body = serde_json::json!({
        "choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 2}
    });
    response(
        200,
        &[("content-type", "application/json")],
        &body.to_string(),
    )
}
