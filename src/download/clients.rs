//! HTTP clients with our trust settings. Downloads get no overall timeout
//! (it would cut a multi-GB transfer), only a connect and a read timeout.
//! Hosts listed in `tls.insecure_download_hosts` get a separate client that
//! skips certificate checks; every other host is verified, with the extra
//! CA of `tls.ca_file` when given.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Trust and timeout settings.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// An extra CA certificate (PEM) to trust.
    pub ca_file: Option<PathBuf>,
    /// Download hosts whose certificates are not checked.
    pub insecure_download_hosts: Vec<String>,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Longest silence while reading a body.
    pub read_timeout: Duration,
}

/// Errors building clients; they name the file or setting, and leave the
/// cause to `source()`.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The CA file could not be read.
    #[error("cannot read tls.ca_file {}", path.display())]
    ReadCa {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The CA file is not PEM.
    #[error("tls.ca_file {} holds no usable PEM certificate", path.display())]
    ParseCa {
        /// The file.
        path: PathBuf,
        /// What reqwest said.
        source: reqwest::Error,
    },
    /// reqwest refused the settings.
    #[error("cannot build the HTTP client")]
    Build(#[from] reqwest::Error),
}

fn user_agent() -> String {
    format!("meeting-archiver/{}", env!("CARGO_PKG_VERSION"))
}

fn extra_roots(options: &TlsOptions) -> Result<Vec<reqwest::Certificate>, ClientError> {
    let Some(path) = &options.ca_file else {
        return Ok(Vec::new());
    };
    let pem = std::fs::read(path).map_err(|source| ClientError::ReadCa {
        path: path.clone(),
        source,
    })?;
    reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| ClientError::ParseCa {
        path: path.clone(),
        source,
    })
}

/// The client for API calls: the whole request is bounded by `timeout`.
pub fn api_client(options: &TlsOptions, timeout: Duration) -> Result<reqwest::Client, ClientError> {
    Ok(reqwest::Client::builder()
        .user_agent(user_agent())
        .connect_timeout(options.connect_timeout)
        .timeout(timeout)
        .tls_certs_merge(extra_roots(options)?)
        .build()?)
}

/// The download clients and the rule choosing between them.
#[derive(Clone)]
pub struct DownloadClients {
    verified: reqwest::Client,
    insecure: Option<reqwest::Client>,
    insecure_hosts: Vec<String>,
}

impl DownloadClients {
    /// Builds the clients for `options`.
    pub fn new(options: &TlsOptions) -> Result<DownloadClients, ClientError> {
        let base = || {
            reqwest::Client::builder()
                .user_agent(user_agent())
                .connect_timeout(options.connect_timeout)
                .read_timeout(options.read_timeout)
        };
        let verified = base().tls_certs_merge(extra_roots(options)?).build()?;
        let insecure = if options.insecure_download_hosts.is_empty() {
            None
        } else {
            Some(
                base()
                    .tls_danger_accept_invalid_certs(true)
                    // A redirect could lead anywhere with checks off: none.
                    .redirect(reqwest::redirect::Policy::none())
                    .build()?,
            )
        };
        Ok(DownloadClients {
            verified,
            insecure,
            insecure_hosts: options
                .insecure_download_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
        })
    }

    /// The client to fetch `url` with.
    pub fn for_url(&self, url: &url::Url) -> &reqwest::Client {
        let host = url.host_str().unwrap_or("").to_ascii_lowercase();
        let listed = self.insecure_hosts.iter().any(|entry| covers(entry, &host));
        match &self.insecure {
            Some(client) if listed => client,
            _ => &self.verified,
        }
    }
}

/// Whether an entry of `tls.insecure_download_hosts` (a host, or an
/// address range like `100.64.0.0/10`) covers `host` (as `Url::host_str`
/// prints it: IPv6 in brackets).
fn covers(entry: &str, host: &str) -> bool {
    let Ok((net, prefix)) = parse_cidr(entry) else {
        return entry == host;
    };
    let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(net), IpAddr::V4(ip)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(net) & mask == u32::from(ip) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(ip)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(net) & mask == u128::from(ip) & mask
        }
        _ => false,
    }
}

/// Parses an address range `ADDRESS/PREFIX`.
pub fn parse_cidr(text: &str) -> Result<(IpAddr, u8), String> {
    let (addr, prefix) = text
        .split_once('/')
        .ok_or_else(|| "not an address range (ADDRESS/PREFIX)".to_owned())?;
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("{addr:?} is not an IP address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| *p <= max)
        .ok_or_else(|| format!("the prefix must be a number from 0 to {max}"))?;
    Ok((addr, prefix))
}

#[cfg(test)]
mod cidr_tests {
    use super::*;

    #[test]
    fn ranges_cover_their_addresses_and_hosts_match_exactly() {
        assert!(covers("100.64.0.0/10", "100.127.255.1"));
        assert!(!covers("100.64.0.0/10", "100.128.0.1"));
        assert!(covers("192.0.2.7/32", "192.0.2.7"));
        assert!(covers("0.0.0.0/0", "203.0.113.9"));
        assert!(covers("2001:db8::/32", "[2001:db8::1]"));
        assert!(!covers("2001:db8::/32", "192.0.2.1"));
        assert!(covers("192.0.2.7", "192.0.2.7"));
        assert!(!covers("192.0.2.7", "192.0.2.8"));
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("example.com/8").is_err());
    }
}
