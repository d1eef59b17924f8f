"""The local engine: a PySpark stand-in for the Chronon driver jar (see docs/local_engine.md)."""
