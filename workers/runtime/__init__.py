"""The worker process: its durable JetStream consumers, the sagas they drive, and the locks one
operation holds across processes."""
