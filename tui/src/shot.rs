//! A frame as an SVG picture (for screenshots in documents): each cell's character at its
//! place on a dark background, in the cell's colour. Rasterise it with any SVG renderer
//! (`flowbench tui --screenshot FILE.png` uses the reports' embedded font).

use std::fmt::Write;

use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};

/// Width and height of a cell, px.
pub const CELL: (f64, f64) = (9.0, 18.0);

fn rgb(c: Color, fg: bool) -> &'static str {
    match c {
        Color::Reset if fg => "#d4d4d4",
        Color::Reset => "#1e1e1e",
        Color::Black => "#1e1e1e",
        Color::Red | Color::LightRed => "#f07178",
        Color::Green | Color::LightGreen => "#98c379",
        Color::Yellow | Color::LightYellow => "#e5c07b",
        Color::Blue | Color::LightBlue => "#61afef",
        Color::Magenta | Color::LightMagenta => "#c678dd",
        Color::Cyan | Color::LightCyan => "#56b6c2",
        Color::Gray | Color::White => "#e0e0e0",
        Color::DarkGray => "#7f848e",
        _ => "#d4d4d4",
    }
}

fn escape(c: &str, out: &mut String) {
    for ch in c.chars() {
        match ch {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

/// The SVG of `buf`, `font` the family name to draw it in.
pub fn svg(buf: &Buffer, font: &str) -> String {
    let area = buf.area;
    let (cw, ch) = CELL;
    let (w, h) = (area.width as f64 * cw, area.height as f64 * ch);
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">\
         <rect width=\"{w}\" height=\"{h}\" fill=\"#1e1e1e\"/>\
         <g font-family=\"{font}\" font-size=\"13\" xml:space=\"preserve\">"
    );
    for y in 0..area.height {
        // Runs of cells with the same colour, one <text> each, a position per character.
        let mut x = 0;
        while x < area.width {
            let cell = &buf[(area.x + x, area.y + y)];
            if cell.symbol().trim().is_empty() {
                x += 1;
                continue;
            }
            let (fg, bold) = (cell.fg, cell.modifier.contains(Modifier::BOLD));
            let start = x;
            let mut xs = String::new();
            let mut text = String::new();
            while x < area.width {
                let c = &buf[(area.x + x, area.y + y)];
                if c.fg != fg || c.modifier.contains(Modifier::BOLD) != bold {
                    break;
                }
                if !c.symbol().trim().is_empty() {
                    let _ = write!(xs, "{} ", x as f64 * cw);
                    escape(c.symbol(), &mut text);
                } else if x > start {
                    // A gap in the run: end it here.
                    break;
                }
                x += 1;
            }
            let _ = write!(
                out,
                "<text x=\"{}\" y=\"{}\" fill=\"{}\"{}>{text}</text>",
                xs.trim_end(),
                y as f64 * ch + ch * 0.75,
                rgb(fg, true),
                if bold { " font-weight=\"bold\"" } else { "" }
            );
        }
    }
    out.push_str("</g></svg>");
    out
}
