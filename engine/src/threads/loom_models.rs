//! Loom models of the primitives the threads runtime synchronises on: the mailbox (send,
//! receive, close, wake-ups, several receivers), the stop signal a stopped stage leaves
//! for its neighbours, and the probe counters. Each model has two or three threads; loom
//! runs every interleaving (bounded by `LOOM_MAX_PREEMPTIONS`).
//!
//! Run: `RUSTFLAGS="--cfg flowbench_loom" LOOM_MAX_PREEMPTIONS=2 \
//!       cargo test -p flowbench-engine --lib --release loom`
//!
//! Capacities are tiny on purpose: two or three messages reach every interesting state
//! (empty, one waiting, sender and receiver racing on the last slot) while keeping the
//! number of interleavings small enough to explore exhaustively.

use std::collections::VecDeque;

use loom::sync::{Arc, Mutex};
use loom::thread;

use super::mailbox::Mailbox;
use crate::sync::lock;

#[test]
fn loom_mailbox_two_senders_fifo_each_nothing_lost() {
    loom::model(|| {
        let mb = Arc::new(Mailbox::new());
        let senders: Vec<_> = (0..2u32)
            .map(|s| {
                let mb = mb.clone();
                thread::spawn(move || {
                    for i in 0..2u32 {
                        mb.send((s, i)).expect("open");
                    }
                })
            })
            .collect();
        let mut got = VecDeque::new();
        let mut all = Vec::new();
        while all.len() < 4 {
            assert!(mb.recv_all(&mut got, None), "woken with mail");
            all.extend(got.drain(..));
        }
        for s in senders {
            s.join().expect("sender");
        }
        for s in 0..2 {
            let mine: Vec<u32> = all.iter().filter(|m| m.0 == s).map(|m| m.1).collect();
            assert_eq!(mine, [0, 1], "per-sender order");
        }
    });
}

#[test]
fn loom_mailbox_blocked_receiver_is_woken() {
    // The receiver may be asleep (no deadline) when the message comes: it must wake.
    loom::model(|| {
        let mb = Arc::new(Mailbox::new());
        let tx = mb.clone();
        let sender = thread::spawn(move || tx.send(7u8).expect("open"));
        let mut got = VecDeque::new();
        assert!(mb.recv_all(&mut got, None));
        assert_eq!(got, [7]);
        sender.join().expect("sender");
    });
}

#[test]
fn loom_mailbox_close_races_send_each_message_exactly_once() {
    // Every message ends up exactly once: received, returned by `close`, or given back
    // to its sender.
    loom::model(|| {
        let mb = Arc::new(Mailbox::new());
        let tx = mb.clone();
        let sender = thread::spawn(move || {
            let mut refused = Vec::new();
            for i in 0..2u8 {
                if let Err(m) = tx.send(i) {
                    refused.push(m);
                }
            }
            refused
        });
        let mut seen = Vec::new();
        let mut got = VecDeque::new();
        if mb.try_recv_all(&mut got) {
            seen.extend(got.drain(..));
        }
        seen.extend(mb.close());
        seen.extend(sender.join().expect("sender"));
        seen.sort_unstable();
        assert_eq!(seen, [0, 1]);
    });
}

#[test]
fn loom_mailbox_pool_workers_share_jobs_and_see_close() {
    // Two workers wait in `recv_one` (a consumer pool) while jobs come and the pool
    // closes its job queue: every job runs once or is handed back by `close`, and close
    // wakes every worker still waiting (else loom reports a deadlock).
    loom::model(|| {
        let jobs = Arc::new(Mailbox::new());
        let done = Arc::new(Mutex::new(Vec::new()));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let jobs = jobs.clone();
                let done = done.clone();
                thread::spawn(move || {
                    while let Some(j) = jobs.recv_one() {
                        lock(&done).push(j);
                    }
                })
            })
            .collect();
        jobs.send(1u8).expect("open");
        jobs.send(2u8).expect("open");
        let returned = jobs.close();
        for w in workers {
            w.join().expect("worker");
        }
        let mut all = lock(&done).clone();
        all.extend(returned);
        all.sort_unstable();
        assert_eq!(all, [1, 2]);
    });
}

#[test]
fn loom_exit_reason_is_visible_to_a_refused_sender() {
    // A stopping stage records why it stopped, then closes its mailbox. A neighbour whose
    // send is refused reads the reason to answer its own subscription: it must see it.
    loom::model(|| {
        let mb = Arc::new(Mailbox::new());
        let exit = Arc::new(Mutex::new(None::<&'static str>));
        let (mb2, exit2) = (mb.clone(), exit.clone());
        let stopper = thread::spawn(move || {
            *lock(&exit2) = Some("normal");
            mb2.close();
        });
        if mb.send(1u8).is_err() {
            assert_eq!(*lock(&exit), Some("normal"));
        }
        stopper.join().expect("stopper");
    });
}

#[test]
fn loom_probe_counters_never_go_backwards() {
    use crate::core::{CoreConfig, Logic, OutputConfig, StageCore};
    use crate::dispatcher::DispatcherSpec;
    use crate::logic::Emit;
    // A probe is written by its stage thread and read by anyone: each figure a reader
    // sees is one the writer published, and figures never go backwards.
    loom::model(|| {
        let mb: std::sync::Arc<Mailbox<u8>> = std::sync::Arc::new(Mailbox::new());
        let mut core: StageCore<u64, u64> = StageCore::new(CoreConfig {
            id: 0,
            logic: Logic::Producer(Box::new(|_n: u64, _e: &mut Emit<u64>| {})),
            inputs: Vec::new(),
            output: Some(OutputConfig {
                dispatcher: DispatcherSpec::default(),
                buffer_size: None,
                buffer_keep: crate::buffer::Keep::Last,
                demand_mode: crate::core::DemandMode::Forward,
                limit: None,
                forward_when_subscribed: false,
                links: Vec::new(),
            }),
        });
        let probe = Arc::new(super::probe::StageProbe::new("p", &core, mb));
        let reader = {
            let probe = probe.clone();
            thread::spawn(move || {
                let a = probe.emitted();
                let b = probe.emitted();
                assert!(b >= a, "went backwards: {a} then {b}");
                assert!(b <= 2);
            })
        };
        let mut fx = crate::core::Effects::default();
        for batch in [vec![1u64], vec![2]] {
            core.handle(
                crate::core::Input::Arrive(batch),
                &mut fx,
                &mut crate::observe::NoObserver,
            );
            probe.publish(&core, 0);
        }
        reader.join().expect("reader");
        assert_eq!(probe.emitted(), 2);
    });
}

#[test]
fn loom_catches_a_lost_wakeup() {
    // The same model as `loom_mailbox_blocked_receiver_is_woken`, with a sender that
    // decides whether to wake the receiver before it pushes: loom must find the
    // interleaving where the receiver sleeps forever.
    let result = std::panic::catch_unwind(|| {
        loom::model(|| {
            let mb = Arc::new(Mailbox::new());
            let tx = mb.clone();
            let sender = thread::spawn(move || tx.send_with_lost_wakeup(7u8).expect("open"));
            let mut got = VecDeque::new();
            assert!(mb.recv_all(&mut got, None));
            sender.join().expect("sender");
        });
    });
    assert!(result.is_err(), "loom did not find the lost wakeup");
}

#[test]
fn loom_watch_never_declares_a_deadlock_while_work_is_under_way() {
    use super::watch::Watch;
    use loom::sync::atomic::{AtomicBool, Ordering};
    // Stage 0 sends one message to stage 1 and then has nothing to do; stage 1 handles it
    // and waits again. The watchdog looks twice: if it declares quiescence, the message
    // must already have been handled — never a deadlock while work is under way.
    loom::model(|| {
        let watch = Arc::new(Watch::new(2));
        let mb: Arc<Mailbox<u8>> = Arc::new(Mailbox::new());
        let handled = Arc::new(AtomicBool::new(false));
        let s0 = {
            let (watch, mb) = (watch.clone(), mb.clone());
            thread::spawn(move || {
                // The test may close the mailbox first (after its looks): then nothing
                // was sent, and stage 0 was never idle while the watchdog looked.
                let _ = mb.send(1);
                watch.waiting(0, true);
            })
        };
        let s1 = {
            let (watch, mb, handled) = (watch.clone(), mb.clone(), handled.clone());
            thread::spawn(move || {
                let mut got = VecDeque::new();
                watch.waiting(1, true);
                let woke = mb.recv_all(&mut got, None);
                watch.woke(1);
                if woke {
                    mb.processed(got.len() as u64);
                    handled.store(true, Ordering::SeqCst);
                    watch.waiting(1, true);
                    // Nothing more comes: the test closes the mailbox to end the thread.
                    let _ = mb.recv_all(&mut got, None);
                    watch.woke(1);
                }
            })
        };
        let look = || watch.quiescent(|_| false, |i| if i == 1 { mb.depth() } else { 0 });
        let first = look();
        let second = look();
        if first.is_some() && first == second {
            assert!(
                handled.load(Ordering::SeqCst),
                "declared quiescent while the message was unhandled"
            );
        }
        drop(mb.close());
        s0.join().expect("stage 0");
        s1.join().expect("stage 1");
    });
}

/// The worker pool's models: a stage that collects `want` messages from its mailbox,
/// run by the real scheduler (task states, run queue, parking), and fed from outside.
mod pool {
    use std::collections::VecDeque;

    use loom::thread;

    use super::super::mailbox::Mailbox;
    use super::super::sched::{Flaw, Poll, Sched, StageTask, Waker};

    /// A stage that takes its mail until it has `want` messages, then stops the pool.
    struct Collect {
        mb: std::sync::Arc<Mailbox<u8>>,
        want: usize,
        got: Vec<u8>,
        sched: Option<std::sync::Arc<Sched>>,
    }

    impl StageTask for Collect {
        fn poll(&mut self, _budget: usize) -> Poll {
            let mut local = VecDeque::new();
            self.mb.try_recv_all(&mut local);
            self.mb.processed(local.len() as u64);
            self.got.extend(local);
            if self.got.len() >= self.want {
                Poll::Done
            } else {
                Poll::Idle { deadline: None }
            }
        }
        fn last_slice_ns(&self) -> u64 {
            0
        }
        fn wait(&mut self, _deadline: Option<std::time::Instant>) {
            unreachable!("pooled")
        }
        fn finish(&mut self) {
            let mut got = self.got.clone();
            got.sort_unstable();
            assert_eq!(got, [1, 2], "every message handled once");
            if let Some(s) = self.sched.take() {
                s.shutdown();
            }
        }
        fn failed(&mut self, what: String) {
            panic!("{what}");
        }
    }

    /// Two messages sent from outside to a stage on a pool of `workers`; the model ends
    /// only if the stage handles both (a lost wake-up leaves a worker asleep forever,
    /// which loom reports as a deadlock).
    fn two_messages(workers: usize, flaw: Flaw) {
        loom::model(move || {
            let (sched, locals) = Sched::new(1, workers, std::time::Instant::now(), true);
            // Loom needs the flaw set before the pool is shared.
            let mut sched = sched;
            if let Some(s) = std::sync::Arc::get_mut(&mut sched) {
                s.flaw = flaw;
            }
            let mb = std::sync::Arc::new(Mailbox::new());
            sched.set_body(
                0,
                Box::new(Collect {
                    mb: mb.clone(),
                    want: 2,
                    got: Vec::new(),
                    sched: Some(sched.clone()),
                }),
            );
            mb.set_waker(Some(Waker {
                task: sched.task(0).clone(),
                sched: sched.clone(),
            }));
            sched.notify(sched.task(0));
            let handles: Vec<_> = locals
                .into_iter()
                .enumerate()
                .map(|(w, local)| {
                    let s = sched.clone();
                    thread::spawn(move || s.work(w, local))
                })
                .collect();
            mb.send(1).expect("open");
            mb.send(2).expect("open");
            for h in handles {
                h.join().expect("worker");
            }
            drop(mb.close());
        });
    }

    #[test]
    fn loom_pool_stage_gets_every_message_sent_while_it_runs_or_sleeps() {
        two_messages(1, Flaw::None);
    }

    #[test]
    fn loom_pool_two_workers_park_and_wake_without_losing_work() {
        two_messages(2, Flaw::None);
    }

    #[test]
    fn loom_catches_a_stage_marked_idle_without_the_swap() {
        let r = std::panic::catch_unwind(|| two_messages(1, Flaw::IdleWithoutSwap));
        assert!(r.is_err(), "loom did not find the lost NOTIFIED mark");
    }

    #[test]
    fn loom_catches_a_worker_that_sleeps_without_looking() {
        let r = std::panic::catch_unwind(|| two_messages(1, Flaw::SleepWithoutLooking));
        assert!(r.is_err(), "loom did not find the worker's lost wake-up");
    }
}
