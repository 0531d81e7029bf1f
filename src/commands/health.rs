//! `healthcheck`: asks the running daemon's `/healthz`, for container
//! health checks without curl. Exit 0 when it answers 200, else 1.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::exit;
use crate::config::Config;

/// Asks `/healthz` of the daemon configured in `config`.
pub async fn healthcheck(config: &Config) -> anyhow::Result<u8> {
    let Some(addr) = config.server.listen else {
        println!("unhealthy: server.listen is off, so there is no /healthz to ask");
        return Ok(exit::FAILED);
    };
    let url = format!("http://{}/healthz", loopback_for(addr));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()?;
    match client.get(&url).send().await {
        Ok(response) => {
            let ok = response.status().is_success();
            let body = response.text().await.unwrap_or_default();
            print!("{body}");
            Ok(if ok { exit::OK } else { exit::FAILED })
        }
        Err(e) => {
            println!("unhealthy: {url}: {}", crate::telemetry::error_chain(&e));
            Ok(exit::FAILED)
        }
    }
}

/// A daemon listening on all addresses is asked on loopback.
fn loopback_for(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_are_asked_on_loopback() {
        let any: SocketAddr = "0.0.0.0:9187".parse().expect("addr");
        assert_eq!(loopback_for(any), "127.0.0.1:9187".parse().expect("addr"));
        let any6: SocketAddr = "[::]:9187".parse().expect("addr");
        assert_eq!(loopback_for(any6), "[::1]:9187".parse().expect("addr"));
        let fixed: SocketAddr = "127.0.0.5:80".parse().expect("addr");
        assert_eq!(loopback_for(fixed), fixed);
    }
}
