"""Source clients. Each pulls records from one kind of source and returns contract events."""
