"""The domain's tables; import from here so every model is registered with the metadata."""

from tenants.models.audit import AuditEvent
from tenants.models.community import Broadcast, GroupDigest
from tenants.models.earthquakes import EarthquakeTrigger, JmaReport
from tenants.models.engine import (
    Check,
    Delivery,
    InboundMessage,
    Incident,
    IncidentEvent,
    Round,
    WebhookEvent,
)
from tenants.models.groups import Group, GroupMember
from tenants.models.policies import AlertChain, AlertStep, CheckPolicy
from tenants.models.residents import Contact, LinkAttempt, Resident, ResidentPause
from tenants.models.staff import ApiToken, DutySlot, ResidentAssignment, StaffSession, User
from tenants.models.tenants import Tenant

__all__ = [
    "AlertChain",
    "AlertStep",
    "ApiToken",
    "AuditEvent",
    "Broadcast",
    "Check",
    "CheckPolicy",
    "Contact",
    "Delivery",
    "DutySlot",
    "EarthquakeTrigger",
    "Group",
    "GroupDigest",
    "GroupMember",
    "InboundMessage",
    "Incident",
    "IncidentEvent",
    "JmaReport",
    "LinkAttempt",
    "Resident",
    "ResidentAssignment",
    "ResidentPause",
    "Round",
    "StaffSession",
    "Tenant",
    "User",
    "WebhookEvent",
]
