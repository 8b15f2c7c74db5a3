//! The data seam, checked on the source: each domain crate's SQL lives in its
//! `records` module (`src/records/` or `src/records.rs`) and the database handle's
//! internals in `core/src/db/`. Anywhere else, sqlx, the pool, rows and SQL text
//! are refused, so a query written in a handler or a domain file fails here.

use std::fs;
use std::path::{Path, PathBuf};

/// What only a records module may write.
const SQL_ONLY: &[&str] = &[
    "sqlx::query",
    "sqlx::any",
    ".pool()",
    "AnyRow",
    "AnyConnection",
    "AnyPool",
    "Transaction<",
    "SELECT ",
    "INSERT INTO",
    "DELETE FROM",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn inside_a_seam(rel: &str) -> bool {
    rel.contains("/src/records/")
        || rel.ends_with("/src/records.rs")
        || rel.starts_with("core/src/db/")
}

#[test]
fn sql_lives_only_in_records_modules() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for krate in fs::read_dir(&crates).unwrap() {
        let src = krate.unwrap().path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    assert!(files.len() > 100, "found only {} source files", files.len());
    let mut found = Vec::new();
    for file in &files {
        let rel = file
            .strip_prefix(&crates)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if inside_a_seam(&rel) {
            continue;
        }
        let text = fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            // Each crate maps sqlx's error into its own once, in error.rs.
            if rel.ends_with("/src/error.rs") && line.contains("sqlx::Error") {
                continue;
            }
            if let Some(bad) = SQL_ONLY.iter().find(|s| line.contains(*s)) {
                found.push(format!("{rel}:{}: {bad:?} in {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "SQL outside the records modules:\n{}",
        found.join("\n")
    );
}
