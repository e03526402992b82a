"""Mails go one per recipient through the mail queue: a bad address fails alone, a crash loses none."""

from __future__ import annotations

import json

from shared.domain.access import Principal
from shared.records import Changes, OutboxItem, OutboxKind
from shared.services import approvals, sweeper
from tests.integration.conftest import World, stage


def test_one_refused_approver_address_fails_alone_and_never_mails_the_others_again(world: World) -> None:
    mailer = world.deps.mailer
    mailer.refused.add("bob@nowhere.invalid")  # type: ignore[attr-defined]
    production = {**stage("Production"), "preApprovals": {"approvers": ["tim@contoso.com", "bob@nowhere.invalid"]}}
    did = int(world.define([production])["id"])
    rel = world.release(did)
    world.pump()
    for _ in range(5):  # five minutes of sweeps and deliveries
        world.clock.advance(61)
        sweeper.sweep(world.deps)
        world.pump()
    to_tim = [m for m in mailer.sent if m["to"] == ["tim@contoso.com"]]  # type: ignore[attr-defined]
    assert len(to_tim) == 1 and "Approval needed" in str(to_tim[0]["subject"])
    assert not [m for m in mailer.sent if m["to"] != ["tim@contoso.com"]]  # type: ignore[attr-defined]
    assert world.deps.store.outbox(did, rel.id) == []  # nothing left for the sweeper to send again
    assert world.get(rel.id).stages["Production"].current.phase == "preApproval"


def test_an_approval_decided_before_its_mail_goes_out_is_not_mailed(world: World) -> None:
    production = {**stage("Production"), "preApprovals": {"approvers": ["tim@contoso.com"]}}
    did = int(world.define([production])["id"])
    rel = world.release(did)
    approvals.cast_vote(world.deps, rel.id, "Production", "pre", Principal("tim@contoso.com"), "approve", "",
                        attempt=None, if_match=None)
    world.pump()
    assert not [m for m in world.deps.mailer.sent if "Approval needed" in str(m["subject"])]  # type: ignore[attr-defined]


def test_mails_an_earlier_version_left_in_the_outbox_go_out_as_messages(world: World) -> None:
    production = {**stage("Production"), "preApprovals": {"approvers": ["tim@contoso.com"]}}
    did = int(world.define([production])["id"])
    rel = world.release(did)
    world.pump()
    mailer = world.deps.mailer
    mailer.sent.clear()  # type: ignore[attr-defined]
    note = {"event": "approvalRequested", "definitionId": did, "releaseId": rel.id, "stage": "Production",
            "attempt": 1, "kind": "pre"}
    legacy = OutboxItem(id="old1", release_id=rel.id, kind=OutboxKind.NOTIFY, body=json.dumps(note),
                        created_at=world.clock.now().isoformat())
    world.deps.store.commit(Changes(did, outbox=[legacy]))
    world.clock.advance(61)  # a dead handler's leftovers are the sweeper's
    sweeper.sweep(world.deps)
    world.pump()
    assert [m["to"] for m in mailer.sent] == [["tim@contoso.com"]]  # type: ignore[attr-defined]
    assert world.deps.store.outbox(did, rel.id) == []
