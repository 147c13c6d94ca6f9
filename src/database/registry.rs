//! Finding the Rust value behind an SDK object (command, Geo, serverDate, db.RegExp) that user code passes
//! back into `where` / `update` / `add`.
//!
//! Each exported object holds a slot in this table and exposes the slot number through a getter; the
//! walker reads the getter and looks the slot up. The object frees its slot when dropped (by JS's GC via
//! wasm-bindgen weak refs), so the table holds exactly the live objects. A forged slot number can only
//! name another live value: there is no unsafe pointer round-trip.

use std::cell::RefCell;
use std::rc::Rc;

use super::command::Internal;

thread_local! {
    static SLOTS: RefCell<Slots> = RefCell::new(Slots::default());
}

#[derive(Default)]
struct Slots {
    values: Vec<Option<Rc<Internal>>>,
    free: Vec<u32>,
}

/// A registered value; unregisters on drop.
pub struct Registered {
    slot: u32,
    value: Rc<Internal>,
}

impl Registered {
    /// Registers `value`.
    pub fn new(value: Internal) -> Self {
        let value = Rc::new(value);
        let slot = SLOTS.with(|slots| {
            let mut slots = slots.borrow_mut();
            match slots.free.pop() {
                Some(slot) => {
                    slots.values[slot as usize] = Some(value.clone());
                    slot
                }
                None => {
                    slots.values.push(Some(value.clone()));
                    (slots.values.len() - 1) as u32
                }
            }
        });
        Registered { slot, value }
    }

    /// The slot number JS sees (offset by one so that 0 never names a value).
    pub fn token(&self) -> u32 {
        self.slot + 1
    }

    /// The value.
    pub fn value(&self) -> &Rc<Internal> {
        &self.value
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let slot = self.slot;
        SLOTS.with(|slots| {
            let mut slots = slots.borrow_mut();
            slots.values[slot as usize] = None;
            slots.free.push(slot);
        });
    }
}

/// The live value with this token.
pub fn lookup(token: u32) -> Option<Rc<Internal>> {
    let slot = token.checked_sub(1)? as usize;
    SLOTS.with(|slots| slots.borrow().values.get(slot).cloned().flatten())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::database::value::{Number, Value};

    #[test]
    fn slots_are_reused_and_freed() {
        let a = Registered::new(Internal::ServerDate {
            offset: Number::int(1),
        });
        let token = a.token();
        assert!(lookup(token).is_some());
        drop(a);
        assert!(lookup(token).is_none());
        let b = Registered::new(Internal::AggregateOp {
            name: "sum".into(),
            param: Value::Null,
        });
        assert_eq!(b.token(), token);
        assert!(lookup(0).is_none());
    }
}
