"""The broker's side of FlashBoot (docs/flashboot.md): a parked worker is never handed a job,
its open long-poll is answered, a poll it sends while parked is held and gets a job as soon as
it is resumed, and it cannot be parked while a job is on its way to it."""

from __future__ import annotations

import asyncio

from tests.api.test_jobs import Env, env  # noqa: F401 - the fixture


async def test_parking_answers_the_open_poll_and_hands_nothing(env: Env) -> None:  # noqa: F811
    env.srv.services.handoff.hold_s = 5.0
    w = await env.worker()
    take = asyncio.create_task(w.take())
    while not env.broker.workers.get(w.id).polling:
        await asyncio.sleep(0.01)
    assert env.broker.workers.set_parked(w.id, True)
    assert (await take).status_code == 204  # released, not held for 5 s with a job in it
    job_id = await env.run()
    assert (await env.status(job_id))["status"] == "IN_QUEUE"
    assert env.broker.workers.get(w.id).status == "PARKED"


async def test_poll_held_while_parked_takes_the_job_once_resumed(env: Env) -> None:  # noqa: F811
    env.srv.services.handoff.hold_s = 5.0
    w = await env.worker()
    await w.ping()
    assert env.broker.workers.set_parked(w.id, True)
    take = asyncio.create_task(w.take())  # sent before the freeze landed, or after the thaw
    job_id = await env.run()
    await asyncio.sleep(0.05)
    assert not take.done()
    assert (await env.status(job_id))["status"] == "IN_QUEUE"
    assert env.broker.workers.set_parked(w.id, False)
    r = await take
    assert r.status_code == 200 and r.json()["id"] == job_id
    assert (await env.status(job_id))["status"] == "IN_PROGRESS"


async def test_no_parking_while_a_job_is_on_its_way_or_held(env: Env) -> None:  # noqa: F811
    w = await env.worker()
    await w.ping()
    worker = env.broker.workers.get(w.id)
    job_id = await env.run()
    handoff = env.srv.services.handoff
    reserved = await handoff.take(worker, 1, 0.1)  # a job-take response being written
    assert [j.id for j in reserved] == [job_id]
    assert not env.broker.workers.set_parked(w.id, True)
    handoff.untake(reserved, worker)  # the write failed: back in the queue
    assert env.broker.workers.set_parked(w.id, True)
    assert env.broker.workers.set_parked(w.id, False)

    assert (await w.take_job())["id"] == job_id  # written and confirmed: it holds the job
    assert not env.broker.workers.set_parked(w.id, True)
    await w.done(job_id, {"output": 1})
    assert worker.handing == 0
    assert env.broker.workers.set_parked(w.id, True)
