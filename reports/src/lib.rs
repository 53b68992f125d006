//! # flowbench-reports
//!
//! Self-contained HTML reports of `flowbench tune` sweeps: charts drawn by plotters as
//! inline SVG (SVG text, so no font library is needed and the page reads offline), the
//! same charts as `.svg` files and as `.png` copies (rasterised by resvg with an embedded
//! font, never a system one), and the data as JSON and CSV beside them.
//!
//! **Should I be using this crate?** `flowbench tune` (which writes a report) and
//! `flowbench report RESULT.json -o DIR` (which redraws one) are the usual way. Use it
//! from Rust to draw a [`TuneResult`] you made yourself.
//!
//! It reads only the data types of `flowbench-bench`; it never runs anything.
//!
//! ```
//! use flowbench_bench::tune::{tune, TuneOptions};
//! use flowbench_engine::scenario::{parse_str, DEFAULT_SCENARIO};
//! let s = parse_str(DEFAULT_SCENARIO, "log-pipeline.toml").unwrap();
//! let opts = TuneOptions { grid: (3, 2), seeds: 1, events: 2_000, ..TuneOptions::default() };
//! let r = tune(&s, &opts, 1, None, &|_, _| {}).unwrap();
//! let dir = std::env::temp_dir().join(format!("flowbench-report-doc-{}", std::process::id()));
//! let written = flowbench_reports::write_tune_report(&r, &flowbench_reports::Header::default(), &dir).unwrap();
//! assert!(written.iter().any(|f| f.ends_with("index.html")));
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use flowbench_bench::tune::TuneResult;
use plotters::prelude::*;

/// What the report's header says about the run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// flowbench's version.
    pub version: String,
    /// The commit, if known.
    pub commit: String,
    /// The machine (CPU model, cores).
    pub machine: String,
    /// When, UTC.
    pub date: String,
}

/// Why a report could not be written.
#[derive(Debug)]
pub struct ReportError(pub String);

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReportError {}

/// One chart: its file stem, title and SVG text.
struct Chart {
    name: &'static str,
    title: String,
    svg: String,
}

const SIZE: (u32, u32) = (720, 420);

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// The legend box every chart with labelled series uses.
fn legend<'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, CT>,
) -> Result<(), ReportError> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

/// Draws one chart on a white SVG canvas of [`SIZE`] and returns the SVG text.
fn render(draw: impl FnOnce(&Area<'_>) -> Result<(), ReportError>) -> Result<String, ReportError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw(&root)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Every chart's frame: its title, margin and label areas (`y_label` wide enough for the
/// y axis's numbers).
fn frame<'a, 'b>(
    root: &'a Area<'b>,
    title: &str,
    y_label: u32,
) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut b = ChartBuilder::on(root);
    b.caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(y_label);
    b
}

/// The font of the PNG copies (DejaVu Sans, its licence beside it in `fonts/`): the
/// SVGs say `sans-serif`, and no system font is looked up.
const FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");

fn raster_options() -> &'static resvg::usvg::Options<'static> {
    static OPTIONS: std::sync::OnceLock<resvg::usvg::Options<'static>> = std::sync::OnceLock::new();
    OPTIONS.get_or_init(|| {
        let mut o = resvg::usvg::Options::default();
        let db = o.fontdb_mut();
        db.load_font_data(FONT.to_vec());
        db.set_sans_serif_family("DejaVu Sans");
        o
    })
}

/// A chart's SVG as PNG, at its own size.
fn png(svg: &str) -> Result<Vec<u8>, ReportError> {
    let tree = resvg::usvg::Tree::from_str(svg, raster_options()).map_err(err)?;
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| ReportError("cannot draw a chart: an empty canvas".into()))?;
    pixmap.fill(resvg::tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    pixmap.encode_png().map_err(err)
}

/// The family name of the embedded font, for SVGs of other pictures (a terminal
/// screenshot) that [`svg_to_png`] rasterises.
pub const FONT_FAMILY: &str = "DejaVu Sans";

/// Any SVG as PNG, at its own size, its text drawn in the embedded font (never a
/// system font).
///
/// ```
/// let png = flowbench_reports::svg_to_png(
///     r#"<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><text x="2" y="15" font-family="DejaVu Sans">hi</text></svg>"#,
/// ).unwrap();
/// assert_eq!(&png[1..4], b"PNG");
/// ```
pub fn svg_to_png(svg: &str) -> Result<Vec<u8>, ReportError> {
    png(svg)
}

/// Writes `NAME.svg` and its PNG copy `NAME.png`.
fn write_chart(c: &Chart, dir: &Path) -> Result<[PathBuf; 2], ReportError> {
    let io = |e: std::io::Error| {
        ReportError(format!("cannot write the report in {}: {e}", dir.display()))
    };
    let svg = dir.join(format!("{}.svg", c.name));
    std::fs::write(&svg, &c.svg).map_err(io)?;
    let png_path = dir.join(format!("{}.png", c.name));
    std::fs::write(&png_path, png(&c.svg)?).map_err(io)?;
    Ok([svg, png_path])
}

fn err<E: std::fmt::Display>(e: E) -> ReportError {
    ReportError(format!("cannot draw a chart: {e}"))
}

/// The distinct `max_demand` values and min ratios of a one-pass sweep, in order.
fn axes(r: &TuneResult) -> (Vec<u64>, Vec<f64>) {
    let mut maxes: Vec<u64> = r
        .points
        .iter()
        .filter_map(|p| p.settings.first().map(|s| s.max_demand))
        .collect();
    maxes.sort_unstable();
    maxes.dedup();
    // The sweep's nominal ratios; a small max_demand rounds its min_demand, so each point
    // is filed under the nearest one.
    let (a, b) = r.options.min_ratio;
    let n = r.options.grid.1.max(1);
    let ratios = (0..n)
        .map(|j| {
            if n == 1 {
                a
            } else {
                a + (b - a) * j as f64 / (n - 1) as f64
            }
        })
        .collect();
    (maxes, ratios)
}

/// The index of the nominal ratio nearest to a point's min_demand / max_demand.
fn nearest(ratios: &[f64], max: u64, min: u64) -> Option<usize> {
    let r = ratio(max, min);
    (0..ratios.len()).min_by(|&i, &j| (ratios[i] - r).abs().total_cmp(&(ratios[j] - r).abs()))
}

fn ratio(max: u64, min: u64) -> f64 {
    min as f64 / max.max(1) as f64
}

fn heatmap(r: &TuneResult) -> Result<Chart, ReportError> {
    let (maxes, ratios) = axes(r);
    let best = r
        .points
        .iter()
        .map(|p| p.throughput_eps)
        .fold(1.0, f64::max);
    let svg = render(|root| {
        let mut chart = frame(
            root,
            "Throughput over max_demand and min_demand / max_demand",
            60,
        )
        .build_cartesian_2d(0..maxes.len(), 0..ratios.len().max(1))
        .map_err(err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("max_demand")
            .y_desc("min_demand / max_demand")
            .x_label_formatter(&|i| maxes.get(*i).map_or_else(String::new, u64::to_string))
            .y_label_formatter(&|j| {
                ratios
                    .get(*j)
                    .map_or_else(String::new, |v| format!("{v:.2}"))
            })
            .draw()
            .map_err(err)?;
        let cells = r.points.iter().filter_map(|p| {
            let s = p.settings.first()?;
            let i = maxes.iter().position(|&m| m == s.max_demand)?;
            let j = nearest(&ratios, s.max_demand, s.min_demand)?;
            let v = p.throughput_eps / best;
            let color = HSLColor(0.66 - 0.66 * v, 0.8, 0.5);
            Some(Rectangle::new([(i, j), (i + 1, j + 1)], color.filled()))
        });
        chart.draw_series(cells).map_err(err)?;
        Ok(())
    })?;
    Ok(Chart {
        name: "throughput-heatmap",
        title: "Throughput (events/s, virtual) by setting: red is the best, blue the worst".into(),
        svg,
    })
}

fn against_max(
    r: &TuneResult,
    name: &'static str,
    title: &str,
    y_desc: &str,
    value: fn(&flowbench_bench::tune::Point) -> f64,
) -> Result<Chart, ReportError> {
    let (maxes, ratios) = axes(r);
    let top = r.points.iter().map(value).fold(1e-9, f64::max) * 1.1;
    let (lo, hi) = (
        maxes.first().copied().unwrap_or(1) as f64,
        maxes.last().copied().unwrap_or(1).max(2) as f64,
    );
    let svg = render(|root| {
        let mut chart = frame(root, title, 70)
            .build_cartesian_2d((lo..hi).log_scale(), 0.0..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("max_demand (log scale)")
            .y_desc(y_desc)
            .draw()
            .map_err(err)?;
        for (k, &rt) in ratios.iter().enumerate() {
            let mut pts: Vec<(f64, f64)> = r
                .points
                .iter()
                .filter(|p| {
                    p.settings
                        .first()
                        .is_some_and(|s| nearest(&ratios, s.max_demand, s.min_demand) == Some(k))
                })
                .filter_map(|p| p.settings.first().map(|s| (s.max_demand as f64, value(p))))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let color = Palette99::pick(k).to_rgba();
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                .map_err(err)?
                .label(format!("min ratio {rt:.2}"))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color));
        }
        legend(&mut chart)?;
        Ok(())
    })?;
    Ok(Chart {
        name,
        title: title.to_string(),
        svg,
    })
}

fn pareto(r: &TuneResult) -> Result<Chart, ReportError> {
    let top_p99 = r.points.iter().map(|p| p.p99_us).fold(1e-9, f64::max) * 1.1;
    let top_tp = r
        .points
        .iter()
        .map(|p| p.throughput_eps)
        .fold(1.0, f64::max)
        * 1.1;
    let rec = r.recommendation.as_ref().map(|x| x.point);
    let svg = render(|root| {
        let mut chart = frame(root, "Pareto frontier: throughput against p99 latency", 90)
            .build_cartesian_2d(0.0..top_p99, 0.0..top_tp)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("p99 latency (us)")
            .y_desc("throughput (events/s, virtual)")
            .draw()
            .map_err(err)?;
        chart
            .draw_series(r.points.iter().map(|p| {
                let on = r.pareto.contains(&p.index);
                let style = if on {
                    RED.filled()
                } else {
                    BLUE.mix(0.4).filled()
                };
                Circle::new((p.p99_us, p.throughput_eps), if on { 5 } else { 3 }, style)
            }))
            .map_err(err)?
            .label("point (red: on the frontier)")
            .legend(|(x, y)| Circle::new((x + 8, y), 4, RED.filled()));
        if let Some(p) = rec.and_then(|i| r.points.iter().find(|p| p.index == i)) {
            chart
                .draw_series(std::iter::once(Cross::new(
                    (p.p99_us, p.throughput_eps),
                    9,
                    BLACK.stroke_width(3),
                )))
                .map_err(err)?
                .label("recommended")
                .legend(|(x, y)| Cross::new((x + 8, y), 5, BLACK.stroke_width(2)));
        }
        legend(&mut chart)?;
        Ok(())
    })?;
    Ok(Chart {
        name: "pareto",
        title: "Pareto frontier over throughput and p99 (the cross is the recommendation)".into(),
        svg,
    })
}

fn busy(r: &TuneResult) -> Result<Option<Chart>, ReportError> {
    let Some(p) = r
        .recommendation
        .as_ref()
        .and_then(|rec| r.points.iter().find(|p| p.index == rec.point))
    else {
        return Ok(None);
    };
    let stages: Vec<(String, f64)> = p.busy.iter().map(|(n, b)| (n.clone(), *b)).collect();
    let mut chart = bars(
        "busy",
        "Busy fraction of each stage at the recommended setting",
        "busy fraction (0 to 1)",
        "stage",
        &stages,
    )?;
    chart.title =
        "Busy fraction per stage at the recommended setting (the tallest is the bottleneck)".into();
    Ok(Some(chart))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Writes `index.html`, one `.svg` per chart, `tune.json` and `points.csv` into `dir`;
/// returns the files written.
pub fn write_tune_report(
    r: &TuneResult,
    header: &Header,
    dir: &Path,
) -> Result<Vec<PathBuf>, ReportError> {
    let io = |e: std::io::Error| {
        ReportError(format!("cannot write the report in {}: {e}", dir.display()))
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut charts = vec![heatmap(r)?];
    charts.push(against_max(
        r,
        "p99",
        "p99 latency against max_demand",
        "p99 latency (us)",
        |p| p.p99_us,
    )?);
    charts.push(against_max(
        r,
        "memory",
        "Peak memory against max_demand",
        "peak events held (buffers, mailboxes, in flight)",
        |p| p.memory_peak_events,
    )?);
    charts.push(pareto(r)?);
    charts.extend(busy(r)?);
    let mut written = Vec::new();
    for c in &charts {
        written.extend(write_chart(c, dir)?);
    }
    let json = serde_json::to_string_pretty(r).map_err(|e| ReportError(e.to_string()))? + "\n";
    std::fs::write(dir.join("tune.json"), json).map_err(io)?;
    written.push(dir.join("tune.json"));
    std::fs::write(dir.join("points.csv"), points_csv(r)).map_err(io)?;
    written.push(dir.join("points.csv"));
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>flowbench tune: {name}</title>\
         <style>body{{font-family:sans-serif;max-width:780px;margin:2em auto}}td,th{{padding:2px 8px;text-align:right}}</style>\
         </head><body>\n<h1>flowbench tune: {name}</h1>\n<p>objective {obj}; {n} points × {seeds} seeds, {events} events per producer per run; \
         flowbench {ver}, commit {commit}, {machine}, {date}</p>\n",
        name = escape(&r.scenario),
        obj = escape(&r.objective),
        n = r.points.len(),
        seeds = r.options.seeds,
        events = r.options.events,
        ver = escape(&header.version),
        commit = escape(&header.commit),
        machine = escape(&header.machine),
        date = escape(&header.date),
    );
    if let Some(rec) = &r.recommendation {
        let _ = writeln!(
            html,
            "<h2>Recommendation</h2>\n<p>{}</p>",
            escape(&rec.reason)
        );
        for w in &rec.warnings {
            let _ = writeln!(html, "<p>warning: {}</p>", escape(w));
        }
    }
    for c in &charts {
        let _ = writeln!(html, "<h2>{}</h2>\n{}", escape(&c.title), c.svg);
    }
    if !r.threads.is_empty() {
        let _ = writeln!(html, "<h2>Simulator against threads</h2>\n<table><tr><th>point</th><th>predicted events/s</th><th>measured events/s</th><th>error</th></tr>");
        for t in &r.threads {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{:.0}</td><td>{:.0}</td><td>{:+.0}%</td></tr>",
                t.point, t.predicted_eps, t.measured_eps, t.error_pct
            );
        }
        let _ = writeln!(html, "</table>");
    }
    let _ = writeln!(
        html,
        "<p>Data: <a href=\"tune.json\">tune.json</a>, <a href=\"points.csv\">points.csv</a>.</p>\n</body></html>"
    );
    std::fs::write(dir.join("index.html"), html).map_err(io)?;
    written.push(dir.join("index.html"));
    Ok(written)
}

/// One row per point: its settings and figures.
pub fn points_csv(r: &TuneResult) -> String {
    let mut csv = String::from(
        "point,settings,throughput_eps,throughput_spread,p50_us,p99_us,memory_peak_events,drops,excess,failed_runs,pareto\n",
    );
    for p in &r.points {
        let set = p
            .settings
            .iter()
            .map(|s| {
                format!(
                    "{}->{}={}/{}",
                    s.producer, s.consumer, s.max_demand, s.min_demand
                )
            })
            .collect::<Vec<_>>()
            .join(" ");
        let _ = writeln!(
            csv,
            "{},\"{}\",{},{},{},{},{},{},{},{},{}",
            p.index,
            set,
            p.throughput_eps,
            p.throughput_spread,
            p.p50_us,
            p.p99_us,
            p.memory_peak_events,
            p.drops,
            p.excess,
            p.failed_runs,
            r.pareto.contains(&p.index)
        );
    }
    csv
}

/// Lines of `(t in ms, value)` per named series, on one chart.
fn lines(
    name: &'static str,
    title: &str,
    y_desc: &str,
    t_ns: &[u64],
    series: &[(String, Vec<f64>)],
) -> Result<Chart, ReportError> {
    let t_end = t_ns.last().copied().unwrap_or(1).max(1) as f64 / 1e6;
    let top = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(1e-9, f64::max)
        * 1.1;
    let svg = render(|root| {
        let mut chart = frame(root, title, 70)
            .build_cartesian_2d(0.0..t_end, 0.0..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("virtual time (ms)")
            .y_desc(y_desc)
            .draw()
            .map_err(err)?;
        for (k, (label, v)) in series.iter().enumerate() {
            let color = Palette99::pick(k).to_rgba();
            let pts = t_ns.iter().zip(v).map(|(t, y)| (*t as f64 / 1e6, *y));
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                .map_err(err)?
                .label(label.clone())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color));
        }
        if !series.is_empty() {
            legend(&mut chart)?;
        }
        Ok(())
    })?;
    Ok(Chart {
        name,
        title: title.to_string(),
        svg,
    })
}

fn bars(
    name: &'static str,
    title: &str,
    y_desc: &str,
    x_desc: &str,
    items: &[(String, f64)],
) -> Result<Chart, ReportError> {
    let top = items.iter().map(|i| i.1).fold(1e-9, f64::max) * 1.1;
    let svg =
        render(|root| {
            let mut chart = frame(root, title, 70)
                .build_cartesian_2d(0..items.len().max(1), 0.0..top)
                .map_err(err)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_desc(x_desc)
                .y_desc(y_desc)
                .x_label_formatter(&|i| items.get(*i).map_or_else(String::new, |s| s.0.clone()))
                .draw()
                .map_err(err)?;
            chart
                .draw_series(items.iter().enumerate().map(|(i, (_, v))| {
                    Rectangle::new([(i, 0.0), (i + 1, *v)], BLUE.mix(0.6).filled())
                }))
                .map_err(err)?;
            Ok(())
        })?;
    Ok(Chart {
        name,
        title: title.to_string(),
        svg,
    })
}

/// The report of one simulated run: mailbox, buffer and outstanding-demand depth over
/// virtual time per stage and link, the latency distribution, and the busy fraction per
/// stage; `summary.json` and `series.csv` beside them. Returns the files written.
pub fn write_run_report(
    out: &flowbench_sim::SimOutcome,
    header: &Header,
    dir: &Path,
) -> Result<Vec<PathBuf>, ReportError> {
    let io = |e: std::io::Error| {
        ReportError(format!("cannot write the report in {}: {e}", dir.display()))
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let s = out.series();
    let per_stage = |f: fn(&flowbench_sim::StageSeries) -> Vec<f64>| -> Vec<(String, Vec<f64>)> {
        s.stages.iter().map(|st| (st.name.clone(), f(st))).collect()
    };
    let as_f = |v: &[u64]| v.iter().map(|x| *x as f64).collect::<Vec<f64>>();
    let mut charts = vec![
        lines(
            "mailbox",
            "Mailbox depth per stage over time",
            "messages waiting",
            &s.t_ns,
            &per_stage(|st| st.mailbox.iter().map(|x| *x as f64).collect()),
        )?,
        lines(
            "buffered",
            "Events buffered or queued per stage over time",
            "events (buffer + queues)",
            &s.t_ns,
            &per_stage(|st| {
                st.buffered
                    .iter()
                    .zip(&st.queued)
                    .map(|(b, q)| (b + q) as f64)
                    .collect()
            }),
        )?,
        lines(
            "outstanding",
            "Outstanding demand per subscription over time",
            "events asked and not yet received",
            &s.t_ns,
            &s.links
                .iter()
                .map(|l| {
                    (
                        format!("{} -> {}", l.producer, l.consumer),
                        as_f(&l.outstanding),
                    )
                })
                .collect::<Vec<_>>(),
        )?,
    ];
    // Drops and losses, cumulative: only stages that had any (else one flat total).
    let mut losses: Vec<(String, Vec<f64>)> = Vec::new();
    for st in &s.stages {
        for (what, v) in [("dropped", &st.dropped), ("lost", &st.lost)] {
            if v.last().is_some_and(|&n| n > 0) {
                losses.push((format!("{} {what}", st.name), as_f(v)));
            }
        }
    }
    if losses.is_empty() {
        losses.push(("all stages, dropped + lost".into(), vec![0.0; s.t_ns.len()]));
    }
    charts.push(lines(
        "losses",
        "Events dropped and lost over time (cumulative)",
        "events",
        &s.t_ns,
        &losses,
    )?);
    let sum = out.summary();
    let l = sum.latency_us;
    charts.push(bars(
        "latency",
        "Born-to-consumed latency",
        "latency (us)",
        "quantile",
        &[
            ("p50".to_string(), l.p50),
            ("p90".to_string(), l.p90),
            ("p99".to_string(), l.p99),
            ("max".to_string(), l.max),
        ],
    )?);
    charts.push(bars(
        "busy",
        "Busy fraction per stage over the run",
        "busy fraction (0 to 1)",
        "stage",
        &out.stages()
            .iter()
            .zip(out.busy_fractions())
            .map(|(st, b)| (st.name.clone(), *b))
            .collect::<Vec<_>>(),
    )?);
    let mut written = Vec::new();
    for c in &charts {
        written.extend(write_chart(c, dir)?);
    }
    let json = serde_json::to_string_pretty(&sum).map_err(|e| ReportError(e.to_string()))? + "\n";
    std::fs::write(dir.join("summary.json"), json).map_err(io)?;
    written.push(dir.join("summary.json"));
    let mut csv = String::from("t_ns,stage,mailbox,buffered,queued,busy_ns,dropped,lost\n");
    for st in &s.stages {
        for (i, t) in s.t_ns.iter().enumerate() {
            let at = |v: &Vec<u64>| v.get(i).copied().unwrap_or(0);
            let _ = writeln!(
                csv,
                "{t},{},{},{},{},{},{},{}",
                st.name,
                at(&st.mailbox),
                at(&st.buffered),
                at(&st.queued),
                at(&st.busy_ns),
                at(&st.dropped),
                at(&st.lost)
            );
        }
    }
    std::fs::write(dir.join("series.csv"), csv).map_err(io)?;
    written.push(dir.join("series.csv"));
    let drops: u64 = sum.base.stages.iter().map(|r| r.dropped).sum();
    let lost: u64 = sum.base.stages.iter().map(|r| r.lost).sum();
    let mut html = String::new();
    let _ = writeln!(
        html,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>flowbench run: {name}</title>\
         <style>body{{font-family:sans-serif;max-width:780px;margin:2em auto}}</style></head><body>\n\
         <h1>flowbench run: {name}</h1>\n<p>seed {seed}, trace hash {hash}; flowbench {ver}, commit {commit}, {machine}, {date}</p>\n\
         <p>{delivered} events delivered in {vt:.6} s of virtual time ({tp:.0} events/s); {drops} dropped, {lost} lost; {verdict}</p>",
        name = escape(&sum.base.scenario),
        seed = sum.seed,
        hash = sum.trace_hash,
        ver = escape(&header.version),
        commit = escape(&header.commit),
        machine = escape(&header.machine),
        date = escape(&header.date),
        delivered = sum.base.events_delivered,
        vt = sum.virtual_time_s,
        tp = sum.virtual_throughput_eps,
        verdict = if sum.base.balanced { "balanced" } else { "NOT BALANCED" },
    );
    for c in &charts {
        let _ = writeln!(html, "<h2>{}</h2>\n{}", escape(&c.title), c.svg);
    }
    let _ = writeln!(
        html,
        "<p>Data: <a href=\"summary.json\">summary.json</a>, <a href=\"series.csv\">series.csv</a>.</p>\n</body></html>"
    );
    std::fs::write(dir.join("index.html"), html).map_err(io)?;
    written.push(dir.join("index.html"));
    Ok(written)
}
