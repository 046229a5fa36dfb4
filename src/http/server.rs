//! An HTTP/1 server that stays within its limits under hostile load.
//!
//! [`serve`] accepts connections on a listener and serves an [`axum::Router`] on each, with:
//!
//! - **a cap on open connections** ([`Limits::max_connections`]). When every slot is taken, the
//!   connection that has been open longest is closed to make room: an attacker holding idle
//!   connections cannot keep a legitimate request out, and the process never runs out of file
//!   descriptors (while evicted connections are still closing, accepting pauses: at most
//!   `max_connections` + 128 sockets are open).
//! - **one request per connection** (no keep-alive), read within deadlines: the request head
//!   within [`Limits::header_timeout`], and the whole exchange within
//!   [`Limits::header_timeout`] + [`Limits::body_timeout`]. Handlers that read a body bound
//!   their own reads with [`Limits::body_timeout`] (a slow body is answered with 408).
//! - optionally, **per-source limits** ([`SourceLimiter`]): a source (an IPv4 address, or an
//!   IPv6 /64) holds at most `burst` connections at once (more are closed as soon as they are
//!   accepted, before anything is read), and sends at most `requests_per_second` requests on
//!   average with bursts of `burst` (a token bucket); a request over the limit gets 429 before
//!   the router sees it.
//!
//! Every connection is a task owning one socket and a small read buffer; memory is bounded by
//! `max_connections` × (buffer + what a handler keeps). Handlers that read bodies stream them.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Notify, oneshot};
use tower_service::Service;

/// Limits of one server (one listener).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Connections open at once; beyond it the oldest connection is closed.
    pub max_connections: usize,
    /// Time to receive a request's head (request line and headers) after connecting.
    pub header_timeout: Duration,
    /// Time to receive a request's body once the head arrived.
    pub body_timeout: Duration,
    /// Largest request head, in bytes (hyper's read buffer; at least 8 KiB).
    pub max_header_bytes: usize,
    /// Per-source connection and request limits; none when `None`.
    pub per_source: Option<Arc<SourceLimiter>>,
}

impl Limits {
    /// Limits of the operational endpoints (`/metrics`, `/healthz`, `/readyz`): their callers
    /// are the kubelet and Prometheus, a few connections at a time, so a small cap is enough
    /// and keeps them answering while another listener of the process is flooded.
    pub fn operational() -> Self {
        Self {
            max_connections: 128,
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(5),
            max_header_bytes: 16 * 1024,
            per_source: None,
        }
    }

    /// The longest a connection may stay open.
    pub fn connection_deadline(&self) -> Duration {
        self.header_timeout + self.body_timeout
    }
}

/// Connection counters of one server, registered in the process's Prometheus registry.
#[derive(Clone, Debug)]
pub struct ServerMetrics {
    open: IntGauge,
    /// One series per [`EarlyClose`], in [`EarlyClose::ALL`] order (looked up once).
    closed_early: [IntCounter; 3],
    responses: IntCounterVec,
}

/// Why a connection was closed before its request was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EarlyClose {
    /// Its source already held as many connections as its burst allows.
    SourceLimit,
    /// Every slot was taken and it was the oldest connection.
    Evicted,
    /// Its request head or body did not arrive in time.
    Timeout,
}

impl EarlyClose {
    /// Every reason.
    pub const ALL: [Self; 3] = [Self::SourceLimit, Self::Evicted, Self::Timeout];

    /// The `reason` label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::SourceLimit => "source_limit",
            Self::Evicted => "evicted",
            Self::Timeout => "timeout",
        }
    }
}

impl ServerMetrics {
    /// Registers `<prefix>_connections` (gauge), `<prefix>_connections_closed_early_total`
    /// (`reason`) and `<prefix>_responses_total` (`code`) in `registry`.
    pub fn register(registry: &Registry, prefix: &str, what: &str) -> prometheus::Result<Self> {
        let open = IntGauge::new(
            format!("{prefix}_connections"),
            format!("Open connections to the {what}."),
        )?;
        let closed_early = IntCounterVec::new(
            Opts::new(
                format!("{prefix}_connections_closed_early_total"),
                format!(
                    "Connections to the {what} closed before a response: source_limit, evicted (all slots taken, oldest closed), timeout."
                ),
            ),
            &["reason"],
        )?;
        let responses = IntCounterVec::new(
            Opts::new(
                format!("{prefix}_responses_total"),
                format!("Responses of the {what}, by HTTP status code."),
            ),
            &["code"],
        )?;
        registry.register(Box::new(open.clone()))?;
        registry.register(Box::new(closed_early.clone()))?;
        registry.register(Box::new(responses.clone()))?;
        Ok(Self {
            open,
            closed_early: EarlyClose::ALL.map(|why| closed_early.with_label_values(&[why.label()])),
            responses,
        })
    }

    fn closed_early(&self, why: EarlyClose) {
        self.closed_early[why as usize].inc();
    }
}

/// Binds `addr` with a listen backlog large enough for bursts of connections (the kernel
/// caps it at `net.core.somaxconn`).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes; then stops
/// accepting and waits (at most one connection deadline) for the connections in flight.
///
/// Handlers see the peer's address as an `axum::extract::ConnectInfo<SocketAddr>` extension.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    metrics: Option<ServerMetrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Slots::default());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .keep_alive(false)
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(64);
    tokio::pin!(shutdown);
    let max_connections = limits.max_connections.max(1);
    loop {
        // While connections arrive faster than evicted ones close, stop accepting (they wait
        // in the kernel's backlog, holding no descriptor of ours) until the closing ones are
        // gone; in batches, so accepting and closing do not alternate one by one.
        if slots.live() >= max_connections + CLOSING_SLACK {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = slots.at_most(max_connections) => {}
            }
        }
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // EMFILE/ENFILE or a connection reset before accept: wait a little rather
                    // than spin; the connection cap keeps this rare.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let source = match &limits.per_source {
            Some(limiter) => match limiter.open_connection(peer.ip()) {
                Some(source) => Some(source),
                None => {
                    if let Some(m) = &metrics {
                        m.closed_early(EarlyClose::SourceLimit);
                    }
                    continue; // dropping `stream` closes it, nothing read
                }
            },
            None => None,
        };
        let (slot, evicted) = slots.take(limits.max_connections);
        if let Some(m) = &metrics {
            for _ in 0..evicted {
                m.closed_early(EarlyClose::Evicted);
            }
        }
        let service = ConnectionService {
            router: router.clone(),
            peer,
            limiter: limits.per_source.clone(),
            metrics: metrics.clone(),
        };
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let deadline = limits.connection_deadline();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _source = source;
            let Slot { evicted, _guard } = slot;
            if let Some(m) = &metrics {
                m.open.inc();
            }
            let timed_out = tokio::select! {
                result = connection => matches!(result, Err(e) if e.is_timeout()),
                _ = evicted => false,
                _ = tokio::time::sleep(deadline) => true,
            };
            if let Some(m) = &metrics {
                m.open.dec();
                if timed_out {
                    m.closed_early(EarlyClose::Timeout);
                }
            }
        });
    }
    drop(listener);
    let drained = slots.at_most(0);
    let _ = tokio::time::timeout(limits.connection_deadline(), drained).await;
    Ok(())
}

/// The hyper service of one connection: per-source request admission, then the router.
#[derive(Clone)]
struct ConnectionService {
    router: Router,
    peer: SocketAddr,
    limiter: Option<Arc<SourceLimiter>>,
    metrics: Option<ServerMetrics>,
}

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<Response<Body>, std::convert::Infallible>> + Send>,
    >;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        let metrics = self.metrics.clone();
        let count = move |response: Response<Body>| {
            if let Some(m) = &metrics {
                m.responses
                    .with_label_values(&[response.status().as_str()])
                    .inc();
            }
            Ok(response)
        };
        if let Some(limiter) = &self.limiter
            && !limiter.take_request(self.peer.ip())
        {
            let response = Response::builder()
                .status(StatusCode::TOO_MANY_REQUESTS)
                .header(header::RETRY_AFTER, "1")
                .body(Body::empty())
                .expect("a static response");
            return Box::pin(std::future::ready(count(response)));
        }
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(self.peer));
        let mut router = self.router.clone();
        Box::pin(async move {
            // Router is always ready and never fails (errors are responses).
            let response = router.call(request).await?;
            count(response)
        })
    }
}

/// The open connections, oldest first, each with the sender that closes it.
#[derive(Default)]
struct Slots {
    open: Mutex<SlotTable>,
    closed: Notify,
}

#[derive(Default)]
struct SlotTable {
    next_id: u64,
    /// Connections not told to close yet, oldest first.
    by_age: BTreeMap<u64, oneshot::Sender<()>>,
    /// Connections whose task still runs (and so holds a socket), evicted ones included.
    live: usize,
}

/// Evicted connections that may still hold their socket before accepting pauses: bounds the
/// descriptors in use to `max_connections` + this while connections arrive faster than
/// evicted ones close.
const CLOSING_SLACK: usize = 128;

/// A connection's place in [`Slots`]: `evicted` resolves when it must close; dropping
/// `_guard` frees the place.
struct Slot {
    evicted: oneshot::Receiver<()>,
    _guard: SlotGuard,
}

struct SlotGuard {
    slots: Arc<Slots>,
    id: u64,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut table = self.slots.open.lock().expect("slots lock");
        table.by_age.remove(&self.id);
        table.live -= 1;
        drop(table);
        self.slots.closed.notify_waiters();
    }
}

impl Slots {
    /// A place for a new connection, closing the oldest ones while more than `max - 1` are
    /// open. Returns the place and how many connections were evicted.
    fn take(self: &Arc<Self>, max: usize) -> (Slot, usize) {
        let mut table = self.open.lock().expect("slots lock");
        let mut evicted = 0;
        while table.by_age.len() >= max.max(1) {
            let Some((_, close)) = table.by_age.pop_first() else {
                break;
            };
            let _ = close.send(());
            evicted += 1;
        }
        let id = table.next_id;
        table.next_id += 1;
        table.live += 1;
        let (tx, rx) = oneshot::channel();
        table.by_age.insert(id, tx);
        let slot = Slot {
            evicted: rx,
            _guard: SlotGuard {
                slots: Arc::clone(self),
                id,
            },
        };
        (slot, evicted)
    }

    /// Connection tasks running.
    fn live(&self) -> usize {
        self.open.lock().expect("slots lock").live
    }

    /// Resolves once at most `live` connection tasks run.
    async fn at_most(&self, live: usize) {
        loop {
            let closed = self.closed.notified();
            if self.open.lock().expect("slots lock").live <= live {
                return;
            }
            closed.await;
        }
    }
}

/// Per-source limits: average requests per second with bursts, and open connections.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SourceLimits {
    /// Average requests per second a source may send.
    pub requests_per_second: f64,
    /// Requests a source may send at once after being quiet, and connections it may hold open.
    pub burst: u32,
}

/// Sources remembered at most; a new source beyond it is refused until old ones are idle.
const MAX_SOURCES: usize = 65_536;

/// Token buckets and connection counts per source.
///
/// A source is an IPv4 address or an IPv6 /64 (one host usually owns a whole /64). An idle
/// source with a full bucket is forgotten, so memory follows the number of recently active
/// sources, at most [`MAX_SOURCES`].
#[derive(Debug)]
pub struct SourceLimiter {
    limits: SourceLimits,
    sources: Mutex<SourceTable>,
}

#[derive(Debug)]
struct SourceTable {
    buckets: HashMap<IpAddr, Bucket>,
    /// Size at which idle sources are forgotten next.
    prune_at: usize,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
    connections: u32,
}

impl Bucket {
    fn refill(&mut self, limits: SourceLimits, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens =
            (self.tokens + elapsed * limits.requests_per_second).min(f64::from(limits.burst));
        self.refilled = now;
    }

    fn idle(&self, limits: SourceLimits, now: Instant) -> bool {
        let mut probe = *self;
        probe.refill(limits, now);
        probe.connections == 0 && probe.tokens >= f64::from(limits.burst)
    }
}

/// A connection counted against its source until dropped.
#[derive(Debug)]
pub struct SourceConnection {
    limiter: Arc<SourceLimiter>,
    source: IpAddr,
}

impl Drop for SourceConnection {
    fn drop(&mut self) {
        let mut table = self.limiter.sources.lock().expect("sources lock");
        if let Some(bucket) = table.buckets.get_mut(&self.source) {
            bucket.connections = bucket.connections.saturating_sub(1);
        }
    }
}

/// The source an address counts against.
fn source_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

impl SourceLimiter {
    /// A limiter; `limits.burst` is at least 1.
    pub fn new(limits: SourceLimits) -> Arc<Self> {
        Arc::new(Self {
            limits: SourceLimits {
                burst: limits.burst.max(1),
                ..limits
            },
            sources: Mutex::new(SourceTable {
                buckets: HashMap::new(),
                prune_at: 1024,
            }),
        })
    }

    /// Counts a new connection from `ip`, or `None` when its source already holds `burst`
    /// connections (or too many sources are active to remember one more).
    pub fn open_connection(self: &Arc<Self>, ip: IpAddr) -> Option<SourceConnection> {
        let source = source_of(ip);
        let mut table = self.sources.lock().expect("sources lock");
        let bucket = self.bucket(&mut table, source, Instant::now())?;
        if bucket.connections >= self.limits.burst {
            return None;
        }
        bucket.connections += 1;
        Some(SourceConnection {
            limiter: Arc::clone(self),
            source,
        })
    }

    /// Takes one request token of `ip`'s source; false when its bucket is empty.
    pub fn take_request(&self, ip: IpAddr) -> bool {
        self.take_request_at(ip, Instant::now())
    }

    fn take_request_at(&self, ip: IpAddr, now: Instant) -> bool {
        let mut table = self.sources.lock().expect("sources lock");
        let Some(bucket) = self.bucket(&mut table, source_of(ip), now) else {
            return false;
        };
        bucket.refill(self.limits, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// The bucket of `source`, created full; `None` when the table is full of active sources.
    fn bucket<'t>(
        &self,
        table: &'t mut SourceTable,
        source: IpAddr,
        now: Instant,
    ) -> Option<&'t mut Bucket> {
        if !table.buckets.contains_key(&source) {
            if table.buckets.len() >= table.prune_at {
                let limits = self.limits;
                table.buckets.retain(|_, b| !b.idle(limits, now));
                table.prune_at = (table.buckets.len() * 2).clamp(1024, MAX_SOURCES);
            }
            if table.buckets.len() >= MAX_SOURCES {
                return None;
            }
            table.buckets.insert(
                source,
                Bucket {
                    tokens: f64::from(self.limits.burst),
                    refilled: now,
                    connections: 0,
                },
            );
        }
        table.buckets.get_mut(&source)
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.sources.lock().unwrap().buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rate: f64, burst: u32) -> Arc<SourceLimiter> {
        SourceLimiter::new(SourceLimits {
            requests_per_second: rate,
            burst,
        })
    }

    #[test]
    fn a_source_gets_its_burst_then_its_rate() {
        let limiter = limiter(10.0, 3);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        let taken: Vec<bool> = (0..4).map(|_| limiter.take_request_at(ip, t0)).collect();
        assert_eq!(taken, [true, true, true, false]);
        assert!(limiter.take_request_at(other, t0), "sources are separate");
        // 10 per second: one token after 100 ms, not before.
        assert!(!limiter.take_request_at(ip, t0 + Duration::from_millis(50)));
        assert!(limiter.take_request_at(ip, t0 + Duration::from_millis(110)));
        assert!(!limiter.take_request_at(ip, t0 + Duration::from_millis(120)));
        // Never more than the burst, however long the source was quiet.
        let later = t0 + Duration::from_secs(3600);
        let taken = (0..4)
            .filter(|_| limiter.take_request_at(ip, later))
            .count();
        assert_eq!(taken, 3);
    }

    #[test]
    fn a_source_holds_at_most_burst_connections() {
        let limiter = limiter(1.0, 2);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let first = limiter.open_connection(ip).expect("first");
        let _second = limiter.open_connection(ip).expect("second");
        assert!(limiter.open_connection(ip).is_none());
        drop(first);
        assert!(limiter.open_connection(ip).is_some());
    }

    #[test]
    fn ipv6_sources_are_slash_64_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::ffff:1".parse().unwrap();
        let c: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        assert_eq!(source_of(a), source_of(b));
        assert_ne!(source_of(a), source_of(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(source_of(mapped), "192.0.2.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn idle_sources_are_forgotten() {
        let limiter = limiter(1000.0, 1);
        let source = |i: u32| IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        let t0 = Instant::now();
        for i in 0..5000 {
            assert!(limiter.take_request_at(source(i), t0));
        }
        assert_eq!(limiter.remembered(), 5000, "all active");
        // A second later those buckets are full again: new sources push them out.
        let t1 = t0 + Duration::from_secs(1);
        for i in 5000..10_000 {
            assert!(limiter.take_request_at(source(i), t1));
        }
        assert!(limiter.remembered() <= 6000, "{}", limiter.remembered());
        // A forgotten source starts again with a full bucket.
        assert!(limiter.take_request_at(source(0), t1));
    }

    #[test]
    fn early_close_reasons_index_their_counters() {
        for (i, why) in EarlyClose::ALL.into_iter().enumerate() {
            assert_eq!(why as usize, i, "{why:?}");
        }
    }

    #[test]
    fn a_full_server_closes_its_oldest_connection() {
        let slots = Arc::new(Slots::default());
        let (mut first, e0) = slots.take(2);
        let (mut second, e1) = slots.take(2);
        assert_eq!((e0, e1), (0, 0));
        let (_third, e2) = slots.take(2);
        assert_eq!(e2, 1);
        assert!(
            first.evicted.try_recv().is_ok(),
            "the oldest is told to close"
        );
        assert!(second.evicted.try_recv().is_err(), "the others stay");
        assert_eq!(slots.open.lock().unwrap().live, 3, "until its task ends");
        drop(first);
        assert_eq!(slots.open.lock().unwrap().by_age.len(), 2);
        assert_eq!(slots.open.lock().unwrap().live, 2);
    }
}
