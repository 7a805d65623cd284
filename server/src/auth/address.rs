//! The client's address behind our proxies: whose `X-Forwarded-For` is believed, and what it
//! then names. Read by the sign-in throttle and the audit trail.

use std::net::IpAddr;

use axum::http::HeaderMap;

pub(super) const FORWARDED_FOR: &str = "x-forwarded-for";

/// The client behind `peer`: `peer` itself unless it is a trusted proxy; then, walking
/// `X-Forwarded-For` from the nearest hop back, the first address that is not a trusted proxy
/// (each proxy appends the address it received from). A hop that is not an address ends the
/// walk at the last proxy believed.
pub(super) fn client_ip(trusted: &[IpAddr], headers: &HeaderMap, peer: IpAddr) -> IpAddr {
    let mut client = peer.to_canonical();
    if !trusted.contains(&client) {
        return client;
    }
    let hops: Vec<&str> = headers
        .get_all(FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.into_iter().rev() {
        let Ok(address) = hop.parse::<IpAddr>() else {
            break;
        };
        client = address.to_canonical();
        if !trusted.contains(&client) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn forwarded_addresses_are_believed_from_trusted_proxies_only() {
        let proxy: IpAddr = "192.0.2.10".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("198.51.100.1, 203.0.113.7, 192.0.2.10"),
        );
        let stranger: IpAddr = "203.0.113.99".parse().unwrap();
        assert_eq!(client_ip(&[proxy], &headers, stranger), stranger);
        assert_eq!(
            client_ip(&[], &headers, proxy),
            proxy,
            "no proxy configured: the header is ignored"
        );
        // Behind our proxy (which forwarded itself too), the nearest hop not ours is the client;
        // what the client wrote further left is not believed.
        assert_eq!(
            client_ip(&[proxy], &headers, proxy),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        headers.insert("x-forwarded-for", HeaderValue::from_static("nonsense"));
        assert_eq!(client_ip(&[proxy], &headers, proxy), proxy);
        let mapped: IpAddr = "::ffff:192.0.2.10".parse().unwrap();
        assert_eq!(client_ip(&[proxy], &HeaderMap::new(), mapped), proxy);
    }
}
