"""The one rule for the template an endpoint runs (``endpoint_rules.usable_template``), which
v1, GraphQL and REST v2 (with or without inline container settings) all go through."""

from __future__ import annotations

import pytest

from runplane.errors import Invalid
from runplane.schemas.templates import Template
from runplane.services.endpoint_rules import usable_template

ALICE, BOB, ADMIN = "user_alice", "user_bob", "user_admin"


def template(owner: str, serverless: bool = True, public: bool = False) -> Template:
    return Template(id="t1", name="t", imageName="i", userId=owner, isServerless=serverless,
                    isPublic=public, isRunpod=public and owner == ADMIN)


# (the template, the endpoint's owner, the refusal's words or None for allowed). The owner is
# the caller on a create and the endpoint's user on an update, so an admin's key reaches no
# further than the endpoint's owner's templates.
TABLE = [
    (template(ALICE), ALICE, None),
    (template(ALICE, serverless=False), ALICE, "is a Pod template"),
    (None, ALICE, "no template 't1'"),
    (template(BOB), ALICE, "no template 't1'"),
    (template(BOB, public=True), ALICE, "no template 't1'"),
    (template(ADMIN, public=True), ALICE, "no template 't1'"),  # the operator's official
    (template(ALICE), ADMIN, "no template 't1'"),  # an admin's endpoint, a user's template
    (template(ADMIN), ALICE, "no template 't1'"),  # an admin on alice's endpoint, its own
    (template(BOB, serverless=False), ALICE, "no template 't1'"),  # ownership is asked first
]


@pytest.mark.parametrize(("found", "owner", "refusal"), TABLE)
def test_usable_template(found: Template | None, owner: str, refusal: str | None) -> None:
    if refusal is None:
        assert usable_template(found, "t1", owner) is found
        return
    with pytest.raises(Invalid) as err:
        usable_template(found, "t1", owner)
    assert err.value.field == "templateId" and refusal in err.value.message
