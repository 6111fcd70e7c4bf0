//! Deterministic tests of the session state machine: a fake transport with a virtual clock
//! (no real sleeping, no sockets), driven step by step on a single-threaded executor.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::channel::mpsc;
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;

use super::{spawn, Handle};
use crate::transport::{BufferedProbe, Connection, Incoming, MaybeSend, Transport};
use crate::url::WsUrl;
use crate::{
    AppPing, CloseEvent, Endpoint, Error, Event, Heartbeat, Message, Options, QueueLimits,
    ReadyState, Reconnect,
};

/// What the next connect attempt does.
#[derive(Clone, Copy, Debug)]
enum Plan {
    Accept,
    /// Accepts, selecting the `unisock.v1` subprotocol (acknowledged sessions).
    AcceptSession,
    /// Accepts; received messages from this size on are large (`Connection::large_message`).
    AcceptLarge(usize),
    Refuse,
    Reject(u16),
    /// Never answers (for connect timeouts).
    Hang,
}

#[derive(Default)]
struct Wire {
    sent: Vec<Message>,
    pings: usize,
    incoming: VecDeque<Incoming>,
    closed_with: Option<(u16, String)>,
    waker: Option<Waker>,
    /// The socket takes nothing more for now: flushes wait (and wake this when it does).
    flush_blocked: bool,
    flush_waker: Option<Waker>,
    /// The socket takes no frame for now: `poll_ready` waits (and wakes this when it does).
    not_ready: bool,
    ready_waker: Option<Waker>,
    /// Writes fail (the connection broke under them).
    write_broken: bool,
    /// What `Connection::large_message` reports (`None`: `usize::MAX`).
    large_message: Option<usize>,
}

#[derive(Default)]
struct World {
    now: Duration,
    timers: Vec<(Duration, Waker)>,
    plans: VecDeque<Plan>,
    /// When each connect attempt started, and to which URL.
    attempts: Vec<(Duration, String)>,
    wires: Vec<Wire>,
    spawner: Option<futures::executor::LocalSpawner>,
}

thread_local! {
    static WORLD: RefCell<World> = RefCell::new(World::default());
}

fn world<R>(f: impl FnOnce(&mut World) -> R) -> R {
    WORLD.with(|w| f(&mut w.borrow_mut()))
}

struct Fake;

struct FakeSleep(Duration);

impl Future for FakeSleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.0;
        world(|w| {
            if w.now >= deadline {
                Poll::Ready(())
            } else {
                w.timers.push((deadline, cx.waker().clone()));
                Poll::Pending
            }
        })
    }
}

struct FakeConnection(usize, &'static str);

impl Transport for Fake {
    type Connection = FakeConnection;
    type Sleep = FakeSleep;

    fn connect(
        url: &WsUrl,
        _options: &Options,
    ) -> impl Future<Output = Result<FakeConnection, Error>> + MaybeSend + 'static {
        let plan = world(|w| {
            w.attempts.push((w.now, url.as_str().to_owned()));
            w.plans.pop_front().unwrap_or(Plan::Refuse)
        });
        let url = url.redacted().to_owned();
        async move {
            match plan {
                Plan::Accept | Plan::AcceptSession | Plan::AcceptLarge(_) => {
                    let large_message = match plan {
                        Plan::AcceptLarge(size) => Some(size),
                        _ => None,
                    };
                    let wire = world(|w| {
                        w.wires.push(Wire {
                            large_message,
                            ..Wire::default()
                        });
                        w.wires.len() - 1
                    });
                    let protocol = match plan {
                        Plan::AcceptSession => super::ack::PROTOCOL,
                        _ => "",
                    };
                    Ok(FakeConnection(wire, protocol))
                }
                Plan::Refuse => Err(Error::ConnectionRefused { url }),
                Plan::Reject(status) => Err(Error::HandshakeRejected { url, status }),
                Plan::Hang => std::future::pending().await,
            }
        }
    }

    fn check_options(_: &Options) -> Result<(), Error> {
        Ok(())
    }

    fn sleep(duration: Duration) -> FakeSleep {
        FakeSleep(world(|w| w.now) + duration)
    }

    fn now() -> Duration {
        world(|w| w.now)
    }

    fn spawn(task: impl Future<Output = ()> + MaybeSend + 'static) -> Result<(), Error> {
        let spawner = world(|w| w.spawner.clone()).expect("a simulation is running");
        spawner.spawn_local(task).expect("spawn");
        Ok(())
    }
}

impl FakeConnection {
    fn wire<R>(&self, f: impl FnOnce(&mut Wire) -> R) -> R {
        world(|w| f(&mut w.wires[self.0]))
    }
}

impl Connection for FakeConnection {
    fn protocol(&self) -> &str {
        self.1
    }
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.wire(|wire| {
            if wire.not_ready {
                wire.ready_waker = Some(cx.waker().clone());
                Poll::Pending
            } else {
                Poll::Ready(Ok(()))
            }
        })
    }
    fn start_send(&mut self, message: Message) -> Result<(), Error> {
        self.wire(|wire| {
            if wire.write_broken {
                return Err(Error::Io {
                    kind: std::io::ErrorKind::BrokenPipe,
                    reason: "broken pipe".into(),
                });
            }
            wire.sent.push(message);
            Ok(())
        })
    }
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.wire(|wire| {
            if wire.flush_blocked {
                wire.flush_waker = Some(cx.waker().clone());
                Poll::Pending
            } else {
                Poll::Ready(Ok(()))
            }
        })
    }
    fn start_close(&mut self, code: u16, reason: &str) -> Result<(), Error> {
        // A cooperative peer: answers our close frame with the same code and reason.
        self.wire(|wire| {
            wire.closed_with = Some((code, reason.to_owned()));
            wire.incoming
                .push_back(Incoming::Closed(CloseEvent::new(code, reason, true)));
        });
        Ok(())
    }
    fn start_ping(&mut self) -> Result<(), Error> {
        self.wire(|wire| wire.pings += 1);
        Ok(())
    }
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Incoming> {
        self.wire(|wire| match wire.incoming.pop_front() {
            Some(incoming) => Poll::Ready(incoming),
            None => {
                wire.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        })
    }
    fn buffered_probe(&self) -> Option<BufferedProbe> {
        None
    }
    fn large_message(&self) -> usize {
        self.wire(|wire| wire.large_message.unwrap_or(usize::MAX))
    }
}

/// One simulated session: the executor, the handle and the events it emitted.
struct Sim {
    pool: LocalPool,
    handle: Handle,
    events: mpsc::Receiver<Event>,
}

impl Sim {
    fn start(plans: &[Plan], options: Options, retry_first_connect: bool) -> Sim {
        Sim::start_with_channel(plans, options, retry_first_connect, 1024)
    }

    /// [`Sim::start`] with an event channel of `capacity` (plus one slot for the driver).
    fn start_with_channel(
        plans: &[Plan],
        options: Options,
        retry_first_connect: bool,
        capacity: usize,
    ) -> Sim {
        let (tx, events) = mpsc::channel(capacity);
        let outlet = |shared: &Arc<super::Shared>| -> Box<dyn super::Outlet> {
            Box::new(super::EventChannel {
                sender: tx,
                shared: shared.clone(),
            })
        };
        Sim::launch(plans, options, retry_first_connect, events, outlet)
    }

    /// Starts a session delivering into `outlet`; `events` is what [`Sim::take_events`] reads.
    fn launch(
        plans: &[Plan],
        options: Options,
        retry_first_connect: bool,
        events: mpsc::Receiver<Event>,
        outlet: impl FnOnce(&Arc<super::Shared>) -> Box<dyn super::Outlet>,
    ) -> Sim {
        let pool = LocalPool::new();
        WORLD.with(|w| {
            *w.borrow_mut() = World {
                plans: plans.iter().copied().collect(),
                spawner: Some(pool.spawner()),
                ..World::default()
            }
        });
        let url = WsUrl::parse("ws://fake.test/").unwrap();
        let handle = spawn::<Fake>(url, options, outlet, retry_first_connect).unwrap();
        let mut sim = Sim {
            pool,
            handle,
            events,
        };
        sim.run();
        sim
    }

    fn run(&mut self) {
        self.pool.run_until_stalled();
    }

    /// Moves the virtual clock forward, firing timers in order.
    fn advance(&mut self, by: Duration) {
        let target = world(|w| w.now) + by;
        loop {
            self.run();
            let due = world(|w| {
                let next = w
                    .timers
                    .iter()
                    .map(|(t, _)| *t)
                    .filter(|t| *t <= target)
                    .min()?;
                w.now = next;
                let (fire, keep) = std::mem::take(&mut w.timers)
                    .into_iter()
                    .partition::<Vec<_>, _>(|(t, _)| *t <= next);
                w.timers = keep;
                Some(fire)
            });
            match due {
                Some(fire) => fire.into_iter().for_each(|(_, waker)| waker.wake()),
                None => break,
            }
        }
        world(|w| w.now = target);
        self.run();
    }

    fn now(&self) -> Duration {
        world(|w| w.now)
    }

    /// Every event emitted so far.
    fn take_events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.events.try_recv().ok()).collect()
    }

    /// Makes connection `wire` receive something.
    fn inject(&mut self, wire: usize, incoming: Incoming) {
        let waker = world(|w| {
            w.wires[wire].incoming.push_back(incoming);
            w.wires[wire].waker.take()
        });
        if let Some(waker) = waker {
            waker.wake();
        }
        self.run();
    }

    /// Changes how connection `wire`'s socket behaves; unblocking it wakes its writer.
    fn set_wire(&mut self, wire: usize, f: impl FnOnce(&mut Wire)) {
        let wakers = world(|w| {
            f(&mut w.wires[wire]);
            let wire = &mut w.wires[wire];
            let flush = (!wire.flush_blocked)
                .then(|| wire.flush_waker.take())
                .flatten();
            let ready = (!wire.not_ready).then(|| wire.ready_waker.take()).flatten();
            [flush, ready]
        });
        wakers.into_iter().flatten().for_each(Waker::wake);
        self.run();
    }

    fn sent(&self, wire: usize) -> Vec<Message> {
        world(|w| w.wires[wire].sent.clone())
    }

    fn attempts(&self) -> Vec<Duration> {
        world(|w| w.attempts.iter().map(|(t, _)| *t).collect())
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn options(reconnect: Reconnect) -> Options {
    Options::default().reconnect(reconnect).heartbeat(None)
}

fn reconnect() -> Reconnect {
    Reconnect {
        min_delay: ms(100),
        max_delay: ms(1000),
        factor: 2.0,
        max_retries: None,
        min_uptime: Duration::from_secs(5),
        ..Reconnect::default()
    }
}

/// The (attempt, delay) of every Reconnecting event, in order.
fn reconnects(events: &[Event]) -> Vec<(u32, Duration)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Reconnecting { attempt, delay, .. } => Some((*attempt, *delay)),
            _ => None,
        })
        .collect()
}

fn count_opens(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Open { .. }))
        .count()
}

#[test]
fn reconnects_on_the_promised_backoff_schedule() {
    use Plan::*;
    let mut sim = Sim::start(
        &[Accept, Refuse, Refuse, Refuse, Accept],
        options(reconnect()),
        false,
    );
    assert_eq!(
        sim.take_events(),
        [Event::Open {
            protocol: String::new()
        }]
    );

    sim.inject(0, Incoming::Closed(CloseEvent::abnormal()));
    sim.advance(Duration::from_secs(10));
    let events = sim.take_events();
    let schedule = reconnects(&events);
    assert_eq!(
        schedule.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    for (attempt, delay) in &schedule {
        let ceiling = ms(100) * 2u32.pow(attempt - 1);
        assert!(
            *delay <= ceiling,
            "attempt {attempt}: {delay:?} > {ceiling:?}"
        );
    }
    // Each attempt starts exactly after the announced delay: no hidden waits, no polling.
    let attempts = sim.attempts();
    assert_eq!(attempts.len(), 5);
    for (i, (_, delay)) in schedule.iter().enumerate() {
        assert_eq!(attempts[i + 1] - attempts[i], *delay, "attempt {}", i + 1);
    }
    assert_eq!(count_opens(&events), 1, "open again after the last attempt");
    assert!(matches!(events.last(), Some(Event::Open { .. })));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::Error(Error::ConnectionRefused { .. })))
            .count(),
        3
    );
    assert_eq!(sim.handle.shared().ready_state(), ReadyState::Open);
}

#[test]
fn only_a_connection_that_stayed_up_resets_the_attempt_count() {
    use Plan::*;
    let mut sim = Sim::start(&[Accept, Accept, Accept], options(reconnect()), false);
    sim.inject(0, Incoming::Closed(CloseEvent::abnormal()));
    sim.advance(ms(200)); // reconnected (attempt 1)
    sim.advance(Duration::from_secs(1)); // up 1 s < min_uptime
    sim.inject(1, Incoming::Closed(CloseEvent::abnormal()));
    sim.advance(ms(400)); // reconnected (attempt 2)
    sim.advance(Duration::from_secs(6)); // up 6 s >= min_uptime
    sim.inject(2, Incoming::Closed(CloseEvent::abnormal()));
    let attempts: Vec<u32> = reconnects(&sim.take_events())
        .iter()
        .map(|(a, _)| *a)
        .collect();
    assert_eq!(attempts, [1, 2, 1]);
}

#[test]
fn gives_up_after_max_retries_and_the_close_is_final() {
    let policy = Reconnect {
        max_retries: Some(2),
        ..reconnect()
    };
    let mut sim = Sim::start(&[Plan::Accept], options(policy), false);
    sim.inject(
        0,
        Incoming::Closed(CloseEvent::new(1001, "going away", true)),
    );
    sim.advance(Duration::from_secs(10));
    let events = sim.take_events();
    assert_eq!(reconnects(&events).len(), 2);
    assert_eq!(events.last(), Some(&Event::Close(CloseEvent::abnormal())));
    assert_eq!(sim.attempts().len(), 3, "the first connect and two retries");
    assert_eq!(sim.handle.shared().ready_state(), ReadyState::Closed);
}

#[test]
fn policy_violation_close_is_terminal() {
    let mut sim = Sim::start(&[Plan::Accept], options(reconnect()), false);
    sim.inject(0, Incoming::Closed(CloseEvent::new(1008, "policy", true)));
    sim.advance(Duration::from_secs(10));
    let events = sim.take_events();
    assert_eq!(reconnects(&events), []);
    assert_eq!(
        events.last(),
        Some(&Event::Close(CloseEvent::new(1008, "policy", true)))
    );
    assert_eq!(sim.attempts().len(), 1);
}

#[test]
fn unauthorized_handshake_is_terminal_but_unavailable_is_retried() {
    use Plan::*;
    let mut sim = Sim::start(
        &[Accept, Reject(503), Reject(401)],
        options(reconnect()),
        false,
    );
    sim.inject(0, Incoming::Closed(CloseEvent::abnormal()));
    sim.advance(Duration::from_secs(10));
    let events = sim.take_events();
    assert_eq!(reconnects(&events).len(), 2, "503 retried, 401 not");
    assert!(matches!(
        events[events.len() - 2],
        Event::Error(Error::HandshakeRejected { status: 401, .. })
    ));
    assert_eq!(events.last(), Some(&Event::Close(CloseEvent::abnormal())));
}

#[test]
fn a_close_the_user_asked_for_never_reconnects() {
    let mut sim = Sim::start(&[Plan::Accept, Plan::Accept], options(reconnect()), false);
    sim.handle.close(4000, "bye").unwrap();
    sim.advance(Duration::from_secs(10));
    let events = sim.take_events();
    assert_eq!(
        events.last(),
        Some(&Event::Close(CloseEvent::new(4000, "bye", true)))
    );
    assert_eq!(reconnects(&events), []);
    assert_eq!(
        world(|w| w.wires[0].closed_with.clone()),
        Some((4000, "bye".into()))
    );
    assert_eq!(sim.attempts().len(), 1);
}

#[test]
fn custom_predicate_decides() {
    let policy = reconnect()
        .should_reconnect(|why| !matches!(why, crate::Disconnect::Closed(c) if c.code == 4000));
    let mut sim = Sim::start(&[Plan::Accept], options(policy), false);
    sim.inject(
        0,
        Incoming::Closed(CloseEvent::new(4000, "done for good", true)),
    );
    sim.advance(Duration::from_secs(10));
    assert_eq!(reconnects(&sim.take_events()), []);
}

#[test]
fn first_connect_is_retried_only_when_asked() {
    let mut sim = Sim::start(&[Plan::Refuse, Plan::Accept], options(reconnect()), false);
    let events = sim.take_events();
    assert!(matches!(
        events[0],
        Event::Error(Error::ConnectionRefused { .. })
    ));
    assert_eq!(events[1], Event::Close(CloseEvent::abnormal()));

    let mut sim = Sim::start(&[Plan::Refuse, Plan::Accept], options(reconnect()), true);
    sim.advance(Duration::from_secs(1));
    let events = sim.take_events();
    assert_eq!(reconnects(&events).len(), 1);
    assert!(matches!(events.last(), Some(Event::Open { .. })));
}

#[test]
fn connect_timeout_applies_to_every_attempt() {
    use Plan::*;
    let options = options(reconnect()).connect_timeout(ms(300));
    let mut sim = Sim::start(&[Hang, Hang, Accept], options, true);
    sim.advance(Duration::from_secs(5));
    let events = sim.take_events();
    let timeouts = events
        .iter()
        .filter(|e| matches!(e, Event::Error(Error::ConnectTimeout { timeout, .. }) if *timeout == ms(300)))
        .count();
    assert_eq!(timeouts, 2);
    assert!(matches!(events.last(), Some(Event::Open { .. })));
    let attempts = sim.attempts();
    let (_, first_delay) = reconnects(&events)[0];
    assert_eq!(attempts[1] - attempts[0], ms(300) + first_delay);
}

#[test]
fn queued_while_down_goes_out_in_order_after_reconnect() {
    let limits = QueueLimits {
        max_messages: 3,
        max_bytes: 1000,
        ..QueueLimits::default()
    };
    let options = Options {
        queue: limits,
        ..options(reconnect())
    };
    let mut sim = Sim::start(&[Plan::Accept, Plan::Accept], options, false);
    sim.handle.send(Message::text("a")).unwrap();
    sim.run();
    assert_eq!(sim.sent(0), [Message::text("a")]);

    sim.inject(0, Incoming::Closed(CloseEvent::abnormal()));
    assert_eq!(sim.handle.shared().ready_state(), ReadyState::Connecting);
    for text in ["b", "c", "d"] {
        sim.handle.send(Message::text(text)).unwrap();
    }
    assert_eq!(
        sim.handle.send(Message::text("e")),
        Err(Error::QueueFull {
            messages: 3,
            bytes: 3
        }),
        "over the count limit: refused, not dropped"
    );
    assert_eq!(sim.handle.shared().buffered_amount(), 3);
    sim.advance(Duration::from_secs(1));
    assert_eq!(
        sim.sent(1),
        [Message::text("b"), Message::text("c"), Message::text("d")]
    );
    assert_eq!(sim.handle.shared().buffered_amount(), 0);
    sim.handle.send(Message::text("e")).unwrap();
    sim.run();
    assert_eq!(sim.sent(1).last(), Some(&Message::text("e")));
}

/// What a `Receiver` does when polled: takes the next event, telling the driver.
fn consume(sim: &mut Sim) -> Option<Event> {
    let event = sim.events.try_recv().ok();
    sim.handle.shared().consumer_polled(event.is_some());
    sim.run();
    event
}

fn incoming_left(wire: usize) -> usize {
    world(|w| w.wires[wire].incoming.len())
}

#[test]
fn reading_pauses_after_a_large_message_until_the_consumer_has_taken_it() {
    let mut sim = Sim::start(&[Plan::AcceptLarge(100)], options(reconnect()), false);
    assert!(matches!(consume(&mut sim), Some(Event::Open { .. })));
    assert_eq!(consume(&mut sim), None);

    // Small messages are read ahead of the consumer.
    sim.inject(0, Incoming::Message(Message::binary(vec![1; 10])));
    sim.inject(0, Incoming::Message(Message::binary(vec![2; 10])));
    // A large one: what comes after it stays unread while the consumer has not taken it.
    sim.inject(0, Incoming::Message(Message::binary(vec![3; 100])));
    sim.inject(0, Incoming::Message(Message::binary(vec![4; 10])));
    sim.inject(0, Incoming::Message(Message::binary(vec![5; 10])));
    assert_eq!(incoming_left(0), 2);
    for byte in [1, 2, 3] {
        let event = consume(&mut sim);
        assert!(
            matches!(&event, Some(Event::Message(m)) if m.as_bytes()[0] == byte),
            "{event:?}"
        );
        assert_eq!(incoming_left(0), 2, "still paused after taking {byte}");
    }
    // The consumer comes back for more: the driver reads on, in order.
    assert!(consume(&mut sim).is_none());
    assert_eq!(incoming_left(0), 0);
    let rest: Vec<_> = std::iter::from_fn(|| consume(&mut sim)).collect();
    assert_eq!(
        rest,
        [
            Event::Message(Message::binary(vec![4; 10])),
            Event::Message(Message::binary(vec![5; 10]))
        ]
    );
}

/// Makes connection `wire` receive all of `messages` at once (one wake-up of its reader).
fn inject_burst(sim: &mut Sim, wire: usize, messages: impl IntoIterator<Item = Message>) {
    let waker = world(|w| {
        let wire = &mut w.wires[wire];
        wire.incoming
            .extend(messages.into_iter().map(Incoming::Message));
        wire.waker.take()
    });
    if let Some(waker) = waker {
        waker.wake();
    }
    sim.run();
}

fn numbered(range: std::ops::Range<u8>) -> Vec<Message> {
    range.map(|i| Message::binary(vec![i])).collect()
}

#[test]
fn received_messages_arrive_once_and_in_order_alone_or_in_bursts() {
    let mut sim = Sim::start(&[Plan::Accept], options(reconnect()), false);
    assert!(matches!(consume(&mut sim), Some(Event::Open { .. })));
    // Several at once (the driver delivers one and reads on in the same round), then one at
    // a time, with a send in between.
    inject_burst(&mut sim, 0, numbered(0..7));
    sim.inject(0, Incoming::Message(Message::binary(vec![7])));
    sim.handle.send(Message::text("between")).unwrap();
    for message in numbered(8..12) {
        sim.inject(0, Incoming::Message(message));
    }
    inject_burst(&mut sim, 0, numbered(12..20));
    assert_eq!(incoming_left(0), 0);
    let received: Vec<_> = std::iter::from_fn(|| consume(&mut sim)).collect();
    let expected: Vec<_> = numbered(0..20).into_iter().map(Event::Message).collect();
    assert_eq!(received, expected);
    assert_eq!(sim.sent(0), [Message::text("between")]);
}

#[test]
fn a_full_outlet_stops_reading_until_the_consumer_takes_events() {
    // Room for 2 events (+1 for the driver's sender) in the channel.
    let mut sim = Sim::start_with_channel(&[Plan::Accept], options(reconnect()), false, 2);
    assert!(matches!(consume(&mut sim), Some(Event::Open { .. })));
    inject_burst(&mut sim, 0, numbered(0..10));
    // At most the channel's 3 slots and one event waiting for room were read.
    let read_ahead = 10 - incoming_left(0);
    assert!(
        (3..=4).contains(&read_ahead),
        "read {read_ahead} ahead of a full outlet"
    );
    sim.run();
    assert_eq!(10 - incoming_left(0), read_ahead, "no reading while full");
    // Taking one event makes room for one more, read in order.
    let mut received = vec![consume(&mut sim).expect("an event")];
    assert!(10 - incoming_left(0) <= read_ahead + 1);
    received.extend(std::iter::from_fn(|| consume(&mut sim)));
    assert_eq!(incoming_left(0), 0);
    let expected: Vec<_> = numbered(0..10).into_iter().map(Event::Message).collect();
    assert_eq!(received, expected);
}

/// An outlet that handles each event as it is emitted, as the JS `Socket`'s listeners do,
/// answering every message with a send from inside the delivery.
struct Replying {
    events: Arc<std::sync::Mutex<Vec<Event>>>,
    handle: Arc<std::sync::OnceLock<Handle>>,
}

impl super::Outlet for Replying {
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), super::Gone>> {
        Poll::Ready(Ok(()))
    }

    fn emit(&mut self, event: Event) {
        if let (Event::Message(message), Some(handle)) = (&event, self.handle.get()) {
            let reply = format!("re {}", message.as_bytes()[0]);
            handle.send(Message::text(reply)).unwrap();
        }
        self.events.lock().unwrap().push(event);
    }
}

#[test]
fn replies_sent_while_a_message_is_delivered_keep_the_order_of_the_messages() {
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let handle = Arc::new(std::sync::OnceLock::new());
    let outlet = {
        let (events, handle) = (events.clone(), handle.clone());
        move |_: &Arc<super::Shared>| -> Box<dyn super::Outlet> {
            Box::new(Replying { events, handle })
        }
    };
    let (_unused, no_events) = mpsc::channel(1);
    let mut sim = Sim::launch(
        &[Plan::Accept],
        options(reconnect()),
        false,
        no_events,
        outlet,
    );
    let _ = handle.set(sim.handle.clone());
    inject_burst(&mut sim, 0, numbered(0..5));
    sim.inject(0, Incoming::Message(Message::binary(vec![5])));
    // The socket pushes back for a while: replies queue behind the unflushed ones.
    sim.set_wire(0, |wire| wire.flush_blocked = true);
    inject_burst(&mut sim, 0, numbered(6..9));
    sim.set_wire(0, |wire| wire.flush_blocked = false);
    sim.inject(0, Incoming::Message(Message::binary(vec![9])));
    sim.run();
    let messages: Vec<_> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|event| match event {
            Event::Message(message) => Some(message.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(messages, numbered(0..10));
    let replies: Vec<_> = (0..10).map(|i| Message::text(format!("re {i}"))).collect();
    assert_eq!(sim.sent(0), replies);
}

#[test]
fn a_consumer_that_does_not_come_back_only_delays_reading() {
    let mut sim = Sim::start(&[Plan::AcceptLarge(100)], options(reconnect()), false);
    assert!(matches!(consume(&mut sim), Some(Event::Open { .. })));
    sim.inject(0, Incoming::Message(Message::binary(vec![3; 100])));
    sim.inject(0, Incoming::Message(Message::text("after")));
    sim.inject(0, Incoming::Closed(CloseEvent::new(1000, "bye", true)));
    assert_eq!(incoming_left(0), 2);
    sim.advance(super::driver::LARGE_MESSAGE_READ_PAUSE - ms(1));
    assert_eq!(incoming_left(0), 2);
    // Nobody polls: after the pause the driver reads on anyway (pongs, closes, heartbeats
    // must not wait for a consumer that is busy elsewhere).
    sim.advance(ms(1));
    assert_eq!(incoming_left(0), 0);
    let events = sim.take_events();
    assert_eq!(events[0], Event::Message(Message::binary(vec![3; 100])));
    assert_eq!(events[1], Event::Message(Message::text("after")));
    // The peer's close was read too (and, reconnect being on, answered by a reconnect).
    assert!(
        matches!(&events[2], Event::Reconnecting { close, .. } if close.code == 1000),
        "{events:?}"
    );
}

#[test]
fn an_idle_connection_is_written_directly_and_pushback_goes_to_the_driver() {
    let mut sim = Sim::start(&[Plan::Accept], options(reconnect()), false);
    let shared = sim.handle.shared_arc();
    // Nothing queued: the send itself writes, before the driver task runs at all.
    let first = sim.handle.send(Message::text("a")).unwrap();
    assert_eq!(sim.sent(0), [Message::text("a")]);
    assert_eq!(shared.flushed(first), Some(true));

    // The socket pushes back: the frame is written but not flushed, and counts as queued
    // until the driver's flush completes.
    sim.set_wire(0, |wire| wire.flush_blocked = true);
    let second = sim.handle.send(Message::text("bb")).unwrap();
    assert_eq!(sim.sent(0), [Message::text("a"), Message::text("bb")]);
    assert_eq!(shared.buffered_amount(), 2);
    assert_eq!(shared.flushed(second), None);
    // Behind it in the same write buffer: order kept, still direct.
    let third = sim.handle.send(Message::text("ccc")).unwrap();
    assert_eq!(
        sim.sent(0),
        [
            Message::text("a"),
            Message::text("bb"),
            Message::text("ccc")
        ]
    );
    sim.run();
    assert_eq!(
        shared.buffered_amount(),
        5,
        "the driver waits for the socket"
    );
    assert_eq!(shared.flushed(third), None);

    sim.set_wire(0, |wire| wire.flush_blocked = false);
    assert_eq!(shared.buffered_amount(), 0);
    assert_eq!(shared.flushed(third), Some(true));
    sim.handle.send(Message::text("d")).unwrap();
    assert_eq!(sim.sent(0).last(), Some(&Message::text("d")));

    // Fed without a flush (the `Sink`): written, and flushed by the driver it wakes.
    let fed = sim.handle.feed(Message::text("e")).unwrap();
    assert_eq!(sim.sent(0).last(), Some(&Message::text("e")));
    assert_eq!(shared.flushed(fed), None);
    sim.run();
    assert_eq!(shared.flushed(fed), Some(true));
    assert_eq!(shared.buffered_amount(), 0);
}

#[test]
fn nothing_is_written_directly_past_a_queued_message() {
    let mut sim = Sim::start(&[Plan::Accept], options(reconnect()), false);
    sim.set_wire(0, |wire| wire.write_broken = true);
    sim.handle.send(Message::text("1")).unwrap();
    world(|w| w.wires[0].write_broken = false);
    // "1" waits in the queue (its direct write was refused); "2" must not overtake it.
    sim.handle.send(Message::text("2")).unwrap();
    assert!(
        sim.sent(0).is_empty(),
        "nothing written past the queued message"
    );
    sim.run();
    assert_eq!(sim.sent(0), [Message::text("1"), Message::text("2")]);
    sim.handle.send(Message::text("3")).unwrap();
    assert_eq!(
        sim.sent(0).last(),
        Some(&Message::text("3")),
        "direct again"
    );
}

#[test]
fn a_direct_write_the_connection_refuses_is_queued_not_lost() {
    let mut sim = Sim::start(&[Plan::Accept], options(reconnect()), false);
    let shared = sim.handle.shared_arc();
    sim.set_wire(0, |wire| wire.write_broken = true);
    let seq = sim.handle.send(Message::text("kept")).unwrap();
    assert!(sim.sent(0).is_empty());
    assert_eq!(shared.buffered_amount(), 4, "queued for the driver");
    assert_eq!(shared.flushed(seq), None);
    // The connection recovers before the driver gets to it: the queued message goes out.
    world(|w| w.wires[0].write_broken = false);
    sim.run();
    assert_eq!(sim.sent(0), [Message::text("kept")]);
    assert_eq!(shared.flushed(seq), Some(true));
}

#[test]
fn byte_limit_refuses_what_does_not_fit() {
    let options = Options {
        queue: QueueLimits {
            max_messages: 100,
            max_bytes: 10,
            ..QueueLimits::default()
        },
        ..options(reconnect())
    };
    // Hanging connect: everything stays queued.
    let sim = Sim::start(&[Plan::Hang], options, false);
    sim.handle.send(Message::binary(vec![0; 8])).unwrap();
    assert_eq!(
        sim.handle.send(Message::binary(vec![0; 3])),
        Err(Error::QueueFull {
            messages: 1,
            bytes: 8
        })
    );
    sim.handle.send(Message::binary(vec![0; 2])).unwrap();
}

#[test]
fn unsent_messages_are_handed_back_in_the_final_close() {
    let mut sim = Sim::start(&[Plan::Hang], options(reconnect()), false);
    for text in ["one", "two", "three"] {
        sim.handle.send(Message::text(text)).unwrap();
    }
    sim.handle.close(1000, "").unwrap();
    sim.run();
    let events = sim.take_events();
    let Some(Event::Close(close)) = events.last() else {
        panic!("no close: {events:?}");
    };
    assert_eq!(
        close.unsent,
        [
            Message::text("one"),
            Message::text("two"),
            Message::text("three")
        ]
    );
    assert_eq!(sim.handle.shared().buffered_amount(), 0);
    assert_eq!(sim.handle.send(Message::text("late")), Err(Error::Closed));
}

fn heartbeat_options() -> Options {
    options(reconnect()).heartbeat(Some(Heartbeat {
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(5),
        app_ping: None,
    }))
}

#[test]
fn silent_peer_is_declared_dead_within_interval_plus_timeout() {
    let mut sim = Sim::start(&[Plan::Accept, Plan::Accept], heartbeat_options(), false);
    let opened = sim.now();
    sim.advance(Duration::from_secs(10));
    assert_eq!(
        world(|w| w.wires[0].pings),
        1,
        "a ping after 10 s of silence"
    );
    sim.advance(ms(4999));
    assert!(!sim
        .take_events()
        .iter()
        .any(|e| matches!(e, Event::Error(_))));
    sim.advance(ms(1));
    let events = sim.take_events();
    assert!(
        matches!(events[0], Event::Error(Error::HeartbeatTimeout { timeout }) if timeout == Duration::from_secs(5)),
        "{events:?}"
    );
    assert!(matches!(events[1], Event::Reconnecting { attempt: 1, .. }));
    assert_eq!(sim.now() - opened, Duration::from_secs(15));
}

#[test]
fn traffic_keeps_the_connection_alive_without_pings() {
    let mut sim = Sim::start(&[Plan::Accept], heartbeat_options(), false);
    for i in 0..20 {
        sim.advance(Duration::from_secs(3));
        sim.inject(0, Incoming::Message(Message::text(i.to_string())));
    }
    assert_eq!(world(|w| w.wires[0].pings), 0);
    // A pong (or any sign of life) after a ping also keeps it alive.
    sim.advance(Duration::from_secs(10));
    assert_eq!(world(|w| w.wires[0].pings), 1);
    sim.inject(0, Incoming::Alive);
    sim.advance(Duration::from_secs(5));
    assert!(!sim
        .take_events()
        .iter()
        .any(|e| matches!(e, Event::Error(_) | Event::Reconnecting { .. })));
}

#[test]
fn application_ping_is_sent_and_its_pong_swallowed() {
    let app_ping = AppPing {
        ping: Message::text("ping"),
        pong: Message::text("pong"),
    };
    let options = options(reconnect()).heartbeat(Some(Heartbeat {
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(5),
        app_ping: Some(app_ping),
    }));
    let mut sim = Sim::start(&[Plan::Accept], options, false);
    sim.take_events();
    sim.advance(Duration::from_secs(10));
    assert_eq!(sim.sent(0), [Message::text("ping")]);
    sim.inject(0, Incoming::Message(Message::text("pong")));
    sim.advance(Duration::from_secs(5));
    assert_eq!(
        sim.take_events(),
        [],
        "the pong is not delivered and the peer counts as alive"
    );
}

#[test]
fn endpoint_provider_is_asked_before_every_attempt() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let options = options(reconnect()).endpoint(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        Endpoint {
            url: format!("ws://fake.test/?token={n}"),
            headers: Vec::new(),
        }
    });
    let mut sim = Sim::start(&[Plan::Accept, Plan::Refuse, Plan::Accept], options, false);
    sim.inject(0, Incoming::Closed(CloseEvent::abnormal()));
    sim.advance(Duration::from_secs(5));
    let urls: Vec<String> = world(|w| w.attempts.iter().map(|(_, u)| u.clone()).collect());
    assert_eq!(
        urls,
        [
            "ws://fake.test/?token=0",
            "ws://fake.test/?token=1",
            "ws://fake.test/?token=2"
        ]
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[test]
fn close_during_the_backoff_wait_ends_at_once() {
    let mut sim = Sim::start(&[Plan::Accept], options(reconnect()), false);
    sim.inject(0, Incoming::Closed(CloseEvent::abnormal()));
    sim.handle.send(Message::text("queued")).unwrap();
    sim.handle.close(1000, "").unwrap();
    sim.run();
    let events = sim.take_events();
    let Some(Event::Close(close)) = events.last() else {
        panic!("{events:?}")
    };
    assert_eq!(close.unsent, [Message::text("queued")]);
    assert_eq!(sim.attempts().len(), 1, "no attempt after close()");
}

mod sessions {
    use super::*;
    use crate::session::ack::{Frame, Status};
    use crate::SessionOptions;

    fn session_options() -> Options {
        options(reconnect()).session(SessionOptions::default())
    }

    fn frames(sim: &Sim, wire: usize) -> Vec<Frame> {
        sim.sent(wire)
            .into_iter()
            .map(|m| Frame::decode(m).expect("the client sends valid frames"))
            .collect()
    }

    fn message(frame: Frame) -> Incoming {
        Incoming::Message(frame.encode())
    }

    fn data(seq: u64, ack: u64, text: &str) -> Frame {
        Frame::Data {
            seq,
            ack,
            message: Message::text(text),
        }
    }

    fn welcome(token: &str, status: Status, acked: u64, next: u64) -> Incoming {
        message(Frame::Welcome {
            token: token.into(),
            status,
            acked,
            next,
        })
    }

    #[test]
    fn resends_what_was_not_acknowledged_and_drops_duplicates() {
        use Plan::*;
        let mut sim = Sim::start(&[AcceptSession, AcceptSession], session_options(), false);
        // Hello first, nothing else before the Welcome.
        assert_eq!(
            frames(&sim, 0),
            [Frame::Hello {
                token: String::new(),
                received: 0
            }]
        );
        assert_eq!(sim.take_events(), []);
        sim.inject(0, welcome("t1", Status::New, 0, 1));
        assert_eq!(
            sim.take_events(),
            [
                Event::Open {
                    protocol: "unisock.v1".into()
                },
                Event::Session {
                    acknowledged: true,
                    resumed: false
                }
            ]
        );
        for text in ["a", "b", "c"] {
            sim.handle.send(Message::text(text)).unwrap();
        }
        sim.run();
        assert_eq!(
            frames(&sim, 0)[1..],
            [data(1, 0, "a"), data(2, 0, "b"), data(3, 0, "c")]
        );
        // The server acks 2 on its own message; our ack goes out alone after the delay.
        sim.inject(0, message(data(1, 2, "x")));
        assert_eq!(sim.take_events(), [Event::Message(Message::text("x"))]);
        sim.advance(ms(19));
        assert_eq!(frames(&sim, 0).len(), 4, "no ack before the delay");
        sim.advance(ms(1));
        assert_eq!(frames(&sim, 0)[4], Frame::Ack { ack: 1 });

        // Dropped: the resume asks from 1 on, the server got up to 2: "c" is resent first.
        sim.inject(0, Incoming::Closed(CloseEvent::abnormal()));
        sim.handle.send(Message::text("d")).unwrap();
        sim.advance(Duration::from_secs(2));
        assert_eq!(
            frames(&sim, 1),
            [Frame::Hello {
                token: "t1".into(),
                received: 1
            }]
        );
        sim.inject(1, welcome("t1", Status::Resumed, 2, 2));
        assert_eq!(frames(&sim, 1)[1..], [data(3, 1, "c"), data(4, 1, "d")]);
        // The server resends its message 1 (a duplicate), then 2.
        sim.inject(1, message(data(1, 2, "x")));
        sim.inject(1, message(data(2, 4, "y")));
        let events = sim.take_events();
        assert!(
            matches!(&events[..], [.., Event::Session { acknowledged: true, resumed: true }, Event::Message(m)] if *m == Message::text("y")),
            "{events:?}"
        );
        // Everything acknowledged: close() closes at once.
        sim.handle.close(1000, "").unwrap();
        sim.run();
        assert_eq!(
            world(|w| w.wires[1].closed_with.clone()),
            Some((1000, String::new()))
        );
        let events = sim.take_events();
        assert!(
            matches!(events.last(), Some(Event::Close(c)) if c.code == 1000),
            "{events:?}"
        );
        assert!(!events.iter().any(|e| matches!(e, Event::Gap(_))));
    }

    #[test]
    fn close_waits_for_the_last_acks_and_reports_what_never_got_one() {
        let mut sim = Sim::start(&[Plan::AcceptSession], session_options(), false);
        sim.inject(0, welcome("t1", Status::New, 0, 1));
        sim.handle.send(Message::text("a")).unwrap();
        sim.handle.send(Message::text("b")).unwrap();
        sim.handle.close(1000, "bye").unwrap();
        sim.run();
        assert_eq!(
            world(|w| w.wires[0].closed_with.clone()),
            None,
            "waits for acks"
        );
        sim.inject(0, message(Frame::Ack { ack: 1 }));
        assert_eq!(world(|w| w.wires[0].closed_with.clone()), None);
        // "b" is never acknowledged: the close goes out after the close timeout, and "b" is
        // reported as possibly lost.
        sim.advance(Duration::from_secs(6));
        assert_eq!(
            world(|w| w.wires[0].closed_with.clone()),
            Some((1000, "bye".into()))
        );
        let events = sim.take_events();
        let gap = events.iter().find_map(|e| match e {
            Event::Gap(gap) => Some(gap.clone()),
            _ => None,
        });
        assert_eq!(
            gap,
            Some(crate::Gap {
                direction: crate::Direction::Outgoing,
                first: 2,
                last: Some(2),
                reason: crate::GapReason::Ended,
                messages: vec![Message::text("b")],
            })
        );
        assert!(matches!(events.last(), Some(Event::Close(_))));
    }

    #[test]
    fn a_full_replay_buffer_holds_messages_in_the_queue() {
        let options = options(reconnect()).session(SessionOptions {
            max_unacked_messages: 2,
            ..SessionOptions::default()
        });
        let mut sim = Sim::start(&[Plan::AcceptSession], options, false);
        sim.inject(0, welcome("t1", Status::New, 0, 1));
        for i in 0..5 {
            sim.handle.send(Message::text(i.to_string())).unwrap();
        }
        sim.run();
        assert_eq!(frames(&sim, 0).len(), 1 + 2, "hello and two messages");
        assert_eq!(sim.handle.shared().queued_messages(), 3);
        sim.inject(0, message(Frame::Ack { ack: 2 }));
        assert_eq!(frames(&sim, 0).len(), 1 + 4);
        sim.inject(0, message(Frame::Ack { ack: 4 }));
        assert_eq!(frames(&sim, 0)[5], data(5, 0, "4"));
    }

    /// An open session on wire 0 (token "t1"), its opening events taken.
    fn open_session(plans: &[Plan]) -> Sim {
        let mut sim = Sim::start(plans, session_options(), false);
        sim.inject(0, welcome("t1", Status::New, 0, 1));
        sim.take_events();
        sim
    }

    #[test]
    fn a_burst_read_in_one_poll_is_acknowledged_once_after_the_delay() {
        let mut sim = open_session(&[Plan::AcceptSession]);
        // Read in one poll of the driver: the ack timer starts in a later round than the
        // first (where it is looked at otherwise) and must still fire.
        world(|w| {
            let incoming = &mut w.wires[0].incoming;
            incoming.push_back(message(data(1, 0, "x")));
            incoming.push_back(message(data(2, 0, "y")));
        });
        sim.inject(0, message(data(3, 0, "z")));
        assert_eq!(sim.take_events().len(), 3);
        sim.advance(ms(19));
        assert_eq!(frames(&sim, 0).len(), 1, "no ack before the delay");
        sim.advance(ms(1));
        assert_eq!(frames(&sim, 0)[1..], [Frame::Ack { ack: 3 }]);
        // Acknowledged by data before its timer fires: no standalone ack.
        sim.inject(0, message(data(4, 0, "w")));
        sim.handle.send(Message::text("a")).unwrap();
        sim.advance(ms(100));
        assert_eq!(frames(&sim, 0)[2..], [data(1, 4, "a")]);
        // And the next message received gets its own full delay.
        sim.inject(0, message(data(5, 0, "v")));
        sim.advance(ms(19));
        assert_eq!(frames(&sim, 0).len(), 3, "no ack before the delay");
        sim.advance(ms(1));
        assert_eq!(frames(&sim, 0)[3..], [Frame::Ack { ack: 5 }]);
    }

    #[test]
    fn direct_session_sends_are_numbered_kept_and_carry_the_current_ack() {
        let mut sim = open_session(&[Plan::AcceptSession, Plan::AcceptSession]);
        let shared = sim.handle.shared_arc();
        // Written by `send` itself, before the driver task runs at all.
        let a = sim.handle.send(Message::text("a")).unwrap();
        assert_eq!(frames(&sim, 0)[1..], [data(1, 0, "a")]);
        assert_eq!(shared.flushed(a), Some(true));
        // What arrived is acknowledged by the next direct write: no standalone ack is due.
        sim.inject(0, message(data(1, 0, "x")));
        sim.handle.send(Message::text("b")).unwrap();
        assert_eq!(frames(&sim, 0)[1..], [data(1, 0, "a"), data(2, 1, "b")]);
        sim.advance(ms(100));
        assert_eq!(frames(&sim, 0).len(), 3, "the ack rode on the data");

        // Unflushed direct writes count as buffered until the driver's flush.
        sim.set_wire(0, |wire| wire.flush_blocked = true);
        let c = sim.handle.send(Message::text("cc")).unwrap();
        assert_eq!(frames(&sim, 0)[3], data(3, 1, "cc"));
        assert_eq!((shared.buffered_amount(), shared.flushed(c)), (2, None));
        sim.set_wire(0, |wire| wire.flush_blocked = false);
        assert_eq!(
            (shared.buffered_amount(), shared.flushed(c)),
            (0, Some(true))
        );

        // Kept for replay: a resume where the server got nothing resends all three.
        sim.inject(0, Incoming::Closed(CloseEvent::abnormal()));
        sim.advance(Duration::from_secs(2));
        sim.inject(1, welcome("t1", Status::Resumed, 0, 2));
        assert_eq!(
            frames(&sim, 1)[1..],
            [data(1, 1, "a"), data(2, 1, "b"), data(3, 1, "cc")]
        );
    }

    #[test]
    fn queued_and_direct_session_sends_keep_their_order() {
        let options = options(reconnect()).session(SessionOptions {
            max_unacked_messages: 3,
            ..SessionOptions::default()
        });
        let mut sim = Sim::start(&[Plan::AcceptSession], options, false);
        sim.inject(0, welcome("t1", Status::New, 0, 1));
        // The socket refuses the first direct write: it is queued, unnumbered.
        sim.set_wire(0, |wire| wire.write_broken = true);
        sim.handle.send(Message::text("1")).unwrap();
        world(|w| w.wires[0].write_broken = false);
        // Nothing is written directly past the queued message.
        sim.handle.send(Message::text("2")).unwrap();
        assert_eq!(frames(&sim, 0).len(), 1, "only the hello");
        sim.run();
        // Direct again once the queue is empty; numbers without a hole.
        sim.handle.send(Message::text("3")).unwrap();
        assert_eq!(
            frames(&sim, 0)[1..],
            [data(1, 0, "1"), data(2, 0, "2"), data(3, 0, "3")]
        );
        // The replay buffer is full: "4" waits in the queue, and "5" behind it.
        sim.handle.send(Message::text("4")).unwrap();
        sim.handle.send(Message::text("5")).unwrap();
        assert_eq!(frames(&sim, 0).len(), 4);
        sim.inject(0, message(Frame::Ack { ack: 1 }));
        assert_eq!(frames(&sim, 0)[4..], [data(4, 0, "4")]);
        sim.inject(0, message(Frame::Ack { ack: 3 }));
        sim.handle.send(Message::text("6")).unwrap();
        assert_eq!(
            frames(&sim, 0)[4..],
            [data(4, 0, "4"), data(5, 0, "5"), data(6, 0, "6")]
        );
        assert_eq!(sim.handle.shared().queued_messages(), 0);
    }

    #[test]
    fn a_reconnect_after_direct_sends_resends_exactly_the_unacknowledged_ones() {
        let mut sim = open_session(&[Plan::AcceptSession, Plan::AcceptSession]);
        for text in ["a", "b", "c", "d"] {
            sim.handle.send(Message::text(text)).unwrap();
        }
        assert_eq!(frames(&sim, 0).len(), 5, "all four written directly");
        sim.inject(0, message(Frame::Ack { ack: 2 }));
        // Dropped; "e" is sent while reconnecting (queued).
        sim.inject(0, Incoming::Closed(CloseEvent::abnormal()));
        sim.handle.send(Message::text("e")).unwrap();
        sim.advance(Duration::from_secs(2));
        // The server had got "c" too (its ack was lost): only "d" is resent, then "e".
        sim.inject(1, welcome("t1", Status::Resumed, 3, 1));
        assert_eq!(frames(&sim, 1)[1..], [data(4, 0, "d"), data(5, 0, "e")]);
        // Direct again, numbered after them.
        sim.handle.send(Message::text("f")).unwrap();
        assert_eq!(frames(&sim, 1)[3..], [data(6, 0, "f")]);
        // All acknowledged: the close goes out at once, nothing is reported lost.
        sim.inject(1, message(Frame::Ack { ack: 6 }));
        sim.handle.close(1000, "").unwrap();
        sim.run();
        let events = sim.take_events();
        assert!(
            matches!(events.last(), Some(Event::Close(c)) if c.code == 1000),
            "{events:?}"
        );
        assert!(
            !events.iter().any(|e| matches!(e, Event::Gap(_))),
            "{events:?}"
        );
        assert_eq!(sim.handle.shared().buffered_amount(), 0);
    }

    #[test]
    fn nothing_is_written_directly_before_the_resends() {
        let mut sim = open_session(&[Plan::AcceptSession, Plan::AcceptSession]);
        sim.handle.send(Message::text("a")).unwrap();
        sim.handle.send(Message::text("b")).unwrap();
        sim.inject(0, Incoming::Closed(CloseEvent::abnormal()));
        sim.advance(Duration::from_secs(2));
        // Resumed, but the socket takes nothing yet: both resends wait in the driver.
        world(|w| w.wires[1].not_ready = true);
        sim.inject(1, welcome("t1", Status::Resumed, 0, 1));
        assert_eq!(frames(&sim, 1).len(), 1, "only the hello");
        // The socket is ready again before the driver has looked: "c" must not overtake them.
        world(|w| w.wires[1].not_ready = false);
        sim.handle.send(Message::text("c")).unwrap();
        assert_eq!(frames(&sim, 1).len(), 1);
        assert_eq!(sim.handle.shared().queued_messages(), 1);
        sim.set_wire(1, |_| {});
        sim.handle.send(Message::text("d")).unwrap();
        assert_eq!(
            frames(&sim, 1)[1..],
            [
                data(1, 0, "a"),
                data(2, 0, "b"),
                data(3, 0, "c"),
                data(4, 0, "d")
            ]
        );
    }

    #[test]
    fn a_forged_frame_closes_with_1002() {
        let mut sim = Sim::start(&[Plan::AcceptSession], session_options(), false);
        sim.inject(0, welcome("t1", Status::New, 0, 1));
        // Skips sequence number 1.
        sim.inject(0, message(data(2, 0, "x")));
        let events = sim.take_events();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Error(Error::Protocol { .. }))),
            "{events:?}"
        );
        assert_eq!(
            world(|w| w.wires[0].closed_with.clone()),
            Some((1002, String::new()))
        );
    }
}
