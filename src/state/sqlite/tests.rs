use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread;
use std::time::Instant;

use super::*;
use crate::state::{SLED_MIGRATION_KEY, StateStoreExt, get_json, put_json};

/// Long enough that a waiting open only gives up when something is broken.
const WAIT: Duration = Duration::from_secs(30);

fn state_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(".ferry");
    (tmp, dir)
}

fn journal_mode(dir: &Path) -> String {
    let conn = Connection::open(dir.join(DB_FILE)).unwrap();
    conn.query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap()
}

#[test]
fn first_open_creates_the_directory_its_ignore_file_and_the_layout_version() {
    let (_tmp, dir) = state_dir();
    let store = SqliteStore::open(&dir, WAIT).unwrap();
    assert_eq!(fs::read_to_string(dir.join(".gitignore")).unwrap(), "*\n");
    assert_eq!(get_json::<u64>(&store, LAYOUT_KEY).unwrap(), Some(1));
    assert_eq!(store.dir(), dir);
    assert!(dir.join(DB_FILE).is_file());
    assert_eq!(journal_mode(&dir), "wal");
    assert!(!dir.join(sled_import::SLED_DIR).exists());
}

#[test]
fn an_existing_ignore_file_is_left_alone() {
    let (_tmp, dir) = state_dir();
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(".gitignore"), "# mine\n*\n").unwrap();
    drop(SqliteStore::open(&dir, WAIT).unwrap());
    assert_eq!(
        fs::read_to_string(dir.join(".gitignore")).unwrap(),
        "# mine\n*\n"
    );
}

#[test]
fn stores_open_at_once_see_each_others_commits() {
    let (_tmp, dir) = state_dir();
    let first = SqliteStore::open(&dir, WAIT).unwrap();
    let second = SqliteStore::open(&dir, WAIT).unwrap();
    put_json(&first, b"from/first", &1).unwrap();
    assert_eq!(get_json::<u32>(&second, b"from/first").unwrap(), Some(1));
    second
        .transaction(|txn| txn.put(b"from/second", b"2"))
        .unwrap();
    assert_eq!(first.get(b"from/second").unwrap(), Some(b"2".to_vec()));
    let swapped = first
        .compare_and_swap(b"from/second", Some(b"2"), Some(b"3"))
        .unwrap();
    assert_eq!(swapped, Ok(()));
    assert_eq!(
        second
            .compare_and_swap(b"from/second", Some(b"2"), None)
            .unwrap(),
        Err(Some(b"3".to_vec()))
    );
}

#[test]
fn writers_in_threads_are_serialized() {
    let (_tmp, dir) = state_dir();
    let store = SqliteStore::open(&dir, WAIT).unwrap();
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let dir = dir.clone();
            thread::spawn(move || {
                // Half the writers share nothing with the others but the file.
                let own = SqliteStore::open(&dir, WAIT).unwrap();
                for _ in 0..25 {
                    own.transaction(|txn| crate::state::next_seq(txn, b"seq/n"))
                        .unwrap();
                }
            })
        })
        .collect();
    for _ in 0..25 {
        store
            .transaction(|txn| crate::state::next_seq(txn, b"seq/n"))
            .unwrap();
    }
    for writer in writers {
        writer.join().unwrap();
    }
    let counter = store.get(b"seq/n").unwrap().unwrap();
    assert_eq!(counter, 125u64.to_be_bytes());
}

/// Tells [`hold_a_write_transaction_for_parent`] which directory to hold.
const HOLD_ENV: &str = "FERRY_TEST_HOLD_STATE_DIR";

/// What the child prints once it holds the write lock.
const HOLDING: &str = "holding a write transaction";

/// A child process that holds a write transaction open until its stdin closes.
struct Holder {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Holder {
    fn spawn(dir: &Path) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "state::sqlite::tests::hold_a_write_transaction_for_parent",
            ])
            .args(["--ignored", "--nocapture", "--test-threads=1"])
            .env(HOLD_ENV, dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        // libtest prints the test's name on the same line before the test's own output. Should
        // the child fail, dropping `child` closes its stdin and lets it exit.
        let mut line = String::new();
        while stdout.read_line(&mut line).unwrap() > 0 && !line.trim_end().ends_with(HOLDING) {
            line.clear();
        }
        assert!(
            line.trim_end().ends_with(HOLDING),
            "the child did not report holding the state"
        );
        Holder { child, stdout }
    }

    fn id(&self) -> u32 {
        self.child.id()
    }

    /// Closes the child's stdin and waits for it to exit.
    fn release(&mut self) {
        drop(self.child.stdin.take());
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "the child failed: {status}\n{rest}");
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Not a test of its own: the child half of
/// [`a_writer_waits_for_another_process_and_readers_do_not`].
#[test]
#[ignore = "run as a child process by another test"]
fn hold_a_write_transaction_for_parent() {
    let Some(dir) = std::env::var_os(HOLD_ENV) else {
        return;
    };
    let store = SqliteStore::open(Path::new(&dir), WAIT).unwrap();
    put_json(&store, b"committed", &true).unwrap();
    store
        .transaction(|txn| {
            txn_put(txn, b"child", &std::process::id())?;
            println!("{HOLDING}");
            let mut rest = Vec::new();
            std::io::stdin().read_to_end(&mut rest).unwrap();
            Ok(())
        })
        .unwrap();
}

fn txn_put(txn: &mut dyn Txn, key: &[u8], value: &u32) -> Result<(), StateError> {
    crate::state::txn_put_json(txn, key, value)
}

#[test]
fn a_writer_waits_for_another_process_and_readers_do_not() {
    let (_tmp, dir) = state_dir();
    let mut holder = Holder::spawn(&dir);
    // Readers go on while the child holds the write lock, and see only committed data.
    let reader = SqliteStore::open(&dir, WAIT).unwrap();
    assert_eq!(get_json::<bool>(&reader, b"committed").unwrap(), Some(true));
    assert_eq!(reader.get(b"child").unwrap(), None);
    // A writer with a short wait gives up, naming the directory.
    let impatient = SqliteStore::open(&dir, Duration::from_millis(30)).unwrap();
    let err = impatient
        .transaction(|txn| txn.put(b"impatient", b"x"))
        .unwrap_err();
    assert!(
        matches!(&err, StateError::Busy { path, .. } if path == &dir),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with(&format!("failed to use state directory {}", dir.display())),
        "{err}"
    );
    let waiter = {
        let dir = dir.clone();
        thread::spawn(move || {
            let store = SqliteStore::open(&dir, WAIT)?;
            store.transaction(|txn| crate::state::txn_get_json::<u32>(txn, b"child"))
        })
    };
    // Give the waiter time to start waiting; it cannot finish while the child holds the lock.
    thread::sleep(Duration::from_millis(100));
    assert!(
        !waiter.is_finished(),
        "wrote while another process held the write lock"
    );
    holder.release();
    assert_eq!(waiter.join().unwrap().unwrap(), Some(holder.id()));
}

#[test]
fn a_read_sees_one_snapshot_while_another_store_commits() {
    let (_tmp, dir) = state_dir();
    let reader = SqliteStore::open(&dir, WAIT).unwrap();
    let writer = SqliteStore::open(&dir, WAIT).unwrap();
    put_json(&writer, b"n", &1).unwrap();
    let (before, after) = reader
        .read(|txn| {
            let before = crate::state::txn_get_json::<u32>(txn, b"n")?;
            // Another connection commits in the middle of the read…
            put_json(&writer, b"n", &2)?;
            let after = crate::state::txn_get_json::<u32>(txn, b"n")?;
            Ok::<_, StateError>((before, after))
        })
        .unwrap();
    // …and the read goes on seeing the state it started with, without waiting for it.
    assert_eq!((before, after), (Some(1), Some(1)));
    assert_eq!(get_json::<u32>(&reader, b"n").unwrap(), Some(2));
}

#[test]
fn a_read_does_not_wait_for_another_process_writing() {
    let (_tmp, dir) = state_dir();
    let _holder = Holder::spawn(&dir);
    let reader = SqliteStore::open(&dir, Duration::from_millis(30)).unwrap();
    let committed = reader
        .read(|txn| crate::state::txn_get_json::<bool>(txn, b"committed"))
        .unwrap();
    assert_eq!(committed, Some(true));
}

#[test]
fn a_newer_layout_is_refused_naming_both_versions() {
    let (_tmp, dir) = state_dir();
    let store = SqliteStore::open(&dir, WAIT).unwrap();
    put_json(&store, LAYOUT_KEY, &7u64).unwrap();
    drop(store);
    let err = SqliteStore::open(&dir, WAIT).unwrap_err();
    assert!(
        matches!(
            err,
            StateError::LayoutTooNew {
                found: 7,
                expected: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "failed to open state directory {}: its layout version 7 is newer than version 1 \
             this ferry understands; use a newer ferry",
            dir.display()
        )
    );
}

#[test]
fn data_without_a_layout_version_is_migrated() {
    let (_tmp, dir) = state_dir();
    let store = SqliteStore::open(&dir, WAIT).unwrap();
    store
        .transaction(|txn| {
            txn.delete(LAYOUT_KEY)?;
            txn.put(b"promotion/1", b"{}")
        })
        .unwrap();
    drop(store);
    let store = SqliteStore::open(&dir, WAIT).unwrap();
    assert_eq!(
        get_json::<u64>(&store, LAYOUT_KEY).unwrap(),
        Some(LAYOUT_VERSION)
    );
    assert_eq!(store.get(b"promotion/1").unwrap(), Some(b"{}".to_vec()));
}

/// Writes a sled database into `<dir>/sled` as earlier releases did.
fn write_sled(dir: &Path, pairs: &[(&[u8], &[u8])]) {
    fs::create_dir_all(dir).unwrap();
    let db = sled::Config::new()
        .path(dir.join(sled_import::SLED_DIR))
        .open()
        .unwrap();
    for (key, value) in pairs {
        db.insert(key, *value).unwrap();
    }
    db.flush().unwrap();
}

const SLED_PAIRS: [(&[u8], &[u8]); 4] = [
    (b"meta/layout", b"1"),
    (b"v1/promotion/p-000001", b"{\"state\":\"succeeded\"}"),
    (b"v1/seq/promotion", &[0, 0, 0, 0, 0, 0, 0, 1]),
    (&[0xff, 0x00], b"binary key"),
];

fn assert_holds_sled_pairs(store: &SqliteStore) {
    for (key, value) in SLED_PAIRS {
        assert_eq!(store.get(key).unwrap().as_deref(), Some(value));
    }
}

#[test]
fn a_sled_database_is_copied_once_and_moved_aside() {
    let (_tmp, dir) = state_dir();
    write_sled(&dir, &SLED_PAIRS);
    let store = SqliteStore::open(&dir, WAIT).unwrap();
    assert_holds_sled_pairs(&store);
    assert_eq!(
        get_json::<serde_json::Value>(&store, SLED_MIGRATION_KEY).unwrap(),
        Some(serde_json::json!({"keys": 4}))
    );
    assert!(!dir.join("sled").exists());
    assert!(dir.join("sled.migrated").is_dir());
    assert_eq!(store.scan_prefix(b"").unwrap().len(), SLED_PAIRS.len() + 1);
    drop(store);
    let store = SqliteStore::open(&dir, WAIT).unwrap();
    assert_holds_sled_pairs(&store);
}

#[test]
fn a_migration_killed_before_its_commit_runs_again() {
    let (_tmp, dir) = state_dir();
    write_sled(&dir, &SLED_PAIRS);
    // What a process killed during the copy leaves: the database, in WAL mode, with an empty
    // table (the copy's transaction never committed).
    {
        let conn = connect(&dir.join(DB_FILE), WAIT).unwrap();
        enable_wal(&conn).map_err(|_| "wal").unwrap();
        conn.execute(CREATE_TABLE, []).unwrap();
    }
    let store = SqliteStore::open(&dir, WAIT).unwrap();
    assert_holds_sled_pairs(&store);
    assert!(!dir.join("sled").exists());
}

#[test]
fn a_migration_killed_after_its_commit_only_moves_sled_aside() {
    let (_tmp, dir) = state_dir();
    write_sled(&dir, &SLED_PAIRS);
    let store = SqliteStore::open(&dir, WAIT).unwrap();
    put_json(&store, b"v1/written-after-migration", &true).unwrap();
    drop(store);
    // What a process killed between the commit and the rename leaves: sled still in place.
    fs::rename(dir.join("sled.migrated"), dir.join("sled")).unwrap();
    let store = SqliteStore::open(&dir, WAIT).unwrap();
    assert_holds_sled_pairs(&store);
    assert_eq!(
        get_json::<bool>(&store, b"v1/written-after-migration").unwrap(),
        Some(true)
    );
    assert!(!dir.join("sled").exists());
    assert!(dir.join("sled.migrated").is_dir());
}

#[test]
fn a_sled_database_without_a_layout_version_is_migrated_from_version_0() {
    let (_tmp, dir) = state_dir();
    write_sled(&dir, &SLED_PAIRS[1..]);
    let store = SqliteStore::open(&dir, WAIT).unwrap();
    assert_eq!(
        get_json::<u64>(&store, LAYOUT_KEY).unwrap(),
        Some(LAYOUT_VERSION)
    );
    assert_eq!(
        store.get(SLED_PAIRS[1].0).unwrap().as_deref(),
        Some(SLED_PAIRS[1].1)
    );
}

#[test]
fn sled_beside_data_of_its_own_is_refused_and_left_alone() {
    let (_tmp, dir) = state_dir();
    let store = SqliteStore::open(&dir, WAIT).unwrap();
    put_json(&store, b"v1/mine", &1).unwrap();
    drop(store);
    write_sled(&dir, &SLED_PAIRS);
    let err = SqliteStore::open(&dir, WAIT).unwrap_err();
    assert!(matches!(err, StateError::SledConflict { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "failed to migrate {}: the state directory already holds data of its own; move one \
             of the two aside",
            dir.join("sled").display()
        )
    );
    assert!(dir.join("sled").is_dir());
}

#[test]
fn a_newer_layout_in_sled_is_copied_and_then_refused() {
    let (_tmp, dir) = state_dir();
    write_sled(&dir, &[(b"meta/layout", b"9")]);
    let err = SqliteStore::open(&dir, WAIT).unwrap_err();
    assert!(
        matches!(err, StateError::LayoutTooNew { found: 9, .. }),
        "{err}"
    );
    assert!(dir.join("sled.migrated").is_dir());
}

/// Prints how long the store's operations take; run with
/// `cargo test --lib state::sqlite::tests::timings -- --ignored --nocapture`.
#[test]
#[ignore = "prints timings, asserts nothing about them"]
fn timings() {
    let (_tmp, dir) = state_dir();
    let started = Instant::now();
    let store = SqliteStore::open(&dir, WAIT).unwrap();
    let create = started.elapsed();
    store
        .transaction(|txn| {
            for i in 0..10_000u32 {
                txn.put(format!("promotion/{i:020}").as_bytes(), b"{}")?;
            }
            Ok(())
        })
        .unwrap();
    drop(store);
    let rounds = 50;
    let mut took = [Duration::ZERO; 4];
    for i in 0..rounds {
        let started = Instant::now();
        let store = SqliteStore::open(&dir, WAIT).unwrap();
        took[0] += started.elapsed();
        let started = Instant::now();
        let key = format!("round/{i}");
        store
            .transaction(|txn| txn.put(key.as_bytes(), b"x"))
            .unwrap();
        took[1] += started.elapsed();
        let started = Instant::now();
        store.scan_prefix_rev(b"promotion/", 20).unwrap();
        took[2] += started.elapsed();
        let started = Instant::now();
        drop(store);
        took[3] += started.elapsed();
    }
    println!("create: {create:?}");
    let names = [
        "open (10,000 keys)",
        "transaction (durable)",
        "scan_prefix_rev 20",
        "close",
    ];
    for (name, total) in names.iter().zip(took) {
        println!("{name}: {:?}", total / rounds);
    }
}
