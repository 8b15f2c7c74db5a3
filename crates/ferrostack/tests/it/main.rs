//! Integration tests: each starts the real `ferrostack up` binary on an ephemeral
//! port with its own state directory and drives it over HTTP. Every test runs on
//! SQLite, and again on PostgreSQL when `FERROSTACK_TEST_POSTGRES` names a server
//! (`postgres://user@host:port`; each server gets a fresh database).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod harness;

mod auth;
mod compute_catalog;
mod ec2;
mod image;
mod lifecycle;
mod network;
mod reliability;
mod resources;
mod seams;
mod servers;
