//! The one door to the database: a connection to SQLite (a workspace directory) or PostgreSQL (a
//! team server) behind the same few calls. Every store method writes its SQL once, in the
//! SQLite spelling (`?1` parameters, `INSERT … ON CONFLICT`, `RETURNING`), and this file turns it
//! into PostgreSQL's where they differ (`$1`, the clock, `BEGIN IMMEDIATE`), once per statement.
//!
//! Rules: values cross the boundary as [`Value`] (integer, real, text, blob, null) and are
//! converted to what the column holds, as leniently as SQLite does (an integer into a text
//! parameter becomes its digits), so a store method never depends on a server's exact types.
//! Rows are read as they come on SQLite. On PostgreSQL a statement's rows are fetched whole
//! before the caller sees the first one, so a caller may query again while it reads; the few
//! passes over everything (exports, scoring) use [`Db::stream_rows`], which reads a server-side
//! cursor a thousand rows at a time, so memory stays bounded on both.

use std::cell::RefCell;

use anyhow::Context;

/// One value handed to or read from the database.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// Something that can be a statement's parameter.
pub trait Param {
    fn value(&self) -> Value<'_>;
}

macro_rules! int_param {
    ($($t:ty),*) => {$(
        impl Param for $t {
            fn value(&self) -> Value<'_> {
                Value::Int(*self as i64)
            }
        }
    )*};
}
int_param!(i64, i32, u32, u16, u8, usize, u64);

impl Param for f64 {
    fn value(&self) -> Value<'_> {
        Value::Real(*self)
    }
}
impl Param for f32 {
    fn value(&self) -> Value<'_> {
        Value::Real(*self as f64)
    }
}
impl Param for bool {
    fn value(&self) -> Value<'_> {
        Value::Int(*self as i64)
    }
}
impl Param for str {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}
impl Param for String {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}
impl Param for std::borrow::Cow<'_, str> {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}
impl Param for [u8] {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}
impl Param for Vec<u8> {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}
impl<const N: usize> Param for [u8; N] {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}
impl<T: Param + ?Sized> Param for &T {
    fn value(&self) -> Value<'_> {
        (**self).value()
    }
}
impl<T: Param> Param for Option<T> {
    fn value(&self) -> Value<'_> {
        match self {
            Some(v) => v.value(),
            None => Value::Null,
        }
    }
}
impl Param for Value<'_> {
    fn value(&self) -> Value<'_> {
        *self
    }
}

/// A statement's parameters: `params![a, b, c]` (each anything that is a [`Param`]).
macro_rules! params {
    ($($p:expr),* $(,)?) => {
        &[$(&$p as &dyn $crate::store::db::Param),*] as &[&dyn $crate::store::db::Param]
    };
}
pub(crate) use params;

/// No parameters.
pub const NO_PARAMS: &[&dyn Param] = &[];

/// Something a column can be read as.
pub trait FromColumn: Sized {
    fn from_column(v: Value<'_>) -> Result<Self, String>;
}

impl FromColumn for i64 {
    fn from_column(v: Value<'_>) -> Result<Self, String> {
        match v {
            Value::Int(i) => Ok(i),
            Value::Real(r) if r.fract() == 0.0 && r.abs() < 9.0e15 => Ok(r as i64),
            other => Err(format!("expected an integer, found {}", kind(&other))),
        }
    }
}
impl FromColumn for usize {
    fn from_column(v: Value<'_>) -> Result<Self, String> {
        let i = i64::from_column(v)?;
        usize::try_from(i).map_err(|_| format!("expected a count, found {i}"))
    }
}
impl FromColumn for u64 {
    fn from_column(v: Value<'_>) -> Result<Self, String> {
        let i = i64::from_column(v)?;
        u64::try_from(i).map_err(|_| format!("expected a count, found {i}"))
    }
}
impl FromColumn for i32 {
    fn from_column(v: Value<'_>) -> Result<Self, String> {
        let i = i64::from_column(v)?;
        i32::try_from(i).map_err(|_| format!("{i} is out of range"))
    }
}
impl FromColumn for f64 {
    fn from_column(v: Value<'_>) -> Result<Self, String> {
        match v {
            Value::Real(r) => Ok(r),
            Value::Int(i) => Ok(i as f64),
            other => Err(format!("expected a number, found {}", kind(&other))),
        }
    }
}
impl FromColumn for f32 {
    fn from_column(v: Value<'_>) -> Result<Self, String> {
        f64::from_column(v).map(|f| f as f32)
    }
}
impl FromColumn for bool {
    fn from_column(v: Value<'_>) -> Result<Self, String> {
        i64::from_column(v).map(|i| i != 0)
    }
}
impl FromColumn for String {
    fn from_column(v: Value<'_>) -> Result<Self, String> {
        match v {
            Value::Text(t) => Ok(t.to_string()),
            other => Err(format!("expected text, found {}", kind(&other))),
        }
    }
}
impl FromColumn for Vec<u8> {
    fn from_column(v: Value<'_>) -> Result<Self, String> {
        match v {
            Value::Blob(b) => Ok(b.to_vec()),
            Value::Text(t) => Ok(t.as_bytes().to_vec()),
            other => Err(format!("expected bytes, found {}", kind(&other))),
        }
    }
}
impl<T: FromColumn> FromColumn for Option<T> {
    fn from_column(v: Value<'_>) -> Result<Self, String> {
        match v {
            Value::Null => Ok(None),
            v => T::from_column(v).map(Some),
        }
    }
}

/// A value of any type, owned (copying rows between databases).
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedValue {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl FromColumn for OwnedValue {
    fn from_column(v: Value<'_>) -> Result<Self, String> {
        Ok(match v {
            Value::Null => OwnedValue::Null,
            Value::Int(i) => OwnedValue::Int(i),
            Value::Real(r) => OwnedValue::Real(r),
            Value::Text(t) => OwnedValue::Text(t.to_string()),
            Value::Blob(b) => OwnedValue::Blob(b.to_vec()),
        })
    }
}

impl Param for OwnedValue {
    fn value(&self) -> Value<'_> {
        match self {
            OwnedValue::Null => Value::Null,
            OwnedValue::Int(i) => Value::Int(*i),
            OwnedValue::Real(r) => Value::Real(*r),
            OwnedValue::Text(t) => Value::Text(t),
            OwnedValue::Blob(b) => Value::Blob(b),
        }
    }
}

fn kind(v: &Value<'_>) -> &'static str {
    match v {
        Value::Null => "NULL",
        Value::Int(_) => "an integer",
        Value::Real(_) => "a real number",
        Value::Text(_) => "text",
        Value::Blob(_) => "bytes",
    }
}

fn lost_code(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
}

/// One result row.
pub struct Row<'r>(RowSource<'r>);

enum RowSource<'r> {
    Lite(&'r rusqlite::Row<'r>),
    Pg(&'r postgres::Row),
}

impl Row<'_> {
    /// Column `i` (0-based) as `T`.
    pub fn get<T: FromColumn>(&self, i: usize) -> anyhow::Result<T> {
        let converted = match &self.0 {
            RowSource::Lite(row) => {
                let value = row.get_ref(i)?;
                T::from_column(match value {
                    rusqlite::types::ValueRef::Null => Value::Null,
                    rusqlite::types::ValueRef::Integer(i) => Value::Int(i),
                    rusqlite::types::ValueRef::Real(r) => Value::Real(r),
                    rusqlite::types::ValueRef::Text(t) => {
                        Value::Text(std::str::from_utf8(t).context("a text column is not UTF-8")?)
                    }
                    rusqlite::types::ValueRef::Blob(b) => Value::Blob(b),
                })
            }
            RowSource::Pg(row) => {
                let value: pg::AnyValue<'_> = row.try_get(i)?;
                T::from_column(value.0)
            }
        };
        converted.map_err(|e| anyhow::anyhow!("column {i}: {e}"))
    }
}

/// Which database a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A connection.
pub struct Db {
    conn: Conn,
}

enum Conn {
    Lite(rusqlite::Connection),
    // Boxed: the client is large, and a workspace holds one connection either way.
    Pg(Box<RefCell<pg::Client>>, std::cell::Cell<u64>),
}

/// Rows per FETCH of a streamed pass on PostgreSQL.
const STREAM_BATCH: usize = 1000;

impl Db {
    pub fn sqlite(conn: rusqlite::Connection) -> Self {
        conn.set_prepared_statement_cache_capacity(128);
        Self {
            conn: Conn::Lite(conn),
        }
    }

    pub fn postgres(client: postgres::Client) -> Self {
        Self {
            conn: Conn::Pg(
                Box::new(RefCell::new(pg::Client::new(client))),
                std::cell::Cell::new(0),
            ),
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self.conn {
            Conn::Lite(_) => Dialect::Sqlite,
            Conn::Pg(..) => Dialect::Postgres,
        }
    }

    /// The SQLite connection, for what only SQLite has (pragmas); None on a server.
    pub fn sqlite_conn(&self) -> Option<&rusqlite::Connection> {
        match &self.conn {
            Conn::Lite(c) => Some(c),
            Conn::Pg(..) => None,
        }
    }

    /// Runs one statement; returns the number of rows it changed.
    pub fn execute(&self, sql: &str, params: &[&dyn Param]) -> anyhow::Result<usize> {
        match &self.conn {
            Conn::Lite(c) => {
                let values: Vec<Value<'_>> = params.iter().map(|p| p.value()).collect();
                let mut stmt = c.prepare_cached(sql)?;
                Ok(stmt.execute(rusqlite::params_from_iter(values.iter().map(LiteValue)))?)
            }
            Conn::Pg(c, _) => c.borrow_mut().execute(sql, params),
        }
    }

    /// Runs `sql`, a `COPY … FROM STDIN` in the text format, with `rows` as its input, in one
    /// round trip whatever the number of rows; returns the rows the server took. PostgreSQL only:
    /// bulk writes on a server go this way (a statement per row is a round trip per row).
    pub fn copy_in(&self, sql: &str, rows: &CopyRows) -> anyhow::Result<u64> {
        match &self.conn {
            Conn::Lite(_) => anyhow::bail!("COPY is PostgreSQL's; a directory inserts rows"),
            Conn::Pg(c, _) => c.borrow_mut().copy_in(sql, &rows.buf),
        }
    }

    /// Statements (and COPYs) sent to the server on this connection so far; `None` on SQLite,
    /// whose own counters see more (`ImportBatch::take_statement_counts`). Counted, not timed,
    /// so a test can bound the round trips a bulk write makes per row.
    pub fn statements_sent(&self) -> Option<u64> {
        match &self.conn {
            Conn::Lite(_) => None,
            Conn::Pg(c, _) => Some(c.borrow().sent),
        }
    }

    /// Runs several statements with no parameters (schema changes).
    pub fn execute_batch(&self, sql: &str) -> anyhow::Result<()> {
        match &self.conn {
            Conn::Lite(c) => Ok(c.execute_batch(sql)?),
            Conn::Pg(c, _) => c.borrow_mut().batch(sql),
        }
    }

    /// Calls `f` with every row of the query, in order.
    pub fn for_each_row(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut f: impl FnMut(&Row<'_>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        match &self.conn {
            Conn::Lite(c) => {
                let values: Vec<Value<'_>> = params.iter().map(|p| p.value()).collect();
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows =
                    stmt.query(rusqlite::params_from_iter(values.iter().map(LiteValue)))?;
                while let Some(row) = rows.next()? {
                    f(&Row(RowSource::Lite(row)))?;
                }
                Ok(())
            }
            Conn::Pg(c, _) => {
                // Fetched whole, then handed out, so `f` may use this connection again.
                let rows = c.borrow_mut().query(sql, params)?;
                for row in &rows {
                    f(&Row(RowSource::Pg(row)))?;
                }
                Ok(())
            }
        }
    }

    /// Like [`Db::for_each_row`], for passes over a whole table: on PostgreSQL the rows come
    /// from a cursor (`WITH HOLD`, so `f` may commit transactions of its own meanwhile) in
    /// batches, never all at once.
    pub fn stream_rows(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut f: impl FnMut(&Row<'_>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let Conn::Pg(c, cursors) = &self.conn else {
            return self.for_each_row(sql, params, f);
        };
        cursors.set(cursors.get() + 1);
        let name = format!("vital_rows_{}", cursors.get());
        c.borrow_mut().declare(&name, sql, params)?;
        let fetch = format!("FETCH {STREAM_BATCH} FROM {name}");
        let result = (|| loop {
            let rows = c.borrow_mut().fetch(&fetch)?;
            for row in &rows {
                f(&Row(RowSource::Pg(row)))?;
            }
            if rows.len() < STREAM_BATCH {
                return Ok(());
            }
        })();
        let closed = c.borrow_mut().batch(&format!("CLOSE {name}"));
        result.and(closed)
    }

    /// Every row of the query, each turned into a `T` by `f`.
    pub fn query_vec<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut f: impl FnMut(&Row<'_>) -> anyhow::Result<T>,
    ) -> anyhow::Result<Vec<T>> {
        let mut out = Vec::new();
        self.for_each_row(sql, params, |r| {
            out.push(f(r)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// The query's first row, if any.
    pub fn query_opt<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        f: impl FnOnce(&Row<'_>) -> anyhow::Result<T>,
    ) -> anyhow::Result<Option<T>> {
        match &self.conn {
            Conn::Lite(c) => {
                let values: Vec<Value<'_>> = params.iter().map(|p| p.value()).collect();
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows =
                    stmt.query(rusqlite::params_from_iter(values.iter().map(LiteValue)))?;
                match rows.next()? {
                    Some(row) => Ok(Some(f(&Row(RowSource::Lite(row)))?)),
                    None => Ok(None),
                }
            }
            Conn::Pg(c, _) => {
                let rows = c.borrow_mut().query(sql, params)?;
                match rows.first() {
                    Some(row) => Ok(Some(f(&Row(RowSource::Pg(row)))?)),
                    None => Ok(None),
                }
            }
        }
    }

    /// The query's first row; an error when there is none.
    pub fn query_row<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        f: impl FnOnce(&Row<'_>) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        self.query_opt(sql, params, f)?
            .ok_or_else(|| anyhow::anyhow!("the query returned no row"))
    }

    /// The first column of the query's first row.
    pub fn query_value<T: FromColumn>(
        &self,
        sql: &str,
        params: &[&dyn Param],
    ) -> anyhow::Result<T> {
        self.query_row(sql, params, |r| r.get(0))
    }

    /// Starts a transaction that reads one snapshot and may write later.
    pub fn begin(&self) -> anyhow::Result<Tx<'_>> {
        self.start(match self.dialect() {
            Dialect::Sqlite => "BEGIN DEFERRED",
            // REPEATABLE READ: every read in the transaction sees one snapshot, as in SQLite.
            Dialect::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ",
        })
    }

    /// Starts a transaction that will write: on SQLite it takes the write lock now (waiting for
    /// it up front beats failing when a read snapshot cannot be upgraded).
    pub fn begin_write(&self) -> anyhow::Result<Tx<'_>> {
        self.start(match self.dialect() {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        })
    }

    fn start(&self, begin: &str) -> anyhow::Result<Tx<'_>> {
        self.execute_batch(begin)?;
        Ok(Tx {
            db: self,
            open: true,
        })
    }

    /// Whether the error says the connection to the server is gone or could not be made:
    /// closed, an I/O failure, SQLSTATE class 08, or the server shutting down (57P01-03).
    pub fn is_connection_lost(e: &anyhow::Error) -> bool {
        e.chain().any(|cause| {
            if cause.is::<super::server::Unreachable>() {
                return true;
            }
            if cause.is::<std::io::Error>() {
                return true;
            }
            if let Some(pg) = cause.downcast_ref::<postgres::Error>() {
                return pg.is_closed() || pg.code().is_some_and(|c| lost_code(c.code()));
            }
            cause
                .downcast_ref::<pg::SqlState>()
                .is_some_and(|s| lost_code(&s.0))
        })
    }

    /// Whether the error says the database is busy or locked by another connection (SQLite).
    pub fn is_busy(e: &anyhow::Error) -> bool {
        e.chain().any(|cause| {
            matches!(
                cause.downcast_ref::<rusqlite::Error>(),
                Some(rusqlite::Error::SqliteFailure(f, _))
                    if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            )
        })
    }
}

/// Rows for [`Db::copy_in`], written into memory in PostgreSQL's COPY text format: fields
/// separated by tabs, rows ended by newlines, a backslash, tab, newline or carriage return in a
/// text escaped, NULL as `\N`, bytes as `\x` and hex.
#[derive(Debug, Default)]
pub struct CopyRows {
    buf: Vec<u8>,
    rows: usize,
    /// Whether the current row has a field yet (the next one is preceded by a tab).
    in_row: bool,
}

impl CopyRows {
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Rows ended so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Forgets every row, keeping the memory for the next ones.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.rows = 0;
        self.in_row = false;
    }

    fn separate(&mut self) {
        if self.in_row {
            self.buf.push(b'\t');
        }
        self.in_row = true;
    }

    pub fn int(&mut self, i: i64) -> &mut Self {
        use std::io::Write;
        self.separate();
        // Writing into a Vec cannot fail.
        let _ = write!(self.buf, "{i}");
        self
    }

    pub fn text(&mut self, text: &str) -> &mut Self {
        self.separate();
        let bytes = text.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let escaped: &[u8] = match b {
                b'\\' => b"\\\\",
                b'\t' => b"\\t",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                _ => continue,
            };
            self.buf.extend_from_slice(&bytes[start..i]);
            self.buf.extend_from_slice(escaped);
            start = i + 1;
        }
        self.buf.extend_from_slice(&bytes[start..]);
        self
    }

    pub fn opt_text(&mut self, text: Option<&str>) -> &mut Self {
        match text {
            Some(t) => self.text(t),
            None => self.null(),
        }
    }

    pub fn null(&mut self) -> &mut Self {
        self.separate();
        self.buf.extend_from_slice(b"\\N");
        self
    }

    /// Any value, as the column's type reads its text (an integer into a text column is its
    /// digits, as [`Value`]s are converted elsewhere).
    pub fn value(&mut self, v: Value<'_>) -> &mut Self {
        match v {
            Value::Null => self.null(),
            Value::Int(i) => self.int(i),
            Value::Real(r) => {
                use std::io::Write;
                self.separate();
                // `{:?}` is the shortest text that reads back as the same f64 (1e300, NaN, inf).
                let _ = write!(self.buf, "{r:?}");
                self
            }
            Value::Text(t) => self.text(t),
            Value::Blob(b) => {
                self.separate();
                self.buf.extend_from_slice(b"\\\\x");
                self.buf.extend_from_slice(hex::encode(b).as_bytes());
                self
            }
        }
    }

    pub fn end_row(&mut self) {
        self.buf.push(b'\n');
        self.rows += 1;
        self.in_row = false;
    }
}

/// An open transaction: statements run through it (it derefs to the [`Db`]); dropped without
/// [`Tx::commit`], everything it wrote is rolled back.
pub struct Tx<'d> {
    db: &'d Db,
    open: bool,
}

impl Tx<'_> {
    pub fn commit(mut self) -> anyhow::Result<()> {
        self.open = false;
        if self.db.dialect() == Dialect::Postgres {
            // PostgreSQL answers COMMIT in a failed transaction with a silent rollback: ask
            // first, so a failure inside is reported, never mistaken for a commit.
            self.db.execute_batch("SELECT 1").map_err(|e| {
                let _ = self.db.execute_batch("ROLLBACK");
                e.context("the transaction failed earlier; nothing of it was stored")
            })?;
        }
        self.db.execute_batch("COMMIT")
    }

    /// Ends the transaction without keeping anything it wrote.
    pub fn rollback(mut self) -> anyhow::Result<()> {
        self.open = false;
        self.db.execute_batch("ROLLBACK")
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Db;
    fn deref(&self) -> &Db {
        self.db
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open {
            // A failed rollback leaves nothing to do: the connection is dropped with the error.
            let _ = self.db.execute_batch("ROLLBACK");
        }
    }
}

/// A [`Value`] as SQLite binds it.
struct LiteValue<'a>(&'a Value<'a>);

impl rusqlite::ToSql for LiteValue<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self.0 {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(i),
            Value::Real(r) => ValueRef::Real(r),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// Runs `f`, which calls the synchronous PostgreSQL driver, where it may: the driver runs its
/// own small runtime and panics inside another's, and the LLM runner calls the store from
/// async code. On a multi-threaded runtime's worker the thread leaves the runtime for the call
/// (`block_in_place`); on a single-threaded one the call goes to a helper thread.
pub fn outside_async<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    match tokio::runtime::Handle::try_current() {
        Err(_) => f(),
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        Ok(_) => std::thread::scope(|scope| {
            scope
                .spawn(f)
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }),
    }
}

/// The PostgreSQL side: statement translation and caching, and value conversion.
mod pg {
    use std::collections::HashMap;
    use std::error::Error as StdError;

    use postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};

    use super::{Param, Value};

    /// The clock as SQLite spells it in the store's SQL ([`crate::store::NOW`]), and the same
    /// text (RFC 3339, UTC, milliseconds) from PostgreSQL.
    const PG_NOW: &str =
        r#"to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"#;

    pub struct Client {
        /// Always Some but while being dropped.
        client: Option<postgres::Client>,
        statements: HashMap<String, postgres::Statement>,
        /// Statements and COPYs sent ([`super::Db::statements_sent`]).
        pub sent: u64,
    }

    impl Drop for Client {
        fn drop(&mut self) {
            // Closing talks to the server through the driver's runtime, too.
            if let Some(client) = self.client.take() {
                super::outside_async(move || drop(client));
            }
        }
    }

    impl Client {
        pub fn new(client: postgres::Client) -> Self {
            Self {
                client: Some(client),
                statements: HashMap::new(),
                sent: 0,
            }
        }

        /// Runs one call of the synchronous driver (see [`super::outside_async`]).
        fn driver<T: Send>(&mut self, f: impl FnOnce(&mut postgres::Client) -> T + Send) -> T {
            self.sent += 1;
            let client = self
                .client
                .as_mut()
                .expect("the client lives until dropped");
            super::outside_async(move || f(client))
        }

        fn statement(&mut self, sql: &str) -> anyhow::Result<postgres::Statement> {
            if let Some(s) = self.statements.get(sql) {
                return Ok(s.clone());
            }
            let translated = translate(sql);
            let stmt = self
                .driver(|c| c.prepare(&translated))
                .map_err(|e| describe(e, &translated))?;
            self.statements.insert(sql.to_string(), stmt.clone());
            Ok(stmt)
        }

        pub fn execute(&mut self, sql: &str, params: &[&dyn Param]) -> anyhow::Result<usize> {
            let stmt = self.statement(sql)?;
            let values = pg_values(params);
            let refs: Vec<&(dyn ToSql + Sync)> =
                values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
            let n = self
                .driver(|c| c.execute(&stmt, &refs))
                .map_err(|e| describe(e, sql))?;
            Ok(n as usize)
        }

        pub fn query(
            &mut self,
            sql: &str,
            params: &[&dyn Param],
        ) -> anyhow::Result<Vec<postgres::Row>> {
            let stmt = self.statement(sql)?;
            let values = pg_values(params);
            let refs: Vec<&(dyn ToSql + Sync)> =
                values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
            self.driver(|c| c.query(&stmt, &refs))
                .map_err(|e| describe(e, sql))
        }

        /// Opens cursor `name` over query `sql`. The query is prepared on its own first to learn
        /// its parameters' types, which the DECLARE then spells out (`$1::int8`): a cursor's
        /// query is planned again at the first FETCH, and an untyped parameter would not match.
        pub fn declare(
            &mut self,
            name: &str,
            sql: &str,
            params: &[&dyn Param],
        ) -> anyhow::Result<()> {
            let types: Vec<String> = self
                .statement(sql)?
                .params()
                .iter()
                .map(|t| t.name().to_string())
                .collect();
            let translated = format!(
                "DECLARE {name} NO SCROLL CURSOR WITH HOLD FOR {}",
                translate_typed(sql, &types)
            );
            let values = pg_values(params);
            let refs: Vec<&(dyn ToSql + Sync)> =
                values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
            self.driver(|c| c.execute(&translated, &refs))
                .map_err(|e| describe(e, &translated))?;
            Ok(())
        }

        pub fn fetch(&mut self, sql: &str) -> anyhow::Result<Vec<postgres::Row>> {
            self.driver(|c| c.query(sql, &[]))
                .map_err(|e| describe(e, sql))
        }

        pub fn copy_in(&mut self, sql: &str, data: &[u8]) -> anyhow::Result<u64> {
            use std::io::Write;
            self.driver(|c| {
                let mut writer = c.copy_in(sql)?;
                // An I/O error here is the connection's; the server's refusal comes at finish.
                if let Err(e) = writer.write_all(data) {
                    return Ok(Err(e));
                }
                writer.finish().map(Ok)
            })
            .map_err(|e| describe(e, sql))?
            .map_err(|e| anyhow::Error::new(e).context(format!("in: {sql}")))
        }

        pub fn batch(&mut self, sql: &str) -> anyhow::Result<()> {
            let translated = translate(sql);
            self.driver(|c| c.batch_execute(&translated))
                .map_err(|e| describe(e, &translated))
        }
    }

    /// The server's own message (code, detail, hint) with the statement it refused.
    fn describe(e: postgres::Error, sql: &str) -> anyhow::Error {
        let first_line = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        let short: String = first_line.chars().take(160).collect();
        match e.as_db_error() {
            Some(db) => {
                let mut msg = format!("{}: {}", db.code().code(), db.message());
                if let Some(d) = db.detail() {
                    msg.push_str(&format!(" ({d})"));
                }
                anyhow::Error::new(e.clone_db_code()).context(format!("{msg} — in: {short}"))
            }
            None => anyhow::Error::new(e).context(format!("in: {short}")),
        }
    }

    /// A server error's SQLSTATE kept for callers ([`super::pg_error_code`]).
    #[derive(Debug)]
    pub struct SqlState(pub String);
    impl std::fmt::Display for SqlState {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "SQLSTATE {}", self.0)
        }
    }
    impl std::error::Error for SqlState {}

    trait CloneDbCode {
        fn clone_db_code(&self) -> SqlState;
    }
    impl CloneDbCode for postgres::Error {
        fn clone_db_code(&self) -> SqlState {
            SqlState(
                self.code()
                    .map(|c| c.code().to_string())
                    .unwrap_or_default(),
            )
        }
    }

    /// SQLite's spelling to PostgreSQL's: `?N` → `$N` outside quotes, the clock, `BEGIN
    /// IMMEDIATE`, `INSERT OR IGNORE`.
    pub fn translate(sql: &str) -> String {
        translate_typed(sql, &[])
    }

    /// [`translate`], each parameter cast to its type in `types` (when given).
    pub fn translate_typed(sql: &str, types: &[String]) -> String {
        let sql = sql.replace(crate::store::NOW, PG_NOW);
        let trimmed = sql.trim_start();
        let sql = match trimmed.strip_prefix("INSERT OR IGNORE INTO") {
            Some(rest) => format!("INSERT INTO{rest} ON CONFLICT DO NOTHING"),
            None => sql.clone(),
        };
        let mut out = String::with_capacity(sql.len() + 8);
        let mut quote: Option<char> = None;
        let mut chars = sql.chars().peekable();
        while let Some(c) = chars.next() {
            match quote {
                Some(q) => {
                    out.push(c);
                    if c == q {
                        quote = None;
                    }
                }
                None => match c {
                    '\'' | '"' => {
                        quote = Some(c);
                        out.push(c);
                    }
                    '?' => {
                        let mut digits = String::new();
                        while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                            digits.push(*d);
                            chars.next();
                        }
                        if digits.is_empty() {
                            digits.push('1');
                        }
                        let typed = digits
                            .parse::<usize>()
                            .ok()
                            .and_then(|n| types.get(n.wrapping_sub(1)));
                        match typed {
                            Some(ty) => out.push_str(&format!("(${digits}::{ty})")),
                            None => {
                                out.push('$');
                                out.push_str(&digits);
                            }
                        }
                    }
                    _ => out.push(c),
                },
            }
        }
        out
    }

    /// Parameters as owned values the driver can send.
    fn pg_values(params: &[&dyn Param]) -> Vec<PgValue> {
        params
            .iter()
            .map(|p| match p.value() {
                Value::Null => PgValue::Null,
                Value::Int(i) => PgValue::Int(i),
                Value::Real(r) => PgValue::Real(r),
                Value::Text(t) => PgValue::Text(t.to_string()),
                Value::Blob(b) => PgValue::Blob(b.to_vec()),
            })
            .collect()
    }

    #[derive(Debug)]
    enum PgValue {
        Null,
        Int(i64),
        Real(f64),
        Text(String),
        Blob(Vec<u8>),
    }

    impl ToSql for PgValue {
        fn to_sql(
            &self,
            ty: &Type,
            out: &mut postgres::types::private::BytesMut,
        ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
            match self {
                PgValue::Null => Ok(IsNull::Yes),
                PgValue::Int(i) => match *ty {
                    Type::INT8 => i.to_sql(ty, out),
                    Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                    Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                    Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                    Type::FLOAT4 => (*i as f32).to_sql(ty, out),
                    Type::BOOL => (*i != 0).to_sql(ty, out),
                    _ => i.to_string().to_sql(&Type::TEXT, out),
                },
                PgValue::Real(r) => match *ty {
                    Type::FLOAT4 => (*r as f32).to_sql(ty, out),
                    Type::FLOAT8 => r.to_sql(ty, out),
                    Type::INT8 | Type::INT4 | Type::INT2 => {
                        Err(format!("{r} is not an integer").into())
                    }
                    _ => r.to_string().to_sql(&Type::TEXT, out),
                },
                PgValue::Text(t) => match *ty {
                    Type::BYTEA => t.as_bytes().to_sql(ty, out),
                    Type::INT8 => t.trim().parse::<i64>()?.to_sql(ty, out),
                    Type::INT4 => t.trim().parse::<i32>()?.to_sql(ty, out),
                    Type::FLOAT8 => t.trim().parse::<f64>()?.to_sql(ty, out),
                    _ => t.as_str().to_sql(&Type::TEXT, out),
                },
                PgValue::Blob(b) => b.as_slice().to_sql(&Type::BYTEA, out),
            }
        }

        fn accepts(_ty: &Type) -> bool {
            true
        }

        to_sql_checked!();
    }

    /// Any column, read as a [`Value`].
    pub struct AnyValue<'a>(pub Value<'a>);

    impl<'a> FromSql<'a> for AnyValue<'a> {
        fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
            Ok(AnyValue(match *ty {
                Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
                Type::INT4 => Value::Int(i32::from_sql(ty, raw)? as i64),
                Type::INT2 => Value::Int(i16::from_sql(ty, raw)? as i64),
                Type::OID => Value::Int(u32::from_sql(ty, raw)? as i64),
                Type::BOOL => Value::Int(bool::from_sql(ty, raw)? as i64),
                Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
                Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)? as f64),
                Type::NUMERIC => numeric(raw)?,
                Type::BYTEA => Value::Blob(raw),
                _ => Value::Text(std::str::from_utf8(raw)?),
            }))
        }

        fn from_sql_null(_ty: &Type) -> Result<Self, Box<dyn StdError + Sync + Send>> {
            Ok(AnyValue(Value::Null))
        }

        fn accepts(_ty: &Type) -> bool {
            true
        }
    }

    /// A NUMERIC (what PostgreSQL's `sum` and `avg` of integers give) in its binary form:
    /// digit count, weight, sign, scale, then base-10000 digits. Integral values come back as
    /// integers, the rest as reals.
    fn numeric(raw: &[u8]) -> Result<Value<'static>, Box<dyn StdError + Sync + Send>> {
        let word = |i: usize| -> Result<i16, Box<dyn StdError + Sync + Send>> {
            raw.get(i * 2..i * 2 + 2)
                .map(|b| i16::from_be_bytes([b[0], b[1]]))
                .ok_or_else(|| "a truncated NUMERIC".into())
        };
        let (ndigits, weight, sign, scale) = (word(0)?, word(1)?, word(2)? as u16, word(3)?);
        if sign == 0xC000 {
            return Ok(Value::Real(f64::NAN));
        }
        let mut value = 0f64;
        for d in 0..ndigits as usize {
            let digit = word(4 + d)? as f64;
            value += digit * 10000f64.powi(weight as i32 - d as i32);
        }
        if sign == 0x4000 {
            value = -value;
        }
        Ok(if scale == 0 && value.abs() < 9.0e15 {
            Value::Int(value as i64)
        } else {
            Value::Real(value)
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn parameters_become_numbered_dollars_outside_quotes() {
            assert_eq!(
                translate("SELECT a FROM t WHERE b = ?1 AND c = '?2' AND d = ?12"),
                "SELECT a FROM t WHERE b = $1 AND c = '?2' AND d = $12"
            );
        }

        #[test]
        fn typed_parameters_are_cast() {
            assert_eq!(
                translate_typed(
                    "SELECT a FROM t WHERE ?2 IS NULL OR b = ?2 AND c > ?1",
                    &["int8".into(), "text".into()]
                ),
                "SELECT a FROM t WHERE ($2::text) IS NULL OR b = ($2::text) AND c > ($1::int8)"
            );
        }

        #[test]
        fn insert_or_ignore_becomes_on_conflict_do_nothing() {
            assert_eq!(
                translate("INSERT OR IGNORE INTO t (a) VALUES (?1)"),
                "INSERT INTO t (a) VALUES ($1) ON CONFLICT DO NOTHING"
            );
        }

        #[test]
        fn numerics_decode_to_integers_and_reals() {
            // 12345.5: two digits (1, 2345.5 → 1|2345|5000), weight 1, scale 1.
            let raw: Vec<u8> = [3i16, 1, 0, 1, 1, 2345, 5000]
                .iter()
                .flat_map(|w| w.to_be_bytes())
                .collect();
            assert_eq!(numeric(&raw).unwrap(), Value::Real(12345.5));
            let raw: Vec<u8> = [1i16, 0, 0x4000u16 as i16, 0, 42]
                .iter()
                .flat_map(|w| w.to_be_bytes())
                .collect();
            assert_eq!(numeric(&raw).unwrap(), Value::Int(-42));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_rows_escape_what_the_text_format_reads_as_separators() {
        let mut rows = CopyRows::default();
        rows.int(-7)
            .text("a\tb\nc\\d\re ü")
            .null()
            .opt_text(None)
            .opt_text(Some(""))
            .end_row();
        rows.value(Value::Real(0.1))
            .value(Value::Real(1e300))
            .value(Value::Blob(&[0, 0xab]))
            .value(Value::Text("\\N"))
            .end_row();
        assert_eq!(rows.rows(), 2);
        assert_eq!(
            String::from_utf8(rows.buf.clone()).unwrap(),
            "-7\ta\\tb\\nc\\\\d\\re ü\t\\N\t\\N\t\n0.1\t1e300\t\\\\x00ab\t\\\\N\n"
        );
        rows.clear();
        assert!(rows.is_empty());
    }
}
