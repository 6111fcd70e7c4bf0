//! `for await (const data of socket)`: the socket's `[Symbol.asyncIterator]()` returns a
//! [`MessageIterator`] that yields the data of every message received from then on, and is
//! done once the socket is closed for good (after the messages still buffered).
//!
//! Each iterator sees every message that arrives after it was created; several may run at
//! once. Messages wait in the iterator until `next()` takes them, at most
//! [`Options::receive_buffer`](crate::Options::receive_buffer) (`receiveBuffer`) of them: an
//! iterator that falls further behind stops taking new ones, and after those it holds its
//! `next()` rejects once with [`Error::ReaderLagged`]: memory stays bounded and nothing is
//! lost silently (read with `onmessage` to stay in step with the network instead). An
//! iterator that is left early (`break`, `return`, an exception in the loop) stops buffering
//! at once, and one that is dropped and garbage collected is forgotten by its socket.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

use crate::Error;

/// What one iterator has received and who waits for it.
#[derive(Default)]
pub(crate) struct State {
    buffer: VecDeque<JsValue>,
    /// `resolve` functions of `next()` promises waiting for a message, oldest first.
    waiting: VecDeque<Function>,
    done: bool,
    /// Most messages buffered.
    limit: usize,
    /// Fell behind by more than `limit`: the error still to report after the buffer.
    lagged: bool,
}

/// The iterators of one socket.
#[derive(Default)]
pub(crate) struct Iterators {
    live: RefCell<Vec<Weak<RefCell<State>>>>,
}

impl Iterators {
    /// A new iterator holding at most `limit` unread messages; already done if the socket
    /// is closed.
    pub(crate) fn create(&self, closed: bool, limit: usize) -> MessageIterator {
        let state = Rc::new(RefCell::new(State {
            done: closed,
            limit,
            ..State::default()
        }));
        if !closed {
            let mut live = self.live.borrow_mut();
            live.retain(|state| state.strong_count() > 0);
            live.push(Rc::downgrade(&state));
        }
        MessageIterator { state }
    }

    /// Whether any iterator is listening (to skip the work when none is).
    pub(crate) fn any(&self) -> bool {
        !self.live.borrow().is_empty()
    }

    /// Hands a message's data to every iterator.
    pub(crate) fn feed(&self, data: &JsValue) {
        for state in self.upgrade() {
            let resolve = {
                let mut state = state.borrow_mut();
                if state.done {
                    continue;
                }
                let resolve = state.waiting.pop_front();
                if resolve.is_none() {
                    if state.buffer.len() >= state.limit {
                        // Too far behind: keep what it has, take nothing more.
                        state.done = true;
                        state.lagged = true;
                        continue;
                    }
                    state.buffer.push_back(data.clone());
                }
                resolve
            };
            if let Some(resolve) = resolve {
                let _ = resolve.call1(&JsValue::UNDEFINED, &result(data, false));
            }
        }
    }

    /// The socket is closed for good: every iterator ends after what it has buffered.
    pub(crate) fn finish(&self) {
        for state in self.upgrade() {
            finish(&state, false);
        }
        self.live.borrow_mut().clear();
    }

    /// The iterators still alive and not done; forgets the others.
    fn upgrade(&self) -> Vec<Rc<RefCell<State>>> {
        let mut live = self.live.borrow_mut();
        let mut alive = Vec::with_capacity(live.len());
        live.retain(|weak| match weak.upgrade() {
            Some(state) if !state.borrow().done => {
                alive.push(state);
                true
            }
            _ => false,
        });
        alive
    }
}

/// Marks an iterator done and settles its waiting `next()` calls; `discard` also drops what
/// it buffered (the consumer left early).
fn finish(state: &RefCell<State>, discard: bool) {
    let waiting = {
        let mut state = state.borrow_mut();
        state.done = true;
        if discard {
            state.buffer.clear();
            state.lagged = false;
        }
        std::mem::take(&mut state.waiting)
    };
    let done = result(&JsValue::UNDEFINED, true);
    for resolve in waiting {
        let _ = resolve.call1(&JsValue::UNDEFINED, &done);
    }
}

/// `{ value, done }`.
fn result(value: &JsValue, done: bool) -> JsValue {
    let result = Object::new();
    let _ = Reflect::set(&result, &"value".into(), value);
    let _ = Reflect::set(&result, &"done".into(), &done.into());
    result.into()
}

/// The async iterator of a socket's messages (from `socket[Symbol.asyncIterator]()`, which
/// `for await` calls): yields each message's data, a `string` or an `ArrayBuffer`, and is
/// done once the socket is closed for good.
#[wasm_bindgen(skip_typescript)]
pub struct MessageIterator {
    state: Rc<RefCell<State>>,
}

#[wasm_bindgen]
impl MessageIterator {
    /// The next message's data, or `done` once the socket is closed and nothing is left.
    pub fn next(&self) -> Promise {
        let mut state = self.state.borrow_mut();
        if let Some(data) = state.buffer.pop_front() {
            return Promise::resolve(&result(&data, false));
        }
        if std::mem::take(&mut state.lagged) {
            let error = Error::ReaderLagged { max: state.limit };
            return Promise::reject(&super::errors::unisock_error(&error));
        }
        if state.done {
            return Promise::resolve(&result(&JsValue::UNDEFINED, true));
        }
        Promise::new(&mut |resolve, _reject| state.waiting.push_back(resolve))
    }

    /// Stops iterating (what `break` in a `for await` loop calls): drops what was buffered and
    /// ends pending `next()` calls. The socket stays open.
    #[wasm_bindgen(js_name = "return")]
    pub fn stop(&self) -> Promise {
        finish(&self.state, true);
        Promise::resolve(&result(&JsValue::UNDEFINED, true))
    }

    /// The iterator itself (an async iterator is also an async iterable).
    #[wasm_bindgen(js_name = "[Symbol.asyncIterator]")]
    pub fn iter(&self) -> MessageIterator {
        MessageIterator {
            state: self.state.clone(),
        }
    }
}
