//! The S3-compatible archive target (Huawei OBS, MinIO, Ceph, AWS S3),
//! through `object_store`. A verified partial file is streamed up (one PUT
//! up to [`PART_SIZE`], a multipart upload above it, at most
//! [`PARTS_IN_FLIGHT`] parts in memory), with `x-amz-checksum-sha256` on
//! every request so the store checks what it receives, and the file's
//! SHA-256 and meeting in the object's metadata. The bytes are hashed again
//! as they are read: if they are not the verified ones, the upload is
//! aborted before it completes, so no wrong object ever appears under the
//! final key (a multipart upload is published atomically by its completion).

use std::io;
use std::path::Path;
use std::sync::Arc;

use futures_util::StreamExt;
use object_store::aws::{AmazonS3Builder, Checksum};
use object_store::path::Path as Key;
use object_store::{
    Attribute, Attributes, GetOptions, ObjectStore, ObjectStoreExt, PutMultipartOptions,
    PutOptions, PutPayload, WriteMultipart,
};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::config::S3Config;

/// Files up to this size go up in one PUT; larger ones in parts this size.
pub const PART_SIZE: usize = 8 << 20;
/// Parts uploaded at once: memory is bounded by `(PARTS_IN_FLIGHT + 1) * PART_SIZE`.
pub const PARTS_IN_FLIGHT: usize = 2;
/// Object metadata (`x-amz-meta-sha256`): the file's hex SHA-256.
pub const META_SHA256: &str = "sha256";
/// Object metadata (`x-amz-meta-meeting`): the conference UUID.
pub const META_MEETING: &str = "meeting";

/// The key [`Bucket::check_access`] asks for, under the prefix.
const ACCESS_CHECK: &str = ".meeting-archiver-access-check";

/// The store refused the credentials; the cause says how.
#[derive(Debug, thiserror::Error)]
#[error(
    "the bucket refused the credentials: check archive.s3.access_key_id and \
     secret_access_key (or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), and that the key \
     may get objects under the prefix"
)]
pub struct AccessRefused(#[source] io::Error);

/// Errors of the bucket; each names the object and leaves the cause to `source()`.
#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    /// The store refused or failed a request.
    #[error("{action} s3://{bucket}/{key} failed")]
    Store {
        /// What was being done ("uploading", "checking").
        action: &'static str,
        /// The bucket.
        bucket: String,
        /// The object key.
        key: String,
        /// What object_store said (status and the store's answer).
        source: object_store::Error,
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
    /// An archive-relative path that cannot be an object key.
    #[error("refusing object key {key:?}")]
    BadKey {
        /// The key.
        key: String,
    },
}

impl BucketError {
    /// The error as an `io::Error` of the matching kind (callers branch on
    /// `NotFound` and `PermissionDenied`), keeping it as the source.
    fn into_io(self) -> io::Error {
        let kind = match &self {
            BucketError::Store { source, .. } => match source {
                object_store::Error::NotFound { .. } => io::ErrorKind::NotFound,
                object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. } => io::ErrorKind::PermissionDenied,
                _ => io::ErrorKind::Other,
            },
            BucketError::Mismatch { .. } => io::ErrorKind::InvalidData,
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
    store: Arc<dyn ObjectStore>,
    bucket: String,
    prefix: String,
}

impl Bucket {
    /// The bucket of a config. Builds a client; sends nothing.
    pub fn new(config: &S3Config) -> io::Result<Bucket> {
        Bucket::build(config, false)
    }

    /// The same bucket without credentials: what anyone on the network
    /// may do (`check-config --online` asks it to read the probe object).
    pub fn anonymous(config: &S3Config) -> io::Result<Bucket> {
        Bucket::build(config, true)
    }

    fn build(config: &S3Config, anonymous: bool) -> io::Result<Bucket> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_virtual_hosted_style_request(!config.path_style)
            .with_checksum_algorithm(Checksum::SHA256);
        if anonymous {
            builder = builder.with_skip_signature(true);
        } else {
            builder = builder
                .with_access_key_id(&config.access_key_id)
                .with_secret_access_key(config.secret_access_key.expose_secret());
        }
        if let Some(endpoint) = &config.endpoint {
            let text = endpoint.as_str().trim_end_matches('/');
            builder = builder
                .with_endpoint(text)
                .with_allow_http(endpoint.scheme() == "http");
        }
        let store = builder.build().map_err(|source| {
            let error = BucketError::Store {
                action: "configuring",
                bucket: config.bucket.clone(),
                key: config.prefix.clone(),
                source,
            };
            io::Error::new(io::ErrorKind::InvalidInput, error)
        })?;
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

    fn key(&self, rel: &str) -> Result<Key, BucketError> {
        let key = format!("{}{rel}", self.prefix);
        Key::parse(&key).map_err(|_| BucketError::BadKey { key })
    }

    fn store_error(
        &self,
        action: &'static str,
        key: &Key,
        source: object_store::Error,
    ) -> io::Error {
        BucketError::Store {
            action,
            bucket: self.bucket.clone(),
            key: key.to_string(),
            source,
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

    /// Writes a small object (a manifest) in one PUT.
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

    /// Uploads the local file `local` (which must hold `size` bytes with
    /// SHA-256 `sha256`) to `rel`, then checks by HEAD that the store holds
    /// it. Returns the bytes sent.
    pub async fn upload(
        &self,
        local: &Path,
        rel: &str,
        (size, sha256): (u64, &str),
        meeting: &str,
    ) -> io::Result<u64> {
        let key = self.key(rel).map_err(BucketError::into_io)?;
        let attributes = attributes(rel, sha256, Some(meeting));
        let mut file = tokio::fs::File::open(local).await?;
        if size <= PART_SIZE as u64 {
            let mut bytes = Vec::with_capacity(size as usize);
            (&mut file).take(size + 1).read_to_end(&mut bytes).await?;
            self.check_read(&key, &bytes, (size, sha256), Sha256::digest(&bytes).into())?;
            let options = PutOptions {
                attributes,
                ..PutOptions::default()
            };
            self.store
                .put_opts(&key, PutPayload::from(bytes), options)
                .await
                .map_err(|e| self.store_error("uploading", &key, e))?;
        } else {
            let options = PutMultipartOptions {
                attributes,
                ..PutMultipartOptions::default()
            };
            let upload = self
                .store
                .put_multipart_opts(&key, options)
                .await
                .map_err(|e| self.store_error("starting the upload of", &key, e))?;
            let mut parts = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            match self
                .stream_parts(&mut file, &mut parts, &key, (size, sha256))
                .await
            {
                Ok(()) => {
                    parts
                        .finish()
                        .await
                        .map_err(|e| self.store_error("completing the upload of", &key, e))?;
                }
                Err(e) => {
                    if let Err(abort) = parts.abort().await {
                        tracing::warn!(object = %self.describe(rel), error = %abort,
                            "cannot abort the unfinished upload; a lifecycle rule removes it");
                    }
                    return Err(e);
                }
            }
        }
        if !self.matches(rel, size, sha256).await? {
            let problem = "after the upload the store does not report the size and SHA-256 sent";
            return Err(self.mismatch(&key, problem.to_owned()));
        }
        Ok(size)
    }

    /// Feeds the file to the multipart upload, hashing what it reads.
    async fn stream_parts(
        &self,
        file: &mut tokio::fs::File,
        parts: &mut WriteMultipart,
        key: &Key,
        expected: (u64, &str),
    ) -> io::Result<()> {
        let mut buf = vec![0u8; 1 << 20];
        let (mut hasher, mut read) = (Sha256::new(), 0u64);
        loop {
            let n = file.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            read += n as u64;
            parts
                .wait_for_capacity(PARTS_IN_FLIGHT)
                .await
                .map_err(|e| self.store_error("uploading", key, e))?;
            parts.write(&buf[..n]);
        }
        let read_sha: [u8; 32] = hasher.finalize().into();
        if read != expected.0 || hex::encode(read_sha) != expected.1 {
            let problem = format!(
                "the local copy ({read} bytes) is not the verified file ({} bytes, SHA-256 {}); \
                 upload aborted",
                expected.0, expected.1
            );
            return Err(self.mismatch(key, problem));
        }
        Ok(())
    }

    fn check_read(
        &self,
        key: &Key,
        bytes: &[u8],
        (size, sha256): (u64, &str),
        read_sha: [u8; 32],
    ) -> io::Result<()> {
        if bytes.len() as u64 != size || hex::encode(read_sha) != sha256 {
            let problem = format!(
                "the local copy ({} bytes) is not the verified file ({size} bytes, SHA-256 \
                 {sha256}); upload refused",
                bytes.len()
            );
            return Err(self.mismatch(key, problem));
        }
        Ok(())
    }

    fn mismatch(&self, key: &Key, problem: String) -> io::Error {
        BucketError::Mismatch {
            bucket: self.bucket.clone(),
            key: key.to_string(),
            problem,
        }
        .into_io()
    }

    /// Whether the credentials and the bucket work: one HEAD of a key that
    /// need not exist (a 404 is the expected answer; 403 means the
    /// credentials or the bucket policy are wrong).
    pub async fn check_access(&self) -> io::Result<()> {
        match self.head(ACCESS_CHECK).await {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                AccessRefused(e),
            )),
            other => other.map(|_| ()),
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

/// The object's metadata and content type.
fn attributes(rel: &str, sha256: &str, meeting: Option<&str>) -> Attributes {
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

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("c/Hd/0_0.MP4"), "video/mp4");
        assert_eq!(content_type("c/meeting.json"), "application/json");
        assert_eq!(content_type("c/Aux/x"), "application/octet-stream");
    }

    #[test]
    fn store_errors_keep_their_kind() {
        let not_found = BucketError::Store {
            action: "checking",
            bucket: "b".into(),
            key: "k".into(),
            source: object_store::Error::NotFound {
                path: "k".into(),
                source: "gone".into(),
            },
        };
        assert_eq!(not_found.into_io().kind(), io::ErrorKind::NotFound);
        let denied = BucketError::Store {
            action: "checking",
            bucket: "b".into(),
            key: "k".into(),
            source: object_store::Error::PermissionDenied {
                path: "k".into(),
                source: "InvalidAccessKeyId".into(),
            },
        };
        let io = denied.into_io();
        assert_eq!(io.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(io.to_string(), "checking s3://b/k failed");
    }
}
