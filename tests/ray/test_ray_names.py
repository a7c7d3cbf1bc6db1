"""Whose a detached worker actor is (providers/ray/names.py): the decision that keeps two servers on one
Ray cluster from taking over or killing each other's actors. Pure; no cluster needed."""

from __future__ import annotations

from pathlib import Path

from runplane.providers.ray.names import actor_name, is_owned, leftovers, owner_of


def test_the_owner_token_is_kept_in_the_data_dir_and_differs_between_data_dirs(
        tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    first = owner_of(a)
    assert owner_of(a) == first == (a / "ray-owner").read_text().strip()
    assert owner_of(b) != first


def test_leftovers_are_this_owners_actors_that_this_run_does_not_keep() -> None:
    mine, other = "0123456789ab", "ba9876543210"
    kept = actor_name(mine, "w-kept", "r2", 1)
    parked = actor_name(mine, "w-parked", "r1", 3)
    elsewhere = actor_name(mine, "w-moved", "r1", 4)
    theirs = actor_name(other, "w-kept", "r9", 1)
    named = [{"namespace": "runplane", "name": n} for n in (kept, parked, theirs)] + [
        {"namespace": "other-ns", "name": elsewhere},
        {"namespace": "runplane", "name": "somebody-elses-actor"}]
    assert is_owned(kept, mine) and not is_owned(theirs, mine)
    # Another namespace counts too: the operator may have changed [ray] namespace since.
    assert leftovers(named, mine, {("runplane", kept)}) == [
        ("other-ns", elsewhere), ("runplane", parked)]
    assert leftovers(named, other, set()) == [("runplane", theirs)]
