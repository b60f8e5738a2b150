//! The appointments, stored in SQLite.
//!
//! One connection behind a `std::sync::Mutex`, used from `spawn_blocking`: SQLite calls
//! block, and the async runtime's worker threads must not. The lock is held only for
//! one statement and never across an `.await`. COPY: for more write throughput, put a
//! connection pool here (r2d2 or deadpool); the handlers do not change.

use std::{
    fmt,
    path::Path,
    sync::{Arc, Mutex, PoisonError},
};

use rusqlite::{Connection, params};
use serde::Serialize;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

/// `starts_at` (RFC 3339, normalised to UTC) is what the API returns; `starts_at_unix`
/// orders the rows. The owner is the pair (`owner_issuer`, `owner`): the token's `iss`
/// and `sub`. A subject names a user only within its issuer, so two issuers may use the
/// same `sub` for different people.
const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS appointments (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        owner_issuer   TEXT    NOT NULL,
        owner          TEXT    NOT NULL,
        title          TEXT    NOT NULL,
        starts_at      TEXT    NOT NULL,
        starts_at_unix INTEGER NOT NULL,
        notes          TEXT
    );
";

/// A database written before appointments were owned by (`iss`, `sub`) gets the column;
/// its rows get an empty issuer, which no token carries: they stay unreachable rather
/// than being handed to whichever issuer uses the same `sub`.
const ADD_OWNER_ISSUER: &str = "ALTER TABLE appointments ADD COLUMN owner_issuer TEXT NOT NULL DEFAULT ''";

const INDEX: &str =
    "CREATE INDEX IF NOT EXISTS appointments_by_owner ON appointments (owner_issuer, owner, starts_at_unix)";

/// Whose appointments: the verified token's issuer and subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owner<'a> {
    /// `iss`.
    pub(crate) issuer: &'a str,
    /// `sub`: the user, within that issuer.
    pub(crate) subject: &'a str,
}

/// An appointment as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Appointment {
    pub(crate) id: i64,
    pub(crate) title: String,
    /// RFC 3339, in UTC.
    pub(crate) starts_at: String,
    pub(crate) notes: Option<String>,
}

/// A validated appointment to insert (see `routes::CreateAppointment::validate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewAppointment {
    pub(crate) title: String,
    pub(crate) starts_at: OffsetDateTime,
    pub(crate) notes: Option<String>,
}

/// A database failure. Its details go to the log (one line: the message names its
/// cause), never to the client.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// SQLite refused a statement, or the database could not be opened.
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// A time could not be written as RFC 3339.
    #[error("formatting starts_at: {0}")]
    Format(#[from] time::error::Format),
    /// The blocking task running the statement panicked or was cancelled.
    #[error("database task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The appointments table. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Store {
    connection: Arc<Mutex<Connection>>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (and creates if needed) the database at `path`, or an in-memory one.
    pub(crate) fn open(path: Option<&Path>) -> Result<Self, StoreError> {
        let connection = match path {
            Some(path) => Connection::open(path),
            None => Connection::open_in_memory(),
        }?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        connection.execute_batch(SCHEMA)?;
        let has_owner_issuer: bool = connection
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('appointments') WHERE name = 'owner_issuer'",
                [],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n > 0)?;
        if !has_owner_issuer {
            connection.execute_batch(ADD_OWNER_ISSUER)?;
        }
        connection.execute_batch(INDEX)?;
        Ok(Self { connection: Arc::new(Mutex::new(connection)) })
    }

    /// The owner's appointments, soonest first.
    ///
    /// COPY: add pagination (`LIMIT`/`OFFSET` or a cursor) before lists can grow large.
    pub(crate) async fn list(&self, owner: Owner<'_>) -> Result<Vec<Appointment>, StoreError> {
        let (issuer, subject) = (owner.issuer.to_owned(), owner.subject.to_owned());
        self.run(move |db| {
            let mut statement = db.prepare_cached(
                "SELECT id, title, starts_at, notes FROM appointments
                 WHERE owner_issuer = ?1 AND owner = ?2 ORDER BY starts_at_unix, id",
            )?;
            let rows = statement.query_map(params![issuer, subject], |row| {
                Ok(Appointment { id: row.get(0)?, title: row.get(1)?, starts_at: row.get(2)?, notes: row.get(3)? })
            })?;
            rows.collect()
        })
        .await
    }

    /// Inserts an appointment owned by `owner`.
    pub(crate) async fn create(&self, owner: Owner<'_>, new: NewAppointment) -> Result<Appointment, StoreError> {
        let (issuer, subject) = (owner.issuer.to_owned(), owner.subject.to_owned());
        let starts_at_utc = new.starts_at.to_offset(time::UtcOffset::UTC);
        let starts_at = starts_at_utc.format(&Rfc3339)?;
        let unix = starts_at_utc.unix_timestamp();
        self.run(move |db| {
            db.prepare_cached(
                "INSERT INTO appointments (owner_issuer, owner, title, starts_at, starts_at_unix, notes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![issuer, subject, new.title, starts_at, unix, new.notes])?;
            Ok(Appointment { id: db.last_insert_rowid(), title: new.title, starts_at, notes: new.notes })
        })
        .await
    }

    /// Deletes the owner's appointment `id`; `false` when the owner has none with that id
    /// (someone else's appointment is indistinguishable from a missing one).
    pub(crate) async fn delete(&self, owner: Owner<'_>, id: i64) -> Result<bool, StoreError> {
        let (issuer, subject) = (owner.issuer.to_owned(), owner.subject.to_owned());
        self.run(move |db| {
            let deleted = db
                .prepare_cached("DELETE FROM appointments WHERE id = ?1 AND owner_issuer = ?2 AND owner = ?3")?
                .execute(params![id, issuer, subject])?;
            Ok(deleted > 0)
        })
        .await
    }

    /// Runs `f` with the connection on the blocking thread pool.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            // A panic in another statement cannot leave the connection half-updated (each
            // statement is atomic in SQLite), so a poisoned lock is still usable.
            let db = connection.lock().unwrap_or_else(PoisonError::into_inner);
            f(&db)
        })
        .await?
        .map_err(StoreError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &Rfc3339).unwrap()
    }

    const ISSUER: &str = "https://issuer.example.test/";

    /// `sub` at the test issuer.
    fn user(subject: &str) -> Owner<'_> {
        Owner { issuer: ISSUER, subject }
    }

    fn titled(title: &str) -> NewAppointment {
        NewAppointment { title: title.into(), starts_at: at("2030-01-01T00:00:00Z"), notes: None }
    }

    #[tokio::test]
    async fn each_owner_sees_and_deletes_only_their_own() {
        let store = Store::open(None).unwrap();
        let late = NewAppointment { title: "late".into(), starts_at: at("2030-01-02T10:00:00+02:00"), notes: None };
        let early =
            NewAppointment { title: "early".into(), starts_at: at("2030-01-01T09:30:00Z"), notes: Some("n".into()) };
        let late = store.create(user("alice"), late).await.unwrap();
        let early = store.create(user("alice"), early).await.unwrap();
        let bobs = store
            .create(
                user("bob"),
                NewAppointment { title: "b".into(), starts_at: at("2030-01-01T00:00:00Z"), notes: None },
            )
            .await
            .unwrap();

        assert_eq!(late.starts_at, "2030-01-02T08:00:00Z", "normalised to UTC");
        assert_eq!(store.list(user("alice")).await.unwrap(), vec![early.clone(), late.clone()]);
        assert_eq!(store.list(user("bob")).await.unwrap(), vec![bobs.clone()]);

        assert!(!store.delete(user("alice"), bobs.id).await.unwrap(), "not alice's");
        assert!(store.delete(user("alice"), early.id).await.unwrap());
        assert!(!store.delete(user("alice"), early.id).await.unwrap(), "already gone");
        assert_eq!(store.list(user("alice")).await.unwrap(), vec![late]);
        assert_eq!(store.list(user("bob")).await.unwrap(), vec![bobs]);
    }

    #[tokio::test]
    async fn the_same_subject_at_two_issuers_owns_separate_appointments() {
        let store = Store::open(None).unwrap();
        let partner = Owner { issuer: "https://partners.example/", subject: "alice" };
        let staff = Owner { issuer: "https://staff.example/", subject: "alice" };
        let partners = store.create(partner, titled("partner alice")).await.unwrap();
        let staffs = store.create(staff, titled("staff alice")).await.unwrap();

        assert_eq!(store.list(partner).await.unwrap(), vec![partners.clone()]);
        assert_eq!(store.list(staff).await.unwrap(), vec![staffs.clone()]);
        assert!(!store.delete(partner, staffs.id).await.unwrap(), "another issuer's alice");
        assert!(!store.delete(staff, partners.id).await.unwrap(), "another issuer's alice");
        assert_eq!(store.list(staff).await.unwrap(), vec![staffs.clone()]);
        assert!(store.delete(staff, staffs.id).await.unwrap());
        assert_eq!(store.list(partner).await.unwrap(), vec![partners]);
    }

    #[test]
    fn a_database_from_before_issuer_ownership_keeps_its_rows_out_of_reach() {
        let dir = std::env::temp_dir().join(format!("appointments-api-store-old-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("db.sqlite");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE appointments (id INTEGER PRIMARY KEY AUTOINCREMENT, owner TEXT NOT NULL,
                 title TEXT NOT NULL, starts_at TEXT NOT NULL, starts_at_unix INTEGER NOT NULL, notes TEXT);
             INSERT INTO appointments (owner, title, starts_at, starts_at_unix) VALUES ('alice', 'old', '2030-01-01T00:00:00Z', 1893456000);",
        )
        .unwrap();
        drop(old);
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let store = Store::open(Some(&path)).unwrap();
            assert_eq!(store.list(user("alice")).await.unwrap(), vec![], "no issuer owns the old row");
            let new = store.create(user("alice"), titled("new")).await.unwrap();
            assert_eq!(store.list(user("alice")).await.unwrap(), vec![new]);
        });
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_database_keeps_its_rows() {
        let dir = std::env::temp_dir().join(format!("appointments-api-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("db.sqlite");
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let store = Store::open(Some(&path)).unwrap();
            let new = NewAppointment { title: "t".into(), starts_at: at("2030-01-01T00:00:00Z"), notes: None };
            store.create(user("alice"), new).await.unwrap();
        });
        runtime.block_on(async {
            let store = Store::open(Some(&path)).unwrap();
            assert_eq!(store.list(user("alice")).await.unwrap().len(), 1);
        });
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
