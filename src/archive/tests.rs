//! The local archive folder: placing, digesting, metadata, the owner's lock.

use super::*;

#[tokio::test]
async fn place_moves_a_partial_into_place_and_digest_reads_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = Archive::open(dir.path(), "test").expect("open");
    let partial = archive.partial_path(FileId::new(7));
    std::fs::write(&partial, b"hello").expect("write");
    let file = Placement {
        rel: "conf/Hd/0_0.mp4",
        size: 5,
        sha256: "unused by a local placement",
        meeting: "conf",
        earlier_upload: None,
        resumed: false,
        journal: &NoJournal,
        cancel: None,
    };
    archive.place(&partial, &file).await.expect("place");
    assert!(dir.path().join("conf/Hd/0_0.mp4").is_file());
    assert!(!partial.exists());
    assert!(archive.exists("conf/Hd/0_0.mp4").await);
    let (size, sha) = archive.digest("conf/Hd/0_0.mp4").await.expect("digest");
    assert_eq!(size, 5);
    assert_eq!(
        sha,
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
}

#[test]
fn final_path_refuses_escapes() {
    let archive = Archive::read_only(Path::new("/srv/a"));
    for bad in ["../x", "/etc/passwd", "a/../../x", ".partial/1.part", ""] {
        assert!(archive.final_path(bad).is_err(), "{bad}");
    }
    assert!(archive.final_path("c/Hd/0_0.mp4").is_ok());
}

#[tokio::test]
async fn metadata_is_written_atomically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = Archive::open(dir.path(), "test").expect("open");
    archive
        .write_metadata("conf/meeting.json", b"{}".to_vec())
        .await
        .expect("write");
    assert_eq!(
        std::fs::read(dir.path().join("conf/meeting.json")).expect("read"),
        b"{}"
    );
    let read = archive.read_metadata("conf/meeting.json").await;
    assert_eq!(read.expect("read back"), Some(b"{}".to_vec()));
    assert_eq!(
        archive.read_metadata("README.txt").await.expect("none"),
        None
    );
    let leftovers = std::fs::read_dir(dir.path().join(PARTIAL_DIR))
        .expect("dir")
        .filter(|e| e.as_ref().is_ok_and(|e| e.file_name() != LOCK_NAME))
        .count();
    assert_eq!(leftovers, 0);
}

#[test]
fn a_second_owner_is_refused_with_the_first_ones_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = Archive::open(dir.path(), "ledger /a/ledger.sqlite3").expect("open");
    let second = Archive::open(dir.path(), "ledger /b/ledger.sqlite3");
    let message = match second {
        Err(e @ ArchiveError::InUse { .. }) => e.to_string(),
        other => panic!("expected InUse, got {other:?}"),
    };
    assert!(message.contains("ledger /a/ledger.sqlite3"), "{message}");
    assert!(
        message.contains(&format!("pid {}", std::process::id())),
        "{message}"
    );
    drop(first);
    Archive::open(dir.path(), "ledger /b/ledger.sqlite3").expect("free again");
}

#[test]
fn the_partial_area_is_private_and_strays_are_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let partial = dir.path().join(PARTIAL_DIR);
    std::fs::create_dir_all(&partial).expect("mkdir");
    std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(partial.join("meta-0123.tmp"), b"torn").expect("write");
    std::fs::write(partial.join("7.part"), b"resumable").expect("write");
    let archive = Archive::open(dir.path(), "test").expect("open");
    let mode = std::fs::metadata(&partial)
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    assert!(!partial.join("meta-0123.tmp").exists());
    assert_eq!(archive.partial_ids().expect("ids"), vec![FileId::new(7)]);
    archive.remove_partial(FileId::new(7)).expect("remove");
    archive
        .remove_partial(FileId::new(7))
        .expect("already gone is fine");
    assert!(archive.partial_ids().expect("ids").is_empty());
}
