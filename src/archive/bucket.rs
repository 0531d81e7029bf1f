//! The S3-compatible archive target (Huawei OBS, MinIO, Ceph, AWS S3),
//! through `object_store`: the client, HEAD checks, reading objects back,
//! small objects (manifests) and the access check; uploads of archived
//! files are in `upload`. Every request carries `x-amz-checksum-sha256`,
//! so the store checks what it receives, and each object's metadata
//! records the file's SHA-256 (and meeting), which HEAD reports back.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, Checksum};
use object_store::path::Path as Key;
use object_store::{
    Attribute, Attributes, Certificate, ClientOptions, GetOptions, ObjectStore, ObjectStoreExt,
    PutOptions, PutPayload,
};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::config::S3Config;

/// Object metadata (`x-amz-meta-sha256`): the file's hex SHA-256.
pub const META_SHA256: &str = "sha256";
/// Object metadata (`x-amz-meta-meeting`): the conference UUID.
pub const META_MEETING: &str = "meeting";

/// The longest one request may take: a whole part must fit in it on a
/// slow link (6 MiB in 5 min is about 21 KB/s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a TCP and TLS connection to the store may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// The key [`Bucket::check_access`] asks for, under the prefix.
const ACCESS_CHECK: &str = ".meeting-archiver-access-check";

/// Why the bucket cannot be used (see [`Bucket::check_access`]).
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The store refused the credentials; the cause gives its answer.
    #[error(
        "the bucket refused the credentials: check archive.s3.access_key_id and \
         secret_access_key (or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), and that the key \
         may get objects under the prefix"
    )]
    Refused(#[source] io::Error),
    /// The bucket does not exist (or the endpoint or region is wrong).
    #[error("the bucket does not exist: check archive.s3.bucket, endpoint and region")]
    NoBucket(#[source] io::Error),
    /// The store could not be asked (unreachable, failing).
    #[error("the bucket cannot be reached")]
    Unreachable(#[source] io::Error),
}

/// Errors of the bucket; each names the object and leaves the cause to `source()`.
#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    /// The store refused or failed a request. `object_store`'s errors
    /// repeat their causes in their message, so the message is kept whole
    /// (status, URL, the store's answer) rather than chained.
    #[error("{action} s3://{bucket}/{key} failed: {detail}")]
    Store {
        /// What was being done ("uploading", "checking").
        action: &'static str,
        /// The bucket.
        bucket: String,
        /// The object key.
        key: String,
        /// Not found, permission denied, or other.
        kind: io::ErrorKind,
        /// What object_store said.
        detail: String,
    },
    /// The object does not hold what the ledger says it should.
    #[error("s3://{bucket}/{key}: {problem}")]
    Mismatch {
        /// The bucket.
        bucket: String,
        /// The object key.
        key: String,
        /// What differs.
        problem: String,
    },
    /// The local copy read for an upload is not the verified file (the
    /// staged partial file changed on disk): nothing was published.
    #[error("s3://{bucket}/{key}: {problem}")]
    LocalCopy {
        /// The bucket.
        bucket: String,
        /// The object key.
        key: String,
        /// What differs.
        problem: String,
    },
    /// An archive-relative path that cannot be an object key.
    #[error("refusing object key {key:?}: {problem}")]
    BadKey {
        /// The key.
        key: String,
        /// Why.
        problem: &'static str,
    },
}

/// What a failed upload says about its cause, for the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadFault {
    /// The store refused the credentials or has no such bucket: nothing
    /// will upload until someone fixes it (not the file's fault).
    Refused,
    /// The store failed, was unreachable, or did not report what was
    /// sent: not the file's fault either.
    Store,
    /// The staged local copy is not the verified file any more.
    LocalCopy,
    /// The file's key cannot be an object key: retrying cannot help.
    BadKey,
}

impl UploadFault {
    /// The cause of `error` when it came from the bucket (`None`: a local
    /// or ledger error).
    pub fn of(error: &io::Error) -> Option<UploadFault> {
        let bucket = error.get_ref()?.downcast_ref::<BucketError>()?;
        Some(match bucket {
            BucketError::Store { kind, detail, .. } => {
                let refused = *kind == io::ErrorKind::PermissionDenied
                    || detail.contains("NoSuchBucket")
                    || detail.contains("InvalidAccessKeyId")
                    || detail.contains("SignatureDoesNotMatch");
                if refused {
                    UploadFault::Refused
                } else {
                    UploadFault::Store
                }
            }
            BucketError::Mismatch { .. } => UploadFault::Store,
            BucketError::LocalCopy { .. } => UploadFault::LocalCopy,
            BucketError::BadKey { .. } => UploadFault::BadKey,
        })
    }
}

/// The longest object key S3 (and OBS) accept, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

impl BucketError {
    /// The error as an `io::Error` of the matching kind (callers branch on
    /// `NotFound` and `PermissionDenied`), keeping it as the source.
    pub(super) fn into_io(self) -> io::Error {
        let kind = match &self {
            BucketError::Store { kind, .. } => *kind,
            BucketError::Mismatch { .. } | BucketError::LocalCopy { .. } => {
                io::ErrorKind::InvalidData
            }
            BucketError::BadKey { .. } => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, self)
    }
}

/// What the store says it holds under a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectFacts {
    /// Its size in bytes.
    pub size: u64,
    /// The SHA-256 recorded in its metadata, if any.
    pub sha256: Option<String>,
}

/// An S3-compatible bucket under a key prefix.
#[derive(Debug, Clone)]
pub struct Bucket {
    pub(super) store: Arc<AmazonS3>,
    pub(super) bucket: String,
    pub(super) prefix: String,
}

impl Bucket {
    /// The bucket of a config, trusting `ca_file` (`tls.ca_file`, PEM)
    /// beside the system roots. Builds a client; sends nothing.
    pub fn new(config: &S3Config, ca_file: Option<&Path>) -> io::Result<Bucket> {
        Bucket::build(config, ca_file, false)
    }

    /// The same bucket without credentials: what anyone on the network
    /// may do (`check-config --online` asks it to read the probe object).
    pub fn anonymous(config: &S3Config, ca_file: Option<&Path>) -> io::Result<Bucket> {
        Bucket::build(config, ca_file, true)
    }

    fn build(config: &S3Config, ca_file: Option<&Path>, anonymous: bool) -> io::Result<Bucket> {
        let configuring = |detail: String| {
            let error = BucketError::Store {
                action: "configuring",
                bucket: config.bucket.clone(),
                key: config.prefix.clone(),
                kind: io::ErrorKind::InvalidInput,
                detail,
            };
            io::Error::new(io::ErrorKind::InvalidInput, error)
        };
        let mut client = ClientOptions::new()
            .with_timeout(REQUEST_TIMEOUT)
            .with_connect_timeout(CONNECT_TIMEOUT);
        if let Some(path) = ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                configuring(format!("cannot read tls.ca_file {}: {e}", path.display()))
            })?;
            let certificates = Certificate::from_pem_bundle(&pem).map_err(|e| {
                configuring(format!("tls.ca_file {} is not PEM: {e}", path.display()))
            })?;
            for certificate in certificates {
                client = client.with_root_certificate(certificate);
            }
        }
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_virtual_hosted_style_request(!config.path_style)
            .with_checksum_algorithm(Checksum::SHA256)
            .with_client_options(client);
        if anonymous {
            builder = builder.with_skip_signature(true);
        } else {
            builder = builder
                .with_access_key_id(&config.access_key_id)
                .with_secret_access_key(config.secret_access_key.expose_secret());
        }
        if let Some(endpoint) = &config.endpoint {
            let text = bucket_endpoint(endpoint, &config.bucket, config.path_style)
                .map_err(configuring)?;
            builder = builder
                .with_endpoint(text)
                .with_allow_http(endpoint.scheme() == "http");
        }
        let store = builder
            .build()
            .map_err(|source| configuring(source.to_string()))?;
        Ok(Bucket {
            store: Arc::new(store),
            bucket: config.bucket.clone(),
            prefix: config.prefix.clone(),
        })
    }

    /// `s3://bucket/<prefix><rel>`, for messages.
    pub fn describe(&self, rel: &str) -> String {
        format!("s3://{}/{}{rel}", self.bucket, self.prefix)
    }

    pub(super) fn key(&self, rel: &str) -> Result<Key, BucketError> {
        let key = format!("{}{rel}", self.prefix);
        if key.len() > MAX_KEY_BYTES {
            let problem = "longer than the 1024 bytes S3 allows (shorten archive.s3.prefix or \
                           download.layout)";
            return Err(BucketError::BadKey { key, problem });
        }
        Key::parse(&key).map_err(|_| BucketError::BadKey {
            key,
            problem: "not a valid object key",
        })
    }

    pub(super) fn store_error(
        &self,
        action: &'static str,
        key: &Key,
        source: object_store::Error,
    ) -> io::Error {
        let kind = match &source {
            object_store::Error::NotFound { .. } => io::ErrorKind::NotFound,
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => io::ErrorKind::PermissionDenied,
            _ => io::ErrorKind::Other,
        };
        BucketError::Store {
            action,
            bucket: self.bucket.clone(),
            key: key.to_string(),
            kind,
            detail: source.to_string(),
        }
        .into_io()
    }

    /// Size and recorded SHA-256 of the object at `rel`, by one HEAD.
    pub async fn head(&self, rel: &str) -> io::Result<ObjectFacts> {
        let key = self.key(rel).map_err(BucketError::into_io)?;
        let options = GetOptions {
            head: true,
            ..GetOptions::default()
        };
        let found = self
            .store
            .get_opts(&key, options)
            .await
            .map_err(|e| self.store_error("checking", &key, e))?;
        let sha256 = found
            .attributes
            .get(&Attribute::Metadata(META_SHA256.into()))
            .map(|v| v.as_ref().to_owned());
        Ok(ObjectFacts {
            size: found.meta.size,
            sha256,
        })
    }

    /// Whether the object at `rel` holds `size` bytes recorded with `sha256`.
    pub async fn matches(&self, rel: &str, size: u64, sha256: &str) -> io::Result<bool> {
        match self.head(rel).await {
            Ok(facts) => Ok(facts.size == size && facts.sha256.as_deref() == Some(sha256)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Size and SHA-256 of the object at `rel`, streamed back and hashed.
    pub async fn digest(&self, rel: &str) -> io::Result<(u64, String)> {
        let key = self.key(rel).map_err(BucketError::into_io)?;
        let got = self
            .store
            .get(&key)
            .await
            .map_err(|e| self.store_error("reading", &key, e))?;
        let mut stream = got.into_stream();
        let (mut hasher, mut size) = (Sha256::new(), 0u64);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.store_error("reading", &key, e))?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
        }
        Ok((size, hex::encode(hasher.finalize())))
    }

    /// The content of a small object (a manifest, `SHA256SUMS`); `None`
    /// when there is none.
    pub async fn get_small(&self, rel: &str) -> io::Result<Option<Vec<u8>>> {
        let key = self.key(rel).map_err(BucketError::into_io)?;
        let got = match self.store.get(&key).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.store_error("reading", &key, e)),
        };
        let bytes = got
            .bytes()
            .await
            .map_err(|e| self.store_error("reading", &key, e))?;
        Ok(Some(bytes.to_vec()))
    }

    /// Writes a small object (a manifest, the `check-config --online`
    /// probe) in one PUT, its SHA-256 in its metadata.
    pub async fn put_small(&self, rel: &str, bytes: Vec<u8>) -> io::Result<()> {
        let key = self.key(rel).map_err(BucketError::into_io)?;
        let sha = hex::encode(Sha256::digest(&bytes));
        let options = PutOptions {
            attributes: attributes(rel, &sha, None),
            ..PutOptions::default()
        };
        self.store
            .put_opts(&key, PutPayload::from(bytes), options)
            .await
            .map_err(|e| self.store_error("writing", &key, e))?;
        Ok(())
    }

    pub(super) fn mismatch(&self, key: &Key, problem: String) -> io::Error {
        BucketError::Mismatch {
            bucket: self.bucket.clone(),
            key: key.to_string(),
            problem,
        }
        .into_io()
    }

    pub(super) fn local_copy_changed(&self, key: &Key, problem: String) -> io::Error {
        BucketError::LocalCopy {
            bucket: self.bucket.clone(),
            key: key.to_string(),
            problem,
        }
        .into_io()
    }

    /// Whether the credentials and the bucket work: one GET of a key that
    /// need not exist (a 404 NoSuchKey is the expected answer; a GET, not a
    /// HEAD, so that a refusal carries the store's reason, such as
    /// `InvalidAccessKeyId` or `SignatureDoesNotMatch`).
    pub async fn check_access(&self) -> Result<(), AccessError> {
        let key = self
            .key(ACCESS_CHECK)
            .map_err(|e| AccessError::Unreachable(e.into_io()))?;
        let Err(source) = self.store.get(&key).await else {
            return Ok(());
        };
        let text = source.to_string();
        let error = self.store_error("reading", &key, source);
        match error.kind() {
            io::ErrorKind::NotFound if text.contains("NoSuchBucket") => {
                Err(AccessError::NoBucket(error))
            }
            io::ErrorKind::NotFound => Ok(()),
            io::ErrorKind::PermissionDenied => Err(AccessError::Refused(error)),
            _ => Err(AccessError::Unreachable(error)),
        }
    }

    /// Deletes the object at `rel` (the `check-config --online` probe).
    pub async fn delete(&self, rel: &str) -> io::Result<()> {
        let key = self.key(rel).map_err(BucketError::into_io)?;
        self.store
            .delete(&key)
            .await
            .map_err(|e| self.store_error("deleting", &key, e))
    }
}

/// What `object_store` takes as the endpoint. Path-style: the service's
/// URL (it appends `/<bucket>` itself). Virtual-hosted style: it takes the
/// endpoint as the bucket's own address (object_store 0.14's builder uses
/// it unchanged), so the bucket goes in front of the host:
/// `https://obs.cn-north-4.myhuaweicloud.com` becomes
/// `https://<bucket>.obs.cn-north-4.myhuaweicloud.com`.
fn bucket_endpoint(endpoint: &url::Url, bucket: &str, path_style: bool) -> Result<String, String> {
    let text = endpoint.as_str().trim_end_matches('/');
    if path_style {
        return Ok(text.to_owned());
    }
    let Some(host) = endpoint.host_str() else {
        return Err(format!("archive.s3.endpoint {text} has no host"));
    };
    if endpoint
        .host()
        .is_some_and(|h| !matches!(h, url::Host::Domain(_)))
    {
        return Err(format!(
            "archive.s3.endpoint {text} is an IP address, which cannot carry the bucket in its \
             host name: set archive.s3.path_style = true"
        ));
    }
    let port = endpoint.port().map(|p| format!(":{p}")).unwrap_or_default();
    let path = endpoint.path().trim_end_matches('/');
    Ok(format!(
        "{}://{bucket}.{host}{port}{path}",
        endpoint.scheme()
    ))
}

/// The object's metadata and content type.
pub(super) fn attributes(rel: &str, sha256: &str, meeting: Option<&str>) -> Attributes {
    let mut attributes = Attributes::new();
    attributes.insert(Attribute::ContentType, content_type(rel).into());
    attributes.insert(
        Attribute::Metadata(META_SHA256.into()),
        sha256.to_owned().into(),
    );
    if let Some(meeting) = meeting {
        attributes.insert(
            Attribute::Metadata(META_MEETING.into()),
            meeting.to_owned().into(),
        );
    }
    attributes
}

/// A content type from the file name, so that a browser plays the video.
fn content_type(rel: &str) -> &'static str {
    let ext = rel.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("mp4") => "video/mp4",
        Some("m4a") => "audio/mp4",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(prefix: &str) -> S3Config {
        S3Config {
            bucket: "b".into(),
            prefix: prefix.into(),
            endpoint: None,
            region: "us-east-1".into(),
            access_key_id: "AKID".into(),
            secret_access_key: "s".into(),
            secret_source: crate::config::SecretSource::Inline,
            path_style: false,
        }
    }

    #[test]
    fn an_unreadable_or_non_pem_ca_file_is_named() {
        let config = s3("");
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.pem");
        let error = Bucket::new(&config, Some(&missing)).expect_err("missing");
        assert!(
            error.to_string().contains("cannot read tls.ca_file"),
            "{error}"
        );
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        let error = Bucket::new(&config, Some(&garbage)).expect_err("garbage");
        assert!(error.to_string().contains("is not PEM"), "{error}");
    }

    async fn url_of(config: &S3Config, rel: &str) -> url::Url {
        use object_store::signer::Signer;
        let bucket = Bucket::new(config, None).expect("client");
        let key = bucket.key(rel).expect("key");
        bucket
            .store
            .signed_url(reqwest::Method::GET, &key, Duration::from_secs(60))
            .await
            .expect("signed url")
    }

    #[tokio::test]
    async fn virtual_hosted_requests_carry_the_bucket_in_the_host() {
        let mut config = s3("huawei/");
        config.bucket = "rec".into();
        config.endpoint = Some(
            "https://obs.cn-north-4.myhuaweicloud.com"
                .parse()
                .expect("url"),
        );
        let url = url_of(&config, "c/Hd/0_0.mp4").await;
        assert_eq!(url.host_str(), Some("rec.obs.cn-north-4.myhuaweicloud.com"));
        assert_eq!(url.path(), "/huawei/c/Hd/0_0.mp4");

        config.endpoint = Some("http://minio.local:9000/".parse().expect("url"));
        let url = url_of(&config, "k").await;
        assert_eq!(url.host_str(), Some("rec.minio.local"));
        assert_eq!(url.port(), Some(9000));
        assert_eq!(url.path(), "/huawei/k");

        config.path_style = true;
        let url = url_of(&config, "k").await;
        assert_eq!(url.host_str(), Some("minio.local"));
        assert_eq!(url.path(), "/rec/huawei/k");

        config.endpoint = None;
        config.path_style = false;
        let url = url_of(&config, "k").await;
        assert_eq!(url.host_str(), Some("rec.s3.us-east-1.amazonaws.com"));
    }

    #[test]
    fn a_virtual_hosted_ip_endpoint_is_refused_with_a_hint() {
        let mut config = s3("");
        config.endpoint = Some("http://127.0.0.1:9000".parse().expect("url"));
        let error = Bucket::new(&config, None).expect_err("ip");
        assert!(error.to_string().contains("path_style = true"), "{error}");
        config.path_style = true;
        Bucket::new(&config, None).expect("path style takes an IP");
    }

    #[test]
    fn a_key_over_1024_bytes_is_refused_clearly() {
        let bucket = Bucket::new(&s3("huawei/"), None).expect("client");
        let fits = "a".repeat(MAX_KEY_BYTES - "huawei/".len());
        bucket.key(&fits).expect("1024 bytes fit");
        let error = bucket.key(&format!("{fits}b")).expect_err("too long");
        assert!(
            error.to_string().contains("longer than the 1024 bytes"),
            "{error}"
        );
        assert_eq!(UploadFault::of(&error.into_io()), Some(UploadFault::BadKey));
    }

    #[test]
    fn upload_faults_tell_refusals_from_failures() {
        let bucket = Bucket::new(&s3(""), None).expect("client");
        let key = bucket.key("k").expect("key");
        let generic = |text: &str| object_store::Error::Generic {
            store: "S3",
            source: text.to_owned().into(),
        };
        let denied = object_store::Error::PermissionDenied {
            path: "k".into(),
            source: "AccessDenied".into(),
        };
        let cases = [
            (denied, UploadFault::Refused),
            (generic("404 NoSuchBucket"), UploadFault::Refused),
            (generic("503 SlowDown"), UploadFault::Store),
        ];
        for (error, fault) in cases {
            let io = bucket.store_error("uploading", &key, error);
            assert_eq!(UploadFault::of(&io), Some(fault), "{io}");
        }
        let local = bucket.local_copy_changed(&key, "changed".into());
        assert_eq!(UploadFault::of(&local), Some(UploadFault::LocalCopy));
        assert_eq!(UploadFault::of(&io::Error::other("disk")), None);
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("c/Hd/0_0.MP4"), "video/mp4");
        assert_eq!(content_type("c/meeting.json"), "application/json");
        assert_eq!(content_type("c/Aux/x"), "application/octet-stream");
    }

    #[test]
    fn store_errors_keep_their_kind() {
        let config = s3("p/");
        let bucket = Bucket::new(&config, None).expect("client");
        let key = bucket.key("k").expect("key");
        let not_found = object_store::Error::NotFound {
            path: "p/k".into(),
            source: "gone".into(),
        };
        let io = bucket.store_error("checking", &key, not_found);
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
        let denied = object_store::Error::PermissionDenied {
            path: "p/k".into(),
            source: "InvalidAccessKeyId".into(),
        };
        let io = bucket.store_error("checking", &key, denied);
        assert_eq!(io.kind(), io::ErrorKind::PermissionDenied);
        let text = crate::telemetry::error_chain(&io);
        assert!(text.starts_with("checking s3://b/p/k failed: "), "{text}");
        assert_eq!(text.matches("InvalidAccessKeyId").count(), 1, "{text}");
    }
}
