"""Faithful fakes of the providers' wire protocols (LINE, Twilio), real HTTP servers for the real SDKs."""
