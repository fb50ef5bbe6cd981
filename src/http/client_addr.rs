//! The client's address: the TCP peer, or, when the peer is a trusted proxy
//! (`[server] trusted_proxies`), the address that proxy forwarded in `X-Forwarded-For`.
//!
//! It is what the brute-force limits count failures against (`[security] address_failures`)
//! and what a Wazo session records as `remote_addr`, so a client must not be able to choose it.
//! The header is read only from a trusted peer, and then from the right: each trusted proxy
//! appends the address it received the request from, so the right-most entry that is not itself
//! a trusted proxy is the first hop no proxy of ours vouches for: the client (the algorithm of
//! nginx's `real_ip_recursive` and MDN's "right-most trusted" guidance). Entries left of it were
//! written by the client and are never read. An entry that must be read and is not a bare IP
//! address makes the header worthless: the peer's address is used instead.
use std::net::IpAddr;
use std::sync::Arc;

use actix_web::HttpRequest;
use actix_web::http::header::HeaderValue;
use ipnet::IpNet;

/// The header a proxy appends the address of its own peer to.
pub const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The peers whose `X-Forwarded-For` is believed; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<[IpNet]>);

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets.into())
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The client address of `req`, as text (empty when the peer is unknown).
pub fn remote_addr(req: &HttpRequest, trusted: &TrustedProxies) -> String {
    let peer = req.peer_addr().map(|a| a.ip());
    client_addr(peer, req.headers().get_all(X_FORWARDED_FOR), trusted)
}

/// The pure rule: `peer` is the TCP peer, `forwarded_for` the `X-Forwarded-For` field lines in
/// the order received (several lines are one comma-separated list, RFC 9110 §5.3).
pub fn client_addr<'a>(
    peer: Option<IpAddr>,
    forwarded_for: impl DoubleEndedIterator<Item = &'a HeaderValue>,
    trusted: &TrustedProxies,
) -> String {
    let Some(peer) = peer.map(|ip| ip.to_canonical()) else {
        return String::new();
    };
    if !trusted.contains(peer) {
        return peer.to_string();
    }
    forwarded_client(forwarded_for, trusted)
        .unwrap_or(peer)
        .to_string()
}

/// Walks the header from the right past trusted proxies; `None` when there is no header or an
/// entry on the way is not an IP address.
fn forwarded_client<'a>(
    lines: impl DoubleEndedIterator<Item = &'a HeaderValue>,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    let mut farthest = None;
    for line in lines.rev() {
        let line = line.to_str().ok()?;
        for entry in line.rsplit(',') {
            let ip = entry
                .trim_matches([' ', '\t'])
                .parse::<IpAddr>()
                .ok()?
                .to_canonical();
            if !trusted.contains(ip) {
                return Some(ip);
            }
            // Every hop so far is ours: the left-most one is the best we know.
            farthest = Some(ip);
        }
    }
    farthest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::new(
            entries
                .iter()
                .filter_map(|e| {
                    e.parse::<IpNet>()
                        .ok()
                        .or_else(|| e.parse::<IpAddr>().ok().map(IpNet::from))
                })
                .collect(),
        )
    }

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    /// The client address for `peer` and these header lines.
    fn addr(peer: &str, lines: &[&[u8]], proxies: &[&str]) -> String {
        let values: Vec<HeaderValue> = lines
            .iter()
            .filter_map(|l| HeaderValue::from_bytes(l).ok())
            .collect();
        assert_eq!(values.len(), lines.len(), "test header lines are valid");
        client_addr(ip(peer), values.iter(), &trusted(proxies))
    }

    const LOCAL: &[&str] = &["127.0.0.1", "::1"];

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_the_header() {
        assert_eq!(addr("198.51.100.7", &[], &[]), "198.51.100.7");
        assert_eq!(addr("127.0.0.1", &[b"203.0.113.9"], &[]), "127.0.0.1");
        assert_eq!(
            addr("198.51.100.7", &[b"203.0.113.9"], LOCAL),
            "198.51.100.7"
        );
        assert_eq!(addr("2001:db8::7", &[b"203.0.113.9"], LOCAL), "2001:db8::7");
    }

    #[test]
    fn a_trusted_peer_forwards_the_address_it_appended() {
        assert_eq!(addr("127.0.0.1", &[b"203.0.113.9"], LOCAL), "203.0.113.9");
        assert_eq!(addr("::1", &[b"2001:db8::9"], LOCAL), "2001:db8::9");
        assert_eq!(
            addr("127.0.0.1", &[b" 203.0.113.9\t"], LOCAL),
            "203.0.113.9"
        );
        // No header from a trusted peer: the peer itself.
        assert_eq!(addr("127.0.0.1", &[], LOCAL), "127.0.0.1");
    }

    #[test]
    fn spoofed_leftmost_entries_are_never_read() {
        // The client sent "1.1.1.1, 2.2.2.2"; our proxy appended the real client.
        let header: &[&[u8]] = &[b"1.1.1.1, 2.2.2.2, 203.0.113.9"];
        assert_eq!(addr("127.0.0.1", header, LOCAL), "203.0.113.9");
        // Even when the spoofed entries claim to be our proxies.
        let header: &[&[u8]] = &[b"127.0.0.1, ::1, 203.0.113.9"];
        assert_eq!(addr("127.0.0.1", header, LOCAL), "203.0.113.9");
        // Garbage left of the client does not matter either.
        let header: &[&[u8]] = &[b"<script>, ;DROP TABLE, unknown, 203.0.113.9"];
        assert_eq!(addr("127.0.0.1", header, LOCAL), "203.0.113.9");
    }

    #[test]
    fn a_chain_of_trusted_proxies_is_walked_from_the_right() {
        let proxies = &["10.0.0.0/8", "127.0.0.1"];
        // client → 10.1.1.1 (edge) → 10.2.2.2 (inner) → 127.0.0.1 (local) → Tessera
        let header: &[&[u8]] = &[b"6.6.6.6, 203.0.113.9, 10.1.1.1, 10.2.2.2"];
        assert_eq!(addr("127.0.0.1", header, proxies), "203.0.113.9");
        // Every entry trusted: the farthest hop known.
        let header: &[&[u8]] = &[b"10.1.1.1, 10.2.2.2"];
        assert_eq!(addr("127.0.0.1", header, proxies), "10.1.1.1");
        // Several field lines are one list, in order.
        let header: &[&[u8]] = &[b"6.6.6.6, 203.0.113.9", b"10.1.1.1", b"10.2.2.2"];
        assert_eq!(addr("127.0.0.1", header, proxies), "203.0.113.9");
    }

    #[test]
    fn a_malformed_entry_that_must_be_read_means_the_peer() {
        for header in [
            &b"garbage"[..],
            b"",
            b" ",
            b"203.0.113.9,",
            b"203.0.113.9:4711",
            b"[2001:db8::9]",
            b"[2001:db8::9]:443",
            b"203.0.113.9 198.51.100.1",
            b"unknown",
            b"_hidden",
            b"203.0.113.999",
            b"0x7f.1",
            b"203.0.113.9;by=proxy",
            b"\xff\xfe",
        ] {
            assert_eq!(
                addr("127.0.0.1", &[header], LOCAL),
                "127.0.0.1",
                "{}",
                String::from_utf8_lossy(header)
            );
        }
        // Garbage between the client and our proxy: the walk cannot get past it.
        let proxies = &["10.0.0.0/8", "127.0.0.1"];
        let header: &[&[u8]] = &[b"203.0.113.9, garbage, 10.2.2.2"];
        assert_eq!(addr("127.0.0.1", header, proxies), "127.0.0.1");
    }

    #[test]
    fn many_entries_are_read_only_as_far_as_needed() {
        let mut header = "10.9.9.9, ".repeat(5_000);
        header.push_str("203.0.113.9");
        let header = header.as_bytes();
        assert_eq!(addr("127.0.0.1", &[header], LOCAL), "203.0.113.9");
        let many_trusted = "127.0.0.1,".repeat(2_000) + "127.0.0.1";
        assert_eq!(
            addr("127.0.0.1", &[many_trusted.as_bytes()], LOCAL),
            "127.0.0.1"
        );
    }

    #[test]
    fn ipv6_and_ipv4_mapped_addresses_are_canonical() {
        // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; they match IPv4 entries.
        assert_eq!(
            addr("::ffff:127.0.0.1", &[b"203.0.113.9"], LOCAL),
            "203.0.113.9"
        );
        assert_eq!(addr("::ffff:198.51.100.7", &[], &[]), "198.51.100.7");
        assert_eq!(
            addr("127.0.0.1", &[b"::ffff:203.0.113.9"], LOCAL),
            "203.0.113.9"
        );
        assert_eq!(
            addr("::1", &[b"2001:DB8:0:0:0:0:0:9, ::1"], LOCAL),
            "2001:db8::9"
        );
        assert_eq!(
            addr("fd00::1", &[b"2001:db8::9"], &["fd00::/8"]),
            "2001:db8::9"
        );
    }

    #[test]
    fn an_unknown_peer_is_an_empty_address() {
        let none: [HeaderValue; 0] = [];
        assert_eq!(client_addr(None, none.iter(), &trusted(LOCAL)), "");
    }
}
