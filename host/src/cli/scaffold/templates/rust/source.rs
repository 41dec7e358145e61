//! @NAME@: an rmq-openmldb source. It produces the records 1..=`count` as
//! JSON (`{"seq": N}`) on the topic `topic`, at most `records.per.poll`
//! per poll, and resumes after the last record the broker acknowledged
//! when the connector restarts. Replace `next_records` with your own
//! reading (the `sql` import reaches the database a connector's
//! `connection.url` grants); `rmq-openmldb plugin build` makes the component.

wit_bindgen::generate!({ path: "wit", world: "source-plugin", additional_derives: [PartialEq] });

use exports::rmq_openmldb::plugin::source::{Guest, SourcePosition, SourceRecord};
use rmq_openmldb::plugin::types::{ErrorKind, Needs, PluginError, PluginInfo};
use std::cell::RefCell;

/// The stream's name in stored positions.
const PARTITION: &str = "sequence";

#[derive(Debug, Default, Clone, PartialEq)]
struct Sequence {
    topic: String,
    count: u64,
    per_poll: u64,
    /// The last record handed to the host.
    last: u64,
}

thread_local! {
    static STATE: RefCell<Sequence> = RefCell::new(Sequence::default());
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Plugin;

impl Guest for Plugin {
    /// `positions` are those the host stored for records the broker
    /// acknowledged: start after them.
    fn init(config: Vec<(String, String)>, positions: Vec<SourcePosition>) -> Result<PluginInfo, PluginError> {
        let sequence = Sequence::configure(&config, &positions)?;
        STATE.with(|s| *s.borrow_mut() = sequence);
        Ok(PluginInfo { name: "@NAME@".into(), version: env!("CARGO_PKG_VERSION").into(), max_batch: None, needs: Needs::empty() })
    }

    /// Up to `max` records; none means nothing new (the host waits a poll
    /// interval before asking again).
    fn poll(max: u32) -> Result<Vec<SourceRecord>, PluginError> {
        Ok(STATE.with(|s| s.borrow_mut().next_records(u64::from(max))))
    }
}

impl Sequence {
    fn configure(config: &[(String, String)], positions: &[SourcePosition]) -> Result<Sequence, PluginError> {
        let get = |key: &str| config.iter().find(|(k, _)| k == key).map(|(_, v)| v.trim());
        let number = |key: &str, default: u64| -> Result<u64, PluginError> {
            match get(key) {
                None => Ok(default),
                Some(raw) => raw.parse().map_err(|_| invalid(format!("config key \"{key}\": \"{raw}\" is not a whole number"))),
            }
        };
        let topic = get("topic").filter(|t| !t.is_empty()).ok_or_else(|| invalid("config key \"topic\" is missing".into()))?;
        let last = match positions.iter().find(|p| p.partition == PARTITION) {
            Some(p) => p.position.parse().map_err(|_| invalid(format!("stored position \"{}\" is not a number", p.position)))?,
            None => 0,
        };
        Ok(Sequence { topic: topic.to_string(), count: number("count", 1000)?, per_poll: number("records.per.poll", 10)?, last })
    }

    /// The source itself: the next records and the position each reaches.
    fn next_records(&mut self, max: u64) -> Vec<SourceRecord> {
        let end = self.count.min(self.last + self.per_poll.min(max));
        let records = (self.last + 1..=end)
            .map(|seq| SourceRecord {
                topic: self.topic.clone(),
                keys: Some(seq.to_string()),
                tags: None,
                properties: Vec::new(),
                body: format!("{{\"seq\": {seq}}}").into_bytes(),
                partition: PARTITION.into(),
                position: seq.to_string(),
            })
            .collect();
        self.last = end.max(self.last);
        records
    }
}

fn invalid(message: String) -> PluginError {
    PluginError { kind: ErrorKind::InvalidConfig, message }
}

// Exported only in the component; native builds (cargo test) skip it.
#[cfg(target_arch = "wasm32")]
export!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resumes_after_the_stored_position_and_stops_at_count() {
        let config = vec![("topic".to_string(), "t".to_string()), ("count".to_string(), "12".to_string())];
        let stored = vec![SourcePosition { partition: PARTITION.into(), position: "5".into() }];
        let mut sequence = Sequence::configure(&config, &stored).unwrap();
        let first = sequence.next_records(100);
        assert_eq!(first.iter().map(|r| r.position.as_str()).collect::<Vec<_>>(), ["6", "7", "8", "9", "10", "11", "12"]);
        assert_eq!(first[0].body, b"{\"seq\": 6}");
        assert!(sequence.next_records(100).is_empty());
        assert!(Sequence::configure(&[], &[]).unwrap_err().message.contains("\"topic\""));
    }
}
