//! A loopback server that speaks ClickHouse's HTTP interface as far as mqtrace uses it and
//! runs every request on a libchdb session: the query is the POST body, `param_NAME` values
//! (escaped text) are set on the session, `database` is used, the result is written by
//! ClickHouse's own `ArrowStream` encoder (`INSERT INTO FUNCTION file(…)`), credentials come
//! in `X-ClickHouse-User` / `X-ClickHouse-Key`, and errors are ClickHouse's exception text
//! with an HTTP error status. Over TLS when given a rustls server configuration.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;

use mqtrace_analyzer::clickhouse::Chdb;

/// The one user the server knows.
pub const USER: &str = "mqtrace";
/// Its password.
pub const PASSWORD: &str = "s3cret;&=";

struct Request {
    target: String,
    headers: Vec<(String, String)>,
    body: String,
}

/// A connection: plain TCP, or TLS over it.
trait Conn: Read + Write {}
impl<T: Read + Write> Conn for T {}

fn read_request(stream: &mut dyn Conn) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let target = line.split_whitespace().nth(1)?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        target,
        headers,
        body: String::from_utf8(body).ok()?,
    })
}

/// `application/x-www-form-urlencoded` decoding.
fn decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A string literal for a `SET` statement.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn respond(stream: &mut dyn Conn, status: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

fn run(ch: &mut Chdb, request: &Request, out: &Path) -> Result<Vec<u8>, (String, String)> {
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if header("x-clickhouse-user") != Some(USER) || header("x-clickhouse-key") != Some(PASSWORD) {
        return Err((
            "401 Unauthorized".into(),
            format!(
                "Code: 516. DB::Exception: {}: Authentication failed: password is incorrect, or \
                 there is no user with such name. (AUTHENTICATION_FAILED)",
                header("x-clickhouse-user").unwrap_or("default")
            ),
        ));
    }
    let query = request.target.split_once('?').map_or("", |(_, q)| q);
    let failed = |e: mqtrace_analyzer::clickhouse::ClickHouseError| {
        ("500 Internal Server Error".to_owned(), e.to_string())
    };
    let mut format = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (decode(k), decode(v));
        if let Some(name) = k.strip_prefix("param_") {
            ch.execute(&format!("SET param_{name} = {}", literal(&v)))
                .map_err(failed)?;
        } else if k == "database" {
            ch.execute(&format!("USE {}", v)).map_err(failed)?;
        } else if k == "default_format" {
            format = Some(v);
        } else {
            ch.execute(&format!("SET {k} = {}", literal(&v)))
                .map_err(failed)?;
        }
    }
    let format = format.unwrap_or_else(|| "TabSeparated".into());
    ch.execute("SET engine_file_truncate_on_insert = 1")
        .map_err(failed)?;
    ch.execute(&format!(
        "INSERT INTO FUNCTION file({}, {}) {}",
        literal(&out.display().to_string()),
        literal(&format),
        request.body
    ))
    .map_err(failed)?;
    std::fs::read(out).map_err(|e| ("500 Internal Server Error".into(), e.to_string()))
}

/// Serves until a request for `/stop` (which comes in plain TCP even on a TLS server); hands
/// the session back.
pub fn serve(
    listener: TcpListener,
    mut ch: Chdb,
    out: &Path,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Chdb {
    for stream in listener.incoming() {
        let Ok(tcp) = stream else { continue };
        let mut peek = [0u8; 4];
        let plain = tcp
            .peek(&mut peek)
            .is_ok_and(|n| n == 4 && &peek == b"GET ");
        let mut conn: Box<dyn Conn> = match (&tls, plain) {
            (Some(config), false) => match rustls::ServerConnection::new(Arc::clone(config)) {
                Ok(c) => Box::new(rustls::StreamOwned::new(c, tcp)),
                Err(_) => continue,
            },
            _ => Box::new(tcp),
        };
        let Some(request) = read_request(&mut *conn) else {
            continue;
        };
        if request.target == "/stop" {
            respond(&mut *conn, "200 OK", b"");
            break;
        }
        match run(&mut ch, &request, out) {
            Ok(body) => respond(&mut *conn, "200 OK", &body),
            Err((status, text)) => respond(&mut *conn, &status, text.as_bytes()),
        }
        let _ = conn.flush();
    }
    ch
}

/// Stops the server on `port` and returns its session.
pub fn stop(port: u16, server: std::thread::JoinHandle<Chdb>) -> Chdb {
    if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
        let _ = s.write_all(b"GET /stop HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        let _ = s.read_to_end(&mut Vec::new());
    }
    server.join().expect("the server thread")
}

/// A self-signed certificate for `localhost` (its PEM, for the client to trust) and the TLS
/// configuration that serves it.
pub fn tls() -> (String, Arc<rustls::ServerConfig>) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let key = rustls::pki_types::PrivateKeyDer::try_from(signing_key.serialize_der())
        .expect("private key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .expect("server configuration");
    (cert.pem(), Arc::new(config))
}
