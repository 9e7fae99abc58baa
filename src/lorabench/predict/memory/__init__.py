"""Memory engines: exact accounting, the fake-tensor simulation of the real step, and the fitted formula."""
