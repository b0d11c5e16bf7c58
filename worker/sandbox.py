"""The sandbox channel for tenants without provider credentials: everyone "receives" at once."""

from __future__ import annotations

import uuid

from worker.channels import Batch, ChannelCredentials, SendResult


class SandboxAdapter:
    """Accepts every recipient; the engine's delivery rows are what the resident simulator shows."""

    name = "sandbox"

    def send(self, credentials: ChannelCredentials, batch: Batch) -> list[SendResult]:
        return [SendResult(r.delivery_id, "sent", provider_ref=f"sandbox-{uuid.uuid4()}")
                for r in batch.recipients]
