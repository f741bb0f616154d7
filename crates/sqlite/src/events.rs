use crate::db::{Db, column, parse_timestamp, timestamp};
use async_trait::async_trait;
use ewf_domain::ports::EventStore;
use ewf_domain::{StoreError, StoredEvent};
use rusqlite::{Row, params};

fn event(row: &Row<'_>) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent {
        who: row.get("who")?,
        time_what: row.get("time_what")?,
        event_id: row.get("event_id")?,
        digest: row.get("digest")?,
        event_time: column(row, "event_time", parse_timestamp)?,
        event_source: row.get("event_source")?,
        detail_type: row.get("detail_type")?,
        event_detail: row.get("event_detail")?,
        order_id: row.get("order_id")?,
    })
}

#[async_trait]
impl EventStore for Db {
    async fn append(&self, event: &StoredEvent) -> Result<bool, StoreError> {
        // (who, time_what) names a delivery once and the digest its content once, so
        // neither a redelivered nor a re-emitted event is stored again.
        let stored = self.read("cannot store an event", |conn| {
            conn.prepare_cached(
                "INSERT INTO events (who, time_what, event_id, digest, event_time,
                     event_source, detail_type, event_detail, order_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                event.who,
                event.time_what,
                event.event_id,
                event.digest,
                timestamp(&event.event_time),
                event.event_source,
                event.detail_type,
                event.event_detail,
                event.order_id,
            ])
        })?;
        Ok(stored == 1)
    }

    async fn for_order(&self, order_id: &str) -> Result<Vec<StoredEvent>, StoreError> {
        self.read("cannot read an order's events", |conn| {
            let mut query =
                conn.prepare_cached("SELECT * FROM events WHERE order_id = ?1 ORDER BY time_what")?;
            query.query_map([order_id], event)?.collect()
        })
    }
}
