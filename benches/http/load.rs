//! The load generator: a minimal HTTP/1.1 keep-alive client over tokio sockets and a closed
//! loop of `c` connections, each with one request in flight. A connection's scenario state
//! (its refresh token, say) lives in its [`Flow`]; latencies of the measured window are kept
//! whole (microseconds), so percentiles are exact.
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

use super::server::rss_kib;

/// A request that gets no answer in this time counts as an error (and its connection is
/// replaced), so a stuck server cannot hang the benchmark.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One connection's side of a scenario: what to send next, and what an answer changes.
pub trait Flow: Send {
    /// The bytes of the next request.
    fn request(&self) -> &[u8];
    /// Whether the request is a `HEAD` (its answer has no body whatever the headers say).
    fn is_head(&self) -> bool {
        false
    }
    /// Takes a 2xx answer in; `false` means it is not the answer the scenario expects.
    fn answer(&mut self, status: u16, body: &[u8]) -> bool;
}

/// A request that never changes, and the answer it must get.
pub struct Fixed {
    pub request: Vec<u8>,
    pub head: bool,
    pub expect: u16,
    /// Bytes the answer's body must contain (e.g. `"active":true`).
    pub must_contain: Option<&'static [u8]>,
}

impl Fixed {
    pub fn new(request: Vec<u8>, expect: u16) -> Fixed {
        Fixed {
            request,
            head: false,
            expect,
            must_contain: None,
        }
    }
}

impl Flow for Fixed {
    fn request(&self) -> &[u8] {
        &self.request
    }

    fn is_head(&self) -> bool {
        self.head
    }

    fn answer(&mut self, status: u16, body: &[u8]) -> bool {
        status == self.expect
            && self
                .must_contain
                .is_none_or(|needle| find(body, needle).is_some())
    }
}

/// An OAuth2 refresh with rotation: each answer's `refresh_token` is the next request's.
pub struct Rotating {
    host: String,
    authorization: String,
    request: Vec<u8>,
}

impl Rotating {
    pub fn new(host: &str, authorization: &str, refresh_token: &str) -> Rotating {
        let mut flow = Rotating {
            host: host.to_owned(),
            authorization: authorization.to_owned(),
            request: Vec::new(),
        };
        flow.set(refresh_token);
        flow
    }

    fn set(&mut self, refresh_token: &str) {
        self.request = post(
            "/oauth2/token",
            &self.host,
            Some(&self.authorization),
            "application/x-www-form-urlencoded",
            &format!(
                "grant_type=refresh_token&refresh_token={}",
                encode(refresh_token)
            ),
        );
    }
}

impl Flow for Rotating {
    fn request(&self) -> &[u8] {
        &self.request
    }

    fn answer(&mut self, status: u16, body: &[u8]) -> bool {
        #[derive(serde::Deserialize)]
        struct Answer<'a> {
            #[serde(borrow)]
            refresh_token: Option<&'a str>,
        }
        match serde_json::from_slice::<Answer<'_>>(body) {
            Ok(Answer {
                refresh_token: Some(next),
            }) if status == 200 => {
                self.set(next);
                true
            }
            _ => false,
        }
    }
}

/// What one closed-loop run measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Latencies of the successful requests started in the measured window, sorted, µs.
    pub latencies_us: Vec<u32>,
    /// Non-2xx answers, unexpected answers, connection errors and timeouts in the window.
    pub errors: u64,
    /// The same, by kind (`HTTP 503`, `unexpected 200`, `I/O …`, `timeout`).
    pub error_kinds: BTreeMap<String, u64>,
    /// The measured window.
    pub window: Duration,
    /// The largest `VmRSS` of the server seen during the window (KiB).
    pub peak_rss_kib: u64,
}

impl Outcome {
    pub fn per_second(&self) -> f64 {
        let secs = self.window.as_secs_f64();
        if secs > 0.0 {
            self.latencies_us.len() as f64 / secs
        } else {
            0.0
        }
    }

    /// The `q`-quantile of the latencies, in milliseconds (nearest rank).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * self.latencies_us.len() as f64).ceil() as usize).max(1);
        let index = rank.min(self.latencies_us.len()) - 1;
        f64::from(self.latencies_us[index]) / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.latencies_us
            .last()
            .map_or(f64::NAN, |v| f64::from(*v) / 1000.0)
    }
}

/// How long a run warms up and then measures.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub warmup: Duration,
    pub measure: Duration,
}

/// Runs one closed loop: every flow on its own connection, warm-up first (not recorded), then
/// the measured window; samples the server's RSS meanwhile.
pub fn run(
    rt: &Runtime,
    addr: SocketAddr,
    flows: Vec<Box<dyn Flow>>,
    plan: Plan,
    server_pid: u32,
) -> Outcome {
    rt.block_on(async move {
        let start = Instant::now();
        let measure_from = start + plan.warmup;
        let end = measure_from + plan.measure;
        let done = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let sampler = {
            let (done, peak) = (Arc::clone(&done), Arc::clone(&peak));
            tokio::spawn(async move {
                tokio::time::sleep_until(measure_from.into()).await;
                while !done.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_kib(server_pid).unwrap_or(0), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        let tasks: Vec<_> = flows
            .into_iter()
            .map(|flow| tokio::spawn(connection_loop(addr, flow, measure_from, end)))
            .collect();
        let mut outcome = Outcome {
            window: plan.measure,
            ..Outcome::default()
        };
        for task in tasks {
            let (latencies, errors) = task.await.expect("a connection task panicked");
            outcome.latencies_us.extend(latencies);
            for (kind, n) in errors {
                outcome.errors += n;
                *outcome.error_kinds.entry(kind).or_insert(0) += n;
            }
        }
        done.store(true, Ordering::Relaxed);
        let _ = sampler.await;
        outcome.latencies_us.sort_unstable();
        outcome.peak_rss_kib = peak.load(Ordering::Relaxed);
        outcome
    })
}

/// One connection: requests back to back until `end`; records those started from
/// `measure_from` on.
async fn connection_loop(
    addr: SocketAddr,
    mut flow: Box<dyn Flow>,
    measure_from: Instant,
    end: Instant,
) -> (Vec<u32>, BTreeMap<String, u64>) {
    let mut conn = Connection::new(addr);
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut errors = BTreeMap::new();
    loop {
        let started = Instant::now();
        if started >= end {
            break;
        }
        let head = flow.is_head();
        let result = tokio::time::timeout(REQUEST_TIMEOUT, conn.send(flow.request(), head)).await;
        let elapsed = started.elapsed();
        let failure = match result {
            Ok(Ok((status, body))) if (200..300).contains(&status) => {
                (!flow.answer(status, &conn.buf[body])).then(|| format!("unexpected {status}"))
            }
            Ok(Ok((status, _))) => Some(format!("HTTP {status}")),
            Ok(Err(e)) => {
                conn.reset();
                // Do not spin on a refused connection.
                tokio::time::sleep(Duration::from_millis(10)).await;
                Some(format!("I/O {:?}", e.kind()))
            }
            Err(_) => {
                conn.reset();
                Some("timeout".to_owned())
            }
        };
        if started >= measure_from {
            match failure {
                None => latencies.push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX)),
                Some(kind) => *errors.entry(kind).or_insert(0) += 1,
            }
        }
    }
    (latencies, errors)
}

/// Sends one request on a fresh connection (set-up steps); returns the status and body.
pub fn once(rt: &Runtime, addr: SocketAddr, request: &[u8], head: bool) -> (u16, Vec<u8>) {
    rt.block_on(async {
        let mut conn = Connection::new(addr);
        let (status, body) = tokio::time::timeout(REQUEST_TIMEOUT, conn.send(request, head))
            .await
            .expect("set-up request timed out")
            .expect("set-up request failed");
        (status, conn.buf[body].to_vec())
    })
}

/// A keep-alive HTTP/1.1 connection, opened on first use and again after an error or
/// `Connection: close`.
struct Connection {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    /// Bytes read; after [`Connection::send`], the current response starts at 0.
    buf: Vec<u8>,
}

impl Connection {
    fn new(addr: SocketAddr) -> Connection {
        Connection {
            addr,
            stream: None,
            buf: Vec::with_capacity(8192),
        }
    }

    fn reset(&mut self) {
        self.stream = None;
        self.buf.clear();
    }

    /// Writes `request` and reads one response; returns its status and where its body is in
    /// `self.buf`.
    async fn send(
        &mut self,
        request: &[u8],
        head: bool,
    ) -> io::Result<(u16, std::ops::Range<usize>)> {
        let mut stream = match self.stream.take() {
            Some(stream) => stream,
            None => {
                let stream = TcpStream::connect(self.addr).await?;
                stream.set_nodelay(true)?;
                stream
            }
        };
        self.buf.clear();
        stream.write_all(request).await?;
        let header_end = loop {
            if let Some(at) = find(&self.buf, b"\r\n\r\n") {
                break at + 4;
            }
            read_more(&mut stream, &mut self.buf).await?;
        };
        let head_text = std::str::from_utf8(&self.buf[..header_end])
            .map_err(|_| invalid("response head is not UTF-8"))?;
        let mut lines = head_text.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid("bad status line"))?;
        let mut length = None;
        let mut chunked = false;
        let mut close = false;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse::<usize>().map_err(|_| invalid("bad length"))?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        let body = if head || status == 204 || status == 304 || (100..200).contains(&status) {
            header_end..header_end
        } else if chunked {
            loop {
                if let Some(decoded) = dechunk(&self.buf[header_end..]) {
                    self.buf.truncate(header_end);
                    self.buf.extend_from_slice(&decoded);
                    break header_end..self.buf.len();
                }
                read_more(&mut stream, &mut self.buf).await?;
            }
        } else if let Some(length) = length {
            while self.buf.len() < header_end + length {
                read_more(&mut stream, &mut self.buf).await?;
            }
            header_end..header_end + length
        } else {
            // A body delimited by the end of the connection.
            loop {
                let mut chunk = [0u8; 4096];
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                self.buf.extend_from_slice(&chunk[..n]);
            }
            close = true;
            header_end..self.buf.len()
        };
        if !close {
            self.stream = Some(stream);
        }
        Ok((status, body))
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    let mut chunk = [0u8; 8192];
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed mid-response",
        ));
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

/// The body of a complete chunked encoding, or `None` if more bytes are needed.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            // Trailers, then the final CRLF.
            return find(data, b"\r\n").map(|_| body);
        }
        if data.len() < size + 2 {
            return None;
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// `Authorization: Basic` for an id and a secret (RFC 6749 §2.3.1: both form-urlencoded).
pub fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", encode(id), encode(secret)))
    )
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub fn encode(value: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const FORM: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    utf8_percent_encode(value, FORM).to_string()
}

/// The bytes of a `POST` with a body.
pub fn post(
    path: &str,
    host: &str,
    authorization: Option<&str>,
    content_type: &str,
    body: &str,
) -> Vec<u8> {
    let authorization = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\n{authorization}Content-Type: {content_type}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The bytes of a request without a body (`GET`, `HEAD`).
pub fn bodiless(method: &str, path: &str, host: &str) -> Vec<u8> {
    format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
}
