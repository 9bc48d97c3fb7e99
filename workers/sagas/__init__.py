"""The sagas: one module per saga, the driver they share, and what their steps work with."""
