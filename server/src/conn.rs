//! Connection limits, so that clients that never authenticate cannot exhaust the server: a
//! global cap and a per-address cap on open connections (a connection over either is closed as
//! soon as it is accepted, before anything is read from it), and a deadline for the first
//! bytes of a connection (after the TLS handshake, which has the same bound). Once a request
//! head has started, hyper's header-read timeout (set in `server.rs` to the same
//! `header_timeout_secs`) bounds the rest of the head and, on a kept-alive connection, the idle
//! time before the next one. Long-polls are requests in progress, so they are not cut.
//!
//! HTTP/2 is not served (every pushauth client speaks HTTP/1.1, and ALPN offers only that): a
//! connection opening with the HTTP/2 preface is closed, so none can idle outside the
//! HTTP/1 timeouts.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use crate::clock;
use crate::config::Limits;
use crate::metrics::ConnMetrics;

/// How long in-flight requests get to finish once the server is told to stop.
pub(crate) const GRACE: Duration = Duration::from_secs(2);

/// hyper's header-read timeout: a request head must arrive within `timeout` of the moment the
/// connection starts waiting for it, which on a kept-alive connection is the end of the
/// previous response (so it is the idle timeout too). It needs a timer, which axum-server
/// does not set.
pub(crate) fn http_timeouts(builder: &mut Builder<TokioExecutor>, timeout: Duration) {
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout);
}

/// Bytes after which a connection has shown it is not idle (the HTTP/2 preface's length: by
/// then the protocol is known).
const FIRST_BYTES: usize = 24;

/// Counts open connections, in total and by client address.
#[derive(Debug)]
pub struct ConnLimiter {
    max_total: u32,
    max_per_address: u32,
    open: Mutex<Counts>,
    /// When a refusal was last logged (milliseconds), so a flood logs once a minute.
    last_logged: AtomicI64,
    metrics: Option<ConnMetrics>,
}

#[derive(Debug, Default)]
struct Counts {
    total: u32,
    by_address: HashMap<IpAddr, u32>,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Permit {
    limiter: Arc<ConnLimiter>,
    address: IpAddr,
}

impl ConnLimiter {
    /// A limiter with the caps of `[limits]` (`max_connections`, `max_connections_per_address`),
    /// reporting to `metrics` when given.
    pub fn new(limits: &Limits, metrics: Option<ConnMetrics>) -> Arc<ConnLimiter> {
        Arc::new(ConnLimiter {
            max_total: limits.max_connections,
            max_per_address: limits.max_connections_per_address,
            open: Mutex::new(Counts::default()),
            last_logged: AtomicI64::new(i64::MIN),
            metrics,
        })
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for one more connection from `address`, or `None` when a cap is reached.
    /// IPv6 clients are counted by their /64 network (one host usually holds a whole /64),
    /// IPv4-mapped IPv6 addresses as the IPv4 address.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Option<Permit> {
        let address = bucket(address);
        let refused = {
            let mut counts = self.counts();
            let from_address = counts.by_address.get(&address).copied().unwrap_or(0);
            if counts.total >= self.max_total {
                Some("max_connections")
            } else if from_address >= self.max_per_address {
                Some("max_connections_per_address")
            } else {
                counts.total += 1;
                counts.by_address.insert(address, from_address + 1);
                None
            }
        };
        match refused {
            None => {
                if let Some(m) = &self.metrics {
                    m.opened(true);
                }
                Some(Permit {
                    limiter: Arc::clone(self),
                    address,
                })
            }
            Some(cap) => {
                if let Some(m) = &self.metrics {
                    m.refused(cap);
                }
                self.log_refusal(address, cap);
                None
            }
        }
    }

    fn log_refusal(&self, address: IpAddr, cap: &'static str) {
        let now = clock::now_ms();
        let last = self.last_logged.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 60_000
            && self
                .last_logged
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(%address, cap, "connection refused: limit reached (logged once a minute)");
        }
    }

    /// Connections open now: in total, and from `address` (its /64 for IPv6).
    pub fn open(&self, address: IpAddr) -> (u32, u32) {
        let counts = self.counts();
        (
            counts.total,
            counts
                .by_address
                .get(&bucket(address))
                .copied()
                .unwrap_or(0),
        )
    }
}

/// The address a connection is counted under (see [`ConnLimiter::admit`]).
pub fn bucket(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut octets = v6.octets();
                for b in octets.iter_mut().skip(8) {
                    *b = 0;
                }
                IpAddr::V6(octets.into())
            }
        },
    }
}

/// A client address as one client: IPv4 as is, IPv6 as its /64 (`2001:db8::/64`), the unit
/// in which connections are capped and failed signatures aggregated.
pub fn client_label(address: IpAddr) -> String {
    match bucket(address) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("{v6}/64"),
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(m) = &self.limiter.metrics {
            m.opened(false);
        }
        let mut counts = self.limiter.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.by_address.get_mut(&self.address) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.by_address.remove(&self.address);
            }
        }
    }
}

/// An acceptor that admits connections through a [`ConnLimiter`] before the `inner` acceptor
/// (plain, or the TLS handshake) sees them, and wraps the result in a [`Limited`] stream.
#[derive(Debug, Clone)]
pub struct LimitedAcceptor<A> {
    inner: A,
    limiter: Arc<ConnLimiter>,
    first_bytes_within: Duration,
}

impl<A> LimitedAcceptor<A> {
    /// `first_bytes_within` bounds the wait for a connection's first bytes.
    pub fn new(inner: A, limiter: Arc<ConnLimiter>, first_bytes_within: Duration) -> Self {
        LimitedAcceptor {
            inner,
            limiter,
            first_bytes_within,
        }
    }
}

type AcceptFuture<St, Sv> = Pin<Box<dyn Future<Output = io::Result<(St, Sv)>> + Send>>;

impl<A, S> Accept<TcpStream, S> for LimitedAcceptor<A>
where
    A: Accept<TcpStream, S>,
    A::Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    A::Service: Send + 'static,
    A::Future: Send + 'static,
{
    type Stream = Limited<A::Stream>;
    type Service = A::Service;
    type Future = AcceptFuture<Self::Stream, Self::Service>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let permit = stream
            .peer_addr()
            .ok()
            .and_then(|peer| self.limiter.admit(peer.ip()));
        let Some(permit) = permit else {
            // Closed here, unread.
            drop(stream);
            return Box::pin(async {
                Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    "connection limit reached",
                ))
            });
        };
        // A response must not wait for the ACK of the previous one (Nagle).
        let _ = stream.set_nodelay(true);
        let within = self.first_bytes_within;
        let inner = self.inner.accept(stream, service);
        Box::pin(async move {
            let (stream, service) = inner.await?;
            Ok((Limited::new(stream, permit, within), service))
        })
    }
}

/// An admitted connection: holds its [`Permit`] and enforces the first-bytes deadline.
#[derive(Debug)]
pub struct Limited<S> {
    inner: S,
    _permit: Permit,
    /// Armed until the connection has sent [`FIRST_BYTES`] or been answered.
    deadline: Option<Pin<Box<Sleep>>>,
    seen: usize,
    first: [u8; 3],
}

impl<S> Limited<S> {
    fn new(inner: S, permit: Permit, within: Duration) -> Self {
        Limited {
            inner,
            _permit: permit,
            deadline: Some(Box::pin(tokio::time::sleep(within))),
            seen: 0,
            first: [0; 3],
        }
    }

    /// Looks at the first bytes read: `Err` for the HTTP/2 preface.
    fn note_read(&mut self, bytes: &[u8]) -> io::Result<()> {
        for &b in bytes.iter().take(FIRST_BYTES.saturating_sub(self.seen)) {
            if let Some(slot) = self.first.get_mut(self.seen) {
                *slot = b;
            }
            self.seen += 1;
        }
        if self.seen >= 3 && &self.first == b"PRI" {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "HTTP/2 is not served; use HTTP/1.1",
            ));
        }
        if self.seen >= FIRST_BYTES {
            self.deadline = None;
        }
        Ok(())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Limited<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if this.deadline.is_some() {
                    this.note_read(buf.filled().get(before..).unwrap_or_default())?;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if let Some(deadline) = this.deadline.as_mut() {
                    if deadline.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "no request within the header timeout",
                        )));
                    }
                }
                Poll::Pending
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Limited<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // Answered: a whole request came in, and hyper's timeouts take over.
        self.deadline = None;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.deadline = None;
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue9_item11_caps_count_per_address_and_in_total() {
        let limits = Limits {
            max_connections: 3,
            max_connections_per_address: 2,
            ..Limits::default()
        };
        let limiter = ConnLimiter::new(&limits, None);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let a1 = limiter.admit(a).unwrap();
        let _a2 = limiter.admit(a).unwrap();
        assert!(limiter.admit(a).is_none(), "per address");
        let _b1 = limiter.admit(b).unwrap();
        assert!(limiter.admit(b).is_none(), "in total");
        assert_eq!(limiter.open(a), (3, 2));
        drop(a1);
        assert_eq!(limiter.open(a), (2, 1));
        assert!(limiter.admit(b).is_some(), "a freed place is usable");
    }

    #[test]
    fn issue9_item11_ipv6_hosts_count_by_their_64() {
        let limits = Limits {
            max_connections_per_address: 2,
            ..Limits::default()
        };
        let limiter = ConnLimiter::new(&limits, None);
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _p1 = limiter.admit(one).unwrap();
        let _p2 = limiter.admit(same_64).unwrap();
        assert!(limiter.admit(one).is_none());
        assert!(limiter.admit(other_64).is_some());
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let _m = limiter.admit(mapped).unwrap();
        assert_eq!(limiter.open("192.0.2.1".parse().unwrap()).1, 1);
    }
}
