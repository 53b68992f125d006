//! Frames of the view on a test buffer, as insta snapshots: the default scenario at fixed
//! virtual times, a stage with a full buffer, the help screen, a lesson page, the menu and
//! an 80x24 terminal. A frame depends only on the scenario, the seed, the speed and the
//! virtual time (wall time is not drawn from a clock here).

mod common;

use common::{default_scenario, frame, key, lesson_scenario};
use flowbench_tui::{ui, App, Menu, Options};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

#[test]
fn the_default_scenario_at_fixed_virtual_times() {
    let s = default_scenario();
    let mut app = App::sim(&s, &Options::default()).expect("starts");
    app.advance_to(300_000);
    let at_300us = frame(&app, 120, 36);
    assert!(at_300us.contains("t 300.00 us"), "{at_300us}");
    insta::assert_snapshot!("default_300us_120x36", at_300us);
    app.advance_to(2_000_000);
    let at_2ms = frame(&app, 120, 36);
    insta::assert_snapshot!("default_2ms_120x36", at_2ms);
    // The same again from a fresh run: reproducible from the seed.
    let mut again = App::sim(&s, &Options::default()).expect("starts");
    again.advance_to(300_000);
    again.advance_to(2_000_000);
    assert_eq!(frame(&again, 120, 36), at_2ms);
}

#[test]
fn an_80x24_terminal() {
    let s = default_scenario();
    let mut app = App::sim(&s, &Options::default()).expect("starts");
    app.advance_to(1_000_000);
    let f = frame(&app, 80, 24);
    for name in ["lines", "parse", "agg-0", "agg-3", "log", "q quit"] {
        assert!(f.contains(name), "{name} is on screen:\n{f}");
    }
    insta::assert_snapshot!("default_1ms_80x24", f);
}

#[test]
fn a_stage_with_a_full_buffer() {
    // Lesson 4: bursts of 500 into a buffer of 400; the first moment after the second
    // burst (in 5 us steps) at which the buffer is full.
    let s = lesson_scenario(4);
    let mut app = App::sim(&s, &Options::default()).expect("starts");
    let mut t = 600_000;
    while app.state.stages[0].buffered != Some(400) && t < 5_000_000 {
        t += 5_000;
        app.advance_to(t);
    }
    let st = &app.state.stages[0];
    assert_eq!(st.buffered, Some(400), "{st:?}");
    assert!(st.dropped > 0);
    let f = frame(&app, 100, 30);
    assert!(f.contains("FULL"), "a full buffer is marked in words:\n{f}");
    assert!(f.contains("! drop"), "drops carry a marker:\n{f}");
    insta::assert_snapshot!("full_buffer_100x30", f);
}

#[test]
fn the_help_screen() {
    let s = default_scenario();
    let mut app = App::sim(&s, &Options::default()).expect("starts");
    app.key(key('?'));
    assert!(app.help);
    let f = frame(&app, 100, 30);
    assert!(f.contains("Keys") && f.contains("max_demand x2"), "{f}");
    insta::assert_snapshot!("help_100x30", f);
    app.key(key('x'));
    assert!(!app.help, "any key closes the help");
    assert!(app.message.is_none(), "and does nothing else");
}

#[test]
fn a_lesson_page() {
    let s = lesson_scenario(2);
    let lesson = flowbench_tui::lesson(2).expect("lesson 2");
    let mut app = App::sim(&s, &Options::default())
        .expect("starts")
        .with_lesson(lesson);
    app.advance_to(100_000);
    let f = frame(&app, 100, 30);
    assert!(
        f.contains("lesson 2: What max_demand and min_demand do"),
        "{f}"
    );
    insta::assert_snapshot!("lesson_2_100x30", f);
    app.key(key('l'));
    assert!(!frame(&app, 100, 30).contains("lesson 2:"), "l hides it");
}

#[test]
fn the_menu() {
    let mut menu = Menu::default();
    menu.key(common::code(crossterm::event::KeyCode::Down));
    let mut buf = Buffer::empty(Rect::new(0, 0, 80, 24));
    ui::render_menu(&menu, buf.area, &mut buf);
    let f = common::text_of(&buf);
    assert!(f.contains("> 2  What max_demand and min_demand do"), "{f}");
    insta::assert_snapshot!("menu_80x24", f);
}

#[test]
fn every_lesson_runs_and_draws() {
    for l in &flowbench_tui::LESSONS {
        let s = lesson_scenario(l.number);
        let mut app = App::sim(&s, &Options::default())
            .expect("starts")
            .with_lesson(l);
        app.advance_to(2_000_000);
        for (w, h) in [(80, 24), (160, 48)] {
            let f = frame(&app, w, h);
            assert!(f.contains(&format!("lesson {}", l.number)), "{f}");
        }
        app.key(key('l'));
        let f = frame(&app, 160, 48);
        for st in &s.stages {
            assert!(
                f.contains(&st.name),
                "lesson {}: {} is drawn:\n{f}",
                l.number,
                st.name
            );
        }
    }
}

#[test]
fn any_terminal_size_draws_without_panicking() {
    // Small, odd and large sizes, on a lesson with many stages, with the help and the
    // lesson page up or not.
    let s = lesson_scenario(1);
    let lesson = flowbench_tui::lesson(1).expect("lesson 1");
    let mut app = App::sim(&s, &Options::default())
        .expect("starts")
        .with_lesson(lesson);
    app.advance_to(3_000_000);
    for w in [1u16, 2, 5, 19, 20, 33, 57, 80, 81, 119, 200, 331] {
        for h in [1u16, 2, 3, 5, 7, 12, 24, 25, 48, 101] {
            for (help, page) in [(false, false), (true, false), (false, true)] {
                app.help = help;
                app.show_lesson = page;
                let f = frame(&app, w, h);
                assert_eq!(f.lines().count(), h as usize);
            }
        }
    }
    let mut menu = Menu::default();
    for w in [1u16, 10, 80] {
        for h in [1u16, 4, 24] {
            let mut buf = Buffer::empty(Rect::new(0, 0, w, h));
            ui::render_menu(&menu, buf.area, &mut buf);
        }
    }
    menu.key(key('q'));
}

#[test]
fn every_example_scenario_runs_and_draws() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("scenarios/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5);
    for f in files {
        let s = flowbench_engine::scenario::load(&f).expect("an example loads");
        let opts = Options {
            events: Some(20_000),
            ..Options::default()
        };
        let mut app = App::sim(&s, &opts).expect("an example runs");
        let mut t = 0;
        while !app.ended() && t < 200_000_000 {
            t += 1_000_000;
            app.advance_to(t);
            let screen = frame(&app, 100, 30);
            assert!(
                screen.contains(&s.stages[0].name),
                "{}:\n{screen}",
                f.display()
            );
        }
        assert!(app.ended(), "{} ends", f.display());
        let v = app.verdict().expect("a verdict once ended");
        assert_eq!(v, "drained", "{}", f.display());
    }
}
