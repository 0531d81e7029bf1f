//! SIGKILL during an upload to the bucket: the real daemon killed while a
//! multipart upload is on its way. Nothing may appear under the final key,
//! the restart must upload the kept, verified copy (no second download, no
//! token spent) and abort the upload the kill left open.

use meeting_archiver::simulator::SimMeeting;

use crate::helpers::*;

const MIB: u64 = 1024 * 1024;
/// Five parts; at 4 MiB/s through the proxy, about 10 s of upload.
const SIZE: u64 = 40 * MIB;
const RATE: u64 = 4 * MIB;
/// Request bytes through the proxy before the kill: parts are on their way.
const KILL_AFTER: u64 = 12 * MIB;

/// A bucket behind a throttled proxy and a simulator with one large file;
/// [`upload_under_way`] also returns the daemon, caught mid-upload.
struct UploadUnderWay {
    moto: Moto,
    proxy: FaultProxy,
    env: TestEnv,
    config: std::path::PathBuf,
}

async fn upload_under_way(conf: &str) -> Option<(UploadUnderWay, DaemonProcess)> {
    let moto = Moto::start().await?;
    let proxy = FaultProxy::start(moto.addr).await;
    let meeting = SimMeeting::standard(conf, "Stopped while uploading", 1, &["Hd"], SIZE as usize);
    let env = TestEnv::start(scenario(vec![meeting])).await;
    let config = env.write_config(&s3_config(&env, proxy.addr));
    proxy.throttle(RATE);
    let daemon = DaemonProcess::spawn(&config, &[]);
    until("the upload to be under way", async || {
        proxy.forwarded() >= KILL_AFTER
    })
    .await;
    let run = UploadUnderWay {
        moto,
        proxy,
        env,
        config,
    };
    Some((run, daemon))
}

/// Restarts the daemon at full speed and checks that it finishes the
/// upload from the kept copy: no second download.
async fn restart_finishes(run: &UploadUnderWay) {
    run.proxy.throttle(0);
    let daemon = DaemonProcess::spawn(&run.config, &[]);
    until_done(&run.env, 1).await;
    daemon.signal("TERM");
    let (code, stderr) = daemon.exit().await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_bucket_complete(&run.env, &run.moto, &run.env.meetings).await;
    let stats = run.env.sim.stats();
    assert_eq!(
        stats.download_requests, 1,
        "uploaded from the kept copy: {stats:?}"
    );
    assert_eq!(stats.spent_token_reuses, 0);
}

#[tokio::test]
async fn a_sigkill_during_an_upload_leaves_no_object_and_the_restart_finishes_it() {
    let Some((run, daemon)) = upload_under_way("d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4").await else {
        return;
    };
    let stderr = daemon.kill();
    let rel = object_rel(&run.env, &run.env.meetings[0], 0);
    assert_eq!(run.moto.object(&rel).await, None, "no object yet\n{stderr}");
    assert_eq!(
        run.moto.unfinished_uploads().await,
        1,
        "the kill left an upload open"
    );
    assert_eq!(
        partial_files(&run.env.archive_dir()).len(),
        1,
        "the verified copy is kept"
    );
    restart_finishes(&run).await;
}

#[tokio::test]
async fn a_sigterm_during_an_upload_aborts_it_at_a_part_and_the_restart_finishes_it() {
    let Some((run, daemon)) = upload_under_way("d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5").await else {
        return;
    };
    daemon.signal("TERM");
    let (code, stderr) = daemon.exit().await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        !stderr.contains("did not stop within"),
        "stopped at a part: {stderr}"
    );
    assert_eq!(
        run.moto.unfinished_uploads().await,
        0,
        "the upload was aborted"
    );
    assert_eq!(
        partial_files(&run.env.archive_dir()).len(),
        1,
        "the verified copy is kept"
    );
    restart_finishes(&run).await;
}
