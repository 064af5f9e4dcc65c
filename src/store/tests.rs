//! Store behaviour: indexes, counts, outbox, group commit, version guard, file checks.

use super::*;
use crate::payments::{Event, Flags, Payment, Status};

pub(super) fn payment(seq: u64, reference: &str) -> Payment {
    Payment {
        id: format!("pay_{seq:032x}"),
        seq,
        reference: reference.into(),
        description: None,
        address: format!("bcrt1qaddress{seq}"),
        derivation_index: seq as u32,
        amount_sat: 1000,
        received_sat: 0,
        status: Status::Pending,
        confirmations: 0,
        txids: vec![],
        flags: Flags::default(),
        created_at: 100,
        updated_at: 100,
        expires_at: 200,
        first_seen_at: None,
        confirmed_at: None,
        covered_height: None,
        created_height: None,
        version: 1,
    }
}

pub(super) fn created(p: &Payment) -> Event {
    Event {
        at: p.created_at,
        from: None,
        to: Status::Pending,
        reason: "created".into(),
        txids: vec![],
    }
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db.redb")).unwrap();
    (dir, store)
}

fn create(store: &Store, p: &Payment) -> Outcome {
    store
        .commit_blocking(WriteBatch {
            create: Some((p.clone(), created(p))),
            ..Default::default()
        })
        .unwrap()
}

#[test]
fn created_payment_is_found_by_every_index_and_queued() {
    let (_d, s) = open();
    let p = payment(1, "order-1");
    assert_eq!(create(&s, &p), Outcome::Committed);
    assert_eq!(s.payment(&p.id).unwrap().unwrap(), p);
    assert_eq!(s.payment_by_address(&p.address).unwrap().unwrap(), p);
    assert_eq!(s.payment_by_reference("order-1").unwrap().unwrap(), p);
    assert_eq!(s.events(1).unwrap(), vec![created(&p)]);
    assert_eq!(s.outbox_stats().unwrap(), (1, Some(100)));
    let counts = s.status_counts().unwrap();
    assert!(counts.contains(&(Status::Pending, 1)));
    assert_eq!(s.last_seq().unwrap(), 1);
}

#[test]
fn duplicate_reference_returns_the_existing_payment() {
    let (_d, s) = open();
    let p = payment(1, "same");
    create(&s, &p);
    let mut q = payment(2, "same");
    q.address = "bcrt1qother".into();
    assert_eq!(create(&s, &q), Outcome::DuplicateReference(Box::new(p)));
    assert!(s.payment(&q.id).unwrap().is_none());
    assert_eq!(s.outbox_stats().unwrap().0, 1);
}

#[test]
fn stale_update_is_refused_and_fresh_one_moves_counts() {
    let (_d, s) = open();
    let p = payment(1, "r");
    create(&s, &p);
    let mut stale = p.clone();
    stale.version = 3;
    let err = s
        .commit_blocking(WriteBatch {
            updates: vec![(stale, vec![])],
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { found: 1, .. }),
        "{err}"
    );
    let mut next = p.clone();
    next.version = 2;
    next.status = Status::Unconfirmed;
    s.commit_blocking(WriteBatch {
        updates: vec![(next.clone(), vec![])],
        ..Default::default()
    })
    .unwrap();
    let counts = s.status_counts().unwrap();
    assert!(counts.contains(&(Status::Pending, 0)));
    assert!(counts.contains(&(Status::Unconfirmed, 1)));
    assert_eq!(s.outbox_stats().unwrap().0, 2);
    let items = s.outbox_peek(10).unwrap();
    assert_eq!(items[1].1.version, 2);
    s.commit_blocking(WriteBatch {
        outbox_done: items.iter().map(|(k, _)| *k).collect(),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(s.outbox_stats().unwrap(), (0, None));
}

#[test]
fn list_pages_newest_first_with_filters() {
    let (_d, s) = open();
    for i in 1..=5 {
        create(&s, &payment(i, &format!("r{i}")));
    }
    let (page, next) = s
        .list_payments(&ListQuery {
            limit: 2,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.iter().map(|p| p.seq).collect::<Vec<_>>(), vec![5, 4]);
    let (page, next) = s
        .list_payments(&ListQuery {
            limit: 2,
            before_seq: next,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.iter().map(|p| p.seq).collect::<Vec<_>>(), vec![3, 2]);
    let (page, next) = s
        .list_payments(&ListQuery {
            limit: 2,
            before_seq: next,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.iter().map(|p| p.seq).collect::<Vec<_>>(), vec![1]);
    assert_eq!(next, None);
    let (page, _) = s
        .list_payments(&ListQuery {
            limit: 10,
            status: Some(Status::Confirmed),
            ..Default::default()
        })
        .unwrap();
    assert!(page.is_empty());
    let (page, _) = s
        .list_payments(&ListQuery {
            limit: 10,
            reference: Some("r3".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_all_commit() {
    let (_d, s) = open();
    let mut tasks = Vec::new();
    for i in 1..=200u64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let p = payment(i, &format!("c{i}"));
            s.commit(WriteBatch {
                create: Some((p.clone(), created(&p))),
                ..Default::default()
            })
            .await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), Outcome::Committed);
    }
    assert_eq!(s.all_payments().unwrap().len(), 200);
    assert!(s.status_counts().unwrap().contains(&(Status::Pending, 200)));
}

#[test]
fn reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let p = payment(1, "r");
    {
        let s = Store::open(&path).unwrap();
        create(&s, &p);
    }
    // The writer thread holds the database until its channel closes; wait for release.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let s = loop {
        match Store::open(&path) {
            Ok(s) => break s,
            Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(s.payment(&p.id).unwrap().unwrap(), p);
}

#[test]
fn foreign_file_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-ours");
    std::fs::write(&path, b"this is a text file, not a database").unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Foreign { .. }), "{err}");
    assert!(err.to_string().contains("not a snakkaz-pay database"));

    // A valid redb file written by someone else is refused too.
    let other = dir.path().join("other.redb");
    {
        let db = redb::Database::create(&other).unwrap();
        let w = db.begin_write().unwrap();
        w.open_table(redb::TableDefinition::<&str, u64>::new("their_table"))
            .unwrap()
            .insert("k", 1)
            .unwrap();
        w.commit().unwrap();
    }
    let err = Store::open(&other).unwrap_err();
    assert!(matches!(err, StoreError::Foreign { .. }), "{err}");
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        let w = db.begin_write().unwrap();
        {
            let mut m = w.open_table(tables::META).unwrap();
            m.insert("app", tables::APP_MAGIC).unwrap();
            m.insert("schema_version", 99u64.to_le_bytes().as_slice())
                .unwrap();
        }
        w.commit().unwrap();
    }
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
}

#[test]
fn database_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let (d, _s) = open();
    let mode = std::fs::metadata(d.path().join("db.redb"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// Opens, waiting for the previous store's writer thread to release the file.
fn reopen(path: &std::path::Path) -> Result<Store, StoreError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match Store::open(path) {
            Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            r => return r,
        }
    }
}

#[test]
fn open_errors_say_what_is_wrong_and_a_refused_start_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();

    // A directory where the file should be.
    let err = Store::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("is a directory"), "{err}");

    // Someone else's file, a newer schema and a truncated database are refused, and
    // left exactly as they were.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, b"this is a text file, not a database").unwrap();
    let newer = dir.path().join("newer.redb");
    {
        let db = redb::Database::create(&newer).unwrap();
        let w = db.begin_write().unwrap();
        {
            let mut m = w.open_table(tables::META).unwrap();
            m.insert("app", tables::APP_MAGIC).unwrap();
            m.insert("schema_version", 99u64.to_le_bytes().as_slice())
                .unwrap();
        }
        w.commit().unwrap();
    }
    let truncated = dir.path().join("truncated.redb");
    {
        let s = Store::open(&truncated).unwrap();
        create(&s, &payment(1, "r"));
    }
    drop(reopen(&truncated).unwrap());
    std::thread::sleep(std::time::Duration::from_millis(200));
    let len = std::fs::metadata(&truncated).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&truncated)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    for (path, expected) in [
        (&text, "another program's file"),
        (&newer, "upgrade snakkaz-pay"),
        (&truncated, "is damaged or truncated"),
    ] {
        let before = std::fs::read(path).unwrap();
        let err = reopen(path).unwrap_err().to_string();
        assert!(err.contains(expected), "{}: {err}", path.display());
        assert!(
            !err.contains("new ELECTRUM_WALLET_PATH"),
            "never the advice to start over: {err}"
        );
        assert!(
            std::fs::read(path).unwrap() == before,
            "{} must be left unchanged",
            path.display()
        );
    }
}

#[test]
fn an_interrupted_first_start_never_leaves_an_unopenable_file() {
    let dir = tempfile::tempdir().unwrap();
    // What a kill during creation can leave: the temporary file, or (older versions) an
    // empty database file.
    let path = dir.path().join("db.redb");
    std::fs::write(dir.path().join(".db.redb.creating"), b"half").unwrap();
    let s = Store::open(&path).unwrap();
    create(&s, &payment(1, "r"));
    assert!(!dir.path().join(".db.redb.creating").exists());
    drop(s);

    let empty = dir.path().join("empty.redb");
    std::fs::write(&empty, b"").unwrap();
    let s = Store::open(&empty).unwrap();
    assert_eq!(s.last_seq().unwrap(), 0);
}
