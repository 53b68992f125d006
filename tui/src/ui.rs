//! Drawing the view: a status line, the topology as stage boxes in layers left to right
//! with live gauges, the selected stage's details, the log in plain words, and a key line.
//! Nothing here changes the state; every signal that has a colour also has a marker.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Widget, Wrap};
use ratatui::Frame;

use crate::app::{App, Menu, Speed};
use crate::explain::Tone;
use crate::lessons::LESSONS;
use crate::source::{LinkNow, StageNow};

const BAD: Color = Color::Red;
const CHANGE: Color = Color::Yellow;
const SEL: Color = Color::Cyan;
const DIM: Color = Color::DarkGray;

/// `t` ns as a short duration: `532 ns`, `12.35 us`, `1.234 ms`, `2.345 s`.
pub fn fmt_ns(t: u64) -> String {
    match t {
        0..=999 => format!("{t} ns"),
        1_000..=999_999 => format!("{:.2} us", t as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.3} ms", t as f64 / 1e6),
        _ => format!("{:.3} s", t as f64 / 1e9),
    }
}

/// `n` in at most five characters: `999`, `12.3k`, `4.56M`.
pub fn fmt_n(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.1}k", n as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.2}M", n as f64 / 1e6),
        _ => format!("{:.2}G", n as f64 / 1e9),
    }
}

fn opt(n: Option<u64>) -> String {
    n.map_or_else(|| "-".into(), fmt_n)
}

/// A bar of `width` cells filled to `frac` (eighths of a cell).
pub fn bar(frac: f64, width: usize) -> String {
    const PARTS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let f = if frac.is_finite() {
        frac.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let eighths = (f * (width * 8) as f64).round() as usize;
    let mut s = String::with_capacity(width * 3);
    for i in 0..width {
        let e = eighths.saturating_sub(i * 8).min(8);
        s.push(if e == 8 {
            '█'
        } else if e == 0 {
            '·'
        } else {
            PARTS[e]
        });
    }
    s
}

/// The last `width` rates as a sparkline, scaled to their maximum.
pub fn spark(rates: &std::collections::VecDeque<f64>, width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let skip = rates.len().saturating_sub(width);
    let max = rates.iter().skip(skip).cloned().fold(0.0, f64::max);
    let mut s: String = std::iter::repeat_n(' ', width.saturating_sub(rates.len())).collect();
    for &r in rates.iter().skip(skip) {
        s.push(if max <= 0.0 || r <= 0.0 {
            ' '
        } else {
            BARS[((r / max) * 7.0).round() as usize]
        });
    }
    s
}

/// Events per second over the last ten samples (a single sample of a stage that takes
/// big chunks now and then says little).
fn rate_text(rates: &std::collections::VecDeque<f64>) -> String {
    let last: Vec<f64> = rates.iter().rev().take(10).copied().collect();
    if last.is_empty() {
        return "-/s".into();
    }
    let mean = last.iter().sum::<f64>() / last.len() as f64;
    format!("{}/s", fmt_n(mean.round() as u64))
}

/// Outstanding demand of the stage's input subscriptions, summed.
fn demand_of(app: &App, stage: usize) -> Option<(u64, u64)> {
    let ins = &app.topo.stages[stage].inputs;
    if ins.is_empty() {
        return None;
    }
    let mut out = 0;
    let mut max = 0;
    for &l in ins {
        let k: &LinkNow = app.state.links.get(l)?;
        out += k.outstanding;
        max += k.max_demand.unwrap_or(0);
    }
    Some((out, max))
}

struct Row {
    text: String,
    style: Style,
}

fn rows_of(app: &App, i: usize, w: usize) -> (Vec<Row>, Option<Row>) {
    let s = app.state.stages.get(i).cloned().unwrap_or_default();
    let info = &app.topo.stages[i];
    let norm = Style::new();
    let mut rows = Vec::new();
    let produces = info.kind.is_none_or(|k| k.produces());
    let demand = demand_of(app, i);
    // 1: depths.
    let first = match (produces, demand) {
        (true, _) => format!(
            "mb {} buf {}{}",
            opt(s.mailbox),
            opt(s.buffered),
            info.buffer_size
                .map_or(String::new(), |c| format!("/{}", fmt_n(c)))
        ),
        (false, _) => format!("mb {} q {}", opt(s.mailbox), opt(s.queued)),
    };
    rows.push(Row {
        text: first,
        style: norm,
    });
    // 2: throughput.
    let rate = rate_text(&app.rates[i]);
    let sw = w.saturating_sub(rate.len() + 1).min(24);
    rows.push(Row {
        text: format!("{} {rate}", spark(&app.rates[i], sw)),
        style: Style::new().fg(Color::Green),
    });
    // 3: demand or buffer gauge.
    let gauge = match demand {
        Some((out, max)) => {
            let label = format!(" {}/{}", fmt_n(out), fmt_n(max));
            let bw = w.saturating_sub(label.len() + 4).min(12);
            Some(format!(
                "dem {}{label}",
                bar(out as f64 / max.max(1) as f64, bw)
            ))
        }
        None => info.buffer_size.map(|cap| {
            let b = s.buffered.unwrap_or(0);
            let label = format!(" {}/{}", fmt_n(b), fmt_n(cap));
            let bw = w.saturating_sub(label.len() + 4).min(12);
            format!("buf {}{label}", bar(b as f64 / cap.max(1) as f64, bw))
        }),
    };
    if let Some(g) = gauge {
        let full = info
            .buffer_size
            .is_some_and(|c| demand.is_none() && s.buffered.unwrap_or(0) >= c);
        rows.push(Row {
            text: g + if full { " FULL" } else { "" },
            style: if full { Style::new().fg(BAD) } else { norm },
        });
    }
    // 4: busy.
    let busy = app.busy.get(i).copied().flatten();
    let bw = w.saturating_sub(10).min(12);
    rows.push(Row {
        text: match busy {
            Some(b) => format!("busy {} {:>3.0}%", bar(b, bw), b * 100.0),
            None => "busy -".into(),
        },
        style: norm,
    });
    // Drops and losses: always seen when not zero.
    let alarm = (s.dropped > 0 || s.lost > 0).then(|| Row {
        text: format!("! drop {} lost {}", fmt_n(s.dropped), fmt_n(s.lost)),
        style: Style::new().fg(BAD).add_modifier(Modifier::BOLD),
    });
    (rows, alarm)
}

fn title_of(app: &App, i: usize) -> String {
    let s: StageNow = app.state.stages.get(i).cloned().unwrap_or_default();
    let mut t = format!(" {}", app.topo.stages[i].name);
    if i == app.sel {
        t = format!(" >{}", &t[1..]);
    }
    if s.exit.is_some() {
        t += " [down]";
    }
    if s.slowdown != 1.0 && s.slowdown.is_finite() {
        t += &format!(" x{}", trim_float(s.slowdown));
    }
    if s.dropped > 0 || s.lost > 0 {
        t += " !";
    }
    t.push(' ');
    t
}

fn trim_float(f: f64) -> String {
    let s = format!("{f:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn put(buf: &mut Buffer, x: u16, y: u16, w: u16, text: &str, style: Style) {
    if w > 0 {
        buf.set_stringn(x, y, text, w as usize, style);
    }
}

fn draw_box(app: &App, i: usize, r: Rect, buf: &mut Buffer) {
    let selected = i == app.sel;
    let s = app.state.stages.get(i);
    let down = s.is_some_and(|s| s.exit.is_some());
    let alarm = s.is_some_and(|s| s.dropped > 0 || s.lost > 0);
    let border = if selected {
        Style::new().fg(SEL).add_modifier(Modifier::BOLD)
    } else if alarm {
        Style::new().fg(BAD)
    } else if down {
        Style::new().fg(DIM)
    } else {
        Style::new()
    };
    let block = Block::bordered()
        .border_type(if selected {
            BorderType::Double
        } else {
            BorderType::Plain
        })
        .border_style(border)
        .title(title_of(app, i));
    let inner = block.inner(r);
    block.render(r, buf);
    let n = inner.height as usize;
    if n == 1 {
        // One line: the compact summary.
        let (row, alarm) = compact(app, i);
        put_line(
            buf,
            Rect::new(inner.x, inner.y, inner.width, 1),
            &row,
            Style::new(),
            alarm.as_deref(),
        );
        return;
    }
    let (rows, alarm) = rows_of(app, i, inner.width as usize);
    let mut shown: Vec<&Row> = rows.iter().take(n).collect();
    if let Some(a) = &alarm {
        if n > 0 {
            if shown.len() == n {
                shown[n - 1] = a;
            } else {
                shown.push(a);
            }
        }
    }
    for (k, row) in shown.iter().enumerate() {
        put(
            buf,
            inner.x,
            inner.y + k as u16,
            inner.width,
            &row.text,
            row.style,
        );
    }
}

/// One stage on one line: depths, demand, busy, sparkline; and the alarm text (drops,
/// losses) if any.
fn compact(app: &App, i: usize) -> (String, Option<String>) {
    let s = app.state.stages.get(i).cloned().unwrap_or_default();
    let dem = demand_of(app, i)
        .map(|(o, m)| format!(" dem {}/{}", fmt_n(o), fmt_n(m)))
        .unwrap_or_default();
    let busy = app.busy[i].map_or(" -".into(), |b| format!(" {:>3.0}%", b * 100.0));
    let alarm = (s.dropped > 0 || s.lost > 0)
        .then(|| format!(" ! d{} l{}", fmt_n(s.dropped), fmt_n(s.lost)));
    let down = if s.exit.is_some() { " [down]" } else { "" };
    let depth = if app.topo.stages[i].kind.is_none_or(|k| k.produces()) {
        format!("mb {} buf {}", opt(s.mailbox), opt(s.buffered))
    } else {
        format!("mb {}", opt(s.mailbox))
    };
    (
        format!("{depth}{dem}{busy} {}{down}", spark(&app.rates[i], 6)),
        alarm,
    )
}

fn draw_line_row(app: &App, i: usize, r: Rect, buf: &mut Buffer) {
    let sel = i == app.sel;
    let name_w = 12usize.min(r.width as usize / 3);
    let mut name: String = app.topo.stages[i].name.chars().take(name_w).collect();
    while name.chars().count() < name_w {
        name.push(' ');
    }
    let (row, alarm) = compact(app, i);
    let text = format!("{}{name} {row}", if sel { ">" } else { " " });
    let style = if sel {
        Style::new().fg(SEL).add_modifier(Modifier::BOLD)
    } else {
        Style::new()
    };
    put_line(buf, r, &text, style, alarm.as_deref());
}

/// `text` on the first row of `r`, then `alarm` (drops, losses) right after it in red.
fn put_line(buf: &mut Buffer, r: Rect, text: &str, style: Style, alarm: Option<&str>) {
    put(buf, r.x, r.y, r.width, text, style);
    let used = text.chars().count() as u16;
    if let Some(a) = alarm {
        if used < r.width {
            let bad = Style::new().fg(BAD).add_modifier(Modifier::BOLD);
            put(buf, r.x + used, r.y, r.width - used, a, bad);
        }
    }
}

/// The stages of one column, with a scroll that keeps the selected one in sight.
fn column(app: &App, stages: &[usize], r: Rect, buf: &mut Buffer, arrow_in: bool) {
    let n = stages.len();
    if n == 0 || r.height == 0 {
        return;
    }
    let h = r.height as usize;
    let box_h = [6usize, 5, 4, 3].into_iter().find(|&b| b * n <= h);
    let gap_x = r.x.saturating_sub(3);
    match box_h {
        Some(bh) => {
            for (k, &i) in stages.iter().enumerate() {
                let y = r.y + (k * bh) as u16;
                let rect = Rect::new(r.x, y, r.width, bh as u16);
                draw_box(app, i, rect, buf);
                if arrow_in && !app.topo.stages[i].inputs.is_empty() {
                    put(
                        buf,
                        gap_x,
                        y + bh as u16 / 2,
                        3,
                        "─▶ ",
                        Style::new().fg(DIM),
                    );
                }
            }
        }
        None => {
            // One line per stage; scrolled so that the selected stage shows.
            let pos = stages.iter().position(|&s| s == app.sel).unwrap_or(0);
            let first = (pos + 1)
                .saturating_sub(h.saturating_sub(1))
                .min(n.saturating_sub(h));
            for (k, &i) in stages.iter().enumerate().skip(first).take(h) {
                let y = r.y + (k - first) as u16;
                let last_row = k - first == h - 1 && k + 1 < n;
                if last_row {
                    let more = format!("  ... {} more (arrows, Tab)", n - k);
                    put(buf, r.x, y, r.width, &more, Style::new().fg(DIM));
                    break;
                }
                draw_line_row(app, i, Rect::new(r.x, y, r.width, 1), buf);
                if arrow_in && !app.topo.stages[i].inputs.is_empty() {
                    put(buf, gap_x, y, 3, "─▶ ", Style::new().fg(DIM));
                }
            }
        }
    }
}

fn draw_topology(app: &App, r: Rect, buf: &mut Buffer) {
    let layers = &app.topo.layers;
    let cols = layers.len();
    if cols == 0 {
        put(buf, r.x, r.y, r.width, "(no stages)", Style::new().fg(DIM));
        return;
    }
    let gap = 3u16;
    let min_w = 18u16;
    let fits = cols as u16 * min_w + (cols as u16 - 1) * gap <= r.width;
    if !fits {
        // Too many layers side by side: one column, stages in layer order.
        let order: Vec<usize> = layers.iter().flatten().copied().collect();
        column(app, &order, r, buf, false);
        return;
    }
    let cw = ((r.width - (cols as u16 - 1) * gap) / cols as u16).min(34);
    for (c, stages) in layers.iter().enumerate() {
        let x = r.x + c as u16 * (cw + gap);
        column(app, stages, Rect::new(x, r.y, cw, r.height), buf, c > 0);
    }
}

fn details(app: &App) -> Text<'static> {
    let i = app.sel;
    let info = &app.topo.stages[i];
    let s = app.state.stages.get(i).cloned().unwrap_or_default();
    let mut lines = Vec::new();
    let kind = info.kind.map_or("?", |k| k.name());
    let mut head = kind.to_string();
    if let Some(d) = info.dispatcher {
        head += &format!(", {d} dispatcher");
    }
    if let Some(b) = info.buffer_size {
        head += &format!(", buffer_size {b}");
    }
    lines.push(Line::from(head));
    lines.push(Line::from(format!(
        "mailbox {}  buffered {}  queued {}",
        opt(s.mailbox),
        opt(s.buffered),
        opt(s.queued)
    )));
    lines.push(Line::from(format!(
        "emitted {}  handled {}  busy {}",
        fmt_n(s.emitted),
        fmt_n(s.handled),
        app.busy[i].map_or("-".into(), |b| format!("{:.0}%", b * 100.0))
    )));
    let alarm = s.dropped > 0 || s.lost > 0;
    lines.push(Line::styled(
        format!(
            "{}dropped {}  lost {}{}",
            if alarm { "! " } else { "" },
            fmt_n(s.dropped),
            fmt_n(s.lost),
            if s.slowdown != 1.0 {
                format!("  slowed x{}", trim_float(s.slowdown))
            } else {
                String::new()
            }
        ),
        if alarm {
            Style::new().fg(BAD).add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        },
    ));
    if let Some(e) = &s.exit {
        lines.push(Line::styled(format!("[down] {e}"), Style::new().fg(DIM)));
    }
    for l in app.sel_links() {
        let k = app.state.links.get(l).cloned().unwrap_or_default();
        let sel = app.sel_link == Some(l);
        let dir = if app.topo.links[l].consumer == i {
            "in "
        } else {
            "out"
        };
        let max = k.max_demand;
        let frac = k.outstanding as f64 / max.unwrap_or(1).max(1) as f64;
        let text = format!(
            "{}{dir} {}  {} {}/{} min {}",
            if sel { ">" } else { " " },
            app.topo.link_name(l),
            bar(frac, 8),
            fmt_n(k.outstanding),
            opt(max),
            opt(k.min_demand)
        );
        lines.push(Line::styled(
            text,
            if sel {
                Style::new().fg(SEL).add_modifier(Modifier::BOLD)
            } else {
                Style::new()
            },
        ));
    }
    Text::from(lines)
}

fn draw_log(app: &App, r: Rect, buf: &mut Buffer) {
    let block = Block::bordered().title(" log ");
    let inner = block.inner(r);
    block.render(r, buf);
    let n = inner.height as usize;
    let skip = app.log.len().saturating_sub(n);
    for (k, l) in app.log.iter().skip(skip).enumerate() {
        let (style, mark) = match l.tone {
            Tone::Normal => (Style::new(), ""),
            Tone::Change => (Style::new().fg(CHANGE), "* "),
            Tone::Bad => (Style::new().fg(BAD), ""),
        };
        let t = format!("{:>10} ", fmt_ns(l.t_ns));
        put(
            buf,
            inner.x,
            inner.y + k as u16,
            inner.width,
            &t,
            Style::new().fg(DIM),
        );
        let tw = t.chars().count() as u16;
        if tw < inner.width {
            put(
                buf,
                inner.x + tw,
                inner.y + k as u16,
                inner.width - tw,
                &format!("{mark}{}", l.text),
                style,
            );
        }
    }
}

fn status(app: &App) -> Line<'static> {
    let state = if let Some(v) = app.verdict() {
        format!("■ ended: {v}")
    } else if app.paused {
        "‖ paused".to_string()
    } else {
        "▶ running".to_string()
    };
    let speed = match app.speed {
        Speed::Max => "max".to_string(),
        Speed::Factor(f) => format!("{}x", trim_float_sig(f)),
    };
    let clock = if app.runtime() == "threads" {
        format!("wall {}", fmt_ns(app.state.t_ns))
    } else {
        format!(
            "t {} · wall {:.1} s · speed {speed}",
            fmt_ns(app.state.t_ns),
            app.wall.as_secs_f64()
        )
    };
    let seed = match app.runtime() {
        "sim" | "threads" => format!(" seed {}", app.seed),
        _ => String::new(),
    };
    let pos = app
        .replay_position()
        .map_or(String::new(), |(p, n)| format!(" · record {p}/{n}"));
    let mut spans = vec![
        Span::styled(
            format!(" {state} "),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!(
            "· {} · {}{seed}{pos} · {clock}",
            app.name,
            app.runtime()
        )),
    ];
    let changes = app.changes();
    if changes > 0 {
        spans.push(Span::styled(
            format!(" · {}", crate::explain::plural(changes as u64, "change")),
            Style::new().fg(CHANGE),
        ));
    }
    Line::from(spans)
}

fn trim_float_sig(f: f64) -> String {
    if f >= 1.0 {
        trim_float(f)
    } else {
        let s = format!("{f:.9}");
        let t = s.trim_end_matches('0');
        t.trim_end_matches('.').to_string()
    }
}

fn keys_line(app: &App) -> Line<'static> {
    let text = if let Some((m, tone)) = &app.message {
        let style = match tone {
            Tone::Bad => Style::new().fg(BAD),
            Tone::Change => Style::new().fg(CHANGE),
            Tone::Normal => Style::new(),
        };
        return Line::styled(format!(" {m}"), style);
    } else if app.runtime() == "replay" {
        " q quit  ? help  space pause  n step  < > seek  0 rewind  +/- speed  Tab select"
    } else if app.runtime() == "threads" {
        " q quit  ? help  space pause view  Tab/arrows select  [ ] subscription"
    } else {
        " q quit  ? help  space pause  n step  +/- speed  Tab select  [ ] sub  < > max  , . min  w/W slow  x crash  r restart  s save"
    };
    Line::styled(text, Style::new().fg(DIM))
}

/// The keys, for the help screen.
pub const HELP: &[(&str, &str)] = &[
    ("q, Ctrl-C", "quit (the terminal is restored)"),
    ("?", "this help (any key closes it)"),
    ("space", "pause / run"),
    ("n", "step one message (pauses); in a replay, one record"),
    ("+ / -", "run virtual time twice as fast / half as fast"),
    ("f", "as fast as possible / back to 0.001x"),
    ("Tab, Shift-Tab", "select the next / previous stage"),
    (
        "arrows",
        "select a stage: left/right a layer, up/down in a layer",
    ),
    (
        "[ / ]",
        "select the previous / next subscription of the stage",
    ),
    (
        "> / <",
        "max_demand x2 / /2 of that subscription (replay: seek +/- 5%)",
    ),
    (". / ,", "min_demand up / down by a tenth of max_demand"),
    ("w / W", "slow the selected stage down x2 / speed it up x2"),
    ("x / r", "crash the selected stage / restart it"),
    ("s", "save the scenario with your changes (a new file)"),
    (
        "0, Home / End",
        "replay: rewind to the start / go to the end",
    ),
    ("l", "show / hide the lesson's text"),
    ("Esc", "close the lesson's text, clear the message"),
];

fn draw_help(r: Rect, buf: &mut Buffer) {
    let mut lines = vec![
        Line::styled("Keys", Style::new().add_modifier(Modifier::BOLD)),
        Line::raw(""),
    ];
    for (k, what) in HELP {
        lines.push(Line::from(vec![
            Span::styled(format!("{k:>16}  "), Style::new().fg(SEL)),
            Span::raw(*what),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::raw(
        "Gauges: mb = mailbox messages, buf = producer buffer (against buffer_size), q = queued input, \
         dem = outstanding demand (against max_demand), busy = share of time serving, the sparkline = \
         events per second. '!' marks drops and losses, '[down]' a stopped stage, 'xN' a slowdown.",
    ));
    let area = centered(r, 90, 100);
    Clear.render(area, buf);
    Paragraph::new(Text::from(lines))
        .block(Block::bordered().title(" help "))
        .wrap(Wrap { trim: false })
        .render(area, buf);
}

fn centered(r: Rect, pct_w: u16, pct_h: u16) -> Rect {
    let w = (r.width * pct_w / 100).max(20).min(r.width);
    let h = (r.height * pct_h / 100).max(5).min(r.height);
    Rect::new(r.x + (r.width - w) / 2, r.y + (r.height - h) / 2, w, h)
}

fn draw_lesson(app: &App, r: Rect, buf: &mut Buffer) {
    let Some(l) = app.lesson else { return };
    let mut lines = vec![Line::raw(l.intro), Line::raw("")];
    lines.push(Line::styled(
        "Watch:",
        Style::new().add_modifier(Modifier::BOLD),
    ));
    lines.extend(l.watch.iter().map(|w| Line::raw(format!("- {w}"))));
    lines.push(Line::styled(
        "Try:",
        Style::new().add_modifier(Modifier::BOLD),
    ));
    lines.extend(l.try_this.iter().map(|w| Line::raw(format!("- {w}"))));
    lines.push(Line::styled(
        "l hides this text, ? lists the keys",
        Style::new().fg(DIM),
    ));
    let area = centered(r, 80, 90);
    Clear.render(area, buf);
    Paragraph::new(Text::from(lines))
        .block(
            Block::bordered()
                .border_type(BorderType::Rounded)
                .title(format!(" lesson {}: {} ", l.number, l.title)),
        )
        .wrap(Wrap { trim: false })
        .render(area, buf);
}

/// Draws the whole view into `area` of `buf`.
pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let bottom = (area.height / 3)
        .clamp(6, 14)
        .min(area.height.saturating_sub(4));
    let [top, mid, low, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(bottom),
        Constraint::Length(1),
    ])
    .areas(area);
    Paragraph::new(status(app)).render(top, buf);
    draw_topology(app, mid, buf);
    let dw = (low.width * 2 / 5).clamp(30, 48).min(low.width / 2);
    let [log, det] = Layout::horizontal([Constraint::Min(10), Constraint::Length(dw)]).areas(low);
    draw_log(app, log, buf);
    let title = format!(
        " {} ",
        app.topo.stages.get(app.sel).map_or("", |s| s.name.as_str())
    );
    Paragraph::new(details(app))
        .block(Block::bordered().title(title))
        .render(det, buf);
    Paragraph::new(keys_line(app)).render(keys, buf);
    if app.show_lesson {
        draw_lesson(app, mid, buf);
    }
    if app.help {
        draw_help(area, buf);
    }
}

/// Draws the view on a frame.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    render(app, area, frame.buffer_mut());
}

/// Draws the lesson menu.
pub fn render_menu(menu: &Menu, area: Rect, buf: &mut Buffer) {
    let mut lines = vec![
        Line::styled(
            "flowbench tui: back-pressure, live",
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Line::raw(""),
        Line::raw("Pick a lesson (a scenario and what to watch), or the default scenario:"),
        Line::raw(""),
    ];
    for (k, l) in LESSONS.iter().enumerate() {
        let sel = menu.sel == k;
        lines.push(Line::styled(
            format!("{} {}  {}", if sel { ">" } else { " " }, l.number, l.title),
            if sel {
                Style::new().fg(SEL).add_modifier(Modifier::BOLD)
            } else {
                Style::new()
            },
        ));
    }
    let sel = menu.sel == LESSONS.len();
    lines.push(Line::styled(
        format!(
            "{} d  the default scenario (log-pipeline)",
            if sel { ">" } else { " " }
        ),
        if sel {
            Style::new().fg(SEL).add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        },
    ));
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "up/down and Enter, or a number; q quits",
        Style::new().fg(DIM),
    ));
    Paragraph::new(Text::from(lines))
        .block(Block::bordered().title(" flowbench tui "))
        .wrap(Wrap { trim: false })
        .render(area, buf);
}
