//! `tern bench report FILES... [--svg OUT]`: merges the `--json` and `--hdr` outputs of
//! runs (several processes, several machines) exactly: per-second counts add by wall-clock
//! second, HDR histograms add. Prints the merged per-second lines and summary, and draws
//! throughput and latency over time as an SVG chart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use serde_json::Value;

use super::stats::{new_histogram, percentiles};
use crate::mosq::{self, exit};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReportError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line of a `--json` file is not what `tern bench` writes.
    #[error("{path}:{line}: not a tern bench --json line: {why}")]
    Json {
        path: PathBuf,
        line: usize,
        why: String,
    },
    /// An `--hdr` file is not an HdrHistogram interval log.
    #[error("{path}: not an HdrHistogram interval log: {why}")]
    Hdr { path: PathBuf, why: String },
    /// The chart could not be drawn or written.
    #[error("cannot draw {path}: {why}")]
    Svg { path: PathBuf, why: String },
}

/// Runs merged so far.
#[derive(Debug, Default)]
pub(crate) struct Merged {
    /// (wall-clock second, counter) → messages in that second.
    pub(crate) per_second: BTreeMap<(u64, String), u64>,
    /// (wall-clock second, gauge) → the gauges of the runs added (`established`).
    pub(crate) gauges: BTreeMap<(u64, String), u64>,
    /// Lost messages from the runs' summaries.
    pub(crate) lost: u64,
    /// Failures from the runs' summaries: (stage, reason code as printed) → (count, the
    /// first message).
    pub(crate) failures: BTreeMap<(String, String), (u64, String)>,
    /// The latency histograms, per tag (`latency`, `connect`).
    pub(crate) latency: BTreeMap<String, Histogram<u64>>,
    /// Per wall-clock second (of the interval's start), per tag.
    pub(crate) latency_per_second: BTreeMap<(String, u64), Histogram<u64>>,
    /// Files merged.
    pub(crate) files: usize,
}

impl Merged {
    /// Adds one file, `--json` lines or an `--hdr` log (told apart by content).
    pub(crate) fn add_file(&mut self, path: &Path) -> Result<(), ReportError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReportError::Read {
            path: path.to_owned(),
            source,
        })?;
        self.files += 1;
        if text.trim_start().starts_with('{') {
            self.add_json(path, &text)
        } else {
            self.add_hdr(path, &text)
        }
    }

    fn add_json(&mut self, path: &Path, text: &str) -> Result<(), ReportError> {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = |why: &str| ReportError::Json {
                path: path.to_owned(),
                line: i + 1,
                why: why.to_owned(),
            };
            let v: Value = serde_json::from_str(line).map_err(|e| bad(&e.to_string()))?;
            if let Some(s) = v.get("summary") {
                self.lost += s.get("lost").and_then(Value::as_u64).unwrap_or(0);
                self.add_failures(s);
                continue;
            }
            let t = v
                .get("t")
                .and_then(Value::as_u64)
                .ok_or_else(|| bad("no \"t\""))?;
            if let Some(g) = v.get("gauge").and_then(Value::as_str) {
                let value = v
                    .get("value")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| bad("no \"value\""))?;
                *self.gauges.entry((t, g.to_owned())).or_default() += value;
                continue;
            }
            let counter = v
                .get("counter")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("no \"counter\""))?;
            let count = v
                .get("count")
                .and_then(Value::as_u64)
                .ok_or_else(|| bad("no \"count\""))?;
            *self.per_second.entry((t, counter.to_owned())).or_default() += count;
        }
        Ok(())
    }

    /// Adds a summary's `connect_failures`, `publish_failures`, … by reason code.
    fn add_failures(&mut self, summary: &Value) {
        let Some(obj) = summary.as_object() else {
            return;
        };
        for (key, list) in obj {
            let (Some(stage), Some(list)) = (key.strip_suffix("_failures"), list.as_array()) else {
                continue;
            };
            for f in list {
                // Summaries before `reason` existed carry only the number.
                let reason = match (f.get("reason").and_then(Value::as_str), f.get("code")) {
                    (Some(r), _) => r.to_owned(),
                    (None, Some(c)) => c.to_string(),
                    (None, None) => continue,
                };
                let count = f.get("count").and_then(Value::as_u64).unwrap_or(0);
                let error = f.get("error").and_then(Value::as_str).unwrap_or_default();
                self.failures
                    .entry((stage.to_owned(), reason))
                    .or_insert_with(|| (0, error.to_owned()))
                    .0 += count;
            }
        }
    }

    fn add_hdr(&mut self, path: &Path, text: &str) -> Result<(), ReportError> {
        let bad = |why: String| ReportError::Hdr {
            path: path.to_owned(),
            why,
        };
        let mut de = Deserializer::new();
        let mut intervals = 0;
        for entry in IntervalLogIterator::new(text.as_bytes()) {
            let LogEntry::Interval(iv) = entry.map_err(|e| bad(format!("{e:?}")))? else {
                continue;
            };
            intervals += 1;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(iv.encoded_histogram())
                .map_err(|e| bad(e.to_string()))?;
            let h: Histogram<u64> = de
                .deserialize(&mut bytes.as_slice())
                .map_err(|e| bad(format!("{e:?}")))?;
            let tag = iv.tag().map_or("latency", |t| t.as_str()).to_owned();
            let second = iv.start_timestamp().as_secs();
            let add = |into: &mut Histogram<u64>| into.add(&h).map_err(|e| bad(format!("{e:?}")));
            add(self
                .latency
                .entry(tag.clone())
                .or_insert_with(new_histogram))?;
            add(self
                .latency_per_second
                .entry((tag, second))
                .or_insert_with(new_histogram))?;
        }
        if intervals == 0 && !text.starts_with('#') {
            return Err(bad("no histogram in it".into()));
        }
        Ok(())
    }

    /// Counter totals over every second.
    pub(crate) fn totals(&self) -> BTreeMap<&str, u64> {
        let mut t = BTreeMap::new();
        for ((_, c), n) in &self.per_second {
            *t.entry(c.as_str()).or_default() += n;
        }
        t
    }

    /// The merged per-second lines and summary.
    pub(crate) fn text(&self) -> String {
        let first = self.per_second.keys().next().map_or(0, |k| k.0);
        let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
        let mut s = format!("merged {} files\n", self.files);
        for ((t, c), n) in &self.per_second {
            let total = totals.entry(c.as_str()).or_default();
            *total += n;
            s += &format!("{}s {c} total={total} rate={n}/sec\n", t - first);
        }
        for ((t, g), n) in &self.gauges {
            s += &format!("{}s {g}={n}\n", t.saturating_sub(first));
        }
        let seconds = self
            .per_second
            .keys()
            .map(|k| k.0)
            .collect::<std::collections::BTreeSet<_>>();
        s += &format!("summary: {} seconds\n", seconds.len());
        for (c, n) in self.totals() {
            s += &format!("  {c:<13} {n:>12}\n");
        }
        s += &format!("  {:<13} {:>12}\n", "lost", self.lost);
        for ((stage, reason), (n, error)) in &self.failures {
            s += &format!("  {stage} failures, reason code {reason}: {n} ({error})\n");
        }
        for (tag, h) in &self.latency {
            s += &format!("  {tag} ms ({} samples):", h.len());
            for (name, v) in percentiles(h) {
                s += &format!(" {name}={v:.3}");
            }
            s.push('\n');
        }
        s
    }

    /// Draws throughput per counter and latency percentiles per second.
    pub(crate) fn svg(&self, out: &Path) -> Result<(), ReportError> {
        self.draw(out).map_err(|why| ReportError::Svg {
            path: out.to_owned(),
            why,
        })
    }

    fn draw(&self, out: &Path) -> Result<(), String> {
        use plotters::prelude::*;
        let e = |e: &dyn std::fmt::Display| e.to_string();
        let first = self
            .per_second
            .keys()
            .map(|k| k.0)
            .chain(self.latency_per_second.keys().map(|k| k.1))
            .chain(self.gauges.keys().map(|k| k.0))
            .min()
            .unwrap_or(0);
        let root = SVGBackend::new(out, (1000, 800)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let (top, bottom) = root.split_vertically(400);

        let mut series: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
        for ((t, c), n) in self.per_second.iter().chain(&self.gauges) {
            series
                .entry(c.as_str())
                .or_default()
                .push(((t - first) as f64, *n as f64));
        }
        let xmax = series.values().flatten().map(|p| p.0).fold(1.0, f64::max);
        let ymax = series.values().flatten().map(|p| p.1).fold(1.0, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(&top)
            .caption(
                "throughput (merged, per wall-clock second)",
                ("sans-serif", 20),
            )
            .margin(15)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..xmax, 0f64..ymax)
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("per second")
            .draw()
            .map_err(|x| e(&x))?;
        for (i, (name, points)) in series.into_iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(|x| e(&x))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|x| e(&x))?;

        let quantiles = [("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999), ("max", 1.0)];
        let mut lat: Vec<(&str, Vec<(f64, f64)>)> =
            quantiles.iter().map(|(n, _)| (*n, Vec::new())).collect();
        for ((tag, t), h) in &self.latency_per_second {
            if tag != "latency" && self.latency.contains_key("latency") || h.is_empty() {
                continue;
            }
            for (i, (_, q)) in quantiles.iter().enumerate() {
                let v = h.value_at_quantile(*q) as f64 / 1000.0;
                lat[i].1.push(((t - first) as f64, v));
            }
        }
        let lmax = lat
            .iter()
            .flat_map(|s| &s.1)
            .map(|p| p.1)
            .fold(0.001, f64::max)
            * 1.1;
        let tag = self.latency.keys().next().map_or("latency", String::as_str);
        let mut chart = ChartBuilder::on(&bottom)
            .caption(
                format!("{tag} per second (ms, merged histograms)"),
                ("sans-serif", 20),
            )
            .margin(15)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..xmax, 0f64..lmax)
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("ms")
            .draw()
            .map_err(|x| e(&x))?;
        for (i, (name, points)) in lat.into_iter().enumerate() {
            let color = Palette99::pick(i + 4).to_rgba();
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(|x| e(&x))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|x| e(&x))?;
        root.present().map_err(|x| e(&x))
    }
}

/// `tern bench report FILES... [--svg OUT]`.
pub(crate) fn main(args: &[String]) -> ExitCode {
    let mut files = Vec::new();
    let mut svg = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--svg" => match it.next() {
                Some(p) => svg = Some(PathBuf::from(p)),
                None => return super::usage_error("--svg needs a file"),
            },
            "--help" => {
                mosq::out(
                    "usage: tern bench report FILES... [--svg OUT]\n\
                     merges --json lines (per-second counts add by wall-clock second) and\n\
                     --hdr interval logs (histograms add) of any number of runs\n",
                );
                return ExitCode::SUCCESS;
            }
            f if f.starts_with('-') && f != "-" => {
                return super::usage_error(&format!("unknown report option {f:?}"));
            }
            f => files.push(PathBuf::from(f)),
        }
    }
    if files.is_empty() {
        return super::usage_error("tern bench report needs --json or --hdr files");
    }
    let mut merged = Merged::default();
    let result = files
        .iter()
        .try_for_each(|f| merged.add_file(f))
        .and_then(|()| svg.as_deref().map_or(Ok(()), |p| merged.svg(p)));
    if let Err(e) = result {
        mosq::err_line(format_args!("Error: {e}"));
        return ExitCode::from(exit::ERROR);
    }
    mosq::out(&merged.text());
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hdrhistogram::serialization::V2DeflateSerializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

    use super::*;

    fn hdr_log(intervals: &[(u64, &[u64])]) -> String {
        let mut buf = Vec::new();
        let mut ser = V2DeflateSerializer::new();
        let mut w = IntervalLogWriterBuilder::new()
            .add_comment("test")
            .begin_log_with(&mut buf, &mut ser)
            .expect("log");
        for (start, values) in intervals {
            let mut h = new_histogram();
            for v in *values {
                h.record(*v).expect("record");
            }
            w.write_histogram(
                &h,
                Duration::from_secs(*start),
                Duration::from_secs(1),
                Tag::new("latency"),
            )
            .expect("write");
        }
        drop(w);
        String::from_utf8(buf).expect("utf8")
    }

    #[test]
    fn merging_two_runs_equals_one_run_of_both() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.hdr");
        let b = dir.path().join("b.hdr");
        std::fs::write(&a, hdr_log(&[(100, &[100, 200, 300]), (101, &[5000])])).expect("a");
        std::fs::write(&b, hdr_log(&[(101, &[250, 90_000])])).expect("b");
        let ja = dir.path().join("a.json");
        let jb = dir.path().join("b.json");
        std::fs::write(
            &ja,
            "{\"t\":100,\"counter\":\"recv\",\"total\":3,\"count\":3}\n\
             {\"t\":101,\"counter\":\"recv\",\"total\":4,\"count\":1}\n\
             {\"summary\":{\"lost\":2}}\n",
        )
        .expect("ja");
        std::fs::write(
            &jb,
            "{\"t\":101,\"counter\":\"recv\",\"total\":2,\"count\":2}\n\
             {\"t\":101,\"gauge\":\"established\",\"value\":7}\n",
        )
        .expect("jb");

        let mut merged = Merged::default();
        for f in [&a, &b, &ja, &jb] {
            merged.add_file(f).expect("merge");
        }
        let mut all = new_histogram();
        for v in [100, 200, 300, 5000, 250, 90_000] {
            all.record(v).expect("record");
        }
        let h = &merged.latency["latency"];
        assert_eq!(h, &all);
        assert_eq!(h.value_at_quantile(0.99), all.value_at_quantile(0.99));
        assert_eq!(
            merged.latency_per_second[&("latency".to_owned(), 101)].len(),
            3
        );
        assert_eq!(merged.per_second[&(100, "recv".to_owned())], 3);
        assert_eq!(merged.per_second[&(101, "recv".to_owned())], 3);
        assert_eq!(merged.totals()["recv"], 6);
        assert_eq!(merged.lost, 2);
        assert_eq!(merged.gauges[&(101, "established".to_owned())], 7);
        let svg = dir.path().join("out.svg");
        merged.svg(&svg).expect("svg");
        let drawn = std::fs::read_to_string(&svg).expect("read svg");
        assert!(drawn.contains("<svg") && drawn.contains("recv") && drawn.contains("p99"));
    }

    #[test]
    fn failures_add_by_stage_and_reason_code() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
        std::fs::write(
            &a,
            "{\"summary\":{\"lost\":0,\"connect_failures\":[{\"code\":-5,\"count\":2,\"error\":\"refused\"}],\
             \"publish_failures\":[{\"code\":135,\"reason\":\"0x87\",\"count\":3,\"error\":\"PUBACK\"}]}}\n",
        )
        .expect("a");
        std::fs::write(
            &b,
            "{\"summary\":{\"publish_failures\":[{\"code\":135,\"reason\":\"0x87\",\"count\":4,\"error\":\"other\"}],\
             \"subscribe_failures\":[]}}\n",
        )
        .expect("b");
        let mut merged = Merged::default();
        for f in [&a, &b] {
            merged.add_file(f).expect("merge");
        }
        let text = merged.text();
        assert!(
            text.contains("  publish failures, reason code 0x87: 7 (PUBACK)\n"),
            "{text}"
        );
        assert!(
            text.contains("  connect failures, reason code -5: 2 (refused)\n"),
            "{text}"
        );
    }

    #[test]
    fn foreign_files_are_refused_with_their_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("x.json");
        std::fs::write(&f, "{\"hello\": 1}\n").expect("write");
        let err = Merged::default().add_file(&f).expect_err("refused");
        assert!(err.to_string().contains("x.json:1"), "{err}");
    }
}
