//! Cancelling a call through the caller's `AbortSignal`: the wrapped future is dropped when the signal
//! fires, and dropping it aborts whatever fetch it had in flight (see `http::AbortGuard`).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::error::Failure;
use crate::js::AbortSignal;

#[derive(Default)]
struct State {
    aborted: bool,
    waker: Option<Waker>,
}

struct Listener {
    signal: AbortSignal,
    closure: Closure<dyn FnMut()>,
}

type BoxedCall<T> = Pin<Box<dyn Future<Output = Result<T, Failure>>>>;

/// A future that resolves to `Err(Failure::Aborted)` as soon as `signal` fires.
///
/// The inner future is boxed as a trait object so `poll` is compiled once per output type, not once per
/// API (bench/size.mjs: five copies before).
pub struct Abortable<T> {
    inner: Option<BoxedCall<T>>,
    state: Rc<RefCell<State>>,
    listener: Option<Listener>,
}

impl<T> Abortable<T> {
    /// Wraps `inner`; with no signal (or a value that is not one) it is just `inner`.
    pub fn new(
        inner: impl Future<Output = Result<T, Failure>> + 'static,
        signal: Option<AbortSignal>,
    ) -> Self {
        let (state, listener) = listen(signal);
        Abortable {
            inner: Some(Box::pin(inner)),
            state,
            listener,
        }
    }
}

fn listen(signal: Option<AbortSignal>) -> (Rc<RefCell<State>>, Option<Listener>) {
    let state = Rc::new(RefCell::new(State::default()));
    let listener = signal.map(|signal| {
        state.borrow_mut().aborted = signal.aborted();
        let closure = {
            let state = state.clone();
            Closure::<dyn FnMut()>::new(move || {
                let mut state = state.borrow_mut();
                state.aborted = true;
                if let Some(waker) = state.waker.take() {
                    waker.wake();
                }
            })
        };
        signal.add_event_listener("abort", closure.as_ref().unchecked_ref());
        Listener { signal, closure }
    });
    (state, listener)
}

impl<T> Future for Abortable<T> {
    type Output = Result<T, Failure>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.state.borrow().aborted {
            // Drop the inner future now: its abort guards cancel the fetch.
            self.inner = None;
            return Poll::Ready(Err(Failure::Aborted));
        }
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(Err(Failure::Aborted));
        };
        match inner.as_mut().poll(cx) {
            Poll::Ready(output) => Poll::Ready(output),
            Poll::Pending => {
                self.state.borrow_mut().waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl<T> Drop for Abortable<T> {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.take() {
            listener
                .signal
                .remove_event_listener("abort", listener.closure.as_ref().unchecked_ref());
        }
    }
}
