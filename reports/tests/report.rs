//! A tune report: every file is there, every SVG is well-formed XML with its title and
//! axis labels, and the CSV says what the JSON says.

use flowbench_bench::tune::{tune, TuneOptions, TuneResult};
use flowbench_engine::scenario::{parse_str, DEFAULT_SCENARIO};
use flowbench_reports::{write_tune_report, Header};

fn result() -> TuneResult {
    let s = parse_str(DEFAULT_SCENARIO, "log-pipeline.toml").unwrap_or_else(|e| panic!("{e}"));
    let opts = TuneOptions {
        grid: (5, 3),
        seeds: 1,
        events: 3_000,
        ..TuneOptions::default()
    };
    tune(&s, &opts, 2, None, &|_, _| {}).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_tune_report_has_its_files_charts_and_data() {
    let r = result();
    let dir = std::env::temp_dir().join(format!("flowbench-report-test-{}", std::process::id()));
    let header = Header {
        version: "0.1.0".into(),
        commit: "abc".into(),
        machine: "test (2 cores)".into(),
        date: "2026-12-01T00:00:00Z".into(),
    };
    let files = write_tune_report(&r, &header, &dir).unwrap_or_else(|e| panic!("{e}"));
    for name in [
        "index.html",
        "tune.json",
        "points.csv",
        "throughput-heatmap.svg",
        "p99.svg",
        "memory.svg",
        "pareto.svg",
        "busy.svg",
    ] {
        assert!(files.contains(&dir.join(name)), "{name} written");
        assert!(dir.join(name).is_file(), "{name} exists");
        if let Some(stem) = name.strip_suffix(".svg") {
            assert!(
                files.contains(&dir.join(format!("{stem}.png"))),
                "{stem}.png written"
            );
            check_png(&dir.join(format!("{stem}.png")));
        }
    }
    let expect = [
        (
            "throughput-heatmap.svg",
            vec![
                "Throughput over max_demand",
                "max_demand",
                "min_demand / max_demand",
            ],
        ),
        (
            "p99.svg",
            vec![
                "p99 latency against max_demand",
                "max_demand (log scale)",
                "p99 latency (us)",
                "min ratio 0.00",
            ],
        ),
        (
            "memory.svg",
            vec!["Peak memory against max_demand", "peak events held"],
        ),
        (
            "pareto.svg",
            vec![
                "Pareto frontier",
                "p99 latency (us)",
                "throughput (events/s, virtual)",
                "recommended",
            ],
        ),
        (
            "busy.svg",
            vec![
                "Busy fraction of each stage",
                "busy fraction (0 to 1)",
                "parse",
            ],
        ),
    ];
    for (name, texts) in expect {
        let svg = std::fs::read_to_string(dir.join(name)).expect("readable");
        let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        let words: String = doc
            .descendants()
            .filter(|n| n.is_text())
            .filter_map(|n| n.text())
            .collect::<Vec<_>>()
            .join(" ");
        for t in texts {
            assert!(words.contains(t), "{name} has no `{t}`");
        }
    }
    let html = std::fs::read_to_string(dir.join("index.html")).expect("readable");
    assert!(html.contains("<h1>flowbench tune: log-pipeline</h1>"));
    assert!(html.contains("commit abc") && html.contains("test (2 cores)"));
    assert_eq!(html.matches("<svg").count(), 5, "every chart inline");
    // Offline: nothing is loaded from elsewhere (SVG's namespace is not a resource).
    for attr in ["src=\"http", "href=\"http", "@import", "<script"] {
        assert!(!html.contains(attr), "the page loads `{attr}`");
    }
    // The CSV says what the JSON says.
    let json: TuneResult =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tune.json")).expect("json"))
            .expect("a tune result");
    assert_eq!(json, r);
    let csv = std::fs::read_to_string(dir.join("points.csv")).expect("csv");
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), r.points.len());
    for (row, p) in rows.iter().zip(&r.points) {
        let tail: Vec<&str> = row.rsplitn(10, ',').collect();
        // point, "settings", throughput, spread, p50, p99, memory, drops, excess, failed, pareto
        assert!(row.starts_with(&format!("{},", p.index)));
        assert_eq!(tail[0], r.pareto.contains(&p.index).to_string());
        assert_eq!(
            tail[8].parse::<f64>().expect("throughput"),
            p.throughput_eps
        );
        assert_eq!(tail[5].parse::<f64>().expect("p99"), p.p99_us);
    }
}

#[test]
fn a_run_report_has_its_charts_over_virtual_time_and_data() {
    let s = parse_str(DEFAULT_SCENARIO, "log-pipeline.toml").unwrap_or_else(|e| panic!("{e}"));
    let opts = flowbench_sim::SimOptions {
        events: Some(50_000),
        sample_ns: 100_000,
        ..flowbench_sim::SimOptions::default()
    };
    let out = flowbench_sim::run(&s, &opts, None).unwrap_or_else(|e| panic!("{e}"));
    let dir = std::env::temp_dir().join(format!("flowbench-run-report-{}", std::process::id()));
    let files = flowbench_reports::write_run_report(&out, &Header::default(), &dir)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(files.len(), 15);
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "png"))
    {
        check_png(f);
    }
    for (name, texts) in [
        (
            "mailbox.svg",
            vec![
                "Mailbox depth per stage",
                "virtual time (ms)",
                "messages waiting",
                "parse",
            ],
        ),
        (
            "buffered.svg",
            vec!["Events buffered or queued", "events (buffer + queues)"],
        ),
        (
            "outstanding.svg",
            vec!["Outstanding demand per subscription", "parse -> agg-0"],
        ),
        (
            "latency.svg",
            vec!["Born-to-consumed latency", "latency (us)", "p99"],
        ),
        (
            "busy.svg",
            vec!["Busy fraction per stage", "busy fraction (0 to 1)"],
        ),
        (
            "losses.svg",
            vec![
                "Events dropped and lost over time",
                "events",
                "dropped + lost",
            ],
        ),
    ] {
        let svg = std::fs::read_to_string(dir.join(name)).expect("readable");
        let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{name}: {e}"));
        let words: String = doc
            .descendants()
            .filter_map(|n| n.text())
            .collect::<Vec<_>>()
            .join(" ");
        for t in texts {
            assert!(words.contains(t), "{name} has no `{t}`");
        }
    }
    let csv = std::fs::read_to_string(dir.join("series.csv")).expect("csv");
    assert_eq!(csv.lines().count(), 1 + out.series().len() * s.stages.len());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).expect("json"))
            .expect("JSON");
    assert_eq!(summary["trace_hash"], out.trace_hash_hex());
}

#[test]
fn a_run_report_shows_drops_over_time() {
    let text = include_str!("../../scenarios/bursty-overflow.toml");
    let s = parse_str(text, "bursty-overflow.toml").unwrap_or_else(|e| panic!("{e}"));
    let opts = flowbench_sim::SimOptions {
        sample_ns: 1_000_000,
        ..flowbench_sim::SimOptions::default()
    };
    let out = flowbench_sim::run(&s, &opts, None).unwrap_or_else(|e| panic!("{e}"));
    let dir = std::env::temp_dir().join(format!("flowbench-run-drops-{}", std::process::id()));
    flowbench_reports::write_run_report(&out, &Header::default(), &dir)
        .unwrap_or_else(|e| panic!("{e}"));
    let svg = std::fs::read_to_string(dir.join("losses.svg")).expect("readable");
    let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{e}"));
    let words: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
    assert!(
        words.iter().any(|w| w.contains("bursts dropped")),
        "{words:?}"
    );
    // The series rises with the bursts and ends at the summary's figure.
    let series = out.series();
    let drops = &series.stages[0].dropped;
    assert!(drops.windows(2).all(|w| w[0] <= w[1]));
    assert!(drops.iter().filter(|&&d| d > 0).count() > 10, "{drops:?}");
    let total: u64 = out.summary().base.stages[0].dropped;
    assert_eq!(drops.last().copied(), Some(total));
    let csv = std::fs::read_to_string(dir.join("series.csv")).expect("csv");
    let last = csv
        .lines()
        .rfind(|l| l.split(',').nth(1) == Some("bursts"))
        .expect("rows");
    assert_eq!(
        last.split(',').nth(6),
        Some(total.to_string().as_str()),
        "{last}"
    );
    std::fs::remove_dir_all(&dir).expect("clean");
}

/// A PNG copy: the chart's size, a white background, and its title drawn (dark pixels
/// in the title band, which only the embedded font can have put there).
fn check_png(path: &std::path::Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let img = resvg::tiny_skia::Pixmap::decode_png(&bytes)
        .unwrap_or_else(|e| panic!("{}: not a PNG: {e}", path.display()));
    assert_eq!(
        (img.width(), img.height()),
        (720, 420),
        "{}",
        path.display()
    );
    let px = img.pixels();
    let dark = |p: &resvg::tiny_skia::PremultipliedColorU8| {
        p.red() < 100 && p.green() < 100 && p.blue() < 100
    };
    let title_band = (0..(720 * 30)).filter(|&i| dark(&px[i])).count();
    assert!(
        title_band > 100,
        "{}: no title text ({title_band} dark pixels)",
        path.display()
    );
    let corner = px[719];
    assert_eq!(
        (corner.red(), corner.green(), corner.blue()),
        (255, 255, 255)
    );
}
