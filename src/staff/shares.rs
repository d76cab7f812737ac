//! Fair shares of FRMR (pure: no clock, no I/O). Who asks FRMR is an [`Asker`]: intake's
//! signer check, or an API client. Two rules keep one greedy client from starving the rest:
//!
//! - **admission**: a new lookup (a distinct `(SNILS, MO)` not already in flight) is admitted
//!   only while its asker holds fewer than its share of the lookups in flight, and while the
//!   clients together leave intake's reserve free ([`SharePolicy`]). A client over its share
//!   is told to come back ([`Admission::OverShare`]: `429` with `Retry-After`), never the
//!   others ([`Admission::Full`]: `503`, only when every share is taken);
//! - **turns**: admitted lookups queue for a call to FRMR; intake's go first (up to
//!   [`INTAKE_TURNS`] in a row while clients wait, so that intake cannot starve them
//!   either), then the clients' in turn, one call each, the client served longest ago
//!   first — so a client with a thousand lookups queued delays another's by one call, not a
//!   thousand.
//!
//! [`Shares`] holds the counts and queues; the service wraps it in a mutex and wakes the
//! ticket [`Shares::next_call`] names.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// Who a lookup is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Asker {
    /// Intake's check of a document's signers: a reserve of its own, first in the queue.
    Intake,
    /// An API client (its id).
    Client(uuid::Uuid),
}

/// How the lookups in flight are shared (configuration `[frmr]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SharePolicy {
    /// Distinct lookups in flight at once, everyone together (`frmr.max_pending_lookups`).
    pub max_pending: usize,
    /// Of those, what only intake may use (`frmr.intake_reserve`).
    pub intake_reserve: usize,
    /// The most one API client may hold (`frmr.client_share`).
    pub client_share: usize,
    /// Calls to FRMR under way at once; the rest wait for their turn.
    pub max_calls: usize,
    /// FRMR's calls per second: what a client over its share is told to wait by.
    pub rate_per_second: f64,
}

impl SharePolicy {
    /// What the clients together may hold: everything but intake's reserve.
    fn clients_limit(&self) -> usize {
        self.max_pending.saturating_sub(self.intake_reserve)
    }
}

/// The answer to a new lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// This asker holds its whole share: it waits for its own lookups, the others go on.
    OverShare,
    /// Everything an asker of this kind may use is taken (by several clients at once).
    Full,
}

/// A lookup waiting for its call, or making it.
pub type Ticket = u64;

/// Calls intake may make in a row while clients' lookups wait (then one client's turn).
pub const INTAKE_TURNS: usize = 3;

/// The lookups in flight by asker, and the queue for calls to FRMR.
#[derive(Debug, Default)]
pub struct Shares {
    held: HashMap<Asker, usize>,
    /// Everyone's lookups in flight (the sum of `held`).
    total: usize,
    /// Tickets waiting for a call, by asker.
    queues: HashMap<Asker, VecDeque<Ticket>>,
    /// Clients with tickets waiting, the next to be served first.
    turns: VecDeque<Asker>,
    /// Tickets waiting (a promoted ticket sits in two queues but waits once).
    waiting: HashMap<Ticket, Asker>,
    calls: usize,
    /// Intake's calls since a client's last turn.
    intake_streak: usize,
    next_ticket: Ticket,
}

impl Shares {
    /// Whether `asker` may start a new lookup now.
    pub fn admit(&self, policy: &SharePolicy, asker: Asker) -> Admission {
        let clients = self.total - self.held(Asker::Intake);
        match asker {
            Asker::Client(_) if self.held(asker) >= policy.client_share => Admission::OverShare,
            _ if self.total >= policy.max_pending => Admission::Full,
            Asker::Intake => Admission::Admitted,
            Asker::Client(_) if clients >= policy.clients_limit() => Admission::Full,
            Asker::Client(_) => Admission::Admitted,
        }
    }

    /// Counts a lookup admitted for `asker` and queues it for a call; its ticket.
    pub fn hold(&mut self, asker: Asker) -> Ticket {
        *self.held.entry(asker).or_default() += 1;
        self.total += 1;
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.enqueue(asker, ticket);
        self.waiting.insert(ticket, asker);
        ticket
    }

    /// The lookup of `asker` ended (answered, failed or given up).
    pub fn release(&mut self, asker: Asker, ticket: Ticket) {
        if let Some(n) = self.held.get_mut(&asker) {
            *n -= 1;
            self.total -= 1;
            if *n == 0 {
                self.held.remove(&asker);
            }
        }
        // A lookup that ends while still queued (its task failed early) leaves the queue.
        self.waiting.remove(&ticket);
    }

    /// Someone else (intake) needs the lookup `ticket` too: it also waits in their queue,
    /// and goes with whichever turn comes first.
    pub fn promote(&mut self, ticket: Ticket, asker: Asker) {
        if self.waiting.get(&ticket).is_some_and(|owner| *owner != asker) {
            self.enqueue(asker, ticket);
        }
    }

    /// Lookups of `asker` in flight.
    pub fn held(&self, asker: Asker) -> usize {
        self.held.get(&asker).copied().unwrap_or(0)
    }

    /// The next ticket to call FRMR, if a call may start: intake's first, then the client
    /// whose turn it is (it goes to the back of the turns). The call is counted until
    /// [`Shares::call_done`].
    pub fn next_call(&mut self, policy: &SharePolicy) -> Option<Ticket> {
        if self.calls >= policy.max_calls.max(1) {
            return None;
        }
        let clients_first = self.intake_streak >= INTAKE_TURNS;
        let ticket = if clients_first {
            self.client_turn().or_else(|| self.pop(Asker::Intake))
        } else {
            self.pop(Asker::Intake).or_else(|| self.client_turn())
        }?;
        if self.is_intakes(ticket) {
            self.intake_streak += 1;
        } else {
            self.intake_streak = 0;
        }
        self.waiting.remove(&ticket);
        self.calls += 1;
        Some(ticket)
    }

    /// The next ticket of the client whose turn it is (it goes to the back of the turns).
    fn client_turn(&mut self) -> Option<Ticket> {
        while let Some(asker) = self.turns.pop_front() {
            if let Some(ticket) = self.pop(asker) {
                if self.queues.get(&asker).is_some_and(|q| !q.is_empty()) {
                    self.turns.push_back(asker);
                }
                return Some(ticket);
            }
        }
        None
    }

    /// Whether `ticket` (still waiting) is intake's.
    fn is_intakes(&self, ticket: Ticket) -> bool {
        self.waiting.get(&ticket) == Some(&Asker::Intake)
    }

    /// A call to FRMR ended.
    pub fn call_done(&mut self) {
        self.calls = self.calls.saturating_sub(1);
    }

    fn enqueue(&mut self, asker: Asker, ticket: Ticket) {
        let queue = self.queues.entry(asker).or_default();
        let first = queue.is_empty();
        queue.push_back(ticket);
        if first && asker != Asker::Intake && !self.turns.contains(&asker) {
            self.turns.push_back(asker);
        }
    }

    /// The first ticket of `asker`'s queue still waiting (others went by another queue).
    fn pop(&mut self, asker: Asker) -> Option<Ticket> {
        let queue = self.queues.get_mut(&asker)?;
        let mut found = None;
        while let Some(ticket) = queue.pop_front() {
            if self.waiting.contains_key(&ticket) {
                found = Some(ticket);
                break;
            }
        }
        if queue.is_empty() {
            self.queues.remove(&asker);
        }
        found
    }
}

impl Shares {
    /// When `asker`, over its share, may ask again ([`retry_after`] of what it holds).
    pub fn retry_after(&self, policy: &SharePolicy, asker: Asker) -> Duration {
        retry_after(self.held(asker), policy.rate_per_second)
    }
}

/// When a client over its share may ask again: when its lookups in flight have had their
/// turns, at FRMR's rate shared with the others (at least a second, at most a minute).
pub fn retry_after(held: usize, rate_per_second: f64) -> Duration {
    let secs = if rate_per_second > 0.0 { held as f64 / rate_per_second } else { 60.0 };
    Duration::from_secs_f64(secs.clamp(1.0, 60.0)).max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> SharePolicy {
        SharePolicy { max_pending: 10, intake_reserve: 2, client_share: 3, max_calls: 1, rate_per_second: 2.0 }
    }

    fn client(n: u128) -> Asker {
        Asker::Client(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn a_client_gets_its_share_and_no_more() {
        let (p, mut s) = (policy(), Shares::default());
        for _ in 0..3 {
            assert_eq!(s.admit(&p, client(1)), Admission::Admitted);
            s.hold(client(1));
        }
        assert_eq!(s.admit(&p, client(1)), Admission::OverShare);
        assert_eq!(s.admit(&p, client(2)), Admission::Admitted, "the others go on");
        assert_eq!(s.admit(&p, Asker::Intake), Admission::Admitted);
    }

    #[test]
    fn clients_together_leave_intake_its_reserve() {
        let (p, mut s) = (policy(), Shares::default());
        for c in 1..=8u128 {
            if s.admit(&p, client(c)) == Admission::Admitted {
                s.hold(client(c));
            }
        }
        assert_eq!(s.held(client(1)), 1);
        assert_eq!(s.admit(&p, client(9)), Admission::Full, "eight of ten taken by clients");
        assert_eq!(s.admit(&p, Asker::Intake), Admission::Admitted);
        s.hold(Asker::Intake);
        s.hold(Asker::Intake);
        assert_eq!(s.admit(&p, Asker::Intake), Admission::Full, "all ten taken");
    }

    #[test]
    fn released_lookups_free_the_share() {
        let (p, mut s) = (policy(), Shares::default());
        let tickets: Vec<Ticket> = (0..3).map(|_| s.hold(client(1))).collect();
        assert_eq!(s.admit(&p, client(1)), Admission::OverShare);
        s.release(client(1), tickets[0]);
        assert_eq!(s.admit(&p, client(1)), Admission::Admitted);
        assert_eq!(s.held(client(1)), 2);
    }

    /// Room for everyone: only the order of the calls is in question.
    fn unbounded_turns() -> SharePolicy {
        SharePolicy { max_calls: 100, client_share: 100, max_pending: 1000, intake_reserve: 0, rate_per_second: 2.0 }
    }

    #[test]
    fn intake_first_then_clients_in_turn() {
        let p = unbounded_turns();
        let mut s = Shares::default();
        let greedy: Vec<Ticket> = (0..5).map(|_| s.hold(client(1))).collect();
        let other = s.hold(client(2));
        let intake = s.hold(Asker::Intake);
        let order: Vec<Ticket> = std::iter::from_fn(|| s.next_call(&p)).collect();
        assert_eq!(order[0], intake, "intake first");
        assert_eq!(&order[1..3], &[greedy[0], other], "the other client's one call comes second in the clients' turns");
        assert_eq!(&order[3..], &greedy[1..]);
    }

    #[test]
    fn intake_cannot_starve_the_clients() {
        let p = unbounded_turns();
        let mut s = Shares::default();
        let intake: Vec<Ticket> = (0..7).map(|_| s.hold(Asker::Intake)).collect();
        let client: Vec<Ticket> = (0..2).map(|_| s.hold(client(1))).collect();
        let order: Vec<Ticket> = std::iter::from_fn(|| s.next_call(&p)).collect();
        let expected =
            [intake[0], intake[1], intake[2], client[0], intake[3], intake[4], intake[5], client[1], intake[6]];
        assert_eq!(order, expected, "{INTAKE_TURNS} of intake's calls, then a client's turn");
    }

    #[test]
    fn clients_never_take_more_than_the_whole() {
        let p =
            SharePolicy { max_pending: 10, intake_reserve: 2, client_share: 10, max_calls: 1, rate_per_second: 2.0 };
        let mut s = Shares::default();
        for _ in 0..6 {
            s.hold(Asker::Intake);
        }
        for c in 1..=4u128 {
            assert_eq!(s.admit(&p, client(c)), Admission::Admitted);
            s.hold(client(c));
        }
        assert_eq!(s.admit(&p, client(5)), Admission::Full, "ten in flight, everyone together");
    }

    #[test]
    fn calls_wait_for_a_free_slot() {
        let mut s = Shares::default();
        let p = policy();
        let a = s.hold(client(1));
        let b = s.hold(client(2));
        assert_eq!(s.next_call(&p), Some(a));
        assert_eq!(s.next_call(&p), None, "one call at a time");
        s.call_done();
        assert_eq!(s.next_call(&p), Some(b));
    }

    #[test]
    fn a_promoted_ticket_goes_with_intake_and_once() {
        let p = unbounded_turns();
        let mut s = Shares::default();
        let first = s.hold(client(1));
        let joined = s.hold(client(1));
        s.promote(joined, Asker::Intake);
        assert_eq!(s.next_call(&p), Some(joined), "intake needs it: it goes first");
        assert_eq!(s.next_call(&p), Some(first));
        assert_eq!(s.next_call(&p), None, "the promoted ticket is not called twice");
    }

    #[test]
    fn a_ticket_released_while_queued_is_skipped() {
        let p = policy();
        let mut s = Shares::default();
        let gone = s.hold(client(1));
        let next = s.hold(client(1));
        s.release(client(1), gone);
        assert_eq!(s.next_call(&p), Some(next));
    }

    #[test]
    fn retry_after_follows_the_share_and_the_rate() {
        assert_eq!(retry_after(20, 2.0), Duration::from_secs(10));
        assert_eq!(retry_after(1, 100.0), Duration::from_secs(1), "at least a second");
        assert_eq!(retry_after(10_000, 1.0), Duration::from_secs(60), "at most a minute");
    }
}
