//! `check-config --online` for an S3 target: the bucket exists and takes
//! the credentials, a probe object can be put, checked by HEAD and
//! deleted (what archiving needs), a multipart upload can be started, sent
//! a part and aborted (files over 6 MiB need one), and it cannot be read without
//! credentials (no public ACL or policy on the prefix). Each step prints ok
//! or what failed; secrets never appear.

use sha2::{Digest, Sha256};

use super::preflight::report;
use crate::archive::Bucket;
use crate::config::{Config, S3Config};
use crate::telemetry::error_chain;

/// The probe's content.
const PROBE: &[u8] = b"meeting-archiver check-config --online probe\n";

/// Runs the bucket's steps; true when there is no bucket or every step passed.
pub async fn check_bucket(config: &Config) -> bool {
    let Some(s3) = config.archive.s3() else {
        return true;
    };
    let ca_file = config.tls.ca_file.as_deref();
    let bucket = match Bucket::new(s3, ca_file) {
        Ok(bucket) => bucket,
        Err(e) => return report("bucket", Err(error_chain(&e))),
    };
    let name = bucket.describe("");
    let reached = bucket
        .check_access()
        .await
        .map(|()| "exists, and the credentials are accepted".to_owned())
        .map_err(|e| error_chain(&e));
    if !report(&format!("bucket {name}"), reached) {
        println!("the remaining bucket steps need a bucket that takes the credentials");
        return false;
    }
    let probe = format!(".meeting-archiver-probe-{}", uuid::Uuid::new_v4().simple());
    let written = probe_object(&bucket, &probe).await;
    let mut passed = report("probe object (put, head)", written);
    passed &= report("no public access", private(s3, ca_file, &probe).await);
    let multipart = bucket
        .probe_multipart(&probe)
        .await
        .map(|()| "started, one 5 MiB part sent, aborted".to_owned())
        .map_err(|e| error_chain(&e));
    passed &= report("multipart upload", multipart);
    let deleted = bucket
        .delete(&probe)
        .await
        .map(|()| "the probe object was deleted".to_owned())
        .map_err(|e| error_chain(&e));
    passed &= report("probe object (delete)", deleted);
    passed
}

/// Puts the probe and checks that HEAD reports its size and SHA-256.
async fn probe_object(bucket: &Bucket, probe: &str) -> Result<String, String> {
    bucket
        .put_small(probe, PROBE.to_vec())
        .await
        .map_err(|e| error_chain(&e))?;
    let sha = hex::encode(Sha256::digest(PROBE));
    match bucket.head(probe).await {
        Ok(facts) if facts.size == PROBE.len() as u64 && facts.sha256.as_deref() == Some(&sha) => {
            Ok(format!("{} written and checked", bucket.describe(probe)))
        }
        Ok(facts) => Err(format!(
            "the store reports {} bytes and SHA-256 {:?} for the {} bytes written",
            facts.size,
            facts.sha256,
            PROBE.len()
        )),
        Err(e) => Err(error_chain(&e)),
    }
}

/// The probe must not be readable by an unsigned request.
async fn private(
    s3: &S3Config,
    ca_file: Option<&std::path::Path>,
    probe: &str,
) -> Result<String, String> {
    let anonymous = Bucket::anonymous(s3, ca_file).map_err(|e| error_chain(&e))?;
    match anonymous.head(probe).await {
        Ok(_) => Err(format!(
            "anyone can read {} without credentials: remove the public ACL or bucket policy \
             on the prefix (recordings are confidential)",
            anonymous.describe(probe)
        )),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Ok("an unsigned request for the probe object was refused".to_owned())
        }
        Err(e) => Ok(format!(
            "an unsigned request for the probe object did not get it ({})",
            error_chain(&e)
        )),
    }
}
