//! Integration tests: the archiver against the built-in simulator, over
//! real HTTP on 127.0.0.1 (API) and 127.0.0.2 (download host), and TLS
//! proxies on 127.0.0.3 for the trust settings.

mod helpers;

mod browse;
mod cli;
mod cloud_variants;
mod daemon;
mod deploy;
mod discovery;
mod faults;
mod faults_kill;
mod faults_length;
mod faults_local;
mod first_contact;
mod pipeline;
mod recovery;
mod retention;
mod review_findings;
mod s3;
mod s3_kill;
mod s3_ops;
mod scale;
mod service;
mod tls;
mod webhook;
