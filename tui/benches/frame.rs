#![allow(missing_docs)] // criterion_group! makes an undocumented function
//! One frame of the view: the state of a 32-stage topology (a source, a partitioning
//! stage and 30 consumers; and a chain of 32) drawn into a 160x48 buffer. The target is
//! under 2 ms per frame (30 frames a second leave 33 ms).

use criterion::{criterion_group, criterion_main, Criterion};
use flowbench_engine::scenario::parse_str;
use flowbench_tui::{ui, App, Options};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

fn fan_out(n: usize) -> String {
    let mut s = String::from(
        "name = \"fan-32\"\n[[stage]]\nname = \"src\"\nkind = \"producer\"\nsource = { range = [1, 10000000] }\n\
         [[stage]]\nname = \"route\"\nkind = \"producer_consumer\"\ndispatcher = \"partition\"\n",
    );
    s += &format!("partitions = {n}\nper_event = {{ dist = \"fixed\", ns = 10 }}\n");
    for i in 0..n {
        s += &format!("[[stage]]\nname = \"sink-{i}\"\nkind = \"consumer\"\nper_event = {{ dist = \"fixed\", ns = 200 }}\n");
    }
    s += "[[subscription]]\nproducer = \"src\"\nconsumer = \"route\"\n";
    for i in 0..n {
        s += &format!(
            "[[subscription]]\nproducer = \"route\"\nconsumer = \"sink-{i}\"\npartition = {i}\n"
        );
    }
    s
}

fn chain(n: usize) -> String {
    let mut s = String::from(
        "name = \"chain-32\"\n[[stage]]\nname = \"s0\"\nkind = \"producer\"\nsource = { range = [1, 10000000] }\n",
    );
    for i in 1..n {
        let kind = if i + 1 == n {
            "consumer"
        } else {
            "producer_consumer"
        };
        s += &format!("[[stage]]\nname = \"s{i}\"\nkind = \"{kind}\"\nper_event = {{ dist = \"fixed\", ns = 20 }}\n");
        s += &format!(
            "[[subscription]]\nproducer = \"s{}\"\nconsumer = \"s{i}\"\n",
            i - 1
        );
    }
    s
}

fn frame(c: &mut Criterion) {
    for (name, text) in [("fan_out_32", fan_out(30)), ("chain_32", chain(32))] {
        let s = parse_str(&text, "bench.toml").expect("the bench scenario is valid");
        assert_eq!(s.stages.len(), 32);
        let mut app = App::sim(&s, &Options::default()).expect("starts");
        app.advance_to(2_000_000);
        let mut buf = Buffer::empty(Rect::new(0, 0, 160, 48));
        c.bench_function(&format!("tui/frame_160x48/{name}"), |b| {
            b.iter(|| {
                buf.reset();
                ui::render(&app, buf.area, &mut buf);
            })
        });
    }
}

criterion_group!(benches, frame);
criterion_main!(benches);
