//! # flowbench-tui
//!
//! A live terminal view of a flowbench pipeline, for an engineer watching queues while
//! changing demand and for a teacher showing what back-pressure is. The `flowbench tui`
//! command runs it; this crate is the view itself, usable without a terminal (tests,
//! screenshots):
//!
//! - [`App`]: the state and what each key does ([`App::key`]), fed by a simulated run
//!   stepped in virtual time, a trace played back, or a run on threads sampled live;
//! - [`ui::render`]: draws it into a ratatui buffer;
//! - [`Tui`]: the terminal loop (raw mode, restored on quit, error and panic);
//! - [`LESSONS`]: five built-in lessons on back-pressure.
//!
//! ```
//! use flowbench_engine::scenario::{parse_str, DEFAULT_SCENARIO, DEFAULT_SCENARIO_FILE};
//! use flowbench_tui::{ui, App, Options};
//! use ratatui::{buffer::Buffer, layout::Rect};
//!
//! let s = parse_str(DEFAULT_SCENARIO, DEFAULT_SCENARIO_FILE).unwrap();
//! let mut app = App::sim(&s, &Options::default()).unwrap();
//! app.advance_to(200_000); // 200 us of virtual time
//! let mut buf = Buffer::empty(Rect::new(0, 0, 100, 30));
//! ui::render(&app, buf.area, &mut buf);
//! let screen: String = buf.content.iter().map(|c| c.symbol()).collect();
//! assert!(screen.contains("parse") && screen.contains("agg-3"));
//! ```

pub mod app;
pub mod explain;
pub mod lessons;
pub mod save;
pub mod shot;
pub mod source;
pub mod term;
pub mod topo;
pub mod ui;

pub use crate::app::{App, Choice, Menu, Options, SourceText, Speed};
pub use crate::lessons::{lesson, Lesson, LESSONS};
pub use crate::term::Tui;
pub use crate::topo::Topo;
