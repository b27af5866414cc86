use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread;
use std::time::Instant;

use super::*;
use crate::state::{StateStore, StateStoreExt, put_json};

/// Long enough that a waiting open only gives up when something is broken.
const WAIT: Duration = Duration::from_secs(30);

fn state_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(".ferry");
    (tmp, dir)
}

#[test]
fn first_open_creates_the_directory_its_ignore_file_and_the_layout_version() {
    let (_tmp, dir) = state_dir();
    let store = SledStore::open(&dir, WAIT).unwrap();
    assert_eq!(fs::read_to_string(dir.join(".gitignore")).unwrap(), "*\n");
    assert_eq!(get_json::<u64>(&store, LAYOUT_KEY).unwrap(), Some(1));
    assert_eq!(store.dir(), dir);
}

#[test]
fn an_existing_ignore_file_is_left_alone() {
    let (_tmp, dir) = state_dir();
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(".gitignore"), "# mine\n*\n").unwrap();
    drop(SledStore::open(&dir, WAIT).unwrap());
    assert_eq!(
        fs::read_to_string(dir.join(".gitignore")).unwrap(),
        "# mine\n*\n"
    );
}

#[test]
fn dropping_the_store_releases_the_directory_at_once() {
    let (_tmp, dir) = state_dir();
    for round in 0..20u32 {
        // A zero wait: the open fails unless the previous store released everything on drop.
        let store = SledStore::open(&dir, Duration::ZERO).unwrap();
        if round > 0 {
            assert_eq!(get_json::<u32>(&store, b"round").unwrap(), Some(round - 1));
        }
        put_json(&store, b"round", &round).unwrap();
    }
}

#[test]
fn dropping_the_store_releases_sleds_own_lock() {
    let (_tmp, dir) = state_dir();
    let store = SledStore::open(&dir, WAIT).unwrap();
    put_json(&store, b"k", &"v").unwrap();
    drop(store);
    let db = sled::Config::new().path(dir.join("sled")).open().unwrap();
    assert_eq!(db.get(b"k").unwrap().as_deref(), Some(b"\"v\"".as_slice()));
}

#[test]
fn a_held_directory_is_busy_once_the_wait_is_over() {
    let (_tmp, dir) = state_dir();
    let _held = SledStore::open(&dir, WAIT).unwrap();
    let err = SledStore::open(&dir, Duration::from_millis(30)).unwrap_err();
    assert!(
        matches!(&err, StateError::Busy { path, .. } if path == &dir),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with("failed to open state directory"),
        "{message}"
    );
    assert!(message.contains(&dir.display().to_string()), "{message}");
}

#[test]
fn a_waiting_thread_gets_the_store_when_the_holder_drops_it() {
    let (_tmp, dir) = state_dir();
    let holder = SledStore::open(&dir, WAIT).unwrap();
    put_json(&holder, b"holder", &true).unwrap();
    let waiter = {
        let dir = dir.clone();
        thread::spawn(move || {
            let store = SledStore::open(&dir, WAIT)?;
            put_json(&store, b"waiter", &true)?;
            get_json::<bool>(&store, b"holder")
        })
    };
    // Give the waiter time to start waiting; it cannot finish while the holder is open.
    thread::sleep(Duration::from_millis(100));
    assert!(
        !waiter.is_finished(),
        "opened a store another holder still has open"
    );
    drop(holder);
    assert_eq!(waiter.join().unwrap().unwrap(), Some(true));
    let store = SledStore::open(&dir, WAIT).unwrap();
    assert_eq!(get_json::<bool>(&store, b"waiter").unwrap(), Some(true));
}

/// Tells [`hold_state_dir_for_parent`] which directory to hold.
const HOLD_ENV: &str = "FERRY_TEST_HOLD_STATE_DIR";

/// What the child prints once it holds the directory.
const HOLDING: &str = "holding the state directory";

/// A child process that holds a state directory until its stdin closes.
struct Holder {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Holder {
    fn spawn(dir: &Path) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "state::sled_store::tests::hold_state_dir_for_parent",
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
/// [`a_waiting_process_gets_the_store_when_the_holder_exits`].
#[test]
#[ignore = "run as a child process by another test"]
fn hold_state_dir_for_parent() {
    let Some(dir) = std::env::var_os(HOLD_ENV) else {
        return;
    };
    let store = SledStore::open(Path::new(&dir), WAIT).unwrap();
    put_json(&store, b"child", &std::process::id()).unwrap();
    println!("{HOLDING}");
    let mut rest = Vec::new();
    std::io::stdin().read_to_end(&mut rest).unwrap();
}

#[test]
fn a_waiting_process_gets_the_store_when_the_holder_exits() {
    let (_tmp, dir) = state_dir();
    let mut holder = Holder::spawn(&dir);
    let err = SledStore::open(&dir, Duration::from_millis(30)).unwrap_err();
    assert!(matches!(err, StateError::Busy { .. }), "{err}");
    let waiter = {
        let dir = dir.clone();
        thread::spawn(move || get_json::<u32>(&SledStore::open(&dir, WAIT)?, b"child"))
    };
    thread::sleep(Duration::from_millis(100));
    assert!(
        !waiter.is_finished(),
        "opened a store another process still has open"
    );
    holder.release();
    assert_eq!(waiter.join().unwrap().unwrap(), Some(holder.id()));
}

#[test]
fn a_newer_layout_is_refused_naming_both_versions() {
    let (_tmp, dir) = state_dir();
    let store = SledStore::open(&dir, WAIT).unwrap();
    put_json(&store, LAYOUT_KEY, &7u64).unwrap();
    drop(store);
    let err = SledStore::open(&dir, WAIT).unwrap_err();
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
    let message = err.to_string();
    assert!(
        message.contains("version 7") && message.contains("version 1"),
        "{message}"
    );
}

#[test]
fn data_without_a_layout_version_is_migrated() {
    let (_tmp, dir) = state_dir();
    fs::create_dir_all(&dir).unwrap();
    let db = sled::Config::new().path(dir.join("sled")).open().unwrap();
    db.insert(b"promotion/1", b"{}").unwrap();
    db.flush().unwrap();
    drop(db);
    let store = SledStore::open(&dir, WAIT).unwrap();
    assert_eq!(
        get_json::<u64>(&store, LAYOUT_KEY).unwrap(),
        Some(LAYOUT_VERSION)
    );
    assert_eq!(store.get(b"promotion/1").unwrap(), Some(b"{}".to_vec()));
}

/// Prints how long the store's operations take; run with
/// `cargo test --lib state::sled_store::tests::timings -- --ignored --nocapture`.
#[test]
#[ignore = "prints timings, asserts nothing about them"]
fn timings() {
    let (_tmp, dir) = state_dir();
    let started = Instant::now();
    let store = SledStore::open(&dir, WAIT).unwrap();
    let create = started.elapsed();
    for i in 0..1000u32 {
        put_json(&store, format!("promotion/{i:020}").as_bytes(), &i).unwrap();
    }
    drop(store);
    let rounds = 50;
    let mut took = [Duration::ZERO; 4];
    for i in 0..rounds {
        let started = Instant::now();
        let store = SledStore::open(&dir, WAIT).unwrap();
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
        "open (1000 keys)",
        "transaction + flush",
        "scan_prefix_rev 20",
        "close",
    ];
    for (name, total) in names.iter().zip(took) {
        println!("{name}: {:?}", total / rounds);
    }
}
