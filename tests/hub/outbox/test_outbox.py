import random
import threading
from collections import Counter

import pytest
from sqlalchemy import text

from hub.audit import service as audit
from hub.outbox import service
from hub.outbox.models import MessageState
from hub.outbox.service import DeliveryFailed, RetryPolicy
from hub.outbox.worker import OutboxWorker

TOPIC = "test.topic"


class Receiver:
    """A handler that records what it was given and fails while told to."""

    def __init__(self, failures=0, permanent=False):
        self.failures = failures
        self.permanent = permanent
        self.received = []
        self.lock = threading.Lock()

    def __call__(self, delivery):
        with self.lock:
            if self.failures:
                self.failures -= 1
                raise DeliveryFailed("receiver down", permanent=self.permanent)
            self.received.append(delivery.event_id)


def enqueue(db, clock, event_id, topic=TOPIC):
    return db.transaction(
        lambda s: service.enqueue(
            s, topic=topic, event_id=event_id, payload={"n": event_id}, now=clock()
        )
    )


def state_of(db, event_id):
    with db.session() as s:
        return service.find_message(s, event_id)


def worker(db, clock, receiver, **options):
    return OutboxWorker(db, clock, {TOPIC: receiver}, rng=random.Random(1), **options)


def test_message_exists_only_if_the_state_change_commits(db, clock):
    def change_then_fail(s):
        service.enqueue(s, topic=TOPIC, event_id="e1", payload={}, now=clock())
        raise RuntimeError("the state change failed")

    with pytest.raises(RuntimeError):
        db.transaction(change_then_fail)
    assert state_of(db, "e1") is None


def test_due_message_is_delivered_once_and_marked(db, clock):
    enqueue(db, clock, "e1")
    receiver = Receiver()
    w = worker(db, clock, receiver)
    assert w.run_once() == 1
    assert w.run_once() == 0
    assert receiver.received == ["e1"]
    message = state_of(db, "e1")
    assert (message.state, message.attempts, message.delivered_at) == (
        MessageState.DELIVERED,
        1,
        clock(),
    )


def test_same_event_enqueued_twice_is_one_message(db, clock):
    first = enqueue(db, clock, "e1")
    assert enqueue(db, clock, "e1").id == first.id


def test_failure_is_retried_after_a_backoff_with_jitter(db, clock):
    enqueue(db, clock, "e1")
    receiver = Receiver(failures=2)
    policy = RetryPolicy(base_seconds=10, cap_seconds=1000, jitter=0.2)
    w = worker(db, clock, receiver, policy=policy)
    w.run_once()
    first_retry = state_of(db, "e1").next_attempt_at - clock()
    assert 8 <= first_retry.total_seconds() <= 12
    clock.advance(7.9)
    assert w.run_once() == 0  # not due yet
    clock.advance(first_retry.total_seconds())
    w.run_once()
    second_retry = state_of(db, "e1").next_attempt_at - clock()
    assert 16 <= second_retry.total_seconds() <= 24
    clock.advance(25)
    w.run_once()
    assert receiver.received == ["e1"]
    assert state_of(db, "e1").state == MessageState.DELIVERED


def test_backoff_doubles_up_to_the_cap_and_jitter_spreads_it():
    policy = RetryPolicy(base_seconds=2, cap_seconds=600, jitter=0.2)
    rng = random.Random(3)
    nominal = [2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]
    for attempt, expected in enumerate(nominal, start=1):
        assert 0.8 * expected <= policy.delay(attempt, rng) <= 1.2 * expected
    assert len({round(policy.delay(5, rng), 3) for _ in range(20)}) > 10
    # The default budget outlasts a receiver that is down for an hour.
    default = RetryPolicy()
    worst = sum(
        min(default.cap_seconds, default.base_seconds * 2 ** (n - 1)) * (1 - default.jitter)
        for n in range(1, default.max_attempts)
    )
    assert worst > 3600


def test_message_goes_dead_after_the_retry_budget(db, clock):
    enqueue(db, clock, "e1")
    receiver = Receiver(failures=99)
    w = worker(db, clock, receiver, policy=RetryPolicy(max_attempts=3, base_seconds=1))
    for _ in range(5):
        w.run_once()
        clock.advance(10)
    message = state_of(db, "e1")
    assert (message.state, message.attempts, message.last_error) == (
        MessageState.DEAD,
        3,
        "receiver down",
    )


def test_permanent_refusal_goes_dead_at_once(db, clock):
    enqueue(db, clock, "e1")
    worker(db, clock, Receiver(failures=1, permanent=True)).run_once()
    assert state_of(db, "e1").state == MessageState.DEAD


def test_handler_crash_is_retried_not_lost(db, clock):
    enqueue(db, clock, "e1")

    def crashing(delivery):
        raise KeyError("bug")

    worker(db, clock, crashing).run_once()
    message = state_of(db, "e1")
    assert (message.state, message.last_error) == (MessageState.PENDING, "handler error: KeyError")


def test_resend_puts_a_dead_message_back_with_a_fresh_budget(db, clock):
    enqueue(db, clock, "e1")
    w = worker(db, clock, Receiver(failures=1, permanent=True))
    w.run_once()
    message_id = state_of(db, "e1").id
    db.transaction(lambda s: service.resend(s, message_id, clock(), actor="operator:alice"))
    assert (state_of(db, "e1").state, state_of(db, "e1").attempts) == (MessageState.PENDING, 0)
    w.run_once()
    assert state_of(db, "e1").state == MessageState.DELIVERED
    with db.session() as s:
        (entry,) = audit.recent(s, action="outbox.resent")
    assert entry.details == {"topic": TOPIC, "event_id": "e1", "was": "dead"}


def test_expired_lease_is_claimed_again_and_the_late_worker_cannot_record(db, clock):
    enqueue(db, clock, "e1")
    (claimed,) = db.transaction(
        lambda s: service.claim(s, [TOPIC], clock(), limit=10, lease_seconds=30)
    )
    assert (
        db.transaction(lambda s: service.claim(s, [TOPIC], clock(), limit=10, lease_seconds=30))
        == []
    )
    clock.advance(31)  # the first worker died holding the claim
    (again,) = db.transaction(
        lambda s: service.claim(s, [TOPIC], clock(), limit=10, lease_seconds=30)
    )
    assert again.attempt == 2
    assert db.transaction(lambda s: service.record_delivered(s, [claimed], clock())) == set()
    recorded = db.transaction(lambda s: service.record_delivered(s, [again], clock()))
    assert recorded == {again.id}


def test_only_topics_with_a_handler_are_claimed(db, clock):
    enqueue(db, clock, "mine")
    enqueue(db, clock, "theirs", topic="insurance.revoke")
    receiver = Receiver()
    worker(db, clock, receiver).drain()
    assert receiver.received == ["mine"]
    assert state_of(db, "theirs").state == MessageState.PENDING


@pytest.mark.postgres
def test_several_workers_deliver_each_message_once(pg, clock):
    for n in range(300):
        enqueue(pg, clock, f"e{n}")
    deliveries = Counter()
    lock = threading.Lock()

    def count(delivery):
        with lock:
            deliveries[delivery.event_id] += 1

    workers = [OutboxWorker(pg, clock, {TOPIC: count}, batch=7, concurrency=2) for _ in range(6)]
    threads = [threading.Thread(target=w.drain, kwargs={"max_batches": 1000}) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(deliveries) == 300
    assert set(deliveries.values()) == {1}
    with pg.session() as s:
        states = s.execute(text("SELECT state, count(*) FROM outbox_messages GROUP BY state"))
        assert dict(states.all()) == {"delivered": 300}
