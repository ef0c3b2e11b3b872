//! What a `MetricsPublisher` publishes, read back through a
//! `metrics-util` debugging recorder.

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tracing_osprofiler::metrics::MetricsPublisher;

/// One published value: its name, its labels (key, value), its value.
type Value = (String, Vec<(String, String)>, f64);

/// Every value one `publish` made.
pub struct Published(Vec<Value>);

impl Published {
    /// Publishes once into a recorder of this thread and reads it all.
    pub fn from(publisher: &MetricsPublisher) -> Published {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || publisher.publish());
        let values = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key();
                let labels = key
                    .labels()
                    .map(|l| (l.key().to_owned(), l.value().to_owned()))
                    .collect();
                let value = match value {
                    DebugValue::Counter(n) => n as f64,
                    DebugValue::Gauge(g) => g.0,
                    DebugValue::Histogram(_) => panic!("{} is a histogram", key.name()),
                };
                (key.name().to_owned(), labels, value)
            })
            .collect();
        Published(values)
    }

    /// The value of `name` (with the label `label`, if given); panics
    /// listing everything published if there is none.
    pub fn get(&self, name: &str, label: Option<(&str, &str)>) -> f64 {
        self.0
            .iter()
            .find(|(n, labels, _)| {
                n == name
                    && label.is_none_or(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, _, value)| *value)
            .unwrap_or_else(|| panic!("no {name} {label:?} in {:#?}", self.0))
    }
}
