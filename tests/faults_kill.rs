//! Kill -9 mid-transfer: the real binary killed again and again while a
//! large file streams must resume each time from its last durable
//! checkpoint, with a fresh token, and still archive the file byte for byte.

use std::time::Instant;

use meeting_archiver::ledger::Ledger;
use meeting_archiver::simulator::{Faults, SimMeeting};

use crate::helpers::*;

const MIB: u64 = 1024 * 1024;
/// One 40 MiB recording, served at 2 MiB/s: 20 s of transfer.
const SIZE: u64 = 40 * MIB;
const RATE: u64 = 2 * MIB;
/// Bytes served between a start and its SIGKILL: 3.5 to 5.5 s of transfer,
/// so that the kills fall at different points between the 2 s checkpoints.
const KILL_AFTER: [u64; 4] = [9 * MIB, 7 * MIB, 11 * MIB, 8 * MIB];
/// What a kill may cost at most: bytes served over file bytes.
const MAX_RATIO: f64 = 1.8;

#[tokio::test]
async fn repeated_sigkills_resume_from_the_last_checkpoint_and_archive_the_file() {
    let mut scn = scenario(vec![SimMeeting::standard(
        "e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7",
        "Killed again and again",
        1,
        &["Hd"],
        SIZE as usize,
    )]);
    scn.faults = Faults {
        slow_bytes_per_sec: Some(RATE),
        ..Faults::default()
    };
    let env = TestEnv::start(scn).await;
    let config = env.write_config(&env.config());
    let started = Instant::now();
    for (kill, after) in KILL_AFTER.into_iter().enumerate() {
        let daemon = DaemonProcess::spawn(&config, &[]);
        let target = env.sim.stats().bytes_served + after;
        until("the transfer to move on before the kill", async || {
            env.sim.stats().bytes_served >= target
        })
        .await;
        let stderr = daemon.kill();
        assert_eq!(env.archived(), 0, "kill {kill}: nothing archived yet");
        let ledger = Ledger::open(&env.ledger_path(), false).expect("ledger opens");
        let resumable = ledger.resumable_partials().expect("resumable partials");
        assert_eq!(
            resumable.len(),
            1,
            "kill {kill}: a durable checkpoint is in the ledger\n{stderr}"
        );
    }
    let daemon = DaemonProcess::spawn(&config, &[]);
    until("the file archived after the last restart", async || {
        env.archived() == 1
    })
    .await;
    daemon.signal("TERM");
    let (code, stderr) = daemon.exit().await;
    let took = started.elapsed();
    assert_eq!(code, Some(0), "{stderr}");

    env.assert_archive_complete(&[]);
    let stats = env.sim.stats();
    let ratio = stats.bytes_served as f64 / SIZE as f64;
    eprintln!(
        "{} SIGKILLs: {} bytes served for {SIZE} file bytes, ratio {ratio:.3}, {took:.1?}",
        KILL_AFTER.len(),
        stats.bytes_served
    );
    assert_eq!(
        stats.spent_token_reuses, 0,
        "no spent token presented again"
    );
    assert!(
        stats.ranged_requests >= KILL_AFTER.len() as u64,
        "every restart resumed with Range: {stats:?}"
    );
    assert!(
        ratio < MAX_RATIO,
        "kills cost too much: ratio {ratio:.3}: {stats:?}"
    );
}
