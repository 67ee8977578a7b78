//! A small HTTPS/1.1 server on 127.0.0.1 for the token and blob servers: a thread accepts, a thread
//! per connection answers one request and closes (`Connection: close`). Dropping the server stops
//! the accepting thread, shuts down open connections and joins every thread.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub(crate) struct Request {
    pub method: String,
    /// The path without the query, percent-decoded.
    pub path: String,
    /// The query's pairs, decoded, in order (a name may repeat: `scope`).
    pub query: Vec<(String, String)>,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn query_all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.query
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

pub(crate) enum Body {
    Bytes(Vec<u8>),
    /// `len` bytes of `file` from its current position.
    File {
        file: File,
        len: u64,
    },
    /// `announced` bytes announced, `sent` of them sent, then the connection is broken.
    Truncated {
        file: File,
        announced: u64,
        sent: u64,
    },
}

pub(crate) struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: Body::Bytes(body),
        }
    }
    pub fn json(status: u16, body: &serde_json::Value) -> Response {
        Response::new(
            status,
            "application/json",
            serde_json::to_vec(body).unwrap(),
        )
    }
    pub fn text(status: u16, body: &str) -> Response {
        Response::new(status, "text/plain", body.as_bytes().to_vec())
    }
    pub fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }
}

pub(crate) type Handler = dyn Fn(&Request) -> Response + Send + Sync;

type Connections = Arc<Mutex<Vec<(TcpStream, JoinHandle<()>)>>>;

pub(crate) struct HttpsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    connections: Connections,
}

/// A server config for the leaf certificate (sent with the CA: the chain a client verifies).
pub(crate) fn tls_config(chain: &[Vec<u8>], key_pkcs8: &[u8]) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            chain
                .iter()
                .map(|der| CertificateDer::from(der.clone()))
                .collect(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pkcs8.to_vec())),
        )
        .unwrap();
    Arc::new(config)
}

impl HttpsServer {
    /// Listens on a free port of 127.0.0.1 (the kernel picks it: no collisions).
    pub fn start(name: &str, tls: Arc<rustls::ServerConfig>, handler: Arc<Handler>) -> HttpsServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let connections: Connections = Arc::default();
        let accept = {
            let stop = stop.clone();
            let connections = connections.clone();
            std::thread::Builder::new()
                .name(format!("{name}-accept"))
                .spawn(move || accept_loop(listener, &stop, &connections, &tls, &handler))
                .unwrap()
        };
        HttpsServer {
            addr,
            stop,
            accept: Some(accept),
            connections,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

fn accept_loop(
    listener: TcpListener,
    stop: &AtomicBool,
    connections: &Connections,
    tls: &Arc<rustls::ServerConfig>,
    handler: &Arc<Handler>,
) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let Ok(clone) = stream.try_clone() else {
            continue;
        };
        let tls = tls.clone();
        let handler = handler.clone();
        let thread = std::thread::spawn(move || {
            // A client that stops talking does not keep the thread (or the server's drop) waiting.
            let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
            let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
            let end = stream.try_clone();
            let _ = serve_connection(stream, tls, &*handler);
            // The accepting thread holds a clone of the socket (for the drop): closing this one
            // alone would not end the connection, also when serving broke off (Body::Truncated).
            if let Ok(end) = end {
                let _ = end.shutdown(Shutdown::Both);
            }
        });
        let mut open = connections.lock().unwrap();
        open.retain(|(_, t)| !t.is_finished());
        open.push((clone, thread));
    }
}

fn serve_connection(
    stream: TcpStream,
    tls: Arc<rustls::ServerConfig>,
    handler: &Handler,
) -> io::Result<()> {
    let conn = rustls::ServerConnection::new(tls).map_err(io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, stream);
    let Some(request) = read_request(&mut tls)? else {
        return Ok(());
    };
    let response = handler(&request);
    write_response(&mut tls, &request, response)?;
    tls.conn.send_close_notify();
    tls.flush()?;
    Ok(())
}

/// Reads the request head (and discards a body, which none of the handlers reads).
fn read_request(stream: &mut impl Read) -> io::Result<Option<Request>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 64 * 1024 {
            return Err(io::Error::other("request head too long"));
        }
        if stream.read(&mut byte)? == 0 {
            return Ok(None);
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let target = first.next().unwrap_or("");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(n), percent_decode(v))
        })
        .collect();
    let length: u64 = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    io::copy(&mut stream.take(length), &mut io::sink())?;
    Ok(Some(Request {
        method,
        path: percent_decode(path),
        query,
        headers,
    }))
}

pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        _ => "Status",
    }
}

fn write_response(
    stream: &mut impl Write,
    request: &Request,
    response: Response,
) -> io::Result<()> {
    let length = match &response.body {
        Body::Bytes(bytes) => bytes.len() as u64,
        Body::File { len, .. } => *len,
        Body::Truncated { announced, .. } => *announced,
    };
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason(response.status)
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {length}\r\nConnection: close\r\n\r\n"
    ));
    stream.write_all(head.as_bytes())?;
    if request.method == "HEAD" {
        return Ok(());
    }
    match response.body {
        Body::Bytes(bytes) => stream.write_all(&bytes)?,
        Body::File { file, len } => {
            let copied = io::copy(&mut file.take(len), stream)?;
            if copied != len {
                return Err(io::Error::other("file shorter than announced"));
            }
        }
        Body::Truncated { file, sent, .. } => {
            io::copy(&mut file.take(sent), stream)?;
            stream.flush()?;
            return Err(io::Error::other("body broken off on purpose"));
        }
    }
    Ok(())
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread, which sees the flag and ends.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let open = std::mem::take(&mut *self.connections.lock().unwrap());
        for (stream, thread) in open {
            let _ = stream.shutdown(Shutdown::Both);
            let _ = thread.join();
        }
    }
}
