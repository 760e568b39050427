"""Retention for decoders (issues 18–19): a budgeted KV cache, eviction scores, probes and their bench.

Beside the encoder corner, not inside it: nothing in the encoder modules imports from here.
"""
