//! Prometheus metrics (`GET /metrics`, text exposition format), with the `prometheus` crate.
//! The use cases count what happened to tokens; the HTTP edge counts requests and their
//! latency per route pattern (never a raw path: paths may hold tokens); the pool's state is
//! read at scrape time.
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::store::Store;

/// Every metric of one server.
pub struct Metrics {
    registry: Registry,
    /// `route`, `method`, `status`.
    pub http_requests: IntCounterVec,
    /// `route`.
    pub http_duration: HistogramVec,
    /// `dialect`, `kind` (`access` | `refresh`).
    pub tokens_issued: IntCounterVec,
    /// `dialect`: successful refreshes (a retry answered again counts as one).
    pub tokens_refreshed: IntCounterVec,
    /// `kind` (`access` | `refresh`): tokens revoked by revocation, deletion, reuse, disabling.
    pub tokens_revoked: IntCounterVec,
    /// `kind`: expired rows deleted by the cleanup task.
    pub tokens_expired: IntCounterVec,
    /// `dialect`: rotated-out refresh tokens presented again outside the grace.
    pub refresh_reuse: IntCounterVec,
    /// `dialect`: replays answered from the sealed answer (exact retry).
    pub refresh_retries: IntCounterVec,
    /// `dialect`: logins refused for bad credentials.
    pub login_failures: IntCounterVec,
    /// `dialect`: attempts refused unchecked by the brute-force limits (`[security]`).
    pub login_lockouts: IntCounterVec,
    pool_connections: IntGaugeVec,
    pool_size: IntGauge,
    pool_wait: Histogram,
    pool_timeouts: IntCounter,
    /// SQLite: writers committed together by one group commit (`store::group_commit`).
    write_batch: Histogram,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn counter(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, prometheus::Error> {
    let metric = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

fn register<T: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: T,
) -> Result<T, prometheus::Error> {
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

impl Metrics {
    /// Every metric, registered. Fails only on an invalid name or label (a programming error
    /// the unit test would show).
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let r = &registry;
        let latency = HistogramOpts::new(
            "tessera_http_request_duration_seconds",
            "HTTP request latency by route pattern.",
        )
        .buckets(vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ]);
        let pool_wait = HistogramOpts::new(
            "tessera_db_pool_wait_seconds",
            "Time spent waiting for a pooled database connection.",
        )
        .buckets(vec![
            0.00001, 0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0,
        ]);
        let write_batch = HistogramOpts::new(
            "tessera_db_write_batch_size",
            "SQLite: write transactions committed together by one group commit.",
        )
        .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]);
        Ok(Self {
            write_batch: register(r, Histogram::with_opts(write_batch)?)?,
            http_requests: counter(
                r,
                "tessera_http_requests_total",
                "HTTP requests by route pattern, method and status.",
                &["route", "method", "status"],
            )?,
            http_duration: register(r, HistogramVec::new(latency, &["route"])?)?,
            tokens_issued: counter(
                r,
                "tessera_tokens_issued_total",
                "Tokens minted, by dialect and kind (access, refresh).",
                &["dialect", "kind"],
            )?,
            tokens_refreshed: counter(
                r,
                "tessera_tokens_refreshed_total",
                "Successful refreshes, by dialect.",
                &["dialect"],
            )?,
            tokens_revoked: counter(
                r,
                "tessera_tokens_revoked_total",
                "Tokens revoked or deleted (revocation, logout, reuse, disabling), by kind.",
                &["kind"],
            )?,
            tokens_expired: counter(
                r,
                "tessera_tokens_expired_total",
                "Expired tokens deleted by the cleanup task, by kind.",
                &["kind"],
            )?,
            refresh_reuse: counter(
                r,
                "tessera_refresh_token_reuse_total",
                "Rotated-out refresh tokens presented again outside the grace (family revoked).",
                &["dialect"],
            )?,
            refresh_retries: counter(
                r,
                "tessera_refresh_token_retries_total",
                "Replays answered again inside the grace window (exact retry).",
                &["dialect"],
            )?,
            login_failures: counter(
                r,
                "tessera_login_failures_total",
                "Logins refused for bad credentials, by dialect.",
                &["dialect"],
            )?,
            login_lockouts: counter(
                r,
                "tessera_login_lockouts_total",
                "Password logins and client authentications refused unchecked by the \
                 brute-force limits, by dialect.",
                &["dialect"],
            )?,
            pool_connections: register(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "tessera_db_pool_connections",
                        "Pooled database connections by state (idle, in_use).",
                    ),
                    &["state"],
                )?,
            )?,
            pool_size: register(
                r,
                IntGauge::new(
                    "tessera_db_pool_max_size",
                    "Most connections the pool opens.",
                )?,
            )?,
            pool_wait: register(r, Histogram::with_opts(pool_wait)?)?,
            pool_timeouts: register(
                r,
                IntCounter::new(
                    "tessera_db_pool_timeouts_total",
                    "Checkouts that found no connection within the pool timeout (answered 503).",
                )?,
            )?,
            registry,
        })
    }

    /// Records how long a pool checkout waited, and whether it timed out.
    pub fn pool_checkout(&self, waited_secs: f64, timed_out: bool) {
        self.pool_wait.observe(waited_secs);
        if timed_out {
            self.pool_timeouts.inc();
        }
    }

    /// A group commit of `writers` write transactions.
    pub fn write_batch(&self, writers: usize) {
        self.write_batch.observe(writers as f64);
    }

    /// The text exposition of every metric, with the pool's state read now.
    pub fn render(&self, store: &Store) -> String {
        let state = store.pool_state();
        self.pool_size.set(i64::from(state.max_size));
        self.pool_connections
            .with_label_values(&["idle"])
            .set(i64::from(state.idle));
        self.pool_connections
            .with_label_values(&["in_use"])
            .set(i64::from(state.connections.saturating_sub(state.idle)));
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_registers() {
        let m = Metrics::new().unwrap();
        m.tokens_issued
            .with_label_values(&["oauth2", "access"])
            .inc();
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&m.registry.gather(), &mut out)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("tessera_tokens_issued_total{dialect=\"oauth2\",kind=\"access\"} 1"));
    }
}
