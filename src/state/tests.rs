//! Behaviour every [`StateStore`] shares, checked against both backends.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::*;

/// Runs `check` against a fresh [`MemStore`] and a fresh [`SqliteStore`] in a temp dir.
fn each_store(check: impl Fn(&dyn StateStore)) {
    check(&MemStore::new());
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("state"), Duration::from_secs(30)).unwrap();
    check(&sqlite);
}

fn keys(entries: &Entries) -> Vec<&[u8]> {
    entries.iter().map(|(k, _)| k.as_slice()).collect()
}

#[test]
fn transaction_writes_become_visible_together() {
    each_store(|store| {
        store
            .transaction(|txn| {
                txn.put(b"a", b"1")?;
                txn.put(b"b", b"2")?;
                txn.delete(b"a")?;
                txn.put(b"c", b"3")
            })
            .unwrap();
        assert_eq!(store.get(b"a").unwrap(), None);
        assert_eq!(store.get(b"b").unwrap(), Some(b"2".to_vec()));
        assert_eq!(store.get(b"c").unwrap(), Some(b"3".to_vec()));
    });
}

#[test]
fn failed_transaction_writes_nothing() {
    each_store(|store| {
        store.transaction(|txn| txn.put(b"kept", b"old")).unwrap();
        let result: Result<(), StateError> = store.transaction(|txn| {
            txn.put(b"kept", b"new")?;
            txn.put(b"other", b"x")?;
            Err(StateError::Corrupt {
                key: "kept".into(),
                reason: "test",
            })
        });
        assert!(matches!(
            result,
            Err(StateError::Corrupt { reason: "test", .. })
        ));
        assert_eq!(store.get(b"kept").unwrap(), Some(b"old".to_vec()));
        assert_eq!(store.get(b"other").unwrap(), None);
    });
}

#[derive(Debug, PartialEq)]
enum CallerError {
    Refused,
    State(String),
}

impl From<StateError> for CallerError {
    fn from(err: StateError) -> Self {
        CallerError::State(err.to_string())
    }
}

#[test]
fn try_transaction_passes_the_callers_error_through() {
    each_store(|store| {
        let result: Result<(), CallerError> = store.try_transaction(|txn| {
            txn.put(b"k", b"v")?;
            Err(CallerError::Refused)
        });
        assert_eq!(result, Err(CallerError::Refused));
        assert_eq!(store.get(b"k").unwrap(), None);
        let value: u32 = store
            .try_transaction::<_, CallerError>(|txn| {
                txn.put(b"k", b"v")?;
                Ok(7)
            })
            .unwrap();
        assert_eq!(value, 7);
        assert_eq!(store.get(b"k").unwrap(), Some(b"v".to_vec()));
    });
}

#[test]
fn reads_inside_a_transaction_see_its_own_writes() {
    each_store(|store| {
        store.transaction(|txn| txn.put(b"p/1", b"one")).unwrap();
        store.transaction(|txn| txn.put(b"p/3", b"three")).unwrap();
        store
            .transaction(|txn| {
                txn.put(b"p/2", b"two")?;
                txn.delete(b"p/3")?;
                assert_eq!(txn.get(b"p/2")?, Some(b"two".to_vec()));
                assert_eq!(txn.get(b"p/3")?, None);
                let seen = txn.scan_prefix(b"p/")?;
                assert_eq!(keys(&seen), [b"p/1".as_slice(), b"p/2"]);
                let newest = txn.scan_prefix_rev(b"p/", 1)?;
                assert_eq!(keys(&newest), [b"p/2".as_slice()]);
                txn.put(b"p/0", b"zero")?;
                let all = txn.scan_prefix_rev(b"p/", 10)?;
                assert_eq!(keys(&all), [b"p/2".as_slice(), b"p/1", b"p/0"]);
                Ok(())
            })
            .unwrap();
    });
}

#[test]
fn prefix_scans_are_ordered_and_bounded() {
    each_store(|store| {
        store
            .transaction(|txn| {
                for key in ["a/3", "a/1", "a0", "a/2", "a", "b/1", "a/\u{ff}"] {
                    txn.put(key.as_bytes(), b"x")?;
                }
                txn.put(&[0xff], b"x")?;
                txn.put(&[0xff, 0xff], b"x")
            })
            .unwrap();
        let all = store.scan_prefix(b"a/").unwrap();
        let expected = ["a/1", "a/2", "a/3", "a/\u{ff}"].map(str::as_bytes);
        assert_eq!(keys(&all), expected);
        let newest = store.scan_prefix_rev(b"a/", 2).unwrap();
        assert_eq!(keys(&newest), ["a/\u{ff}", "a/3"].map(str::as_bytes));
        assert!(store.scan_prefix_rev(b"a/", 0).unwrap().is_empty());
        // A prefix of 0xff bytes has no upper bound key.
        let high = store.scan_prefix_rev(&[0xff], 10).unwrap();
        assert_eq!(keys(&high), [[0xff, 0xff].as_slice(), &[0xff]]);
        let everything = store.scan_prefix(b"").unwrap();
        assert!(everything.is_sorted());
        assert_eq!(
            everything
                .iter()
                .filter(|(k, _)| !k.starts_with(b"meta/"))
                .count(),
            9
        );
    });
}

#[test]
fn compare_and_swap_only_swaps_the_expected_value() {
    each_store(|store| {
        assert_eq!(
            store.compare_and_swap(b"lock", None, Some(b"me")).unwrap(),
            Ok(())
        );
        assert_eq!(
            store.compare_and_swap(b"lock", None, Some(b"you")).unwrap(),
            Err(Some(b"me".to_vec()))
        );
        assert_eq!(
            store.compare_and_swap(b"lock", Some(b"you"), None).unwrap(),
            Err(Some(b"me".to_vec()))
        );
        assert_eq!(
            store.compare_and_swap(b"lock", Some(b"me"), None).unwrap(),
            Ok(())
        );
        assert_eq!(store.get(b"lock").unwrap(), None);
        assert_eq!(
            store
                .compare_and_swap(b"lock", Some(b"me"), Some(b"x"))
                .unwrap(),
            Err(None)
        );
    });
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Record {
    stage: String,
    attempt: u32,
}

#[test]
fn json_values_round_trip() {
    each_store(|store| {
        let record = Record {
            stage: "qa".into(),
            attempt: 2,
        };
        put_json(store, b"rec/qa", &record).unwrap();
        assert_eq!(get_json::<Record>(store, b"rec/qa").unwrap(), Some(record));
        assert_eq!(get_json::<Record>(store, b"rec/none").unwrap(), None);
        store
            .transaction(|txn| {
                let mut rec: Record = txn_get_json(txn, b"rec/qa")?.expect("written above");
                rec.attempt += 1;
                txn_put_json(txn, b"rec/qa", &rec)?;
                txn_put_json(
                    txn,
                    b"rec/prod",
                    &Record {
                        stage: "prod".into(),
                        attempt: 1,
                    },
                )?;
                assert_eq!(txn_scan_json::<Record>(txn, b"rec/")?.len(), 2);
                Ok(())
            })
            .unwrap();
        let all: Vec<(Vec<u8>, Record)> = scan_json(store, b"rec/").unwrap();
        assert_eq!(all[0].1.stage, "prod");
        assert_eq!(all[1].1.attempt, 3);
        let newest: Vec<(Vec<u8>, Record)> = scan_json_rev(store, b"rec/", 1).unwrap();
        assert_eq!(newest[0].1.stage, "qa");
    });
}

#[test]
fn undecodable_json_names_the_key() {
    each_store(|store| {
        store
            .transaction(|txn| txn.put(b"rec/bad", b"{not json"))
            .unwrap();
        let err = get_json::<Record>(store, b"rec/bad").unwrap_err();
        assert!(
            matches!(&err, StateError::Decode { key, .. } if key == "rec/bad"),
            "{err}"
        );
        assert_eq!(err.to_string(), "failed to decode state value at rec/bad");
    });
}

#[test]
fn sequence_numbers_increase_and_sort_when_padded() {
    each_store(|store| {
        let mut seqs = Vec::new();
        for _ in 0..12 {
            let seq = store
                .transaction(|txn| {
                    let seq = next_seq(txn, b"seq/promotion")?;
                    txn.put(format!("promotion/{seq:020}").as_bytes(), b"{}")?;
                    Ok(seq)
                })
                .unwrap();
            seqs.push(seq);
        }
        assert_eq!(seqs, (1..=12).collect::<Vec<u64>>());
        let newest = store.scan_prefix_rev(b"promotion/", 1).unwrap();
        assert_eq!(newest[0].0, format!("promotion/{:020}", 12).into_bytes());
        let aborted: Result<u64, StateError> = store.transaction(|txn| {
            next_seq(txn, b"seq/promotion")?;
            Err(StateError::Aborted)
        });
        assert!(aborted.is_err());
        assert_eq!(
            store
                .transaction(|txn| next_seq(txn, b"seq/promotion"))
                .unwrap(),
            13
        );
    });
}

#[test]
fn a_corrupt_sequence_counter_is_an_error() {
    each_store(|store| {
        store
            .transaction(|txn| txn.put(b"seq/x", b"seven"))
            .unwrap();
        let err = store
            .transaction(|txn| next_seq(txn, b"seq/x"))
            .unwrap_err();
        assert!(
            matches!(err, StateError::Corrupt { ref key, .. } if key == "seq/x"),
            "{err}"
        );
    });
}

#[test]
fn a_read_sees_committed_data_and_refuses_writes() {
    each_store(|store| {
        store.transaction(|txn| txn.put(b"k/1", b"one")).unwrap();
        let seen = store
            .read(|txn| Ok::<_, StateError>((txn.get(b"k/1")?, txn.scan_prefix(b"k/")?.len())))
            .unwrap();
        assert_eq!(seen, (Some(b"one".to_vec()), 1));
        let err = store
            .read(|txn| txn.put(b"k/2", b"two"))
            .expect_err("a write inside a read");
        assert_eq!(err.to_string(), "state key k/2 was written inside a read");
        let err = store
            .read(|txn| txn.delete(b"k/1"))
            .expect_err("a delete inside a read");
        assert!(
            matches!(err, StateError::ReadOnly { ref key } if key == "k/1"),
            "{err}"
        );
        assert_eq!(store.get(b"k/1").unwrap(), Some(b"one".to_vec()));
        assert_eq!(store.get(b"k/2").unwrap(), None);
    });
}
