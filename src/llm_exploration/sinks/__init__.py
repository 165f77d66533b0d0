"""Attention sinks: which tokens soak up attention, why, and what streaming with them costs."""
