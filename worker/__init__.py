"""Background work: RQ jobs, the clock, and one adapter module per channel (LINE, SMS, voice)."""
