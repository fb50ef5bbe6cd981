//! The integration suite: one binary, a real server on a real socket per test, real SQLite
//! files and (when `TESSERA_TEST_POSTGRES_URL` is set) a fresh PostgreSQL database per test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod helpers;

mod admin_cli;
mod api_docs;
mod bad_input;
mod brute_force;
mod cli;
mod client_binding;
mod concurrency;
mod config_docs;
mod failures;
mod jwt;
mod lifecycle;
mod log_hygiene;
mod metrics;
mod migrations;
mod openapi;
mod persistence;
mod policy_chain;
mod refresh_expiry;
mod reload;
mod request_limits;
mod reuse;
mod scale_out;
mod shutdown;
mod storage_at_rest;
mod tls;
mod wal;
mod wazo_bad_input;
mod wazo_contract;
mod wazo_flow;
mod wazo_python;
mod wazo_sessions;
mod wso2_flow;
