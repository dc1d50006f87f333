"""A small chat site on Daphne: the official SignalR JavaScript client talks to a Python hub."""
