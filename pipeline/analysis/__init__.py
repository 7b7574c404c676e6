"""Statistics, baselines and the report: no TensorFlow, so comparison and reporting stay fast and testable alone."""
