"""Entry points around the pipeline (sweep, audit, bench, reproduce, drift): nothing in pipeline/ imports them."""
