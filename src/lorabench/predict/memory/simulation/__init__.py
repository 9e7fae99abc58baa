"""The simulate engine: the real HF + PEFT (+ bitsandbytes) training step run under FakeTensorMode."""
