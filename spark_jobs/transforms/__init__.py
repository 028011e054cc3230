"""Pure DataFrame -> DataFrame transforms, shared by the streaming and the batch jobs."""
