//! The cells of a sweep waiting for a device: workers take them one at a time, give back the
//! ones whose device failed (another worker runs them), and stop when nothing is left to take
//! or to come back.

use super::Cell;
use std::sync::{Condvar, Mutex, MutexGuard};

/// Cells to run, shared by the workers of every device.
pub struct Queue {
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    /// Next cell last.
    waiting: Vec<Cell>,
    /// Cells taken and not yet finished or given back.
    running: usize,
}

impl Queue {
    /// A queue that hands out `cells` in order.
    pub fn new(cells: Vec<Cell>) -> Self {
        Queue {
            state: Mutex::new(State {
                waiting: cells.into_iter().rev().collect(),
                running: 0,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next cell; while none waits but some run (and may come back), waits for them. `None`
    /// when every cell is taken for good.
    pub fn take(&self) -> Option<Cell> {
        let mut s = self.lock();
        loop {
            if let Some(cell) = s.waiting.pop() {
                s.running += 1;
                return Some(cell);
            }
            if s.running == 0 {
                return None;
            }
            s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// A taken cell ended (finished, failed for its own reasons, or stopped).
    pub fn finish(&self) {
        let mut s = self.lock();
        s.running = s.running.saturating_sub(1);
        self.changed.notify_all();
    }

    /// A taken cell could not run where it was taken: it is the next to be taken again.
    pub fn give_back(&self, cell: Cell) {
        let mut s = self.lock();
        s.running = s.running.saturating_sub(1);
        s.waiting.push(cell);
        self.changed.notify_all();
    }

    /// The cells nobody took (every device failed, or a stop).
    pub fn left(&self) -> Vec<Cell> {
        self.lock().waiting.iter().rev().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(seed: u64) -> Cell {
        Cell {
            family: "mlp-res".into(),
            depth: 4,
            seed,
            lr: 0.05,
            norm: crate::spec::Norm::Batch,
        }
    }

    #[test]
    fn hands_out_in_order_and_takes_back() {
        let q = Queue::new(vec![cell(0), cell(1), cell(2)]);
        assert_eq!(q.take().unwrap().seed, 0);
        let one = q.take().unwrap();
        q.give_back(one);
        assert_eq!(q.take().unwrap().seed, 1, "a cell given back is next");
        assert_eq!(q.left().len(), 1);
    }

    #[test]
    fn a_waiting_worker_gets_a_cell_given_back_later() {
        let q = Queue::new(vec![cell(7)]);
        let taken = q.take().unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| q.take().map(|c| c.seed));
            std::thread::sleep(std::time::Duration::from_millis(50));
            q.give_back(taken);
            assert_eq!(waiter.join().unwrap(), Some(7));
        });
        q.finish();
        assert!(q.take().is_none(), "nothing left, nothing running");
    }
}
