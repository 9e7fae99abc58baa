"""Time engines: the roofline (default), its op counts (closed form, or traced), and the older FLOPs engine."""
