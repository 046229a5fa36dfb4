//! `git http-backend` behind a tiny HTTP/1.1 server written on std::net (one thread per
//! connection, one request per connection, `Connection: close`), with optional HTTP basic or
//! bearer authentication. Included by [`crate::git_server`].

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::ops::Deref;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{BareRepo, git_exec_path, isolate_git_env, run};

/// What the HTTP server demands from clients.
#[derive(Clone, PartialEq, Eq)]
pub enum HttpAuth {
    /// Anonymous access (fetch and push).
    None,
    /// `Authorization: Basic base64(username:password)`.
    Basic {
        /// Expected user name.
        username: String,
        /// Expected password.
        password: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// Expected token.
        token: String,
    },
}

impl std::fmt::Debug for HttpAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpAuth::None => f.write_str("None"),
            HttpAuth::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            HttpAuth::Bearer { .. } => f.write_str("Bearer(<redacted>)"),
        }
    }
}

/// One request the server answered (for assertions and debugging).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequestLog {
    /// `GET` or `POST`.
    pub method: String,
    /// Path and query, e.g. `/repo.git/info/refs?service=git-upload-pack`.
    pub target: String,
    /// Status code sent back.
    pub status: u16,
}

struct Shared {
    repo_base: PathBuf,
    auth: HttpAuth,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: AtomicBool,
    active: AtomicUsize,
    log: Mutex<Vec<HttpRequestLog>>,
}

/// `git http-backend` served over `http://127.0.0.1:PORT/repo.git` by a small Rust HTTP
/// server, with fetch and push enabled. Stopped on drop.
pub struct GitHttpServer {
    repo: BareRepo,
    port: u16,
    ca_pem: Option<Vec<u8>>,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for GitHttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHttpServer")
            .field("url", &self.url())
            .field("auth", &self.shared.auth)
            .finish()
    }
}

impl GitHttpServer {
    /// Anonymous server (no authentication).
    pub fn start() -> Self {
        Self::start_with(HttpAuth::None)
    }

    /// Server that requires HTTP basic authentication with these credentials.
    pub fn with_basic_auth(username: &str, password: &str) -> Self {
        Self::start_with(HttpAuth::Basic {
            username: username.to_string(),
            password: password.to_string(),
        })
    }

    /// Server that requires `Authorization: Bearer <token>`.
    pub fn with_bearer_token(token: &str) -> Self {
        Self::start_with(HttpAuth::Bearer {
            token: token.to_string(),
        })
    }

    /// Starts a server with the given authentication on a free loopback port.
    pub fn start_with(auth: HttpAuth) -> Self {
        Self::start_inner(auth, false)
    }

    /// HTTPS: a server certificate for `127.0.0.1` (IP SAN) and `localhost`, issued by a
    /// private CA generated with the `openssl` CLI (see [`GitHttpServer::ca_cert_pem`]).
    /// URL `https://127.0.0.1:PORT/repo.git`.
    pub fn start_tls(auth: HttpAuth) -> Self {
        Self::start_inner(auth, true)
    }

    fn start_inner(auth: HttpAuth, tls: bool) -> Self {
        let repo = BareRepo::new();
        let (tls, ca_pem) = if tls {
            let (config, ca) = tls_config(&repo.scratch_dir().join("tls"));
            (Some(config), Some(ca))
        } else {
            (None, None)
        };
        // http-backend only allows push for authenticated users unless this is set.
        run(repo.git().args(["config", "http.receivepack", "true"]));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback port");
        let port = listener.local_addr().expect("local addr").port();
        let shared = Arc::new(Shared {
            repo_base: repo.base_dir(),
            auth,
            tls,
            stop: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
        });
        let accept_shared = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name(format!("git-http-{port}"))
            .spawn(move || accept_loop(listener, accept_shared))
            .expect("spawn accept thread");
        Self {
            repo,
            port,
            ca_pem,
            shared,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT/repo.git` (`https://` for [`GitHttpServer::start_tls`]).
    pub fn url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}/{}", self.port, BareRepo::NAME)
    }

    /// PEM of the private CA that issued the server certificate (TLS servers only).
    pub fn ca_cert_pem(&self) -> Option<&[u8]> {
        self.ca_pem.as_deref()
    }

    /// The loopback port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<HttpRequestLog> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Deref for GitHttpServer {
    type Target = BareRepo;
    fn deref(&self) -> &BareRepo {
        &self.repo
    }
}

impl Drop for GitHttpServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        // Give in-flight requests a moment to finish before the repository is deleted.
        for _ in 0..100 {
            if self.shared.active.load(Ordering::SeqCst) == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let shared = Arc::clone(&shared);
        shared.active.fetch_add(1, Ordering::SeqCst);
        std::thread::spawn(move || {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
            let result = match &shared.tls {
                None => handle(stream, &shared),
                Some(config) => match rustls::ServerConnection::new(Arc::clone(config)) {
                    Ok(conn) => handle(rustls::StreamOwned::new(conn, stream), &shared),
                    Err(e) => Err(std::io::Error::other(e)),
                },
            };
            if let Err(e) = result {
                // TLS clients that reject our certificate close the connection: not an error.
                if shared.tls.is_none() {
                    eprintln!("git-http test server: {e}");
                }
            }
            shared.active.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read_request_head(reader: &mut impl BufRead) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(std::io::Error::other(format!("bad request line {line:?}")));
    };
    let mut req = Request {
        method: method.to_string(),
        target: target.to_string(),
        headers: Vec::new(),
    };
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 {
            break;
        }
        let h = h.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            req.headers
                .push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Ok(Some(req))
}

fn read_body(reader: &mut impl BufRead, req: &Request) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if req
        .header("Transfer-Encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line)?;
            let size_hex = size_line.trim().split(';').next().unwrap_or("0");
            let size = usize::from_str_radix(size_hex, 16)
                .map_err(|e| std::io::Error::other(format!("bad chunk size {size_line:?}: {e}")))?;
            if size == 0 {
                // Trailers until an empty line.
                loop {
                    let mut t = String::new();
                    if reader.read_line(&mut t)? == 0 || t.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..])?;
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf)?;
        }
    } else if let Some(len) = req.header("Content-Length") {
        let len: usize = len
            .parse()
            .map_err(|e| std::io::Error::other(format!("bad Content-Length: {e}")))?;
        body.resize(len, 0);
        reader.read_exact(&mut body)?;
    }
    Ok(body)
}

fn authorized(auth: &HttpAuth, header: Option<&str>) -> Option<String> {
    match auth {
        HttpAuth::None => Some("anonymous".to_string()),
        HttpAuth::Basic { username, password } => {
            let encoded = header?.strip_prefix("Basic ")?.trim();
            let decoded = String::from_utf8(base64_decode(encoded)?).ok()?;
            let (u, p) = decoded.split_once(':')?;
            (u == username && p == password).then(|| u.to_string())
        }
        HttpAuth::Bearer { token } => {
            let given = header?.strip_prefix("Bearer ")?.trim();
            (given == token).then(|| "bearer".to_string())
        }
    }
}

/// A stream we can close after the response (plain TCP or TLS).
trait Conn: Read + Write {
    fn close(&mut self);
}

impl Conn for TcpStream {
    fn close(&mut self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

impl Conn for rustls::StreamOwned<rustls::ServerConnection, TcpStream> {
    fn close(&mut self) {
        self.conn.send_close_notify();
        let _ = self.flush();
        let _ = self.sock.shutdown(Shutdown::Write);
    }
}

fn handle(stream: impl Conn, shared: &Shared) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let Some(req) = read_request_head(&mut reader)? else {
        return Ok(());
    };
    let log = |status: u16| {
        shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(HttpRequestLog {
                method: req.method.clone(),
                target: req.target.clone(),
                status,
            });
    };
    let Some(user) = authorized(&shared.auth, req.header("Authorization")) else {
        log(401);
        let challenge = match shared.auth {
            HttpAuth::Bearer { .. } => "Bearer realm=\"git\"",
            _ => "Basic realm=\"git\"",
        };
        let body = b"authentication required\n";
        let writer = reader.get_mut();
        write!(
            writer,
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {challenge}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )?;
        writer.write_all(body)?;
        writer.flush()?;
        writer.close();
        return Ok(());
    };
    if req
        .header("Expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        reader
            .get_mut()
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        reader.get_mut().flush()?;
    }
    let body = read_body(&mut reader, &req)?;
    let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));

    let mut cmd = Command::new(git_exec_path().join("git-http-backend"));
    isolate_git_env(&mut cmd)
        .env("GIT_PROJECT_ROOT", &shared.repo_base)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("REQUEST_METHOD", &req.method)
        .env("REMOTE_USER", &user)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("CONTENT_LENGTH", body.len().to_string())
        .env(
            "CONTENT_TYPE",
            req.header("Content-Type").unwrap_or_default(),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(enc) = req.header("Content-Encoding") {
        cmd.env("HTTP_CONTENT_ENCODING", enc);
    }
    if let Some(proto) = req.header("Git-Protocol") {
        cmd.env("GIT_PROTOCOL", proto);
    }
    let mut child = cmd.spawn()?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let out = child.wait_with_output()?;
    let _ = feeder.join();

    // Split the CGI header block from the body.
    let raw = out.stdout;
    let (head, cgi_body) = match find_subslice(&raw, b"\r\n\r\n") {
        Some(i) => (&raw[..i], &raw[i + 4..]),
        None => match find_subslice(&raw, b"\n\n") {
            Some(i) => (&raw[..i], &raw[i + 2..]),
            None => (&raw[..0], &raw[..]),
        },
    };
    let mut status = "200 OK".to_string();
    let mut headers = String::new();
    for line in String::from_utf8_lossy(head).lines() {
        let line = line.trim_end_matches('\r');
        if let Some(s) = line.strip_prefix("Status:") {
            status = s.trim().to_string();
        } else if !line.is_empty() {
            headers.push_str(line);
            headers.push_str("\r\n");
        }
    }
    if !out.status.success() && head.is_empty() {
        status = "500 Internal Server Error".to_string();
        eprintln!(
            "git-http-backend failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    log(status
        .split_whitespace()
        .next()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0));
    let writer = reader.get_mut();
    write!(
        writer,
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        cgi_body.len()
    )?;
    writer.write_all(cgi_body)?;
    writer.flush()?;
    writer.close();
    Ok(())
}

/// Generates a CA and a server certificate for 127.0.0.1/localhost with the `openssl` CLI
/// in `dir`; returns the rustls config and the CA's PEM.
fn tls_config(dir: &std::path::Path) -> (Arc<rustls::ServerConfig>, Vec<u8>) {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    std::fs::create_dir_all(dir).expect("create tls dir");
    let p = |name: &str| dir.join(name);
    let openssl = |args: &[&str]| {
        let mut c = Command::new("openssl");
        c.args(args).current_dir(dir).stdin(Stdio::null());
        run(&mut c);
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=gitcontroller test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        p("server.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("write server.ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(p("server.crt"))
        .expect("read server.crt")
        .collect::<Result<_, _>>()
        .expect("parse server.crt");
    let key = PrivateKeyDer::from_pem_file(p("server.key")).expect("read server.key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server certificate");
    let ca = std::fs::read(p("ca.crt")).expect("read ca.crt");
    (Arc::new(config), ca)
}

fn find_subslice(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Standard base64 (with or without padding) → bytes; `None` if malformed.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::base64_decode;

    #[test]
    fn base64() {
        assert_eq!(base64_decode("dXNlcjpwYXNz").unwrap(), b"user:pass");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert!(base64_decode("a$b").is_none());
    }
}
