"""The DVC stages, one module each: a small main() that reads params.yaml, calls pure functions, writes outputs."""
