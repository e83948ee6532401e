"""``millinet sweep``: Ray Tune over training configs (driver, config, trainable, outputs)."""
