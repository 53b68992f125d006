//! Helpers of the view's tests: scenarios, keys, and a frame as text.

#![allow(dead_code)]

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use flowbench_engine::scenario::{parse_str, Scenario, DEFAULT_SCENARIO, DEFAULT_SCENARIO_FILE};
use flowbench_tui::{ui, App};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

pub fn default_scenario() -> Scenario {
    parse_str(DEFAULT_SCENARIO, DEFAULT_SCENARIO_FILE).expect("the default scenario loads")
}

pub fn lesson_scenario(n: usize) -> Scenario {
    let l = flowbench_tui::lesson(n).expect("a lesson");
    parse_str(l.scenario, l.file).expect("the lesson's scenario loads")
}

pub fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

pub fn code(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

/// The frame `app` draws in a `w` x `h` terminal, one line per row, trailing blanks cut.
pub fn frame(app: &App, w: u16, h: u16) -> String {
    let mut buf = Buffer::empty(Rect::new(0, 0, w, h));
    ui::render(app, buf.area, &mut buf);
    text_of(&buf)
}

pub fn text_of(buf: &Buffer) -> String {
    let a = buf.area;
    let mut out = String::new();
    for y in 0..a.height {
        let row: String = (0..a.width)
            .map(|x| buf[(a.x + x, a.y + y)].symbol())
            .collect();
        out += row.trim_end();
        out.push('\n');
    }
    out
}
