"""Commands and deciders: fold a stream into state, decide, append."""
