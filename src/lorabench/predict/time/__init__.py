"""Time engines: FLOPs of the training step, efficiency/calibration and the roofline."""
