//! A ClickHouse server over its HTTP interface: the query as the request's body, every
//! parameter as `param_NAME` in the URL (never in the SQL), results as `ArrowStream`; over
//! TLS (`secure=true`, or port 8443) with rustls, trusting the system's roots (`SSL_CERT_FILE`
//! / `SSL_CERT_DIR` name others).

use std::io::Cursor;

use arrow_array::RecordBatch;

use super::sql::param_text;
use super::{ClickHouseError, Engine};

/// An error body is cut here: a server's exception text, not a page of it.
const ERROR_TEXT_BYTES: usize = 2_000;

/// A server's HTTP endpoint and the credentials to use.
pub struct Http {
    client: reqwest::blocking::Client,
    /// `http://HOST:PORT/` or `https://HOST:PORT/`.
    endpoint: String,
    database: String,
    user: Option<String>,
    password: Option<String>,
}

impl Http {
    /// A client of `host:port` (over TLS when `secure`), with `database` as the session's
    /// default.
    pub fn new(
        host: &str,
        port: u16,
        secure: bool,
        database: &str,
        user: Option<String>,
        password: Option<String>,
    ) -> Result<Http, ClickHouseError> {
        let client = reqwest::blocking::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            // An analysis of billions of spans takes as long as it takes.
            .timeout(None)
            // The system's roots (rustls-native-certs: SSL_CERT_FILE / SSL_CERT_DIR first),
            // read only when they are needed.
            .tls_built_in_native_certs(secure)
            .build()
            .map_err(|e| ClickHouseError::Source(format!("an HTTP client: {}", causes(&e))))?;
        let host = if host.contains(':') {
            format!("[{host}]") // IPv6
        } else {
            host.to_owned()
        };
        Ok(Http {
            client,
            endpoint: format!("{}://{host}:{port}/", if secure { "https" } else { "http" }),
            database: database.to_owned(),
            user,
            password,
        })
    }
}

/// An error and its causes, as one line (reqwest's own text says only that a request failed).
fn causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

impl Engine for Http {
    fn query(
        &mut self,
        sql: &str,
        params: &[(&'static str, String)],
    ) -> Result<Vec<RecordBatch>, ClickHouseError> {
        let mut query: Vec<(String, String)> = vec![
            ("database".into(), self.database.clone()),
            ("default_format".into(), "ArrowStream".into()),
            // Strings as Arrow text, not binary; no dictionaries: what the reader expects.
            ("output_format_arrow_string_as_string".into(), "1".into()),
            (
                "output_format_arrow_low_cardinality_as_dictionary".into(),
                "0".into(),
            ),
        ];
        query.extend(
            params
                .iter()
                .map(|(k, v)| (format!("param_{k}"), param_text(k, v))),
        );
        let mut url = reqwest::Url::parse(&self.endpoint)
            .map_err(|e| ClickHouseError::Source(format!("{}: {e}", self.endpoint)))?;
        url.query_pairs_mut().extend_pairs(&query);
        let mut request = self.client.post(url).body(sql.to_owned());
        if let Some(user) = &self.user {
            request = request.header("X-ClickHouse-User", user);
        }
        if let Some(password) = &self.password {
            request = request.header("X-ClickHouse-Key", password);
        }
        let response = request.send().map_err(|e| {
            // The URL holds every parameter: the endpoint says enough.
            let e = e.without_url();
            if e.is_connect() || e.is_timeout() {
                ClickHouseError::Source(format!(
                    "cannot reach ClickHouse at {} ({}): is the server running, is this its HTTP \
                     port (8123, or 8443 with secure=true), and is its certificate trusted \
                     (SSL_CERT_FILE names a CA the system does not know)?",
                    self.endpoint,
                    causes(&e)
                ))
            } else {
                ClickHouseError::Query(format!("{}: {}", self.endpoint, causes(&e)))
            }
        })?;
        let status = response.status();
        let body = response
            .bytes()
            .map_err(|e| ClickHouseError::Query(format!("{}: {e}", self.endpoint)))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(ERROR_TEXT_BYTES)])
                .trim()
                .to_owned();
            return Err(
                if text.contains("UNKNOWN_FORMAT") || text.contains("Unknown format") {
                    ClickHouseError::Source(format!(
                        "{}: the server does not speak ArrowStream, so it is too old for mqtrace \
                     (ClickHouse 21.4 or later, with the Map type): {text}",
                        self.endpoint
                    ))
                } else if status == reqwest::StatusCode::UNAUTHORIZED
                    || status == reqwest::StatusCode::FORBIDDEN
                    || text.contains("AUTHENTICATION_FAILED")
                {
                    ClickHouseError::Source(format!(
                        "{}: the server refused these credentials (give USER:PASSWORD@ in the \
                     address, or CLICKHOUSE_USER / CLICKHOUSE_PASSWORD): {text}",
                        self.endpoint
                    ))
                } else {
                    ClickHouseError::Query(format!("HTTP {status}: {text}"))
                },
            );
        }
        if body.is_empty() {
            return Ok(Vec::new());
        }
        let reader = arrow_ipc::reader::StreamReader::try_new(Cursor::new(body), None)
            .map_err(|e| ClickHouseError::Schema(format!("the ArrowStream answer: {e}")))?;
        reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ClickHouseError::Schema(format!("the ArrowStream answer: {e}")))
    }
}
