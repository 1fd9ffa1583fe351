//! Reading real podman 4.3.1 databases: our listing must equal real bbolt's.

mod common;

use rpod_bolt::{Db, OpenOptions};

#[test]
fn fixture_listings_match_boltcheck() {
    let fixtures = common::fixtures();
    if fixtures.is_empty() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (i, f) in fixtures.iter().enumerate() {
        let copy = common::copy_to(f, dir.path(), &format!("f{i}.db"));
        let db = Db::open(&copy, &OpenOptions::new().read_only(true)).unwrap();
        let ours = common::listing(&db).unwrap();
        assert!(ours.contains("[ctr] root="), "{ours}");
        db.view(|tx| {
            assert_eq!(tx.check().unwrap(), Vec::<String>::new(), "{}", f.display());
            Ok(())
        })
        .unwrap();
        drop(db);
        if let Some(bin) = common::boltcheck() {
            let (rc, out, err) = common::run_boltcheck(&bin, &copy);
            assert_eq!(rc, 0, "{err}");
            assert_eq!(
                out,
                format!("{ours}check done\n"),
                "fixture {}",
                f.display()
            );
        }
    }
}
