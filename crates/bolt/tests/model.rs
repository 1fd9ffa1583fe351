//! Property test: random transactions (nested buckets, puts, deletes, sequences,
//! commits and rollbacks) against a BTreeMap model.

mod common;

use common::{read_db, MBucket, MEntry};
use proptest::prelude::*;
use rpod_bolt::{BoltError, Bucket, Db, OpenOptions, Tx};

#[derive(Debug, Clone)]
enum Op {
    Put(Vec<Vec<u8>>, Vec<u8>, Vec<u8>),
    Delete(Vec<Vec<u8>>, Vec<u8>),
    CreateBucket(Vec<Vec<u8>>, Vec<u8>),
    DeleteBucket(Vec<Vec<u8>>, Vec<u8>),
    NextSequence(Vec<Vec<u8>>),
    SetSequence(Vec<Vec<u8>>, u64),
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (0u8..3).prop_map(|i| format!("b{i}").into_bytes()),
        (0u8..3).prop_map(|i| format!("k{i:02}").into_bytes()),
    ]
}

fn path() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(name(), 1..=3)
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => (0u8..60).prop_map(|i| format!("k{i:02}").into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 1..6),
        1 => (0u8..3).prop_map(|i| format!("b{i}").into_bytes()),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => prop::collection::vec(any::<u8>(), 0..40),
        1 => (300usize..3000).prop_map(|n| vec![0x42; n]),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (path(), key(), value()).prop_map(|(p, k, v)| Op::Put(p, k, v)),
        3 => (path(), key()).prop_map(|(p, k)| Op::Delete(p, k)),
        3 => (prop::collection::vec(name(), 0..=2), name()).prop_map(|(p, n)| Op::CreateBucket(p, n)),
        1 => (prop::collection::vec(name(), 0..=2), name()).prop_map(|(p, n)| Op::DeleteBucket(p, n)),
        1 => path().prop_map(Op::NextSequence),
        1 => (path(), any::<u64>()).prop_map(|(p, v)| Op::SetSequence(p, v)),
    ]
}

/// Opens the bucket at `path` in the database (`None` if missing).
fn open<'t>(tx: &'t Tx<'t>, path: &[Vec<u8>]) -> Result<Option<Bucket<'t>>, BoltError> {
    let Some(mut b) = tx.bucket(&path[0])? else {
        return Ok(None);
    };
    for n in &path[1..] {
        match b.bucket(n)? {
            Some(c) => b = c,
            None => return Ok(None),
        }
    }
    Ok(Some(b))
}

fn kind(r: &Result<(), BoltError>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => format!("{e:?}")
            .split([' ', '{', '('])
            .next()
            .unwrap()
            .to_string(),
    }
}

/// Applies `op` to the transaction and the model; the outcomes must agree.
fn apply(tx: &Tx<'_>, m: &mut MBucket, op: &Op) {
    let (db_r, model_r): (Result<(), BoltError>, Result<(), BoltError>) = match op {
        Op::Put(p, ..) | Op::Delete(p, _) if m.at(p).is_none() => {
            assert!(open(tx, p).unwrap().is_none());
            return;
        }
        Op::Put(p, k, v) => {
            let b = open(tx, p).unwrap().unwrap();
            let mb = m.at(p).unwrap();
            let mr = match mb.entries.get(k) {
                Some(MEntry::Bkt(_)) => Err(BoltError::IncompatibleValue),
                _ => {
                    mb.entries.insert(k.clone(), MEntry::Val(v.clone()));
                    Ok(())
                }
            };
            (b.put(k, v), mr)
        }
        Op::Delete(p, k) => {
            let b = open(tx, p).unwrap().unwrap();
            let mb = m.at(p).unwrap();
            let mr = match mb.entries.get(k) {
                Some(MEntry::Bkt(_)) => Err(BoltError::IncompatibleValue),
                _ => {
                    mb.entries.remove(k);
                    Ok(())
                }
            };
            (b.delete(k), mr)
        }
        Op::CreateBucket(p, n) | Op::DeleteBucket(p, n) => {
            let Some(mb) = m.at(p) else {
                assert!(p.is_empty() || open(tx, p).unwrap().is_none());
                return;
            };
            let create = matches!(op, Op::CreateBucket(..));
            let mr = match (mb.entries.get(n), create) {
                (Some(MEntry::Val(_)), _) => Err(BoltError::IncompatibleValue),
                (Some(MEntry::Bkt(_)), true) => Err(BoltError::BucketExists),
                (None, false) => Err(BoltError::BucketNotFound),
                (None, true) => {
                    mb.entries
                        .insert(n.clone(), MEntry::Bkt(MBucket::default()));
                    Ok(())
                }
                (Some(MEntry::Bkt(_)), false) => {
                    mb.entries.remove(n);
                    Ok(())
                }
            };
            let dr = if p.is_empty() {
                if create {
                    tx.create_bucket(n).map(drop)
                } else {
                    tx.delete_bucket(n)
                }
            } else {
                let b = open(tx, p).unwrap().unwrap();
                if create {
                    b.create_bucket(n).map(drop)
                } else {
                    b.delete_bucket(n)
                }
            };
            (dr, mr)
        }
        Op::NextSequence(p) | Op::SetSequence(p, _) => {
            let Some(mb) = m.at(p) else { return };
            let b = open(tx, p).unwrap().unwrap();
            match op {
                Op::SetSequence(_, v) => {
                    mb.seq = *v;
                    (b.set_sequence(*v), Ok(()))
                }
                _ => {
                    mb.seq = mb.seq.wrapping_add(1);
                    let want = mb.seq;
                    (b.next_sequence().map(|s| assert_eq!(s, want)), Ok(()))
                }
            }
        }
    };
    assert_eq!(kind(&db_r), kind(&model_r), "{op:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn database_matches_btreemap_model(
        txs in prop::collection::vec((prop::collection::vec(op(), 1..40), prop::bool::weighted(0.85)), 1..8),
        big_pages in any::<bool>(),
    ) {
        let dir = common::fast_tempdir();
        let p = dir.path().join("model.db");
        let ps = if big_pages { 4096 } else { 1024 };
        let db = Db::open(&p, &OpenOptions::new().page_size(ps)).unwrap();
        let mut committed = MBucket::default();
        for (ops, commit) in &txs {
            let mut m = committed.clone();
            let tx = db.begin(true).unwrap();
            for op in ops {
                apply(&tx, &mut m, op);
            }
            if *commit {
                tx.commit().unwrap();
                committed = m;
            } else {
                tx.rollback();
            }
            prop_assert_eq!(&read_db(&db).unwrap(), &committed);
        }
        common::assert_self_check(&db);
        let l = common::listing(&db).unwrap();
        drop(db);
        let db = Db::open(&p, &OpenOptions::new().read_only(true)).unwrap();
        prop_assert_eq!(&read_db(&db).unwrap(), &committed);
        drop(db);
        common::assert_oracles_accept(&p, &l);
    }
}
