//! The work both example services do for `GET /`: a simulated database
//! (it waits, so its busy time is far below its wall time), real CPU work
//! (busy close to wall), spawned tasks that carry the current span along,
//! and the extra wait `?delay_ms=N` asks for. The same span names in both
//! services, so their trees and reports compare line for line.

use std::time::Duration;

use tracing::Instrument as _;

#[tracing::instrument(skip_all)]
async fn db_query(statement: &'static str, millis: u64) -> usize {
    // Stands in for a database round trip: it waits, so its busy time is
    // far below its wall time.
    tokio::time::sleep(Duration::from_millis(millis)).await;
    statement.len()
}

#[tracing::instrument]
async fn fetch_profile(user: u32) -> usize {
    db_query("SELECT * FROM profiles WHERE user_id = ?", 12).await
}

#[tracing::instrument]
async fn fetch_permissions(user: u32) -> usize {
    db_query("SELECT * FROM grants WHERE user_id = ?", 8).await
}

/// Loads a user's data: two queries in tasks of their own.
#[tracing::instrument]
pub async fn load_user(user: u32) -> usize {
    // Spawned tasks carry the current span along, so their points hang
    // under `load_user`. (Under actix-web too: its workers run a tokio
    // runtime.)
    let profile = tokio::spawn(fetch_profile(user).in_current_span());
    let permissions = tokio::spawn(fetch_permissions(user).in_current_span());
    profile.await.unwrap_or(0) + permissions.await.unwrap_or(0)
}

/// Real CPU work (a checksum of the page): unlike `db_query`, which
/// waits, its busy time is close to its wall time (`osprof rank --busy`).
#[tracing::instrument]
pub async fn render(bytes: usize) -> String {
    let mut sum = bytes as u64;
    for i in 0..1_500_000u64 {
        sum = std::hint::black_box(sum.rotate_left(5) ^ i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    format!(
        "hello, user 42 ({bytes} bytes of data, checksum {:04x})\n",
        sum & 0xffff
    )
}

/// The extra work `GET /?delay_ms=N` asks for.
#[tracing::instrument]
pub async fn slow_work(delay_ms: u64) {
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
}
