//! Telling apart the ways a request can fail before any answer: some
//! retrying may fix (a refused or reset connection, a timeout), some it
//! never will (a certificate that is not trusted or does not match, a host
//! name that does not resolve). The latter fail the call at once, with the
//! setting to check in the message, instead of minutes of retries.
//!
//! reqwest wraps hyper, rustls and the resolver; their errors reach us as
//! a chain of messages, so the kinds are told by the text of the chain
//! (what rustls and getaddrinfo say), tested against real failures in
//! `tests/tls.rs` and `tests/first_contact.rs`.

/// What kind of failure a transport error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The server's certificate is not trusted, or does not name the host.
    Certificate,
    /// The host name does not resolve.
    Dns,
    /// Anything else (refused, reset, timed out): worth retrying.
    Transient,
}

/// Classifies the text of an error chain.
pub fn classify(chain: &str) -> Failure {
    let lower = chain.to_ascii_lowercase();
    let certificate = [
        "invalid peer certificate",
        "certificate verify failed",
        "unknownissuer",
        "notvalidforname",
        "bad certificate",
        "certificate expired",
    ];
    let dns = [
        "dns error",
        "failed to lookup address",
        "name or service not known",
        "no address associated",
        "nodename nor servname",
    ];
    // EAI_AGAIN ("Temporary failure in name resolution"): the resolver
    // itself is down for a moment, which retrying may fix.
    let passing = lower.contains("temporary failure") || lower.contains("try again");
    if certificate.iter().any(|c| lower.contains(c)) {
        Failure::Certificate
    } else if dns.iter().any(|d| lower.contains(d)) && !passing {
        Failure::Dns
    } else {
        Failure::Transient
    }
}

/// The plain-words explanation of a permanent failure reaching `host`, with
/// the setting that fixes it; `download` says whether the host serves files
/// (where `tls.insecure_download_hosts` may apply) or is the API.
pub fn explain(failure: Failure, host: &str, chain: &str, download: bool) -> String {
    match failure {
        Failure::Certificate if download => format!(
            "the certificate of download host {host} is not trusted or does not match it ({}); \
             trust its CA with tls.ca_file, or, since Huawei's download hosts are bare IP \
             addresses whose certificates may not name them, list it in \
             tls.insecure_download_hosts",
            reason(chain)
        ),
        Failure::Certificate => format!(
            "the certificate of {host} is not trusted or does not match it ({}); check \
             cloud.api_base, or trust its CA with tls.ca_file",
            reason(chain)
        ),
        Failure::Dns if download => {
            format!("the download host name {host} does not resolve (DNS)")
        }
        Failure::Dns => {
            format!("the host name {host} does not resolve (DNS): check cloud.api_base")
        }
        Failure::Transient => chain.to_owned(),
    }
}

/// The verifier's reason, in words, from the chain's last part.
fn reason(chain: &str) -> String {
    let lower = chain.to_ascii_lowercase();
    if lower.contains("unknownissuer") || lower.contains("unknown issuer") {
        "issued by an authority this system does not trust".to_owned()
    } else if lower.contains("notvalidforname") || lower.contains("not valid for name") {
        "it names another host".to_owned()
    } else if lower.contains("expired") {
        "it has expired".to_owned()
    } else {
        chain.rsplit(": ").next().unwrap_or(chain).to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_told_by_what_rustls_and_the_resolver_say() {
        let untrusted = "error sending request: client error (Connect): invalid peer certificate: UnknownIssuer";
        assert_eq!(classify(untrusted), Failure::Certificate);
        let mismatch = "invalid peer certificate: NotValidForName";
        assert_eq!(classify(mismatch), Failure::Certificate);
        let dns = "error sending request: client error (Connect): dns error: failed to lookup address information: Name or service not known";
        assert_eq!(classify(dns), Failure::Dns);
        let refused = "error sending request: client error (Connect): tcp connect error: Connection refused (os error 111)";
        assert_eq!(classify(refused), Failure::Transient);
        assert_eq!(classify("operation timed out"), Failure::Transient);
        let blip =
            "dns error: failed to lookup address information: Temporary failure in name resolution";
        assert_eq!(classify(blip), Failure::Transient);
    }

    #[test]
    fn explanations_name_the_host_the_reason_and_the_setting() {
        let text = explain(
            Failure::Certificate,
            "192.0.2.7",
            "invalid peer certificate: UnknownIssuer",
            true,
        );
        assert!(
            text.contains("192.0.2.7") && text.contains("tls.insecure_download_hosts"),
            "{text}"
        );
        assert!(text.contains("not trust"), "{text}");
        let api = explain(
            Failure::Certificate,
            "api.example",
            "NotValidForName",
            false,
        );
        assert!(
            api.contains("cloud.api_base") && api.contains("names another host"),
            "{api}"
        );
        let dns = explain(Failure::Dns, "nowhere.invalid", "dns error", false);
        assert!(
            dns.contains("nowhere.invalid") && dns.contains("cloud.api_base"),
            "{dns}"
        );
    }
}
