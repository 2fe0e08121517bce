//! The reactor's work queue: bounded, served by a fixed number of workers, and ordered per tag
//! (two events with the same tag are handled one after the other, in arrival order, while
//! events with other tags go ahead on other workers).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use tokio::sync::Semaphore;

/// A bounded queue of work items keyed by tag.
#[derive(Debug)]
pub struct Pool<T> {
    state: Mutex<State<T>>,
    /// One permit per tag in `ready`.
    ready: Semaphore,
    capacity: usize,
}

#[derive(Debug)]
struct State<T> {
    /// Items waiting, per tag; a tag is present while it has items waiting or one running.
    tags: HashMap<String, VecDeque<T>>,
    /// Tags with an item waiting and none running, in the order they became so.
    ready: VecDeque<String>,
    waiting: usize,
    running: usize,
}

/// An item taken by a worker; hand it back to [`Pool::done`] when finished.
#[derive(Debug)]
pub struct Taken<T> {
    /// The item's tag.
    pub tag: String,
    /// The item.
    pub item: T,
}

impl<T> Pool<T> {
    /// A pool holding at most `capacity` waiting items (`reactor_worker_hwm`).
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                tags: HashMap::new(),
                ready: VecDeque::new(),
                waiting: 0,
                running: 0,
            }),
            ready: Semaphore::new(0),
            capacity: capacity.max(1),
        }
    }

    /// Queues `item` behind the other items of `tag`; a full queue hands it back.
    pub fn submit(&self, tag: &str, item: T) -> Result<(), T> {
        let mut state = self.state.lock().expect("pool lock");
        if state.waiting >= self.capacity {
            return Err(item);
        }
        state.waiting += 1;
        match state.tags.get_mut(tag) {
            // Running or already ready: `done` makes it ready again.
            Some(queue) => queue.push_back(item),
            None => {
                state.tags.insert(tag.to_owned(), VecDeque::from([item]));
                state.ready.push_back(tag.to_owned());
                self.ready.add_permits(1);
            }
        }
        Ok(())
    }

    /// Waits for the next item whose tag has nothing running; `None` once the pool is closed.
    pub async fn take(&self) -> Option<Taken<T>> {
        self.ready.acquire().await.ok()?.forget();
        let mut state = self.state.lock().expect("pool lock");
        let tag = state.ready.pop_front().expect("a permit per ready tag");
        let item = state
            .tags
            .get_mut(&tag)
            .and_then(VecDeque::pop_front)
            .expect("a ready tag has an item");
        state.waiting -= 1;
        state.running += 1;
        Some(Taken { tag, item })
    }

    /// Marks `tag`'s running item finished, letting its next item go.
    pub fn done(&self, tag: &str) {
        let mut state = self.state.lock().expect("pool lock");
        state.running -= 1;
        let more = state.tags.get(tag).is_some_and(|queue| !queue.is_empty());
        if more {
            state.ready.push_back(tag.to_owned());
            self.ready.add_permits(1);
        } else {
            state.tags.remove(tag);
        }
    }

    /// Items waiting and running.
    pub fn load(&self) -> (usize, usize) {
        let state = self.state.lock().expect("pool lock");
        (state.waiting, state.running)
    }

    /// Stops handing out items: workers waiting in [`Pool::take`] get `None`.
    pub fn close(&self) {
        self.ready.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tag_waits_for_its_running_item_while_others_go_ahead() {
        let pool = Pool::new(10);
        pool.submit("a", 1).unwrap();
        pool.submit("a", 2).unwrap();
        pool.submit("b", 3).unwrap();
        let first = pool.take().await.unwrap();
        assert_eq!((first.tag.as_str(), first.item), ("a", 1));
        // "a" is running, so the next item is "b"'s even though a/2 came first.
        let second = pool.take().await.unwrap();
        assert_eq!(second.item, 3);
        pool.done("a");
        let third = pool.take().await.unwrap();
        assert_eq!(third.item, 2);
        pool.done("b");
        pool.done("a");
        assert_eq!(pool.load(), (0, 0));
    }

    #[test]
    fn a_full_queue_hands_the_item_back() {
        let pool = Pool::new(2);
        pool.submit("a", 1).unwrap();
        pool.submit("b", 2).unwrap();
        assert_eq!(pool.submit("c", 3), Err(3));
    }

    #[tokio::test]
    async fn closing_wakes_idle_workers() {
        let pool = std::sync::Arc::new(Pool::<u8>::new(1));
        let worker = tokio::spawn({
            let pool = pool.clone();
            async move { pool.take().await.is_none() }
        });
        tokio::task::yield_now().await;
        pool.close();
        assert!(worker.await.unwrap());
    }
}
