//! What the keys do to the view's state, without a terminal: select, change demand,
//! pause, step, slow, crash and restart, save, quit; seek and rewind in a replay.

mod common;

use std::time::Duration;

use common::{code, default_scenario, key, lesson_scenario};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use flowbench_sim::{Record, SimOptions};
use flowbench_tui::{App, Options, SourceText, Speed, Topo};

#[test]
fn tab_and_arrows_select_stages_and_brackets_select_subscriptions() {
    let s = default_scenario();
    let mut app = App::sim(&s, &Options::default()).expect("starts");
    assert_eq!(app.sel, 0);
    assert_eq!(app.sel_link, Some(0), "lines -> parse");
    app.key(code(KeyCode::Tab));
    assert_eq!(app.sel, 1, "parse");
    assert_eq!(app.sel_link, Some(0), "its input first");
    app.key(key(']'));
    assert_eq!(app.sel_link, Some(1), "then parse -> agg-0");
    app.key(key('['));
    app.key(key('['));
    assert_eq!(app.sel_link, Some(4), "wraps round to parse -> agg-3");
    app.key(code(KeyCode::Right));
    assert_eq!(app.topo.stages[app.sel].name, "agg-0");
    app.key(code(KeyCode::Down));
    app.key(code(KeyCode::Down));
    assert_eq!(app.topo.stages[app.sel].name, "agg-2");
    app.key(code(KeyCode::Left));
    assert_eq!(app.topo.stages[app.sel].name, "parse");
    app.key(code(KeyCode::BackTab));
    assert_eq!(app.sel, 0);
    app.key(code(KeyCode::BackTab));
    assert_eq!(app.topo.stages[app.sel].name, "agg-3", "wraps round");
}

#[test]
fn demand_keys_change_the_selected_subscription_live() {
    let s = lesson_scenario(2); // source -> sink, max 10 min 5
    let mut app = App::sim(&s, &Options::default()).expect("starts");
    app.advance_to(500_000);
    let bounds = |app: &App| {
        let l = &app.state.links[0];
        (l.max_demand.expect("max"), l.min_demand.expect("min"))
    };
    assert_eq!(bounds(&app), (10, 5));
    app.key(key('>'));
    assert_eq!(bounds(&app), (20, 10), "max x2 keeps min's share");
    app.key(key('.'));
    assert_eq!(bounds(&app), (20, 12), "min up by a tenth of max");
    app.key(key(','));
    app.key(key(','));
    assert_eq!(bounds(&app), (20, 8));
    app.key(key('<'));
    assert_eq!(bounds(&app), (10, 4));
    for _ in 0..6 {
        app.key(key('<'));
    }
    assert_eq!(bounds(&app), (1, 0), "never below max 1, min 0");
    // > . , , < and three more < change something; the last three presses do not.
    assert_eq!(app.changes(), 8);
    let changes: Vec<_> = app
        .log
        .iter()
        .filter(|l| l.text.starts_with("you set"))
        .collect();
    assert_eq!(changes.len(), app.changes(), "every change goes to the log");
    // The run goes on with the new bounds: asks of at most 1 from now on.
    app.advance_to(2_000_000);
    assert!(app.state.links[0].outstanding <= 1);
}

#[test]
fn space_pauses_and_n_steps_one_message() {
    let s = default_scenario();
    let mut app = App::sim(&s, &Options::default()).expect("starts");
    app.tick(Duration::from_millis(100));
    let t = app.state.t_ns;
    assert_eq!(t, 100_000, "0.001x: 100 ms of wall time is 100 us");
    app.key(key(' '));
    assert!(app.paused);
    app.tick(Duration::from_millis(100));
    assert_eq!(app.state.t_ns, t, "paused: time stands still");
    let handled = |app: &App| app.state.stages.iter().map(|s| s.handled).sum::<u64>();
    let before = (handled(&app), app.log.len());
    for _ in 0..20 {
        app.key(key('n'));
    }
    assert!(app.paused, "n keeps it paused");
    assert!(app.state.t_ns >= t);
    assert!(handled(&app) > before.0, "twenty steps handle something");
    assert!(app.log.len() > before.1, "and log it");
    app.key(key(' '));
    assert!(!app.paused);
    app.key(key('+'));
    assert_eq!(app.speed, Speed::Factor(0.002));
    app.key(key('f'));
    assert_eq!(app.speed, Speed::Max);
    app.tick(Duration::from_millis(30));
    assert!(app.state.t_ns > t + 1_000, "as fast as possible goes far");
}

#[test]
fn slow_crash_and_restart_the_selected_stage() {
    let s = lesson_scenario(3);
    let mut app = App::sim(&s, &Options::default()).expect("starts");
    app.advance_to(100_000);
    let b_slow = app.topo.stage("b-slow").expect("stage");
    app.select_stage(b_slow);
    app.key(key('w'));
    assert_eq!(app.state.stages[b_slow].slowdown, 2.0);
    app.key(key('W'));
    assert_eq!(app.state.stages[b_slow].slowdown, 1.0);
    app.key(key('x'));
    app.advance_to(200_000);
    assert!(app.state.stages[b_slow].exit.is_some(), "down");
    app.key(key('x'));
    assert!(app
        .message
        .as_ref()
        .is_some_and(|m| m.0.starts_with("not changed")));
    app.key(key('r'));
    app.advance_to(300_000);
    assert!(app.state.stages[b_slow].exit.is_none(), "up again");
    assert_eq!(app.changes(), 4);
}

#[test]
fn s_saves_the_scenario_with_the_changes_as_a_new_file() {
    let l = flowbench_tui::lesson(2).expect("lesson");
    let s = lesson_scenario(2);
    let dir = std::env::temp_dir().join(format!("flowbench-tui-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let text = SourceText {
        text: l.scenario.to_string(),
        file: l.file.to_string(),
        dir: dir.clone(),
        stem: "lesson".into(),
    };
    let mut app = App::sim(&s, &Options::default())
        .expect("starts")
        .with_text(text);
    app.advance_to(1_000_000);
    app.key(key('>'));
    app.select_stage(1);
    app.key(key('w'));
    app.key(key('s'));
    let saved = dir.join("lesson.tui.toml");
    let msg = &app.message.as_ref().expect("a message").0;
    assert!(
        msg.contains("saved") && msg.contains("lesson.tui.toml"),
        "{msg}"
    );
    let back = flowbench_engine::scenario::load(&saved).expect("the saved file loads");
    assert_eq!(back.links[0].demand.max(), 20);
    assert_eq!(back.stages[1].faults.len(), 1);
    app.key(key('s'));
    assert!(
        dir.join("lesson.tui-2.toml").exists(),
        "a second save never overwrites"
    );
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn q_and_ctrl_c_quit() {
    let s = default_scenario();
    let mut app = App::sim(&s, &Options::default()).expect("starts");
    app.key(key('q'));
    assert!(app.quit);
    let mut app = App::sim(&s, &Options::default()).expect("starts");
    app.key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert!(app.quit);
}

fn trace_of(s: &flowbench_engine::scenario::Scenario) -> Vec<Record> {
    let mut buf = Vec::new();
    flowbench_sim::run(s, &SimOptions::default(), Some(&mut buf)).expect("runs");
    String::from_utf8(buf)
        .expect("utf-8")
        .lines()
        .map(|l| Record::parse(l).expect("a record"))
        .collect()
}

#[test]
fn a_replay_steps_seeks_and_rewinds_to_the_states_playing_gives() {
    let s = lesson_scenario(2);
    let records = trace_of(&s);
    assert!(
        records.len() > 3 * flowbench_tui::source::KEYFRAME,
        "several keyframes"
    );
    let topo = Topo::of(&s);
    // Playing forward one record at a time is the reference.
    let mut play = App::replay(
        records.clone(),
        Some(topo.clone()),
        "t".into(),
        &Options::default(),
    );
    let mut states = vec![play.state.clone()];
    play.key(key(' '));
    while !play.ended() {
        play.key(key('n'));
        states.push(play.state.clone());
    }
    assert_eq!(states.len(), records.len() + 1);
    let last = states.last().expect("a state").clone();
    let handled: u64 = last.stages.iter().map(|s| s.handled).sum();
    assert_eq!(handled, 50_000, "every event handled once");
    // Seeking anywhere, back and forth, gives the same state.
    let mut seek = App::replay(
        records.clone(),
        Some(topo.clone()),
        "t".into(),
        &Options::default(),
    );
    seek.key(code(KeyCode::End));
    assert_eq!(seek.state.stages, last.stages);
    seek.key(key('0'));
    assert_eq!(seek.replay_position(), Some((0, records.len())));
    assert_eq!(seek.state.stages, states[0].stages);
    for _ in 0..5 {
        seek.key(key('>'));
    }
    let (pos, _) = seek.replay_position().expect("a replay");
    assert!(pos > 0);
    assert_eq!(seek.state.stages, states[pos].stages);
    assert_eq!(seek.state.links, states[pos].links);
    seek.key(key('<'));
    let (back, _) = seek.replay_position().expect("a replay");
    assert!(back < pos);
    assert_eq!(seek.state.stages, states[back].stages);
    // Changes are refused in a replay, with a reason.
    seek.key(key('x'));
    assert!(seek
        .message
        .as_ref()
        .is_some_and(|m| m.0.contains("replay")));
    // A topology from the trace alone has the same stages and subscriptions.
    let from_trace = Topo::of_records(&records);
    let mut names: Vec<_> = from_trace.stages.iter().map(|s| s.name.clone()).collect();
    names.sort();
    let mut want: Vec<_> = s.stages.iter().map(|s| s.name.clone()).collect();
    want.sort();
    assert_eq!(names, want);
    assert_eq!(from_trace.links.len(), s.links.len());
}

#[test]
fn the_threads_view_samples_probes_until_the_run_ends() {
    let s = lesson_scenario(2);
    let opts = Options {
        events: Some(5_000),
        ..Options::default()
    };
    let mut app = App::threads(&s, &opts).expect("starts");
    assert_eq!(app.runtime(), "threads");
    // Every stage stops by itself once the source is exhausted.
    while !app.ended() {
        app.tick(Duration::from_millis(10));
        std::thread::yield_now();
    }
    app.tick(Duration::from_millis(10));
    assert_eq!(app.state.stages[1].handled, 5_000);
    assert!(
        app.verdict().is_some_and(|v| v.contains("stopped")),
        "{:?}",
        app.verdict()
    );
    app.key(key('>'));
    assert!(app
        .message
        .as_ref()
        .is_some_and(|m| m.0.contains("simulator")));
}

#[test]
fn a_stuck_run_says_so_and_logs_why() {
    // Partition 1's consumer crashes after 10 events: partition 1's events wait forever.
    let s = flowbench_engine::scenario::parse_str(
        "[[stage]]\nname = \"p\"\nkind = \"producer\"\nsource = { range = [1, 1000] }\ndispatcher = \"partition\"\npartitions = 2\nhash = \"rem\"\n\
         [[stage]]\nname = \"c0\"\nkind = \"consumer\"\n[[stage]]\nname = \"c1\"\nkind = \"consumer\"\n[[stage.fault]]\ncrash_after_events = 10\n\
         [[subscription]]\nproducer = \"p\"\nconsumer = \"c0\"\nmax_demand = 10\npartition = 0\n\
         [[subscription]]\nproducer = \"p\"\nconsumer = \"c1\"\nmax_demand = 10\npartition = 1\n",
        "stuck.toml",
    )
    .expect("valid");
    let mut app = App::sim(&s, &Options::default()).expect("starts");
    app.advance_to(1_000_000);
    assert!(app.ended());
    let v = app.verdict().expect("ended");
    assert!(v.starts_with("stuck"), "{v}");
    let log: Vec<&str> = app.log.iter().map(|l| l.text.as_str()).collect();
    assert!(
        log.iter().any(|l| l.contains("partition queue for `c1`")),
        "{log:#?}"
    );
    // Restarting the crashed consumer un-sticks it.
    app.select_stage(2);
    app.key(key('r'));
    app.advance_to(2_000_000);
    assert_eq!(app.verdict().as_deref(), Some("drained"));
}
