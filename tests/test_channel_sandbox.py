"""The sandbox channel that tenants without provider credentials use."""

from __future__ import annotations

from worker.channels import Batch, ChannelCredentials, Message, Recipient
from worker.sandbox import SandboxAdapter


def test_sandbox_accepts_everyone_with_its_own_reference():
    """Does a tenant without LINE or Twilio see every check as sent, each with a distinct reference?"""
    recipients = [Recipient(1, "U" + "0" * 32), Recipient(2, "+819012345678")]
    batch = Batch(Message("お元気ですか?", answer_data="check=1"), recipients)
    results = SandboxAdapter().send(ChannelCredentials("demo"), batch)

    assert [(r.delivery_id, r.status) for r in results] == [(1, "sent"), (2, "sent")]
    refs = [r.provider_ref or "" for r in results]
    assert all(ref.startswith("sandbox-") for ref in refs) and len(set(refs)) == 2
