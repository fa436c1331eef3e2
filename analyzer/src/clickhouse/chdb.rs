//! ClickHouse's engine in-process: libchdb, loaded at run time through the ADBC driver
//! manager (its `chdb_adbc_init` entry point), which hands back Arrow batches. No unsafe code
//! here: the driver manager owns the FFI.

use std::path::{Path, PathBuf};

use adbc_core::options::{AdbcVersion, OptionDatabase, OptionValue};
use adbc_core::{Connection as _, Database as _, Driver as _, Statement as _};
use adbc_driver_manager::{ManagedConnection, ManagedDatabase, ManagedDriver};
use arrow_array::RecordBatch;

use super::sql::{param_text, quote};
use super::{ClickHouseError, Engine};

/// The variable naming libchdb.so.
pub const LIBCHDB_VAR: &str = "MQTRACE_LIBCHDB";

/// The libchdb release the project tests against (npm `@chdb/lib-linux-x64-gnu`).
pub const LIBCHDB_VERSION: &str = "26.7.3-stable.1";

/// Where libchdb.so is: `MQTRACE_LIBCHDB`, else `libchdb/libchdb.so` beside the directory of
/// this program (where `scripts/libchdb` puts it for a build in `target/`).
pub fn library() -> Result<PathBuf, ClickHouseError> {
    if let Some(path) = std::env::var_os(LIBCHDB_VAR) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(ClickHouseError::Library(format!(
                "{LIBCHDB_VAR}={} is not a file: point it at libchdb.so (npm package \
                 @chdb/lib-linux-x64-gnu@{LIBCHDB_VERSION}; scripts/libchdb fetches it)",
                path.display()
            )))
        };
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("libchdb").join("libchdb.so")));
    match beside {
        Some(path) if path.is_file() => Ok(path),
        _ => Err(ClickHouseError::Library(format!(
            "libchdb.so was not found: set {LIBCHDB_VAR} to its path (npm package \
             @chdb/lib-linux-x64-gnu@{LIBCHDB_VERSION}; scripts/libchdb fetches it)"
        ))),
    }
}

/// A session on a ClickHouse data directory. Fields drop in order: the connection before its
/// database before the driver (libchdb crashes at exit if a connection outlives it).
pub struct Chdb {
    connection: ManagedConnection,
    _database: ManagedDatabase,
    _driver: ManagedDriver,
}

impl Chdb {
    /// Opens `dir` (which must exist and hold a ClickHouse data directory unless `create`)
    /// with the library from [`library`].
    pub fn open(dir: &Path, create: bool) -> Result<Chdb, ClickHouseError> {
        Self::open_with(&library()?, dir, create)
    }

    /// [`Chdb::open`] with the library at `library`.
    pub fn open_with(library: &Path, dir: &Path, create: bool) -> Result<Chdb, ClickHouseError> {
        if !create && !dir.join("metadata").is_dir() {
            return Err(ClickHouseError::Source(format!(
                "{}: not a ClickHouse data directory (no metadata/ in it); give the directory \
                 chdb or clickhouse-local wrote",
                dir.display()
            )));
        }
        if create {
            std::fs::create_dir_all(dir).map_err(|e| {
                ClickHouseError::Source(format!("{}: cannot create it: {e}", dir.display()))
            })?;
        }
        let dir = dir
            .canonicalize()
            .map_err(|e| ClickHouseError::Source(format!("{}: {e}", dir.display())))?;
        let mut driver = ManagedDriver::load_dynamic_from_filename(
            library,
            Some(b"chdb_adbc_init"),
            AdbcVersion::V110,
        )
        .map_err(|e| {
            ClickHouseError::Library(format!(
                "{}: cannot load it as libchdb ({}); {LIBCHDB_VAR} must name libchdb.so of \
                 @chdb/lib-linux-x64-gnu@{LIBCHDB_VERSION}",
                library.display(),
                e.message
            ))
        })?;
        let database = driver
            .new_database_with_opts([(
                OptionDatabase::Uri,
                OptionValue::String(format!("chdb://{}", dir.display())),
            )])
            .map_err(|e| engine(&dir, e))?;
        let connection = database.new_connection().map_err(|e| {
            ClickHouseError::Source(format!(
                "{}: cannot open it ({}); is another process using it? One process at a \
                 time can open a data directory",
                dir.display(),
                e.message
            ))
        })?;
        Ok(Chdb {
            connection,
            _database: database,
            _driver: driver,
        })
    }

    /// Runs one statement; its rows as Arrow batches.
    pub fn execute(&mut self, sql: &str) -> Result<Vec<RecordBatch>, ClickHouseError> {
        let mut statement = self
            .connection
            .new_statement()
            .map_err(|e| ClickHouseError::Query(e.message))?;
        statement
            .set_sql_query(sql)
            .map_err(|e| ClickHouseError::Query(e.message))?;
        let reader = statement
            .execute()
            .map_err(|e| ClickHouseError::Query(e.message))?;
        reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ClickHouseError::Query(e.to_string()))
    }
}

impl Engine for Chdb {
    /// Runs `sql` with `params`, set on the session first (`SET param_NAME = 'value'`: the
    /// values travel as quoted strings, never as part of the query's text).
    fn query(
        &mut self,
        sql: &str,
        params: &[(&'static str, String)],
    ) -> Result<Vec<RecordBatch>, ClickHouseError> {
        for (name, value) in params {
            self.execute(&format!(
                "SET param_{name} = {}",
                quote(&param_text(name, value))
            ))?;
        }
        self.execute(sql)
    }
}

fn engine(dir: &Path, e: adbc_core::error::Error) -> ClickHouseError {
    ClickHouseError::Source(format!("{}: {}", dir.display(), e.message))
}
