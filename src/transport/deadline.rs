//! Request timeouts from ONE shared timer. Arming a `setTimeout` (and a closure for it) per request
//! measurably slowed every call; here a request only records its deadline, and the single timer is
//! re-armed only when a new deadline is earlier than the armed one (never, with the usual uniform
//! timeout). The timer stays armed when nothing is in flight (re-arming it on every call of a
//! sequential loop was measurable) but is unref'd in Node, so it never keeps a process alive.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::js::{self, AbortController};

// `setTimeout` whose timer does not keep Node's event loop alive (`unref`; browsers have no such
// notion and return a number).
#[wasm_bindgen(inline_js = "export function setUnrefTimeout(callback, ms) {
  const timer = setTimeout(callback, ms);
  if (typeof timer === 'object' && timer !== null && typeof timer.unref === 'function') timer.unref();
  return timer;
}")]
extern "C" {
    #[wasm_bindgen(js_name = setUnrefTimeout)]
    fn set_unref_timeout(callback: &js_sys::Function, ms: u32) -> JsValue;
}

/// One request's stake in the timer: its controller and whether the deadline passed.
pub struct Deadline {
    controller: AbortController,
    timed_out: Cell<bool>,
}

impl Deadline {
    /// Whether the request was aborted because its deadline passed.
    pub fn timed_out(&self) -> bool {
        self.timed_out.get()
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        SCHEDULER.with(|scheduler| scheduler.borrow_mut().released());
    }
}

#[derive(Default)]
struct Scheduler {
    entries: Vec<(f64, Weak<Deadline>)>,
    in_flight: usize,
    armed: Option<(f64, JsValue)>,
    on_fire: Option<Closure<dyn FnMut()>>,
}

thread_local! {
    static SCHEDULER: RefCell<Scheduler> = RefCell::new(Scheduler::default());
}

/// Registers a request that `controller` aborts once `timeout_ms` have passed.
pub fn register(controller: AbortController, timeout_ms: u32) -> Rc<Deadline> {
    let deadline = Rc::new(Deadline {
        controller,
        timed_out: Cell::new(false),
    });
    let at = js_sys::Date::now() + f64::from(timeout_ms);
    SCHEDULER.with(|scheduler| {
        let mut scheduler = scheduler.borrow_mut();
        scheduler.in_flight += 1;
        scheduler.entries.push((at, Rc::downgrade(&deadline)));
        if scheduler
            .armed
            .as_ref()
            .is_none_or(|(armed_at, _)| at < *armed_at)
        {
            scheduler.arm(at);
        }
    });
    deadline
}

impl Scheduler {
    fn arm(&mut self, at: f64) {
        if let Some((_, timer)) = self.armed.take() {
            js::clear_timeout(&timer);
        }
        let on_fire = self.on_fire.get_or_insert_with(|| Closure::new(fire));
        let delay = (at - js_sys::Date::now()).max(0.0).ceil() as u32;
        let timer = set_unref_timeout(on_fire.as_ref().unchecked_ref(), delay);
        self.armed = Some((at, timer));
    }

    fn released(&mut self) {
        self.in_flight -= 1;
        if self.in_flight == 0 {
            // The armed timer fires once for nothing (or serves the next requests' deadlines).
            self.entries.clear();
        } else if self.entries.len() >= 64 && self.entries.len().is_power_of_two() {
            // Finished requests leave dead entries until the timer fires; prune them now and then.
            self.entries.retain(|(_, entry)| entry.strong_count() > 0);
        }
    }
}

/// The timer callback: aborts every request past its deadline, then re-arms for the earliest left.
fn fire() {
    let now = js_sys::Date::now();
    let expired: Vec<Rc<Deadline>> = SCHEDULER.with(|scheduler| {
        let mut scheduler = scheduler.borrow_mut();
        scheduler.armed = None;
        let mut expired = Vec::new();
        scheduler
            .entries
            .retain(|(at, entry)| match entry.upgrade() {
                Some(deadline) if *at <= now => {
                    expired.push(deadline);
                    false
                }
                Some(_) => true,
                None => false,
            });
        let next = scheduler.entries.iter().map(|(at, _)| *at).reduce(f64::min);
        if let Some(next) = next {
            scheduler.arm(next);
        }
        expired
    });
    // Abort outside the borrow: abort listeners may start or drop other requests.
    for deadline in expired {
        deadline.timed_out.set(true);
        deadline.controller.abort();
    }
}
