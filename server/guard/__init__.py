"""The guard: who is calling, what they may see, how much they have seen, and the audit trail."""
